"""Regenerate the pictures in docs/ through the documented API: graph drawings (need Graphviz
'dot'), the interactive page's screenshot (needs Chromium; skipped without it) and the plots
(need matplotlib: pip install tinygraph[plot]).

    python examples/make_pictures.py                 # writes into docs/
    python examples/make_pictures.py --out-dir /tmp/pictures
    python examples/make_pictures.py --only rnn_unrolled lstm_folded

Every drawing uses the textbook build (``fused=False``: the seed's equations inside each step).
Pictures, each with the call that makes it (the README's captions name the same call):
    rnn_unrolled.svg/.png   tinygraph draw --model rnn --steps 3 --out docs/rnn_unrolled.svg
    lstm_unrolled.svg/.png  tinygraph draw --model lstm --steps 2 --out docs/lstm_unrolled.svg
    lstm_folded.svg/.png    tinygraph draw --model lstm --steps 5 --folded --out docs/lstm_folded.svg
    rnn_grads.svg/.png      tg.draw(loss, grads=True): a tanh RNN, loss on the last step only
    bptt_sum.svg/.png       models.draw_bptt_sum(loss, model.cell.W_hh, path=(L_3, 1))
    tbptt.svg/.png          models.draw_truncated_bptt(models.RNN(2, 3, fused=False), xs, k=3)
    bptt_backward.gif       backward_frames(loss) + save_animation: a tanh RNN, one frame per node
    lstm_backward.gif       tinygraph draw --model lstm --steps 3 --animate --out docs/lstm_backward.gif
                            (one frame per step cluster; needs Pillow, which comes with matplotlib)
    graph_page.html/.png    tinygraph draw --model rnn --steps 3 --out docs/graph_page.html, and a
                            screenshot of it in headless Chromium (#step=1&walk=7&node=n15)
    grad_norms.png          ||dL/dh_t|| over 30 steps, tanh RNN versus LSTM (log scale)
    exploding.png           ||dh_T/dh_t|| for recurrent weights of spectral radius 0.7 / 1.0 / 1.5,
                            and training with and without gradient clipping
    limitations.png         short effective memory (recall x_1 after T steps: tanh RNN vs LSTM) and
                            the encoder-decoder state bottleneck (reversal accuracy vs length)
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np


from tinygraph import models  # noqa: E402
import tinygraph as tg  # noqa: E402
from tinygraph.cli import main as tinygraph_cli  # noqa: E402
from tinygraph.drawing import plots, save  # noqa: E402

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs")


def sequence(steps, batch, size, seed=0, requires_grad=False):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(steps, batch, size)).astype(tg.get_default_dtype())
    return tg.tensor(data, name="x", requires_grad=requires_grad)


def save_both(g, out_dir, stem):
    return [save(g, os.path.join(out_dir, stem + ".svg")), save(g, os.path.join(out_dir, stem + ".png"), dpi=110)]


def draw_command(out_dir, stem, *flags, formats=("svg", "png")):
    """``tinygraph draw <flags> --out <out_dir>/<stem>.<format>``, exactly as from the shell."""
    written = []
    for fmt in formats:
        path = os.path.join(out_dir, f"{stem}.{fmt}")
        if tinygraph_cli(["draw", *flags, "--out", path]) != 0:
            raise RuntimeError(f"tinygraph draw {' '.join(flags)} --out {path} failed")
        written.append(path)
    return written


def rnn_unrolled(out_dir):
    return draw_command(out_dir, "rnn_unrolled", "--model", "rnn", "--steps", "3")


def lstm_unrolled(out_dir):
    return draw_command(out_dir, "lstm_unrolled", "--model", "lstm", "--steps", "2")


def lstm_folded(out_dir):
    return draw_command(out_dir, "lstm_folded", "--model", "lstm", "--steps", "5", "--folded")


def rnn_grads(out_dir):
    model = models.RNN(2, 3, fused=False, rng=1)
    model.cell.W_hh.data *= 0.5  # small recurrent weights: the gradient vanishes visibly within 5 steps
    outputs, h_last = model(sequence(5, 1, 2, seed=1))
    loss = (h_last ** 2).sum()
    loss.name = "loss"
    loss.backward(retain_grads=True)
    g = tg.draw(loss, grads=True,
                title="tg.draw(loss, grads=True): loss on the last step only; ||dL/dh_t|| shrinks going back in time")
    return save_both(g, out_dir, "rnn_grads")


def step_losses(model, xs):
    """The seed's L = sum_t L_t with L_t = ||h_t||^2, each L_t its own named node."""
    hs, _ = model(xs, tg.tensor(np.full((xs.shape[1], model.hidden_size), 0.5, dtype=tg.get_default_dtype()),
                                name="h0"))
    parts = []
    for t, h in enumerate(models.step_outputs(hs)):
        L = (h ** 2).sum()
        L.name = f"L_{t}"
        parts.append(L)
    loss = parts[0]
    for L in parts[1:]:
        loss = loss + L
    loss.name = "loss"
    return loss, parts


def bptt_sum(out_dir, steps=4):
    model = models.RNN(2, 3, fused=False, rng=0)
    loss, parts = step_losses(model, sequence(steps, 1, 2))
    g = models.draw_bptt_sum(
        loss, model.cell.W_hh, path=(parts[-1], 1),
        title=f"models.draw_bptt_sum(loss, model.cell.W_hh, path=(L_{steps - 1}, 1)): dL/dW_hh is a sum of one term "
              f"per step (bars); in orange, the way the loss of step {steps - 1} takes back to W_hh at step 1")
    return save_both(g, out_dir, "bptt_sum")


