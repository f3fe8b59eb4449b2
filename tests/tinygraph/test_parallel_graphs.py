"""Threads: separate graphs built and back-propagated in parallel, and concurrent saves
and loads of one checkpoint (docs/reliability.md, "Threads")."""
import threading

import numpy as np

import tinygraph as tg


def _grads(seed):
    rng = np.random.default_rng(seed)
    W = tg.tensor(rng.normal(size=(5, 4)), requires_grad=True)
    x = tg.tensor(rng.normal(size=(8, 5)))
    h = x
    for _ in range(30):
        h = (h @ W).tanh() @ W.T * 0.5 + x
    (h[:, (1, 1)] ** 2).sum().backward()
    return W.grad


def test_separate_graphs_in_threads_give_the_single_thread_gradients():
    expected = {seed: _grads(seed) for seed in range(6)}
    results, errors = {}, []

    def work(seed):
        try:
            for _ in range(5):
                results.setdefault(seed, []).append(_grads(seed))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for seed, grads in results.items():
        for g in grads:
            np.testing.assert_array_equal(g, expected[seed])


def test_concurrent_saves_and_loads_never_see_a_partial_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.zeros(1000), "writer": -1}, path)
    errors, loads = [], [0]
    stop = threading.Event()

    def writer(k):
        try:
            for i in range(30):
                tg.save({"w": np.full(1000, float(i)), "writer": k}, path)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    def reader():
        while not stop.is_set():
            try:
                d = tg.load(path)
                assert d["w"].shape == (1000,) and np.all(d["w"] == d["w"][0])
                loads[0] += 1
            except Exception as exc:  # pragma: no cover
                errors.append(exc)
                return

    r = threading.Thread(target=reader)
    r.start()
    ws = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in ws:
        t.start()
    for t in ws:
        t.join()
    stop.set()
    r.join()
    assert not errors and loads[0] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]   # no temporary files left
