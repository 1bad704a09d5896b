"""Run one side of a generation once: the device's model or the cloud provider, whole or in pieces.

This module only carries out one step of a plan: it calls the runtime or the provider, checks what comes
back and turns it into an :class:`Output`. Where a request runs, what falls back and what is recorded
are decided elsewhere (:mod:`hybrid_router.routing`) and carried out by :mod:`hybrid_router.execute`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from hybrid_router.chat import ChatRequest
from hybrid_router.errors import CloudError, ContextLengthError, InferenceError, ModelLoadError
from hybrid_router.manifest import ModelEntry
from hybrid_router.providers.base import CloudProvider, Completion, Delta
from hybrid_router.routing.plans import Step
from hybrid_router.runtime import LocalRuntime, ProgressCallback, TextCallback
from hybrid_router.structured import Schema
from hybrid_router.tools import ToolCall, relay_refusal

__all__ = ["FINISH_REASONS", "Output", "answer", "pieces"]

#: how an answer ended: it was complete, or cut at its ``max_tokens``
FINISH_REASONS = ("stop", "length")


@dataclass(frozen=True, slots=True)
class Output:
    """What one side produced; ``model`` as the side names it (a provider may report a dated name);
    ``finish_reason``: ``"stop"`` or ``"length"`` (the cloud may name others, e.g. ``"content_filter"``;
    None where a provider did not say)."""

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str | None
    model: str | None
    #: prompt tokens the device served from its KV cache (see ``LocalRuntime.generate``)
    tokens_cached: int = 0
    #: the tools the cloud's model called (checked against the request's tools)
    tool_calls: tuple[ToolCall, ...] = ()


async def answer(
    step: Step,
    request: ChatRequest,
    tokens_in: int | None,
    *,
    runtime: LocalRuntime,
    cloud: CloudProvider | None,
    on_progress: ProgressCallback | None = None,
    schema: Schema | None = None,
    logprobs: list[float] | None = None,
) -> Output:
    """The whole answer of ``step``'s side; ``schema``: structured output (the device's decoding is
    constrained to it, the cloud is sent it as ``response_format``); ``logprobs``: filled with the device's
    token log-probabilities (the cascade's check). The request's tools go to the cloud with it (a relay
    that refuses them: a ``PolicyError`` naming its flag)."""
    if step.target == "local":
        return await _local(step, request, tokens_in, runtime, None, on_progress, schema, logprobs)
    provider = _provider(cloud)
    extra = _structured(schema)
    if request.tools:
        extra.update(tools=request.tools, tool_choice=request.tool_choice)
    try:
        completion = await provider.complete(
            request.messages,
            max_tokens=request.max_tokens_for("cloud"),
            temperature=_cloud_temperature(provider, request),
            **extra,
        )
    except CloudError as exc:
        refused = relay_refusal(exc) if request.tools else None
        if refused is not None:
            raise refused from exc
        raise
    return _cloud_output(provider, completion, tokens_in)


async def pieces(
    step: Step,
    request: ChatRequest,
    tokens_in: int | None,
    *,
    runtime: LocalRuntime,
    cloud: CloudProvider | None,
    on_progress: ProgressCallback | None = None,
    schema: Schema | None = None,
    logprobs: list[float] | None = None,
) -> AsyncGenerator[str | Output, None]:
    """``step``'s answer as text pieces, then its :class:`Output` (last). Close it (``aclosing``) when
    stopping early: the side's work is cancelled. ``schema`` and ``logprobs`` as in :func:`answer`."""
    if step.target == "local":
        local_items = _local_pieces(step, request, tokens_in, runtime, on_progress, schema, logprobs)
        async with aclosing(local_items) as local:
            async for item in local:
                yield item
        return
    provider = _provider(cloud)
    if not provider.can_stream:
        output = await answer(step, request, tokens_in, runtime=runtime, cloud=cloud, schema=schema)
        if output.text:
            yield output.text
        yield output
        return
    completion: Completion | None = None
    items = provider.stream(
        request.messages,
        max_tokens=request.max_tokens_for("cloud"),
        temperature=_cloud_temperature(provider, request),
        **_structured(schema),
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
            f"{provider.name}: the stream ended without its completion",
            provider=provider.name,
            model=provider.model,
        )
    yield _cloud_output(provider, completion, tokens_in)


def _local_model(step: Step) -> tuple[ModelEntry, str]:
    if step.entry is None or step.dtype is None:
        raise ModelLoadError("there is no on-device text-generation model", task="text-generation")
    return step.entry, step.dtype


async def _local(
    step: Step,
    request: ChatRequest,
    tokens_in: int | None,
    runtime: LocalRuntime,
    on_text: TextCallback | None,
    on_progress: ProgressCallback | None,
    schema: Schema | None = None,
    logprobs: list[float] | None = None,
) -> Output:
    entry, dtype = _local_model(step)
    budget = request.max_tokens_for("local")
    if tokens_in is not None and tokens_in + budget > entry.context_length:
        raise ContextLengthError(
            f"the prompt ({tokens_in} tokens) plus max_tokens ({budget}) exceeds the "
            f"context window of {entry.id} ({entry.context_length} tokens)",
            model=entry.id,
            tokens_in=tokens_in,
            context_length=entry.context_length,
        )
    extra: dict[str, Any] = {}  # only what is asked for: runtimes without these options keep working
    if schema is not None:
        extra["schema"] = schema
    if logprobs is not None:
        extra["logprobs"] = logprobs
    raw = await runtime.generate(
        entry,
        dtype,
        request.messages,
        max_new_tokens=budget,
        temperature=request.temperature or 0.0,
        on_text=on_text,
        on_progress=on_progress,
        **extra,
    )
    text, tokens_out = (raw.get("text"), raw.get("tokens_out")) if isinstance(raw, Mapping) else (None, None)
    if not isinstance(text, str) or isinstance(tokens_out, bool) or not isinstance(tokens_out, int):
        raise InferenceError(
            f"{entry.id} returned an answer of the wrong shape: {raw!r:.200}", model=entry.id
        )
    finish = raw.get("finish_reason")
    if finish not in FINISH_REASONS:  # a runtime that does not say: whether it used its whole budget
        finish = "length" if tokens_out >= budget else "stop"
    return Output(
        text=text,
        tokens_in=tokens_in or 0,
        tokens_out=tokens_out,
        finish_reason=str(finish),
        tokens_cached=_count(raw.get("tokens_cached")),
        model=entry.id,
    )


async def _local_pieces(
    step: Step,
    request: ChatRequest,
    tokens_in: int | None,
    runtime: LocalRuntime,
    on_progress: ProgressCallback | None,
    schema: Schema | None = None,
    logprobs: list[float] | None = None,
) -> AsyncGenerator[str | Output, None]:
    # The runtime calls on_text synchronously; a queue turns those calls into an async iteration.
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    task = asyncio.ensure_future(
        _local(step, request, tokens_in, runtime, queue.put_nowait, on_progress, schema, logprobs)
    )
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


def _count(value: object) -> int:
    """A runtime's optional count (a non-negative int), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _structured(schema: Schema | None) -> dict[str, Any]:
    """A cloud call's structured-output argument (none for free text: providers need not know it)."""
    return {} if schema is None else {"response_format": schema.response_format()}


def _provider(cloud: CloudProvider | None) -> CloudProvider:
    if cloud is None:
        raise CloudError(
            "no cloud provider is configured", hint="Configure a cloud provider on the server (the relay)."
        )
    return cloud


def _cloud_temperature(cloud: CloudProvider, request: ChatRequest) -> float | None:
    if request.temperature is None:
        return None
    limit = getattr(cloud, "max_temperature", None)
    return min(request.temperature, limit) if isinstance(limit, int | float) else request.temperature


def _cloud_output(cloud: CloudProvider, completion: Completion, tokens_in: int | None) -> Output:
    usage = completion.usage
    return Output(
        text=completion.text,
        tokens_in=usage.tokens_in if usage is not None else (tokens_in or 0),
        tokens_out=usage.tokens_out if usage is not None else 0,
        finish_reason=completion.finish_reason,
        model=completion.model or cloud.model,
        tool_calls=completion.tool_calls,
    )
