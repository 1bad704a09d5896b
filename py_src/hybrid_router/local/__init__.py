"""On-device model runtimes. Only :class:`LocalRuntime` is imported here: the Transformers.js runtime
(``local.transformers_js``) touches ``js``/``pyodide`` and is imported by the worker alone."""

from hybrid_router.local.runtime import LocalRuntime, ProgressCallback

__all__ = ["LocalRuntime", "ProgressCallback"]
