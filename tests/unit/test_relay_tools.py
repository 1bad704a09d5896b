"""The relay forwards tool calling only when its operator opts in (``--allow-tools``), and then only in
the documented shapes; otherwise tools, tool_choice and tool messages are refused with a hint naming the
flag."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from hybrid_router_relay.body import MAX_TOOLS, check_body
from hybrid_router_relay.config import CloudConfig, RelayConfig, add_relay_arguments
from hybrid_router_relay.errors import RelayError
from tests.unit.relay_helpers import BODY, MODEL, running_relay

OPENAI = CloudConfig("openai", "http://upstream.example/v1", "k", MODEL)
ANTHROPIC = CloudConfig("anthropic", "http://upstream.example", "k", MODEL)
PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather in a city", "parameters": PARAMS},
}
FORCED = {"type": "function", "function": {"name": "get_weather"}}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
#: a whole tool round: the user's question, the assistant's call, the tool's result
ROUND = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius": 21}'},
]


def forwarded(body: dict[str, Any], cloud: CloudConfig = OPENAI) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        check_body(json.dumps(body).encode(), cloud, 512, allow_tools=True).data
    )
    return data


def refusal(body: dict[str, Any], cloud: CloudConfig = OPENAI, *, allow_tools: bool = False) -> RelayError:
    with pytest.raises(RelayError) as caught:
        check_body(json.dumps(body).encode(), cloud, 512, allow_tools=allow_tools)
    return caught.value


def test_the_flag_is_off_by_default_and_set_by_flag_or_environment() -> None:
    parser = argparse.ArgumentParser()
    add_relay_arguments(parser)
    assert RelayConfig().allow_tools is False
    assert RelayConfig.from_args(parser.parse_args([]), {}, host="127.0.0.1", port=1).allow_tools is False
    on = RelayConfig.from_args(parser.parse_args(["--allow-tools"]), {}, host="127.0.0.1", port=1)
    assert on.allow_tools is True
    env = {"HYBRID_ROUTER_RELAY_ALLOW_TOOLS": "1"}
    assert RelayConfig.from_args(parser.parse_args([]), env, host="127.0.0.1", port=1).allow_tools is True


@pytest.mark.parametrize(
    "body",
    [
        {**BODY, "tools": [WEATHER]},
        {**BODY, "tools": [WEATHER], "tool_choice": "auto"},
        {**BODY, "tool_choice": "none"},
        {**BODY, "parallel_tool_calls": False},
        {**BODY, "messages": ROUND},
        {**BODY, "messages": ROUND[1:2]},
    ],
)
def test_without_the_flag_tools_and_tool_messages_are_refused_naming_the_flag(body: dict[str, Any]) -> None:
    error = refusal(body)
    assert error.type == "relay_field_not_allowed"
    assert "--allow-tools" in str(error.hint)
    assert "HYBRID_ROUTER_RELAY_ALLOW_TOOLS" in str(error.hint)


def test_without_the_flag_anthropic_tool_blocks_are_refused() -> None:
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "w", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "21"}]},
    ]
    assert refusal({**BODY, "messages": messages}, ANTHROPIC).type == "relay_field_not_allowed"
    tools = [{"name": "w", "description": "", "input_schema": PARAMS}]
    error = refusal({**BODY, "tools": tools, "tool_choice": {"type": "auto"}}, ANTHROPIC)
    assert "--allow-tools" in str(error.hint)


@pytest.mark.parametrize("choice", [None, "auto", "none", "required", FORCED])
def test_with_the_flag_openai_tools_are_forwarded_unchanged(choice: object) -> None:
    body = {**BODY, "messages": ROUND, "tools": [WEATHER], "parallel_tool_calls": False}
    if choice is not None:
        body["tool_choice"] = choice
    out = forwarded(body)
    assert out["tools"] == [WEATHER]
    assert out["messages"] == ROUND
    assert out.get("tool_choice") == choice
    assert out["parallel_tool_calls"] is False


def test_with_the_flag_anthropic_client_tools_are_forwarded() -> None:
    tools = [{"name": "w", "description": "weather", "input_schema": PARAMS}]
    for choice in ({"type": "auto"}, {"type": "any"}, {"type": "tool", "name": "w"}):
        out = forwarded({**BODY, "tools": tools, "tool_choice": choice}, ANTHROPIC)
        assert out["tools"] == tools and out["tool_choice"] == choice


@pytest.mark.parametrize(
    "extra, kind",
    [
        ({"tools": [{"type": "web_search"}]}, "relay_field_not_allowed"),
        ({"tools": [{**WEATHER, "extra": 1}]}, "relay_field_not_allowed"),
        ({"tools": [{"type": "function", "function": {"name": ""}}]}, "relay_field_not_allowed"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "code": "x"}}]},
            "relay_field_not_allowed",
        ),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]}, "relay_bad_json"),
        ({"tools": [WEATHER] * (MAX_TOOLS + 1)}, "relay_bad_json"),
        ({"tools": []}, "relay_bad_json"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "relay_field_not_allowed"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "other"}}},
            "relay_field_not_allowed",
        ),
        ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "relay_bad_json"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"d": "x" * 17_000}}}]},
            "relay_field_not_allowed",
        ),
    ],
)
def test_with_the_flag_other_shapes_are_still_refused(extra: dict[str, Any], kind: str) -> None:
    assert refusal({**BODY, **extra}, allow_tools=True).type == kind


def test_with_the_flag_anthropic_server_tools_are_refused() -> None:
    error = refusal(
        {**BODY, "tools": [{"type": "web_search_20250305", "name": "web"}]}, ANTHROPIC, allow_tools=True
    )
    assert error.type == "relay_field_not_allowed"


async def test_the_running_relay_forwards_tools_only_when_enabled() -> None:
    body = {**BODY, "messages": ROUND, "tools": [WEATHER], "tool_choice": FORCED}
    async with running_relay() as relay:
        refused = await relay.post(body)
        assert refused.status == 400
        assert "--allow-tools" in (await refused.json())["error"]["hint"]
        assert relay.fake.requests == []
    async with running_relay(allow_tools=True) as relay:
        resp = await relay.post(body)
        assert resp.status == 200, await resp.text()
        (seen,) = relay.fake.requests
        assert seen.json()["tools"] == [WEATHER]
        assert seen.json()["tool_choice"] == FORCED
        assert seen.json()["messages"] == ROUND
