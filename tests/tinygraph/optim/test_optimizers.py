"""Optimizers: update rules against hand-computed steps and independent numpy
references, dtype and in-place guarantees, state dicts that resume exactly, input errors."""
import math

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import nn, optim


# -- independent reference implementations (textbook formulas, float64) ------------------
def ref_sgd(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p = p.copy()
    buf = None
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def ref_adam(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g ** 2
        m_hat = m / (1 - betas[0] ** t)
        v_hat = v / (1 - betas[1] ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def ref_rmsprop(p, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    p = p.copy()
    sq = np.zeros_like(p)
    avg = np.zeros_like(p)
    buf = np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        sq = alpha * sq + (1 - alpha) * g ** 2
        avg = alpha * avg + (1 - alpha) * g
        denom = np.sqrt(sq - avg ** 2 if centered else sq) + eps
        if momentum:
            buf = momentum * buf + g / denom
            p = p - lr * buf
        else:
            p = p - lr * g / denom
    return p


def ref_adagrad(p, grads, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    p = p.copy()
    s = np.full_like(p, initial_accumulator_value)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        s = s + g ** 2
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
    return p


def run(make_opt, p0, grads):
    """Drive an optimizer with a fixed gradient sequence; returns the final parameter values."""
    p = nn.Parameter(p0.copy())
    opt = make_opt([p])
    for g in grads:
        p.grad = g.copy()
        opt.step()
    return p.data


CASES = [
    ("sgd", lambda ps: optim.SGD(ps, lr=0.1), lambda p, gs: ref_sgd(p, gs, 0.1)),
    ("sgd-momentum", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
     lambda p, gs: ref_sgd(p, gs, 0.1, momentum=0.9)),
    ("sgd-dampening-wd", lambda ps: optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
     lambda p, gs: ref_sgd(p, gs, 0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("sgd-nesterov", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
     lambda p, gs: ref_sgd(p, gs, 0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("adam", lambda ps: optim.Adam(ps, lr=0.01), lambda p, gs: ref_adam(p, gs, 0.01)),
    ("adam-wd", lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
     lambda p, gs: ref_adam(p, gs, 0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("adamw", lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
     lambda p, gs: ref_adam(p, gs, 0.01, weight_decay=0.1, decoupled=True)),
    ("rmsprop", lambda ps: optim.RMSprop(ps, lr=0.01), lambda p, gs: ref_rmsprop(p, gs, 0.01)),
    ("rmsprop-centered-momentum", lambda ps: optim.RMSprop(ps, lr=0.01, alpha=0.9, centered=True, momentum=0.5,
                                                           weight_decay=0.01),
     lambda p, gs: ref_rmsprop(p, gs, 0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.01)),
    ("adagrad", lambda ps: optim.Adagrad(ps, lr=0.1), lambda p, gs: ref_adagrad(p, gs, 0.1)),
    ("adagrad-options", lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.05, weight_decay=0.01,
                                                 initial_accumulator_value=0.1, eps=1e-8),
     lambda p, gs: ref_adagrad(p, gs, 0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1, eps=1e-8)),
]


@pytest.mark.parametrize("name,make_opt,reference", CASES, ids=[c[0] for c in CASES])
def test_update_rule_matches_numpy_reference(name, make_opt, reference):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(6)]
    got = run(make_opt, p0, grads)
    np.testing.assert_allclose(got, reference(p0, grads), rtol=1e-12, atol=1e-14)
    assert not np.allclose(got, p0)  # it moved


# -- single steps worked out by hand ---------------------------------------------------------
def one_step(make_opt, p, g):
    return run(make_opt, np.array([p], dtype=np.float64), [np.array([g], dtype=np.float64)])[0]


def test_hand_computed_first_steps():
    # SGD: 1 - 0.1 * 0.5
    assert one_step(lambda ps: optim.SGD(ps, lr=0.1), 1.0, 0.5) == pytest.approx(0.95, abs=1e-15)
    # SGD with weight decay 0.2: g = 0.5 + 0.2 * 1 = 0.7
    assert one_step(lambda ps: optim.SGD(ps, lr=0.1, weight_decay=0.2), 1.0, 0.5) == pytest.approx(0.93, abs=1e-15)
    # Adam's first step is lr * m_hat / (sqrt(v_hat) + eps) = lr * g / (|g| + eps): about lr * sign(g)
    assert one_step(lambda ps: optim.Adam(ps, lr=0.1), 1.0, 0.5) == pytest.approx(0.9 + 0.1 * 1e-8 / 0.5, abs=1e-12)
    # AdamW: first 1 * (1 - 0.1 * 0.5) = 0.95, then the same Adam step of 0.1
    assert one_step(lambda ps: optim.AdamW(ps, lr=0.1, weight_decay=0.5), 1.0, -2.0) == pytest.approx(1.05, abs=1e-8)
    # RMSprop: v = 0.01 * 4 = 0.04, step = 0.01 * 2 / 0.2 = 0.1
    assert one_step(lambda ps: optim.RMSprop(ps, lr=0.01, eps=0.0), 1.0, 2.0) == pytest.approx(0.9, abs=1e-15)
    # Adagrad: s = 9, step = 0.1 * 3 / 3 = 0.1
    assert one_step(lambda ps: optim.Adagrad(ps, lr=0.1, eps=0.0), 1.0, 3.0) == pytest.approx(0.9, abs=1e-15)


def test_sgd_momentum_two_steps_by_hand():
    p = nn.Parameter(np.array([0.0]))
    opt = optim.SGD([p], lr=1.0, momentum=0.5)
    p.grad = np.array([1.0])
    opt.step()  # buf = 1, p = -1
    p.grad = np.array([1.0])
    opt.step()  # buf = 0.5 + 1 = 1.5, p = -2.5
    assert p.data[0] == -2.5


def test_adam_bias_correction_by_hand_second_step():
    p = nn.Parameter(np.array([0.0]))
    opt = optim.Adam([p], lr=1.0, betas=(0.5, 0.5), eps=0.0)
    p.grad = np.array([2.0])
    opt.step()  # m = 1, v = 2; m_hat = 2, v_hat = 4 -> step 1
    p.grad = np.array([4.0])
    opt.step()  # m = 2.5, v = 9; m_hat = 2.5/0.75, v_hat = 9/0.75 -> step (10/3) / sqrt(12)
    assert p.data[0] == pytest.approx(-1 - (10 / 3) / math.sqrt(12), abs=1e-12)


# -- guarantees -----------------------------------------------------------------------------
@pytest.mark.parametrize("name,make_opt,reference", CASES, ids=[c[0] for c in CASES])
def test_keeps_float32_and_updates_in_place(name, make_opt, reference):
    p = nn.Parameter(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    data = p.data
    view = p.data[0]
    opt = make_opt([p])
    for k in range(3):
        p.grad = np.full((2, 3), 0.1 * (k + 1), dtype=np.float32)
        opt.step()
    assert p.data is data and p.dtype == np.float32
    np.testing.assert_array_equal(view, p.data[0])  # views see the update
    for value in opt.state[0].values():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32 and value.shape == (2, 3)
    p64 = run(make_opt, np.linspace(-1, 1, 6).reshape(2, 3), [np.full((2, 3), 0.1 * (k + 1)) for k in range(3)])
    np.testing.assert_allclose(p.data, p64, rtol=1e-5, atol=1e-6)


def test_parameters_without_grad_are_skipped():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(2)
    opt.step()
    assert np.all(b.data == 1) and opt.state[1] == {}
    assert np.all(a.data < 1)


def test_zero_grad_and_changing_lr():
    model = nn.Linear(2, 1, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    model(np.ones((1, 2))).sum().backward()
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    p = nn.Parameter(np.zeros(1))
    opt = optim.SGD([p], lr=0.1)
    opt.lr = 0.5
    p.grad = np.ones(1)
    opt.step()
    assert p.data[0] == -0.5
    opt.lr = -1.0
    with pytest.raises(ValueError, match="SGD: lr must be a finite number >= 0, got -1.0"):
        opt.step()


def test_training_reduces_a_loss():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.05),
                 lambda ps: optim.RMSprop(ps, lr=0.03), lambda ps: optim.Adagrad(ps, lr=0.5)):
        model = nn.Linear(3, 1, rng=1)
        opt = make(model.parameters())
        first = None
        for _ in range(100):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            first = loss.item() if first is None else first
        assert loss.item() < 0.01 * first


# -- state dicts -------------------------------------------------------------------------------
@pytest.mark.parametrize("name,make_opt,reference", CASES, ids=[c[0] for c in CASES])
def test_state_dict_resumes_exactly(name, make_opt, reference, tmp_path):
    rng = np.random.default_rng(3)
    p0 = rng.normal(size=(2, 3)).astype(np.float32)
    grads = [rng.normal(size=(2, 3)).astype(np.float32) for _ in range(6)]

    p = nn.Parameter(p0.copy())
    q = nn.Parameter(np.ones(4, dtype=np.float32))  # never gets a grad: no state
    opt = make_opt([p, q])
    for g in grads[:3]:
        p.grad = g.copy()
        opt.step()
    snapshot_p = p.data.copy()
    tg.save({"optim": opt.state_dict()}, tmp_path / "opt.npz")
    for g in grads[3:]:
        p.grad = g.copy()
        opt.step()

    p2 = nn.Parameter(snapshot_p)
    q2 = nn.Parameter(np.ones(4, dtype=np.float32))
    opt2 = make_opt([p2, q2])
    opt2.load_state_dict(tg.load(tmp_path / "opt.npz")["optim"])
    assert opt2.hyperparameters == opt.hyperparameters
    for g in grads[3:]:
        p2.grad = g.copy()
        opt2.step()
    np.testing.assert_array_equal(p2.data, p.data)
    assert p2.dtype == np.float32


def test_state_dict_is_a_snapshot_keyed_by_position():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(3))
    opt = optim.Adam([a, b], lr=0.1)
    b.grad = np.ones(3)
    opt.step()
    sd = opt.state_dict()
    assert sd["type"] == "Adam" and sd["num_params"] == 2
    assert sd["hyperparameters"] == {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    assert list(sd["state"]) == ["1"] and sd["state"]["1"]["step"] == 1
    saved = sd["state"]["1"]["exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(sd["state"]["1"]["exp_avg"], saved)  # not aliased to live state


def test_load_state_dict_errors():
    p = nn.Parameter(np.zeros((2, 2)))
    opt = optim.Adam([p])
    p.grad = np.ones((2, 2))
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="from a Adam optimizer, not a SGD"):
        optim.SGD([nn.Parameter(np.zeros((2, 2)))]).load_state_dict(sd)
    with pytest.raises(ValueError, match="for 1 parameters, this optimizer has 2"):
        optim.Adam([nn.Parameter(np.zeros((2, 2))), nn.Parameter(np.zeros(1))]).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"state 0.exp_avg has shape \(2,2\) but parameter 0 .*shape \(3\)"):
        optim.Adam([nn.Parameter(np.zeros(3))]).load_state_dict(sd)
    bad = dict(sd, hyperparameters=dict(sd["hyperparameters"], betas=(1.5, 0.9)))
    fresh = optim.Adam([nn.Parameter(np.zeros((2, 2)))], lr=0.5)
    with pytest.raises(ValueError, match=r"Adam: betas\[0\] must be in \[0, 1\), got 1.5"):
        fresh.load_state_dict(bad)
    assert fresh.lr == 0.5 and fresh.state == [{}]  # nothing changed
    with pytest.raises(ValueError, match="missing keys: state"):
        fresh.load_state_dict({k: v for k, v in sd.items() if k != "state"})
    with pytest.raises(TypeError, match="expected a dict from state_dict"):
        fresh.load_state_dict([1, 2])


def test_constructor_errors():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([])
    with pytest.raises(TypeError, match=r"Adam: params must be an iterable of Tensors, got Linear; pass model.parameters\(\)"):
        optim.Adam(nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"Adam: params\[1\] is a ndarray, expected a Tensor"):
        optim.Adam([p, np.zeros(2)])
    with pytest.raises(ValueError, match="Adam: parameter 1 is the same tensor as parameter 0"):
        optim.Adam([p, p])
    with pytest.raises(ValueError, match="cannot be optimized; expected a leaf tensor with requires_grad=True"):
        optim.SGD([tg.tensor(np.zeros(2))])
    with pytest.raises(ValueError, match="cannot be optimized"):
        optim.SGD([p * 2])
    with pytest.raises(ValueError, match="Adam: lr must be a finite number >= 0, got -0.1"):
        optim.Adam([p], lr=-0.1)
    with pytest.raises(ValueError, match=r"Adam: betas must be a pair"):
        optim.Adam([p], betas=0.9)
    with pytest.raises(ValueError, match=r"AdamW: betas\[1\] must be in \[0, 1\), got 1.0"):
        optim.AdamW([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="SGD: nesterov momentum needs momentum > 0 and dampening == 0"):
        optim.SGD([p], nesterov=True)
    with pytest.raises(ValueError, match="RMSprop: alpha must be in"):
        optim.RMSprop([p], alpha=1.2)
    with pytest.raises(ValueError, match="Adagrad: eps must be a finite number >= 0, got nan"):
        optim.Adagrad([p], eps=float("nan"))


def test_step_rejects_a_grad_of_the_wrong_shape():
    p = nn.Parameter(np.zeros(3), name="w")
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.zeros(4)
    with pytest.raises(ValueError, match=r"SGD.step: parameter 0 \('w'\) has shape \(3\) but its grad has shape \(4\)"):
        opt.step()


def test_betas_given_as_a_list_are_stored_as_a_tuple():
    opt = optim.Adam([nn.Parameter(np.zeros(1))], betas=[0.5, 0.6])
    assert opt.betas == (0.5, 0.6) and opt.state_dict()["hyperparameters"]["betas"] == (0.5, 0.6)


def test_load_state_dict_rejects_malformed_state():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], momentum=0.9)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match=r"state key '5' is not a parameter position 0..0"):
        opt.load_state_dict(dict(sd, state={"5": {}}))
    with pytest.raises(ValueError, match=r"state 0 must be a dict of buffers, got list"):
        opt.load_state_dict(dict(sd, state={"0": [1]}))
    with pytest.raises(ValueError, match=r"state 0.step must be an int >= 0, got -1"):
        opt.load_state_dict(dict(sd, state={"0": {"step": -1}}))
