"""Training-step benchmark of a char-level language model: tinygraph vs hand-written numpy.

Model: embedding(65, 64) -> one LSTM, GRU or tanh-RNN layer (H) -> linear(H, 65)
-> mean cross-entropy; batch 32, float32, time-major. One step = forward +
backward (all parameter gradients), no optimizer update.

The hand-written baseline in this file is a textbook numpy BPTT: the
recurrence runs step by step with the input projection ``x_t @ W_x`` and the
weight gradients ``dW += x_t.T @ dz_t`` computed per step (the gate matrices
are stored fused, (D, 4H) and (H, 4H) for the LSTM, (D, 3H) and (H, 3H) for
the GRU, as textbook code does); the
embedding, output layer and loss are vectorised over all T*B positions. Both
run in the same process, interleaved, on the same weights and data, and the
script checks they agree before timing.

BLAS runs on one thread for both (set below, before numpy is imported).

When PyTorch is importable, its fused layer (``nn.LSTM``/``nn.GRU``/``nn.RNN``, one
thread: ``torch.set_num_threads(1)``) runs the same model on the same weights and
data in the same process, interleaved with the other two, as extra columns (its
gradients are checked against the hand-written ones first). PyTorch is never
needed: without it those columns are left out.

Usage::

    python benchmarks/bench_rnn.py                  # the full table
    python benchmarks/bench_rnn.py --H 256 --T 128 --cell lstm
    python benchmarks/bench_rnn.py --memory         # LSTM T=1000, B=32, H=128: peak memory
    python benchmarks/bench_rnn.py --keep-freed-memory   # glibc keeps freed memory (see below)

Buffer reuse: tinygraph's LSTM and GRU cells keep their big per-unroll arrays
(step outputs, their gradients, the input projection) in a pool and reuse them
in the next step when nothing refers to them any more (``Template.buffers``),
so repeated steps do not fault those pages in again; the RNN cell pools its
input projection.

Page faults: the "faults/step" columns count minor page faults per training
step (``ru_minflt``). Big arrays freed at the end of a step go back to the OS
(glibc's default thresholds) and the next step faults them in again, which is
expensive in a VM; this hits the hand-written loop too (its per-step caches),
whichever of the two ran before. ``--keep-freed-memory`` sets glibc's
``M_MMAP_THRESHOLD``/``M_TRIM_THRESHOLD`` (``mallopt``) for the whole process,
both implementations alike, so freed memory is reused: that comparison has
no page faults on either side.
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import ctypes  # noqa: E402
import gc  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402


import tinygraph as tg  # noqa: E402
from tinygraph import models  # noqa: E402
from tinygraph.models._fused_ops import GRUCellOp, LSTMCellOp, RNNCellOp  # noqa: E402
from tinygraph.ops.lazy import _add_rows  # noqa: E402

VOCAB, EMBED, BATCH = 65, 64, 32


# ---------------------------------------------------------------------------
# tinygraph model
# ---------------------------------------------------------------------------
class CharLM(tg.nn.Module):
    def __init__(self, cell, hidden, rng):
        super().__init__()
        bound = 1.0 / np.sqrt(hidden)
        self.E = tg.nn.Parameter(rng.normal(0, 0.1, (VOCAB, EMBED)).astype(np.float32))
        if cell == "lstm":
            self.rnn = models.LSTM(EMBED, hidden, rng=rng)
        elif cell == "gru":
            self.rnn = models.GRU(EMBED, hidden, rng=rng)
        else:
            self.rnn = models.RNN(EMBED, hidden, nonlinearity="tanh", rng=rng)
        self.W_out = tg.nn.Parameter(rng.uniform(-bound, bound, (hidden, VOCAB)).astype(np.float32))
        self.b_out = tg.nn.Parameter(np.zeros(VOCAB, np.float32))

    def loss(self, idx, targets):
        T, B = idx.shape
        x = self.E[idx]                                   # (T, B, 64)
        hs, _ = self.rnn(x)                               # (T, B, H)
        logits = hs.reshape(T * B, -1) @ self.W_out + self.b_out
        return tg.nn.functional.cross_entropy(logits, targets.reshape(-1))  # one fused node, like PyTorch's


def tinygraph_step(model, idx, targets):
    model.zero_grad()
    loss = model.loss(idx, targets)
    loss.backward()
    return loss


# ---------------------------------------------------------------------------
# hand-written numpy forward + BPTT (same model, same weights)
# ---------------------------------------------------------------------------
def sigmoid(a):
    with np.errstate(over="ignore"):  # exp(-a) -> inf gives the right limit 0
        return 1.0 / (1.0 + np.exp(-a))


GATE_ORDER = {"lstm": "ifog", "gru": "rzn"}


def numpy_weights(model, cell, what="data"):
    """The tinygraph model's weights (``what="data"``) or their gradients (``what="grad"``)
    in the baseline's layout (gates fused, order i, f, o, g for the LSTM, r, z, n for the GRU)."""
    c = model.rnn.cell

    def get(p):
        return getattr(p, what)

    w = {"E": get(model.E), "W_out": get(model.W_out), "b_out": get(model.b_out)}
    if cell in GATE_ORDER:
        gates = GATE_ORDER[cell]
        w["Wx"] = np.concatenate([get(getattr(c, "W_x" + k)) for k in gates], axis=1)
        w["Wh"] = np.concatenate([get(getattr(c, "W_h" + k)) for k in gates], axis=1)
        w["b"] = np.concatenate([get(getattr(c, "b_" + k)) for k in gates])
        if cell == "gru":
            w["b_hn"] = get(c.b_hn)
    else:
        w["Wx"], w["Wh"], w["b"] = get(c.W_xh), get(c.W_hh), get(c.b_h)
    return w


