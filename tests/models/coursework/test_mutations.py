"""Typical student mistakes, injected into the solution notebooks' code: the grader must name the
exact gate, time step and parameter of each.

The mutations run against the grader's checks in-process (no kernel), so they are fast.
"""
import pytest

from tinygraph.models import coursework

from .solutions import namespace


def feedback(assignment, exercise, mutate):
    ns = namespace(assignment, mutate=mutate)
    results = {f.exercise: f for f in coursework.grade_namespace(assignment, ns)}
    return results[exercise]


def test_forget_and_input_gates_swapped():
    f = feedback("04_lstm", "lstm_step_forward", (
        'i = sigmoid(x @ p["W_xi"] + h_prev @ p["W_hi"] + p["b_i"])\n'
        '    f = sigmoid(x @ p["W_xf"] + h_prev @ p["W_hf"] + p["b_f"])',
        'i = sigmoid(x @ p["W_xf"] + h_prev @ p["W_hf"] + p["b_f"])\n'
        '    f = sigmoid(x @ p["W_xi"] + h_prev @ p["W_hi"] + p["b_i"])'))
    assert f.status == coursework.FAILED
    assert f.message.startswith("lstm_step_forward: gate i (input) wrong")
    assert "it holds gate f's values (forget gate)" in f.message
    assert "forget and input gates swapped" in f.message


def test_dh_next_dropped_is_wrong_only_before_the_last_step():
    f = feedback("02_rnn_bptt", "rnn_backward", (
        "rnn_step_backward(dhs[t] + dh_next, xs[t]", "rnn_step_backward(dhs[t], xs[t]"))
    assert f.status == coursework.FAILED
    # T=5: the last step t=4 is right, t=3 is the latest wrong one
    assert "rnn_backward: dxs wrong at t=3 (T=5;" in f.message
    assert "wrong at t=0..3)" in f.message
    assert "dh_next" in f.message


def test_tanh_derivative_where_the_sigmoid_derivative_belongs():
    f = feedback("04_lstm", "lstm_step_backward", (
        '"f": dc * c_prev * f * (1.0 - f),', '"f": dc * c_prev * (1.0 - f ** 2),'))
    assert f.status == coursework.FAILED
    assert f.message.startswith("lstm_step_backward: gate f (forget) wrong: dW_xf, dW_hf, db_f")
    assert "uses tanh' = 1 - s**2 where sigmoid's derivative belongs" in f.message
    # the other gates are right, so they are not named
    for other in ("dW_xi", "dW_xg", "dW_xo", "gate i", "gate o"):
        assert other not in f.message


def test_W_hh_transposed():
    f = feedback("02_rnn_bptt", "rnn_step_forward", (
        "np.tanh(x @ W_xh + h_prev @ W_hh + b_h)", "np.tanh(x @ W_xh + h_prev @ W_hh.T + b_h)"))
    assert f.status == coursework.FAILED
    assert "parameter W_hh" in f.message and "W_hh is used transposed" in f.message
    # the sequence forward, built on the step, names the same parameter at the first step
    g = feedback("02_rnn_bptt", "rnn_forward", (
        "np.tanh(x @ W_xh + h_prev @ W_hh + b_h)", "np.tanh(x @ W_xh + h_prev @ W_hh.T + b_h)"))
    assert g.message.startswith("rnn_forward: h wrong from t=0 on")
    assert "parameter W_hh" in g.message and "transposed" in g.message


def test_dW_hh_from_the_last_step_only():
    f = feedback("02_rnn_bptt", "rnn_backward", ("        dW_hh += dWh\n", "        dW_hh = dWh\n"))
    assert f.status == coursework.FAILED
    # the loop runs backwards, so `=` keeps the contribution of t=0; name exactly what is kept and missing
    assert f.message.startswith("rnn_backward: parameter W_hh: dW_hh wrong")
    assert "it holds the contributions of t=0 only, those of t=1..4 are missing" in f.message
    assert "sum over time" in f.message


def test_dW_hh_from_the_last_time_step_only():
    """The literal mistake: only the final step's term (t = T-1) is accumulated."""
    f = feedback("02_rnn_bptt", "rnn_backward", (
        "        dW_hh += dWh\n", "        dW_hh += dWh if t == len(xs) - 1 else 0\n"))
    assert f.message.startswith("rnn_backward: parameter W_hh: dW_hh wrong")
    assert "it holds the contributions of t=4 only, those of t=0..3 are missing" in f.message


def test_clipping_per_parameter_instead_of_globally():
    f = feedback("03_vanishing_exploding", "clip_grad_norm", (
        "    total = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))\n"
        "    scale = min(1.0, max_norm / (total + 1e-12))\n"
        "    return {name: g * scale for name, g in grads.items()}, total",
        "    total = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))\n"
        "    return {name: g * min(1.0, max_norm / np.linalg.norm(g)) for name, g in grads.items()}, total"))
    assert f.status == coursework.FAILED
    assert f.message.startswith("clip_grad_norm: parameter W_xh scaled by")
    assert "clipped per parameter" in f.message


