"""``Router.generate_object`` / ``stream_object`` with fake sides: the schema reaches each side, every answer
is validated, one repair round, and a device answer that still fails goes to the cloud on route auto."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

import pytest
from tests.unit.fakes import FakeCloud, FakeRuntime, as_runtime, fake_manifest

from hybrid_router.errors import CloudError, InferenceError, ValidationError
from hybrid_router.protocol import CallContext
from hybrid_router.router import Router
from hybrid_router.routing import Policy
from hybrid_router.structured import Schema
from hybrid_router.wire import handlers

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 20}, "sunny": {"type": "boolean"}},
    "required": ["city", "sunny"],
}
GOOD = '{"city":"Oslo","sunny":false}'
BAD = '{"city":"Oslo"}'
PROMPT = "Say hello."


def router(runtime: FakeRuntime, cloud: FakeCloud | None = None) -> Router:
    return Router(as_runtime(runtime), fake_manifest(), cloud=cloud, policy=Policy())


async def test_the_device_answers_under_the_schema_and_the_object_is_parsed() -> None:
    runtime, cloud = FakeRuntime(reply=GOOD), FakeCloud()
    result = await router(runtime, cloud).generate_object(PROMPT, schema=SCHEMA)
    assert result.object == {"city": "Oslo", "sunny": False} and not result.repaired
    assert result.route.target == "local" and cloud.calls == []
    assert runtime.schemas == [Schema.parse(SCHEMA)]  # the decoding constraint
    system = runtime.generate_calls[0].messages[0]
    assert system["role"] == "system" and '"city"' in system["content"]  # and the instruction
    wire = result.to_wire()
    assert wire["object"] == result.object and wire["usage"]["tokens_out"] == result.route.tokens_out


async def test_a_wrong_answer_gets_one_repair_round_that_shows_the_errors() -> None:
    runtime = FakeRuntime(replies=[BAD, GOOD])
    result = await router(runtime, FakeCloud()).generate_object(PROMPT, schema=SCHEMA)
    assert result.repaired and result.object["sunny"] is False and result.route.target == "local"
    repair = runtime.generate_calls[1].messages
    assert repair[-2] == {"role": "assistant", "content": BAD}
    assert "missing the required property 'sunny'" in repair[-1]["content"]
    one = len(GOOD.split()) + len(BAD.split())  # the fake counts words as tokens
    assert result.route.tokens_out == one  # both rounds are counted


async def test_a_device_answer_that_still_fails_goes_to_the_cloud_and_the_route_says_why() -> None:
    runtime, cloud = FakeRuntime(replies=[BAD, BAD]), FakeCloud(reply=GOOD)
    result = await router(runtime, cloud).generate_object(PROMPT, schema=SCHEMA, route="auto")
    assert result.route.target == "cloud" and result.object["city"] == "Oslo"
    (fallback,) = result.route.fallbacks
    assert fallback.target == "local" and fallback.error_name == "InferenceError"
    assert "did not match the schema after a repair round" in fallback.message
    assert cloud.response_formats == [Schema.parse(SCHEMA).response_format()]


async def test_on_route_local_a_failing_device_answer_is_an_inference_error_with_the_errors() -> None:
    runtime, cloud = FakeRuntime(replies=[BAD, "not json"]), FakeCloud(reply=GOOD)
    with pytest.raises(InferenceError) as caught:
        await router(runtime, cloud).generate_object(PROMPT, schema=SCHEMA, route="local")
    assert "not valid JSON" in caught.value.details["schema_errors"][0] and cloud.calls == []


async def test_the_cloud_is_sent_the_schema_and_its_answer_is_validated_too() -> None:
    cloud = FakeCloud(replies=[BAD, BAD])
    with pytest.raises(CloudError) as caught:
        await router(FakeRuntime(reply=GOOD), cloud).generate_object(PROMPT, schema=SCHEMA, route="cloud")
    assert len(cloud.response_formats) == 2 and all(
        f["type"] == "json_schema" for f in cloud.response_formats
    )
    assert caught.value.details["schema_errors"]
    fenced = FakeCloud(reply=f"```json\n{GOOD}\n```")
    result = await router(FakeRuntime(), fenced).generate_object(PROMPT, schema=SCHEMA, route="cloud")
    assert result.object["city"] == "Oslo"


async def test_stream_object_gives_partial_objects_then_the_final_one() -> None:
    runtime = FakeRuntime(reply='{"city": "New York", "sunny": true}')
    items = []
    async with aclosing(router(runtime).stream_object(PROMPT, schema=SCHEMA)) as stream:
        async for item in stream:
            items.append(item)
    partials, final = [i["partial"] for i in items[:-1]], items[-1]
    assert partials[:3] == [{}, {"city": "New "}, {"city": "New York"}], partials
    assert final["done"] and final["object"] == {"city": "New York", "sunny": True}
    assert final["route"]["target"] == "local"


async def test_the_wire_refuses_a_schema_outside_the_subset_and_counts_the_request() -> None:
    r = router(FakeRuntime(reply=GOOD))
    call = handlers(r)["generate_object"]
    bad = {"prompt": PROMPT, "schema": {"type": "string", "pattern": "^a"}}
    with pytest.raises(ValidationError) as caught:
        await call(bad, context())
    assert "pattern" in caught.value.message and r.stats()["errors"] == 1
    good = await call({"prompt": PROMPT, "schema": SCHEMA}, context())
    assert json.loads(good["text"]) == good["object"]


def context() -> CallContext:
    sent: list[Any] = []
    return CallContext(1, "generate_object", sent.append)