def numpy_step(w, idx, targets, cell):
    T, B = idx.shape
    Wx, Wh, b = w["Wx"], w["Wh"], w["b"]
    H = Wh.shape[0]
    dt = Wh.dtype
    x = w["E"][idx]
    h = np.zeros((B, H), dt)
    c = np.zeros((B, H), dt)
    hs = np.empty((T, B, H), dt)
    cache = []
    for t in range(T):
        if cell == "gru":
            ax = x[t] @ Wx + b
            ah = h @ Wh
            rz = sigmoid(ax[:, :2 * H] + ah[:, :2 * H])
            r, z = rz[:, :H], rz[:, H:]
            hn = ah[:, 2 * H:] + w["b_hn"]
            n = np.tanh(ax[:, 2 * H:] + r * hn)
            h_prev = h
            h = (1.0 - z) * n + z * h_prev
            cache.append((h_prev, rz, n, hn))
            hs[t] = h
            continue
        a = x[t] @ Wx + h @ Wh + b
        if cell == "lstm":
            s = sigmoid(a[:, :3 * H])
            g = np.tanh(a[:, 3 * H:])
            i, f, o = s[:, :H], s[:, H:2 * H], s[:, 2 * H:]
            c_prev = c
            c = f * c + i * g
            tc = np.tanh(c)
            h_prev = h
            h = o * tc
            cache.append((h_prev, c_prev, s, g, tc))
        else:
            h_prev = h
            h = np.tanh(a)
            cache.append((h_prev,))
        hs[t] = h
    hflat = hs.reshape(T * B, H)
    logits = hflat @ w["W_out"] + w["b_out"]
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    rows, cols = np.arange(T * B), targets.reshape(-1)
    loss = -np.log(p[rows, cols]).mean()
    dlogits = p
    dlogits[rows, cols] -= 1.0
    dlogits /= T * B
    grads = {"W_out": hflat.T @ dlogits, "b_out": dlogits.sum(axis=0)}
    dhs = (dlogits @ w["W_out"].T).reshape(T, B, H)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dx = np.empty_like(x)
    dh_next = np.zeros((B, H), dt)
    dc_next = np.zeros((B, H), dt)
    if cell == "gru":
        db_hn = np.zeros_like(w["b_hn"])
    for t in reversed(range(T)):
        dh = dhs[t] + dh_next
        if cell == "gru":
            h_prev, rz, n, hn = cache[t]
            r, z = rz[:, :H], rz[:, H:]
            dan = dh * (1.0 - z) * (1.0 - n * n)
            dax = np.empty((B, 3 * H), dt)
            dax[:, :H] = dan * hn
            dax[:, H:2 * H] = dh * (h_prev - n)
            dax[:, :2 * H] *= rz * (1.0 - rz)
            dax[:, 2 * H:] = dan
            dah = dax.copy()
            dah[:, 2 * H:] = dan * r
            dWx += x[t].T @ dax
            dWh += h_prev.T @ dah
            db += dax.sum(axis=0)
            db_hn += dah[:, 2 * H:].sum(axis=0)
            dx[t] = dax @ Wx.T
            dh_next = dh * z + dah @ Wh.T
            continue
        if cell == "lstm":
            h_prev, c_prev, s, g, tc = cache[t]
            i, f, o = s[:, :H], s[:, H:2 * H], s[:, 2 * H:]
            dc = dc_next + dh * o * (1.0 - tc * tc)
            da = np.empty((B, 4 * H), dt)
            da[:, :H] = dc * g
            da[:, H:2 * H] = dc * c_prev
            da[:, 2 * H:3 * H] = dh * tc
            da[:, :3 * H] *= s * (1.0 - s)
            da[:, 3 * H:] = dc * i * (1.0 - g * g)
            dc_next = dc * f
        else:
            (h_prev,) = cache[t]
            da = dh * (1.0 - hs[t] * hs[t])
        dWx += x[t].T @ da
        dWh += h_prev.T @ da
        db += da.sum(axis=0)
        dx[t] = da @ Wx.T
        dh_next = da @ Wh.T
    dE = np.zeros_like(w["E"])
    np.add.at(dE, idx.reshape(-1), dx.reshape(T * B, -1))
    grads.update(Wx=dWx, Wh=dWh, b=db, E=dE)
    if cell == "gru":
        grads["b_hn"] = db_hn
    return loss, grads


