"""Structured output on an Anthropic cloud: the schema as one forced answer tool (the Messages API has no
response format), its input read back as the answer's JSON, whole and streamed; and the relay forwards
tools only in that shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hybrid_router_relay.body import check_body
from hybrid_router_relay.config import CloudConfig
from hybrid_router_relay.errors import RelayError
from tests.unit.test_providers_anthropic import make, ok, sse

from hybrid_router.chat import ChatMessage
from hybrid_router.providers import Completion, Delta
from hybrid_router.providers.anthropic import ANSWER_TOOL
from hybrid_router.structured import Schema

SCHEMA = Schema.parse({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
ASK = [ChatMessage("user", "Where?")]
ANSWERED = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "tool_use", "id": "toolu_1", "name": ANSWER_TOOL, "input": {"city": "Oslo"}}],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 30, "output_tokens": 9},
}


async def test_the_schema_is_one_forced_tool_and_its_input_is_the_answer() -> None:
    provider, transport = make(ok(json.dumps(ANSWERED).encode()))
    done = await provider.complete(ASK, max_tokens=64, response_format=SCHEMA.response_format())
    body = transport.requests[0].json_body
    assert body["tools"] == [
        {
            "name": ANSWER_TOOL,
            "description": "Give the answer in this form.",
            "input_schema": dict(SCHEMA.source),
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": ANSWER_TOOL}
    assert json.loads(done.text) == {"city": "Oslo"} and done.finish_reason == "stop"


async def test_free_text_and_a_schema_that_is_not_an_object_send_no_tool() -> None:
    provider, transport = make(
        ok(
            json.dumps(
                {**ANSWERED, "content": [{"type": "text", "text": '"x"'}], "stop_reason": "end_turn"}
            ).encode()
        )
    )
    await provider.complete(ASK, max_tokens=64)
    await provider.complete(
        ASK, max_tokens=64, response_format=Schema.parse({"type": "string"}).response_format()
    )
    assert all("tools" not in r.json_body and "tool_choice" not in r.json_body for r in transport.requests)


async def test_a_streamed_answer_comes_as_its_input_json_pieces() -> None:
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {"type": "message_start", "message": {**ANSWERED, "content": [], "stop_reason": None}},
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "t", "name": ANSWER_TOOL, "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"city": "Os'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": 'lo"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    provider, _ = make(ok(sse(events)))
    items = [i async for i in provider.stream(ASK, max_tokens=64, response_format=SCHEMA.response_format())]
    assert [i.text for i in items if isinstance(i, Delta)] == ['{"city": "Os', 'lo"}']
    final = items[-1]
    assert (
        isinstance(final, Completion)
        and json.loads(final.text) == {"city": "Oslo"}
        and final.finish_reason == "stop"
    )


ANTHROPIC = CloudConfig("anthropic", "http://upstream.example", "k", "claude-sonnet-4-5")
FORCED: dict[str, Any] = {
    "tools": [{"name": "answer", "description": "d", "input_schema": dict(SCHEMA.source)}],
    "tool_choice": {"type": "tool", "name": "answer"},
}
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "x"}]}


def test_the_relay_forwards_the_forced_answer_tool() -> None:
    forwarded = json.loads(check_body(json.dumps({**BODY, **FORCED}).encode(), ANTHROPIC, 512).data)
    assert forwarded["tools"] == FORCED["tools"] and forwarded["tool_choice"] == FORCED["tool_choice"]


@pytest.mark.parametrize(
    "extra",
    [
        {"tools": FORCED["tools"]},  # not forced: the model could answer in text or call nothing
        {"tool_choice": FORCED["tool_choice"]},
        {**FORCED, "tool_choice": {"type": "auto"}},
        {**FORCED, "tool_choice": {"type": "tool", "name": "other"}},
        {**FORCED, "tools": FORCED["tools"] * 2},
        {**FORCED, "tools": [{**FORCED["tools"][0], "cache_control": {"type": "ephemeral"}}]},
        {**FORCED, "tools": [{"type": "web_search_20250305", "name": "answer"}]},
        {"tools": []},
    ],
)
def test_the_relay_refuses_every_other_use_of_tools(extra: dict[str, Any]) -> None:
    with pytest.raises(RelayError) as caught:
        check_body(json.dumps({**BODY, **extra}).encode(), ANTHROPIC, 512)
    assert caught.value.type == "relay_field_not_allowed"
