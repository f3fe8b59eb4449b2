"""Assignment 03: vanishing and exploding gradients.

Student functions:

* ``jacobian_norms(hs, W_hh) -> norms`` (T,): the spectral norm of
  ``dh_t / dh_{t-1} = diag(1 - h_t**2) @ W_hh.T`` for the first sequence of the batch;
* ``clip_grad_norm(grads, max_norm) -> (clipped, total_norm)``: global clipping
  of a dict of gradients;
* ``truncated_rnn_backward(dhs, xs, h0, hs, W_xh, W_hh, k)``: BPTT whose recurrent
  gradient is cut at the start of every segment of ``k`` steps.
"""
from __future__ import annotations

import numpy as np

from . import reference as ref
from .ex02_rnn import check_bptt, problem
from .feedback import Wrong, close, fmt, rel_error, same_shape, steps_text
from .registry import call, exercise, need

ASSIGNMENT = "03_vanishing_exploding"


@exercise(ASSIGNMENT, "jacobian_norms")
def check_jacobian_norms(ns):
    fn = need(ns, "jacobian_norms")
    P = problem(5, T=6)
    hs = ref.rnn_forward(P["xs"], P["h0"], P["W_xh"], P["W_hh"], P["b_h"])
    want = ref.rnn_jacobian_norms(hs, P["W_hh"])
    got = same_shape(call("jacobian_norms", fn, hs, P["W_hh"]), want, "jacobian_norms")
    wrong = [t for t in range(len(want)) if not close(got[t], want[t])]
    if wrong:
        t = wrong[0]
        plain = np.linalg.norm(P["W_hh"], 2)
        hint = ("it is ||W_hh|| at every step: the tanh derivative diag(1 - h_t**2) is missing"
                if np.allclose(got, plain) else
                "dh_t/dh_{t-1} = diag(1 - h_t**2) @ W_hh.T; its spectral norm is np.linalg.norm(J, 2)")
        raise Wrong(f"jacobian_norms: wrong at t={t} (got {got[t]:.4g}, expected {want[t]:.4g}; wrong at "
                    f"{steps_text(wrong)}); hint: {hint}")


def _clip_case(seed, scale):
    rng = np.random.default_rng(seed)
    # b_h is small: clipping each gradient on its own would leave it alone
    return {"W_xh": rng.standard_normal((4, 5)) * scale, "W_hh": rng.standard_normal((5, 5)) * scale,
            "b_h": rng.standard_normal(5) * 0.01}


@exercise(ASSIGNMENT, "clip_grad_norm")
def check_clip(ns):
    fn = need(ns, "clip_grad_norm")
    for case, (grads, max_norm) in enumerate(((_clip_case(6, 3.0), 1.0), (_clip_case(7, 0.01), 1.0))):
        copies = {k: v.copy() for k, v in grads.items()}
        out = call("clip_grad_norm", fn, copies, max_norm)
        if not isinstance(out, (tuple, list)) or len(out) != 2 or not isinstance(out[0], dict):
            raise Wrong("clip_grad_norm should return (clipped dict, total_norm)")
        got, total = out
        want, want_total = ref.clip_grad_norm(grads, max_norm)
        for name in want:
            if name not in got:
                raise Wrong(f"clip_grad_norm: the result has no parameter {name}")
            g = same_shape(got[name], want[name], f"clip_grad_norm: {name}")
            if close(g, want[name]):
                continue
            own = np.linalg.norm(grads[name])
            factor = float(np.sum(g * grads[name]) / max(np.sum(grads[name] ** 2), 1e-300))
            per_param = all(close(got[n], grads[n] * min(1.0, max_norm / np.linalg.norm(grads[n]))) for n in want)
            msg = (f"clip_grad_norm: parameter {name} scaled by {factor:.3g}, expected the global factor "
                   f"{min(1.0, max_norm / want_total):.3g} (||{name}|| = {own:.3g}, global norm {want_total:.3g}, "
                   f"max_norm {max_norm})")
            if per_param:
                raise Wrong(f"{msg}: the gradients were clipped per parameter; hint: compute one norm over all "
                            f"gradients together and scale every one by the same factor")
            raise Wrong(f"{msg}; hint: factor = min(1, max_norm / total_norm), the same for every parameter")
        if not close(float(np.asarray(total)), want_total):
            raise Wrong(f"clip_grad_norm: total_norm {float(np.asarray(total)):.4g}, expected {want_total:.4g} "
                        f"(the norm before clipping, of all gradients together)")


@exercise(ASSIGNMENT, "truncated_rnn_backward")
def check_truncated(ns):
    fn = need(ns, "truncated_rnn_backward")
    check_bptt("truncated_rnn_backward", fn, k=2, extra=(2,))
