"""Independent hand-written numpy forward passes and BPTT for the reference checks.

Written from the cells' equations with per-gate matrices, per-step weight
gradients and no use of tinygraph, in float64. Each ``*_forward_backward``
takes parameter arrays, an input ``x`` (T, B, D), an initial state and the
loss weights, where the loss is

    L = sum(outputs * G) + sum(h_T * G_h) [+ sum(c_T * G_c) for the LSTM]

and returns the outputs, the final state and the gradients of L with respect
to every parameter, ``x`` and the initial state.
"""
import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def rnn_forward_backward(p, x, h0, G, G_h, nonlinearity="tanh"):
    T = x.shape[0]
    hs, acts = [h0], []
    for t in range(T):
        a = x[t] @ p["W_xh"] + hs[-1] @ p["W_hh"] + p["b_h"]
        acts.append(a)
        hs.append(np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0))
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dx = np.zeros_like(x)
    dh_next = G_h.copy()
    for t in reversed(range(T)):
        dh = G[t] + dh_next
        if nonlinearity == "tanh":
            da = dh * (1.0 - hs[t + 1] ** 2)
        else:
            da = dh * (acts[t] > 0)
        grads["W_xh"] += x[t].T @ da
        grads["W_hh"] += hs[t].T @ da
        grads["b_h"] += da.sum(axis=0)
        dx[t] = da @ p["W_xh"].T
        dh_next = da @ p["W_hh"].T
    return np.stack(hs[1:]), hs[-1], grads, dx, dh_next


def lstm_forward_backward(p, x, h0, c0, G, G_h, G_c):
    T = x.shape[0]
    hs, cs, cache = [h0], [c0], []
    for t in range(T):
        pre = {k: x[t] @ p["W_x" + k] + hs[-1] @ p["W_h" + k] + p["b_" + k] for k in "ifgo"}
        i, f, o = sigmoid(pre["i"]), sigmoid(pre["f"]), sigmoid(pre["o"])
        g = np.tanh(pre["g"])
        c = f * cs[-1] + i * g
        h = o * np.tanh(c)
        cache.append((i, f, g, o))
        cs.append(c)
        hs.append(h)
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dx = np.zeros_like(x)
    dh_next, dc_next = G_h.copy(), G_c.copy()
    for t in reversed(range(T)):
        i, f, g, o = cache[t]
        tc = np.tanh(cs[t + 1])
        dh = G[t] + dh_next
        dc = dc_next + dh * o * (1.0 - tc ** 2)
        da = {
            "i": dc * g * i * (1.0 - i),
            "f": dc * cs[t] * f * (1.0 - f),
            "g": dc * i * (1.0 - g ** 2),
            "o": dh * tc * o * (1.0 - o),
        }
        dh_next = np.zeros_like(dh)
        for k in "ifgo":
            grads["W_x" + k] += x[t].T @ da[k]
            grads["W_h" + k] += hs[t].T @ da[k]
            grads["b_" + k] += da[k].sum(axis=0)
            dx[t] += da[k] @ p["W_x" + k].T
            dh_next += da[k] @ p["W_h" + k].T
        dc_next = dc * f
    return np.stack(hs[1:]), (hs[-1], cs[-1]), grads, dx, (dh_next, dc_next)


def gru_forward_backward(p, x, h0, G, G_h):
    T = x.shape[0]
    hs, cache = [h0], []
    for t in range(T):
        h = hs[-1]
        r = sigmoid(x[t] @ p["W_xr"] + h @ p["W_hr"] + p["b_r"])
        z = sigmoid(x[t] @ p["W_xz"] + h @ p["W_hz"] + p["b_z"])
        hn = h @ p["W_hn"] + p["b_hn"]
        n = np.tanh(x[t] @ p["W_xn"] + p["b_n"] + r * hn)
        cache.append((r, z, hn, n))
        hs.append((1.0 - z) * n + z * h)
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dx = np.zeros_like(x)
    dh_next = G_h.copy()
    for t in reversed(range(T)):
        r, z, hn, n = cache[t]
        h = hs[t]
        dh = G[t] + dh_next
        dn = dh * (1.0 - z)
        dz = dh * (h - n)
        dan = dn * (1.0 - n ** 2)
        dr = dan * hn
        dhn = dan * r
        daz = dz * z * (1.0 - z)
        dar = dr * r * (1.0 - r)
        for k, d in (("r", dar), ("z", daz), ("n", dan)):
            grads["W_x" + k] += x[t].T @ d
            grads["b_" + k] += d.sum(axis=0)
            dx[t] += d @ p["W_x" + k].T
        grads["W_hr"] += h.T @ dar
        grads["W_hz"] += h.T @ daz
        grads["W_hn"] += h.T @ dhn
        grads["b_hn"] += dhn.sum(axis=0)
        dh_next = dh * z + dar @ p["W_hr"].T + daz @ p["W_hz"].T + dhn @ p["W_hn"].T
    return np.stack(hs[1:]), hs[-1], grads, dx, dh_next
