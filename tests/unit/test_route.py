import json
from typing import Any

import pytest

from hybrid_router.errors import CloudTimeoutError
from hybrid_router.route import REASON_FALLBACK, FallbackStep, Route


def test_to_wire_has_the_documented_snake_case_keys_and_is_json() -> None:
    route = Route(
        target="local", reason="task-default", rule="embeddings run on the device", model="m", ms=12.5
    )
    wire = route.to_wire()
    assert {
        "target",
        "reason",
        "rule",
        "model",
        "ms",
        "fallbacks",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "device",
        "dtype",
    } <= set(wire)
    assert wire["target"] == "local" and wire["ms"] == 12.5 and wire["fallbacks"] == []
    assert wire["tokens_in"] == 0 and wire["cost_usd"] == 0.0
    assert json.loads(json.dumps(wire)) == wire


def test_fallbacks_go_on_the_wire_as_a_list_of_dicts() -> None:
    step = FallbackStep(target="cloud", model="gpt", error_name="OfflineError", message="no network")
    route = Route(
        target="local", reason=REASON_FALLBACK, rule="cloud unreachable", model="m", fallbacks=(step,)
    )
    wire = route.to_wire()
    assert wire["fallbacks"] == [
        {"target": "cloud", "model": "gpt", "error_name": "OfflineError", "message": "no network"}
    ]
    json.dumps(wire)


def test_fallback_step_from_error_uses_the_wire_name() -> None:
    step = FallbackStep.from_error("cloud", "gpt", CloudTimeoutError("no answer in 30 s"))
    assert (step.error_name, step.message) == ("CloudTimeoutError", "no answer in 30 s")
    internal = FallbackStep.from_error("local", "m", RuntimeError("boom"))
    assert internal.error_name == "InternalError" and "boom" in internal.message


def test_route_is_immutable_and_replace_returns_a_copy() -> None:
    route = Route(target="cloud", reason="explicit", rule="asked for cloud", model="gpt")
    later = route.replace(ms=3.0, tokens_in=10, tokens_out=5, cost_usd=0.001)
    assert route.ms == 0.0 and later.ms == 3.0 and later.tokens_out == 5
    with pytest.raises(AttributeError):
        route.ms = 1.0  # type: ignore[misc]  # frozen: what the test checks


def test_a_list_of_fallbacks_is_stored_as_a_tuple() -> None:
    step = FallbackStep("local", "m", "InferenceError", "x")
    # a list where the type says tuple: what the test checks
    route = Route(target="cloud", reason="fallback", rule="r", model="gpt", fallbacks=[step])  # type: ignore[arg-type]
    assert route.fallbacks == (step,)


@pytest.mark.parametrize("target", ["remote", "", "LOCAL"])
def test_an_unknown_target_is_refused(target: Any) -> None:
    with pytest.raises(ValueError, match="target"):
        Route(target=target, reason="x", rule="x", model=None)
    with pytest.raises(ValueError, match="target"):
        FallbackStep(target=target, model=None, error_name="E", message="m")
