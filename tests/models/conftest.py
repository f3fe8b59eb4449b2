import os
import sys

# The hand-written numpy reference lives next to the tests (importlib import mode
# does not put test directories on sys.path).
sys.path.insert(0, os.path.dirname(__file__))
