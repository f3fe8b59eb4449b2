import os
import sys

# The hand-written numpy reference lives next to the tests (importlib import mode
# does not put test directories on sys.path).
sys.path.insert(0, os.path.dirname(__file__))

# The fused lstm_cell op has its own input kind; give the op-table-driven tests
# its strategy (tests/support/op_cases.py is where it belongs once adopted there).
import op_cases  # noqa: E402  (tests/support, put on sys.path by tests/conftest.py)
from op_strategies import lstm as _lstm_strategy  # noqa: E402

op_cases.STRATEGIES.setdefault("lstm", _lstm_strategy)