# ---------------------------------------------------------------------------
# the numpy floor: tinygraph's fused arithmetic with no graph at all
# ---------------------------------------------------------------------------
FUSED_OPS = {"lstm": (LSTMCellOp, 7), "gru": (GRUCellOp, 5), "rnn": (RNNCellOp, 1)}


def floor_step(w, idx, targets, cell, pool):
    """The same training step as the arithmetic tinygraph runs, without the engine: the
    fused cells' ops called directly on the slots of preallocated arrays (kept in ``pool``
    across calls, as tinygraph's buffer pool keeps them), the input projection, the weight
    gradients and the input gradient each as one matmul over all T*B rows, the loss head
    vectorised. No graph, no per-step node: what a numpy program can at best do with this
    arithmetic, so ``tinygraph / floor`` is the engine's own cost and ``floor / torch`` is
    the gap that numpy's per-step calls leave to PyTorch's fused kernel."""
    T, B = idx.shape
    Wx, Wh, b = w["Wx"], w["Wh"], w["b"]
    H = Wh.shape[0]
    op_class, blocks = FUSED_OPS[cell]
    if cell == "gru":  # the op's x_proj gate order is n, r, z (its W_h order is r, z, n like the baseline's)
        order = np.concatenate([np.arange(2 * H, 3 * H), np.arange(0, 2 * H)])
        Wx, b = Wx[:, order], b[order]
    G = Wx.shape[1]
    width = 4 * H if cell == "gru" else G
    key = (cell, T, B, H)
    if key not in pool:
        pool[key] = (np.empty((blocks, T, B, H), Wh.dtype), np.empty((T, B, width), Wh.dtype),
                     np.empty((T * B, G), Wh.dtype))
    steps, grads, XP = pool[key]
    x = w["E"][idx].reshape(T * B, -1)
    np.matmul(x, Wx, out=XP)
    XP += b
    xp = XP.reshape(T, B, G)
    h = np.zeros((B, H), Wh.dtype)
    c = np.zeros((B, H), Wh.dtype)
    extra = {"lstm": lambda: (c,), "gru": lambda: (w["b_hn"],), "rnn": lambda: ()}[cell]
    ops, inputs = [], []
    for t in range(T):
        op = op_class(out=steps[:, t], grad=grads[t])
        args = (xp[t], h, Wh) + extra()
        out = op._compute(*args)
        op.saved = out
        ops.append(op)
        inputs.append(args)
        h = out[0]
        if cell == "lstm":
            c = out[1]
    hflat = steps[0].reshape(T * B, H)
    logits = hflat @ w["W_out"] + w["b_out"]
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    total = e.sum(axis=1, keepdims=True)
    rows, cols = np.arange(T * B), targets.reshape(-1)
    loss = float(np.mean(np.log(total[:, 0]) - z[rows, cols]))
    p = e / total
    p[rows, cols] -= 1.0
    p /= T * B
    grads_out = {"W_out": hflat.T @ p, "b_out": p.sum(axis=0)}
    dhs = (p @ w["W_out"].T).reshape(T, B, H)
    g_h = g_c = None
    db_hn = 0.0
    for t in reversed(range(T)):
        g = dhs[t] if g_h is None else dhs[t] + g_h
        if cell == "lstm":
            _, g_h, _, g_c = ops[t].vjp((g, g_c), None, *inputs[t])
        elif cell == "gru":
            _, g_h, _, d_hn = ops[t].vjp(g, None, *inputs[t])
            db_hn = db_hn + d_hn.sum(axis=0)
        else:
            _, g_h, _ = ops[t].vjp(g, None, *inputs[t])
    dZ = grads.reshape(T * B, width)
    d_x, d_a = (dZ[:, :3 * H], dZ[:, H:]) if cell == "gru" else (dZ, dZ)
    # h_{t-1} of steps 1..T-1 (step 0's is the zero state): one tall matmul for dW_h
    grads_out["Wh"] = steps[0, :T - 1].reshape(-1, H).T @ d_a[B:]
    grads_out["Wx"] = x.T @ d_x
    grads_out["b"] = d_x.sum(axis=0)
    dE = np.zeros_like(w["E"])
    _add_rows(dE, idx.reshape(-1), d_x @ Wx.T)
    grads_out["E"] = dE
    if cell == "gru":
        grads_out["b_hn"] = db_hn
    return loss, grads_out


