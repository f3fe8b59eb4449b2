"""The textbook build (``fused=False``): each step's instance holds exactly the seed's
equations, and nothing else sits outside the steps; it computes what the fused build computes."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models
from tinygraph.nn import Parameter
from tinygraph.unrolling import flatten_state

T, B, D, H = 4, 2, 3, 5

# Per step, counted from the equations in the cells' docstrings (and DESIGN.md "Drawing"):
#   RNN:  x_t W_xh, h_{t-1} W_hh (2 matmul); their sum, + b_h (2 add); tanh
#   LSTM: per gate i, f, g, o a matmul pair (8 matmul), two adds (8 add) and its nonlinearity
#         (3 sigmoid, 1 tanh); c_t = f c_{t-1} + i g (2 mul, 1 add); h_t = o tanh(c_t) (1 tanh, 1 mul)
#   GRU:  r, z: a matmul pair, two adds, sigmoid each; n: x_t W_xn + b_n + r (h_{t-1} W_hn + b_hn)
#         (2 matmul, 3 add, 1 mul, tanh); h_t = (1 - z) n + z h_{t-1} (1 sub, 2 mul, 1 add)
PER_STEP = {
    "rnn": {"matmul": 2, "add": 2, "tanh": 1},
    "lstm": {"matmul": 8, "add": 9, "sigmoid": 3, "tanh": 2, "mul": 3},
    "gru": {"matmul": 6, "add": 8, "sigmoid": 2, "tanh": 1, "mul": 3, "sub": 1},
}
CLASSES = {"rnn": models.RNN, "lstm": models.LSTM, "gru": models.GRU}
PLUMBING = {"reshape", "concat", "transpose", "index"}


def build(kind, fused, dtype=np.float64, requires_grad=False, **options):
    with tg.default_dtype(dtype):
        model = CLASSES[kind](D, H, fused=fused, rng=0, **options)
    x = tg.tensor(np.random.default_rng(1).normal(size=(T, B, D)).astype(dtype), name="x",
                  requires_grad=requires_grad)
    out, final = model(x)
    return model, x, out, final


@pytest.mark.parametrize("kind", sorted(PER_STEP))
def test_op_counts_are_exactly_the_equations(kind):
    _, _, out, _ = build(kind, fused=False)
    graph = tg.Graph(out)
    want = {op: n * T for op, n in PER_STEP[kind].items()}
    want["stack"] = 1  # the outputs, stacked once by unroll
    assert dict(graph.ops()) == want
    assert graph.instances() == {CLASSES[kind].cell_class.__name__: T}


@pytest.mark.parametrize("kind", sorted(PER_STEP))
@pytest.mark.parametrize("requires_grad", [False, True])
def test_nothing_outside_the_steps_but_parameters_inputs_selection_and_stack(kind, requires_grad):
    _, x, out, _ = build(kind, fused=False, requires_grad=requires_grad)
    loss = (out ** 2).mean()
    graph = tg.Graph(loss)
    assert not PLUMBING - {"index"} & set(graph.ops())
    for n in graph.nodes:
        if n.op is None:
            continue
        if n.instance is None:
            assert n.op in ("stack", "pow", "mean"), (n.op, n.name)  # the stack, and what the test computes
        elif n.op == "index":  # the per-step selection x[t], and nothing else is selected
            assert n.parents == (x,) and n.name == "x_t"
    # every step reads its own x_t (named from the equations)
    per_step = graph.by_instance()
    for t in range(T):
        names = {n.name for n in per_step[(CLASSES[kind].cell_class.__name__, t)]}
        assert {"x_t", "h_t", "x_t W_x" + ("h" if kind == "rnn" else {"lstm": "i", "gru": "r"}[kind])} <= names


@pytest.mark.parametrize("kind", sorted(PER_STEP))
def test_two_layers_and_an_output_layer_stay_inside_the_steps(kind):
    model, _, out, _ = build(kind, fused=False, num_layers=2, output_size=2)
    graph = tg.Graph(out)
    name = CLASSES[kind].cell_class.__name__
    assert graph.instances() == {name: T, f"{name}_1": T}
    ops = graph.ops()
    assert not PLUMBING & set(ops), ops  # layer 1 reads layer 0's h_t itself, no stack-and-select
    assert ops["stack"] == 1
    # y_t = h_t W_hy + b_y, one per step, inside the top layer's step
    ys = [n for n in graph.nodes if n.name == "y_t"]
    assert [y.instance for y in ys] == [(f"{name}_1", t) for t in range(T)]
    assert all(y.op == "add" and y.parents[0].op == "matmul" and y.parents[0].parents[1] is model.W_hy for y in ys)
    # the layer-1 step t reads h_t of layer 0, step t
    for t in range(T):
        reads = [n for n in graph.nodes if n.instance == (f"{name}_1", t) and n.op == "matmul"
                 and n.parents[1] is getattr(model.cell_1, "W_xh" if kind == "rnn" else "W_x" + "ifgo"[0]
                                             if kind == "lstm" else "W_xr")]
        assert len(reads) == 1 and reads[0].parents[0].instance == (name, t)
        assert reads[0].parents[0].name == "h_t"


@pytest.mark.parametrize("kind", sorted(PER_STEP))
@pytest.mark.parametrize("options", [{}, {"num_layers": 2, "output_size": 3}])
def test_textbook_and_fused_agree_in_values_and_gradients(kind, options):
    """float64, same weights: outputs, final states, parameter and input gradients agree."""
    results = []
    for fused in (True, False):
        model, x, out, final = build(kind, fused=fused, requires_grad=True, **options)
        G = np.random.default_rng(2).normal(size=out.shape)
        loss = (out * tg.tensor(G)).sum()
        finals = flatten_state(final)
        loss = loss + sum((s * s).sum() for s in finals)
        loss.backward()
        grads = {name: p.grad.copy() for name, p in model.named_parameters()}
        results.append((out.data, [s.data for s in finals], grads, x.grad.copy()))
    (out_a, fin_a, g_a, x_a), (out_b, fin_b, g_b, x_b) = results
    np.testing.assert_allclose(out_a, out_b, rtol=1e-12, atol=1e-13)
    for a, b in zip(fin_a, fin_b):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    assert g_a.keys() == g_b.keys()
    for name in g_a:
        np.testing.assert_allclose(g_a[name], g_b[name], rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(x_a, x_b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(PER_STEP))
def test_fused_stays_the_default_for_training(kind):
    model = CLASSES[kind](D, H)
    assert all(cell.fused for cell in model.cells)
    ops = tg.Graph(model(np.ones((T, B, D)))[0]).ops()
    assert ops["matmul"] < PER_STEP[kind]["matmul"] * T  # the inputs are projected once, not per step


@pytest.mark.parametrize("kind", sorted(PER_STEP))
def test_textbook_recurrent_weight_splits_into_one_term_per_step(kind):
    model, _, out, _ = build(kind, fused=False)
    W = model.cell.W_hh if kind == "rnn" else model.cell.W_hf if kind == "lstm" else model.cell.W_hz
    terms = models.grad_contributions((out ** 2).sum(), W)
    name = CLASSES[kind].cell_class.__name__
    assert [c.instance for c in terms] == [(name, t) for t in range(T)]
    np.testing.assert_allclose(sum(c.grad for c in terms), W.grad, rtol=1e-12)


def test_fused_must_be_a_bool():
    with pytest.raises(TypeError, match="fused must be True or False"):
        models.RNNCell(2, 3, fused="no")
    assert isinstance(models.RNNCell(2, 3, fused=False).W_hh, Parameter)
