"""Structured output for real: the device (SmolLM2 in Transformers.js, decoding constrained to the schema
by our logits processor) and the cloud (llama-server behind the relay, sent ``response_format``
json_schema), through the page's client, with schemas and tasks written for these tests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.faults import FaultProxy
from tests.harness import RouterPage, open_router_page

pytestmark = pytest.mark.browser

CLOUD_OPTIONS = {"cloud": {"timeoutMs": 120000}}

#: a form a 135M model would not fill by itself: property order, enum values, bounded strings and arrays
CONTACT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "first_name": {"type": "string", "minLength": 1, "maxLength": 12},
        "age": {"type": "integer"},
        "mood": {"enum": ["calm", "busy", "grumpy"]},
        "languages": {
            "type": "array",
            "items": {"type": "string", "maxLength": 10},
            "minItems": 1,
            "maxItems": 3,
        },
        "subscribed": {"type": "boolean"},
    },
    "required": ["first_name", "age", "mood", "languages", "subscribed"],
    "additionalProperties": False,
}
TASK = "Maria is 34, speaks Spanish and English, and signed up for the newsletter. She is calm. Fill in the form."

#: a value the device cannot write: no whole token of SmolLM2's vocabulary has these characters (only
#: byte pieces do), so the device step fails before decoding and the cloud has to answer
FRAKTUR: dict[str, Any] = {
    "type": "object",
    "properties": {"word": {"enum": ["𝔄𝔟", "𝔅𝔠"]}},
    "required": ["word"],
}


@pytest.fixture(scope="module")
def page(browser: Any, cloud_server: Any) -> Any:
    rp = open_router_page(browser, cloud_server, options=CLOUD_OPTIONS)
    yield rp
    rp.page.context.close()


def valid_contact(value: Any) -> None:
    assert isinstance(value, dict) and list(value) == list(CONTACT["properties"]), value
    assert isinstance(value["first_name"], str) and 1 <= len(value["first_name"]) <= 12
    assert isinstance(value["age"], int) and not isinstance(value["age"], bool)
    assert value["mood"] in ("calm", "busy", "grumpy")
    assert 1 <= len(value["languages"]) <= 3 and all(
        isinstance(x, str) and len(x) <= 10 for x in value["languages"]
    )
    assert isinstance(value["subscribed"], bool)


def test_the_device_answer_is_decoded_under_the_schema(page: RouterPage) -> None:
    result = page.call(
        "return await router.generateObject(arg);",
        {"prompt": TASK, "schema": CONTACT, "route": "local", "temperature": 0, "maxTokens": 96},
    )
    assert result["route"]["target"] == "local" and result["route"]["fallbacks"] == []
    valid_contact(result["object"])
    assert not result["repaired"]  # the first answer was valid: the constraint made it so
    # the automaton's own form: compact JSON, the properties in the schema's order (a model left to itself
    # writes spaces and newlines)
    assert result["text"] == json.dumps(result["object"], separators=(",", ":"), ensure_ascii=False)
    assert result["usage"]["tokens_out"] > 5


def test_the_device_streams_partial_objects_then_the_final_one(page: RouterPage) -> None:
    items = page.call(
        """const out = [];
        for await (const item of router.streamObject(arg)) out.push(item);
        return out;""",
        {"prompt": TASK, "schema": CONTACT, "route": "local", "temperature": 0, "maxTokens": 96},
    )
    partials, final = [i["partial"] for i in items[:-1]], items[-1]
    assert final["done"] and final["route"]["target"] == "local"
    valid_contact(final["object"])
    assert len(partials) >= 3 and partials[0] == {}  # the object opened before its first property
    assert any("first_name" in p and "age" not in p for p in partials)  # values grow into the object
    assert partials[-1] == final["object"]


def test_the_cloud_gets_the_schema_through_the_relay_and_its_answer_validates(
    page: RouterPage, proxy: FaultProxy
) -> None:
    result = page.call(
        "return await router.generateObject(arg);",
        {"prompt": TASK, "schema": CONTACT, "route": "cloud", "temperature": 0, "maxTokens": 200},
    )
    assert result["route"]["target"] == "cloud"
    valid_contact(result["object"])
    sent = json.loads(proxy.bodies[0])
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": CONTACT},
    }
    assert '"first_name"' in sent["messages"][0]["content"]  # and the instruction, for the content


def test_a_device_answer_that_cannot_validate_goes_to_the_cloud_on_auto(
    page: RouterPage, proxy: FaultProxy
) -> None:
    result = page.call(
        "return await router.generateObject(arg);",
        {"prompt": "Pick one word.", "schema": FRAKTUR, "route": "auto", "temperature": 0, "maxTokens": 40},
    )
    route = result["route"]
    assert route["target"] == "cloud" and result["object"]["word"] in ("𝔄𝔟", "𝔅𝔠")
    (fallback,) = route["fallbacks"]
    assert fallback["target"] == "local" and fallback["error_name"] == "InferenceError"
    assert "SmolLM2-135M-Instruct cannot write" in fallback["message"]  # said at once: nothing decoded
    assert proxy.requests() >= 1


def test_a_schema_outside_the_subset_is_refused_with_a_hint(page: RouterPage) -> None:
    error = page.error_of(
        "await router.generateObject(arg)",
        {"prompt": "x", "schema": {"type": "string", "pattern": "^[a-z]+$"}},
    )
    assert error["name"] == "ValidationError" and "pattern" in error["message"]
    assert "docs/api.md" in error["hint"]
