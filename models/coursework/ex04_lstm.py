"""Assignment 04: the LSTM step by hand (numpy), gate by gate.

Student functions (per-gate parameters in a dict ``p``: ``W_x{k}`` (D,H),
``W_h{k}`` (H,H), ``b_{k}`` (H,) for k in i, f, g, o):

* ``lstm_step_forward(x, h_prev, c_prev, p) -> (h, c, cache)``, ``cache`` a dict
  holding at least the gates ``"i", "f", "g", "o"`` (after their nonlinearity);
* ``lstm_step_backward(dh, dc, cache) -> grads``, a dict with ``dx``, ``dh_prev``,
  ``dc_prev`` and ``dW_x{k}``, ``dW_h{k}``, ``db_{k}`` for every gate k;
* ``lstm_backward(dhs, xs, h0, c0, p) -> grads``: BPTT over a sequence (forward
  with the step function, then the steps backward carrying ``dh`` and ``dc``), a
  dict with ``dxs``, ``dh0``, ``dc0`` and the parameter gradients summed over time.
"""
from __future__ import annotations

import numpy as np

from . import reference as ref
from .ex02_rnn import param_terms_text
from .feedback import Wrong, close, fmt, rel_error, same_shape, steps_text
from .registry import call, exercise, need

ASSIGNMENT = "04_lstm"
GATE_NAMES = {"i": "input", "f": "forget", "g": "candidate", "o": "output"}
ACT = {"i": "sigmoid", "f": "sigmoid", "g": "tanh", "o": "sigmoid"}


def problem(seed=0, B=3, D=4, H=5):
    rng = np.random.default_rng(seed)
    p = {}
    for k in ref.GATES:
        p["W_x" + k] = rng.standard_normal((D, H)) * 0.5
        p["W_h" + k] = rng.standard_normal((H, H)) * 0.5
        p["b_" + k] = rng.standard_normal(H) * 0.5
    return dict(p=p, x=rng.standard_normal((B, D)), h_prev=rng.standard_normal((B, H)) * 0.5,
                c_prev=rng.standard_normal((B, H)), dh=rng.standard_normal((B, H)), dc=rng.standard_normal((B, H)))


def _forward(ns, P):
    fwd = need(ns, "lstm_step_forward")
    out = call("lstm_step_forward", fwd, P["x"], P["h_prev"], P["c_prev"], P["p"])
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise Wrong("lstm_step_forward should return (h, c, cache)")
    h, c, cache = out
    if not isinstance(cache, dict) or not all(k in cache for k in ref.GATES):
        raise Wrong("lstm_step_forward: the cache should be a dict holding at least the gates 'i', 'f', 'g', 'o'")
    return h, c, cache


@exercise(ASSIGNMENT, "lstm_step_forward")
def check_step_forward(ns):
    P = problem(1)
    h, c, cache = _forward(ns, P)
    want_h, want_c, want = ref.lstm_step_forward(P["x"], P["h_prev"], P["c_prev"], P["p"])
    for k in ref.GATES:
        got = same_shape(cache[k], want[k], f"lstm_step_forward: gate {k}")
        err = rel_error(got, want[k])
        if err <= 1e-6:
            continue
        msg = f"lstm_step_forward: gate {k} ({GATE_NAMES[k]}) wrong (relative error {fmt(err)})"
        twin = next((j for j in ref.GATES if j != k and close(got, want[j])), None)
        if twin is not None:
            pair = "forget and input gates" if {k, twin} == {"i", "f"} else f"gates {k} and {twin}"
            raise Wrong(f"{msg}: it holds gate {twin}'s values ({GATE_NAMES[twin]} gate); are the {pair} swapped? "
                        f"gate {k} uses W_x{k}, W_h{k}, b_{k}")
        other = "tanh" if ACT[k] == "sigmoid" else "sigmoid"
        z = P["x"] @ P["p"]["W_x" + k] + P["h_prev"] @ P["p"]["W_h" + k] + P["p"]["b_" + k]
        if close(got, np.tanh(z) if other == "tanh" else ref.sigmoid(z)):
            raise Wrong(f"{msg}: it is {other} of the right pre-activation; hint: gate {k} uses {ACT[k]}")
        raise Wrong(f"{msg}; hint: {k} = {ACT[k]}(x @ W_x{k} + h_prev @ W_h{k} + b_{k})")
    for name, got, w, hint in (("c", c, want_c, "c = f * c_prev + i * g (the additive cell path)"),
                               ("h", h, want_h, "h = o * tanh(c)")):
        err = rel_error(same_shape(got, w, f"lstm_step_forward: {name}"), w)
        if err > 1e-6:
            raise Wrong(f"lstm_step_forward: {name} wrong with right gates (relative error {fmt(err)}); hint: {hint}")


def _dz_variants(P, want_cache, k):
    """The gate's pre-activation gradient with the right derivative and with the other nonlinearity's."""
    i, f, g, o, tc = (want_cache[n] for n in ("i", "f", "g", "o", "tc"))
    dh, dc = P["dh"], P["dc"]
    dc = dc + dh * o * (1.0 - tc * tc)
    upstream = {"i": dc * g, "f": dc * P["c_prev"], "g": dc * i, "o": dh * tc}[k]
    s = want_cache[k]
    wrong_deriv = s * (1.0 - s) if ACT[k] == "tanh" else 1.0 - s * s
    return upstream * wrong_deriv


