"""Backpropagation-through-time tools: truncated BPTT, gradient flow through time,
Jacobian-product norms (vanishing/exploding diagnostics) and a clipped training step.

BPTT itself is nothing special here: it is the engine's ordinary backward pass
over the unrolled graph. These helpers organise it (chunks, detached states,
clipping) and read gradient flow back out of the graph.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from tinygraph import Graph, Tensor
from tinygraph.autograd import unbroadcast
from tinygraph.check import scratch_free
from tinygraph.ops import dense
from tinygraph.optim import clip_grad_norm_

from ._cell import shape_text


def detach_state(state):
    """``state`` (a Tensor or nested tuples/lists of Tensors) with every tensor detached:
    same values, cut off from the graph that made them."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    if state is None:
        return None
    raise TypeError(f"detach_state: expected a Tensor or a tuple/list of Tensors, got {type(state).__name__}")


def grad_norm(params):
    """The joint 2-norm of the ``.grad`` of ``params`` (parameters without one count as zero)."""
    total = 0.0
    for p in params:
        if p.grad is not None:
            total += float(np.sum(np.square(p.grad, dtype=np.float64)))
    return float(np.sqrt(total))


class StepResult(NamedTuple):
    loss: float
    grad_norm: float  # before clipping
    state: object  # the final state, detached


def train_step(model, xs, targets, loss_fn, optimizer=None, max_norm=None, state=None, params=None):
    """One step of full BPTT: forward over ``xs``, backward, clip, update.

    Parameters
    ----------
    model : callable
        ``model(xs, state) -> (outputs, final_state)``, e.g. ``models.LSTM``.
    xs : Tensor or array (T, B, ...)
    targets : anything ``loss_fn`` accepts, or None
    loss_fn : callable
        ``loss_fn(outputs, targets) -> one-element Tensor`` (``loss_fn(outputs)``
        when ``targets`` is None).
    optimizer : object with ``step()`` and ``zero_grad()``, optional
        Without one, gradients are left (accumulated) in ``.grad``.
    max_norm : float, optional
        Clip the joint gradient norm to this (``tinygraph.optim.clip_grad_norm_``)
        before the update.
    state : optional
        Initial state (detached before use).
    params : list of Tensor, optional
        What to clip and measure; defaults to ``model.parameters()``.

    Returns
    -------
    StepResult(loss, grad_norm, state)
        ``grad_norm`` is measured before clipping; ``state`` is the final state, detached.
    """
    params = _params(model, params, "train_step")
    if optimizer is not None:
        optimizer.zero_grad()
    outputs, final = model(xs, detach_state(state))
    loss = loss_fn(outputs) if targets is None else loss_fn(outputs, targets)
    if not isinstance(loss, Tensor) or loss.data.size != 1:
        raise ValueError(f"train_step: loss_fn must return a one-element Tensor, got {type(loss).__name__}"
                         + (f" of shape {shape_text(loss.shape)}" if isinstance(loss, Tensor) else ""))
    loss.backward()
    if max_norm is not None:
        norm = float(clip_grad_norm_(params, max_norm))
    else:
        norm = grad_norm(params)
    if optimizer is not None:
        optimizer.step()
    return StepResult(loss.item(), norm, detach_state(final))


class TBPTTResult(NamedTuple):
    losses: list  # one float per chunk
    grad_norms: list  # one float per chunk, before clipping
    state: object  # the state after the last chunk, detached


