"""The cascade (policy ``verify: "confidence"``): the pure decision, and the router with a fake device
whose token log-probabilities the test sets (the real model's are checked in tests/browser)."""

import math
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from tests.unit.fakes import FakeCloud, FakeRuntime, fake_manifest, generate_with, stream_with

from hybrid_router.chat import ChatMessage, GenerateResult
from hybrid_router.errors import ValidationError
from hybrid_router.ledger import Ledger
from hybrid_router.manifest import ModelEntry
from hybrid_router.routing import Policy
from hybrid_router.routing.cascade import (
    DEFAULT_THRESHOLD,
    confidence,
    decide,
    not_escalated_because,
    token_logprob,
)
from hybrid_router.runtime import ProgressCallback

SIMPLE = "Say hello."
DEVICE_REPLY = "Hello from the device."
CLOUD_REPLY = "Hello from the cloud."


# -- the pure decision ------------------------------------------------------------------------------------


def test_token_logprob_is_the_log_softmax_of_the_chosen_token() -> None:
    logits = np.array([2.0, 1.0, -np.inf, 0.5], dtype=np.float32)
    finite = np.array([2.0, 1.0, 0.5])
    expected = 1.0 - math.log(float(np.exp(finite).sum()))
    assert token_logprob(logits, 1) == pytest.approx(expected)
    assert token_logprob(logits, 2) == -math.inf  # a masked token
    assert token_logprob(np.full(3, 1000.0, dtype=np.float32), 0) == pytest.approx(-math.log(3))  # stable


def test_confidence_scores_the_first_tokens_only() -> None:
    conf = confidence([-0.1, -0.3, -2.0, -9.0], tokens=3)
    assert conf is not None and conf.tokens == 3
    assert conf.mean_logprob == pytest.approx(-0.8) and conf.min_logprob == -2.0
    assert conf.score == pytest.approx(math.exp(-0.8))
    assert confidence([], tokens=3) is None


def test_decide_escalates_below_the_threshold_unless_the_cloud_is_blocked() -> None:
    low, high = confidence([-2.0, -1.0]), confidence([-0.05, -0.1])
    verdict = decide(low, 0.5, blocked=None, device_tokens_out=7)
    assert verdict.escalate and verdict.record["escalated"] is True
    assert verdict.record["score"] == pytest.approx(math.exp(-1.5)) and verdict.record["threshold"] == 0.5
    assert verdict.record["device_tokens_out"] == 7 and verdict.record["not_escalated"] is None
    kept = decide(high, 0.5, blocked=None)
    assert not kept.escalate and kept.record["escalated"] is False and kept.record["not_escalated"] is None
    blocked = decide(low, 0.5, blocked="privacy 'local-only'")
    assert not blocked.escalate and blocked.record["not_escalated"] == "privacy 'local-only'"
    empty = decide(None, 0.5, blocked=None)  # nothing to score: escalated
    assert empty.escalate and empty.record["score"] == 0.0 and empty.record["tokens_scored"] == 0


def test_why_not_escalated() -> None:
    def why(
        cloud_step: bool = False,
        privacy: str = "allow-cloud",
        route: str = "auto",
        fallback: bool = True,
        configured: bool = True,
    ) -> str | None:
        return not_escalated_because(
            has_cloud_step=cloud_step,
            privacy=privacy,
            route=route,
            fallback=fallback,
            cloud_configured=configured,
        )

    assert why(cloud_step=True) is None
    assert why(privacy="local-only") == "privacy 'local-only'"
    assert why(route="local") == "route 'local'"
    assert why(fallback=False) == "fallback is off"
    assert why(configured=False) == "no cloud provider"
    assert "no cloud step" in str(why())


def test_policy_checks_the_verify_fields() -> None:
    assert Policy().verify == "off" and Policy().verify_threshold is None and Policy().verify_tokens == 16
    policy = Policy(verify="confidence", verify_threshold=0.3, verify_tokens=4)
    assert policy.to_wire()["verify"] == "confidence" and policy.verify_threshold == 0.3
    bad: list[dict[str, Any]] = [
        {"verify": "judge"},
        {"verify_threshold": 1.5},
        {"verify_threshold": -1},
        {"verify_tokens": 0},
    ]
    for fields in bad:
        with pytest.raises(ValidationError):
            Policy(**fields)


# -- the router with a fake device -----------------------------------------------------------------------


@dataclass
class FakeScoredRuntime(FakeRuntime):
    """A fake device that also fills ``logprobs``: ``token_logprobs[i]`` for its i-th piece (the last value
    repeats); ``logprobs_given`` records whether each generation was asked for them."""

    token_logprobs: list[float] = field(default_factory=lambda: [-0.05])
    logprobs_given: list[bool] = field(default_factory=list)

    async def generate(
        self,
        model: ModelEntry,
        dtype: str,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int,
        temperature: float,
        on_text: Callable[[str], None] | None = None,
        on_progress: ProgressCallback | None = None,
        schema: Any = None,
        logprobs: list[float] | None = None,
    ) -> dict[str, Any]:
        self.logprobs_given.append(logprobs is not None)

        def text(piece: str) -> None:
            if logprobs is not None:
                logprobs.append(self.token_logprobs[min(len(logprobs), len(self.token_logprobs) - 1)])
            if on_text is not None:
                on_text(piece)

        out = await super().generate(
            model,
            dtype,
            messages,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            on_text=text,
            on_progress=on_progress,
            schema=schema,
        )
        return out


@dataclass(frozen=True)
class FlatPrice:
    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * 1.0 + tokens_out * 2.0) / 1e6


class Prices:
    def price_for(self, model: str | None) -> FlatPrice:
        return FlatPrice()