@exercise(ASSIGNMENT, "lstm_step_backward")
def check_step_backward(ns):
    P = problem(2)
    back = need(ns, "lstm_step_backward")
    _, _, cache = _forward(ns, P)
    _, _, want_cache = ref.lstm_step_forward(P["x"], P["h_prev"], P["c_prev"], P["p"])
    if not all(close(cache[k], want_cache[k]) for k in ref.GATES):
        raise Wrong("lstm_step_backward: not checked, because lstm_step_forward's gates are wrong (fix it first)")
    got = call("lstm_step_backward", back, P["dh"], P["dc"], cache)
    want = ref.lstm_step_backward(P["dh"], P["dc"], want_cache)
    if not isinstance(got, dict):
        raise Wrong(f"lstm_step_backward should return a dict of gradients, got {type(got).__name__}")
    missing = [n for n in want if n not in got]
    if missing:
        raise Wrong(f"lstm_step_backward: the result has no {', '.join(missing)}")
    for k in ref.GATES:
        names = ("dW_x" + k, "dW_h" + k, "db_" + k)
        errors = {n: rel_error(same_shape(got[n], want[n], f"lstm_step_backward: {n}"), want[n]) for n in names}
        bad = [n for n in names if errors[n] > 1e-6]
        if not bad:
            continue
        worst = max(bad, key=errors.get)
        msg = (f"lstm_step_backward: gate {k} ({GATE_NAMES[k]}) wrong: {', '.join(bad)} "
               f"(relative error of {worst} {fmt(errors[worst])})")
        dz = _dz_variants(P, want_cache, k)
        if close(got["db_" + k], dz.sum(axis=0)):
            other = "tanh' = 1 - s**2" if ACT[k] == "sigmoid" else "sigmoid' = s * (1 - s)"
            right = "sigmoid' = s * (1 - s)" if ACT[k] == "sigmoid" else "tanh' = 1 - g**2"
            raise Wrong(f"{msg}; it uses {other} where {ACT[k]}'s derivative belongs; hint: {right}")
        hint = {"i": "dz_i = dc * g * i * (1 - i)", "f": "dz_f = dc * c_prev * f * (1 - f)",
                "g": "dz_g = dc * i * (1 - g**2)", "o": "dz_o = dh * tanh(c) * o * (1 - o)"}[k]
        raise Wrong(f"{msg}; hint: {hint}, where dc already includes dh * o * (1 - tanh(c)**2); "
                    f"then dW_x{k} = x.T @ dz_{k}, dW_h{k} = h_prev.T @ dz_{k}, db_{k} = dz_{k}.sum(0)")
    hints = {"dc_prev": "dc_prev = dc * f: the additive cell path", "dx": "dx = sum over gates of dz_k @ W_xk.T",
             "dh_prev": "dh_prev = sum over gates of dz_k @ W_hk.T"}
    for n in ("dc_prev", "dx", "dh_prev"):
        err = rel_error(same_shape(got[n], want[n], f"lstm_step_backward: {n}"), want[n])
        if err > 1e-6:
            raise Wrong(f"lstm_step_backward: {n} wrong (relative error {fmt(err)}); hint: {hints[n]}")


@exercise(ASSIGNMENT, "lstm_backward")
def check_backward_through_time(ns):
    fn = need(ns, "lstm_backward")
    P = problem(3)
    rng = np.random.default_rng(4)
    T, (B, D), H = 4, P["x"].shape, P["h_prev"].shape[1]
    xs, dhs = rng.standard_normal((T, B, D)), rng.standard_normal((T, B, H))
    h0, c0 = P["h_prev"], P["c_prev"]
    got = call("lstm_backward", fn, dhs, xs, h0, c0, P["p"])
    want, terms = ref.lstm_backward(dhs, xs, h0, c0, P["p"], contributions=True)
    if not isinstance(got, dict):
        raise Wrong(f"lstm_backward should return a dict of gradients, got {type(got).__name__}")
    missing = [n for n in want if n not in got]
    if missing:
        raise Wrong(f"lstm_backward: the result has no {', '.join(missing)}")
    dxs = same_shape(got["dxs"], want["dxs"], "lstm_backward: dxs")
    wrong = [t for t in range(T) if not close(dxs[t], want["dxs"][t])]
    if wrong:
        t = max(wrong)
        cause = ("the steps after it are right, so what arrives from step t+1 (dh_next and dc_next) is missing or "
                 "wrong; hint: step t gets dh = dhs[t] + dh_next and dc = dc_next" if t < T - 1 else
                 "this is the last step, so the step backward itself is wrong")
        raise Wrong(f"lstm_backward: dxs wrong at t={t} (T={T}; relative error "
                    f"{fmt(rel_error(dxs[t], want['dxs'][t]))}; wrong at {steps_text(wrong)}); {cause}")
    for k in ref.GATES:
        for n in ("dW_x" + k, "dW_h" + k, "db_" + k):
            g = same_shape(got[n], want[n], f"lstm_backward: {n}")
            err = rel_error(g, want[n])
            if err > 1e-6:
                raise Wrong(f"lstm_backward: gate {k} ({GATE_NAMES[k]}): {n} wrong (relative error {fmt(err)})"
                            + (param_terms_text(n, g, terms[n]) or f"; hint: {n} is the sum over t of each step's {n}"))
    for n, hint in (("dh0", "the dh_next left after step 0"), ("dc0", "the dc_next left after step 0")):
        err = rel_error(same_shape(got[n], want[n], f"lstm_backward: {n}"), want[n])
        if err > 1e-6:
            raise Wrong(f"lstm_backward: {n} wrong (relative error {fmt(err)}); hint: {n} is {hint}")
