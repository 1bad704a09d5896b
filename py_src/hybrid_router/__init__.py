"""Hybrid Router: route AI requests between on-device models and a cloud LLM.

The pure core lives here; the browser edges (``hybrid_router.browser``: the worker glue, Transformers.js,
pyfetch, IndexedDB) are imported by the worker only. See docs/ARCHITECTURE.md for the module map.
"""

from hybrid_router.embeddings import EmbedResult
from hybrid_router.errors import (
    ABORT_ERROR,
    CloudError,
    CloudTimeoutError,
    ContextLengthError,
    HybridRouterError,
    InferenceError,
    LocalError,
    ModelLoadError,
    OfflineError,
    PolicyError,
    ProtocolError,
    RateLimitError,
    StorageError,
    ValidationError,
    error_to_wire,
)
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.protocol import CallContext, Dispatcher, to_plain
from hybrid_router.route import FallbackStep, Route
from hybrid_router.router import Router
from hybrid_router.runtime import LocalRuntime

__version__ = "0.1.0"

__all__ = [
    "ABORT_ERROR",
    "CallContext",
    "CloudError",
    "CloudTimeoutError",
    "ContextLengthError",
    "Dispatcher",
    "EmbedResult",
    "FallbackStep",
    "HybridRouterError",
    "InferenceError",
    "LocalError",
    "LocalRuntime",
    "Manifest",
    "ModelEntry",
    "ModelLoadError",
    "OfflineError",
    "PolicyError",
    "ProtocolError",
    "RateLimitError",
    "Route",
    "Router",
    "StorageError",
    "ValidationError",
    "__version__",
    "error_to_wire",
    "to_plain",
]
