"""The router's facts at work: the dry run, a call's own policy, personal data kept local or redacted,
and the offline rules, end to end through the Router (fake runtime and cloud, real planner and rules)."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any, cast

import pytest
from tests.unit.fakes import FakeCloud, FakeRuntime, as_runtime, fake_manifest, fake_token_count

from hybrid_router import wire
from hybrid_router.errors import OfflineError, PolicyError, ValidationError
from hybrid_router.protocol import CallContext
from hybrid_router.router import Router
from hybrid_router.routing import Policy

COMPLEX = (
    "Prove that the sum of the first n odd numbers is n squared, then derive a closed form for the sum of "
    "the first n cubes and explain step by step why the induction works."
)
SIMPLE = "Say hello."
EMAIL = "jane.doe@example.com"
PHONE = "+1 415 555 0123"


def make(
    cloud: FakeCloud | None = None, policy: Policy | None = None, *, ner: bool = True
) -> tuple[Router, FakeRuntime, FakeCloud]:
    """A router on the fakes; ``ner``: with an entity model (without one, personal-data rules keep every
    prompt on the device: see test_personal_data.py)."""
    runtime, cloud = FakeRuntime(), cloud or FakeCloud()
    clock = [0.0]

    def tick() -> float:
        clock[0] += 0.01
        return clock[0]

    router = Router(as_runtime(runtime), fake_manifest(ner=ner), cloud=cloud, policy=policy, clock=tick)
    return router, runtime, cloud


def test_a_dry_run_decides_on_the_calls_facts_without_generating_or_sending_anything() -> None:
    router, runtime, cloud = make()
    decision = asyncio.run(router.route(COMPLEX))
    assert decision["dry_run"] is True
    assert decision["target"] == "cloud" and decision["reason"] == "complexity"
    assert decision["fallback_target"] == "local"
    assert 0 <= decision["router"]["score"] <= 1
    assert decision["decision_ms"] >= 0
    # the facts a real call gathers: the prompt's tokens counted, its vector for the router
    assert len(runtime.count_calls) == 1 and decision["tokens_in"] == fake_token_count(runtime.count_calls[0])
    assert [c.model for c in runtime.calls] == ["fake-embed"]
    assert runtime.generate_calls == [] and cloud.calls == []
    assert router.stats()["requests"] == 0  # a dry run is not a request
    assert router.ledger.reserved_now() == 0  # nor a reservation against the budget
    simple = asyncio.run(router.route(SIMPLE))
    assert (simple["target"], simple["reason"]) == ("local", "default")


def test_a_dry_run_takes_the_calls_policy_and_a_device_task() -> None:
    router, _, _ = make()
    decision = asyncio.run(router.route(COMPLEX, policy={"privacy": "local-only"}))
    assert (decision["target"], decision["reason"]) == ("local", "privacy")
    task = asyncio.run(router.route(task="feature-extraction"))
    assert (task["target"], task["reason"], task["model"]) == ("local", "task-default", "fake-embed")
    with pytest.raises(PolicyError):
        asyncio.run(router.route(task="feature-extraction", route="cloud"))


def test_the_real_call_embeds_the_prompt_and_agrees_with_the_dry_run_on_clear_prompts() -> None:
    router, runtime, _ = make()
    result = asyncio.run(router.generate(COMPLEX))
    assert len(runtime.calls) == 1 and runtime.calls[0].model == "fake-embed"  # the prompt's vector
    # the fake embedding model is not the one the router was trained on: its lexical head decides (the
    # browser tests check the embedding head with the real MiniLM)
    assert result.route.router is not None and result.route.router["head"] == "lexical"
    assert result.route.target == asyncio.run(router.route(COMPLEX))["target"] == "cloud"


def test_a_calls_policy_holds_for_that_call_only() -> None:
    router, runtime, cloud = make()
    kept = asyncio.run(router.generate(COMPLEX, policy={"privacy": "local-only"}))
    assert kept.route.target == "local" and kept.route.reason == "privacy" and cloud.calls == []
    assert router.policy == Policy()
    sent = asyncio.run(router.generate(COMPLEX))
    assert sent.route.target == "cloud"
    with pytest.raises(ValidationError) as info:
        asyncio.run(router.generate(SIMPLE, policy={"sensitiv": "local"}))
    assert info.value.details["field"] == "sensitiv"
    with pytest.raises(ValidationError):
        asyncio.run(router.embed(["x"], policy=cast(Any, "local-only")))


def test_personal_data_under_sensitive_local_stays_on_the_device_and_only_kinds_are_recorded() -> None:
    router, _, cloud = make(policy=Policy(sensitive="local"))
    prompt = f"{COMPLEX} Mail the proof to {EMAIL} or call {PHONE}."
    result = asyncio.run(router.generate(prompt))
    assert (result.route.target, result.route.reason) == ("local", "sensitive")
    assert cloud.calls == []
    assert result.route.sensitive is not None
    recorded = repr(result.route.to_wire())
    assert EMAIL not in recorded and "555 0123" not in recorded
    assert result.route.sensitive == {"action": "local", "found": {"EMAIL": 1, "PHONE": 1}, "missing": []}
    # without personal data the same policy lets a complex prompt go to the cloud
    assert asyncio.run(router.generate(COMPLEX)).route.target == "cloud"


def test_redact_sends_placeholders_and_restores_the_answer_whole_and_streamed() -> None:
    cloud = FakeCloud(reply="I will write to [EMAIL_1] and call [PHONE_1] today.")
    router, _, _ = make(cloud=cloud, policy=Policy(sensitive="redact"))
    prompt = f"{COMPLEX} Mail the proof to {EMAIL} or call {PHONE}."
    result = asyncio.run(router.generate(prompt))
    assert result.route.target == "cloud"
    sent = repr(cloud.calls)
    assert EMAIL not in sent and "555 0123" not in sent and "[EMAIL_1]" in sent and "[PHONE_1]" in sent
    assert result.text == f"I will write to {EMAIL} and call {PHONE} today."

    async def streamed() -> str:
        text = ""
        async with aclosing(router.stream(prompt)) as items:
            async for item in items:
                text += item.get("delta", "")
        return text

    assert asyncio.run(streamed()) == f"I will write to {EMAIL} and call {PHONE} today."
    assert EMAIL not in repr(cloud.calls)


def test_offline_a_complex_prompt_stays_local_and_an_explicit_cloud_call_fails_at_once() -> None:
    router, _, cloud = make()
    router.set_online(False)
    result = asyncio.run(router.generate(COMPLEX))
    assert (result.route.target, result.route.reason) == ("local", "offline") and cloud.calls == []
    with pytest.raises(OfflineError) as info:
        asyncio.run(router.generate(COMPLEX, route="cloud"))
    assert info.value.hint and cloud.calls == []
    router.set_online(True)
    assert asyncio.run(router.generate(COMPLEX)).route.target == "cloud"


def test_a_cloud_call_that_finds_the_network_gone_keeps_the_next_ones_local() -> None:
    cloud = FakeCloud(fail=OfflineError("the network is gone"))
    router, _, _ = make(cloud=cloud)
    first = asyncio.run(router.generate(COMPLEX))  # the cloud fails: the device answers it
    assert first.route.target == "local" and first.route.fallbacks
    calls = len(cloud.calls)
    second = asyncio.run(router.generate(COMPLEX))
    assert (second.route.target, second.route.reason) == ("local", "offline")
    assert len(cloud.calls) == calls  # not tried again while it is unreachable


def _ctx() -> CallContext:
    return CallContext(1, "x", lambda message: None)


def _call(table: dict[str, Any], method: str, params: dict[str, Any]) -> Any:
    async def run() -> Any:
        return await table[method](params, _ctx())

    return asyncio.run(run())


def test_the_wire_takes_policy_on_every_call_and_serves_route() -> None:
    router, _, cloud = make()
    table: dict[str, Any] = dict(wire.handlers(router))
    decision = _call(table, "route", {"prompt": COMPLEX, "policy": {"route": "local"}})
    assert (decision["target"], decision["reason"]) == ("local", "explicit")
    out = _call(table, "generate", {"prompt": COMPLEX, "policy": {"privacy": "local-only"}})
    assert out["route"]["reason"] == "privacy" and cloud.calls == []
    embedded = _call(table, "embed", {"texts": ["a"], "policy": {"privacy": "local-only"}})
    assert embedded["route"]["target"] == "local"
    task = _call(table, "route", {"task": "text-ranking"})
    assert task["target"] == "local"
    with pytest.raises(ValidationError):
        _call(table, "route", {"prompt": COMPLEX, "temperature": 1})
    with pytest.raises(ValidationError):
        _call(table, "embed", {"texts": ["a"], "policy": {"nope": 1}})
