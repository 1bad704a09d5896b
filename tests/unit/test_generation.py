import asyncio
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.unit.fakes import (
    FAKE_LLM_CONTEXT,
    FakeCloud,
    FakeRuntime,
    fake_manifest,
    fake_token_count,
    generate_with,
    stream_with,
)

from hybrid_router.chat import DEFAULT_MAX_TOKENS_LOCAL, GenerateResult
from hybrid_router.errors import (
    CloudError,
    CloudTimeoutError,
    ContextLengthError,
    InferenceError,
    LocalError,
    ModelLoadError,
    OfflineError,
    PolicyError,
    RateLimitError,
    StorageError,
    ValidationError,
)
from hybrid_router.ledger import Ledger
from hybrid_router.route import FallbackStep
from hybrid_router.routing import Policy

SIMPLE = "Say hello."
COMPLEX = "If 3x + 7 = 22 and y = 2x - 4, compute x*y + 17/3 - 2^5 and the sum 12+45+78+91."
DEVICE_REPLY = "Hello from the device."
CLOUD_REPLY = "Hello from the cloud."


@dataclass(frozen=True)
class FlatPrice:
    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * 1.0 + tokens_out * 2.0) / 1e6


class Prices:
    def price_for(self, model: str | None) -> FlatPrice:
        return FlatPrice()


