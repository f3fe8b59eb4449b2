"""Tensors and models pickled in one process get gradients in another.

Backward orders nodes by their place in the process's creation order; an
unpickled tensor must get a fresh place in the new process, not keep the one
it had where it was made (the bug: every parameter ended with grad None).
"""
import pickle
import subprocess
import sys
import textwrap

import numpy as np

import tinygraph as tg

MAKE = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    import tinygraph as tg
    junk = [tg.tensor(np.zeros(1)) for _ in range(50_000)]   # a process with a long history
    rng = np.random.default_rng(0)
    model = tg.nn.Linear(3, 2)
    x = tg.tensor(rng.normal(size=(4, 3)), requires_grad=True, name="x")
    loss = (model(x).tanh() ** 2).sum()                    # a whole graph, pickled unbackpropagated
    with open(sys.argv[1], "wb") as f:
        pickle.dump({"model": model, "loss": loss, "x": x}, f)
""")

USE = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    import tinygraph as tg
    with open(sys.argv[1], "rb") as f:
        saved = pickle.load(f)
    model, loss, x = saved["model"], saved["loss"], saved["x"]
    # 1. the pickled graph back-propagates
    loss.backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters()), "pickled graph: no grads"
    # 2. the unpickled model trains in a fresh graph, with the same gradient as a fresh copy of it
    model.zero_grad()
    x2 = tg.tensor(np.ones((4, 3)))
    (model(x2) ** 2).sum().backward()
    fresh = tg.nn.Linear(3, 2)
    fresh.load_state_dict(model.state_dict())
    (fresh(x2) ** 2).sum().backward()
    for (name, p), q in zip(model.named_parameters(), fresh.parameters()):
        assert p.grad is not None, name
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-6)
    print("ok")
""")


def test_pickled_model_and_graph_get_gradients_in_a_new_process(tmp_path):
    path = tmp_path / "model.pkl"
    for script in (MAKE, USE):
        run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"


def test_unpickled_tensor_is_placed_after_everything_made_so_far():
    a = tg.tensor([1.0], requires_grad=True)
    blob = pickle.dumps(a)
    later = tg.tensor([2.0])
    b = pickle.loads(blob)
    assert b._seq > later._seq
    y = (b * 3).sum()
    y.backward()
    np.testing.assert_array_equal(b.grad, [3.0])


MAKE_LSTM = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    from tinygraph import models
    xs = np.random.default_rng(0).normal(size=(4, 2, 3))
    for fused in (True, False):
        model = models.LSTM(3, 5, rng=0, fused=fused)
        out, (h, c) = model(xs)          # the fused cell's multi-output nodes and pooled buffers
        loss = (out ** 2).sum() + (c ** 2).sum()
        with open(sys.argv[1] + str(fused), "wb") as f:
            pickle.dump({"model": model, "loss": loss}, f)
""")

USE_LSTM = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    from tinygraph import models
    xs = np.random.default_rng(0).normal(size=(4, 2, 3))
    for fused in (True, False):
        with open(sys.argv[1] + str(fused), "rb") as f:
            saved = pickle.load(f)
        saved["loss"].backward()
        fresh = models.LSTM(3, 5, rng=0, fused=fused)
        out, (h, c) = fresh(xs)
        ((out ** 2).sum() + (c ** 2).sum()).backward()
        for (name, p), q in zip(saved["model"].named_parameters(), fresh.parameters()):
            assert p.grad is not None, name
            np.testing.assert_allclose(p.grad, q.grad, rtol=1e-5, err_msg=name)
        saved["model"](xs)               # the unpickled model (empty buffer pool) runs again
    print("ok")
""")


def test_a_trained_lstm_and_its_graph_pickle_across_processes(tmp_path):
    """A model that has run (its cells keep a buffer pool of weak leases) and a graph with
    the fused cell's multi-output nodes pickle, and back-propagate in a new process."""
    path = tmp_path / "lstm.pkl"
    for script in (MAKE_LSTM, USE_LSTM):
        run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
