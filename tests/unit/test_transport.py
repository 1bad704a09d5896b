"""The transport seam: Headers/Request/Response, MockTransport, and PyfetchTransport on a fake browser."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hybrid_router.browser.transport_pyfetch import JsPlatform, PyfetchTransport
from hybrid_router.errors import CloudError, CloudTimeoutError, OfflineError
from hybrid_router.transport import Headers, MockTransport, Request, Response

URL = "https://relay.test/v1/chat/completions"


# -- Headers, Request, Response --------------------------------------------------------------------


def test_headers_are_case_insensitive_and_keep_names() -> None:
    headers = Headers({"Content-Type": "application/json", "X-Request-Id": "r1"})
    assert headers["content-type"] == "application/json"
    assert "x-request-id" in headers and "X-REQUEST-ID" in headers
    assert headers.get("retry-after") is None
    assert list(headers) == ["Content-Type", "X-Request-Id"]
    assert 3 not in headers  # type: ignore[comparison-overlap]  # a key that is not a str: simply absent


def test_headers_with_defaults_do_not_override() -> None:
    headers = Headers({"authorization": "Bearer a"}).with_defaults(
        {"Authorization": "Bearer b", "Accept": "x"}
    )
    assert dict(headers) == {"authorization": "Bearer a", "Accept": "x"}


def test_request_json_body_is_compact_utf8_with_content_type() -> None:
    request = Request("post", URL, {"Accept": "text/event-stream"}, json_body={"q": "héllo", "n": [1, 2]})
    assert request.method == "POST"
    assert request.content == '{"q":"héllo","n":[1,2]}'.encode()
    assert request.headers["content-type"] == "application/json"
    assert Request("GET", URL).content == b""
    assert Request("POST", URL, body=b"raw").content == b"raw"


def test_request_rejects_two_bodies_and_negative_timeout() -> None:
    with pytest.raises(ValueError):
        Request("POST", URL, json_body={}, body=b"x")
    with pytest.raises(ValueError):
        Request("GET", URL, timeout=-1)


async def test_response_from_chunks_reads_once_and_closes() -> None:
    response = Response(200, {"A": "1"}, [b"ab", b"", b"cd"])
    assert [c async for c in response.aiter_bytes()] == [b"ab", b"cd"]
    assert response.is_closed
    with pytest.raises(RuntimeError):
        await response.aread()


async def test_response_aread_keeps_the_content() -> None:
    response = Response(200, body=[b"a", b"b"])
    assert await response.aread() == b"ab"
    assert await response.aread() == b"ab"
    assert [c async for c in response.aiter_bytes()] == [b"ab"]


async def test_response_aclose_closes_an_async_generator_body() -> None:
    finalized: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"one"
            yield b"two"
        finally:
            finalized.append(True)

    response = Response(200, body=body())
    chunks = response.aiter_bytes()
    assert await anext(chunks) == b"one"
    await chunks.aclose()
    await response.aclose()
    await response.aclose()  # twice is fine
    assert finalized == [True] and response.is_closed


# -- MockTransport ---------------------------------------------------------------------------------


async def test_mock_transport_sync_and_async_handlers_and_records() -> None:
    def sync_handler(request: Request) -> Response:
        return Response(201, {"X": "y"}, b"ok")

    async def async_handler(request: Request) -> Response:
        await asyncio.sleep(0)
        return Response(200, body=b"async")

    sync_transport = MockTransport(sync_handler)
    response = await sync_transport.send(Request("GET", URL))
    assert (response.status, response.headers["x"], await response.aread()) == (201, "y", b"ok")
    assert sync_transport.requests[0].url == URL and response.request is sync_transport.requests[0]
    async_transport = MockTransport(async_handler)
    assert await (await async_transport.send(Request("GET", URL))).aread() == b"async"


async def test_mock_non_stream_reads_the_body_inside_send() -> None:
    transport = MockTransport(lambda r: Response(200, body=[b"a", ConnectionResetError("reset")]))
    with pytest.raises(OfflineError) as info:
        await transport.send(Request("GET", URL), stream=False)
    assert info.value.details["phase"] == "read"
    assert transport.responses[0].is_closed


async def test_mock_stream_returns_before_the_body_and_fails_mid_body() -> None:
    transport = MockTransport(lambda r: Response(200, body=[b"first", ConnectionResetError("peer reset")]))
    response = await transport.send(Request("GET", URL), stream=True)
    chunks = response.aiter_bytes()
    assert await anext(chunks) == b"first"
    with pytest.raises(OfflineError) as info:
        await anext(chunks)
    assert info.value.details["phase"] == "read"
    assert "peer reset" in info.value.message
    assert isinstance(info.value.__cause__, ConnectionResetError)
    assert response.is_closed


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ConnectionRefusedError("refused"), OfflineError),
        (OSError("Failed to fetch"), OfflineError),
        (TimeoutError(), CloudTimeoutError),
    ],
)
async def test_mock_handler_failures_become_our_errors(
    raised: BaseException, expected: type[CloudError]
) -> None:
    def handler(request: Request) -> Response:
        raise raised

    with pytest.raises(expected) as info:
        await MockTransport(handler).send(Request("GET", URL, timeout=5))
    assert type(info.value) is expected
    assert info.value.details["phase"] == "connect"
    assert info.value.details["url"] == URL


async def test_mock_async_handler_that_never_answers_times_out() -> None:
    async def handler(request: Request) -> Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    with pytest.raises(CloudTimeoutError) as info:
        await MockTransport(handler).send(Request("GET", URL, timeout=0))
    assert info.value.details["timeout"] == 0


async def test_mock_bugs_in_handlers_are_not_disguised() -> None:
    def handler(request: Request) -> Response:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await MockTransport(handler).send(Request("GET", URL))


# -- PyfetchTransport on a fake browser ------------------------------------------------------------


class FakeJsException(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Proxy:
    def __init__(self) -> None:
        self.destroyed = False

    def destroy(self) -> None:
        if self.destroyed:
            raise RuntimeError("already destroyed")
        self.destroyed = True


class FakeSignal(Proxy):
    pass


class FakeController(Proxy):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False
        self.signals: list[FakeSignal] = []

    @property
    def signal(self) -> FakeSignal:  # each access gives a new proxy, as in Pyodide
        signal = FakeSignal()
        self.signals.append(signal)
        return signal

    def abort(self) -> None:
        self.aborted = True


class FakeBytes(Proxy):
    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data


class FakeResult(Proxy):
    def __init__(self, value: FakeBytes | None) -> None:
        super().__init__()
        self.done = value is None
        self.value = value


class FakeReader(Proxy):
    """Reads scripted items: bytes, an exception to raise, or "hang" (waits until cancelled)."""

    def __init__(self, items: list[Any]) -> None:
        super().__init__()
        self.items = list(items)
        self.made: list[Proxy] = []
        self.released = False

    async def read(self) -> FakeResult:
        item = self.items.pop(0) if self.items else None
        if item == "hang":
            await asyncio.Event().wait()
        if isinstance(item, BaseException):
            raise item
        value = FakeBytes(item) if item is not None else None
        result = FakeResult(value)
        self.made += [p for p in (value, result) if p is not None]
        return result

    def releaseLock(self) -> None:  # noqa: N802 (the JS name)
        self.released = True


class FakeStream(Proxy):
    def __init__(self, reader: FakeReader) -> None:
        super().__init__()
        self.reader = reader

    def getReader(self) -> FakeReader:  # noqa: N802 (the JS name)
        return self.reader


class FakeJsResponse(Proxy):
    def __init__(self, items: list[Any] | None, headers: dict[str, str]) -> None:
        super().__init__()
        self.reader = FakeReader(items) if items is not None else None
        self.stream = FakeStream(self.reader) if self.reader is not None else None
        self.headers = headers

    @property
    def body(self) -> FakeStream | None:
        return self.stream


class FakeFetchResponse:
    def __init__(self, status: int, js_response: FakeJsResponse) -> None:
        self.status = status
        self.js_response = js_response


class FakeBrowser:
    def __init__(
        self,
        status: int = 200,
        items: list[Any] | None = None,
        *,
        fail: BaseException | None = None,
        hang: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.js_response = FakeJsResponse(items, headers or {"content-type": "text/event-stream"})
        self.status, self.fail, self.hang = status, fail, hang
        self.controllers: list[FakeController] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.returned = False

    def new_controller(self) -> FakeController:
        controller = FakeController()
        self.controllers.append(controller)
        return controller

    async def pyfetch(self, url: str, **options: Any) -> FakeFetchResponse:
        self.calls.append((url, options))
        if self.hang:
            await asyncio.Event().wait()
        if self.fail is not None:
            raise self.fail
        self.returned = True
        return FakeFetchResponse(self.status, self.js_response)

    def platform(self) -> JsPlatform:
        return JsPlatform(
            pyfetch=self.pyfetch,
            new_abort_controller=self.new_controller,
            errors=(FakeJsException, OSError),
            headers_of=lambda js_response: dict(js_response.headers),
        )

    def all_destroyed(self) -> bool:
        response = self.js_response
        proxies: list[Proxy] = [*self.controllers, *(s for c in self.controllers for s in c.signals)]
        if not self.returned:  # the fetch failed: no response proxies were handed over
            return all(p.destroyed for p in proxies)
        proxies.append(response)
        if response.reader is not None:
            proxies += [response.reader, *response.reader.made]
        if response.stream is not None:
            proxies.append(response.stream)
        return all(p.destroyed for p in proxies)


def post(timeout: float | None = 30) -> Request:
    return Request("POST", URL, {"Accept": "text/event-stream"}, json_body={"q": "é"}, timeout=timeout)


def test_importing_the_browser_transport_imports_no_browser_module() -> None:
    code = (
        "import hybrid_router.browser.transport_pyfetch, sys; "
        "print('js' in sys.modules or 'pyodide' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_pyfetch_streams_chunks_and_destroys_every_proxy() -> None:
    browser = FakeBrowser(
        200, [b"data: 1\n\n", b"data: 2\n\n"], headers={"content-type": "text/event-stream"}
    )
    transport = PyfetchTransport(platform=browser.platform())
    response = await transport.send(post(), stream=True)
    assert response.status == 200 and response.headers["Content-Type"] == "text/event-stream"
    url, options = browser.calls[0]
    assert url == URL
    assert options["method"] == "POST"
    assert options["body"] == '{"q":"é"}'  # sent as a JS string
    assert options["headers"]["Accept"] == "text/event-stream"
    assert options["signal"] is browser.controllers[0].signals[0]
    assert [c async for c in response.aiter_bytes()] == [b"data: 1\n\n", b"data: 2\n\n"]
    assert response.is_closed
    assert browser.js_response.reader is not None and browser.js_response.reader.released
    assert not browser.controllers[0].aborted  # finished: nothing to abort
    assert browser.all_destroyed()


async def test_pyfetch_non_stream_reads_everything_inside_send() -> None:
    browser = FakeBrowser(500, [b'{"error":', b'{"message":"boom"}}'])
    response = await PyfetchTransport(platform=browser.platform()).send(post(), stream=False)
    assert response.status == 500
    assert await response.aread() == b'{"error":{"message":"boom"}}'
    assert browser.all_destroyed()


async def test_pyfetch_null_body_is_empty() -> None:
    browser = FakeBrowser(204, None)
    response = await PyfetchTransport(platform=browser.platform()).send(Request("GET", URL), stream=False)
    assert await response.aread() == b""
    assert "body" not in browser.calls[0][1]
    assert browser.all_destroyed()


async def test_pyfetch_failed_to_fetch_is_offline() -> None:
    class AbortError(OSError):  # what pyodide.http raises for "TypeError: Failed to fetch"
        pass

    browser = FakeBrowser(fail=AbortError("Failed to fetch"))
    with pytest.raises(OfflineError) as info:
        await PyfetchTransport(platform=browser.platform()).send(post())
    assert "Failed to fetch" in info.value.message
    assert info.value.details["phase"] == "connect"
    assert browser.all_destroyed()


async def test_pyfetch_connection_lost_mid_body_is_offline_read() -> None:
    browser = FakeBrowser(200, [b"data: 1\n\n", FakeJsException("TypeError: network error")])
    response = await PyfetchTransport(platform=browser.platform()).send(post(), stream=True)
    chunks = response.aiter_bytes()
    assert await anext(chunks) == b"data: 1\n\n"
    with pytest.raises(OfflineError) as info:
        await anext(chunks)
    assert info.value.details["phase"] == "read"
    assert "network error" in info.value.message
    assert response.is_closed and browser.all_destroyed()


async def test_pyfetch_timeout_waiting_for_headers_aborts() -> None:
    browser = FakeBrowser(hang=True)
    with pytest.raises(CloudTimeoutError) as info:
        await PyfetchTransport(platform=browser.platform()).send(post(timeout=0))
    assert info.value.details["phase"] == "connect"
    assert browser.controllers[0].aborted
    assert browser.all_destroyed()


async def test_pyfetch_stalled_stream_times_out_and_aborts() -> None:
    browser = FakeBrowser(200, [b"data: 1\n\n", "hang"])
    response = await PyfetchTransport(platform=browser.platform()).send(post(timeout=0), stream=True)
    chunks = response.aiter_bytes()
    with pytest.raises(CloudTimeoutError) as info:
        async for _ in chunks:
            pass
    assert info.value.details["phase"] == "read"
    assert browser.controllers[0].aborted and browser.all_destroyed()


async def test_pyfetch_cancellation_aborts_the_fetch_and_propagates() -> None:
    browser = FakeBrowser(200, [b"data: 1\n\n", "hang"])
    response = await PyfetchTransport(platform=browser.platform()).send(post(), stream=True)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in response.aiter_bytes():
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    await asyncio.sleep(0)  # let the task reach the hanging read()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert browser.controllers[0].aborted
    assert response.is_closed and browser.all_destroyed()


async def test_pyfetch_cancellation_while_connecting_aborts() -> None:
    browser = FakeBrowser(hang=True)
    task = asyncio.create_task(PyfetchTransport(platform=browser.platform()).send(post()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert browser.controllers[0].aborted and browser.all_destroyed()


async def test_pyfetch_closing_early_aborts_the_download() -> None:
    browser = FakeBrowser(200, [b"a", b"b", b"c"])
    response = await PyfetchTransport(platform=browser.platform()).send(post(), stream=True)
    chunks = response.aiter_bytes()
    assert await anext(chunks) == b"a"
    await chunks.aclose()
    assert response.is_closed
    assert browser.controllers[0].aborted and browser.all_destroyed()
