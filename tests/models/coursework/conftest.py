import pytest

import tinygraph as tg


@pytest.fixture(autouse=True)
def keep_default_dtype():
    """The solution notebooks' setup cell sets float64 as the default dtype; the in-process
    mutation tests run it, so restore the default after each test."""
    before = tg.get_default_dtype()
    yield
    tg.set_default_dtype(before)
