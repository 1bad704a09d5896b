"""A fake cloud provider (a test tool, named as what it is): speaks the OpenAI chat completions and the
Anthropic Messages wire formats, records every request it receives, and injects planned faults.

The relay's unit tests run it in-process (``FakeUpstream().app()`` under aiohttp's ``TestServer``) and
assert that an attack left ``requests`` empty; ``bench/relay_load.py`` runs it as a process
(``python -m tests.fake_upstream --port N``) to measure what the relay adds.

Endpoints: ``POST /v1/chat/completions`` and ``POST /v1/messages`` (streamed when the body says
``"stream": true``); any other request is recorded and answered 404. Faults, one per request in plan
order (then ``ok``): ``ok``, ``status:<code>[:<header>=<value>]``, ``reset-mid-stream`` (two events,
then the TCP connection is dropped), ``stall-mid-stream:<seconds>`` (one event, then silence),
``drop`` (the connection closed before any answer),
``leak-secrets`` (a 401 whose message quotes the Authorization header and the Host, as real providers
sometimes do).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

WORDS = ("The", " fake", " upstream", " answers", " in", " a", " few", " words", ".")


@dataclass
class Recorded:
    method: str
    raw_path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeUpstream:
    words: tuple[str, ...] = WORDS
    requests: list[Recorded] = field(default_factory=list)
    _plan: deque[str] = field(default_factory=deque)
    events: list[str] = field(default_factory=list)

    def plan(self, *faults: str) -> None:
        self._plan = deque(faults)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.method, request.raw_path, dict(request.headers), body))
        fault = self._plan.popleft() if self._plan else "ok"
        kind, *args = fault.split(":")
        if kind == "status":
            headers = dict(a.split("=", 1) for a in args[1:])
            return web.json_response(
                {"error": {"message": f"injected {args[0]}", "type": "injected_fault"}},
                status=int(args[0]),
                headers=headers,
            )
        if kind == "drop":  # a kept-alive connection closed under the client: no answer at all
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if kind == "leak-secrets":
            message = (
                f"Incorrect API key provided: {request.headers.get('Authorization', '')} "
                f"at {request.headers.get('Host', '')}"
            )
            return web.json_response(
                {"error": {"message": message, "type": "invalid_request_error"}}, status=401
            )
        if request.method != "POST" or request.raw_path not in ("/v1/chat/completions", "/v1/messages"):
            return web.json_response(
                {"error": {"message": "no such endpoint", "type": "not_found"}}, status=404
            )
        payload = json.loads(body)
        anthropic = request.raw_path == "/v1/messages"
        if not payload.get("stream"):
            answer = _anthropic_message if anthropic else _openai_completion
            return web.json_response(answer(payload, "".join(self.words)))
        events = (_anthropic_events if anthropic else _openai_chunks)(payload, self.words)
        return await self._stream(request, events, kind, args)

    async def _stream(
        self, request: web.Request, events: list[bytes], kind: str, args: list[str]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "x-request-id": "fake-req-1"})
        await resp.prepare(request)
        try:
            for n, event in enumerate(events):
                if kind == "reset-mid-stream" and n == 2:
                    self.events.append("reset")
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
                if kind == "stall-mid-stream" and n == 1:
                    self.events.append("stall")
                    await asyncio.sleep(float(args[0]))
                await resp.write(event)
        except (asyncio.CancelledError, ConnectionResetError):
            self.events.append("client-closed")
            raise
        await resp.write_eof()
        self.events.append("done")
        return resp


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _openai_completion(payload: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": payload.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20},
    }


def _openai_chunks(payload: dict[str, Any], words: tuple[str, ...]) -> list[bytes]:
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": payload.get("model")}
    out = [
        _sse({**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]})
        for w in words
    ]
    out.append(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    if (payload.get("stream_options") or {}).get("include_usage"):
        out.append(
            _sse(
                {
                    **base,
                    "choices": [],
                    "usage": {"prompt_tokens": 11, "completion_tokens": len(words), "total_tokens": 20},
                }
            )
        )
    out.append(b"data: [DONE]\n\n")
    return out


def _anthropic_message(payload: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": payload.get("model"),
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 11, "output_tokens": 9},
    }


def _anthropic_events(payload: dict[str, Any], words: tuple[str, ...]) -> list[bytes]:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": payload.get("model"),
            "content": [],
            "usage": {"input_tokens": 11, "output_tokens": 1},
        },
    }
    out = [
        _sse(start, "message_start"),
        _sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
    ]
    out += [
        _sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
            "content_block_delta",
        )
        for w in words
    ]
    out += [
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": len(words)},
            },
            "message_delta",
        ),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI/Anthropic upstream (for benchmarks).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--words", type=int, default=len(WORDS), help="streamed chunks per answer")
    args = parser.parse_args()
    fake = FakeUpstream(words=tuple(f" w{i}" for i in range(args.words)))
    fake.requests = _Forgetful()  # a long benchmark must not keep every request
    web.run_app(fake.app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


class _Forgetful(list[Recorded]):
    def append(self, item: Recorded) -> None:
        pass


if __name__ == "__main__":
    main()
