"""Tool calling's pieces (hybrid_router.tools): tools and toolChoice checked where they enter, a model's
calls checked against each tool's schema (a typed ToolCallError otherwise), both providers' wire shapes."""

from __future__ import annotations

from typing import Any

import pytest

from hybrid_router.errors import CloudError, PolicyError, ToolCallError, ValidationError
from hybrid_router.tools import (
    ToolCall,
    anthropic_messages,
    anthropic_tool_choice,
    anthropic_tools,
    calls_from_anthropic,
    calls_from_openai,
    calls_from_text,
    check_call,
    openai_messages,
    openai_tool_choice,
    openai_tools,
    parse_tool_choice,
    parse_tool_messages,
    parse_tools,
    relay_refusal,
)

PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string", "minLength": 1}, "unit": {"enum": ["c", "f"]}},
    "required": ["city"],
}
WEATHER = {"name": "get_weather", "description": "The weather in a city", "parameters": PARAMS}
TOOLS = parse_tools([WEATHER, {"name": "now"}])


def test_tools_are_parsed_with_their_schema_and_a_default_empty_object() -> None:
    weather, now = TOOLS
    assert (weather.name, weather.description, dict(weather.parameters.source)) == (
        "get_weather",
        WEATHER["description"],
        PARAMS,
    )
    assert now.parameters.source == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    "tools",
    [
        [],
        "get_weather",
        [{"name": "has space"}],
        [{"name": ""}],
        [{"name": "x" * 65}],
        [{"name": "f", "code": "eval()"}],
        [{"name": "f", "description": 3}],
        [{"name": "f"}, {"name": "f"}],
        [{"name": "f", "parameters": {"type": "string"}}],
        [{"name": "f", "parameters": {"type": "object", "patternProperties": {}}}],
        [{"name": "f"}] * 65,
    ],
)
def test_wrong_tools_are_refused_with_a_validation_error(tools: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_tools(tools)
    assert caught.value.hint


def test_tool_choice() -> None:
    assert parse_tool_choice(None, TOOLS) == "auto"
    for choice in ("auto", "none", "required", "get_weather"):
        assert parse_tool_choice(choice, TOOLS) == choice
    for wrong in ("other", {"type": "function"}, 3):
        with pytest.raises(ValidationError):
            parse_tool_choice(wrong, TOOLS)


def test_a_valid_call_is_parsed_from_a_json_string_or_an_object() -> None:
    call = check_call(TOOLS, "call_1", "get_weather", '{"city": "Paris", "unit": "c"}')
    assert call == ToolCall("call_1", "get_weather", {"city": "Paris", "unit": "c"})
    assert call.to_wire() == {
        "id": "call_1",
        "name": "get_weather",
        "arguments": {"city": "Paris", "unit": "c"},
    }
    assert check_call(TOOLS, "t", "now", "").arguments == {}
    assert check_call(TOOLS, "t", "get_weather", {"city": "Oslo"}).arguments == {"city": "Oslo"}


@pytest.mark.parametrize(
    "name, arguments, found",
    [
        ("get_time", "{}", "not one of the call's tools"),
        ("get_weather", '{"city": ', "not valid JSON"),
        ("get_weather", "{}", "city"),
        ("get_weather", '{"city": "Paris", "unit": "kelvin"}', "unit"),
        ("get_weather", '{"city": 3}', "city"),
        ("get_weather", "[1]", "do not match"),
    ],
)
def test_a_wrong_call_is_a_typed_tool_call_error(name: str, arguments: str, found: str) -> None:
    with pytest.raises(ToolCallError) as caught:
        check_call(TOOLS, "c", name, arguments)
    assert isinstance(caught.value, CloudError)
    assert caught.value.name == "ToolCallError"
    assert found in caught.value.message
    assert caught.value.to_wire()["details"]["tool"] == name


def test_openai_wire_shapes_both_ways() -> None:
    assert openai_tools(TOOLS[:1]) == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": WEATHER["description"], "parameters": PARAMS},
        }
    ]
    assert openai_tool_choice("auto") == "auto"
    assert openai_tool_choice("get_weather") == {"type": "function", "function": {"name": "get_weather"}}
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
            }
        ],
    }
    assert calls_from_openai(TOOLS, message) == (ToolCall("call_9", "get_weather", {"city": "Rome"}),)
    assert calls_from_openai(TOOLS, {"role": "assistant", "content": "Hi"}) == ()
    bad = {"tool_calls": [{"id": "c", "function": {"name": "get_weather", "arguments": '{"unit": "c"}'}}]}
    with pytest.raises(ToolCallError):
        calls_from_openai(TOOLS, bad)


