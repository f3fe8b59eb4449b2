"""Graph templates: a piece of graph defined once over shared parameters,
instantiated once per call (once per time step when unrolled)."""
from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np

from .config import STATE
from .errors import shape_str
from .instance import Instance, continued_run
from .nn.module import Module
from .tensor import Tensor, _as_operand, stack


def _refcount(arrays, k):
    return sys.getrefcount(arrays[k])


# What ``_refcount`` reports for an array referenced only by its list slot (measured,
# so that it holds whatever the interpreter counts for the call's own references).
_ONLY_THE_POOL = _refcount([np.empty(1)], 0)


class BufferPool:
    """Large arrays reused from one call to the next, but only when nothing else refers to them.

    A training loop unrolls the same template over same-shaped batches again
    and again. Allocating the big per-unroll arrays afresh each time costs more
    than the arithmetic on them: freed blocks of that size go back to the OS
    and come back as fresh pages to fault in. A pool hands the same arrays out
    again instead, under one rule that keeps it safe: ``get`` returns an array
    only if the pool holds the *only* reference to it. Every numpy view keeps a
    reference to the array that owns its memory, so any tensor still alive
    from an earlier graph whose data lives in a pooled array (an output, a
    state, a gate block, a node that keeps a slot as an attribute) keeps that
    array out of reuse; ``get`` then allocates a new one. It never copies data
    and never returns an array that something else can still see.

    Arrays are returned uninitialised (like ``numpy.empty``): the caller
    overwrites them. At most ``keep`` arrays are kept per key (2 covers the
    usual loop that still holds the previous step's loss while building the
    next graph). The pool keeps its arrays alive between calls: ``clear()``
    (or ``Template.release_buffers()``) gives the memory back.
    """

    def __init__(self, keep=2):
        self.keep = int(keep)
        self._arrays = {}

    def get(self, key, shape, dtype):
        """An array of ``shape`` and ``dtype`` for ``key`` that nothing outside the pool refers to."""
        shape, dtype = tuple(shape), np.dtype(dtype)
        arrays = self._arrays.setdefault(key, [])
        for k in range(len(arrays)):
            if _refcount(arrays, k) <= _ONLY_THE_POOL and arrays[k].shape == shape and arrays[k].dtype == dtype:
                return arrays[k]
        array = np.empty(shape, dtype=dtype)
        if len(arrays) >= self.keep:
            # forget one, preferring an array of another shape (the pool only drops its reference)
            stale = [k for k in range(len(arrays)) if arrays[k].shape != shape or arrays[k].dtype != dtype]
            del arrays[stale[0] if stale else 0]
        arrays.append(array)
        return array

    def in_use(self, array):
        """Whether something outside the pool refers to ``array`` (one of the pool's arrays)."""
        for arrays in self._arrays.values():
            for k in range(len(arrays)):
                if arrays[k] is array:
                    return _refcount(arrays, k) > _ONLY_THE_POOL
        raise ValueError("in_use: not an array of this pool")

    @property
    def nbytes(self):
        """Bytes held by the pool's arrays."""
        return sum(a.nbytes for arrays in self._arrays.values() for a in arrays)

    def clear(self):
        """Forget every array (they are freed once nothing else refers to them)."""
        self._arrays.clear()

    def __repr__(self):
        return f"BufferPool({sum(len(a) for a in self._arrays.values())} arrays, {self.nbytes / 2**20:.1f} MiB)"


