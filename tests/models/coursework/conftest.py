import pytest

import tinygraph as tg
from tinygraph.ops import OPS


@pytest.fixture(autouse=True)
def keep_global_state():
    """The in-process tests run the solution notebooks' cells, which set float64 as the default
    dtype and register the notebooks' ops (softplus, ...): put both back after each test, so
    that later tests (the op table's) see the library as it is."""
    dtype, ops = tg.get_default_dtype(), dict(OPS)
    yield
    tg.set_default_dtype(dtype)
    OPS.clear()
    OPS.update(ops)