def test_anthropic_wire_shapes_both_ways() -> None:
    assert anthropic_tools(TOOLS[:1]) == [
        {"name": "get_weather", "description": WEATHER["description"], "input_schema": PARAMS}
    ]
    assert anthropic_tool_choice("required") == {"type": "any"}
    assert anthropic_tool_choice("get_weather") == {"type": "tool", "name": "get_weather"}
    content = [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Lima"}},
    ]
    assert calls_from_anthropic(TOOLS, content) == (ToolCall("toolu_1", "get_weather", {"city": "Lima"}),)
    with pytest.raises(ToolCallError):
        calls_from_anthropic(TOOLS, [{"type": "tool_use", "id": "t", "name": "get_weather", "input": {}}])


CALL_TEXT = '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}'


@pytest.mark.parametrize(
    "text",
    [
        CALL_TEXT,
        f"```json\n{CALL_TEXT}\n```\n\n",
        f"<tool_call>\n{CALL_TEXT}\n</tool_call>",
        f"[{CALL_TEXT}]",
    ],
)
def test_a_call_written_as_text_is_read_and_checked(text: str) -> None:
    # what Qwen2.5-Coder-0.5B behind llama-server answers: the call as JSON text, not in tool_calls
    (call,) = calls_from_text(TOOLS, text, "auto")
    assert (call.name, dict(call.arguments)) == ("get_weather", {"city": "Paris", "unit": "c"})
    assert call.id.startswith("call_")


def test_text_that_is_not_only_a_call_stays_text_unless_a_call_is_required() -> None:
    rambling = CALL_TEXT + ". The weather in Paris is 22 C."
    assert calls_from_text(TOOLS, rambling, "auto") == ()
    assert calls_from_text(TOOLS, rambling, "required")[0].arguments == {"city": "Paris", "unit": "c"}
    assert calls_from_text(TOOLS, rambling, "get_weather")[0].name == "get_weather"
    assert calls_from_text(TOOLS, CALL_TEXT, "none") == ()
    assert calls_from_text(TOOLS, "Paris is sunny.", "required") == ()
    assert calls_from_text(TOOLS, '{"name": "other", "arguments": {}}', "auto") == ()
    assert calls_from_text(TOOLS, '{"answer": 4}', "auto") == ()
    with pytest.raises(ToolCallError):  # the right tool, arguments its schema refuses
        calls_from_text(TOOLS, '{"name": "get_weather", "arguments": {"unit": "k"}}', "auto")


def test_a_relay_that_refuses_tools_becomes_a_policy_error_naming_the_flag() -> None:
    refused = CloudError(
        'cloud answered HTTP 400: this relay does not forward tool calling (the field(s) ["tools"])',
        status=400,
        error_type="relay_field_not_allowed",
    )
    error = relay_refusal(refused)
    assert isinstance(error, PolicyError)
    assert "--allow-tools" in error.hint and "HYBRID_ROUTER_RELAY_ALLOW_TOOLS=1" in error.hint
    other = CloudError('the relay does not forward the field(s) ["n"]', status=400, error_type="x")
    assert relay_refusal(other) is None
    assert relay_refusal(CloudError("boom", status=500)) is None


ROUND: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "toolCalls": [{"id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}],
    },
    {"role": "tool", "toolCallId": "c1", "content": '{"celsius": 21}'},
]


def test_tool_messages_in_openai_shape() -> None:
    assert openai_messages(parse_tool_messages(ROUND, TOOLS)) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": '{"celsius": 21}', "tool_call_id": "c1"},
    ]


def test_tool_messages_in_anthropic_shape() -> None:
    system, messages = anthropic_messages(parse_tool_messages(ROUND, TOOLS))
    assert system == "Be brief."
    assert messages == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Paris"}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "c1", "content": '{"celsius": 21}'}],
        },
    ]


@pytest.mark.parametrize(
    "change",
    [
        {3: {"role": "tool", "content": "21"}},  # no toolCallId
        {3: {"role": "tool", "toolCallId": "c9", "content": "21"}},  # answers no call
        {3: {"role": "user", "toolCallId": "c1", "content": "21"}},  # only a tool message has one
        {2: {"role": "user", "content": "", "toolCalls": []}},  # only an assistant calls
        {
            2: {
                "role": "assistant",
                "content": "",
                "toolCalls": [{"id": "c1", "name": "get_weather", "arguments": {}}],
            }
        },
        {1: {"role": "robot", "content": "hi"}},
    ],
)
def test_wrong_tool_messages_are_validation_errors(change: dict[int, dict[str, Any]]) -> None:
    messages = [change.get(i, m) for i, m in enumerate(ROUND)]
    with pytest.raises(ValidationError):
        parse_tool_messages(messages, TOOLS)
