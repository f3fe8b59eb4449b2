"""Template instances as objects with identity.

A *run* is one call of a template that makes instances: one ``unroll`` (all
its steps), or one chain of direct calls that pass a state on (``cell(x, h)``
again and again). An *instance* is one step of a run: its run, its index (the
time step) and the instance it was made in, when a template is called inside
another template.

Two instances are the same only if they are the same object. For reading and
display an instance still behaves like the pair ``(template_name, index)``:
it compares equal to that tuple, hashes like it, unpacks into it and indexes
like it (``inst[0]``, ``inst[1]``). Two instances of different calls compare
*unequal* to each other even when both equal ``("RNNCell", 0)``, so counting,
grouping and drawing by instance keeps a siamese encoder's two unrolls, or a
direct call after an unroll, apart.
"""
from __future__ import annotations


class Run:
    """One call of a template that makes instances (an unroll, or a chain of direct calls).

    Attributes
    ----------
    template_name : str
    template : Template or None
        The template that ran (``None`` after unpickling: a pickled tensor does
        not drag its whole model along).
    """

    __slots__ = ("template_name", "template", "__weakref__")

    def __init__(self, template_name, template=None):
        self.template_name = template_name
        self.template = template

    def __reduce__(self):
        return (Run, (self.template_name,))

    def __repr__(self):
        return f"Run({self.template_name!r})"


class Instance:
    """One call (one time step) of a template; see the module docstring.

    Attributes
    ----------
    run : Run
        The call of the template this step belongs to.
    index : int
        The time step (or the position in a chain of direct calls).
    parent : Instance or None
        The instance of the enclosing template, for a template called inside another.
    """

    __slots__ = ("run", "index", "parent", "_hash", "__weakref__")

    def __init__(self, run, index, parent=None):
        self.run = run
        self.index = index
        self.parent = parent
        self._hash = hash((run.template_name, index))  # instances are dict keys all over the drawing code

    def __reduce__(self):
        # rebuilt through __init__: the cached hash of a str differs from process to process
        return (Instance, (self.run, self.index, self.parent))

    @property
    def template_name(self):
        return self.run.template_name

    @property
    def template(self):
        return self.run.template

    def key(self):
        """The plain ``(template_name, index)`` pair (not unique: see the module docstring)."""
        return (self.run.template_name, self.index)

    def chain(self):
        """This instance, then the instances enclosing it, innermost first."""
        out, inst = [], self
        while inst is not None:
            out.append(inst)
            inst = inst.parent
        return out

    def outermost(self):
        inst = self
        while inst.parent is not None:
            inst = inst.parent
        return inst

    def belongs_to(self, template):
        """Whether this instance is a call of ``template`` (by identity; by name once unpickled)."""
        if self.run.template is not None:
            return self.run.template is template
        return self.run.template_name == getattr(template, "template_name", None)

    # -- the (template_name, index) face, for reading and display ---------------------
    def __eq__(self, other):
        if isinstance(other, Instance):
            return self is other
        if isinstance(other, tuple):
            return len(other) == 2 and other[0] == self.run.template_name and other[1] == self.index
        return NotImplemented

    def __ne__(self, other):
        if other.__class__ is Instance:
            return self is not other
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self):
        return self._hash

    def __iter__(self):
        return iter((self.run.template_name, self.index))

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return (self.run.template_name, self.index)[i]

    def __repr__(self):
        return f"Instance({self.run.template_name!r}, {self.index})"


def template_key(instance):
    """What identifies the template of ``instance`` (the template object, or its name once unpickled)."""
    template = instance.run.template
    return ("template", id(template)) if template is not None else ("name", instance.run.template_name)


def number_runs(instances):
    """Number the runs of ``instances`` (an iterable, in graph order) per template name.

    Returns ``(numbers, counts)``: ``numbers[run]`` is 1, 2, ... in order of
    first appearance among the runs of templates of the same name, and
    ``counts[name]`` how many runs of that name there are. Drawings label the
    second and later runs ``#2``, ``#3``, ... so a reader can tell two unrolls
    of one cell apart.
    """
    numbers, counts = {}, {}
    for inst in instances:
        run = inst.run
        if run not in numbers:
            name = run.template_name
            counts[name] = counts.get(name, 0) + 1
            numbers[run] = counts[name]
    return numbers, counts


# How many tensors ``continued_run`` looks at behind the arguments of a call: enough for the few
# ops a loop may put between two steps (masking a padded state, a residual, a projection of the
# output fed back as the next input), little enough to cost nothing next to the step itself.
SEARCH_LIMIT = 64


def _of_template(inst, template):
    while inst is not None:
        if inst.belongs_to(template):
            return inst
        inst = inst.parent
    return None


def _tensors(obj):
    out, items = [], [obj]
    while items:
        item = items.pop()
        if isinstance(item, (tuple, list)):
            items.extend(item)
        elif hasattr(item, "parents") and hasattr(item, "instance"):
            out.append(item)
    return out


def continued_run(template, state, others=()):
    """``(run, first_index)`` for a call of ``template`` that receives ``state``.

    If a tensor of ``state`` (a Tensor, or nested tuples/lists of them), or a
    tensor a few ops behind it (e.g. ``h * mask`` computed between two steps),
    was made by step ``k`` of this template (at any nesting depth), the call
    continues that step's run at ``k + 1``; otherwise it starts a new run at 0.
    A detached state has no history, so it starts a new run. The tensors of
    ``others`` (a call's other arguments, e.g. an output fed back as the next
    input) count only when they were made by a step themselves: looking
    behind an input would reach back into whatever sequence it came from.
    """
    best = None
    for t in _tensors(others):
        found = _of_template(t.instance if isinstance(t.instance, Instance) else None, template)
        if found is not None and (best is None or found.index > best.index):
            best = found
    seen, queue, looked = set(), _tensors(state), 0
    while queue and looked < SEARCH_LIMIT:
        behind = []
        for t in queue:
            if id(t) in seen or looked >= SEARCH_LIMIT:
                continue
            seen.add(id(t))
            looked += 1
            found = _of_template(t.instance if isinstance(t.instance, Instance) else None, template)
            if found is not None:
                if best is None or found.index > best.index:
                    best = found
            else:  # made between steps: look behind it
                behind.extend(t.parents)
        queue = behind
    if best is None:
        return Run(template.template_name, template), 0
    return best.run, best.index + 1
