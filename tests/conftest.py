import os
import sys

# Shared test helpers (strategies, reference implementations) live in tests/support.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "support"))