def ticking_clock() -> Any:
    now = [0.0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    return clock


@dataclass
class Env:
    runtime: FakeRuntime = field(default_factory=FakeRuntime)
    cloud: FakeCloud | None = field(default_factory=FakeCloud)
    policy: Policy = field(default_factory=Policy)
    ledger: Ledger = field(default_factory=lambda: Ledger(Prices(), cloud_model="fake-gpt"))
    progress: list[dict[str, Any]] = field(default_factory=list)

    def kwargs(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "manifest": fake_manifest(),
            "cloud": self.cloud,
            "policy": self.policy,
            "ledger": self.ledger,
            "clock": ticking_clock(),
            "on_progress": self.progress.append,
        }

    async def generate(self, **params: Any) -> GenerateResult:
        return await generate_with(params, **self.kwargs())

    async def stream(self, **params: Any) -> list[dict[str, Any]]:
        items = []
        async with aclosing(stream_with(params, **self.kwargs())) as chunks:
            async for item in chunks:
                items.append(item)
        return items

    @property
    def stats(self) -> dict[str, Any]:
        return self.ledger.stats()

    @property
    def cloud_calls(self) -> list[dict[str, Any]]:
        return self.cloud.calls if self.cloud is not None else []


# -- the device answers -------------------------------------------------------------------------------


async def test_a_simple_prompt_is_answered_on_the_device() -> None:
    env = Env()
    result = await env.generate(prompt=SIMPLE)
    assert result.text == DEVICE_REPLY and result.finish_reason == "stop"
    route = result.route
    assert (route.target, route.reason, route.model, route.dtype, route.device) == (
        "local",
        "default",
        "fake-llm",
        "q8",
        "wasm",
    )
    messages = [{"role": "user", "content": SIMPLE}]
    assert route.tokens_in == fake_token_count(messages) and route.tokens_out == 4
    assert result.usage == {"tokens_in": route.tokens_in, "tokens_out": 4}
    assert route.cost_usd == 0.0 and route.fallbacks == () and route.ms > 0 and route.complexity is not None
    call = env.runtime.generate_calls[0]
    assert (call.messages, call.max_new_tokens, call.temperature) == (messages, DEFAULT_MAX_TOKENS_LOCAL, 0.0)
    assert (route.finish_reason, route.max_tokens) == ("stop", DEFAULT_MAX_TOKENS_LOCAL)
    assert env.cloud_calls == []
    stats = env.stats
    assert (stats["requests"], stats["local"], stats["cloud"]) == (1, 1, 0) and stats["saved_usd"] > 0
    assert env.progress and env.progress[0]["model"] == "fake-llm"


async def test_messages_max_tokens_and_temperature_reach_the_runtime() -> None:
    env = Env()
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": SIMPLE}]
    result = await env.generate(messages=messages, max_tokens=2, temperature=0.7)
    assert result.text == "Hello from " and result.finish_reason == "length" and result.route.tokens_out == 2
    call = env.runtime.generate_calls[0]
    assert (call.messages, call.max_new_tokens, call.temperature) == (messages, 2, 0.7)
    assert env.runtime.count_calls == [messages]


async def test_the_route_records_the_time_taken_to_decide_whole_or_streamed() -> None:
    env = Env()
    whole = (await env.generate(prompt=SIMPLE)).route
    assert 0 <= whole.decision_ms <= whole.ms
    done = (await env.stream(prompt=COMPLEX))[-1]["route"]
    assert done["target"] == "cloud" and 0 <= done["decision_ms"] <= done["ms"]


# -- the cloud answers -----------------------------------------------------------------------------------


async def test_a_complex_prompt_goes_to_the_cloud_with_cost_and_usage() -> None:
    env = Env()
    result = await env.generate(prompt=COMPLEX, max_tokens=64)
    route = result.route
    assert result.text == CLOUD_REPLY
    assert (route.target, route.reason, route.model) == ("cloud", "complexity", "fake-gpt")
    assert (route.tokens_in, route.tokens_out) == (40, 5)
    assert route.cost_usd == pytest.approx((40 + 10) / 1e6)
    assert env.cloud_calls[0]["max_tokens"] == 64 and env.cloud_calls[0]["temperature"] is None
    assert env.runtime.generate_calls == []
    assert env.stats["cloud"] == 1 and env.stats["cloud_cost_usd"] == pytest.approx(route.cost_usd)


async def test_input_over_the_local_window_goes_to_the_cloud() -> None:
    # + the device's default max_tokens does not fit
    env = Env(runtime=FakeRuntime(token_count=FAKE_LLM_CONTEXT - DEFAULT_MAX_TOKENS_LOCAL + 1))
    result = await env.generate(prompt=SIMPLE)
    assert (result.route.target, result.route.reason) == ("cloud", "context-length")
    assert str(FAKE_LLM_CONTEXT) in result.route.rule and env.runtime.generate_calls == []
    fits = Env(runtime=FakeRuntime(token_count=FAKE_LLM_CONTEXT - DEFAULT_MAX_TOKENS_LOCAL))
    assert (await fits.generate(prompt=SIMPLE)).route.target == "local"


async def test_explicit_cloud_does_not_touch_the_device_and_temperature_is_clamped_to_the_provider() -> None:
    env = Env(cloud=FakeCloud(max_temperature=1.0))
    result = await env.generate(prompt=SIMPLE, route="cloud", temperature=1.5)
    assert (result.route.target, result.route.reason) == ("cloud", "explicit")
    assert env.runtime.count_calls == [] and env.runtime.generate_calls == []
    assert env.cloud_calls[0]["temperature"] == 1.0


async def test_missing_cloud_usage_falls_back_to_the_local_count() -> None:
    env = Env(cloud=FakeCloud(usage=None))
    result = await env.generate(prompt=COMPLEX)
    assert result.route.tokens_in == fake_token_count([{"role": "user", "content": COMPLEX}])


# -- fallback device -> cloud -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ModelLoadError("missing onnx/model_quantized.onnx"),
        InferenceError("out of memory"),
        ContextLengthError("too long"),
        StorageError("quota exceeded"),
    ],
)
async def test_a_local_failure_is_served_by_the_cloud_and_the_route_says_why(error: LocalError) -> None:
    env = Env(runtime=FakeRuntime(generate_fail=error))
    result = await env.generate(prompt=SIMPLE)
    route = result.route
    assert result.text == CLOUD_REPLY and route.target == "cloud" and route.reason == "fallback"
    assert route.fallbacks == (FallbackStep("local", "fake-llm", error.name, error.message),)
    assert error.name in route.rule and "cloud side answered" in route.rule
    assert route.cost_usd > 0
    assert env.stats["fallbacks"] == 1 and env.stats["cloud"] == 1 and env.stats["errors"] == 0


async def test_an_unexpected_local_exception_falls_back_as_an_inference_error() -> None:
    env = Env(runtime=FakeRuntime(generate_fail=RuntimeError("wasm trap")))
    result = await env.generate(prompt=SIMPLE)
    (step,) = result.route.fallbacks
    assert step.error_name == "InferenceError" and "RuntimeError: wasm trap" in step.message


