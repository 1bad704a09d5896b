"""What a cloud provider is (:class:`CloudProvider`) and what it returns.
:class:`~hybrid_router.providers.http.HTTPProvider` implements the contract below for HTTP APIs.

A provider takes a request that was checked where it entered (:class:`~hybrid_router.chat.ChatRequest`):
:class:`~hybrid_router.chat.ChatMessage` s, ``max_tokens`` >= 1, a temperature within the provider's range
(``max_temperature``; the caller clamps to it). It does not check them again.

Streaming contract: :meth:`CloudProvider.stream` yields zero or more :class:`Delta` (text as it
arrives), then exactly one :class:`Completion` (the whole text, usage, finish reason), last.

Failures mid-stream: only the exchange up to the response headers is retried (by
:func:`~hybrid_router.retry.send_with_retries`). Once the body has started, a broken connection, a
stalled stream, an error event, malformed data or a stream that ends too early raise
:class:`~hybrid_router.errors.CloudError` with ``details`` ``stage="stream"``, ``received_deltas`` and
``received_chars``: the caller may already have shown that text, so silently asking again would repeat
or contradict it. The caller (the router) decides: retry the whole call, or fall back to the device.
``received_deltas == 0`` tells it nothing was shown.

Cancellation: ``asyncio.CancelledError`` closes the response (which aborts the download) and
propagates. A caller that stops iterating early must close the generator (``contextlib.aclosing``)
so the response is closed at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from ..chat import ChatMessage
from ..sse import Event
from ..tools import Tool, ToolCall

__all__ = [
    "ChatMessage",
    "CloudProvider",
    "Completion",
    "Delta",
    "GenerateOptions",
    "StreamItem",
    "StreamParser",
    "Usage",
]


@dataclass(frozen=True)
class Usage:
    tokens_in: int
    tokens_out: int


@dataclass(frozen=True)
class Completion:
    """A finished answer. ``usage`` is None when the provider did not report it; ``finish_reason`` uses
    OpenAI's words (``"stop"``, ``"length"``, ``"tool_calls"``, ``"content_filter"``) where they apply."""

    text: str
    usage: Usage | None
    model: str
    finish_reason: str | None
    raw_id: str | None
    #: the tools the model called, checked against the call's tools (only :meth:`CloudProvider.complete`)
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Delta:
    """A piece of text, as it arrived."""

    text: str


StreamItem: TypeAlias = Delta | Completion


@dataclass(frozen=True)
class GenerateOptions:
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    #: structured output: OpenAI's ``{"type": "json_schema", "json_schema": {...}}`` (None: free text)
    response_format: Mapping[str, Any] | None = None
    #: tool calling (:mod:`hybrid_router.tools`): the tools offered, and auto/none/required/a name
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"


class CloudProvider(Protocol):
    """A cloud LLM, as the router sees it."""

    name: str
    model: str
    can_stream: bool

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Tool] = (),
        tool_choice: str = "auto",
    ) -> Completion: ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
        response_format: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[StreamItem, None]: ...


class StreamParser(Protocol):
    """Reads one provider's stream events; one parser per stream."""

    #: True once the provider's end-of-stream event was seen (reading stops there).
    done: bool

    def feed(self, event: Event) -> list[Delta]:
        """The text in ``event``; raises ``CloudError`` on an error event or malformed data."""
        ...

    def finish(self) -> Completion:
        """The completion, at the end of the body; raises ``CloudError`` if the stream was cut short."""
        ...