def truncated_bptt(model, xs, targets, loss_fn, k, optimizer=None, max_norm=None, state=None, params=None):
    """Truncated BPTT over a long sequence: chunks of ``k`` steps, state carried detached.

    For each chunk ``xs[s:s+k]`` the model starts from the previous chunk's
    final state *detached* (its value carries over, gradients stop at the
    chunk boundary), runs forward, back-propagates the chunk's loss, clips
    and updates (``train_step``). Gradients therefore flow at most ``k``
    steps back, and memory holds one chunk's graph at a time.

    Parameters
    ----------
    model, loss_fn, optimizer, max_norm, params
        As in ``train_step``.
    xs : Tensor or array (T, B, ...)
        The whole sequence, time-major.
    targets : array-like or Tensor with first axis T, or None
        Sliced like ``xs`` for each chunk.
    k : int
        Chunk length (the truncation). The last chunk may be shorter.
    state : optional
        Initial state.

    Returns
    -------
    TBPTTResult(losses, grad_norms, state)
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k <= 0:
        raise ValueError(f"truncated_bptt: k (steps per chunk) must be a positive integer, got {k!r}")
    if not isinstance(xs, Tensor):
        xs = np.asarray(xs)  # chunks stay arrays: the model converts them (e.g. to its parameters' dtype)
    if xs.ndim < 2:
        raise ValueError(f"truncated_bptt: xs must be time-major (T, B, ...), got shape {shape_text(xs.shape)}")
    T = xs.shape[0]
    if targets is not None and len(targets) != T:
        raise ValueError(f"truncated_bptt: targets have {len(targets)} steps but xs has T = {T}; "
                         f"they must match along the first axis")
    params = _params(model, params, "truncated_bptt")
    losses, norms = [], []
    for start in range(0, T, int(k)):
        stop = min(start + int(k), T)
        chunk_targets = None if targets is None else targets[start:stop]
        result = train_step(model, xs[start:stop], chunk_targets, loss_fn, optimizer=optimizer,
                            max_norm=max_norm, state=state, params=params)
        losses.append(result.loss)
        norms.append(result.grad_norm)
        state = result.state
    return TBPTTResult(losses, norms, state)


def _params(model, params, where):
    if params is not None:
        return list(params)
    if hasattr(model, "parameters"):
        return list(model.parameters())
    raise TypeError(f"{where}: the model has no parameters(); pass params=[...]")


# ---------------------------------------------------------------------------
# Reading gradient flow out of the graph
# ---------------------------------------------------------------------------
def step_outputs(outputs):
    """The per-step output tensors ``[y_0, ..., y_{T-1}]`` (steps t = 0..T-1) of an unrolled template.

    ``tinygraph.unroll`` stacks the outputs of the T instances; this finds
    that stack in the graph of ``outputs`` (the last one, so for a stacked
    model the top layer, and through an output layer) and returns its inputs.
    For RNN/LSTM/GRU cells the step output *is* the hidden state ``h_t``.
    """
    if not isinstance(outputs, Tensor):
        raise TypeError(f"step_outputs: expected a Tensor, got {type(outputs).__name__}")
    for node in reversed(Graph(outputs).nodes):
        if node.op == "stack" and node.parents and all(p.instance is not None for p in node.parents):
            return list(node.parents)
    raise ValueError("step_outputs: no stacked template outputs in this graph "
                     "(expected the outputs of tinygraph.unroll or of a models.RNN/LSTM/GRU)")


class Contribution(NamedTuple):
    instance: object  # (template_name, t) of the node that used the tensor, or None outside templates
    node: Tensor  # the node that used it
    grad: np.ndarray  # that use's share of the tensor's gradient, shape of the tensor




# Ops that only move or rearrange values. A cell may pass a shared parameter
# through one of them outside the time steps (e.g. the LSTM concatenates its
# gate matrices once per unroll); the per-step uses are then found behind it.
_PLUMBING = frozenset({"concat", "stack", "reshape", "transpose", "index"})


def grad_contributions(loss, tensor):
    """Back-propagate ``loss`` and split ``dL/d tensor`` into one term per use of ``tensor``.

    A parameter shared by T time steps is used by T nodes of the unrolled
    graph, and its gradient is the sum of what each use contributes: the
    seed's sum over t of ``(dL/dz_t) (dz_t/dW)``, for the use ``z_t`` of ``W``
    at step t. This reads those terms from the graph: for every node that
    uses ``tensor``, that node's vector-Jacobian product with the gradient
    that reached it. Where ``tensor`` first passes through rearranging ops
    outside any time step (``concat``, ``reshape``, ...; the fused LSTM and
    GRU concatenate their per-gate matrices once per unroll), the uses behind
    them are the terms, mapped back through those ops' VJPs, so the recurrent
    matrices of every built-in cell split into one term per step. (Their
    input matrices are used once, by the batched input projection, so they
    give one term.) Call this *instead of* ``loss.backward()``: leaf
    gradients accumulate as usual.

    Parameters
    ----------
    loss : Tensor, one element
    tensor : Tensor
        Any tensor of the graph, e.g. ``rnn.cell.W_hh`` or ``lstm.cell.W_hf``.

    Returns
    -------
    list of Contribution(instance, node, grad)
        One per use, in graph order: ``instance`` is ``(template_name, t)`` of
        the using node (None outside templates), ``grad`` has the shape of
        ``tensor``; the terms sum to ``dL/d tensor``.
    """
    if not isinstance(loss, Tensor) or not isinstance(tensor, Tensor):
        raise TypeError("grad_contributions: loss and tensor must be Tensors")
    paths = _use_paths(loss, tensor, "grad_contributions")
    ends = list({id(n): n for path in paths for n in _outputs_of(path[-1]) if n is not None}.values())
    saved = [(n.retains_grad, n.grad) for n in ends]
    try:
        for n in ends:
            n.retain_grad()
            n.grad = None
        loss.backward()
        terms = []
        for path in paths:
            chain = (tensor,) + path  # chain[k] is an input of chain[k + 1]
            outs = _outputs_of(chain[-1])  # every output of a multi-output op: one use, one VJP
            g = outs[0].grad if len(outs) == 1 else tuple(None if o is None else o.grad for o in outs)
            if isinstance(g, tuple) and all(x is None for x in g):
                g = None
            for k in range(len(chain) - 1, 0, -1):
                if g is None:
                    break
                g = _vjp_into(chain[k], chain[k - 1], g)
            if g is None:
                g = np.zeros(tensor.shape, dtype=tensor.dtype)
            terms.append(Contribution(path[-1].instance, path[-1], g))
    finally:
        for n, (retain, grad) in zip(ends, saved):
            n.retain_grad(retain)
            n.grad = grad
    return terms


def _use_paths(loss, tensor, where):
    """Every path ``tensor -> plumbing ... -> node that really uses it`` in the graph of ``loss``,
    sorted by the using node's graph order (iteratively, no recursion; runs no backward)."""
    nodes = Graph(loss).nodes
    users = {}
    for n in nodes:
        for p in n.parents:
            users.setdefault(id(p), []).append(n)
    if id(tensor) not in users:
        raise ValueError(f"{where}: {tensor.name or 'the tensor'} of shape {shape_text(tensor.shape)} "
                         f"is not an input of any node in the graph of loss")
    # paths tensor -> plumbing ... -> the node that really uses it (iteratively, no recursion)
    paths, frontier = [], [(tensor, ())]
    while frontier:
        t, path = frontier.pop()
        for n in users.get(id(t), ()):
            if n.instance is None and n.op in _PLUMBING and id(n) in users:
                frontier.append((n, path + (n,)))
            else:
                paths.append(path + (n,))
    order = {id(n): k for k, n in enumerate(nodes)}
    paths.sort(key=lambda path: order[id(path[-1])])
    # the outputs of one multi-output op application are one use (its VJP runs once)
    seen, unique = set(), []
    for path in paths:
        key = tuple(id(n) for n in path[:-1]) + (id(_outputs_of(path[-1])[0]),)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _outputs_of(node):
    """The outputs of the op application that made ``node`` (just ``node`` for a one-output op;
    None for an output that no longer exists)."""
    fn = node.op_object
    if fn is None or fn.n_outputs == 1:
        return [node]
    return node._group.tensors()

