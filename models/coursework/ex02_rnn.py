"""Assignment 02: the Elman RNN and BPTT by hand (numpy).

Student functions (row vectors; ``h = tanh(x @ W_xh + h_prev @ W_hh + b_h)``):

* ``rnn_step_forward(x, h_prev, W_xh, W_hh, b_h) -> h``
* ``rnn_step_backward(dh, x, h_prev, h, W_xh, W_hh) -> (dx, dh_prev, dW_xh, dW_hh, db_h)``
* ``rnn_forward(xs, h0, W_xh, W_hh, b_h) -> hs`` (T,B,H)
* ``rnn_backward(dhs, xs, h0, hs, W_xh, W_hh) -> (dxs, dh0, dW_xh, dW_hh, db_h)``
"""
from __future__ import annotations

import numpy as np

from . import reference as ref
from .feedback import Wrong, close, fmt, rel_error, same_shape, steps_text
from .registry import call, exercise, need

ASSIGNMENT = "02_rnn_bptt"
GRAD_NAMES = ("dx", "dh_prev", "dW_xh", "dW_hh", "db_h")
HINTS = {
    "dx": "dx = da @ W_xh.T, where da = dh * (1 - h**2) is the gradient at the pre-activation",
    "dh_prev": "dh_prev = da @ W_hh.T, where da = dh * (1 - h**2)",
    "dW_xh": "dW_xh = x.T @ da (row vectors: (D,B) @ (B,H))",
    "dW_hh": "dW_hh = h_prev.T @ da (row vectors: (H,B) @ (B,H))",
    "db_h": "db_h = da.sum(axis=0): the bias is shared by the batch",
}


def problem(seed=0, T=5, B=3, D=4, H=5):
    """A seeded float64 problem: parameters, inputs, initial state, output gradients."""
    rng = np.random.default_rng(seed)
    return dict(
        W_xh=rng.standard_normal((D, H)) * 0.5, W_hh=rng.standard_normal((H, H)) * 0.5,
        b_h=rng.standard_normal(H) * 0.1, xs=rng.standard_normal((T, B, D)),
        h0=rng.standard_normal((B, H)) * 0.5, dhs=rng.standard_normal((T, B, H)),
    )


def diagnose_forward(step, P, x, h_prev, name="rnn_step_forward"):
    """Which parameter a wrong step forward misuses, found by switching terms off."""
    want = ref.rnn_step_forward(x, h_prev, P["W_xh"], P["W_hh"], P["b_h"])
    got = same_shape(call(name, step, x, h_prev, P["W_xh"], P["W_hh"], P["b_h"]), want, f"{name}: h")
    err = rel_error(got, want)
    if err <= 1e-6:
        return
    msg = f"{name}: h wrong (relative error {fmt(err)})"

    def right_with(x_=x, h_=h_prev, W_xh=P["W_xh"], W_hh=P["W_hh"], b=P["b_h"]):
        out = call(name, step, x_, h_, W_xh, W_hh, b)
        return close(out, ref.rnn_step_forward(x_, h_, W_xh, W_hh, b))

    sym = (P["W_hh"] + P["W_hh"].T) / 2
    if right_with(h_=np.zeros_like(h_prev)):
        if right_with(W_hh=sym):
            raise Wrong(f"{msg}; parameter W_hh: h is right when h_prev = 0 and when W_hh is symmetric, "
                        f"so W_hh is used transposed; hint: with row vectors the recurrent term is h_prev @ W_hh")
        raise Wrong(f"{msg}; parameter W_hh: h is right when h_prev = 0, so the recurrent term "
                    f"h_prev @ W_hh is wrong")
    if right_with(x_=np.zeros_like(x)):
        raise Wrong(f"{msg}; parameter W_xh: h is right when x = 0, so the input term x @ W_xh is wrong")
    if right_with(b=np.zeros_like(P["b_h"])):
        raise Wrong(f"{msg}; parameter b_h: h is right when b_h = 0, so the bias term is wrong")
    raise Wrong(f"{msg}; hint: h = tanh(x @ W_xh + h_prev @ W_hh + b_h)")


