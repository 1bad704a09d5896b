"""The HTTP seam: what the providers need from the platform, and a mock of it for tests.

The providers build a :class:`Request` and call ``await transport.send(request, stream=...)``; they never
import an HTTP library. Implementations:

- ``transport_pyfetch.PyfetchTransport`` in the browser (Pyodide's ``pyfetch`` + a ``ReadableStream``
  reader), the only one that touches ``js``/``pyodide``;
- :class:`MockTransport` here, for unit tests: a function from request to response.

The contract of :meth:`AsyncTransport.send`:

- it returns a :class:`Response` for *every* HTTP status (a 500 is a response, not an error);
- ``stream=False``: the body is read completely before ``send`` returns (so a failure while reading it
  is a failure of ``send``, which the retry layer may retry);
- ``stream=True``: ``send`` returns once the headers are in; the body is read with
  :meth:`Response.aiter_bytes`, and the caller must :meth:`Response.aclose` it (closing early aborts
  the download);
- ``request.timeout`` bounds the wait for the headers (and for ``stream=False`` the whole body);
  a streaming transport also applies it to each wait for the next chunk, so a stalled stream ends;
- failures are raised as errors of :mod:`hybrid_router.errors`, never as foreign exceptions:
  :class:`~hybrid_router.errors.CloudTimeoutError` when the timeout ran out, and
  :class:`~hybrid_router.errors.OfflineError` when the server (or the relay) could not be reached or
  the connection broke. Both carry ``details["phase"]``: ``"connect"`` (no response yet) or ``"read"``
  (while reading the body). Whether to retry is the retry layer's decision, not the transport's;
- ``asyncio.CancelledError`` aborts the request and propagates, unwrapped.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from typing import Any, Protocol, TypeAlias, runtime_checkable

from .errors import CloudError, CloudTimeoutError, HybridRouterError, OfflineError

__all__ = [
    "AsyncTransport",
    "BodySource",
    "Headers",
    "MockHandler",
    "MockTransport",
    "Request",
    "Response",
    "transport_error",
]


class Headers(Mapping[str, str]):
    """Immutable HTTP headers with case-insensitive names (a repeated name keeps its last value)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        pairs: Iterable[tuple[str, str]] = items.items() if isinstance(items, Mapping) else (items or ())
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in pairs:
            self._items[name.lower()] = (name, str(value))

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"

    def with_defaults(self, defaults: Mapping[str, str]) -> Headers:
        """These headers plus those of ``defaults`` whose names are not set here."""
        missing = [(k, v) for k, v in defaults.items() if k not in self]
        return Headers([*self.items(), *missing]) if missing else self


class Request:
    """One HTTP request. Give ``json_body`` (serialised as compact UTF-8 JSON) or ``body``, not both."""

    __slots__ = ("method", "url", "headers", "json_body", "body", "timeout")

    def __init__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> None:
        if json_body is not None and body is not None:
            raise ValueError("Request takes json_body or body, not both")
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds or None, not {timeout!r}")
        self.method = method.upper()
        self.url = url
        hdrs = headers if isinstance(headers, Headers) else Headers(headers)
        if json_body is not None:
            hdrs = hdrs.with_defaults({"Content-Type": "application/json"})
        self.headers = hdrs
        self.json_body = json_body
        self.body = body
        self.timeout = timeout

    @property
    def content(self) -> bytes:
        """The body as bytes (``b""`` when there is none)."""
        if self.body is not None:
            return self.body
        if self.json_body is None:
            return b""
        return json.dumps(self.json_body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def __repr__(self) -> str:
        return f"Request({self.method!r}, {self.url!r})"


@runtime_checkable
class _Closable(Protocol):
    async def aclose(self) -> None: ...


#: What a :class:`Response` body can be made of: bytes; an iterable of chunks, where an exception
#: instance in the list is raised when reached (a simulated failure); or an async iterable of chunks
#: (an async generator, or a transport's own stream object with an ``aclose``).
BodySource: TypeAlias = bytes | Iterable[bytes | BaseException] | AsyncIterable[bytes]


async def _iterate(chunks: Iterable[bytes | BaseException]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        if isinstance(chunk, BaseException):
            raise chunk
        yield chunk


class Response:
    """An HTTP response whose body is read once, as a whole (:meth:`aread`) or in chunks
    (:meth:`aiter_bytes`). Always :meth:`aclose` a streamed response (``async with`` does it)."""

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: BodySource = b"",
        *,
        request: Request | None = None,
    ) -> None:
        self.status = status
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.request = request
        self._content: bytes | None = None
        self._stream: AsyncIterable[bytes] | None = None
        if isinstance(body, bytes | bytearray):
            self._content = bytes(body)
        elif isinstance(body, AsyncIterable):
            self._stream = body
        else:
            self._stream = _iterate(body)
        self._consumed = False
        self.is_closed = False

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    async def aread(self) -> bytes:
        """The whole body (read once, then kept)."""
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.aiter_bytes()])
        return self._content

    async def aiter_bytes(self) -> AsyncGenerator[bytes, None]:
        """The body chunk by chunk, as it arrives; the response is closed when it ends or fails."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        if self._consumed or self.is_closed or self._stream is None:
            raise RuntimeError("the response body was already read or closed")
        self._consumed = True
        try:
            async for chunk in self._stream:
                if chunk:
                    yield bytes(chunk)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Release the body (aborts an unfinished download). Safe to call more than once."""
        if self.is_closed:
            return
        self.is_closed = True
        if isinstance(self._stream, _Closable):
            await self._stream.aclose()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Response({self.status})"


