"""What a cloud provider is (:class:`CloudProvider`), what it returns, and the argument checks all
providers share. :class:`~hybrid_router.providers.http.HTTPProvider` implements the contract below for
HTTP APIs.

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

import math
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias

from ..errors import ValidationError
from ..sse import Event

__all__ = [
    "ChatMessage",
    "CloudProvider",
    "Completion",
    "Delta",
    "GenerateOptions",
    "MessageLike",
    "StreamItem",
    "StreamParser",
    "Usage",
    "check_options",
    "normalize_messages",
]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


#: A message as the router receives it: a :class:`ChatMessage` or a ``{"role", "content"}`` mapping.
MessageLike: TypeAlias = ChatMessage | Mapping[str, Any]


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


class CloudProvider(Protocol):
    """A cloud LLM, as the router sees it."""

    name: str
    model: str
    can_stream: bool

    async def complete(
        self,
        messages: Sequence[MessageLike],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> Completion: ...

    def stream(
        self,
        messages: Sequence[MessageLike],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
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


def normalize_messages(messages: Sequence[MessageLike]) -> list[ChatMessage]:
    """Check ``messages`` and return them as :class:`ChatMessage`; raises ``ValidationError``."""
    hint = 'Pass messages as a non-empty list of {"role": "system"|"user"|"assistant", "content": str}.'
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise ValidationError("messages must be a non-empty list", hint=hint)
    result: list[ChatMessage] = []
    for index, message in enumerate(messages):
        role: object
        content: object
        if isinstance(message, ChatMessage):
            role, content = message.role, message.content
        elif isinstance(message, Mapping):
            role, content = message.get("role"), message.get("content")
        else:
            raise ValidationError(f"messages[{index}] is a {type(message).__name__}", hint=hint, index=index)
        if role not in ("system", "user", "assistant"):
            raise ValidationError(f"messages[{index}] has role {role!r}", hint=hint, index=index)
        if not isinstance(content, str):
            raise ValidationError(f"messages[{index}].content is not a string", hint=hint, index=index)
        result.append(ChatMessage(role, content))
    return result


def check_options(
    max_tokens: int | None, temperature: float | None, stop: Sequence[str] | None, max_temperature: float
) -> GenerateOptions:
    """The sampling arguments, checked; raises ``ValidationError``."""
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise ValidationError(
            f"max_tokens must be a positive integer, not {max_tokens!r}",
            hint="Pass max_tokens >= 1, or leave it out.",
        )
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or not 0 <= temperature <= max_temperature
    ):
        raise ValidationError(
            f"temperature must be between 0 and {max_temperature}, not {temperature!r}",
            hint=f"Pass a temperature in [0, {max_temperature}], or leave it out.",
        )
    if isinstance(stop, str) or (stop is not None and not all(isinstance(s, str) and s for s in stop)):
        raise ValidationError(
            "stop must be a list of non-empty strings", hint='Pass stop as a list, e.g. ["\\n\\n"].'
        )
    return GenerateOptions(max_tokens, None if temperature is None else float(temperature), tuple(stop or ()))
