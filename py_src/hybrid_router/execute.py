"""The executor: carries out a plan and records what happened.

A :class:`~hybrid_router.routing.plans.Plan` lists the steps that may serve a request (the routing made
it); the executor runs the first, moves to the next when :func:`~hybrid_router.routing.fallback.may_fall_back`
allows it, asks the routing for the answer's route (:func:`~hybrid_router.routing.plans.issue_route`),
and records the request in the :class:`~hybrid_router.ledger.Ledger` (every task; errors included, a
cancelled call as ``AbortError``). It never decides where a request runs.

One request, one record: :meth:`Executor.counted` opens a request's record cell (a context variable, so
nested scopes share it: the wire's around a whole call, the router's around parsing and planning) and
records a request that fails before a plan ran; a plan's run marks the cell when it records. A call the
worker refused or cancelled before its handler started is counted by :meth:`Executor.refused`.

- :meth:`Executor.run`: any task, whole answers: ``attempt(step)`` runs one step and returns an
  :class:`Outcome`;
- :meth:`Executor.stream`: a generation in pieces: ``pieces(step)`` yields text, then its
  :class:`~hybrid_router.sides.Output`. A step that fails *before* its first piece falls back
  transparently; once a piece was yielded, a failure is raised (the caller may have shown the text).

Unexpected exceptions of a step are typed first: ``InferenceError`` on the device, ``CloudError`` in the
cloud. ``asyncio.CancelledError`` is never a reason to fall back: it propagates untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Generic, TypeVar

from hybrid_router.errors import (
    ABORT_ERROR,
    CloudError,
    HybridRouterError,
    InferenceError,
    OfflineError,
    PolicyError,
    error_to_wire,
)
from hybrid_router.ledger import Ledger
from hybrid_router.route import FallbackStep, Route
from hybrid_router.routing import GENERATE, Devices, may_fall_back
from hybrid_router.routing.plans import Plan, Step, issue_route
from hybrid_router.sides import Output

__all__ = ["LEDGER_TASKS", "Executor", "Outcome"]

T = TypeVar("T")
#: the tasks the ledger counts: every one (a device task with what it saved)
LEDGER_TASKS = frozenset(
    {
        GENERATE,
        "feature-extraction",
        "automatic-speech-recognition",
        "text-classification",
        "zero-shot-classification",
        "token-classification",
        "text-ranking",
        "vector-search",
    }
)


#: the record cell of the request being handled (opened by :meth:`Executor.counted`): True once recorded
_RECORDED: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("hr_recorded", default=None)


def _mark_recorded() -> None:
    cell = _RECORDED.get()
    if cell is not None:
        cell[0] = True


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What a step produced: its value and usage (``model`` when the side named itself otherwise)."""

    value: T
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    #: a generation's ``"stop"`` / ``"length"``, as the side reported it
    finish_reason: str | None = None
    #: prompt tokens the device served from its KV cache
    tokens_cached: int = 0


