"""Which failures may move a request to its next step, and in which direction.

A plan (:mod:`hybrid_router.routing.plans`) lists the steps that may serve a request, in order; when one
fails, :func:`may_fall_back` says whether the next may try:

- **device -> cloud** (a generation): on any ``LocalError`` (load, inference, context length, storage)
  or any unexpected exception of the runtime (typed as ``InferenceError`` first);
- **cloud -> device** (a generation): on ``OfflineError``, ``CloudTimeoutError``, ``RateLimitError`` and a
  ``CloudError`` without a status or with 408, 409 or 5xx (after the provider's own retries). A 4xx
  refusal (bad key, bad model, request too large) is raised: it needs a fix, not another model;
- **task model -> embedding model** (classify with labels, rerank): on any ``LocalError`` of the task
  model (it could not be fetched, verified or run): the embedding fallback answers;
- never once a stream has shown text (two answers must not be mixed), never for a ``ValidationError`` or a
  ``PolicyError``, and never for a cancellation (``asyncio.CancelledError`` is not an ``Exception``).
"""

from __future__ import annotations

from hybrid_router.errors import CloudError, CloudTimeoutError, LocalError, OfflineError, RateLimitError
from hybrid_router.route import Target

__all__ = ["CLOUD_RETRYABLE_STATUSES", "may_fall_back", "recoverable"]

#: 4xx statuses that say "try again" rather than "fix the request"
CLOUD_RETRYABLE_STATUSES = frozenset({408, 409})


def recoverable(error: BaseException, failed: Target) -> bool:
    """Whether another step may answer after ``failed`` raised ``error`` (already one of ours)."""
    if failed == "local":
        return isinstance(error, LocalError)
    if isinstance(error, OfflineError | CloudTimeoutError | RateLimitError):
        return True
    if isinstance(error, CloudError):
        status = error.details.get("status")
        return not isinstance(status, int) or status >= 500 or status in CLOUD_RETRYABLE_STATUSES
    return False


def may_fall_back(error: BaseException, failed: Target, *, shown: bool = False) -> bool:
    """Whether the next step of a plan may run after the step on ``failed`` raised ``error``; ``shown``:
    the failed step had already streamed text to the caller."""
    return not shown and recoverable(error, failed)
