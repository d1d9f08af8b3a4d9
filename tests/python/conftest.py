import os
import sys

# Importable from the build tree: CTest sets PYTHONPATH=build/python; a bare `pytest tests/python`
# from the source root finds build/python as well.
_build = os.path.join(os.path.dirname(__file__), "..", "..", "build", "python")
if os.path.isdir(_build) and _build not in sys.path:
    sys.path.insert(0, os.path.abspath(_build))
