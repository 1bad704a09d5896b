"""numpy, imported on its first use rather than with our package.

In the browser our package is imported before the router says it is ready, and numpy's import (its shared
libraries loaded, its modules run: about 360 ms on a 2-core machine) is the largest part of that. The
modules that use numpy take it from here (``from hybrid_router._lazy import numpy as np``; type checkers
see the real module): importing our package loads no shared library, so the start-up's memory snapshot
(web/boot-cache.js) can hold our modules already imported, and numpy itself is imported 500 ms after
``ready`` (web/worker.js) or by the first call that needs it, whichever comes first.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

__all__ = ["LazyModule", "numpy"]


class LazyModule(ModuleType):
    """A module imported on the first attribute asked of it; its attributes are then copied here, so
    later lookups cost what a real module's do."""

    def __getattr__(self, attr: str) -> Any:
        if sys.modules.get(self.__name__) is self:  # asked while standing in (below)
            del sys.modules[self.__name__]
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)
        return getattr(module, attr)

    @contextlib.contextmanager
    def standing_in(self) -> Iterator[None]:
        """Within the block, a package that imports this module (transformers_js_py imports numpy when it
        is imported) gets this lazy one, unless the real one is imported already."""
        if self.__name__ in sys.modules:
            yield
            return
        sys.modules[self.__name__] = self
        try:
            yield
        finally:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]


numpy = LazyModule("numpy")