def check_floor(w, idx, targets, cell, pool):
    loss, got = floor_step(w, idx, targets, cell, pool)
    ref_loss, ref = numpy_step(w, idx, targets, cell)
    keys = ["E", "W_out", "b_out", "Wh"] + (["b_hn"] if cell == "gru" else [])
    worst = max(float(np.max(np.abs(got[k] - ref[k]))) / (float(np.max(np.abs(ref[k]))) + 1e-30) for k in keys)
    if abs(loss - ref_loss) > 1e-4 * abs(ref_loss) or worst > 1e-3:
        raise SystemExit(f"bench_rnn: the numpy floor and the baseline disagree (loss {loss} vs {ref_loss}, "
                         f"worst relative gradient difference {worst:.2e})")


def check_agreement(model, w, idx, targets, cell):
    loss = tinygraph_step(model, idx, targets)
    ref_loss, ref = numpy_step(w, idx, targets, cell)
    got = numpy_weights(model, cell, "grad")
    worst = max(float(np.max(np.abs(got[k] - ref[k]))) / (float(np.max(np.abs(ref[k]))) + 1e-30) for k in ref)
    if abs(loss.item() - ref_loss) > 1e-4 * abs(ref_loss) or worst > 1e-3:
        raise SystemExit(f"bench_rnn: tinygraph and numpy disagree (loss {loss.item()} vs {ref_loss}, "
                         f"worst relative gradient difference {worst:.2e})")
    return worst


# ---------------------------------------------------------------------------
# PyTorch's fused layer on the same weights (optional)
# ---------------------------------------------------------------------------
try:
    import torch  # noqa: E402

    torch.set_num_threads(1)
except ImportError:  # the columns are optional
    torch = None

# PyTorch's gate order within its fused matrices, in the baseline's gate letters
TORCH_GATES = {"lstm": "ifgo", "gru": "rzn"}


def torch_model(w, cell):
    """(layer, parameters dict) of PyTorch holding the baseline's weights ``w``, in float32."""
    H = w["Wh"].shape[0]
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](EMBED, H)
    Wx, Wh, b = w["Wx"], w["Wh"], w["b"]
    if cell in TORCH_GATES:
        ours = GATE_ORDER[cell]
        cols = [np.arange(ours.index(k) * H, ours.index(k) * H + H) for k in TORCH_GATES[cell]]
        order = np.concatenate(cols)
        Wx, Wh, b = Wx[:, order], Wh[:, order], b[order]
    b_hh = np.zeros_like(b)
    if cell == "gru":
        b_hh[2 * H:] = w["b_hn"]  # torch's n gate: tanh(x W_in + b_in + r * (h W_hn + b_hn))
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(Wx.T)))
        layer.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(Wh.T)))
        layer.bias_ih_l0.copy_(torch.from_numpy(b))
        layer.bias_hh_l0.copy_(torch.from_numpy(b_hh))
    params = {"E": torch.tensor(w["E"], requires_grad=True), "W_out": torch.tensor(w["W_out"], requires_grad=True),
              "b_out": torch.tensor(w["b_out"], requires_grad=True)}
    return layer, params


