"""One error tree for the whole router, grouped by what the caller does next.

    HybridRouterError               base: every error has .name, .hint (what a person can do) and .details
    ├── ValidationError             the input is wrong: fix the call (not retried, never falls back)
    ├── PolicyError                 a routing policy forbids what the call needs (privacy, budget, tier)
    ├── LocalError                  the on-device side failed: the router may fall back to the cloud
    │   ├── ModelLoadError          a model could not be fetched, verified or initialised
    │   │   └── ModelNotReadyError  the server has not built the task's model yet (training, queued, blocked)
    │   ├── InferenceError          a loaded model failed while running (out of memory, device lost, ...)
    │   ├── ContextLengthError      the input does not fit the local model's context window
    │   └── StorageError            the model cache (IndexedDB, quota) failed; the model may run from memory
    ├── CloudError                  the cloud side failed: the router may fall back to the device
    │   ├── RateLimitError          HTTP 429 after the retries were spent
    │   ├── CloudTimeoutError       no answer within the per-request timeout
    │   ├── OfflineError            the network (or the relay) cannot be reached at all
    │   └── ToolCallError           the model called a tool the call did not offer, or with bad arguments
    ├── BusyError                   too many calls are in flight in this worker: wait for some to finish
    └── ProtocolError               a malformed message between the page and the worker (a bug: report it)

Cancellation is never wrapped: Python code lets ``asyncio.CancelledError`` propagate; only the worker
edge turns it into ``{"name": "AbortError"}`` on the wire (see :data:`ABORT_ERROR`).

On the wire an error is ``{"name", "message", "hint", "details"}``; the JS client re-throws an ``Error``
whose ``name`` is the same, so both sides share this list of names.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ABORT_ERROR",
    "BusyError",
    "CloudError",
    "CloudTimeoutError",
    "ContextLengthError",
    "HybridRouterError",
    "InferenceError",
    "LocalError",
    "ModelLoadError",
    "ModelNotReadyError",
    "OfflineError",
    "PolicyError",
    "ProtocolError",
    "RateLimitError",
    "StorageError",
    "ToolCallError",
    "ValidationError",
    "error_to_wire",
]

#: The wire name of a cancelled call (Python raises ``asyncio.CancelledError``; JS sees ``AbortError``).
ABORT_ERROR = "AbortError"


class HybridRouterError(Exception):
    """Base of every error the router raises on purpose."""

    default_hint = "See the message for what went wrong."

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint
        self.details: dict[str, Any] = {k: v for k, v in details.items() if v is not None}

    @property
    def name(self) -> str:
        return type(self).__name__

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "message": self.message, "hint": self.hint, "details": self.details}

    def __repr__(self) -> str:
        return f"{self.name}({self.message!r}, hint={self.hint!r})"


class ValidationError(HybridRouterError):
    default_hint = "Check the arguments of the call against the API documentation."


class PolicyError(HybridRouterError):
    default_hint = "Change the routing policy (privacy, budget or route) or the request."


class LocalError(HybridRouterError):
    default_hint = "The on-device model failed; allow the cloud route to fall back automatically."


class ModelLoadError(LocalError):
    default_hint = "Check that the model is built (./hr run builds it) and that the server is reachable."


class ModelNotReadyError(ModelLoadError):
    """The task's model is in the manifest but the server has not built it (yet): ``details`` has the
    ``model``, ``task``, ``state`` (queued, running, blocked, failed, skipped), ``progress`` and ``eta_s``;
    the hint says what answers meanwhile, where anything does."""

    default_hint = "Try again when the model panel shows the model as built."


class InferenceError(LocalError):
    default_hint = "The model failed while running; try a smaller input or the cloud route."


class ContextLengthError(LocalError):
    default_hint = "Shorten the input or send it to the cloud route, which has a longer context window."


class StorageError(LocalError):
    default_hint = "Free browser storage (delete cached models) or allow more storage for this site."


class CloudError(HybridRouterError):
    default_hint = "The cloud provider failed; check the relay configuration or try again later."


class RateLimitError(CloudError):
    default_hint = "The provider is rate limiting; wait and retry, or lower the request rate."


class CloudTimeoutError(CloudError):
    default_hint = "The provider did not answer in time; retry, or raise the timeout."


class OfflineError(CloudError):
    default_hint = "The network is unreachable; local models keep working, cloud calls resume when online."


class ToolCallError(CloudError):
    """The model called a tool the call did not offer, or with arguments its schema refuses
    (:mod:`hybrid_router.tools`); ``details``: ``tool``, the validator's ``errors``, the ``arguments``."""

    default_hint = "Retry the call, force the tool with toolChoice, or simplify the tool's parameters."


class BusyError(HybridRouterError):
    default_hint = (
        "Too many calls are waiting in this worker: await some before sending more (or batch them)."
    )


class ProtocolError(HybridRouterError):
    default_hint = "The page and the worker disagree on the message format; reload the page and report it."


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    """Any exception as a wire error; unexpected ones keep their type name in ``details``."""
    if isinstance(exc, HybridRouterError):
        return exc.to_wire()
    return {
        "name": "InternalError",
        "message": f"{type(exc).__name__}: {exc}",
        "hint": "This is a bug in Hybrid Router; reload the page and report the message.",
        "details": {"type": type(exc).__name__},
    }