@exercise(ASSIGNMENT, "rnn_step_forward")
def check_step_forward(ns):
    step = need(ns, "rnn_step_forward")
    P = problem(1)
    diagnose_forward(step, P, P["xs"][0], P["h0"])


def compare_grads(name, got, want, names, hints=None, where=""):
    """Compare tuples of gradients; Wrong names every wrong one, the first with its hint."""
    if not isinstance(got, (tuple, list)) or len(got) != len(want):
        raise Wrong(f"{name} should return a tuple of {len(want)} arrays {names}, got "
                    f"{type(got).__name__}{f' of length {len(got)}' if isinstance(got, (tuple, list)) else ''}")
    errors = {}
    for n, g, w in zip(names, got, want):
        err = rel_error(same_shape(g, w, f"{name}: {n}"), w)
        if err > 1e-6:
            errors[n] = err
    if errors:
        first = next(iter(errors))
        rest = ", ".join(f"{n} ({fmt(e)})" for n, e in list(errors.items())[1:])
        hint = f"; hint: {hints[first]}" if hints and first in hints else ""
        raise Wrong(f"{name}: {first} wrong{where} (relative error {fmt(errors[first])})"
                    + (f"; also wrong: {rest}" if rest else "") + hint)


@exercise(ASSIGNMENT, "rnn_step_backward")
def check_step_backward(ns):
    back = need(ns, "rnn_step_backward")
    P = problem(2)
    x, h_prev, dh = P["xs"][0], P["h0"], P["dhs"][0]
    h = ref.rnn_step_forward(x, h_prev, P["W_xh"], P["W_hh"], P["b_h"])
    got = call("rnn_step_backward", back, dh, x, h_prev, h, P["W_xh"], P["W_hh"])
    want = ref.rnn_step_backward(dh, x, h_prev, h, P["W_xh"], P["W_hh"])
    compare_grads("rnn_step_backward", got, want, GRAD_NAMES, HINTS)


@exercise(ASSIGNMENT, "rnn_forward")
def check_forward(ns):
    fwd = need(ns, "rnn_forward")
    P = problem(3)
    want = ref.rnn_forward(P["xs"], P["h0"], P["W_xh"], P["W_hh"], P["b_h"])
    got = same_shape(call("rnn_forward", fwd, P["xs"], P["h0"], P["W_xh"], P["W_hh"], P["b_h"]), want,
                     "rnn_forward: hs")
    wrong = [t for t in range(len(want)) if not close(got[t], want[t])]
    if not wrong:
        return
    t = wrong[0]
    where = (f"rnn_forward: h wrong from t={t} on (relative error {fmt(rel_error(got[t], want[t]))} at t={t}; "
             f"wrong at {steps_text(wrong)})")
    if t > 0:
        from_h0 = [ref.rnn_step_forward(x, P["h0"], P["W_xh"], P["W_hh"], P["b_h"]) for x in P["xs"]]
        if all(close(got[s], from_h0[s]) for s in range(len(want))):
            raise Wrong(f"{where}; every step starts from h0: the state is not carried on, step t must start "
                        f"from hs[t-1]")
        if all(close(got[s], want[s - 1]) for s in range(1, len(want))):
            raise Wrong(f"{where}; hs is shifted by one step: hs[t] must be the state after step t "
                        f"(h0 is not part of hs)")
        raise Wrong(f"{where}; t=0 is right, so look at how step t uses the state hs[t-1]")

    def one_step(x, h_prev, W_xh, W_hh, b_h):  # the student's rnn_forward over one step
        return np.asarray(fwd(x[None], h_prev, W_xh, W_hh, b_h))[0]

    try:
        diagnose_forward(one_step, P, P["xs"][0], P["h0"], name="rnn_forward")
    except Wrong as exc:
        raise Wrong(f"{where}; {str(exc).split('; ', 1)[-1]}") from None
    raise Wrong(f"{where}; hint: the first step starts from h0")