class AsyncTransport(Protocol):
    """Sends one request; see the module docstring for the contract."""

    async def send(self, request: Request, *, stream: bool = False) -> Response: ...


def transport_error(exc: BaseException, request: Request, *, phase: str) -> CloudError:
    """A foreign transport failure as one of ours: ``TimeoutError`` -> ``CloudTimeoutError``, anything
    else (``OSError``: refused, reset, DNS, "Failed to fetch") -> ``OfflineError``."""
    where = "waiting for the response" if phase == "connect" else "reading the response"
    if isinstance(exc, TimeoutError):
        return CloudTimeoutError(
            f"{request.method} {request.url}: no answer within {request.timeout} s ({where})",
            url=request.url,
            timeout=request.timeout,
            phase=phase,
        )
    reason = str(exc) or type(exc).__name__
    return OfflineError(
        f"{request.method} {request.url}: connection failed while {where}: {reason}",
        url=request.url,
        phase=phase,
        cause=type(exc).__name__,
    )


class _TranslatedStream:
    """Wraps a body so that foreign failures while reading it surface as our errors."""

    def __init__(self, inner: AsyncIterable[bytes], request: Request) -> None:
        self._inner = inner
        self._iter: AsyncIterator[bytes] | None = None
        self._request = request

    def __aiter__(self) -> _TranslatedStream:
        return self

    async def __anext__(self) -> bytes:
        if self._iter is None:
            self._iter = aiter(self._inner)
        try:
            return await anext(self._iter)
        except (StopAsyncIteration, HybridRouterError):
            raise
        except OSError as exc:  # includes TimeoutError and ConnectionError
            raise transport_error(exc, self._request, phase="read") from exc

    async def aclose(self) -> None:
        for closable in (self._iter, self._inner):
            if isinstance(closable, _Closable):
                await closable.aclose()


#: A :class:`MockTransport` handler: a plain or async function from request to response.
MockHandler: TypeAlias = Callable[[Request], Response | Awaitable[Response]]


class MockTransport:
    """A transport that answers with ``handler(request)``, for unit tests (like httpx's).

    The handler may be sync or async; it may raise to simulate a failure: ``OSError`` (e.g.
    ``ConnectionRefusedError()``) becomes ``OfflineError``, ``TimeoutError()`` becomes
    ``CloudTimeoutError``; errors of ours pass through. A body given as a list can hold an exception
    instance to fail mid-body (``[b"data: ...", ConnectionResetError()]``). An async handler that
    does not answer within ``request.timeout`` times out, as a real transport would.

    ``requests`` and ``responses`` record every exchange, for assertions.
    """

    def __init__(self, handler: MockHandler) -> None:
        self._handler = handler
        self.requests: list[Request] = []
        self.responses: list[Response] = []

    async def send(self, request: Request, *, stream: bool = False) -> Response:
        self.requests.append(request)
        try:
            async with asyncio.timeout(request.timeout):
                answer = self._handler(request)
                response = await answer if inspect.isawaitable(answer) else answer
        except HybridRouterError:
            raise
        except OSError as exc:  # TimeoutError (ours or the handler's) is an OSError too
            raise transport_error(exc, request, phase="connect") from exc
        if response.request is None:
            response.request = request
        if response._stream is not None:
            response._stream = _TranslatedStream(response._stream, request)
        self.responses.append(response)
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response
