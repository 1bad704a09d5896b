"""What every HTTP provider shares: requests, retries, the streaming loop, error details.

A provider module only describes its wire format: the request body, its auth headers, how to read a
response, and a :class:`~hybrid_router.providers.base.StreamParser` for its server-sent events. The
contract (deltas then one completion; mid-stream failures are ``CloudError`` with ``stage="stream"``,
``received_deltas``, ``received_chars`` and are never retried here; cancellation closes the response)
is written out in :mod:`hybrid_router.providers.base`.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CloudError, CloudTimeoutError, HybridRouterError, OfflineError, ValidationError
from ..retry import RetryPolicy, error_fields, send_with_retries
from ..sse import Event, SSEDecoder
from ..tools import Tool, calls_from_text
from ..transport import AsyncTransport, Headers, Request, Response
from .base import (
    ChatMessage,
    Completion,
    Delta,
    GenerateOptions,
    StreamItem,
    StreamParser,
)

__all__ = ["HTTPProvider", "decode_json", "shape_error", "text_or_none"]


def text_or_none(value: object) -> str | None:
    """``value`` if it is a string, else None (for optional text fields of provider JSON)."""
    return value if isinstance(value, str) else None


def decode_json(data: str | bytes, *, provider: str, model: str, what: str, api: str) -> Any:
    """``json.loads``, or a ``CloudError`` saying what was malformed."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        raise CloudError(
            f"{provider} sent {what} that is not valid JSON: {text[:200]!r}",
            hint=f"The server (or a proxy before it) does not speak the {api} format: check the provider's "
            "base URL and the relay.",
            provider=provider,
            model=model,
            malformed=what,
        ) from exc


def shape_error(provider: str, model: str, what: str, api: str) -> CloudError:
    """A ``CloudError`` for JSON that does not have the expected shape."""
    return CloudError(
        f"{provider} sent {what} in an unexpected shape",
        hint=f"The server does not answer in the {api} format: check the provider type and base URL.",
        provider=provider,
        model=model,
        malformed=what,
    )


@dataclass
class _Progress:
    deltas: int = 0
    chars: int = 0

    def details(self) -> dict[str, Any]:
        return {"stage": "stream", "received_deltas": self.deltas, "received_chars": self.chars}


