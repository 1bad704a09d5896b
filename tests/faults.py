"""A fault-injecting HTTP proxy for the cloud side of the tests (named as what it is: a test tool).

It sits between serve.py's relay and a real llama-server and, per request, either forwards faithfully
or injects one planned fault. Everything it sees is logged, including a client that goes away in the
middle of a streamed answer (how the abort tests know the request really stopped).

    proxy = FaultProxy("http://127.0.0.1:8081/v1").start()
    proxy.plan("status:429:retry-after=1", "ok")        # first request 429 with Retry-After: 1, then forward
    ... proxy.url ...                                     # give this to serve.py as the cloud base URL
    proxy.events                                          # [("request", 1, "/v1/chat/completions"), ...]
    proxy.bodies                                          # [b'{"model": ...}', ...]: what was sent
    proxy.served                                          # [(n, seconds, fault, body)] per request

Faults: ``ok`` (forward), ``status:<code>[:retry-after=<s>|:retry-after-ms=<ms>]``, ``reset-mid-stream``
(forward a few events, then drop the connection), ``malformed`` (a 200 event stream whose data is not
JSON), ``stall:<seconds>`` (headers, then nothing for that long).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from typing import Any

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.events: list[tuple[str, int, str]] = []
        #: the body of every request, in order (what the cloud was sent: the redaction tests read it)
        self.bodies: list[bytes] = []
        #: per request, when it ended: its number, the seconds it spent here (upstream included), its fault
        #: and its body (the load benchmark tells the relay's share of a cloud call's time by it)
        self.served: list[tuple[int, float, str, bytes]] = []
        self._plan: deque[str] = deque()
        self._count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def plan(self, *faults: str) -> None:
        with self._lock:
            self._plan = deque(faults)
            self.events.clear()
            self.bodies.clear()
            self.served.clear()
            self._count = 0

    def requests(self) -> int:
        return sum(1 for kind, _, _ in self.events if kind == "request")

    def saw(self, kind: str) -> bool:
        return any(k == kind for k, _, _ in self.events)

    def _next(self, path: str) -> tuple[int, str]:
        with self._lock:
            self._count += 1
            fault = self._plan.popleft() if self._plan else "ok"
            self.events.append(("request", self._count, path))
            return self._count, fault

    def _log(self, kind: str, n: int, detail: str = "") -> None:
        with self._lock:
            self.events.append((kind, n, detail))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        n, fault = self._next(path)
        t0 = time.monotonic()
        body = await request.read()
        with self._lock:
            self.bodies.append(body)
        try:
            return await self._answer(request, n, path, fault, body)
        finally:
            with self._lock:
                self.served.append((n, time.monotonic() - t0, fault, body))

    async def _answer(
        self, request: web.Request, n: int, path: str, fault: str, body: bytes
    ) -> web.StreamResponse:
        kind, *args = fault.split(":")
        if kind == "status":
            headers: dict[str, str] = {}
            for extra in args[1:]:
                key, _, value = extra.partition("=")
                headers[key] = value
            return web.json_response(
                {"error": {"message": f"injected {args[0]}", "type": "injected_fault"}},
                status=int(args[0]),
                headers=headers,
            )
        if kind == "malformed":
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(b"data: {this is not json\n\n")
            await resp.write(b"data: [DONE]\n\n")
            return resp
        if kind == "stall":
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            try:
                await asyncio.sleep(float(args[0]))
            except asyncio.CancelledError:
                self._log("client-closed", n, "during stall")
                raise
            return resp
        return await self._forward(
            request, n, path, body, reset_after=3 if kind == "reset-mid-stream" else None
        )

    async def _forward(
        self, request: web.Request, n: int, path: str, body: bytes, reset_after: int | None
    ) -> web.StreamResponse:
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("content-type", "accept", "authorization")
        }
        session = request.app[SESSION]
        async with session.post(self.upstream.rsplit("/v1", 1)[0] + path, data=body, headers=headers) as up:
            resp = web.StreamResponse(
                status=up.status, headers={"Content-Type": up.headers.get("Content-Type", "application/json")}
            )
            await resp.prepare(request)
            chunks = 0
            try:
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                    chunks += 1
                    if reset_after is not None and chunks >= reset_after:
                        self._log("reset", n, f"after {chunks} chunks")
                        assert request.transport is not None
                        request.transport.abort()  # a TCP reset in the middle of the stream
                        return resp
            except (asyncio.CancelledError, ConnectionResetError):
                self._log("client-closed", n, f"after {chunks} chunks")
                raise
            await resp.write_eof()
            self._log("done", n, f"{chunks} chunks")
            return resp

    def start(self) -> FaultProxy:
        ready = threading.Event()

        async def main() -> None:
            app = web.Application()
            app.router.add_route("POST", "/{path:.+}", self._handle)

            async def session_ctx(app: web.Application) -> Any:
                app[SESSION] = aiohttp.ClientSession()
                yield
                await app[SESSION].close()

            app.cleanup_ctx.append(session_ctx)
            self._runner = web.AppRunner(app, handler_cancellation=True)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            # the site has started: its server (None before) is up
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        self._loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fault-proxy")
        thread.start()
        asyncio.run_coroutine_threadsafe(main(), self._loop).result(10)
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    def describe(self) -> str:
        return json.dumps(self.events)