def _parts(runtime: FakeScoredRuntime, policy: Policy, cloud: FakeCloud | None) -> dict[str, Any]:
    if cloud is not None:
        cloud.reply = CLOUD_REPLY
    return {
        "runtime": runtime,
        "manifest": fake_manifest(),
        "cloud": cloud,
        "policy": policy,
        "ledger": Ledger(Prices(), cloud_model="fake-gpt"),
    }


async def _generate(
    logprobs: list[float], policy: Policy, cloud: FakeCloud | None = None
) -> tuple[GenerateResult, FakeScoredRuntime, dict[str, Any]]:
    runtime = FakeScoredRuntime(token_logprobs=logprobs)
    parts = _parts(runtime, policy, cloud)
    result = await generate_with({"prompt": SIMPLE}, **parts)
    return result, runtime, parts["ledger"].stats()


VERIFY = Policy(verify="confidence", verify_threshold=0.5, verify_tokens=2)


async def test_a_confident_device_answer_stays_on_the_device() -> None:
    cloud = FakeCloud()
    result, runtime, stats = await _generate([-0.05, -0.1], VERIFY, cloud)
    assert result.text == DEVICE_REPLY and result.route.target == "local"
    record = result.route.verify
    assert record is not None and record["escalated"] is False
    assert record["score"] == pytest.approx(math.exp(-0.075)) and record["threshold"] == 0.5
    assert record["tokens_scored"] == 2 and runtime.logprobs_given == [True]
    assert cloud.calls == [] and stats["local"] == 1
    assert result.to_wire()["route"]["verify"]["escalated"] is False


async def test_a_low_scoring_device_answer_is_escalated_to_the_cloud() -> None:
    cloud = FakeCloud()
    result, runtime, stats = await _generate([-2.0, -1.5, -0.01], VERIFY, cloud)
    assert result.text == CLOUD_REPLY and result.route.target == "cloud"  # not the device's text
    record = result.route.verify
    assert record is not None and record["escalated"] is True
    assert record["score"] == pytest.approx(math.exp(-1.75)) and record["threshold"] == 0.5
    assert record["device_tokens_out"] == 4  # the device's attempt, counted in the record
    (step,) = result.route.fallbacks
    assert (step.target, step.error_name) == ("local", "LowConfidenceError") and "0.174" in step.message
    assert len(cloud.calls) == 1 and runtime.logprobs_given == [True]
    assert (stats["requests"], stats["cloud"], stats["fallbacks"]) == (1, 1, 1)


async def test_the_default_threshold_applies_when_none_is_set() -> None:
    policy = Policy(verify="confidence", verify_tokens=2)
    result, _, _ = await _generate([-0.5, -0.6], policy, FakeCloud())  # exp(-0.55) = 0.58
    assert result.route.verify is not None and result.route.verify["threshold"] == DEFAULT_THRESHOLD
    assert result.route.target == "local"


async def test_no_escalation_where_the_cloud_is_not_allowed_and_the_route_says_why() -> None:
    cloud = FakeCloud()
    local_only = VERIFY.replace(privacy="local-only")
    result, _, _ = await _generate([-3.0], local_only, cloud)
    assert result.text == DEVICE_REPLY and result.route.target == "local" and cloud.calls == []
    record = result.route.verify
    assert record is not None and record["escalated"] is False
    assert record["not_escalated"] == "privacy 'local-only'"
    no_cloud, _, _ = await _generate([-3.0], VERIFY, None)
    assert no_cloud.text == DEVICE_REPLY and no_cloud.route.verify is not None
    assert no_cloud.route.verify["not_escalated"] == "no cloud provider"


async def test_verify_off_scores_nothing() -> None:
    result, runtime, _ = await _generate([-3.0], Policy(), FakeCloud())
    assert result.text == DEVICE_REPLY and result.route.verify is None and runtime.logprobs_given == [False]


async def _stream(logprobs: list[float], policy: Policy, cloud: FakeCloud) -> list[dict[str, Any]]:
    runtime = FakeScoredRuntime(token_logprobs=logprobs)
    items = []
    async with aclosing(stream_with({"prompt": SIMPLE}, **_parts(runtime, policy, cloud))) as chunks:
        async for item in chunks:
            items.append(item)
    return items


async def test_a_low_scoring_stream_shows_no_device_text() -> None:
    cloud = FakeCloud()
    items = await _stream([-2.0, -2.0, -0.01], VERIFY, cloud)
    text = "".join(item.get("delta", "") for item in items)
    assert text == CLOUD_REPLY and "device" not in text
    done = items[-1]
    assert done["route"]["target"] == "cloud" and done["route"]["verify"]["escalated"] is True
    assert done["route"]["fallbacks"][0]["error_name"] == "LowConfidenceError"


async def test_a_stream_is_judged_on_its_prefix_then_shown_whole() -> None:
    cloud = FakeCloud()
    items = await _stream([-0.01, -0.02, -5.0], VERIFY, cloud)  # the low tail is past the prefix
    assert "".join(item.get("delta", "") for item in items) == DEVICE_REPLY
    done = items[-1]
    assert done["route"]["target"] == "local" and done["route"]["verify"]["tokens_scored"] == 2
    assert cloud.calls == []


def test_the_calibration_scripts_auroc_and_quality_at_a_share() -> None:
    from eval.quality.cascade import auroc, quality_at
    from eval.quality.curves import curve

    assert auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert auroc([0.1, 0.9], [True, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5 and math.isnan(auroc([0.5], [True]))
    # the lowest confidence to the cloud first: the failing answer goes at a third of the share
    c = curve([1 - 0.9, 1 - 0.8, 1 - 0.1], [True, True, False], [True, True, True])
    assert quality_at(c, 0.0) == pytest.approx(2 / 3) and quality_at(c, 0.34) == pytest.approx(1.0)
