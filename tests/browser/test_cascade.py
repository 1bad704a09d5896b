"""The cascade for real (policy ``verify: "confidence"``): SmolLM2 in Transformers.js scores its own answer
by its token log-probabilities (our logits processor), and a low score sends the request to llama-server
behind the relay; thresholds are set by the test around the score the real model gives."""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults import FaultProxy
from tests.harness import RouterPage, open_router_page

pytestmark = pytest.mark.browser

CLOUD_OPTIONS = {"cloud": {"timeoutMs": 120000}}
PROMPT = "Name a colour."


@pytest.fixture(scope="module")
def page(browser: Any, cloud_server: Any) -> Any:
    rp = open_router_page(browser, cloud_server, options=CLOUD_OPTIONS)
    yield rp
    rp.page.context.close()


def generate(page: RouterPage, threshold: float) -> dict[str, Any]:
    result: dict[str, Any] = page.call(
        "return await router.generate(arg);",
        {
            "prompt": PROMPT,
            "maxTokens": 24,
            "temperature": 0,
            "policy": {"verify": "confidence", "verify_threshold": threshold, "verify_tokens": 8},
        },
    )
    return result


def test_a_score_above_the_threshold_stays_local_and_below_it_escalates(
    page: RouterPage, proxy: FaultProxy
) -> None:
    kept = generate(page, 0.0)
    route = kept["route"]
    assert route["target"] == "local" and kept["text"].strip(), kept
    record = route["verify"]
    score = record["score"]
    assert 0.0 < score < 1.0 and record["tokens_scored"] == 8 and record["escalated"] is False
    assert record["min_logprob"] <= record["mean_logprob"] < 0.0 and record["threshold"] == 0.0
    assert proxy.requests() == 0
    # the same greedy answer, a threshold just above its score: escalated, the cloud's text returned
    threshold = min(1.0, score + 0.01)
    escalated = generate(page, threshold)
    route = escalated["route"]
    assert route["target"] == "cloud" and proxy.requests() == 1, route
    record = route["verify"]
    assert record["escalated"] is True and record["threshold"] == pytest.approx(threshold)
    assert record["score"] == pytest.approx(score, abs=1e-4)  # the device's answer, scored again
    (step,) = route["fallbacks"]
    assert step["target"] == "local" and step["error_name"] == "LowConfidenceError"
    assert escalated["text"] != kept["text"]


def test_an_escalated_stream_shows_no_device_text(page: RouterPage, proxy: FaultProxy) -> None:
    device = page.call(
        "return await router.generate(arg);",
        {"prompt": PROMPT, "maxTokens": 24, "temperature": 0, "route": "local"},
    )["text"]
    chunks: list[dict[str, Any]] = page.call(
        """const out = [];
        for await (const c of router.stream(arg)) out.push(c);
        return out;""",
        {
            "prompt": PROMPT,
            "maxTokens": 24,
            "temperature": 0,
            "policy": {"verify": "confidence", "verify_threshold": 1.0, "verify_tokens": 4},
        },
    )
    text = "".join(c.get("delta", "") for c in chunks)
    done = chunks[-1]
    assert done["route"]["target"] == "cloud" and done["route"]["verify"]["escalated"] is True, done
    assert done["route"]["verify"]["tokens_scored"] == 4 and proxy.requests() == 1
    assert text and not text.startswith(device[:12]), (text, device)
