"""Regenerate the pictures in docs/: graph drawings (needs Graphviz 'dot') and the
gradient-norm plot (needs matplotlib: pip install tinygraph[plot]).

    python examples/make_pictures.py            # writes into docs/
    python examples/make_pictures.py --out-dir /tmp/pictures

Pictures:
    rnn_unrolled.svg/.png   a tanh RNN unrolled over 3 steps, one cluster per step
    lstm_folded.svg/.png    the LSTM folded: one copy of the cell, h and c drawn back into it
    rnn_grads.svg/.png      gradient norms painted on an RNN (loss on the last step only)
    bptt_backward.gif       the backward pass of a tanh RNN over 3 steps, one frame per node the walk
                            processes (needs Pillow, which comes with matplotlib)
    grad_norms.png          ||dL/dh_t|| over 30 steps, tanh RNN versus LSTM (log scale)
    exploding.png           ||dh_T/dh_t|| for recurrent weights of spectral radius 0.7 / 1.0 / 1.5,
                            and training with and without gradient clipping
    limitations.png         short effective memory (recall x_1 after T steps: tanh RNN vs LSTM) and
                            the encoder-decoder state bottleneck (reversal accuracy vs length)
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np


from tinygraph import models  # noqa: E402
import tinygraph as tg  # noqa: E402
from tinygraph.drawing import plots, render  # noqa: E402

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs")


def sequence(steps, batch, size, seed=0, requires_grad=False):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(steps, batch, size)).astype(tg.get_default_dtype())
    return tg.tensor(data, name="x", requires_grad=requires_grad)


def zeros(batch, hidden, name):
    return tg.tensor(np.zeros((batch, hidden), dtype=tg.get_default_dtype()), name=name)


def save_both(g, out_dir, stem):
    return [render(g, os.path.join(out_dir, stem + ".svg")), render(g, os.path.join(out_dir, stem + ".png"), dpi=110)]


def name_steps(outputs):
    """Name each step's hidden state h_t, so the drawing reads like the equations."""
    for t, h in enumerate(outputs.parents):
        h.name = f"h_{t}"


def rnn_unrolled(out_dir):
    model = models.RNN(2, 3, rng=0)
    # x requires grad only so that its name shows (a constant input is folded into its reshape)
    outputs, _ = model(sequence(3, 1, 2, requires_grad=True), zeros(1, 3, "h0"))
    name_steps(outputs)
    loss = (outputs ** 2).mean()
    loss.name = "loss"
    g = tg.draw(loss, title="RNN unrolled over 3 steps: h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)")
    return save_both(g, out_dir, "rnn_unrolled")


def lstm_folded(out_dir, steps=5):
    """The LSTM cell's reference equations (one gate at a time), called once per step and folded.

    ``models.LSTM`` runs a fused form of the same equations when it unrolls; calling the
    cell directly runs ``LSTMCell.forward``, whose graph shows every gate.
    """
    cell = models.LSTMCell(2, 3, rng=0)
    xs = sequence(steps, 1, 2, requires_grad=True)
    h, c = zeros(1, 3, "h0"), zeros(1, 3, "c0")
    outputs = []
    for t in range(steps):
        y, (h, c) = cell(xs[t], (h, c))
        h.name, c.name = "h", "c"
        outputs.append(y)
    loss = (tg.stack(outputs) ** 2).mean()
    loss.name = "loss"
    g = tg.draw(loss, folded=True,
                title=f"LSTMCell over {steps} steps, folded: one copy of the cell; the blue back edges "
                      f"carry h and c from step t-1 into step t")
    return save_both(g, out_dir, "lstm_folded")


