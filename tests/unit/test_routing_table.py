"""The routing's decisions as tables of cases: where every task runs, which failures move a request and
where, which model and which way serves a task, which device, and the route issued for what answered."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.unit.fakes import fake_manifest_dict

from hybrid_router.capabilities import Capabilities
from hybrid_router.errors import (
    CloudError,
    CloudTimeoutError,
    ContextLengthError,
    HybridRouterError,
    InferenceError,
    ModelLoadError,
    OfflineError,
    PolicyError,
    RateLimitError,
    StorageError,
    ValidationError,
)
from hybrid_router.manifest import Manifest
from hybrid_router.route import FallbackStep, Target
from hybrid_router.routing import (
    ASR,
    CLASSIFY,
    EMBED,
    GENERATE,
    NER,
    RERANK,
    SEARCH,
    ZERO_SHOT,
    Decision,
    Devices,
    Facts,
    Policy,
    classify_plan,
    decide,
    decide_after_local_failure,
    generation_plan,
    issue_route,
    local_plan,
    may_fall_back,
    rerank_plan,
    single,
)

DEVICE_TASKS = [EMBED, ASR, CLASSIFY, ZERO_SHOT, NER, RERANK, SEARCH]


@pytest.mark.parametrize("task", DEVICE_TASKS)
@pytest.mark.parametrize(
    ("policy", "route", "expected"),
    [
        (Policy(), None, ("local", "task-default")),
        (Policy(privacy="local-only"), None, ("local", "task-default")),
        (Policy(route="local"), None, ("local", "task-default")),  # the default route is about generations
        (Policy(route="cloud"), None, ("local", "task-default")),
        (Policy(tier="enterprise"), None, ("local", "task-default")),
        (Policy(daily_budget_usd=0.0), None, ("local", "task-default")),
        (Policy(), "local", ("local", "explicit")),
        (Policy(), "auto", ("local", "task-default")),
        (Policy(), "cloud", PolicyError),
        (Policy(privacy="local-only"), "cloud", PolicyError),
        (Policy(tier="free"), "cloud", PolicyError),
    ],
)
def test_every_device_task_runs_on_the_device(
    task: str, policy: Policy, route: str | None, expected: type[PolicyError] | tuple[str, str]
) -> None:
    facts = Facts(task=task, route=route, cloud_available=True)
    if isinstance(expected, type):
        with pytest.raises(expected) as info:
            decide(facts, policy)
        assert info.value.hint
        return
    decision = decide(facts, policy)
    assert (decision.target, decision.reason) == expected and decision.fallback_target is None


GEN = Facts(
    task=GENERATE, tokens_in=10, context_length=100, max_tokens=10, complexity=0.1, cloud_available=True
)


@pytest.mark.parametrize(
    ("facts", "policy", "expected"),
    [
        (GEN, Policy(), ("local", "default", "cloud")),
        (dataclasses.replace(GEN, complexity=0.9), Policy(), ("cloud", "complexity", "local")),
        (dataclasses.replace(GEN, complexity=0.9), Policy(tier="free"), ("local", "tier", "cloud")),
        (GEN, Policy(tier="enterprise"), ("cloud", "tier", "local")),
        (dataclasses.replace(GEN, tokens_in=95), Policy(), ("cloud", "context-length", None)),
        (dataclasses.replace(GEN, local_available=False), Policy(), ("cloud", "local-unavailable", None)),
        (GEN, Policy(privacy="local-only"), ("local", "privacy", None)),
        (dataclasses.replace(GEN, route="local"), Policy(), ("local", "explicit", None)),
        (dataclasses.replace(GEN, route="cloud"), Policy(), ("cloud", "explicit", None)),
        (
            dataclasses.replace(GEN, spent_today_usd=1.0),
            Policy(daily_budget_usd=1.0),
            ("local", "budget", None),
        ),
        (
            dataclasses.replace(GEN, complexity=0.9, cloud_available=False),
            Policy(),
            ("local", "cloud-unavailable", None),
        ),
        (GEN, Policy(fallback=False), ("local", "default", None)),
        # personal data under sensitive 'local' stays on the device, even a complex prompt
        (
            dataclasses.replace(GEN, complexity=0.9, sensitive=(("email", 1),)),
            Policy(sensitive="local"),
            ("local", "sensitive", None),
        ),
        # ... and is no reason under 'allow' or 'redact' (redaction happens on the way out)
        (
            dataclasses.replace(GEN, complexity=0.9, sensitive=(("email", 1),)),
            Policy(sensitive="redact"),
            ("cloud", "complexity", "local"),
        ),
        (
            dataclasses.replace(GEN, sensitive=(("phone", 2),)),
            Policy(sensitive="local"),
            ("local", "sensitive", None),
        ),
        # offline (the browser says so, or the last cloud call found no network): stays local, no fallback
        (dataclasses.replace(GEN, complexity=0.9, online=False), Policy(), ("local", "offline", None)),
        (
            dataclasses.replace(GEN, complexity=0.9, cloud_reachable=False),
            Policy(),
            ("local", "offline", None),
        ),
        (dataclasses.replace(GEN, online=False), Policy(), ("local", "default", None)),
        # a threshold from the facts (the calibrated one) unless the policy sets its own
        (
            dataclasses.replace(GEN, complexity=0.5, complexity_threshold=0.4),
            Policy(),
            ("cloud", "complexity", "local"),
        ),
        (
            dataclasses.replace(GEN, complexity=0.5, complexity_threshold=0.4),
            Policy(complexity_threshold=0.6),
            ("local", "default", "cloud"),
        ),
    ],
)
def test_a_generation_is_decided_by_the_first_rule_that_applies(
    facts: Facts, policy: Policy, expected: tuple[str, str, str | None]
) -> None:
    decision = decide(facts, policy)
    assert (decision.target, decision.reason, decision.fallback_target) == expected


def test_why_there_is_no_cloud_is_said_in_the_rule() -> None:
    facts = dataclasses.replace(
        GEN,
        complexity=0.9,
        cloud_available=False,
        cloud_note="the cloud tier is still starting (compiling llama-server)",
    )
    decision = decide(facts, Policy())
    assert decision.reason == "cloud-unavailable" and "still starting" in decision.rule


@pytest.mark.parametrize(
    ("failure", "policy", "expected"),
    [
        (
            ModelLoadError("no model file"),
            Policy(),
            ("cloud", "the on-device model failed before generating"),
        ),
        (ModelLoadError("no model file"), Policy(fallback=False), ModelLoadError),
        (ModelLoadError("no model file"), Policy(privacy="local-only"), ModelLoadError),
        (ValidationError("bad"), Policy(), ValidationError),
    ],
)
def test_the_local_failure_rule(failure: HybridRouterError, policy: Policy, expected: Any) -> None:
    facts = dataclasses.replace(GEN, tokens_in=None)
    if isinstance(expected, type):
        with pytest.raises(expected):
            decide_after_local_failure(facts, policy, failure)
        return
    decision = decide_after_local_failure(facts, policy, failure)
    assert (decision.target, decision.rule) == expected and decision.fallback_target is None


@pytest.mark.parametrize(
    ("error", "failed", "shown", "may"),
    [
        (ModelLoadError("x"), "local", False, True),
        (InferenceError("x"), "local", False, True),
        (ContextLengthError("x"), "local", False, True),
        (StorageError("x"), "local", False, True),
        (InferenceError("x"), "local", True, False),  # text was shown: no second answer
        (CloudError("x"), "local", False, False),
        (OfflineError("x"), "cloud", False, True),
        (CloudTimeoutError("x"), "cloud", False, True),
        (RateLimitError("x"), "cloud", False, True),
        (CloudError("x"), "cloud", False, True),  # no status: a connection-level failure
        (CloudError("x", status=500), "cloud", False, True),
        (CloudError("x", status=503), "cloud", False, True),
        (CloudError("x", status=408), "cloud", False, True),
        (CloudError("x", status=409), "cloud", False, True),
        (CloudError("x", status=400), "cloud", False, False),
        (CloudError("x", status=401), "cloud", False, False),
        (CloudError("x", status=404), "cloud", False, False),
        (OfflineError("x"), "cloud", True, False),
        (ValidationError("x"), "local", False, False),
        (PolicyError("x"), "cloud", False, False),
        (ModelLoadError("x"), "cloud", False, False),  # a local error cannot come from the cloud side
    ],
)
def test_which_failures_move_a_request_and_in_which_direction(
    error: Exception, failed: Target, shown: bool, may: bool
) -> None:
    assert may_fall_back(error, failed, shown=shown) is may


def manifest(*tasks: str) -> Manifest:
    """The fake manifest, plus one model for each of ``tasks``."""
    data = fake_manifest_dict()
    template = data["models"][0]
    for task in tasks:
        data["models"].append({**template, "id": f"fake-{task}", "tasks": [task]})
    return Manifest.from_dict(data)


@pytest.mark.parametrize(
    ("tasks", "kwargs", "expected"),
    [
        (
            (CLASSIFY,),
            {"labels": False, "examples": 0, "model_id": None},
            [("classifier", "fake-text-classification")],
        ),
        ((), {"labels": True, "examples": 0, "model_id": None}, [("similarity", "fake-embed")]),
        (
            (ZERO_SHOT,),
            {"labels": True, "examples": 0, "model_id": None},
            [("similarity", "fake-embed"), ("zero-shot", "fake-zero-shot-classification")],
        ),  # the measured better method first (eval/methods), the NLI model if the embedding model fails
        (
            (ZERO_SHOT,),
            {"labels": True, "examples": 0, "model_id": "fake-zero-shot-classification"},
            [("zero-shot", "fake-zero-shot-classification")],
        ),  # the NLI model asked for by name: it answers, no substitute
        (
            (ZERO_SHOT,),
            {"labels": True, "examples": 0, "model_id": "fake-embed-cls"},
            [("similarity", "fake-embed-cls")],
        ),  # an embedding model asked for by name scores the labels
        ((ZERO_SHOT,), {"labels": False, "examples": 6, "model_id": None}, [("examples", "fake-embed")]),
    ],
)
def test_which_way_classifies(
    tasks: tuple[str, ...], kwargs: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    methods = classify_plan(manifest(*tasks), **kwargs)
    assert [(m.kind, m.model.id) for m in methods] == expected


@pytest.mark.parametrize(
    ("tasks", "model_id", "expected"),
    [
        ((), None, [("bi-encoder", "fake-embed")]),
        ((RERANK,), None, [("cross-encoder", "fake-text-ranking"), ("bi-encoder", "fake-embed")]),
        ((RERANK,), "fake-embed-cls", [("bi-encoder", "fake-embed-cls")]),
        ((RERANK,), "fake-text-ranking", [("cross-encoder", "fake-text-ranking")]),
    ],
)
def test_which_way_reranks(
    tasks: tuple[str, ...], model_id: str | None, expected: list[tuple[str, str]]
) -> None:
    assert [(m.kind, m.model.id) for m in rerank_plan(manifest(*tasks), model_id=model_id)] == expected


def test_a_missing_task_model_is_a_validation_error_with_a_hint() -> None:
    with pytest.raises(ValidationError) as info:
        classify_plan(manifest(), labels=False, examples=0, model_id=None)
    assert "text-classification" in info.value.hint and "./hr build" in info.value.hint
    with pytest.raises(ValidationError, match="does not find named entities"):
        single(manifest(NER), NER, "fake-embed")


GPU = {"api": True, "adapter": True, "fallback": False, "features": ["shader-f16"]}
SOFTWARE = {"api": True, "adapter": True, "fallback": True, "features": []}


@pytest.mark.parametrize(
    ("gpu", "pinned", "expected"),
    [
        (None, None, "wasm"),
        (SOFTWARE, None, "wasm"),  # a software adapter is not a GPU
        (GPU, None, "webgpu"),
        (GPU, "wasm", "wasm"),
        (SOFTWARE, "webgpu", "webgpu"),  # pinned by the caller, and there is an adapter
        (None, "webgpu", "wasm"),  # pinned, but no adapter at all: demoted at once
    ],
)
def test_which_device(gpu: dict[str, Any] | None, pinned: str | None, expected: str) -> None:
    caps = Capabilities.from_facts({"webgpu": gpu} if gpu else {})
    devices = Devices(caps, pinned)
    model = manifest().model("fake-embed")
    assert devices.device_of(model) == expected
    assert bool(devices.fallbacks) is (pinned == "webgpu" and gpu is None)


@pytest.mark.parametrize(
    ("device", "error", "moves"),
    [
        ("webgpu", InferenceError("device lost"), True),
        ("webgpu", ModelLoadError("shader compile failed"), True),
        ("webgpu", ValidationError("bad"), False),
        ("wasm", InferenceError("oom"), False),
    ],
)
def test_the_demotion_rule(device: str, error: Exception, moves: bool) -> None:
    devices = Devices(Capabilities.from_facts({"webgpu": GPU}))
    model = manifest().model("fake-embed")
    assert devices.retry_on_wasm(model, device, error) is moves
    assert devices.device_of(model) == ("wasm" if moves else "webgpu")
    assert [f["model"] for f in devices.fallbacks] == (["fake-embed"] if moves else [])


def test_routes_are_issued_for_the_step_that_answered() -> None:
    m = manifest(ZERO_SHOT)
    decision = decide(Facts(task=ZERO_SHOT), Policy())
    plan = local_plan(ZERO_SHOT, decision, classify_plan(m, labels=True, examples=0, model_id=None))
    first = issue_route(plan, plan.steps[0], [], ms=5.0)
    assert (first.target, first.reason, first.model, first.fallbacks) == (
        "local",
        "task-default",
        "fake-embed",
        (),
    )
    assert "embedding similarity" in first.rule
    failed = FallbackStep("local", "fake-embed", "ModelLoadError", "corrupted file")
    second = issue_route(plan, plan.steps[1], [failed], ms=9.0)
    assert second.reason == "fallback" and second.model == "fake-zero-shot-classification"
    assert second.fallbacks == (failed,) and "ModelLoadError" in second.rule
    gen = generation_plan(
        Decision("local", "default", "simple", "cloud"),
        local=m.model("fake-llm"),
        dtype="q8",
        cloud_model="gpt",
        complexity=0.2,
    )
    assert [(s.target, s.model) for s in gen.steps] == [("local", "fake-llm"), ("cloud", "gpt")]
    cloud = issue_route(
        gen,
        gen.steps[1],
        [FallbackStep("local", "fake-llm", "InferenceError", "oom")],
        ms=1.0,
        cost_usd=0.01,
        tokens_in=5,
        tokens_out=2,
    )
    assert cloud.dtype is None and cloud.complexity == 0.2 and "the cloud side answered" in cloud.rule


def test_an_explicit_cloud_call_offline_fails_at_once_with_a_hint() -> None:
    facts = dataclasses.replace(GEN, route="cloud", online=False)
    with pytest.raises(OfflineError) as info:
        decide(facts, Policy())
    assert info.value.hint and info.value.details["offline"] is True


def test_an_explicit_cloud_call_with_personal_data_under_sensitive_local_is_refused() -> None:
    facts = dataclasses.replace(GEN, route="cloud", sensitive=(("email", 1),))
    with pytest.raises(PolicyError) as info:
        decide(facts, Policy(sensitive="local"))
    assert "redact" in info.value.hint and "1 email" in info.value.message


def test_a_prompt_too_long_for_the_device_with_personal_data_is_refused_not_sent() -> None:
    facts = dataclasses.replace(GEN, tokens_in=200, sensitive=(("card", 1),))
    with pytest.raises(ContextLengthError):
        decide(facts, Policy(sensitive="local"))
