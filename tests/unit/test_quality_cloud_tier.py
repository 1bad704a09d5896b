"""The harness's cloud-tier row asks an OpenAI-compatible server as the relay does and reads its reply.

The server here is a fake that speaks the chat-completions wire format (the real llama-server answers the
harness in ``python -m eval.quality generate --cloud-tier``; the browser tests run it as the cloud).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eval.quality import cloud_tier


@pytest.fixture
def fake_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, **body})
            cut = body["max_tokens"] <= 4
            reply = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": "The answer is 42." if not cut else "The",
                        },
                        "finish_reason": "length" if cut else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 9, "completion_tokens": 4 if cut else 6, "total_tokens": 15},
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()


def test_a_greedy_completion_with_the_sets_budget(fake_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = fake_server
    answer = cloud_tier.ask(url, "qwen2.5-coder-0.5b-instruct", "What is 6 x 7?", 256)
    assert (answer.text, answer.tokens, answer.finish_reason) == ("The answer is 42.", 6, "stop")
    assert seen == [
        {
            "path": "/v1/chat/completions",
            "model": "qwen2.5-coder-0.5b-instruct",
            "messages": [{"role": "user", "content": "What is 6 x 7?"}],
            "max_tokens": 256,
            "temperature": 0,
        }
    ]


def test_an_answer_cut_at_the_budget_says_so(fake_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, _ = fake_server
    answer = cloud_tier.ask(url, "m", "Say a long thing.", 4)
    assert (answer.text, answer.tokens, answer.finish_reason) == ("The", 4, "length")


def test_its_answers_are_cached_apart_from_the_device_models() -> None:
    from builder.pins_llama import DEFAULT_GGUF, GGUFS

    row = cloud_tier.model()
    assert row.id == cloud_tier.ROW_ID and row.sha256 == GGUFS[DEFAULT_GGUF].sha256
