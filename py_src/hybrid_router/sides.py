"""The two sides a generation can run on, behind one interface: the device and the cloud.

:class:`Sides` plans a request (token count, complexity, decision) and runs it on either side, whole
(:meth:`Sides.complete`) or in pieces (:meth:`Sides.pieces`), always ending in an :class:`Output`.
Failures are typed here (:meth:`Sides.typed`): anything unexpected from the runtime is an
``InferenceError``, from the provider a ``CloudError``. The fallback policy itself is in
:mod:`hybrid_router.generation`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from hybrid_router.chat import ChatRequest
from hybrid_router.complexity import estimate
from hybrid_router.errors import (
    CloudError,
    ContextLengthError,
    HybridRouterError,
    InferenceError,
    LocalError,
    ModelLoadError,
)
from hybrid_router.local.runtime import LocalRuntime, ProgressCallback
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.providers.base import CloudProvider, Completion, Delta
from hybrid_router.route import FallbackStep, Target
from hybrid_router.routing import Decision, Facts, Policy, decide

__all__ = ["TASK", "Output", "Plan", "Sides"]

TASK = "text-generation"


@dataclass(frozen=True, slots=True)
class Output:
    """What one side produced."""

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str | None
    model: str | None
    device: str | None = None
    dtype: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The decision, the facts worth keeping, and the device's failure while planning (if any)."""

    decision: Decision
    tokens_in: int | None
    complexity: float | None
    local_failure: HybridRouterError | None = None