def rnn_grads(out_dir):
    model = models.RNN(2, 3, rng=1)
    model.cell.W_hh.data *= 0.5  # small recurrent weights: the gradient vanishes visibly within 5 steps
    outputs, h_last = model(sequence(5, 1, 2, seed=1), zeros(1, 3, "h0"))
    name_steps(outputs)
    loss = (h_last ** 2).sum()
    loss.name = "loss"
    loss.backward(retain_grads=True)
    g = tg.draw(loss, grads=True,
                title="Gradient flow, loss on the last step only: ||dL/dh_t|| shrinks going back in time")
    return save_both(g, out_dir, "rnn_grads")


def bptt_backward(out_dir):
    """Backpropagation through time as an animation: the engine's backward walk, node by node."""
    from tinygraph.drawing import backward_frames, save_animation

    model = models.RNN(2, 3, rng=0)
    outputs, _ = model(sequence(3, 1, 2), zeros(1, 3, "h0"))
    name_steps(outputs)
    loss = (outputs ** 2).mean()
    loss.name = "loss"
    loss.backward(retain_grads=True)
    frames = backward_frames(loss, title="Backpropagation through time: a tanh RNN over 3 steps, "
                                         "loss on every output, one frame per node the backward pass processes")
    path = os.path.join(out_dir, "bptt_backward.gif")
    save_animation(frames, path, seconds_per_frame=0.7, dpi=80)
    return [path]


def grad_norms(out_dir, steps=30, hidden=32, inputs=8, batch=4):
    """||dL/dh_t|| for a tanh RNN and an LSTM on the same inputs; the loss reads h_T only."""
    xs = sequence(steps, batch, inputs, seed=2)
    readout = np.random.default_rng(3).normal(size=(batch, hidden)).astype(tg.get_default_dtype())
    series = {}
    for label, model in (("tanh RNN", models.RNN(inputs, hidden, rng=4)),
                         ("LSTM (forget bias 1)", models.LSTM(inputs, hidden, forget_bias=1.0, rng=4))):
        outputs, state = model(xs)
        h_last = state[0] if isinstance(state, tuple) else state
        loss = (h_last * readout).sum()
        loss.backward(retain_grads=True)
        series[label] = plots.step_grad_norms(outputs)
    import matplotlib

    matplotlib.use("Agg")
    path = os.path.join(out_dir, "grad_norms.png")
    fig = plots.plot_grad_norms(
        series, path=path,
        title=f"Backpropagation through time: gradient reaching h_t\n(loss on step {steps - 1} only, H={hidden})",
    )
    import matplotlib.pyplot as plt

    plt.close(fig)
    return [path], series


def scaled_rnn(rho, inputs, hidden, output_size=None, seed=0):
    """A tanh RNN whose W_hh is rescaled to spectral radius ``rho``."""
    model = models.RNN(inputs, hidden, output_size=output_size, rng=seed)
    W = model.cell.W_hh.data
    W *= rho / np.max(np.abs(np.linalg.eigvals(W)))
    return model


