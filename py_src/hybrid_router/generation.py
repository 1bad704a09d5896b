"""Text generation: decide where a request runs, run it, fall back to the other side, record it.

One request goes through these steps:

1. its parameters are checked (:class:`~hybrid_router.chat.ChatRequest`);
2. the prompt's tokens are counted with the local tokenizer (chat template applied), unless the call
   pins the cloud. This loads the local model once. If counting fails, the device is treated as
   failed: its error is the first step of the fallback chain, and the request goes to the cloud where
   the policy allows it (otherwise that error is raised);
3. the complexity of the prompt is estimated (:mod:`hybrid_router.complexity`);
4. :func:`~hybrid_router.routing.decide` picks the first side and the fallback side;
5. the first side runs. Fallback:

   - device -> cloud on any ``LocalError`` (load, inference, context length, storage) or any
     unexpected exception of the runtime (raised as ``InferenceError``);
   - cloud -> device on ``OfflineError``, ``CloudTimeoutError``, ``RateLimitError`` and ``CloudError``
     without a status or with 408, 409 or 5xx (after the provider's retries), when the input fits
     the device. A 4xx refusal (bad key, bad model, request too large) is raised: it needs a fix,
     not another model;

6. the answer's :class:`~hybrid_router.route.Route` records the target, the reason (``"fallback"``
   when the other side answered), the rule, the fallback chain, usage, cost (cloud only, from the
   manifest's price table), the wall time and the time it took to decide (``decision_ms``: steps 1-4);
   the :class:`~hybrid_router.ledger.Ledger` records it.

Streaming (:func:`stream`) yields ``{"delta": text}`` items, then ``{"done": True, "route", "usage",
"finish_reason"}``. A side that fails *before* its first delta falls back transparently; once a
delta was yielded, a failure is raised (the caller may have shown the text: two answers must not be
mixed).

Every request ends in a result or a typed error and is recorded in the ledger, errors included.
``asyncio.CancelledError`` is never a reason to fall back: it propagates untouched (recorded as
``AbortError``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from hybrid_router.chat import ChatRequest
from hybrid_router.errors import (
    ABORT_ERROR,
    CloudError,
    CloudTimeoutError,
    LocalError,
    OfflineError,
    RateLimitError,
    error_to_wire,
)
from hybrid_router.ledger import Ledger
from hybrid_router.local.runtime import LocalRuntime, ProgressCallback
from hybrid_router.manifest import Manifest
from hybrid_router.providers.base import CloudProvider
from hybrid_router.route import REASON_FALLBACK, FallbackStep, Route, Target
from hybrid_router.routing import Decision, Policy
from hybrid_router.sides import Output, Sides

__all__ = ["GenerateResult", "generate", "stream"]

_CLOUD_RETRYABLE_STATUSES = frozenset({408, 409})


@dataclass(frozen=True, slots=True)
class GenerateResult:
    """The answer, where it ran and why (``route``), and its usage."""

    text: str
    route: Route
    finish_reason: str | None = None

    @property
    def usage(self) -> dict[str, int]:
        return {"tokens_in": self.route.tokens_in, "tokens_out": self.route.tokens_out}

    def to_wire(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "route": self.route.to_wire(),
            "usage": self.usage,
            "finish_reason": self.finish_reason,
        }


async def generate(
    request: ChatRequest | Mapping[str, Any],
    *,
    runtime: LocalRuntime,
    manifest: Manifest,
    cloud: CloudProvider | None,
    policy: Policy,
    ledger: Ledger,
    clock: Callable[[], float] = time.perf_counter,
    on_progress: ProgressCallback | None = None,
) -> GenerateResult:
    """The whole answer to ``request`` (see the module docstring)."""
    run = _Run(Sides(runtime, manifest, cloud, on_progress), policy, ledger, clock)
    try:
        decision = await run.plan(request)
        target = decision.target
        while True:
            try:
                output = await run.sides.complete(target, run.request, run.tokens_in)
                break
            except Exception as exc:
                target = run.fall_back_or_raise(decision, target, exc, shown=False)
        return run.finish(decision, target, output)
    except BaseException as exc:
        run.record_error(exc)
        raise


async def stream(
    request: ChatRequest | Mapping[str, Any],
    *,
    runtime: LocalRuntime,
    manifest: Manifest,
    cloud: CloudProvider | None,
    policy: Policy,
    ledger: Ledger,
    clock: Callable[[], float] = time.perf_counter,
    on_progress: ProgressCallback | None = None,
) -> AsyncGenerator[dict[str, Any], None]:
    """``{"delta": text}`` items as the answer arrives, then ``{"done": True, "route", "usage",
    "finish_reason"}``. Close it (``contextlib.aclosing``) when stopping early."""
    run = _Run(Sides(runtime, manifest, cloud, on_progress), policy, ledger, clock)
    shown = False
    try:
        decision = await run.plan(request)
        target = decision.target
        while True:
            try:
                async with aclosing(run.sides.pieces(target, run.request, run.tokens_in)) as pieces:
                    async for piece in pieces:
                        if isinstance(piece, Output):
                            output = piece
                            continue
                        shown = True
                        yield {"delta": piece}
                break
            except Exception as exc:
                target = run.fall_back_or_raise(decision, target, exc, shown=shown)
        result = run.finish(decision, target, output)
    except BaseException as exc:  # GeneratorExit too: the caller stopped reading
        run.record_error(exc)
        raise
    yield {
        "done": True,
        "route": result.route.to_wire(),
        "usage": result.usage,
        "finish_reason": result.finish_reason,
    }


class _Run:
    """The state of one request: the plan, the fallback chain, and its single ledger record."""

    def __init__(self, sides: Sides, policy: Policy, ledger: Ledger, clock: Callable[[], float]) -> None:
        self.request = ChatRequest(messages=())  # replaced by plan()
        self.sides = sides
        self.policy = policy
        self.ledger = ledger
        self.clock = clock
        self.started = clock()
        self.tokens_in: int | None = None
        self.complexity: float | None = None
        self.decision_ms = 0.0
        self.fallbacks: list[FallbackStep] = []
        self.tried: Target | None = None
        self.recorded = False

    async def plan(self, request: ChatRequest | Mapping[str, Any]) -> Decision:
        """Check the request, then count, estimate and decide."""
        self.request = request if isinstance(request, ChatRequest) else ChatRequest.from_mapping(request)
        plan = await self.sides.plan(self.request, self.policy, self.ledger.spent_today())
        self.tokens_in, self.complexity = plan.tokens_in, plan.complexity
        if plan.local_failure is not None:
            self.fallbacks.append(self.sides.step("local", plan.local_failure))
        self.tried = plan.decision.target
        self.decision_ms = (self.clock() - self.started) * 1000.0
        return plan.decision

    def fall_back_or_raise(
        self, decision: Decision, failed: Target, exc: Exception, *, shown: bool
    ) -> Target:
        """The side to try next after ``failed`` raised ``exc``, or raise ``exc`` (typed)."""
        error = self.sides.typed(failed, exc)
        again = decision.fallback_target
        if (
            shown
            or again is None
            or again == failed
            or self.fallbacks_tried(again)
            or not _recoverable(error)
        ):
            if self.fallbacks:  # the caller sees the whole chain, not only the last failure
                error.details.setdefault("fallbacks", [step.to_wire() for step in self.fallbacks])
            if error is exc:
                raise error
            raise error from exc
        self.fallbacks.append(self.sides.step(failed, error))
        self.tried = again
        return again

    def fallbacks_tried(self, target: Target) -> bool:
        return any(step.target == target for step in self.fallbacks)

    def finish(self, decision: Decision, target: Target, output: Output) -> GenerateResult:
        reason, rule = decision.reason, decision.rule
        if self.fallbacks:
            last = self.fallbacks[-1]
            reason = REASON_FALLBACK
            rule = (
                f"{rule}; the {last.target} side failed ({last.error_name}: {last.message}), "
                f"so the {target} side answered"
            )
        route = Route(
            target=target,
            reason=reason,
            rule=rule,
            model=output.model,
            ms=(self.clock() - self.started) * 1000.0,
            fallbacks=tuple(self.fallbacks),
            tokens_in=output.tokens_in,
            tokens_out=output.tokens_out,
            cost_usd=self.ledger.cost(output.model, output.tokens_in, output.tokens_out)
            if target == "cloud"
            else 0.0,
            device=output.device,
            dtype=output.dtype,
            complexity=self.complexity,
            decision_ms=self.decision_ms,
        )
        self.ledger.record_route(route)
        self.recorded = True
        return GenerateResult(text=output.text, route=route, finish_reason=output.finish_reason)

    def record_error(self, exc: BaseException) -> None:
        if self.recorded:
            return
        self.recorded = True
        name = (
            ABORT_ERROR
            if isinstance(exc, asyncio.CancelledError | GeneratorExit)
            else error_to_wire(exc)["name"]
        )
        self.ledger.record(target=self.tried, fallback=bool(self.fallbacks), error=name)


def _recoverable(error: BaseException) -> bool:
    """Whether the other side may answer after ``error`` (see the module docstring)."""
    if isinstance(error, LocalError):
        return True
    if isinstance(error, OfflineError | CloudTimeoutError | RateLimitError):
        return True
    if isinstance(error, CloudError):
        status = error.details.get("status")
        return not isinstance(status, int) or status >= 500 or status in _CLOUD_RETRYABLE_STATUSES
    return False