class Executor:
    """Runs plans (see the module docstring); ``cloud_name`` names the provider in wrapped errors."""

    def __init__(
        self,
        ledger: Ledger,
        devices: Devices,
        *,
        cloud_name: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.ledger = ledger
        self.devices = devices
        self.cloud_name = cloud_name
        self.clock = clock
        self._queues: dict[str, asyncio.Lock] = {}
        self._syncing: set[asyncio.Task[None]] = set()
        #: told whether each cloud step reached the provider (True) or found the network gone (False)
        self.on_cloud: Callable[[bool], None] | None = None
        #: told each answered cloud step's plan and the prompt tokens its usage reported
        self.on_cloud_usage: Callable[[Plan, int], None] | None = None

    def queue(self, step: Step) -> contextlib.AbstractAsyncContextManager[object]:
        """One call at a time per on-device model (its pipeline is not re-entrant, and two calls at once
        would double its memory); a cancelled call leaves the queue. Cloud steps do not queue here."""
        if step.target != "local" or step.model is None:
            return contextlib.nullcontext()
        return self._queues.setdefault(step.model, asyncio.Lock())

    async def run(
        self,
        plan: Plan,
        attempt: Callable[[Step], Awaitable[Outcome[T]]],
        *,
        what: str | None = None,
        started: float | None = None,
        saved_usd: float | None = None,
    ) -> tuple[T, Route]:
        """The value of the first step of ``plan`` that answers, and its route; ``saved_usd``: what the
        work would have cost in the cloud, when the device answers (default: its tokens at the cloud's
        price)."""
        run = _Attempts(self, plan, started)
        run.saved_usd = saved_usd
        try:
            for step in plan.steps:
                run.tried = step
                try:
                    await run.budget(step)
                    async with self.queue(step):
                        outcome = await attempt(step)
                except Exception as exc:
                    run.failed(step, exc, what=what, shown=False)
                    continue
                return outcome.value, await run.finish(step, outcome)
            raise AssertionError("a plan has at least one step")  # the last failure raised above
        except BaseException as exc:
            run.record_error(exc)
            raise

    async def stream(
        self,
        plan: Plan,
        pieces: Callable[[Step], AsyncGenerator[str | Output, None]],
        *,
        started: float | None = None,
    ) -> AsyncGenerator[str | tuple[Output, Route], None]:
        """Text pieces as they arrive, then ``(output, route)`` of the step that answered."""
        run = _Attempts(self, plan, started)
        try:
            for step in plan.steps:
                run.tried = step
                shown = False
                output: Output | None = None
                try:
                    await run.budget(step)
                    async with self.queue(step), aclosing(pieces(step)) as items:
                        async for piece in items:
                            if isinstance(piece, Output):
                                output = piece
                                continue
                            shown = True
                            run.received += 1
                            yield piece
                except Exception as exc:
                    run.failed(step, exc, what=None, shown=shown)
                    continue
                if output is None:
                    run.failed(
                        step, InferenceError("the answer ended without its result"), what=None, shown=shown
                    )
                    continue
                result = Outcome(
                    output,
                    output.model,
                    output.tokens_in,
                    output.tokens_out,
                    output.finish_reason,
                    output.tokens_cached,
                )
                route = await run.finish(step, result)
                break
            else:
                raise AssertionError("a plan has at least one step")
        except BaseException as exc:  # GeneratorExit too: the caller stopped reading
            run.record_error(exc)
            raise
        yield output, route

    @contextlib.contextmanager
    def counted(self, task: str) -> Iterator[None]:
        """A request refused before its plan ran (a bad argument, a policy contradiction) is counted too,
        once: scopes nest (the wire's around the router's) and share the request's record cell."""
        cell = _RECORDED.get()
        token = None
        if cell is None:
            cell = [False]
            token = _RECORDED.set(cell)
        try:
            yield
        except BaseException as exc:
            if task in LEDGER_TASKS and not cell[0]:
                cell[0] = True
                self.ledger.record(target=None, error=_error_name(exc), task=task)
                self.sync_soon()
            raise
        finally:
            if token is not None:
                _RECORDED.reset(token)

    def refused(self, task: str, error_name: str) -> None:
        """A call that never reached its handler (refused as busy, cancelled before it started)."""
        if task in LEDGER_TASKS:
            self.ledger.record(target=None, error=error_name, task=task)
            self.sync_soon()

    def sync_soon(self) -> None:
        """Store the ledger's changes without waiting (where waiting is not possible: a cancelled call)."""
        task = asyncio.ensure_future(self.ledger.sync())
        self._syncing.add(task)
        task.add_done_callback(self._syncing.discard)

    def typed(self, step: Step, exc: BaseException, what: str | None, task: str) -> HybridRouterError:
        """``exc`` as an error of ours (unexpected ones wrapped, naming their type)."""
        if isinstance(exc, HybridRouterError):
            return exc
        why = f"{type(exc).__name__}: {exc}"
        if step.target == "local":
            on = f" on {what}" if what else ""
            return InferenceError(
                f"{step.model} failed{on}: {why}",
                model=step.model,
                dtype=step.dtype,
                task=task,
                type=type(exc).__name__,
            )
        name = self.cloud_name or "cloud"
        return CloudError(f"{name} failed: {why}", provider=name, model=step.model, type=type(exc).__name__)


class _Attempts:
    """The state of one request: the failed steps, the step tried last, its single ledger record."""

    def __init__(self, executor: Executor, plan: Plan, started: float | None) -> None:
        self.executor = executor
        self.plan = plan
        self.started = executor.clock() if started is None else started
        self.fallbacks: list[FallbackStep] = list(plan.failures)
        self.tried: Step = plan.first
        self.recorded = plan.task not in LEDGER_TASKS
        #: the budget held for the cloud step (made by the planner when the cloud came first)
        self.reservation = plan.reservation
        #: pieces the current step has streamed (a cut cloud stream is charged for them)
        self.received = 0
        #: what the work would have cost in the cloud (a device task's saving)
        self.saved_usd: float | None = None

    async def budget(self, step: Step) -> None:
        """Before a cloud step: its worst case must fit today's budget, held until the call ends."""
        self.received = 0
        if step.target != "cloud" or self.reservation is not None or self.plan.budget_usd is None:
            return
        ledger = self.executor.ledger
        async with ledger.synced():
            self.reservation = ledger.reserve(self.plan.cloud_worst_usd, self.plan.budget_usd)
            spent = ledger.spent_today() + ledger.reserved_now()
        if self.reservation is None:
            raise PolicyError(
                f"the cloud could answer, but today's budget cannot take this call (${spent:.4f} spent or "
                f"held of ${self.plan.budget_usd:.4f}; it could cost up to ${self.plan.cloud_worst_usd:.4f})",
                hint="Raise daily_budget_usd, wait until tomorrow, or lower max_tokens.",
                daily_budget_usd=self.plan.budget_usd,
                spent_today_usd=spent,
            )

    def failed(self, step: Step, exc: Exception, *, what: str | None, shown: bool) -> None:
        """Record ``step``'s failure and return, if the next step may try; else raise the error."""
        error = self.executor.typed(step, exc, what, self.plan.task)
        position = self.plan.steps.index(step)
        last = position + 1 == len(self.plan.steps)
        if step.target == "cloud" and isinstance(error, OfflineError) and self.executor.on_cloud is not None:
            self.executor.on_cloud(False)
        if last or not may_fall_back(error, step.target, shown=shown):
            if self.fallbacks:  # the caller sees the whole chain, not only the last failure
                error.details.setdefault("fallbacks", [f.to_wire() for f in self.fallbacks])
            if error is exc:
                raise error
            raise error from exc
        self.fallbacks.append(FallbackStep.from_error(step.target, step.model, error))

    async def finish(self, step: Step, outcome: Outcome[T]) -> Route:
        ex = self.executor
        model = outcome.model if outcome.model is not None else step.model
        cost = ex.ledger.cost(model, outcome.tokens_in, outcome.tokens_out) if step.target == "cloud" else 0.0
        device = ex.devices.device_of(step.entry) if step.target == "local" and step.entry else None
        route = issue_route(
            self.plan,
            step,
            self.fallbacks,
            ms=(ex.clock() - self.started) * 1000.0,
            model=model,
            tokens_in=outcome.tokens_in,
            tokens_out=outcome.tokens_out,
            cost_usd=cost,
            device=device,
            finish_reason=outcome.finish_reason,
            tokens_cached=outcome.tokens_cached,
        )
        ex.ledger.release(self.reservation)
        if step.target == "cloud" and ex.on_cloud is not None:
            ex.on_cloud(True)
        if step.target == "cloud" and ex.on_cloud_usage is not None and outcome.tokens_in:
            ex.on_cloud_usage(self.plan, outcome.tokens_in)
        if not self.recorded:
            self.recorded = True
            _mark_recorded()
            ex.ledger.record(
                target=route.target,
                fallback=bool(route.fallbacks),
                tokens_in=route.tokens_in,
                tokens_out=route.tokens_out,
                cost_usd=route.cost_usd,
                task=self.plan.task,
                saved_usd=self.saved_usd if route.target == "local" else None,
            )
        await ex.ledger.sync()
        return route

    def record_error(self, exc: BaseException) -> None:
        """The request ended in ``exc`` (a cancel too): recorded once, a cut cloud stream at the cost of the
        pieces it received (usage is not known then: a piece is about a token)."""
        ledger = self.executor.ledger
        ledger.release(self.reservation)
        self.reservation = None
        if self.recorded:
            return
        self.recorded = True
        _mark_recorded()
        tokens_in = tokens_out = 0
        cost = 0.0
        if self.tried.target == "cloud" and self.received:
            tokens_in, tokens_out = self.plan.cloud_tokens_in, self.received
            cost = ledger.cost(self.tried.model, tokens_in, tokens_out)
        ledger.record(
            target=self.tried.target,
            fallback=bool(self.fallbacks),
            error=_error_name(exc),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost,
            task=self.plan.task,
        )
        self.executor.sync_soon()


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return ABORT_ERROR
    return str(error_to_wire(exc)["name"])