async def test_a_failure_while_counting_tokens_sends_the_request_to_the_cloud_without_generating() -> None:
    env = Env(runtime=FakeRuntime(count_fail=ModelLoadError("model file missing")))
    result = await env.generate(prompt=SIMPLE)
    assert result.route.target == "cloud" and result.route.reason == "fallback"
    assert result.route.fallbacks[0].error_name == "ModelLoadError"
    assert "failed before generating" in result.route.rule
    assert env.runtime.generate_calls == []


@pytest.mark.parametrize(
    "policy", [Policy(privacy="local-only"), Policy(fallback=False), Policy(route="local")]
)
async def test_a_counting_failure_is_raised_when_the_cloud_may_not_serve(policy: Policy) -> None:
    env = Env(runtime=FakeRuntime(count_fail=ModelLoadError("model file missing")), policy=policy)
    with pytest.raises(ModelLoadError, match="model file missing"):
        await env.generate(prompt=SIMPLE)
    assert env.cloud_calls == [] and env.stats["errors"] == 1


async def test_no_fallback_when_the_policy_turns_it_off_or_the_call_pins_the_device() -> None:
    for env, params in (
        (Env(runtime=FakeRuntime(generate_fail=InferenceError("oom")), policy=Policy(fallback=False)), {}),
        (Env(runtime=FakeRuntime(generate_fail=InferenceError("oom"))), {"route": "local"}),
    ):
        with pytest.raises(InferenceError, match="oom"):
            await env.generate(prompt=SIMPLE, **params)
        assert env.cloud_calls == []


async def test_local_only_never_calls_the_cloud_even_for_complex_prompts_or_failures() -> None:
    env = Env(policy=Policy(privacy="local-only"))
    result = await env.generate(prompt=COMPLEX)
    assert (result.route.target, result.route.reason) == ("local", "privacy")
    env.runtime.generate_fail = ModelLoadError("gone")
    with pytest.raises(ModelLoadError):
        await env.generate(prompt=SIMPLE)
    with pytest.raises(PolicyError):
        await env.generate(prompt=SIMPLE, route="cloud")
    env.runtime.token_count = 10_000
    with pytest.raises(PolicyError, match="10000"):
        await env.generate(prompt=SIMPLE)
    assert env.cloud_calls == []
    assert env.stats["errors"] == 3 and env.stats["local"] == 1


# -- fallback cloud -> device -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        OfflineError("no network"),
        CloudTimeoutError("no answer in 60 s"),
        RateLimitError("429", status=429),
        CloudError("HTTP 503", status=503),
        CloudError("stream broke", stage="stream"),
    ],
)
async def test_an_unreachable_cloud_is_replaced_by_the_device(error: CloudError) -> None:
    env = Env(cloud=FakeCloud(fail=error))
    result = await env.generate(prompt=COMPLEX)
    route = result.route
    assert result.text == DEVICE_REPLY and (route.target, route.reason) == ("local", "fallback")
    assert route.fallbacks == (FallbackStep("cloud", "fake-gpt", error.name, error.message),)
    assert route.cost_usd == 0.0 and env.stats["fallbacks"] == 1 and env.stats["local"] == 1


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_a_cloud_refusal_is_raised_not_hidden_by_a_fallback(status: int) -> None:
    env = Env(cloud=FakeCloud(fail=CloudError(f"HTTP {status}", status=status)))
    with pytest.raises(CloudError, match=str(status)):
        await env.generate(prompt=COMPLEX)
    assert env.runtime.generate_calls == [] and env.stats["errors"] == 1


async def test_input_too_long_for_the_device_is_not_sent_back_to_it() -> None:
    env = Env(runtime=FakeRuntime(token_count=FAKE_LLM_CONTEXT), cloud=FakeCloud(fail=OfflineError("down")))
    with pytest.raises(OfflineError):
        await env.generate(prompt=SIMPLE)
    assert env.runtime.generate_calls == []


async def test_when_both_sides_fail_the_last_error_carries_the_chain() -> None:
    env = Env(
        runtime=FakeRuntime(generate_fail=ModelLoadError("no model")),
        cloud=FakeCloud(fail=OfflineError("down")),
    )
    with pytest.raises(OfflineError) as info:
        await env.generate(prompt=SIMPLE)
    assert info.value.details["fallbacks"] == [
        {"target": "local", "model": "fake-llm", "error_name": "ModelLoadError", "message": "no model"}
    ]
    assert env.stats["errors"] == 1 and env.stats["fallbacks"] == 1 and env.stats["requests"] == 1