def _vjp_into(node, parent, g):
    """The part of ``node``'s VJP with output gradient ``g`` that goes to its input ``parent``."""
    # the op's VJP, run by its registered instance: a node's own may own scratch of the graph
    fn = scratch_free(node.op_object)
    if fn.n_outputs == 1:
        in_grads = fn.vjp(g, node.data, *[p.data for p in node.parents], **node.attrs)
    else:  # a multi-output op (the fused LSTM step): ``g`` holds every output's gradient
        group = node._group
        gs = g if isinstance(g, tuple) else tuple(g if k == group.index(node) else None
                                                    for k in range(len(group.arrays)))
        in_grads = fn.vjp(gs, group.arrays, *[p.data for p in node.parents], **node.attrs)
    total = None
    for position, (p, pg) in enumerate(zip(node.parents, in_grads)):
        if p is parent and pg is not None:
            pg = unbroadcast(dense(pg), parent.shape, node.op, position)
            total = pg if total is None else total + pg
    return total


def grad_norms_through_time(loss, hs):
    """Back-propagate ``loss`` and return ``||dL/dh_t||`` for each tensor in ``hs``.

    ``dL/dh_t`` is the *total* gradient reaching ``h_t``: from its own output
    and, through the recurrence, from every later step (the seed's
    ``dL/dh_t = dL_t/dh_t + dL/dh_{t+1} dh_{t+1}/dh_t``). The tensors are
    marked with ``retain_grad()`` so backward keeps their gradients; call
    this *instead of* ``loss.backward()`` (parameter gradients accumulate as usual).

    Returns
    -------
    numpy.ndarray (len(hs),)
        Frobenius norm over batch and features; 0 where no gradient arrived.
    """
    hs = list(hs)
    for h in hs:
        if not isinstance(h, Tensor):
            raise TypeError(f"grad_norms_through_time: hs must be Tensors, got {type(h).__name__}")
        h.retain_grad()
        h.grad = None
    loss.backward()
    return np.array([0.0 if h.grad is None else float(np.linalg.norm(h.grad)) for h in hs])