class Template(Module):
    """Base class of graph templates, e.g. a recurrent cell.

    A subclass defines ``forward(x, state) -> (output, new_state)`` over its
    Parameters. Each call is one *instance* (a ``tinygraph.instance.Instance``):
    every tensor made inside it gets ``Tensor.instance``, which compares equal
    to ``(template_name, index)``, so the graph knows which nodes belong to
    which time step (``Graph.instances()``, drawing clusters, the folded
    drawing). Instances have identity: two calls are two instances even when
    their names and indices agree. Under ``unroll`` ``index`` is the time step.
    Called directly, a call whose state (the last argument, or ``state=``)
    was made by step ``k`` of this template, directly or through a few ops
    (``h * mask``), or whose other arguments were, is step ``k + 1`` of the
    same run; any other direct call starts a new run at index 0. A template called inside
    another template's call records the enclosing instance as ``parent``.

    Hooks used by ``unroll`` (all optional):

    * ``initial_state(batch_size, dtype)``: the state when none is given.
    * ``begin_unroll(xs) -> per_step_inputs``: runs once before the loop,
      outside any instance; may precompute work shared by all steps (e.g. the
      input projection of all T steps as one matmul) and return a ``(T, ...)``
      tensor whose ``[t]`` is what ``step`` receives.
    * ``step(x_t, state) -> (output, new_state)``: one time step; defaults to
      ``forward``.
    * ``end_unroll()``: drop whatever ``begin_unroll`` cached.

    Each template owns a ``BufferPool`` (``self.buffers``) in which hooks may
    keep the big per-unroll arrays (e.g. one workspace for the T steps'
    outputs) so that the next unroll of a training loop reuses them; an array
    is reused only when no tensor of an earlier graph still refers to it.
    ``release_buffers()`` gives that memory back.

    Parameters
    ----------
    name : str, optional
        ``template_name`` used in ``Tensor.instance``; defaults to the class name.
    """

    def __init__(self, name=None):
        super().__init__()
        object.__setattr__(self, "template_name", name or type(self).__name__)
        object.__setattr__(self, "buffers", BufferPool())

    def release_buffers(self):
        """Drop the arrays this template keeps for reuse across unrolls (see ``BufferPool``)."""
        self.buffers.clear()

    def __call__(self, *args, **kwargs):
        # ``forward(x, state)``: the state is the last argument (or ``state=``)
        if "state" in kwargs:
            state, others = kwargs["state"], (args, [v for k, v in kwargs.items() if k != "state"])
        elif len(args) >= 2:
            state, others = args[-1], (args[:-1], list(kwargs.values()))
        else:
            state, others = (args, list(kwargs.values())), ()
        run, index = continued_run(self, state, others)
        previous = STATE.instance
        STATE.instance = Instance(run, index, previous)
        try:
            return self.forward(*args, **kwargs)
        finally:
            STATE.instance = previous

    def structure(self, *roots):
        """The structure of one instance of this template in the graph of ``roots``.

        Returns an ``InstanceStructure``: the nodes of one instance (the second
        step of the first run of this template in the graph that has two, or
        the first step when no run has; with the nodes of templates called
        inside it), and the
        recurrent state edges, i.e. the edges from the previous instance of
        the same run into this one as ``(producer, consumer)`` pairs. Every
        instance of an unrolled template has the same structure; this is what
        a folded drawing shows once, with the recurrent edges drawn back into it.
        """
        from .graph import Graph

        nodes_of = {}  # instance of this template -> its nodes (nested calls included)
        for n in Graph(*roots).nodes:
            inst = n.instance
            while inst is not None:
                if inst.belongs_to(self):
                    nodes_of.setdefault(inst, []).append(n)
                    break
                inst = inst.parent
        if not nodes_of:
            raise ValueError(f"structure: no instance of {self.template_name} in this graph")
        runs = {}  # run -> its instances, runs in graph order
        for inst in nodes_of:
            runs.setdefault(inst.run, []).append(inst)
        # the first run with a step 1 (so that the recurrent edges show), else the first run
        steps = next((s for s in runs.values() if len(s) > 1), next(iter(runs.values())))
        steps = sorted(steps, key=lambda inst: inst.index)
        chosen = steps[1] if len(steps) > 1 else steps[0]
        previous = {inst for inst in steps if inst.index == chosen.index - 1}
        nodes = nodes_of[chosen]

        def made_in_previous(p):
            inst = p.instance
            while inst is not None:
                if inst in previous:
                    return True
                inst = inst.parent
            return False

        recurrent = [(p, n) for n in nodes for p in n.parents if made_in_previous(p)]
        return InstanceStructure(self.template_name, chosen.index, nodes, recurrent)

    def initial_state(self, batch_size, dtype):
        raise ValueError(
            f"unroll: {self.template_name} defines no initial_state(batch_size, dtype); pass the initial state"
        )

    def begin_unroll(self, xs):
        return xs

    def step(self, x, state):
        return self.forward(x, state)

    def end_unroll(self):
        pass


class InstanceStructure(NamedTuple):
    """One instance of a template: its nodes and the recurrent edges entering it."""

    template_name: str
    index: int
    nodes: list  # the instance's tensors, in topological order
    recurrent_edges: list  # (tensor of instance index-1, tensor of this instance that reads it)