@pytest.mark.parametrize("assignment,exercise,mutate,expected", [
    ("02_rnn_bptt", "rnn_step_backward", ("dW_hh = h_prev.T @ da", "dW_hh = da.T @ h_prev"),
     "rnn_step_backward: dW_hh wrong"),
    ("02_rnn_bptt", "rnn_forward", ("h = rnn_step_forward(x, h, W_xh", "h = rnn_step_forward(x, h0, W_xh"),
     "rnn_forward: h wrong from t=1 on"),
    ("02_rnn_bptt", "rnn_forward", ("h = rnn_step_forward(x, h, W_xh", "h = rnn_step_forward(x, h0, W_xh"),
     "every step starts from h0: the state is not carried on"),
    ("02_rnn_bptt", "rnn_forward", ("    hs, h = [], h0\n", "    hs, h = [h0], h0\n"),
     "rnn_forward: hs has shape (6, 3, 5), expected (5, 3, 5)"),
    ("02_rnn_bptt", "rnn_step_backward", ("da = dh * (1.0 - h * h)", "da = dh * (1.0 - h)"),
     "rnn_step_backward: dx wrong"),
    ("03_vanishing_exploding", "truncated_rnn_backward", ("if t % k == 0:", "if t % k == 1:"),
     "truncated_rnn_backward: dxs wrong at t="),
    ("03_vanishing_exploding", "jacobian_norms", ("np.linalg.norm((1.0 - h[0] ** 2)[:, None] * W_hh.T, 2)",
                                                  "np.linalg.norm(W_hh, 2)"),
     "the tanh derivative diag(1 - h_t**2) is missing"),
    ("04_lstm", "lstm_step_forward", ("c = f * c_prev + i * g", "c = f * c_prev + g"),
     "lstm_step_forward: c wrong with right gates"),
    ("04_lstm", "lstm_step_backward", ('"dc_prev": dc * f,', '"dc_prev": dc,'),
     "lstm_step_backward: dc_prev wrong"),
    ("05_sequence_patterns", "sample_next", ("z = logits / temperature", "z = logits * temperature"),
     "divide by the temperature"),
    ("05_sequence_patterns", "last_valid_state", ("outputs[lengths - 1, np.arange", "outputs[lengths - 2, np.arange"),
     "sequence b=0 (length 5) wrong: it holds step t=3, expected t=4"),
    ("05_sequence_patterns", "last_valid_state", ("outputs[lengths - 1, np.arange", "outputs[lengths, np.arange"),
     "raised TinygraphIndexError: index: index (array([5, 2, 3]), array([0, 1, 2])) does not fit a tensor of "
     "shape (5,3,4): index 5 is out of bounds for axis 0 with size 5 (in last_valid_state, line"),
    ("05_sequence_patterns", "dot_attention", ("e / e.sum(axis=0, keepdims=True)", "e / e.sum(axis=1, keepdims=True)"),
     "softmax runs over the time axis"),
    ("01_autodiff", "softplus_op", ("return (g / (1.0 + np.exp(-x)),)", "return (1.0 / (1.0 + np.exp(-x)),)"),
     "missing the output gradient g"),
    # the exercise asks for a forward that is safe for large |x|; the naive formula overflows to inf
    ("01_autodiff", "softplus_op", ("return np.logaddexp(0.0, x)", "return np.log(1.0 + np.exp(x))"),
     "Softplus.forward is not finite at x = 1000"),
    ("01_autodiff", "count_ops", ("if id(parent) not in seen:", "if True:"),
     "keep a set of the tensors already seen"),
])
def test_more_mistakes_are_named(assignment, exercise, mutate, expected):
    f = feedback(assignment, exercise, mutate)
    assert f.status == coursework.FAILED
    assert expected in f.message, f.message


def test_an_exception_in_student_code_fails_only_that_exercise():
    ns = namespace("02_rnn_bptt", mutate=("    da = dh * (1.0 - h * h)\n", "    da = dh * undefined_name\n"))
    results = {f.exercise: f for f in coursework.grade_namespace("02_rnn_bptt", ns)}
    assert results["rnn_step_backward"].status == coursework.FAILED
    assert "raised NameError" in results["rnn_step_backward"].message
    assert "in rnn_step_backward, line" in results["rnn_step_backward"].message
    assert results["rnn_step_forward"].passed and results["rnn_forward"].passed
    # rnn_backward calls the broken step: it fails too, with the same cause
    assert "NameError" in results["rnn_backward"].message


def test_lstm_bptt_names_the_time_step_and_the_gate():
    # the cell gradient not carried between steps: wrong only before the last step
    f = feedback("04_lstm", "lstm_backward", (
        "step = lstm_step_backward(dhs[t] + dh_next, dc_next, caches[t])",
        "step = lstm_step_backward(dhs[t] + dh_next, 0 * dc_next, caches[t])"))
    assert f.message.startswith("lstm_backward: dxs wrong at t=2 (T=4;")
    assert "dh_next and dc_next" in f.message
    # the forget gate's recurrent matrix from the last step only
    g = feedback("04_lstm", "lstm_backward", (
        "grads[name] = grads.get(name, 0) + value",
        "grads[name] = value if name == 'dW_hf' and t == len(xs) - 1 else grads.get(name, 0) + "
        "(0 * value if name == 'dW_hf' else value)"))
    assert g.message.startswith("lstm_backward: gate f (forget): dW_hf wrong")
    assert "it holds the contributions of t=3 only, those of t=0..2 are missing" in g.message
