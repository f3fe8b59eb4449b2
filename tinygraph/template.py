"""Graph templates: a piece of graph defined once over shared parameters,
instantiated once per call (once per time step when unrolled)."""
from __future__ import annotations

from .buffers import BufferPool  # noqa: F401  (re-exported: where it lived before)
from .config import STATE
from .instance import Instance, continued_run
from .nn.module import Module
from .structure import InstanceStructure, instance_structure  # noqa: F401


class Workspace:
    """What ``begin_unroll`` prepares for one unroll: ``inputs[t]`` is what step ``t``
    receives. A template's hooks may keep more on it (weights concatenated once,
    arrays from ``Template.buffers``); it lives exactly as long as the unroll needs it."""

    def __init__(self, inputs):
        self.inputs = inputs


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
    * ``begin_unroll(xs)``: runs once before the loop, outside any instance;
      may precompute work shared by all steps (e.g. the input projection of
      all T steps as one matmul). Returns either what step ``t`` receives as
      ``[t]`` (default: ``xs``), or a ``Workspace`` whose ``inputs[t]`` it is;
      a workspace is then passed to every ``step`` and to ``end_unroll``, so
      the template itself holds no per-unroll state.
    * ``step(x_t, state[, workspace]) -> (output, new_state)``: one time step;
      defaults to ``forward``.
    * ``end_unroll([workspace])``: runs after the loop, even when a step fails.

    Each template owns a ``BufferPool`` (``self.buffers``, see
    ``tinygraph.buffers``) for the big per-unroll arrays that the next unroll
    of a training loop may reuse; ``release_buffers()`` gives that memory back.

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
        """The nodes of one instance of this template in the graph of ``roots`` and the
        recurrent edges entering it (``tinygraph.structure.instance_structure``)."""
        return instance_structure(self, *roots)

    def initial_state(self, batch_size, dtype):
        raise ValueError(
            f"unroll: {self.template_name} defines no initial_state(batch_size, dtype); pass the initial state"
        )

    def begin_unroll(self, xs):
        return xs

    def step(self, x, state, workspace=None):
        return self.forward(x, state)

    def end_unroll(self, workspace=None):
        pass
