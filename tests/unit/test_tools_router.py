"""Tool calling through the router (#18 item 2): a call with tools is checked where it enters, decided by
the routing's rule 0 (the cloud: the device's chat model cannot call tools), sent to the real providers'
code over a MockTransport in OpenAI's and Anthropic's wire shapes, and answered with the model's calls
checked against each tool's schema; a relay that does not forward tools is a PolicyError naming its flag.
The device is the FakeRuntime (it must never be asked)."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

import pytest
from tests.unit.fakes import FakeRuntime, as_runtime, fake_manifest, generate_with, stream_with

from hybrid_router.chat import ChatRequest
from hybrid_router.errors import OfflineError, PolicyError, ToolCallError, ValidationError
from hybrid_router.ledger import Ledger
from hybrid_router.providers import AnthropicProvider, OpenAICompatProvider
from hybrid_router.providers.http import HTTPProvider
from hybrid_router.retry import RetryPolicy
from hybrid_router.router import Router
from hybrid_router.routing import Facts, Policy, decide
from hybrid_router.routing.rules import TOOLS_RULE
from hybrid_router.tools import ToolCall
from hybrid_router.transport import MockTransport, Response

WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "minLength": 1}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
}
ROUND = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "toolCalls": [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
    },
    {"role": "tool", "toolCallId": "call_1", "content": '{"temperature_c": 18}'},
]


async def no_sleep(_: float) -> None:
    return None


def openai_answer(message: dict[str, Any], finish: str = "tool_calls") -> Response:
    body = {
        "id": "c1",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 90, "completion_tokens": 12},
    }
    return Response(200, {"content-type": "application/json"}, json.dumps(body).encode())


def openai(answer: Response) -> tuple[OpenAICompatProvider, MockTransport]:
    transport = MockTransport(lambda request: answer)
    retry = RetryPolicy(sleep=no_sleep, random=lambda: 0.0)
    return OpenAICompatProvider(
        transport, model="gpt-4o-mini", base_url="https://relay.test/v1", retry=retry
    ), transport


def anthropic(content: list[dict[str, Any]]) -> tuple[AnthropicProvider, MockTransport]:
    body = {
        "id": "m1",
        "type": "message",
        "model": "claude",
        "content": content,
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 80, "output_tokens": 10},
    }
    answer = Response(200, {"content-type": "application/json"}, json.dumps(body).encode())
    transport = MockTransport(lambda request: answer)
    retry = RetryPolicy(sleep=no_sleep, random=lambda: 0.0)
    return AnthropicProvider(transport, model="claude", base_url="https://relay.test", retry=retry), transport


def parts(cloud: HTTPProvider | None, runtime: FakeRuntime, **policy: Any) -> dict[str, Any]:
    return {
        "runtime": runtime,
        "manifest": fake_manifest(),
        "cloud": cloud,
        "policy": Policy(**policy),
        "ledger": Ledger(fake_manifest()),
    }


def sent(transport: MockTransport) -> dict[str, Any]:
    (request,) = transport.requests
    body = request.json_body
    assert isinstance(body, dict)
    return body


# -- the request, checked where it enters ---------------------------------------------------------------


def test_tools_and_tool_rounds_are_parsed_into_the_request() -> None:
    request = ChatRequest.parse(messages=ROUND, tools=[WEATHER], tool_choice="required")
    assert [t.name for t in request.tools] == ["get_weather"] and request.tool_choice == "required"
    user, assistant, tool = request.messages
    assert assistant.tool_calls == (ToolCall("call_1", "get_weather", {"city": "Paris"}),)
    assert (tool.role, tool.tool_call_id, tool.content) == ("tool", "call_1", '{"temperature_c": 18}')
    assert ChatRequest.parse("hi").tools == () and ChatRequest.parse("hi").tool_choice == "auto"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"prompt": "hi", "tool_choice": "required"}, "toolChoice"),  # a choice without tools
        ({"prompt": "hi", "tools": [{"name": "has space"}]}, "tools[0]"),
        ({"prompt": "hi", "tools": [WEATHER], "tool_choice": "other"}, "toolChoice"),
        ({"messages": ROUND}, "messages[1]"),  # a tool round without tools
        ({"messages": ROUND[2:], "tools": [WEATHER]}, "messages[0]"),  # a result answering no call
        ({"messages": ROUND[1:2], "tools": [WEATHER]}, "messages"),  # no user message
    ],
)
def test_wrong_tool_parameters_are_validation_errors_with_hints(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ChatRequest.parse(params.pop("prompt", None), **params)
    assert caught.value.hint
    assert str(caught.value.details.get("field", "")).startswith(field)


# -- the decision: rule 0 -------------------------------------------------------------------------------


def test_rule_0_sends_tools_to_the_cloud_without_a_fallback_and_refuses_the_device() -> None:
    facts = Facts(tools=True, cloud_available=True, complexity=0.0)
    decision = decide(facts, Policy())
    assert (decision.target, decision.reason, decision.rule) == ("cloud", "tools", TOOLS_RULE)
    assert decision.fallback_target is None
    assert decide(Facts(tools=True, cloud_available=True), Policy(tier="free")).target == "cloud"
    for facts, policy in [
        (Facts(tools=True, cloud_available=True, route="local"), Policy()),
        (Facts(tools=True, cloud_available=True), Policy(privacy="local-only")),
        (Facts(tools=True, cloud_available=True, sensitive=(("person", 1),)), Policy(sensitive="local")),
        (Facts(tools=True, cloud_available=False), Policy()),
    ]:
        with pytest.raises(PolicyError) as caught:
            decide(facts, policy)
        assert caught.value.hint
    with pytest.raises(OfflineError):
        decide(Facts(tools=True, cloud_available=True, online=False), Policy())
    assert decide(Facts(cloud_available=True, complexity=0.0), Policy()).target == "local"  # without tools


# -- through the router, to the providers' wire shapes ----------------------------------------------------


async def test_openai_tool_calls_come_back_checked_and_the_device_is_never_asked() -> None:
    call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    cloud, transport = openai(openai_answer({"content": None, "tool_calls": [call]}))
    runtime = FakeRuntime()
    params = {"prompt": "Weather in Oslo?", "tools": [WEATHER], "tool_choice": "get_weather"}
    result = await generate_with(params, **parts(cloud, runtime))
    assert result.tool_calls == (ToolCall("call_9", "get_weather", {"city": "Oslo"}),)
    assert (result.route.target, result.route.reason, result.finish_reason) == (
        "cloud",
        "tools",
        "tool_calls",
    )
    assert result.to_wire()["tool_calls"] == [
        {"id": "call_9", "name": "get_weather", "arguments": {"city": "Oslo"}}
    ]
    body = sent(transport)
    assert body["tools"] == [{"type": "function", "function": {**WEATHER}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert runtime.generate_calls == [] and runtime.count_calls == []


async def test_a_call_the_model_wrote_as_text_is_read_as_its_call() -> None:
    text = '```json\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n```'
    cloud, _ = openai(openai_answer({"content": text}, finish="stop"))
    result = await generate_with({"prompt": "Weather?", "tools": [WEATHER]}, **parts(cloud, FakeRuntime()))
    assert result.text == "" and result.finish_reason == "tool_calls"
    assert result.tool_calls is not None
    assert [(c.name, dict(c.arguments)) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris", "unit": "c"})
    ]


async def test_a_text_answer_with_tools_has_no_calls_and_a_call_without_tools_no_key() -> None:
    cloud, _ = openai(openai_answer({"content": "It is sunny."}, finish="stop"))
    result = await generate_with({"prompt": "Weather?", "tools": [WEATHER]}, **parts(cloud, FakeRuntime()))
    assert (result.text, result.tool_calls) == ("It is sunny.", ())
    assert result.to_wire()["tool_calls"] == []
    plain = await generate_with({"prompt": "Hi", "route": "cloud"}, **parts(cloud, FakeRuntime()))
    assert "tool_calls" not in plain.to_wire()


async def test_arguments_the_schema_refuses_are_a_tool_call_error_not_a_device_answer() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": '{"unit": "k"}'}}
    cloud, _ = openai(openai_answer({"content": None, "tool_calls": [call]}))
    runtime = FakeRuntime()
    with pytest.raises(ToolCallError) as caught:
        await generate_with({"prompt": "Weather?", "tools": [WEATHER]}, **parts(cloud, runtime))
    assert caught.value.details["tool"] == "get_weather" and caught.value.details["errors"]
    assert runtime.generate_calls == []


async def test_a_tool_round_is_sent_in_openais_wire_format() -> None:
    cloud, transport = openai(openai_answer({"content": "18 degrees in Paris."}, finish="stop"))
    params = {"messages": ROUND, "tools": [WEATHER], "tool_choice": "none"}
    result = await generate_with(params, **parts(cloud, FakeRuntime()))
    assert (result.text, result.tool_calls) == ("18 degrees in Paris.", ())
    assert sent(transport)["messages"] == [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": '{"temperature_c": 18}', "tool_call_id": "call_1"},
    ]
    assert sent(transport)["tool_choice"] == "none"


async def test_anthropic_gets_client_tools_and_tool_blocks_and_its_tool_use_is_read() -> None:
    cloud, transport = anthropic(
        [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Lima", "unit": "c"}}]
    )
    params = {"messages": [{"role": "system", "content": "Be brief."}, *ROUND], "tools": [WEATHER]}
    result = await generate_with({**params, "tool_choice": "required"}, **parts(cloud, FakeRuntime()))
    assert result.tool_calls == (ToolCall("toolu_1", "get_weather", {"city": "Lima", "unit": "c"}),)
    body = sent(transport)
    assert body["system"] == "Be brief."
    assert body["tools"] == [
        {"name": "get_weather", "description": WEATHER["description"], "input_schema": WEATHER["parameters"]}
    ]
    assert body["tool_choice"] == {"type": "any"}
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": '{"temperature_c": 18}'}],
    }


async def test_a_relay_without_allow_tools_is_a_policy_error_naming_the_flag() -> None:
    refusal = {
        "error": {
            "type": "relay_field_not_allowed",
            "message": 'this relay does not forward tool calling (the field(s) ["tool_choice", "tools"])',
            "hint": "The relay's operator enables tool calling with --allow-tools",
        }
    }
    answer = Response(400, {"content-type": "application/json"}, json.dumps(refusal).encode())
    cloud, _ = openai(answer)
    runtime = FakeRuntime()
    with pytest.raises(PolicyError) as caught:
        await generate_with({"prompt": "Weather?", "tools": [WEATHER]}, **parts(cloud, runtime))
    assert "--allow-tools" in caught.value.hint and "does not forward tool calling" in caught.value.message
    assert runtime.generate_calls == []


async def test_route_local_or_no_cloud_with_tools_is_refused_with_a_hint() -> None:
    runtime = FakeRuntime()
    with pytest.raises(PolicyError) as caught:
        await generate_with(
            {"prompt": "Weather?", "tools": [WEATHER], "route": "local"}, **parts(None, runtime)
        )
    assert "cannot call tools" in caught.value.message and "route 'auto'" in caught.value.hint
    with pytest.raises(PolicyError):
        await generate_with({"prompt": "Weather?", "tools": [WEATHER]}, **parts(None, runtime))
    assert runtime.generate_calls == []


async def test_stream_refuses_tools_and_a_dry_run_names_rule_0() -> None:
    cloud, _ = openai(openai_answer({"content": "x"}, finish="stop"))
    with pytest.raises(ValidationError) as caught:
        async with aclosing(
            stream_with({"prompt": "Hi", "tools": [WEATHER]}, **parts(cloud, FakeRuntime()))
        ) as items:
            async for _ in items:
                pass
    assert "generate" in caught.value.hint
    runtime = as_runtime(FakeRuntime())
    router = Router(runtime, fake_manifest(), cloud=cloud, policy=Policy(), ledger=Ledger(fake_manifest()))
    dry = await router.route(ChatRequest.parse("Weather?", tools=[WEATHER]))
    assert (dry["target"], dry["reason"]) == ("cloud", "tools")