def torch_step(model, idx, targets):
    layer, params = model
    for p in list(layer.parameters()) + list(params.values()):
        p.grad = None
    T, B = idx.shape
    hs, _ = layer(params["E"][idx])
    logits = hs.reshape(T * B, -1) @ params["W_out"] + params["b_out"]
    loss = torch.nn.functional.cross_entropy(logits, targets.reshape(-1))
    loss.backward()
    return loss


def check_torch(model, w, idx, targets, cell):
    loss = torch_step(model, idx, targets)
    ref_loss, ref = numpy_step(w, idx, targets, cell)
    got = model[1]["W_out"].grad.numpy()
    worst = float(np.max(np.abs(got - ref["W_out"]))) / float(np.max(np.abs(ref["W_out"])))
    if abs(loss.item() - ref_loss) > 1e-4 * abs(ref_loss) or worst > 1e-3:
        raise SystemExit(f"bench_rnn: PyTorch and numpy disagree (loss {loss.item()} vs {ref_loss}, "
                         f"W_out gradient {worst:.2e})")


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------
def timed(fn, *args):
    """(wall seconds, CPU seconds of this process, minor page faults) for one call."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return (time.perf_counter() - wall, time.process_time() - cpu,
            resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)


def keep_freed_memory():
    """Ask glibc malloc never to return freed memory to the OS (nor to mmap big blocks)."""
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1


def bench_one(cell, H, T, repeats, rng):
    model = CharLM(cell, H, rng)
    w = numpy_weights(model, cell)
    idx = rng.integers(0, VOCAB, (T, BATCH))
    targets = rng.integers(0, VOCAB, (T, BATCH))
    worst = check_agreement(model, w, idx, targets, cell)
    pool = {}
    check_floor(w, idx, targets, cell, pool)
    runs = [("tg", tinygraph_step, (model, idx, targets)), ("np", numpy_step, (w, idx, targets, cell)),
            ("floor", floor_step, (w, idx, targets, cell, pool))]
    if torch is not None:
        tmodel, t_idx, t_targets = torch_model(w, cell), torch.from_numpy(idx), torch.from_numpy(targets)
        check_torch(tmodel, w, t_idx, t_targets, cell)
        runs.append(("torch", torch_step, (tmodel, t_idx, t_targets)))
    times = {name: [] for name, _, _ in runs}
    for _ in range(repeats):  # interleaved, so load changes hit all alike
        for name, fn, fargs in runs:
            times[name].append(timed(fn, *fargs))
    med = {name: np.median(v, axis=0) for name, v in times.items()}
    tg_wall, tg_cpu, tg_faults = med["tg"]
    np_wall, np_cpu, np_faults = med["np"]
    torch_wall, torch_cpu = (float(med["torch"][0]), float(med["torch"][1])) if "torch" in med else (None, None)
    return (float(tg_wall), float(np_wall), float(tg_cpu / np_cpu), int(tg_faults), int(np_faults), worst,
            torch_wall, None if torch_cpu is None else float(tg_cpu / torch_cpu), float(med["floor"][0]))


def graph_summary(cell, H, T, rng):
    model = CharLM(cell, H, rng)
    idx = rng.integers(0, VOCAB, (T, BATCH))
    loss = model.loss(idx, idx)
    g = tg.Graph(loss)
    return len(g), dict(g.instances())


def run_table(args):
    rng = np.random.default_rng(0)
    print(f"bench_rnn: one training step (forward + backward), batch {BATCH}, float32, embedding {VOCAB}x{EMBED}, "
          f"1 BLAS thread, median of {args.repeats} interleaved runs")
    print("ratio = tinygraph / numpy wall time; cpu ratio = the same for process CPU time (less sensitive to "
          "other load on the machine)")
    print("floor = tinygraph's fused arithmetic run by a plain numpy loop, no graph (floor_step): x floor = "
          "tinygraph / floor, the engine's own cost")
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}")
    if torch is not None:
        print(f"torch {torch.__version__} (fused nn.LSTM/GRU/RNN, {torch.get_num_threads()} thread): columns "
              f"'torch ms' and 'x torch' = tinygraph / torch wall time ('cpu x torch': CPU time)")
    blas = blas_kernel()
    if blas:
        print(f"BLAS: {blas}")
    head = f"{'cell':<5} {'H':>4} {'T':>4} {'tinygraph ms':>13} {'numpy ms':>9} {'tg tok/s':>9} {'np tok/s':>9} " \
           f"{'ratio':>6} {'cpu ratio':>9} {'faults/step tg':>14} {'np':>5} {'max rel grad diff':>18} " \
           f"{'floor ms':>9} {'x floor':>8}"
    if torch is not None:
        head += f" {'torch ms':>9} {'x torch':>8} {'cpu x torch':>11} {'torch/np':>8} {'floor/torch':>11}"
    print(head)
    print("-" * len(head))
    for cell in args.cell:
        for H in args.H:
            for T in args.T:
                (t_tg, t_np, cpu_ratio, f_tg, f_np, worst, t_torch, cpu_torch,
                 t_floor) = bench_one(cell, H, T, args.repeats, rng)
                tokens = T * BATCH
                line = (f"{cell:<5} {H:>4} {T:>4} {1e3 * t_tg:>13.2f} {1e3 * t_np:>9.2f} {tokens / t_tg:>9.0f} "
                        f"{tokens / t_np:>9.0f} {t_tg / t_np:>6.2f} {cpu_ratio:>9.2f} {f_tg:>14} {f_np:>5} "
                        f"{worst:>18.1e} {1e3 * t_floor:>9.2f} {t_tg / t_floor:>8.2f}")
                if t_torch is not None:
                    line += (f" {1e3 * t_torch:>9.2f} {t_tg / t_torch:>8.2f} {cpu_torch:>11.2f} {t_torch / t_np:>8.2f}"
                             f" {t_floor / t_torch:>11.2f}")
                print(line)
                sys.stdout.flush()
    nodes, inst = graph_summary("lstm", 128, 32, rng)
    print(f"graph of the LSTM H=128 T=32 step: {nodes} nodes, instances {inst} (explicit, tagged, drawable)")


def blas_kernel():
    """The BLAS library and its kernel (threadpoolctl's ``architecture``), if threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    parts = [f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')}, {i.get('num_threads')} thread(s)"
             for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(parts) or None