class HTTPProvider(ABC):
    """A provider reached over HTTP through an :class:`~hybrid_router.transport.AsyncTransport`.

    ``api_key`` is optional: in the browser the relay adds the keys and the page never holds one.
    ``timeout`` is per request (overridable per call); ``retry`` defaults to :class:`RetryPolicy()`.
    """

    default_name = "cloud"
    api = "HTTP"
    can_stream: bool = True
    max_temperature = 2.0

    def __init__(
        self,
        transport: AsyncTransport,
        *,
        model: str,
        base_url: str,
        api_key: str | None = None,
        name: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not model or not base_url:
            raise ValidationError(
                "a cloud provider needs a model and a base_url",
                hint="Set model and base_url in the provider configuration.",
            )
        self.name = name or self.default_name
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._transport = transport
        self._api_key = api_key
        self._retry = retry or RetryPolicy()
        self._headers = Headers(headers)

    # -- what a provider module fills in -------------------------------------------------------------

    @abstractmethod
    def _path(self) -> str:
        """The endpoint, appended to ``base_url``."""

    @abstractmethod
    def _auth_headers(self) -> dict[str, str]:
        """Headers for this API (keys only when one was configured)."""

    @abstractmethod
    def _body(self, messages: list[ChatMessage], options: GenerateOptions, *, stream: bool) -> dict[str, Any]:
        """The JSON request body."""

    @abstractmethod
    def _parse_completion(self, payload: Any) -> Completion:
        """A non-streaming response body (parsed JSON) as a :class:`Completion`."""

    @abstractmethod
    def _stream_parser(self) -> StreamParser:
        """A fresh parser for one stream."""

    def _with_tool_calls(
        self, payload: Any, completion: Completion, tools: Sequence[Tool], choice: str
    ) -> Completion:
        """``completion`` with the response's tool calls, checked against ``tools`` (a provider that speaks
        tools fills it in); a call the model wrote as text (:func:`~hybrid_router.tools.calls_from_text`)
        replaces that text."""
        calls = calls_from_text(tools, completion.text, choice)
        if not calls:
            return completion
        return dataclasses.replace(completion, text="", tool_calls=calls, finish_reason="tool_calls")

    # -- shared ---------------------------------------------------------------------------------------

    def _request(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None,
        temperature: float | None,
        stop: Sequence[str] | None,
        timeout: float | None,
        stream: bool,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Tool] = (),
        tool_choice: str = "auto",
    ) -> Request:
        options = GenerateOptions(
            max_tokens,
            None if temperature is None else float(temperature),
            tuple(stop or ()),
            response_format,
            tuple(tools),
            tool_choice,
        )
        body = self._body(list(messages), options, stream=stream)
        headers = self._headers.with_defaults(self._auth_headers())
        if stream:
            headers = headers.with_defaults({"Accept": "text/event-stream"})
        return Request(
            "POST",
            self.base_url + self._path(),
            headers,
            json_body=body,
            timeout=self.timeout if timeout is None else timeout,
        )

    async def _send(self, request: Request, *, stream: bool) -> Response:
        return await send_with_retries(
            self._transport, request, stream=stream, policy=self._retry, provider=self.name, model=self.model
        )

    def parse_json(self, data: str | bytes, what: str) -> Any:
        """``json.loads``, or a ``CloudError`` naming ``what`` was malformed (for parsers)."""
        return decode_json(data, provider=self.name, model=self.model, what=what, api=self.api)

    def unexpected(self, what: str) -> CloudError:
        """The error for JSON of the wrong shape (for parsers)."""
        return shape_error(self.name, self.model, what, self.api)

    def error_event(self, payload: object) -> CloudError:
        """The error for an error event in a stream (for parsers)."""
        message, kind, code = error_fields(payload)
        return CloudError(
            f"{self.name} reported an error mid-stream: {message or 'no message'}",
            hint="The provider failed while answering; retry the call, or fall back to the device.",
            provider=self.name,
            model=self.model,
            error_type=kind,
            error_code=code,
        )

    def cut_short(self, missing: str) -> CloudError:
        """The error for a stream that ended before its last event (for parsers)."""
        return CloudError(
            f"{self.name}: the stream ended before {missing}",
            hint="The connection was closed early (by the server, the relay or a proxy); retry the call, "
            "or fall back to the device.",
            provider=self.name,
            model=self.model,
        )

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
    ) -> Completion:
        """The whole answer at once; with ``tools``, the model's calls checked against them (a
        :class:`~hybrid_router.errors.ToolCallError` for a call the app cannot run)."""
        request = self._request(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop,
            timeout=timeout,
            stream=False,
            response_format=response_format,
            tools=tools,
            tool_choice=tool_choice,
        )
        response = await self._send(request, stream=False)
        async with response:
            body = await response.aread()
        payload = self.parse_json(body, "a response")
        completion = self._parse_completion(payload)
        return self._with_tool_calls(payload, completion, tools, tool_choice) if tools else completion

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
        response_format: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[StreamItem, None]:
        """Deltas as they arrive, then the :class:`Completion` (see the module docstring)."""
        request = self._request(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop,
            timeout=timeout,
            stream=True,
            response_format=response_format,
        )
        response = await self._send(request, stream=True)
        parser = self._stream_parser()
        progress = _Progress()
        decoder = SSEDecoder()
        chunks = response.aiter_bytes()
        try:
            while not parser.done:
                chunk = await self._next_chunk(chunks, progress)
                events = decoder.finish() if chunk is None else decoder.feed(chunk)
                for event in events:
                    for delta in self._feed(parser, event, progress):
                        yield delta
                    if parser.done:
                        break
                if chunk is None:
                    break
            completion = self._finish(parser, progress)
        finally:
            await chunks.aclose()
            await response.aclose()
        yield completion

    async def _next_chunk(self, chunks: AsyncGenerator[bytes, None], progress: _Progress) -> bytes | None:
        try:
            return await anext(chunks)
        except StopAsyncIteration:
            return None
        except (OfflineError, CloudTimeoutError) as exc:
            raise self._interrupted(exc, progress) from exc

    def _feed(self, parser: StreamParser, event: Event, progress: _Progress) -> list[Delta]:
        try:
            deltas = parser.feed(event)
        except HybridRouterError as exc:
            _add_progress(exc, progress)
            raise
        for delta in deltas:
            progress.deltas += 1
            progress.chars += len(delta.text)
        return deltas

    def _finish(self, parser: StreamParser, progress: _Progress) -> Completion:
        try:
            return parser.finish()
        except HybridRouterError as exc:
            _add_progress(exc, progress)
            raise

    def _interrupted(self, exc: CloudError, progress: _Progress) -> CloudError:
        if progress.deltas:
            hint = (
                "Part of the answer had arrived when the stream broke; it was not retried "
                "automatically so that no text is repeated. Retry the call, or fall back to the device."
            )
        else:
            hint = "The stream broke before any text arrived; retry the call, or fall back to the device."
        return CloudError(
            f"{self.name}: the stream broke after {progress.chars} characters: {exc.message}",
            hint=hint,
            provider=self.name,
            model=self.model,
            cause=exc.name,
            **progress.details(),
        )


def _add_progress(exc: HybridRouterError, progress: _Progress) -> None:
    for key, value in progress.details().items():
        exc.details.setdefault(key, value)
