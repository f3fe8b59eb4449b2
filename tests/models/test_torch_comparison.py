"""Optional: outputs and gradients against PyTorch's nn.RNN/LSTM/GRU (weights mapped between layouts)."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models

torch = pytest.importorskip("torch")

D, H, B, T = 3, 4, 2, 6


def t64(a):
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64)


def torch_layout(kind, cell):
    """(weight_ih, weight_hh, bias_ih, bias_hh) in torch's (gates*H, in) layout and gate order."""
    if kind == "rnn":
        return cell.W_xh.data.T, cell.W_hh.data.T, cell.b_h.data, np.zeros(H)
    if kind == "lstm":
        order = "ifgo"  # torch's gate order
        w_ih = np.concatenate([getattr(cell, "W_x" + k).data.T for k in order])
        w_hh = np.concatenate([getattr(cell, "W_h" + k).data.T for k in order])
        return w_ih, w_hh, np.concatenate([getattr(cell, "b_" + k).data for k in order]), np.zeros(4 * H)
    order = "rzn"
    w_ih = np.concatenate([getattr(cell, "W_x" + k).data.T for k in order])
    w_hh = np.concatenate([getattr(cell, "W_h" + k).data.T for k in order])
    b_ih = np.concatenate([cell.b_r.data, cell.b_z.data, cell.b_n.data])
    b_hh = np.concatenate([np.zeros(2 * H), cell.b_hn.data])
    return w_ih, w_hh, b_ih, b_hh


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_matches_torch(kind):
    rng = np.random.default_rng(0)
    with tg.default_dtype(np.float64):
        model = {"rnn": models.RNN, "lstm": models.LSTM, "gru": models.GRU}[kind](D, H, rng=1)
    cell = model.cell
    x = rng.normal(size=(T, B, D))
    G = rng.normal(size=(T, B, H))
    out, _ = model(x)
    (out * G).sum().backward()

    ref = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](D, H).double()
    w_ih, w_hh, b_ih, b_hh = torch_layout(kind, cell)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(t64(w_ih))
        ref.weight_hh_l0.copy_(t64(w_hh))
        ref.bias_ih_l0.copy_(t64(b_ih))
        ref.bias_hh_l0.copy_(t64(b_hh))
    ref_out, _ = ref(t64(x))
    (ref_out * t64(G)).sum().backward()
    np.testing.assert_allclose(out.data, ref_out.detach().numpy(), rtol=1e-10, atol=1e-12)

    # gradients, mapped back to the per-gate parameters
    g_ih, g_hh = ref.weight_ih_l0.grad.numpy(), ref.weight_hh_l0.grad.numpy()
    g_bih, g_bhh = ref.bias_ih_l0.grad.numpy(), ref.bias_hh_l0.grad.numpy()
    if kind == "rnn":
        want = {"W_xh": g_ih.T, "W_hh": g_hh.T, "b_h": g_bih}
    else:
        order = "ifgo" if kind == "lstm" else "rzn"
        want = {}
        for j, k in enumerate(order):
            rows = slice(j * H, (j + 1) * H)
            want["W_x" + k] = g_ih[rows].T
            want["W_h" + k] = g_hh[rows].T
            want["b_" + k] = g_bih[rows]
        if kind == "gru":
            want["b_hn"] = g_bhh[2 * H:]
    for name, p in cell.named_parameters():
        np.testing.assert_allclose(p.grad, want[name], rtol=1e-9, atol=1e-12, err_msg=name)
