"""Our package imports without numpy (hybrid_router/_lazy.py): the browser's memory snapshot holds it
imported, and numpy is imported on first use. Run in a fresh interpreter: this one has numpy already."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import REPO

CHECK = """
import importlib, pkgutil, sys
sys.modules["numpy"] = None  # any import of numpy fails
import hybrid_router
failed = []
for m in pkgutil.walk_packages(hybrid_router.__path__, "hybrid_router."):
    try:
        importlib.import_module(m.name)
    except ImportError as exc:
        if "numpy" in str(exc):
            failed.append(m.name)
    except Exception:
        pass  # the browser's modules need Pyodide's js and pyodide modules
print(failed)
"""

STAND_IN = """
import sys, types
from hybrid_router._lazy import numpy as np
assert "numpy" not in sys.modules
package = types.ModuleType("imports_numpy")
with np.standing_in():  # as transformers_js_py's import is
    exec("import numpy", package.__dict__)
assert "numpy" not in sys.modules and package.numpy is np  # bound to ours, nothing imported yet
assert package.numpy.arange(3).sum() == 3 and type(sys.modules["numpy"]).__name__ == "module"
with np.standing_in():  # the real one imported: nothing stands in for it
    assert type(sys.modules["numpy"]).__name__ == "module"
print("ok")
"""


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO / "py_src")},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_no_module_of_ours_needs_numpy_to_be_imported() -> None:
    assert _run(CHECK) == "[]"


def test_a_package_imported_while_ours_stands_in_gets_numpy_on_first_use() -> None:
    assert _run(STAND_IN) == "ok"