# -- budget -----------------------------------------------------------------------------------------------


async def test_a_spent_budget_keeps_requests_on_the_device() -> None:
    # a call's worst case (its ~30 prompt tokens + 64 for the provider's framing + max_tokens 100 at
    # fake-gpt's price) is ~0.000294 USD and must fit: the first call does and spends 0.00005 (usage 40/5);
    # the second's worst case (framing now the 10 tokens seen + 8) is ~0.000248 and no longer fits the rest
    env = Env(policy=Policy(daily_budget_usd=0.000296))
    first = await env.generate(prompt=COMPLEX, max_tokens=100)
    assert first.route.target == "cloud"
    second = await env.generate(prompt=COMPLEX, max_tokens=100)
    assert (second.route.target, second.route.reason) == ("local", "budget")
    assert len(env.cloud_calls) == 1


async def test_a_spent_budget_refuses_cloud_requests_when_configured_to() -> None:
    env = Env(policy=Policy(daily_budget_usd=0.0, over_budget="refuse"))
    with pytest.raises(PolicyError, match="budget"):
        await env.generate(prompt=COMPLEX)
    assert (await env.generate(prompt=SIMPLE)).route.target == "local"
    assert env.cloud_calls == [] and env.stats["errors"] == 1


# -- no cloud configured -----------------------------------------------------------------------------------


async def test_without_a_cloud_everything_runs_locally_and_local_errors_surface() -> None:
    env = Env(cloud=None)
    result = await env.generate(prompt=COMPLEX)
    assert (result.route.target, result.route.reason) == ("local", "cloud-unavailable")
    env.runtime.generate_fail = InferenceError("oom")
    with pytest.raises(InferenceError):
        await env.generate(prompt=SIMPLE)


# -- validation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"prompt": SIMPLE, "messages": [{"role": "user", "content": "x"}]},
        {"prompt": 3},
        {"prompt": "   "},
        {"messages": []},
        {"messages": "hi"},
        {"messages": [{"role": "robot", "content": "x"}]},
        {"messages": [{"role": "user", "content": 1}]},
        {"messages": [{"role": "user", "content": "x", "name": "bob"}]},
        {"messages": [{"role": "system", "content": "only a system message"}]},
        {"prompt": SIMPLE, "max_tokens": 0},
        {"prompt": SIMPLE, "max_tokens": 4097},
        {"prompt": SIMPLE, "max_tokens": 1.5},
        {"prompt": SIMPLE, "temperature": 2.5},
        {"prompt": SIMPLE, "temperature": True},
        {"prompt": SIMPLE, "route": "edge"},
        {"prompt": SIMPLE, "model": "x"},
    ],
)
async def test_bad_requests_are_validation_errors_recorded_and_never_run(params: dict[str, Any]) -> None:
    env = Env()
    with pytest.raises(ValidationError) as info:
        await env.generate(**params)
    assert info.value.hint
    assert env.runtime.count_calls == [] and env.runtime.generate_calls == [] and env.cloud_calls == []
    assert env.stats["errors"] == 1


# -- streaming -----------------------------------------------------------------------------------------------


async def test_stream_yields_deltas_then_done_with_the_route_and_usage() -> None:
    env = Env()
    items = await env.stream(prompt=SIMPLE)
    *deltas, done = items
    assert [d["delta"] for d in deltas] == ["Hello ", "from ", "the ", "device."]
    assert (
        done["done"] is True and done["route"]["target"] == "local" and done["route"]["reason"] == "default"
    )
    assert done["usage"] == {"tokens_in": done["route"]["tokens_in"], "tokens_out": 4}
    assert env.stats["local"] == 1


async def test_stream_from_the_cloud() -> None:
    env = Env()
    *deltas, done = await env.stream(prompt=COMPLEX)
    assert "".join(d["delta"] for d in deltas) == CLOUD_REPLY and len(deltas) == 4
    assert done["route"]["target"] == "cloud" and done["usage"] == {"tokens_in": 40, "tokens_out": 5}
    assert env.cloud_calls[0]["method"] == "stream"


