"""Per-node cost of the tinygraph engine, against bare numpy in the same process.

Prints three tables:

1. per op: microseconds per node for forward + backward on tiny tensors, next
   to the bare numpy calls that do the same arithmetic (forward and VJP);
2. a chain of 10^5 tiny adds (``h = h + c``): forward, backward and total
   microseconds per node, against the bare numpy add loop (and PyTorch when it
   is installed, as an optional reference);
3. backward of that chain: seconds and peak traced memory.

Usage::

    python benchmarks/bench_engine.py [--chain 100000] [--repeat 5]
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

import tinygraph as tg  # noqa: E402


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def per_op_table(repeat, n=10_000):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4)).astype(np.float32)
    b = rng.normal(size=(4, 4)).astype(np.float32)
    g = np.ones((4, 4), dtype=np.float32)
    cases = {
        # name: (tinygraph expression on Tensors A, B; numpy forward + VJP on arrays)
        "add": (lambda A, B: A + B, lambda: (a + b, g, g)),
        "mul": (lambda A, B: A * B, lambda: (a * b, g * b, g * a)),
        "tanh": (lambda A, B: A.tanh(), lambda: (lambda y: (y, g * (1 - y * y)))(np.tanh(a))),
        "matmul": (lambda A, B: A @ B, lambda: (a @ b, g @ b.T, a.T @ g)),
        "sum(axis=1)": (lambda A, B: A.sum(axis=1), lambda: (a.sum(axis=1), np.broadcast_to(g[:, :1], a.shape))),
        "index a[1:3]": (lambda A, B: A[1:3], lambda: (a[1:3], np.zeros_like(a).__setitem__(slice(1, 3), g[1:3]))),
    }
    rows = []
    for name, (expr, bare) in cases.items():
        A = tg.tensor(a, requires_grad=True)
        B = tg.tensor(b, requires_grad=True)

        def run_tg():
            # n independent nodes of the op, gathered by one stack so that a single
            # backward call visits them all: per-call overhead is amortised away.
            out = tg.stack([expr(A, B) for _ in range(n)])
            out.backward(np.ones(out.shape, dtype=np.float32))

        def run_np():
            for _ in range(n):
                bare()

        t_tg = best_of(run_tg, repeat) / n * 1e6
        t_np = best_of(run_np, repeat) / n * 1e6
        rows.append((name, t_tg, t_np, t_tg / t_np))
    print(f"\n1. Per op, forward + backward on (4, 4) float32: {n:,} nodes, one backward (stack included)")
    print(f"{'op':<14}{'tinygraph us':>14}{'numpy us':>10}{'ratio':>8}")
    for name, t_tg, t_np, ratio in rows:
        print(f"{name:<14}{t_tg:>14.2f}{t_np:>10.2f}{ratio:>8.1f}")


def chain_table(chain, repeat):
    c = tg.tensor(np.ones(1, dtype=np.float32))
    x = tg.tensor(np.ones(1, dtype=np.float32), requires_grad=True)
    forward_times, backward_times = [], []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        h = x
        for _ in range(chain):
            h = h + c
        mid = time.perf_counter()
        h.backward(np.ones(1, dtype=np.float32))
        end = time.perf_counter()
        forward_times.append(mid - start)
        backward_times.append(end - mid)
        assert x.grad[0] > 0
        x.grad = None
        del h
    fwd = min(forward_times) / chain * 1e6
    bwd = min(backward_times) / chain * 1e6

    a, b = np.ones(1, dtype=np.float32), np.ones(1, dtype=np.float32)

    def bare():
        h = a
        for _ in range(chain):
            h = h + b

    bare_us = best_of(bare, repeat) / chain * 1e6
    print(f"\n2. Chain of {chain:,} tiny adds h = h + c ((1,) float32), per node")
    print(f"{'engine':<22}{'forward us':>11}{'backward us':>12}{'total us':>10}{'vs numpy add':>14}")
    print(f"{'tinygraph':<22}{fwd:>11.2f}{bwd:>12.2f}{fwd + bwd:>10.2f}{(fwd + bwd) / bare_us:>13.1f}x")
    print(f"{'bare numpy add':<22}{bare_us:>11.2f}{'-':>12}{bare_us:>10.2f}{1.0:>13.1f}x")
    try:
        import torch
    except ImportError:
        print(f"{'PyTorch':<22}{'(not installed; optional reference)':>47}")
    else:
        torch.set_num_threads(1)
        tf, tb = [], []
        for _ in range(repeat):
            tx = torch.ones(1, requires_grad=True)
            tc = torch.ones(1)
            start = time.perf_counter()
            th = tx
            for _ in range(chain):
                th = th + tc
            mid = time.perf_counter()
            th.backward(torch.ones(1))
            tf.append(mid - start)
            tb.append(time.perf_counter() - mid)
        f_, b_ = min(tf) / chain * 1e6, min(tb) / chain * 1e6
        print(f"{'PyTorch ' + torch.__version__:<22}{f_:>11.2f}{b_:>12.2f}{f_ + b_:>10.2f}{(f_ + b_) / bare_us:>13.1f}x")


def chain_memory_table(chain):
    c = tg.tensor(np.ones(1, dtype=np.float32))
    x = tg.tensor(np.ones(1, dtype=np.float32), requires_grad=True)
    h = x
    for _ in range(chain):
        h = h + c
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    h.backward(np.ones(1, dtype=np.float32))
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\n3. Backward of a {chain:,}-node chain (tracemalloc on, so slower than table 2)")
    print(f"{'seconds':>8}{'peak traced MB':>16}{'bytes per node':>16}")
    print(f"{seconds:>8.2f}{peak / 1e6:>16.1f}{peak / chain:>16.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chain", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"tinygraph {tg.__version__}, numpy {np.__version__}, BLAS threads 1")
    per_op_table(args.repeat)
    chain_table(args.chain, args.repeat)
    chain_memory_table(args.chain)


if __name__ == "__main__":
    main()