def run_memory(args):
    """Peak traced memory of one LSTM step over a long sequence, against what BPTT must keep."""
    rng = np.random.default_rng(0)
    T, H = args.memory_T, 128
    model = CharLM("lstm", H, rng)
    w = numpy_weights(model, "lstm")
    idx = rng.integers(0, VOCAB, (T, BATCH))
    itemsize = 4
    # What any BPTT must keep until the backward pass: per step the gate activations
    # (4H), c_t and tanh(c_t) (2H), h_t (H) and the input x_t (64), per batch row.
    must_keep = T * BATCH * (7 * H + EMBED) * itemsize
    params = sum(p.size for p in model.parameters()) * itemsize
    print(f"bench_rnn --memory: LSTM, T={T}, B={BATCH}, H={H}, float32")
    print(f"  activations BPTT must keep: {must_keep / 2**20:8.1f} MiB (T*B*(7H+64) floats); "
          f"parameters {params / 2**20:.2f} MiB")
    for label, fn, fargs in (("tinygraph", tinygraph_step, (model, idx, idx)),
                             ("numpy hand-written", numpy_step, (w, idx, idx, "lstm"))):
        gc.collect()
        tracemalloc.start()
        start = time.perf_counter()
        fn(*fargs)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  {label:<19} peak {peak / 2**20:8.1f} MiB  = {peak / must_keep:5.2f}x what BPTT must keep"
              f"  ({elapsed:.2f} s under tracemalloc)")
    pool = model.rnn.cell.buffers
    print(f"  tinygraph keeps {pool.nbytes / 2**20:.1f} MiB in the LSTM cell's buffer pool between steps (the "
          f"workspaces the next step reuses; included in the peak above; cell.release_buffers() frees them)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", nargs="+", default=["lstm", "gru", "rnn"], choices=["lstm", "gru", "rnn"])
    parser.add_argument("--H", nargs="+", type=int, default=[128, 256, 512])
    parser.add_argument("--T", nargs="+", type=int, default=[32, 128])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--memory", action="store_true", help="only the T=1000 LSTM peak-memory measurement")
    parser.add_argument("--memory-T", type=int, default=1000)
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="glibc mallopt: reuse freed memory instead of returning it to the OS "
                             "(both implementations)")
    args = parser.parse_args(argv)
    if args.keep_freed_memory:
        print(f"glibc mallopt M_MMAP_THRESHOLD/M_TRIM_THRESHOLD = 1 GiB: {'set' if keep_freed_memory() else 'FAILED'}")
    if args.memory:
        run_memory(args)
    else:
        run_table(args)


if __name__ == "__main__":
    main()
