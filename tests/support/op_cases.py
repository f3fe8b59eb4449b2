"""Hypothesis strategies that draw valid inputs for any op in ``tinygraph.OPS``, by its ``kind``.

Adding an op of an existing kind needs nothing here: the table-driven tests
pick it up. An op of a new kind fails ``test_every_op_kind_has_a_strategy``
until a strategy is added below.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def values(rng, shape, domain):
    """Float64 values where finite differences of the op are well defined."""
    if domain == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    if domain == "away_from_zero":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)
    if domain == "distinct":
        # Distinct values spaced 0.1 apart, so an eps of 1e-6 never changes which is largest.
        n = int(np.prod(shape)) if shape else 1
        return (rng.permutation(n) * 0.1 - 0.05 * n).reshape(shape)
    return rng.normal(size=shape)


seeds = st.integers(0, 2**32 - 1)
small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


@st.composite
def unary(draw, op):
    rng = np.random.default_rng(draw(seeds))
    return [values(rng, draw(small_shapes), op.domain)], {}


@st.composite
def binary(draw, op):
    rng = np.random.default_rng(draw(seeds))
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)).input_shapes
    a = rng.normal(size=shapes[0])
    b = rng.normal(size=shapes[1])
    if op.domain == "away_from_zero":  # the second operand (a divisor)
        b = values(rng, shapes[1], "away_from_zero")
    elif op.domain == "positive":  # the first operand (a base)
        a = values(rng, shapes[0], "positive")
    elif op.domain == "distinct":  # the two operands never tie
        a = rng.integers(-5, 5, size=shapes[0]) * 0.3
        b = rng.integers(-5, 5, size=shapes[1]) * 0.3 + 0.15
    return [a, b], {}


@st.composite
def reduce(draw, op):
    rng = np.random.default_rng(draw(seeds))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    ndim = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
    ))
    from tinygraph.ops import normalize_axis

    axis = normalize_axis(op.name, axis, ndim, shape)
    return [values(rng, shape, op.domain)], {"axis": axis, "keepdims": draw(st.booleans())}


@st.composite
def matmul(draw, op):
    rng = np.random.default_rng(draw(seeds))
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3)).input_shapes
    a_shape = draw(st.sampled_from([(k,), batch[0] + (m, k)]))
    b_shape = draw(st.sampled_from([(k,), batch[1] + (k, n)]))
    return [rng.normal(size=a_shape), rng.normal(size=b_shape)], {}


@st.composite
def reshape(draw, op):
    rng = np.random.default_rng(draw(seeds))
    shape = draw(small_shapes)
    size = int(np.prod(shape))
    target = draw(st.sampled_from([(size,), (-1,), tuple(reversed(shape)), (1, size), (size, 1)]))
    return [rng.normal(size=shape)], {"shape": target}


@st.composite
def transpose(draw, op):
    rng = np.random.default_rng(draw(seeds))
    shape = draw(small_shapes)
    axes = tuple(draw(st.permutations(range(len(shape)))))
    return [rng.normal(size=shape)], {"axes": axes}


@st.composite
def index(draw, op):
    rng = np.random.default_rng(draw(seeds))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    kind = draw(st.sampled_from(["int", "slice", "array", "array_pair", "mixed", "bool"]))
    if kind == "int":
        idx = int(draw(st.integers(-shape[0], shape[0] - 1)))
    elif kind == "slice":
        idx = (slice(draw(st.integers(0, shape[0] - 1)), None, draw(st.integers(1, 2))),)
    elif kind == "array":  # repeated indices must accumulate
        idx = rng.integers(0, shape[0], size=draw(st.integers(1, 6)))
    elif kind == "array_pair" and len(shape) >= 2:
        rows = rng.integers(0, shape[0], size=5)
        idx = (rows, rng.integers(0, shape[1], size=5))
    elif kind == "bool":
        idx = rng.random(shape[0]) > 0.4
    else:
        idx = (slice(None), Ellipsis) if len(shape) < 2 else (slice(None), rng.integers(0, shape[1], size=3))
    return [rng.normal(size=shape)], {"index": idx}


@st.composite
def join(draw, op):
    rng = np.random.default_rng(draw(seeds))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    count = draw(st.integers(1, 4))
    if op.name == "stack":
        axis = draw(st.integers(-len(shape) - 1, len(shape)))
        shapes = [shape] * count
    else:
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        shapes = []
        for _ in range(count):
            s = list(shape)
            s[axis] = draw(st.integers(1, 3))
            shapes.append(tuple(s))
    return [rng.normal(size=s) for s in shapes], {"axis": axis}


@st.composite
def lstm(draw, op):
    """The fused LSTM step: x_proj (..., 4H), h (..., K), W_h (K, 4H) and cell state c (..., H)."""
    rng = np.random.default_rng(draw(seeds))
    H, K = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    lead = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=2, max_side=3)).input_shapes
    return [rng.normal(size=lead[0] + (4 * H,)), rng.normal(size=lead[1] + (K,)),
            rng.normal(size=(K, 4 * H)), rng.normal(size=lead[2] + (H,))], {}


@st.composite
def gru(draw, op):
    """The fused GRU step: x_proj (..., 3H) (gates n, r, z), h (..., H), W_h (H, 3H) (gates r, z, n), b_hn (H,)."""
    rng = np.random.default_rng(draw(seeds))
    H = draw(st.integers(1, 3))
    lead = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3)).input_shapes
    return [rng.normal(size=lead[0] + (3 * H,)), rng.normal(size=lead[1] + (H,)),
            rng.normal(size=(H, 3 * H)), rng.normal(size=(H,))], {}


@st.composite
def rnn(draw, op):
    """The fused Elman step: x_proj (..., H), h (..., K), W_h (K, H), nonlinearity tanh or relu.
    For relu, x_proj keeps every pre-activation 0.1 or more away from the kink at 0."""
    rng = np.random.default_rng(draw(seeds))
    H, K = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    lead = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3)).input_shapes
    x_proj, h, W_h = rng.normal(size=lead[0] + (H,)), rng.normal(size=lead[1] + (K,)), rng.normal(size=(K, H))
    nonlinearity = draw(st.sampled_from(["tanh", "relu"]))
    if nonlinearity == "relu":
        z = x_proj + h @ W_h  # (x_proj takes the broadcast shape if it had fewer leading axes)
        x_proj = x_proj + np.where(np.abs(z) < 0.1, np.where(z < 0, -0.2, 0.2), 0.0)
    return [x_proj, h, W_h], {"nonlinearity": nonlinearity}


@st.composite
def where(draw, op):
    """Two broadcastable operands and a boolean condition broadcastable with both."""
    rng = np.random.default_rng(draw(seeds))
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3)).input_shapes
    return [rng.normal(size=shapes[0]), rng.normal(size=shapes[1])], {"cond": np.asarray(rng.random(shapes[2]) > 0.5)}


@st.composite
def clip(draw, op):
    """Values kept 0.1 away from the bounds, so finite differences never cross one."""
    rng = np.random.default_rng(draw(seeds))
    shape = draw(small_shapes)
    lo, hi = draw(st.sampled_from([(-0.5, 0.5), (None, 0.0), (0.0, None), (-1.0, 1.0)]))
    x = rng.normal(size=shape)
    for bound in (lo, hi):
        if bound is not None:
            x = np.where(np.abs(x - bound) < 0.1, bound + 0.2, x)
    return [x], {"lo": lo, "hi": hi}


@st.composite
def softmax(draw, op):
    """An input of 1 to 3 axes and one axis to normalise over (negative ones included)."""
    rng = np.random.default_rng(draw(seeds))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return [rng.normal(size=shape) * 2], {"axis": axis}


@st.composite
def cross_entropy(draw, op):
    """Logits (..., C), integer targets (...), a keep mask or None (dropped rows hold an
    out-of-range target, which must never be read) and a reduction."""
    rng = np.random.default_rng(draw(seeds))
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4))
    num_classes = draw(st.integers(1, 5))
    logits = rng.normal(size=lead + (num_classes,)) * 2
    targets = rng.integers(0, num_classes, size=lead)
    keep = None
    if draw(st.booleans()):
        keep = np.asarray(rng.random(lead) < 0.7)
        targets = np.where(keep, targets, -100)
    return [logits], {"targets": targets, "keep": keep,
                      "reduction": draw(st.sampled_from(["mean", "sum", "none"]))}


STRATEGIES = {
    "softmax": softmax,
    "cross_entropy": cross_entropy,
    "where": where,
    "clip": clip,
    "unary": unary,
    "binary": binary,
    "reduce": reduce,
    "matmul": matmul,
    "reshape": reshape,
    "transpose": transpose,
    "index": index,
    "join": join,
    "lstm": lstm,
    "gru": gru,
    "rnn": rnn,
}