async def test_stream_from_a_cloud_that_cannot_stream_is_one_delta() -> None:
    env = Env(cloud=FakeCloud(can_stream=False))
    *deltas, done = await env.stream(prompt=COMPLEX)
    assert deltas == [{"delta": CLOUD_REPLY}] and env.cloud_calls[0]["method"] == "complete"


async def test_a_failure_before_the_first_delta_falls_back_transparently() -> None:
    env = Env(runtime=FakeRuntime(generate_fail=ModelLoadError("no model"), fail_after=0))
    *deltas, done = await env.stream(prompt=SIMPLE)
    assert "".join(d["delta"] for d in deltas) == CLOUD_REPLY
    assert (
        done["route"]["reason"] == "fallback"
        and done["route"]["fallbacks"][0]["error_name"] == "ModelLoadError"
    )


async def test_a_cloud_stream_failing_before_text_falls_back_to_the_device() -> None:
    env = Env(cloud=FakeCloud(fail=CloudError("stream broke", stage="stream", received_deltas=0)))
    *deltas, done = await env.stream(prompt=COMPLEX)
    assert "".join(d["delta"] for d in deltas) == DEVICE_REPLY and done["route"]["target"] == "local"


async def test_a_failure_after_deltas_is_raised_and_never_mixed_with_the_other_side() -> None:
    env = Env(runtime=FakeRuntime(generate_fail=InferenceError("device lost"), fail_after=2))
    received: list[dict[str, Any]] = []
    with pytest.raises(InferenceError, match="device lost"):
        async with aclosing(stream_with({"prompt": SIMPLE}, **env.kwargs())) as chunks:
            async for item in chunks:
                received.append(item)
    assert received == [{"delta": "Hello "}, {"delta": "from "}]
    assert env.cloud_calls == [] and env.stats["errors"] == 1 and env.stats["fallbacks"] == 0


async def test_a_cloud_stream_breaking_after_text_is_raised() -> None:
    env = Env(cloud=FakeCloud(fail=OfflineError("reset"), fail_after=1))
    with pytest.raises(OfflineError):
        await env.stream(prompt=COMPLEX)
    assert env.runtime.generate_calls == []


# -- cancellation ------------------------------------------------------------------------------------------


async def test_cancelling_a_local_generation_propagates_and_nothing_falls_back() -> None:
    env = Env(runtime=FakeRuntime(gate=asyncio.Event(), gate_texts=False))
    task = asyncio.create_task(env.generate(prompt=SIMPLE))
    await env.runtime.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert env.runtime.cancelled and env.cloud_calls == []
    assert env.stats["errors"] == 1 and env.stats["fallbacks"] == 0


async def test_cancelling_a_cloud_call_propagates_and_the_device_is_not_tried() -> None:
    cloud = FakeCloud(gate=asyncio.Event())
    env = Env(cloud=cloud)
    task = asyncio.create_task(env.generate(prompt=COMPLEX))
    await cloud.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cloud.cancelled and env.runtime.generate_calls == []


async def test_cancelling_a_stream_mid_way_interrupts_the_runtime() -> None:
    env = Env(runtime=FakeRuntime(gate=asyncio.Event(), gate_texts=False, gate_after=2))
    received: list[dict[str, Any]] = []

    async def consume() -> None:
        async with aclosing(stream_with({"prompt": SIMPLE}, **env.kwargs())) as chunks:
            async for item in chunks:
                received.append(item)

    task = asyncio.create_task(consume())
    await env.runtime.started.wait()
    while len(received) < 2:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert env.runtime.cancelled and env.cloud_calls == [] and len(received) == 2
    assert env.stats["errors"] == 1


async def test_closing_a_stream_early_stops_the_runtime_and_is_recorded_once() -> None:
    env = Env(runtime=FakeRuntime(gate=asyncio.Event(), gate_texts=False, gate_after=1))
    async with aclosing(stream_with({"prompt": SIMPLE}, **env.kwargs())) as chunks:
        first = await anext(chunks)
    assert first == {"delta": "Hello "}
    assert env.runtime.cancelled and env.stats["requests"] == 1 and env.stats["errors"] == 1
