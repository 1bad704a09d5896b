"""Personal-data rules fail closed: when the entity (NER) model the policy relies on is absent, fails to
load or fails while running, ``sensitive: "local"`` keeps the request on the device, ``"redact"`` does not
send it (the device answers, or a PolicyError where only the cloud could), and the route names the
missing detector. With the model present, names are found, kept local or sent as placeholders.

Fake runtime and cloud (tests/unit/fakes.py), real planner, rules and redaction."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

import pytest
from tests.unit.fakes import FAKE_NER, FakeCloud, FakeRuntime, as_runtime, fake_manifest

from hybrid_router.errors import ModelLoadError, PolicyError, error_to_wire
from hybrid_router.manifest import Manifest
from hybrid_router.pii import NER_MODEL
from hybrid_router.router import Router

#: a hard prompt (the router sends it to the cloud) whose only personal data is a name: no pattern sees it
NAMED = (
    "Write a reference letter for my colleague Tomasz Wierzbicki, then prove that the sum of the first n "
    "odd numbers is n squared and explain step by step why the induction works."
)
NAME = "Wierzbicki"
MISSING = [f"ner:{NER_MODEL}"]


def make(
    *, ner: bool, runtime: FakeRuntime | None = None, cloud: FakeCloud | None = None
) -> tuple[Router, FakeRuntime, FakeCloud]:
    runtime = runtime or FakeRuntime(people=("Tomasz", "Wierzbicki"))
    cloud = cloud or FakeCloud()
    return Router(as_runtime(runtime), fake_manifest(ner=ner), cloud=cloud), runtime, cloud


def generate(router: Router, prompt: str = NAMED, **kwargs: Any) -> Any:
    return asyncio.run(router.generate(prompt, **kwargs))


def test_without_the_entity_model_the_prompt_would_go_to_the_cloud_under_allow() -> None:
    router, _, cloud = make(ner=False)
    assert generate(router).route.target == "cloud" and NAME in repr(cloud.calls)  # the premise


@pytest.mark.parametrize("action", ["local", "redact"])
def test_entity_model_absent_keeps_the_prompt_on_the_device_and_names_the_missing_detector(
    action: str,
) -> None:
    router, runtime, cloud = make(ner=False)
    result = generate(router, policy={"sensitive": action})
    route = result.route
    assert (route.target, route.reason, route.fallbacks) == ("local", "sensitive", ())
    assert route.sensitive == {"action": action, "found": {}, "missing": MISSING}
    assert NER_MODEL in route.rule and "could not be checked" in route.rule
    assert cloud.calls == [] and len(runtime.generate_calls) == 1

    # streamed too, and the dry run says the same
    async def streamed() -> dict[str, Any]:
        async with aclosing(router.stream(NAMED, policy={"sensitive": action})) as items:
            return [item async for item in items][-1]

    done = asyncio.run(streamed())
    assert done["route"]["target"] == "local" and done["route"]["sensitive"]["missing"] == MISSING
    dry = asyncio.run(router.route(NAMED, policy={"sensitive": action}))
    assert (dry["target"], dry["reason"], dry["sensitive"]["missing"]) == ("local", "sensitive", MISSING)
    assert cloud.calls == []


@pytest.mark.parametrize("action", ["local", "redact"])
def test_entity_model_absent_and_only_the_cloud_could_serve_is_a_policy_error(action: str) -> None:
    router, runtime, cloud = make(ner=False)
    with pytest.raises(PolicyError) as explicit:
        generate(router, route="cloud", policy={"sensitive": action})
    assert explicit.value.details["missing"] == MISSING and explicit.value.hint
    wire = error_to_wire(explicit.value)
    assert wire["name"] == "PolicyError" and wire["details"]["missing"] == MISSING
    runtime.token_count = 10_000  # over the device's window: only the cloud could answer
    with pytest.raises(PolicyError) as too_long:
        generate(router, policy={"sensitive": action})
    assert too_long.value.details["sensitive"] == action and "context window" in too_long.value.message
    assert cloud.calls == [] and runtime.generate_calls == []


def test_no_device_model_and_no_entity_model_is_a_policy_error_not_a_cloud_call() -> None:
    runtime, cloud = FakeRuntime(), FakeCloud()
    without_llm = Manifest(
        tuple(m for m in fake_manifest().models if "text-generation" not in m.tasks),
        cloud_prices=fake_manifest().cloud_prices,
    )
    router = Router(as_runtime(runtime), without_llm, cloud=cloud)
    with pytest.raises(PolicyError) as info:
        asyncio.run(router.generate(NAMED, policy={"sensitive": "redact"}))
    assert info.value.details["missing"] == MISSING and cloud.calls == []


def test_entity_model_present_finds_the_name_keeps_it_local_or_sends_a_placeholder() -> None:
    router, runtime, cloud = make(ner=True)
    kept = generate(router, policy={"sensitive": "local"})
    assert (kept.route.target, kept.route.reason) == ("local", "sensitive")
    assert kept.route.sensitive == {"action": "local", "found": {"PERSON": 1}, "missing": []}
    assert cloud.calls == [] and runtime.ner_calls == [NAMED]
    cloud.reply = "Dear committee, [PERSON_1] is excellent."
    sent = generate(router, policy={"sensitive": "redact"})
    assert sent.route.target == "cloud" and sent.route.sensitive is not None
    assert sent.route.sensitive["missing"] == []
    assert NAME not in repr(cloud.calls) and "[PERSON_1]" in repr(cloud.calls)
    assert sent.text == "Dear committee, Tomasz Wierzbicki is excellent."


@pytest.mark.parametrize("action", ["local", "redact"])
def test_entity_model_failing_to_load_fails_closed(action: str) -> None:
    runtime = FakeRuntime(people=("Tomasz", "Wierzbicki"), ner_fail=ModelLoadError("the NER files are gone"))
    router, _, cloud = make(ner=True, runtime=runtime)
    result = generate(router, policy={"sensitive": action})
    assert (result.route.target, result.route.reason) == ("local", "sensitive")
    assert result.route.sensitive is not None and result.route.sensitive["missing"] == [f"ner:{FAKE_NER}"]
    assert cloud.calls == [] and runtime.ner_calls == [NAMED]
    # patterns still ran: an e-mail address is counted even though names were not checked
    mailed = generate(router, f"{NAMED} Mail it to jane.doe@example.com.", policy={"sensitive": action})
    assert mailed.route.sensitive is not None and mailed.route.sensitive["found"] == {"EMAIL": 1}
    assert cloud.calls == []


def test_a_policy_that_looks_for_nothing_does_not_need_the_entity_model() -> None:
    router, _, cloud = make(ner=False)
    assert generate(router, policy={"sensitive": "allow"}).route.sensitive is None
    local_only = generate(router, policy={"sensitive": "redact", "privacy": "local-only"})
    assert (local_only.route.reason, local_only.route.sensitive) == ("privacy", None)
    assert len(cloud.calls) == 1  # only the 'allow' call went out


def test_a_message_longer_than_the_entity_models_window_is_read_to_its_end() -> None:
    # the pipeline truncates at the model's window: a name after it (or cut by it) must still be found
    filler = "The quarterly report covers revenue, hiring and the roadmap in some detail. " * 12
    # word pieces per pass (the first name is piece 174): a name after a cut, right at one, across one
    for cut in (60, 174, 175):
        runtime = FakeRuntime(people=("Tomasz", "Wierzbicki"), ner_window=cut)
        router, _, cloud = make(ner=True, runtime=runtime)
        prompt = f"{filler}Please forward it to my colleague Tomasz Wierzbicki. {NAMED}"
        result = generate(router, prompt, policy={"sensitive": "redact"})
        assert len(runtime.ner_calls) > 1, cut  # read in several passes
        assert result.route.sensitive is not None and result.route.sensitive["missing"] == [], cut
        # the name twice (here and in NAMED), each found whole however the passes cut it
        assert result.route.sensitive["found"] == {"PERSON": 2}, cut
        assert NAME not in repr(cloud.calls), cut


def test_an_entity_model_that_reads_nothing_counts_as_missing() -> None:
    runtime = FakeRuntime(people=("Tomasz",), ner_window=0)
    router, _, cloud = make(ner=True, runtime=runtime)
    result = generate(router, policy={"sensitive": "redact"})
    assert result.route.target == "local" and result.route.sensitive is not None
    assert result.route.sensitive["missing"] == [f"ner:{FAKE_NER}"] and cloud.calls == []