def exploding(out_dir, steps=40, hidden=32, batch=16, train_steps=200):
    """Vanishing and exploding gradients, and gradient clipping (the seed's caution on simple RNNs).

    Left: ``||dh_T/dh_t||`` (``models.jacobian_norms``) for a tanh RNN whose recurrent
    matrix has spectral radius 0.7, 1.0 or 1.5, and an LSTM. Right: a tanh RNN
    with spectral radius 1.5 trained by SGD to recall its first input after
    ``steps`` steps, with and without ``clip_grad_norm_`` at 1.0.
    """
    from tinygraph import optim
    from tinygraph.nn import functional as F

    xs = np.random.default_rng(5).uniform(-1, 1, size=(steps, 4, 1)).astype(tg.get_default_dtype())
    jacobians = {}
    for rho in (0.7, 1.0, 1.5):
        hs, h_T = scaled_rnn(rho, 1, hidden).forward_hidden(xs)
        jacobians[f"tanh RNN, spectral radius {rho}"] = models.jacobian_norms(h_T, models.step_outputs(hs))
    hs, (h_T, _) = models.LSTM(1, hidden, forget_bias=1.0, rng=0).forward_hidden(xs)
    jacobians["LSTM (forget bias 1)"] = models.jacobian_norms(h_T, models.step_outputs(hs))

    def recall_first(outputs, target):
        return F.mse_loss(outputs[-1], target)

    losses = {}
    for label, clip in (("no clipping", None), ("clip_grad_norm_ at 1.0", 1.0)):
        model = scaled_rnn(1.5, 1, hidden, output_size=1)
        opt = optim.SGD(model.parameters(), lr=0.1)
        rng = np.random.default_rng(1)
        curve = []
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(train_steps):
                batch_xs = rng.uniform(-1, 1, size=(steps, batch, 1)).astype(tg.get_default_dtype())
                if curve and not np.isfinite(curve[-1]):
                    curve.append(np.nan)  # diverged: the parameters are inf/nan from here on
                    continue
                result = models.train_step(model, batch_xs, batch_xs[0], recall_first, optimizer=opt, max_norm=clip)
                curve.append(result.loss)
        losses[label] = np.array(curve)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), dpi=110)
    plots.plot_grad_norms(jacobians, ax=left, ylabel="‖∂h_T/∂h_t‖ (Frobenius)")
    for label, curve in losses.items():
        right.plot(np.arange(len(curve)), np.where(np.isfinite(curve), curve, np.nan), linewidth=1.4, label=label)
        bad = np.flatnonzero(~np.isfinite(curve) | (curve > 1e3))
        if bad.size:
            right.axvline(bad[0], color="0.4", linestyle=":", linewidth=1)
            right.annotate(f" {label}: the loss leaves the chart at step {bad[0]}\n"
                           f" and is inf/nan from step {np.argmin(np.isfinite(curve))}",
                           (bad[0], 0.97), xycoords=("data", "axes fraction"), ha="left", va="top", fontsize=9,
                           color="0.3")
    right.set_yscale("log")
    right.set_ylim(1e-2, 1e3)
    right.set_xlabel("training step (SGD, lr 0.1)")
    right.set_ylabel(f"loss (recall x_1 after {steps} steps)")
    right.set_title("Exploding gradients (spectral radius 1.5) and clipping")
    right.grid(True, alpha=0.35)
    right.legend(frameon=False, loc="lower right")
    left.set_title(f"‖∂h_T/∂h_t‖ over {steps} steps: vanishing (radius < 1), exploding (> 1)")
    fig.tight_layout()
    path = os.path.join(out_dir, "exploding.png")
    plots._save_figure(fig, path, "png")
    plt.close(fig)
    return [path], jacobians, losses


