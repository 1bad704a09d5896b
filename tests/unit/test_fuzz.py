"""Property-based tests of the core's entry points: whatever a caller sends (wrong types, huge and deep
values, NaN, bytes, odd strings), every call ends in a result or a typed error of ours, and the protocol
answers every call exactly once."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.fakes import FakeCloud, FakeRuntime, as_runtime, fake_manifest

from hybrid_router import errors, wire
from hybrid_router.protocol import Dispatcher, to_plain
from hybrid_router.router import Router

#: names an error on the wire may have for bad input (InternalError would be a bug)
TYPED = (
    {cls.__name__ for cls in errors.HybridRouterError.__subclasses__()}
    | {sub.__name__ for cls in errors.HybridRouterError.__subclasses__() for sub in cls.__subclasses__()}
    | {errors.ABORT_ERROR}
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=30,
)
KEYS = [
    "texts",
    "text",
    "labels",
    "examples",
    "query",
    "documents",
    "top_k",
    "model",
    "dtype",
    "prompt",
    "messages",
    "max_tokens",
    "temperature",
    "route",
    "audio",
    "wav",
    "sampling_rate",
    "name",
    "ids",
    "multi_label",
    "hypothesis_template",
    "tier",
    "privacy",
    "daily_budget_usd",
]
params = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
METHODS = sorted(wire.METHODS)


def run(message: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    router = Router(as_runtime(FakeRuntime()), fake_manifest(), cloud=FakeCloud())

    async def go() -> None:
        d = Dispatcher(wire.handlers(router), sent.append)
        d.receive(message)
        await d.drain()

    asyncio.run(go())
    return sent


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(METHODS), args=params)
def test_every_method_answers_any_params_with_a_result_or_a_typed_error(
    method: str, args: dict[str, Any]
) -> None:
    sent = run({"id": 1, "type": "call", "method": method, "params": args})
    replies = [m for m in sent if m["type"] in ("result", "error")]
    assert len(replies) == 1
    to_plain(replies[0])  # plain data the edge can post
    if replies[0]["type"] == "error":
        error = replies[0]["error"]
        assert error["name"] in TYPED and error["hint"], error


@settings(max_examples=300, deadline=None)
@given(message=values)
def test_any_message_gets_at_most_one_reply_and_never_breaks_the_dispatcher(message: Any) -> None:
    sent = run(message)
    assert len(sent) <= 1
    for reply in sent:
        assert reply["type"] == "error" and reply["error"]["name"] in TYPED


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(max_size=200), min_size=1, max_size=20))
def test_embeddings_are_unit_rows_in_order_for_any_texts(texts: list[str]) -> None:
    router = Router(as_runtime(FakeRuntime()), fake_manifest())
    result = asyncio.run(router.embed(texts))
    assert result.vectors.shape[0] == len(texts)
    for row in result.vectors:
        norm = math.sqrt(float((row.astype("float64") ** 2).sum()))
        assert norm == 0.0 or abs(norm - 1.0) < 1e-5