def tbptt(out_dir):
    model = models.RNN(2, 3, fused=False, rng=0)
    xs = np.random.default_rng(0).normal(size=(6, 1, 2))
    g = models.draw_truncated_bptt(
        model, xs, k=3,
        title="models.draw_truncated_bptt(model, xs, k=3): two chunks of 3 steps; the state passes on detached "
              "(red dashed cut), so no gradient flows back across it")
    return save_both(g, out_dir, "tbptt")


def bptt_backward(out_dir):
    """Backpropagation through time as an animation: the engine's backward walk, node by node."""
    from tinygraph.drawing import backward_frames, save_animation

    model = models.RNN(2, 3, fused=False, rng=0)
    outputs, _ = model(sequence(3, 1, 2))
    loss = (outputs ** 2).mean()
    loss.name = "loss"
    loss.backward(retain_grads=True)
    frames = backward_frames(loss, title="backward_frames(loss): a tanh RNN over 3 steps, "
                                         "one frame per node the backward pass processes")
    path = os.path.join(out_dir, "bptt_backward.gif")
    save_animation(frames, path, seconds_per_frame=0.7, dpi=80)
    return [path]


def lstm_backward(out_dir):
    return draw_command(out_dir, "lstm_backward", "--model", "lstm", "--steps", "3", "--animate", formats=("gif",))


PAGE_VIEW = "#step=1&walk=7&node=n15"  # slider on step 1, backward step 7, h_1 in the panel


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def screenshot(html_path, png_path, fragment="", size=(1400, 900)):
    """A PNG of the page as headless Chromium shows it (flags that also work as root)."""
    profile = tempfile.mkdtemp(prefix="tinygraph-chromium-")
    try:
        run = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--hide-scrollbars", f"--window-size={size[0]},{size[1]}",
             f"--screenshot={os.path.abspath(png_path)}", "file://" + os.path.abspath(html_path) + fragment],
            capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if run.returncode != 0 or not os.path.exists(png_path):
        raise RuntimeError(f"chromium could not take the screenshot: {run.stderr[-500:]}")
    return png_path


def graph_page(out_dir):
    written = draw_command(out_dir, "graph_page", "--model", "rnn", "--steps", "3", formats=("html",))
    if chromium() is None:
        print("skipped graph_page.png: Chromium is not installed (apt-get install chromium)")
        return written
    return written + [screenshot(written[0], os.path.join(out_dir, "graph_page.png"), PAGE_VIEW)]


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

    losses, peaks = {}, {}
    for label, clip in (("no clipping", None), ("clip_grad_norm_ at 1.0", 1.0)):
        model = scaled_rnn(1.5, 1, hidden, output_size=1)
        opt = optim.SGD(model.parameters(), lr=0.1)
        rng = np.random.default_rng(1)
        curve = []
        peaks[label] = 0.0  # the largest gradient norm before clipping
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(train_steps):
                batch_xs = rng.uniform(-1, 1, size=(steps, batch, 1)).astype(tg.get_default_dtype())
                if curve and not np.isfinite(curve[-1]):
                    curve.append(np.nan)  # diverged: the parameters are inf/nan from here on
                    continue
                result = models.train_step(model, batch_xs, batch_xs[0], recall_first, optimizer=opt, max_norm=clip)
                curve.append(result.loss)
                if np.isfinite(result.grad_norm):
                    peaks[label] = max(peaks[label], float(result.grad_norm))
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
            tail = (f"\n and is inf/nan from step {np.argmin(np.isfinite(curve))}" if not np.isfinite(curve).all()
                    else "")
            right.annotate(f" {label}: the loss leaves the chart at step {bad[0]}{tail}",
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
    return [path], jacobians, losses, peaks


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


DRAWINGS = {"rnn_unrolled": rnn_unrolled, "lstm_unrolled": lstm_unrolled, "lstm_folded": lstm_folded,
            "rnn_grads": rnn_grads, "bptt_sum": bptt_sum, "tbptt": tbptt, "bptt_backward": bptt_backward,
            "lstm_backward": lstm_backward, "graph_page": graph_page}
PLOTS = ("grad_norms", "exploding", "limitations")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default=DOCS)
    parser.add_argument("--only", nargs="+", choices=sorted(DRAWINGS) + list(PLOTS),
                        help="make only these pictures (default: all)")
    args = parser.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    wanted = set(args.only or list(DRAWINGS) + list(PLOTS))
    written = []
    for name, make in DRAWINGS.items():
        if name in wanted:
            written += make(args.out_dir)
    series = jacobians = losses = memory = bottleneck = {}
    if "grad_norms" in wanted:
        paths, series = grad_norms(args.out_dir)
        written += paths
    if "exploding" in wanted:
        paths, jacobians, losses, peaks = exploding(args.out_dir)
        written += paths
    if "limitations" in wanted:
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
        print(f"training with {label}: first loss {curve[0]:.3f}, {status}, "
              f"largest gradient norm {peaks[label]:.2e}")
    for T, (rnn_loss, lstm_loss) in memory.items():
        print(f"recall after T={T}: tanh RNN loss/var {rnn_loss:.3f}, LSTM loss/var {lstm_loss:.3f}")
    for label, scores in bottleneck.items():
        print(f"reversal with a {label}: " + ", ".join(f"length {n}: {a:.2f}" for n, a in scores.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
