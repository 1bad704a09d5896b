"""The relay forwards structured output (OpenAI's ``response_format``) in exactly its documented shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hybrid_router_relay.body import MAX_SCHEMA_CHARS, check_body
from hybrid_router_relay.config import CloudConfig
from hybrid_router_relay.errors import RelayError
from tests.unit.relay_helpers import BODY, MODEL, running_relay

OPENAI = CloudConfig("openai", "http://upstream.example/v1", "k", MODEL)
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
JSON_SCHEMA: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": SCHEMA, "strict": False},
}


def checked(body: dict[str, Any]) -> dict[str, Any]:
    forwarded: dict[str, Any] = json.loads(check_body(json.dumps(body).encode(), OPENAI, 512).data)
    return forwarded


def refusal(body: dict[str, Any]) -> str:
    with pytest.raises(RelayError) as caught:
        check_body(json.dumps(body).encode(), OPENAI, 512)
    return str(caught.value.type)


@pytest.mark.parametrize(
    "response_format",
    [
        JSON_SCHEMA,
        {"type": "json_object"},
        {"type": "text"},
        {"type": "json_schema", "json_schema": {"schema": {}}},
    ],
)
def test_each_documented_shape_is_forwarded_unchanged(response_format: dict[str, Any]) -> None:
    assert checked({**BODY, "response_format": response_format})["response_format"] == response_format


@pytest.mark.parametrize(
    "response_format, kind",
    [
        ({"type": "grammar", "grammar": "root ::= x"}, "relay_field_not_allowed"),
        ("json_schema", "relay_field_not_allowed"),
        ({**JSON_SCHEMA, "extra": 1}, "relay_field_not_allowed"),
        ({"type": "json_object", "json_schema": {"schema": {}}}, "relay_field_not_allowed"),
        (
            {"type": "json_schema", "json_schema": {**JSON_SCHEMA["json_schema"], "tools": []}},
            "relay_field_not_allowed",
        ),
        ({"type": "json_schema"}, "relay_bad_json"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": "{}"}}, "relay_bad_json"),
        ({"type": "json_schema", "json_schema": {"name": 3, "schema": {}}}, "relay_bad_json"),
        ({"type": "json_schema", "json_schema": {"schema": {}, "strict": "yes"}}, "relay_bad_json"),
    ],
)
def test_any_other_shape_is_refused(response_format: object, kind: str) -> None:
    assert refusal({**BODY, "response_format": response_format}) == kind


def test_a_schema_over_the_limit_is_refused() -> None:
    big = {"type": "object", "description": "x" * MAX_SCHEMA_CHARS}
    body = {**BODY, "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": big}}}
    assert refusal(body) == "relay_field_not_allowed"


def test_tools_are_still_refused_next_to_a_response_format() -> None:
    assert refusal({**BODY, "response_format": JSON_SCHEMA, "tools": []}) == "relay_field_not_allowed"


async def test_the_relay_forwards_a_json_schema_call_to_the_upstream() -> None:
    async with running_relay() as relay:
        resp = await relay.post({**BODY, "response_format": JSON_SCHEMA})
        assert resp.status == 200, await resp.text()
        (seen,) = relay.fake.requests
        assert seen.json()["response_format"] == JSON_SCHEMA
        refused = await relay.post({**BODY, "response_format": {"type": "regex", "regex": ".*"}})
        assert refused.status == 400
        assert len(relay.fake.requests) == 1  # the refused one never reached the upstream