def limitations(out_dir, hidden=32, batch=32, steps=600):
    """Two of the seed's cautions, measured by training.

    Short effective memory: a tanh RNN and an LSTM (forget bias 1), each trained
    with Adam to output x_1 after reading T values, for growing T; the final loss
    relative to the target's variance (1 = learned nothing). State bottleneck:
    an encoder-decoder (``examples/sequence_patterns.py``) reversing token
    sequences of growing length through a state of 8 or 32 units; greedy
    token accuracy.
    """
    from tinygraph import optim
    from tinygraph.nn import functional as F

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sequence_patterns import Reverser, fit

    def recall_loss(cls, T, **options):
        model = cls(1, hidden, output_size=1, rng=0, **options)
        opt = optim.Adam(model.parameters(), lr=0.003)
        rng = np.random.default_rng(0)
        losses = []
        for _ in range(steps):
            xs = rng.uniform(-1, 1, size=(T, batch, 1)).astype(tg.get_default_dtype())
            result = models.train_step(model, xs, xs[0], lambda out, target: F.mse_loss(out[-1], target),
                                       optimizer=opt, max_norm=1.0)
            losses.append(result.loss)
        return float(np.mean(losses[-50:]) * 3)  # uniform(-1, 1) has variance 1/3

    def reversal_accuracy(T, state_size, vocab=6):
        rng = np.random.default_rng(0)
        model = Reverser(vocab, hidden=state_size)

        def sample():
            tokens = rng.integers(0, vocab, size=(T, batch))
            target = tokens[::-1]
            return tokens, np.concatenate([np.full((1, batch), vocab), target[:-1]]), target

        def loss_fn():
            tokens, decoder_inputs, target = sample()
            return F.cross_entropy(model(tokens, decoder_inputs), target)

        fit(model.parameters(), loss_fn, steps, lr=0.01)
        scores = []
        for _ in range(4):
            tokens, _, target = sample()
            scores.append(float((model.greedy(tokens, T) == target).mean()))
        return float(np.mean(scores))

    delays = [2, 5, 10, 15, 20, 30]
    memory = {"tanh RNN": [recall_loss(models.RNN, T) for T in delays],
              "LSTM (forget bias 1)": [recall_loss(models.LSTM, T, forget_bias=1.0) for T in delays]}
    lengths = [3, 6, 9, 12, 16]
    bottleneck = {f"state of {h} units": [reversal_accuracy(T, h) for T in lengths] for h in (8, 32)}

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), dpi=110)
    for label, values in memory.items():
        left.plot(delays, values, marker="o", linewidth=1.6, label=label)
    left.axhline(1.0, color="0.5", linestyle=":", linewidth=1)
    left.set_xlabel("T: steps between x_1 and the answer")
    left.set_ylabel("final loss / variance (1 = nothing learned)")
    left.set_title(f"Short effective memory: recall x_1 after T steps ({steps} Adam steps)")
    left.grid(True, alpha=0.35)
    left.legend(frameon=False)
    for label, values in bottleneck.items():
        right.plot(lengths, values, marker="o", linewidth=1.6, label=label)
    right.axhline(1 / 6, color="0.5", linestyle=":", linewidth=1)
    right.set_ylim(0, 1.05)
    right.set_xlabel("sequence length")
    right.set_ylabel("greedy token accuracy (chance 1/6)")
    right.set_title("State bottleneck: encoder-decoder reversing a sequence")
    right.grid(True, alpha=0.35)
    right.legend(frameon=False)
    fig.tight_layout()
    path = os.path.join(out_dir, "limitations.png")
    plots._save_figure(fig, path, "png")
    plt.close(fig)
    return [path], dict(zip(delays, zip(*memory.values()))), {h: dict(zip(lengths, v)) for h, v in bottleneck.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default=DOCS)
    args = parser.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    written = rnn_unrolled(args.out_dir) + lstm_folded(args.out_dir) + rnn_grads(args.out_dir)
    written += bptt_backward(args.out_dir)
    paths, series = grad_norms(args.out_dir)
    written += paths
    paths, jacobians, losses = exploding(args.out_dir)
    written += paths
    paths, memory, bottleneck = limitations(args.out_dir)
    written += paths
    for path in written:
        print("wrote", os.path.normpath(path))
    for label, norms in series.items():
        print(f"{label}: ||dL/dh_0|| = {norms[0]:.2e}, ||dL/dh_T|| = {norms[-1]:.2e}")
    for label, norms in jacobians.items():
        print(f"{label}: ||dh_T/dh_0|| = {norms[0]:.2e}")
    for label, curve in losses.items():
        finite = np.isfinite(curve)
        status = f"final loss {curve[-1]:.3f}" if finite.all() else f"diverged at step {np.argmin(finite)}"
        print(f"training with {label}: first loss {curve[0]:.3f}, {status}")
    for T, (rnn_loss, lstm_loss) in memory.items():
        print(f"recall after T={T}: tanh RNN loss/var {rnn_loss:.3f}, LSTM loss/var {lstm_loss:.3f}")
    for label, scores in bottleneck.items():
        print(f"reversal with a {label}: " + ", ".join(f"length {n}: {a:.2f}" for n, a in scores.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
