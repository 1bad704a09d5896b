"""Tool calling for real (#18 item 2): the page's client -> the worker (Python in Pyodide) -> serve.py's
relay started with HYBRID_ROUTER_RELAY_ALLOW_TOOLS=1 -> the fault proxy (which records what was sent) ->
llama-server (Qwen2.5-Coder-0.5B-Instruct, its own chat template with --jinja). The same relay without the
flag refuses tools, and the device side refuses them: its chat model (SmolLM2) cannot call tools, so a call
with tools goes to the cloud (route reason "tools") and route "local" is a PolicyError with a hint.

Qwen2.5-Coder-0.5B writes its call as JSON text instead of in its template's ``<tool_call>`` tags (seen:
``{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}``): the router reads such a call
(hybrid_router.tools.calls_from_text) and checks it like any other."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CLOUD_MODEL, RELAY_KEY
from tests.faults import FaultProxy
from tests.harness import RouterPage, Server, open_router_page, start_server, stop_server

pytestmark = pytest.mark.browser

CLOUD_OPTIONS = {"cloud": {"timeoutMs": 120000}}
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "minLength": 1}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
}
QUESTION = "What is the weather in Paris?"


@pytest.fixture(scope="module")
def tools_server(tmp_path_factory: pytest.TempPathFactory, fault_proxy: FaultProxy) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("serve-tools")
    srv = start_server(
        tmp,
        cloud={"base_url": fault_proxy.url, "model": CLOUD_MODEL, "api_key": RELAY_KEY},
        env_extra={"HYBRID_ROUTER_RELAY_ALLOW_TOOLS": "1"},
    )
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def page(browser: Any, tools_server: Server) -> Iterator[RouterPage]:
    rp = open_router_page(browser, tools_server, options=CLOUD_OPTIONS)
    yield rp
    rp.page.context.close()


@pytest.fixture(scope="module")
def first_call(page: RouterPage, fault_proxy: FaultProxy) -> dict[str, Any]:
    """The model's call of get_weather (route auto), and the body the relay forwarded for it."""
    fault_proxy.plan()
    result: dict[str, Any] = page.call(
        "return await router.generate(arg);",
        {"prompt": QUESTION, "tools": [WEATHER], "toolChoice": "required", "temperature": 0, "maxTokens": 60},
    )
    return {"result": result, "sent": json.loads(fault_proxy.bodies[0])}


def test_the_cloud_calls_the_tool_with_arguments_valid_against_its_schema(first_call: dict[str, Any]) -> None:
    result, sent = first_call["result"], first_call["sent"]
    route = result["route"]
    assert (route["target"], route["reason"]) == ("cloud", "tools"), route
    assert "cannot call tools" in route["rule"]
    (call,) = result["tool_calls"]
    assert call["name"] == "get_weather" and call["id"]
    arguments = call["arguments"]
    assert set(arguments) <= {"city", "unit"} and "Paris" in arguments["city"]
    assert arguments.get("unit", "c") in ("c", "f")
    assert result["finish_reason"] == "tool_calls" and result["text"] == ""
    # what went through the relay: OpenAI's function tools, toolChoice as tool_choice
    assert sent["tools"] == [{"type": "function", "function": WEATHER}]
    assert sent["tool_choice"] == "required"


def test_a_tool_result_goes_back_and_the_model_answers_from_it(
    page: RouterPage, first_call: dict[str, Any], proxy: FaultProxy
) -> None:
    (call,) = first_call["result"]["tool_calls"]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "", "toolCalls": [call]},
        {"role": "tool", "toolCallId": call["id"], "content": '{"temperature_c": 18, "sky": "cloudy"}'},
    ]
    result = page.call(
        "return await router.generate(arg);",
        {"messages": messages, "tools": [WEATHER], "toolChoice": "none", "temperature": 0, "maxTokens": 60},
    )
    assert result["route"]["target"] == "cloud" and result["tool_calls"] == []
    assert "18" in result["text"], result["text"]  # the tool's result reached the model
    sent = json.loads(proxy.bodies[0])
    assistant, tool = sent["messages"][1], sent["messages"][2]
    assert assistant["tool_calls"] == [
        {
            "id": call["id"],
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps(call["arguments"])},
        }
    ]
    assert tool == {"role": "tool", "content": messages[2]["content"], "tool_call_id": call["id"]}


def test_a_relay_without_the_flag_refuses_tools_with_a_hint_naming_it(
    browser: Any, cloud_server: Server, proxy: FaultProxy
) -> None:
    # the session's cloud server: the same llama-server behind a relay started without --allow-tools
    rp = open_router_page(browser, cloud_server, options=CLOUD_OPTIONS)
    try:
        error = rp.error_of(
            "await router.generate(arg)", {"prompt": QUESTION, "tools": [WEATHER], "maxTokens": 20}
        )
    finally:
        rp.page.context.close()
    assert error["name"] == "PolicyError" and "does not forward tool calling" in error["message"], error
    assert "--allow-tools" in error["hint"] and "HYBRID_ROUTER_RELAY_ALLOW_TOOLS=1" in error["hint"]
    assert proxy.requests() == 0  # refused at the relay: nothing reached llama-server


def test_the_device_does_not_call_tools(page: RouterPage) -> None:
    error = page.error_of(
        "await router.generate(arg)", {"prompt": QUESTION, "tools": [WEATHER], "route": "local"}
    )
    assert error["name"] == "PolicyError" and "cannot call tools" in error["message"]
    assert "route 'auto'" in error["hint"] and "--allow-tools" in error["hint"]
    dry = page.call("return await router.route(arg);", {"prompt": QUESTION, "tools": [WEATHER]})
    assert (dry["target"], dry["reason"]) == ("cloud", "tools")
    streamed = page.error_of(
        "for await (const _ of router.stream(arg)) {}", {"prompt": QUESTION, "tools": [WEATHER]}
    )
    assert streamed["name"] == "ValidationError" and "generate" in streamed["hint"]


def test_bad_tools_are_a_validation_error_with_a_hint(page: RouterPage) -> None:
    error = page.error_of(
        "await router.generate(arg)", {"prompt": QUESTION, "tools": [{"name": "get weather"}]}
    )
    assert error["name"] == "ValidationError" and error["details"]["field"] == "tools[0]"
    assert "get_weather" in error["hint"]
