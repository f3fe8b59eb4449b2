"""Figures of docs/sequence/README.md from the output folders of `tinygraph train`.

Run from the repository root after the training commands listed in README.md:

    python docs/sequence/figures.py runs docs/sequence

It reads runs/<name>/{history,metrics}.json and checkpoint.npz and writes PNGs.
"""
import json
import os
import shutil
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinygraph import models  # noqa: E402
from tinygraph.models import recipes, tasks  # noqa: E402


def read(runs, name, what):
    with open(os.path.join(runs, name, what)) as f:
        return json.load(f)


def rebuild(runs, name):
    saved = models.load_checkpoint(os.path.join(runs, name, "checkpoint.npz"))
    r = recipes.recipe(saved["extra"]["task"], saved["extra"]["config"])
    r.load()
    model = r.build()
    model.load_state_dict(saved["model"])
    return r, model


def adding(runs, out):
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    for name, label, color in (("adding_lstm", "LSTM", "#08519c"), ("adding_gru", "GRU", "#238b45"),
                               ("adding_rnn", "tanh RNN", "#d94801")):
        if os.path.exists(os.path.join(runs, name)):
            s, v = zip(*read(runs, name, "history.json")["val"]["mse"])
            ax.plot(s, v, "o-", ms=3, color=color, label=label)
    ax.axhline(1 / 6, color="0.5", ls="--", lw=1, label="baseline: predict the mean (1/6)")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step (batches of 32)")
    ax.set_ylabel("validation MSE")
    ax.set_title("adding problem, T = 50, hidden 32")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "adding.png"))
    plt.close(fig)


def dates(runs, out):
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    for name, label, color in (("dates_dot", "dot attention", "#08519c"), ("dates_none", "no attention", "#d94801")):
        m = read(runs, name, "metrics.json")
        keys = list(m["exact_match_by_input_length"])
        ax.plot(range(len(keys)), [m["exact_match_by_input_length"][k] for k in keys], "o-", color=color,
                label=f"{label} ({m['steps']} steps): {m['exact_match']:.1%} overall")
    ax.set_xticks(range(len(keys)), keys)
    ax.set_xlabel("input length (characters)")
    ax.set_ylabel("exact match, 500 held-out dates")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("dates -> ISO 8601, GRU seq2seq, hidden 64")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "dates_accuracy_by_length.png"))
    plt.close(fig)

    r, model = rebuild(runs, "dates_dot")
    d = tasks.dates(n=1, seed=7)
    out_tokens = model.decode(d["src"], 12, bos=tasks.generated.BOS, eos=tasks.generated.EOS)[0]
    w = model.last_attention[: len(out_tokens), 0, : d["src_lengths"][0]]
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=110)
    ax.imshow(w, cmap="Blues", aspect="auto")
    ax.set_xticks(range(w.shape[1]), list(d["texts"][0]))
    ax.set_yticks(range(len(out_tokens)), [d["target_chars"][i - 3] for i in out_tokens])
    ax.set_xlabel("input character")
    ax.set_ylabel("output character")
    ax.set_title("attention weights per output step (models.Seq2Seq.last_attention)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "dates_attention.png"))
    plt.close(fig)


def sunspots(runs, out):
    r, model = rebuild(runs, "sunspots")
    m = read(runs, "sunspots", "metrics.json")
    pred = model(r.test_x).data * r.scale
    years = tasks.sunspots()["years"][r.split:]
    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=110)
    ax.plot(years, r.test_y * r.scale, "k-", lw=1.5, label="observed")
    ax.plot(years, pred, "-", color="#08519c", label=f"GRU, one year ahead (MSE {m['test_mse']:.0f})")
    ax.plot(years, r.test_x[-1, :, 0] * r.scale, ":", color="#d94801",
            label=f"persistence: last year's (MSE {m['persistence_mse']:.0f})")
    ax.set_xlabel("year (held out: trained on 1700-1949)")
    ax.set_ylabel("yearly sunspot number")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "sunspots.png"))
    plt.close(fig)


def copy_run_pictures(runs, out):
    for name in ("shakespeare", "shakespeare_long"):
        if os.path.exists(os.path.join(runs, name, "loss.png")):
            shutil.copy(os.path.join(runs, name, "loss.png"), os.path.join(out, f"{name}_loss.png"))
    dot = os.path.join(runs, "dates_dot", "slice.dot")
    if os.path.exists(dot) and shutil.which("dot"):
        # rendered at a low resolution: the full-size PNG is over 1 MB
        subprocess.run(["dot", "-Tpng", "-Gdpi=45", dot, "-o", os.path.join(out, "dates_slice.png")], check=True)


if __name__ == "__main__":
    runs, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for make in (adding, dates, sunspots, copy_run_pictures):
        make(runs, out)
