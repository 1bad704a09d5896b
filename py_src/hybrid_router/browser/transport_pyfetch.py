"""The browser transport: HTTP through ``fetch``, from Python in Pyodide (0.27).

It touches ``js``/``pyodide`` only when :class:`PyfetchTransport` first sends
(:func:`load_js_platform`): importing it in CPython imports nothing from the browser, and tests pass a
fake :class:`JsPlatform`.

- The request goes through ``pyodide.http.pyfetch`` with the ``signal`` of an ``AbortController`` of
  ours. Pyodide's ``pyfetch`` cannot stream a body, so the body is read from
  ``js_response.body.getReader()``: each ``await reader.read()`` gives ``{done, value}`` and
  ``value.to_bytes()`` the chunk.
- ``request.timeout`` bounds the wait for the headers, then each wait for a chunk (a stalled stream
  ends); when it runs out the fetch is aborted and ``CloudTimeoutError`` raised.
- ``asyncio.CancelledError`` aborts the fetch (which stops the download) and propagates.
- "Failed to fetch" (``pyodide.http.AbortError``, an ``OSError``) and any ``JsException`` from
  ``fetch``/``read()`` become ``OfflineError`` (``details["phase"]``: ``connect`` or ``read``).
- Every JS proxy made here is destroyed in a ``finally`` (the response's when it is closed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import CloudTimeoutError, OfflineError
from ..transport import Headers, Request, Response, transport_error
from .jsinterop import destroy

__all__ = ["JsPlatform", "PyfetchTransport", "load_js_platform"]


@dataclass(frozen=True)
class JsPlatform:
    """The few browser things this transport uses (real ones from :func:`load_js_platform`)."""

    #: ``pyodide.http.pyfetch``
    pyfetch: Callable[..., Awaitable[Any]]
    #: ``js.AbortController.new``
    new_abort_controller: Callable[[], Any]
    #: what fetch and reads raise: ``(pyodide.ffi.JsException, OSError)`` (AbortError is an OSError)
    errors: tuple[type[BaseException], ...]
    #: a JS ``Response``'s headers as a dict (lower-case names); destroys what it creates
    headers_of: Callable[[Any], dict[str, str]]


def load_js_platform() -> JsPlatform:
    """The real platform; only works in Pyodide."""
    from js import AbortController, Object
    from pyodide.ffi import JsException
    from pyodide.http import pyfetch

    def headers_of(js_response: Any) -> dict[str, str]:
        js_headers = entries = as_object = None
        try:
            js_headers = js_response.headers
            entries = js_headers.entries()
            as_object = Object.fromEntries(entries)
            return {str(k): str(v) for k, v in as_object.to_py().items()}
        finally:
            destroy(as_object, entries, js_headers)

    return JsPlatform(
        pyfetch=pyfetch,
        new_abort_controller=AbortController.new,
        errors=(JsException, OSError),
        headers_of=headers_of,
    )


def _timed_out(request: Request, phase: str) -> CloudTimeoutError:
    error = transport_error(TimeoutError(), request, phase=phase)
    assert isinstance(error, CloudTimeoutError)
    return error


def _js_error_message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc or type(exc).__name__)


class PyfetchTransport:
    """:class:`~hybrid_router.transport.AsyncTransport` over the browser's ``fetch``."""

    def __init__(self, *, platform: JsPlatform | None = None) -> None:
        self._platform = platform

    def _js(self) -> JsPlatform:
        if self._platform is None:
            self._platform = load_js_platform()
        return self._platform

    async def send(self, request: Request, *, stream: bool = False) -> Response:
        js = self._js()
        controller = js.new_abort_controller()
        signal = controller.signal
        try:
            fetched = await self._fetch(js, request, controller, signal)
        except BaseException:
            destroy(controller)
            raise
        finally:
            destroy(signal)
        body = _FetchBody(js, fetched, controller, request)  # owns the controller from here
        try:
            headers = Headers(js.headers_of(fetched.js_response))
        except BaseException:
            await body.aclose()
            raise
        response = Response(int(fetched.status), headers, body, request=request)
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def _fetch(self, js: JsPlatform, request: Request, controller: Any, signal: Any) -> Any:
        options: dict[str, Any] = {
            "method": request.method,
            "headers": dict(request.headers),
            "signal": signal,
        }
        if request.method not in ("GET", "HEAD"):
            content = request.content
            try:
                options["body"] = content.decode("utf-8")  # a JS string: no buffer conversion needed
            except UnicodeDecodeError:
                options["body"] = content
        try:
            async with asyncio.timeout(request.timeout):
                return await js.pyfetch(request.url, **options)
        except asyncio.CancelledError:
            controller.abort()
            raise
        except TimeoutError as exc:  # before `errors`: TimeoutError is an OSError
            controller.abort()
            raise _timed_out(request, "connect") from exc
        except js.errors as exc:
            raise OfflineError(
                f"{request.method} {request.url}: could not connect: {_js_error_message(exc)}",
                url=request.url,
                phase="connect",
                cause=type(exc).__name__,
            ) from exc


class _FetchBody:
    """A fetch response body as an async byte stream (``ReadableStream`` reader underneath)."""

    def __init__(self, js: JsPlatform, fetched: Any, controller: Any, request: Request) -> None:
        self._js = js
        self._fetched = fetched
        self._controller = controller
        self._request = request
        self._reader: Any = None
        self._started = False
        self._done = False
        self._closed = False

    def __aiter__(self) -> _FetchBody:
        return self

    def _get_reader(self) -> Any:
        if not self._started:
            self._started = True
            stream = self._fetched.js_response.body  # None for a null body (204, HEAD)
            if stream is not None:
                try:
                    self._reader = stream.getReader()
                finally:
                    destroy(stream)
        return self._reader

    async def __anext__(self) -> bytes:
        if self._done or self._closed:
            raise StopAsyncIteration
        reader = self._get_reader()
        if reader is None:
            self._done = True
            raise StopAsyncIteration
        result = None
        try:
            async with asyncio.timeout(self._request.timeout):
                result = await reader.read()
            if result.done:
                self._done = True
                raise StopAsyncIteration
            value = result.value
            try:
                return bytes(value.to_bytes())
            finally:
                destroy(value)
        except asyncio.CancelledError:
            self._controller.abort()
            raise
        except TimeoutError as exc:
            self._controller.abort()
            raise _timed_out(self._request, "read") from exc
        except self._js.errors as exc:
            raise OfflineError(
                f"{self._request.method} {self._request.url}: connection lost while reading the response: "
                f"{_js_error_message(exc)}",
                url=self._request.url,
                phase="read",
                cause=type(exc).__name__,
            ) from exc
        finally:
            destroy(result)

    async def aclose(self) -> None:
        """Stop the download if unfinished and release every proxy. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._done:
                self._controller.abort()  # also ends a pending read() and frees the connection
            if self._reader is not None:
                try:
                    self._reader.releaseLock()
                except self._js.errors:
                    pass
        finally:
            destroy(self._reader, self._fetched.js_response, self._controller)
            self._reader = None
            # pyfetch (0.27) keeps its own controller and the combined signal on the response
            destroy(
                getattr(self._fetched, "abort_signal", None), getattr(self._fetched, "abort_controller", None)
            )
