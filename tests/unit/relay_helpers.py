"""What the relay's tests share: a relay in front of the fake upstream, and a raw HTTP/1.1 client that
sends a request target byte for byte (aiohttp's and yarl's clients normalize paths) and reports
whether a chunked answer was properly terminated."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from hybrid_router_relay import CloudConfig, Limits, RelayConfig, standalone_app
from hybrid_router_relay.app import RELAY, STATE, RelayState
from tests.fake_upstream import FakeUpstream

KEY = "sk-fake-upstream-key-never-to-the-client"
MODEL = "fake-model-1"
CHAT = "/api/cloud/chat/completions"
MESSAGES = "/api/cloud/v1/messages"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 16}


@dataclass
class Relay:
    """A running relay (``client``), the fake behind it, and the relay's own origin and state."""

    client: TestClient[web.Request, web.Application]
    fake: FakeUpstream
    config: RelayConfig
    fake_port: int

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> RelayState:
        return self.client.app[RELAY][STATE]

    def headers(self, **extra: str) -> dict[str, str]:
        """A same-origin browser call's headers."""
        return {"Origin": self.origin, "Content-Type": "application/json", **extra}

    async def post(self, body: Any = None, path: str = CHAT, **headers: str) -> Any:
        data = json.dumps(BODY if body is None else body)
        return await self.client.post(path, data=data, headers=self.headers(**headers))


@asynccontextmanager
async def running_relay(
    *,
    kind: str = "openai",
    limits: Limits | None = None,
    base_url: str | None = None,
    app_options: Mapping[str, Any] | None = None,
    **config: Any,
) -> AsyncIterator[Relay]:
    fake = FakeUpstream()
    upstream = TestServer(fake.app())
    await upstream.start_server()
    try:
        port = unused_port()
        base = (
            base_url
            if base_url is not None
            else f"http://127.0.0.1:{upstream.port}" + ("/v1" if kind == "openai" else "")
        )
        cfg = RelayConfig(
            cloud=CloudConfig(kind, base, KEY, MODEL, "a fake"),
            host="127.0.0.1",
            port=port,
            limits=limits or Limits(rate_per_minute=0),
            **config,
        )
        client = TestClient(TestServer(standalone_app(cfg, **(app_options or {})), port=port))
        await client.start_server()
        try:
            yield Relay(client, fake, cfg, upstream.port or 0)
        finally:
            await client.close()
    finally:
        await upstream.close()


def with_limits(**changes: Any) -> Limits:
    return replace(Limits(rate_per_minute=0), **changes)


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    #: the chunked body ended with its terminating chunk (False: cut)
    complete: bool
    raw: bytes = field(repr=False, default=b"")

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(
    port: int,
    target: str,
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    host: str | None = None,
) -> RawAnswer:
    """One request on a fresh connection, read to EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    data = b""
    try:
        while chunk := await reader.read(65536):
            data += chunk
    except ConnectionResetError:
        pass
    writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        payload, complete = _dechunk(rest)
    else:
        payload, complete = rest, len(rest) == int(hdrs.get("content-length", len(rest)))
    return RawAnswer(int(status_line.split()[1]), hdrs, payload, complete, data)


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    out = b""
    while True:
        size_line, sep, data = data.partition(b"\r\n")
        if not sep:
            return out, False
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            return out, False
        if size == 0:
            return out, data.startswith(b"\r\n") and data[2:] == b""
        if len(data) < size + 2:
            return out + data[:size], False
        out, data = out + data[:size], data[size + 2 :]