class Sides:
    """The device (the manifest's first text-generation model on ``runtime``) and ``cloud``."""

    def __init__(
        self,
        runtime: LocalRuntime,
        manifest: Manifest,
        cloud: CloudProvider | None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.runtime = runtime
        self.cloud = cloud
        self.on_progress = on_progress
        models = manifest.for_task(TASK)
        self.entry: ModelEntry | None = models[0] if models else None
        self.dtype = self.entry.default_dtype if self.entry is not None else None
        device = getattr(runtime, "device", None)
        self.device = device if isinstance(device, str) else None

    def model_of(self, target: Target) -> str | None:
        if target == "local":
            return self.entry.id if self.entry is not None else None
        return self.cloud.model if self.cloud is not None else None

    # -- planning -------------------------------------------------------------------------------------

    async def plan(self, request: ChatRequest, policy: Policy, spent_today_usd: float) -> Plan:
        """Count, estimate and decide (see :mod:`hybrid_router.generation`, steps 2-4)."""
        tokens_in: int | None = None
        failure: HybridRouterError | None = None
        if self.entry is not None and (request.route or policy.route) != "cloud":
            try:
                tokens_in = await self._count(self.entry, request)
            except Exception as exc:
                failure = self.typed("local", exc)
        score = estimate(request.chat)
        facts = Facts(
            task=TASK,
            route=request.route,
            tokens_in=tokens_in,
            context_length=self.entry.context_length if self.entry is not None else None,
            max_tokens=request.max_tokens,
            complexity=score.score,
            complexity_reasons=score.top_reasons,
            local_available=self.entry is not None and failure is None,
            cloud_available=self.cloud is not None,
            spent_today_usd=spent_today_usd,
        )
        if failure is None:
            return Plan(decide(facts, policy), tokens_in, score.score)
        # The device failed before generating: the cloud may answer if the policy would send it there.
        try:
            decision = decide(facts, policy)
        except HybridRouterError:
            raise failure from None
        if not policy.fallback or decision.target != "cloud" or not isinstance(failure, LocalError):
            raise failure
        rule = "the on-device model failed before generating"
        return Plan(Decision("cloud", decision.reason, rule), None, score.score, failure)

    async def _count(self, entry: ModelEntry, request: ChatRequest) -> int:
        assert self.dtype is not None
        count = await self.runtime.count_chat_tokens(entry, self.dtype, request.chat, self.on_progress)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InferenceError(f"{entry.id}: the token count is not a count ({count!r})", model=entry.id)
        return count

    # -- running --------------------------------------------------------------------------------------

    async def complete(self, target: Target, request: ChatRequest, tokens_in: int | None) -> Output:
        """The whole answer from ``target``."""
        if target == "local":
            return await self._local(request, tokens_in, on_text=None)
        cloud = self._cloud()
        completion = await cloud.complete(
            request.chat, max_tokens=request.max_tokens, temperature=self._cloud_temperature(request)
        )
        return self._cloud_output(completion, tokens_in)

    async def pieces(
        self, target: Target, request: ChatRequest, tokens_in: int | None
    ) -> AsyncGenerator[str | Output, None]:
        """The answer from ``target`` as text pieces, then its :class:`Output` (last)."""
        if target == "local":
            async with aclosing(self._local_pieces(request, tokens_in)) as local:
                async for item in local:
                    yield item
            return
        cloud = self._cloud()
        if not cloud.can_stream:
            output = await self.complete(target, request, tokens_in)
            if output.text:
                yield output.text
            yield output
            return
        completion: Completion | None = None
        items = cloud.stream(
            request.chat, max_tokens=request.max_tokens, temperature=self._cloud_temperature(request)
        )
        async with aclosing(items) as stream:
            async for event in stream:
                if isinstance(event, Delta):
                    if event.text:
                        yield event.text
                else:
                    completion = event
        if completion is None:
            raise CloudError(
                f"{cloud.name}: the stream ended without its completion",
                provider=cloud.name,
                model=cloud.model,
            )
        yield self._cloud_output(completion, tokens_in)

    async def _local(self, request: ChatRequest, tokens_in: int | None, on_text: Any) -> Output:
        entry, dtype = self._local_model()
        if tokens_in is not None and tokens_in + request.max_tokens > entry.context_length:
            raise ContextLengthError(
                f"the prompt ({tokens_in} tokens) plus max_tokens ({request.max_tokens}) exceeds the "
                f"context window of {entry.id} ({entry.context_length} tokens)",
                model=entry.id,
                tokens_in=tokens_in,
                context_length=entry.context_length,
            )
        raw = await self.runtime.generate(
            entry,
            dtype,
            request.chat,
            max_new_tokens=request.max_tokens,
            temperature=request.temperature or 0.0,
            on_text=on_text,
            on_progress=self.on_progress,
        )
        text, tokens_out = (
            (raw.get("text"), raw.get("tokens_out")) if isinstance(raw, Mapping) else (None, None)
        )
        if not isinstance(text, str) or isinstance(tokens_out, bool) or not isinstance(tokens_out, int):
            raise InferenceError(
                f"{entry.id} returned an answer of the wrong shape: {raw!r:.200}", model=entry.id
            )
        finish = raw.get("finish_reason")
        return Output(
            text=text,
            tokens_in=tokens_in or 0,
            tokens_out=tokens_out,
            finish_reason=finish if isinstance(finish, str) else None,
            model=entry.id,
            device=self.device,
            dtype=dtype,
        )

    async def _local_pieces(
        self, request: ChatRequest, tokens_in: int | None
    ) -> AsyncGenerator[str | Output, None]:
        # The runtime calls on_text synchronously; a queue turns those calls into an async iteration.
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        task = asyncio.ensure_future(self._local(request, tokens_in, on_text=queue.put_nowait))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (piece := await queue.get()) is not None:
                if piece:
                    yield piece
            output = task.result()  # raises the runtime's error
        finally:
            if not task.done():  # cancelled or closed early: interrupt the generation and wait for it
                task.cancel()
                await asyncio.wait([task])
        yield output

    # -- helpers --------------------------------------------------------------------------------------

    def typed(self, target: Target, exc: BaseException) -> HybridRouterError:
        """``exc`` as an error of ours (unexpected ones wrapped, naming their type)."""
        if isinstance(exc, HybridRouterError):
            return exc
        what = f"{type(exc).__name__}: {exc}"
        if target == "local":
            model = self.model_of("local")
            return InferenceError(f"{model} failed: {what}", model=model, task=TASK, type=type(exc).__name__)
        name = self.cloud.name if self.cloud is not None else "cloud"
        return CloudError(
            f"{name} failed: {what}", provider=name, model=self.model_of("cloud"), type=type(exc).__name__
        )

    def step(self, target: Target, error: BaseException) -> FallbackStep:
        return FallbackStep.from_error(target, self.model_of(target), error)

    def _local_model(self) -> tuple[ModelEntry, str]:
        if self.entry is None or self.dtype is None:
            raise ModelLoadError("there is no on-device text-generation model", task=TASK)
        return self.entry, self.dtype

    def _cloud(self) -> CloudProvider:
        if self.cloud is None:
            raise CloudError(
                "no cloud provider is configured",
                hint="Configure a cloud provider on the server (the relay).",
            )
        return self.cloud

    def _cloud_temperature(self, request: ChatRequest) -> float | None:
        if request.temperature is None:
            return None
        limit = getattr(self.cloud, "max_temperature", None)
        return min(request.temperature, limit) if isinstance(limit, int | float) else request.temperature

    def _cloud_output(self, completion: Completion, tokens_in: int | None) -> Output:
        usage = completion.usage
        return Output(
            text=completion.text,
            tokens_in=usage.tokens_in if usage is not None else (tokens_in or 0),
            tokens_out=usage.tokens_out if usage is not None else 0,
            finish_reason=completion.finish_reason,
            model=completion.model or self.model_of("cloud"),
        )