def jacobian_norms(h_T, hs):
    """``||dh_T/dh_t||_F`` for each ``h_t`` in ``hs``: the Jacobian product of the seed,
    ``prod_{s=t+1..T} dh_s/dh_{s-1}``, measured on the graph.

    Batch rows are independent in a recurrent layer, so row ``j`` of every
    example's Jacobian comes out of one backward pass seeded with the unit
    vector ``e_j`` on all rows of ``h_T``; ``H`` passes give the whole
    Jacobians. Norms shrinking geometrically as ``t`` moves back from ``T`` are
    vanishing gradients, growing ones exploding gradients.

    Parameters
    ----------
    h_T : Tensor (B, H)
        The final hidden state (e.g. ``hs[-1]``).
    hs : list of Tensor (B, H')
        Earlier states in the graph of ``h_T`` (e.g. ``step_outputs(outputs)``).

    Returns
    -------
    numpy.ndarray (len(hs),)
        The Frobenius norm of the (H, H') Jacobian, averaged over the batch;
        ``sqrt(H)`` for ``h_T`` itself, 0 where ``h_t`` does not reach ``h_T``.

    Notes
    -----
    Leaves' ``.grad`` (parameters and inputs that require grad) and the
    ``hs``' own gradients and ``retain_grad`` marks are restored afterwards,
    so this can run between a backward pass and the optimizer step.
    """
    if not isinstance(h_T, Tensor) or h_T.ndim != 2:
        raise ValueError(f"jacobian_norms: h_T must be a (B, H) Tensor, got "
                         f"{shape_text(h_T.shape) if isinstance(h_T, Tensor) else type(h_T).__name__}")
    if not h_T.requires_grad:
        raise ValueError("jacobian_norms: h_T does not require grad, so no Jacobian can be read from its graph")
    hs = list(hs)
    B, H = h_T.shape
    # every leaf backward writes into (parameters and inputs that require grad), and the
    # states' own retain flags and gradients, are put back as they were afterwards
    leaves = Graph(h_T).parameters()
    saved = [leaf.grad for leaf in leaves]
    saved_states = [(h.retains_grad, h.grad) for h in hs]
    squares = np.zeros((len(hs), B))
    try:
        for h in hs:
            h.retain_grad()
        for j in range(H):
            for leaf in leaves:
                leaf.grad = None
            for h in hs:
                h.grad = None
            seed = np.zeros((B, H), dtype=h_T.dtype)
            seed[:, j] = 1.0
            h_T.backward(seed, retain_graph=True)  # one backward per Jacobian row
            for t, h in enumerate(hs):
                if h.grad is not None:
                    squares[t] += np.sum(np.square(h.grad.reshape(B, -1), dtype=np.float64), axis=1)
    finally:
        for leaf, grad in zip(leaves, saved):
            leaf.grad = grad
        for h, (retain, grad) in zip(hs, saved_states):
            h.retain_grad(retain)
            h.grad = grad
    return np.sqrt(squares).mean(axis=1)