def param_terms_text(name, got, terms):
    """Explain a wrong parameter gradient as a weighted sum of the per-step terms, if it is one."""
    A = np.stack([np.ravel(t) for t in terms], axis=1)
    weights, *_ = np.linalg.lstsq(A, np.ravel(got), rcond=None)
    if rel_error(A @ weights, np.ravel(got)) > 1e-6:
        return ""
    ones = [t for t, w in enumerate(weights) if abs(w - 1) < 1e-4]
    missing = [t for t, w in enumerate(weights) if abs(w) < 1e-4]
    other = [t for t in range(len(terms)) if t not in ones and t not in missing]
    if ones and missing and not other:
        return (f"; it holds the contributions of {steps_text(ones)} only, those of {steps_text(missing)} are "
                f"missing: {name} is the sum over time of the per-step terms")
    return ("; per-step weights " + ", ".join(f"t={t}: {w:.2f}" for t, w in enumerate(weights))
            + f" (each should be 1: {name} is the sum over time)")


def check_bptt(label, fn, k=None, extra=()):
    """Shared by rnn_backward and the truncated version: per-step and per-parameter diagnosis."""
    P = problem(4)
    xs, h0, W_xh, W_hh, dhs = P["xs"], P["h0"], P["W_xh"], P["W_hh"], P["dhs"]
    hs = ref.rnn_forward(xs, h0, W_xh, W_hh, P["b_h"])
    got = call(label, fn, dhs, xs, h0, hs, W_xh, W_hh, *extra)
    (want, terms) = ref.rnn_backward(dhs, xs, h0, hs, W_xh, W_hh, k=k, contributions=True)
    names = ("dxs", "dh0", "dW_xh", "dW_hh", "db_h")
    if not isinstance(got, (tuple, list)) or len(got) != 5:
        raise Wrong(f"{label} should return a tuple of 5 arrays {names}")
    dxs = same_shape(got[0], want[0], f"{label}: dxs")
    T = len(xs)
    wrong = [t for t in range(T) if not close(dxs[t], want[0][t])]
    if wrong:
        t = max(wrong)
        right_after = [s for s in range(t + 1, T)]
        if right_after:
            cause = (f"the steps after it are right, so the gradient arriving from step t+1 (dh_next, "
                     f"the recurrent gradient) is missing or wrong; hint: dh = dhs[t] + dh_next, and "
                     f"dh_next = da @ W_hh.T of step t+1")
            if k is not None:
                cause += f" (and cut it only where t % k == 0, k={k})"
        else:
            cause = "this is the last step, so the step's own backward is wrong: " + HINTS["dx"]
        raise Wrong(f"{label}: dxs wrong at t={t} (T={T}; relative error {fmt(rel_error(dxs[t], want[0][t]))}; "
                    f"wrong at {steps_text(wrong)}); {cause}")
    for i, n in enumerate(names[1:], start=1):
        g = same_shape(got[i], want[i], f"{label}: {n}")
        err = rel_error(g, want[i])
        if err <= 1e-6:
            continue
        param = n[1:]
        explain = param_terms_text(n, g, terms[param]) if param in terms else ""
        if n == "dh0":
            explain = "; hint: dh0 is the dh_next left after the loop reaches t=0"
        elif not explain:
            explain = f"; hint: {HINTS[n.replace('dh0', 'dh_prev')]}, summed over t"
        raise Wrong(f"{label}: parameter {param}: {n} wrong (relative error {fmt(err)}){explain}")


@exercise(ASSIGNMENT, "rnn_backward")
def check_backward(ns):
    check_bptt("rnn_backward", need(ns, "rnn_backward"))
