import os
import sys

# Shared test helpers (strategies, reference implementations) live in tests/support.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "support"))

import pytest  # noqa: E402

import tinygraph as tg  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_engine_state():
    """Give every test the engine's defaults back: a test (or notebook code it runs in
    process) that sets the default dtype or grad mode, or registers an op, must not
    change later tests."""
    dtype, grad = tg.get_default_dtype(), tg.is_grad_enabled()
    ops = dict(tg.OPS)  # ops that a test or an in-process notebook registers stay its own
    yield
    tg.OPS.clear()
    tg.OPS.update(ops)
    tg.set_default_dtype(dtype)
    from tinygraph.config import STATE
    STATE.grad_enabled = grad
