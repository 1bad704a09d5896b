"""The device's chat model in real Chromium, on the models the server has built.

Simulated capabilities (``create({ capabilities })``, the page's ``?deviceMemoryGb=``) stand in for a phone:
the router's ``info().chat``, the route of a real SmolLM2 answer and the page name the chosen model, its
dtype and why. A call (``generate``, ``stream``) and the policy name a model; an unknown one, or one that
does not fit the device, is a ``ValidationError`` with a hint. (The choice itself, phone and desktop, every
reason: tests/unit/test_chat_model.py.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import Server, open_router_page, served_chat_models
from tests.site_harness import wait_ready

pytestmark = pytest.mark.browser

SMOL = "SmolLM2-135M-Instruct"
PROMPT = "What is the capital of France?"
#: the device's own choice: no chat model named by the test harness
DEVICE_CHOICE = {"policy": {"chatModel": None}}


def test_a_phone_class_device_gets_a_chat_model_under_300_mb_and_the_route_says_why(
    browser: Any, server: Server
) -> None:
    rp = open_router_page(browser, server, options={**DEVICE_CHOICE, "capabilities": {"device_memory_gb": 2}})
    try:
        caps = rp.call("return router.capabilities();")
        assert caps["device_memory_gb"] == 2 and caps["simulated"] == ["device_memory_gb"]
        chat = rp.call("return (await router.call('info', {})).chat;")
        assert (chat["model"], chat["dtype"], chat["device_class"]) == (SMOL, "q4", "phone")
        assert "2 GB of device memory (phone-class" in chat["why"], chat
        route = rp.call(
            "return (await router.generate({ prompt: arg, route: 'local', maxTokens: 8 })).route;", PROMPT
        )
        assert (route["target"], route["model"], route["dtype"]) == ("local", SMOL, "q4")
        assert route["chat_model"]["model"] == SMOL and "phone-class" in route["chat_model"]["why"]
        for bigger in [m for m in served_chat_models(server) if m != SMOL]:  # where the server built one
            error = rp.error_of("await router.generate({ prompt: 'Hi', model: arg })", bigger)
            assert error["name"] == "ValidationError" and "does not fit this device" in error["message"]
            assert SMOL in (error["hint"] or "")
    finally:
        rp.page.context.close()


def test_a_call_and_the_policy_name_the_chat_model(browser: Any, server: Server) -> None:
    served = served_chat_models(server)
    rp = open_router_page(browser, server, options={**DEVICE_CHOICE, "capabilities": {"device_memory_gb": 8}})
    try:
        chat = rp.call("return (await router.call('info', {})).chat;")
        assert chat["device_class"] == "desktop" and chat["model"] in served
        assert "desktop-class" in chat["why"] and "largest chat model that fits" in chat["why"]
        items = rp.call(
            """const out = [];
            for await (const item of router.stream({ prompt: arg, route: 'local', maxTokens: 4, model: 'SmolLM2-135M-Instruct' }))
              out.push(item);
            return out;""",
            PROMPT,
        )
        last = items[-1]
        assert last["done"] and last["route"]["model"] == SMOL
        assert last["route"]["chat_model"]["named"] == "call"
        unknown = rp.error_of("await router.generate({ prompt: 'Hi', model: 'no-such-model' })")
        assert unknown["name"] == "ValidationError" and "no-such-model" in unknown["message"]
        assert SMOL in (unknown["hint"] or "") and unknown["details"]["field"] == "model"
        refused = rp.error_of("await router.configure({ chatModel: 'no-such-model' })")
        assert refused["name"] == "ValidationError"
        policy = rp.call("return router.configure({ chatModel: arg });", SMOL)
        assert policy["policy"]["chat_model"] == SMOL
        route = rp.call("return (await router.route({ prompt: arg, route: 'local' }));", PROMPT)
        assert route["model"] == SMOL and route["chat_model"]["named"] == "policy"
    finally:
        rp.page.context.close()


def test_the_page_names_the_chat_model_the_device_got_and_why(browser: Any, server: Server) -> None:
    context = browser.new_context(service_workers="block")
    try:
        page = context.new_page()
        page.goto(server.url + "?deviceMemoryGb=2")
        wait_ready(page)
        page.wait_for_selector("#chat-model")
        line = page.text_content("#chat-model") or ""
        assert f"On-device chat model: {SMOL} (q4). Why: 2 GB of device memory (phone-class" in line, line
        page.wait_for_selector("#chat-send:not([disabled])")  # the chat is set up
        page.fill("#max-tokens", "8")
        page.fill("#chat-input", PROMPT)
        page.click("#chat-send")
        page.wait_for_selector("#chat-log .msg.assistant .why:is(.error, :has(.badge))", timeout=300_000)
        why = page.text_content("#chat-log .msg.assistant .why") or ""
        assert why.startswith(f"local {SMOL} (q4)"), why
        info = json.loads(
            page.evaluate("async () => JSON.stringify((await window.router.call('info', {})).chat)")
        )
        assert info["model"] == SMOL and info["why"] in line
    finally:
        context.close()
