"""``unroll``: a template run once per time step over a time-major sequence (BPTT's forward)."""
from __future__ import annotations

from .config import STATE
from .errors import shape_str
from .instance import Instance, continued_run
from .template import Template, Workspace
from .tensor import Tensor, _as_operand, stack


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


def _same_shapes(state, new_state):
    """Whether two states that are each a Tensor or a flat tuple of Tensors have equal shapes."""
    if type(state) is Tensor:
        return type(new_state) is Tensor and new_state._data.shape == state._data.shape
    if type(state) is tuple and type(new_state) is tuple and len(state) == len(new_state):
        for a, b in zip(state, new_state):
            if type(a) is not Tensor or type(b) is not Tensor or a._data.shape != b._data.shape:
                return False
        return True
    return False


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

    (``begin_unroll``/``end_unroll`` wrap the loop, and a ``Workspace`` returned by
    ``begin_unroll`` is passed to each step; see ``Template``.)

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
    outputs : Tensor of shape (T, B, ...), or a tuple of them
        The per-step outputs, stacked (each one on its own when a step returns a tuple).
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
    prepared = template.begin_unroll(xs)
    workspace = prepared if isinstance(prepared, Workspace) else None
    per_step = prepared.inputs if workspace is not None else prepared
    extra = () if workspace is None else (workspace,)
    outputs = []
    previous_instance = STATE.instance
    try:
        for t in range(steps):
            # (instance_scope inlined: a context manager per step costs more than the step's bookkeeping)
            STATE.instance = Instance(run, start + t, previous_instance)
            try:
                result = template.step(per_step[t], state, *extra)
            finally:
                STATE.instance = previous_instance
            output, state = _checked_step(name, t, result, state)
            outputs.append(output)
    finally:
        template.end_unroll(*extra)
    if isinstance(outputs[0], tuple):  # several outputs per step: each stacked on its own
        return tuple(stack([o[k] for o in outputs], axis=0) for k in range(len(outputs[0]))), state
    return stack(outputs, axis=0), state


def _checked_step(name, t, result, state):
    """``(output, new_state)`` of step ``t``, or a clear error naming the step."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"unroll: {name}.step must return (output, new_state), got {type(result).__name__} at step {t}")
    output, new_state = result
    if type(output) is Tensor and _same_shapes(state, new_state):  # the common case, checked cheaply
        return output, new_state
    before, after = _state_shapes(state), _state_shapes(new_state)
    if before != after:
        raise ValueError(f"unroll: {name} at step {t} returned a state of shape(s) {after}, "
                         f"but received a state of shape(s) {before}; the state must keep its shape")
    if not (isinstance(output, Tensor) or isinstance(output, tuple) and output
            and all(isinstance(o, Tensor) for o in output)):
        raise TypeError(f"unroll: {name} at step {t} returned an output of type "
                        f"{type(output).__name__}, expected a Tensor or a tuple of Tensors")
    return output, new_state