def flatten_state(state):
    """The tensors of a state (a Tensor or nested tuples/lists of Tensors), in order."""
    out, stack_ = [], [state]
    while stack_:
        item = stack_.pop()
        if isinstance(item, (tuple, list)):
            stack_.extend(reversed(item))
        else:
            out.append(item)
    return out


def _state_shapes(state):
    # Fast paths for the common states (a Tensor, or a flat tuple of Tensors): this
    # runs twice per time step.
    if type(state) is Tensor:
        return [state.data.shape]
    if type(state) is tuple and all(type(s) is Tensor for s in state):
        return [s.data.shape for s in state]
    return [getattr(s, "shape", type(s).__name__) for s in flatten_state(state)]


def unroll(template, xs, state=None):
    """Run ``template`` once per time step over a time-major sequence.

    Reference semantics (the recorded graph has one template instance per step)::

        def unroll(template, xs, state):
            run, start = continued_run(template, state)   # new run at 0, or k + 1: see below
            outputs = []
            for t in range(xs.shape[0]):
                with a new instance (run, index start + t):
                    y, state = template.step(xs[t], state)
                outputs.append(y)
            return stack(outputs, axis=0), state

    (``begin_unroll``/``end_unroll`` wrap the loop; see ``Template``.)

    The instance index is the time step. A fresh unroll starts a new *run*
    and counts from 0. An unroll that continues from a state made by step
    ``k`` of this template, e.g. a sequence fed in pieces without detaching
    the state, or a decoder generating one step per call, continues that run
    from ``k + 1``. Every step is its own instance (``Tensor.instance``
    compares equal to ``(template_name, t)`` but is an object with identity):
    two unrolls of one template from fresh states that meet in one graph (a
    siamese encoder over two sequences) are two runs whose steps are counted,
    grouped and drawn separately, even though both count from 0.

    Parameters
    ----------
    template : Template
    xs : Tensor or array of shape (T, B, features...)
        Inputs, time first, at least 3-D.
    state : Tensor, tuple of Tensors, or None
        Initial state; ``None`` asks ``template.initial_state(B, dtype)``.

    Returns
    -------
    outputs : Tensor of shape (T, B, ...)
        The per-step outputs, stacked.
    final_state
        The state after the last step, same structure as ``state``.

    Raises
    ------
    ValueError
        If ``xs`` has fewer than 3 dimensions or no steps, or a step returns a
        state whose shapes differ from the state it received (naming the step).
    """
    if not isinstance(template, Template):
        raise TypeError(f"unroll: expected a tinygraph.Template, got {type(template).__name__}")
    xs = _as_operand(xs, STATE.default_dtype, "unroll")
    if xs.ndim < 3:
        # A 2-D (T, D) or (T, B) array is ambiguous (one sequence, or scalar features?):
        # refuse it rather than guess which axis is the batch.
        raise ValueError(
            f"unroll: xs must be time-major with at least 3 dimensions (T, B, features...), got shape "
            f"{shape_str(xs.shape)}; add the missing axis (x[:, None] for one sequence, x[..., None] "
            f"for scalar features)"
        )
    steps = xs.shape[0]
    if steps == 0:
        raise ValueError("unroll: xs has no time steps (T = 0)")
    if state is None:
        state = template.initial_state(xs.shape[1], xs.dtype)
    name = template.template_name
    run, start = continued_run(template, state)
    per_step = template.begin_unroll(xs)
    outputs = []
    previous_instance = STATE.instance
    try:
        for t in range(steps):
            # (instance_scope inlined: a context manager per step costs more than the step's bookkeeping)
            STATE.instance = Instance(run, start + t, previous_instance)
            try:
                result = template.step(per_step[t], state)
            finally:
                STATE.instance = previous_instance
            if not (isinstance(result, tuple) and len(result) == 2):
                raise TypeError(
                    f"unroll: {name}.step must return (output, new_state), got {type(result).__name__} at step {t}"
                )
            output, new_state = result
            before, after = _state_shapes(state), _state_shapes(new_state)
            if before != after:
                raise ValueError(
                    f"unroll: {name} at step {t} returned a state of shape(s) {after}, "
                    f"but received a state of shape(s) {before}; the state must keep its shape"
                )
            if not isinstance(output, Tensor):
                raise TypeError(f"unroll: {name} at step {t} returned an output of type "
                                f"{type(output).__name__}, expected a Tensor")
            outputs.append(output)
            state = new_state
    finally:
        template.end_unroll()
    return stack(outputs, axis=0), state
