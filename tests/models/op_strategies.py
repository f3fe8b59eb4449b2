"""Hypothesis strategy for the op-table-driven tests (tests/tinygraph/test_ops.py) of the
fused ``lstm_cell`` op (kind ``"lstm"``): inputs x_proj, h_proj (..., 4H) and c (..., H)."""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@st.composite
def lstm(draw, op):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    H = draw(st.integers(1, 3))
    lead = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=2, max_side=3)).input_shapes
    return [rng.normal(size=lead[0] + (4 * H,)), rng.normal(size=lead[1] + (4 * H,)),
            rng.normal(size=lead[2] + (H,))], {}
