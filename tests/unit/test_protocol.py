import asyncio
import dataclasses
import enum
import json
from typing import Any

import numpy as np
import pytest

from hybrid_router.errors import ABORT_ERROR, ValidationError
from hybrid_router.protocol import CallContext, Dispatcher, to_plain


class Sent(list[dict[str, Any]]):
    """The messages the dispatcher sent, each checked to be JSON data."""

    def __call__(self, message: dict[str, Any]) -> None:
        json.dumps(message)
        self.append(message)

    def of(self, call_id: Any, kind: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self if m.get("id") == call_id and (kind is None or m["type"] == kind)]

    def reply(self, call_id: Any) -> dict[str, Any]:
        replies = [m for m in self.of(call_id) if m["type"] in ("result", "error")]
        assert len(replies) == 1, f"exactly one reply for {call_id!r}: {replies}"
        return replies[0]


async def echo(params: dict[str, Any], ctx: CallContext) -> Any:
    return {"echo": params, "id": ctx.id}


async def fails(params: dict[str, Any], ctx: CallContext) -> Any:
    raise ValidationError("texts must not be empty", hint="Pass at least one text.", field="texts")


async def crashes(params: dict[str, Any], ctx: CallContext) -> Any:
    raise KeyError("oops")


async def talks(params: dict[str, Any], ctx: CallContext) -> Any:
    ctx.progress({"status": "progress", "file": "a.onnx", "progress": 50.0})
    ctx.chunk({"text": "hel"})
    ctx.chunk({"text": "lo"})
    return "done"


async def returns_array(params: dict[str, Any], ctx: CallContext) -> Any:
    return {"v": np.arange(3, dtype=np.float32), "n": np.int64(2)}


async def returns_object(params: dict[str, Any], ctx: CallContext) -> Any:
    return object()


def make(**extra: Any) -> tuple[Dispatcher, Sent]:
    sent = Sent()
    handlers = {
        "echo": echo,
        "fails": fails,
        "crashes": crashes,
        "talks": talks,
        "array": returns_array,
        "object": returns_object,
        **extra,
    }
    return Dispatcher(handlers, sent), sent


async def test_a_call_gets_its_result_with_the_same_id() -> None:
    d, sent = make()
    d.receive({"id": 1, "type": "call", "method": "echo", "params": {"x": [1, 2]}})
    assert d.in_flight == 1
    await d.drain()
    assert d.in_flight == 0
    assert sent.reply(1) == {"id": 1, "type": "result", "value": {"echo": {"x": [1, 2]}, "id": 1}}


async def test_string_ids_and_missing_params_are_accepted() -> None:
    d, sent = make()
    d.receive({"id": "a", "type": "call", "method": "echo"})
    d.receive({"id": "b", "type": "call", "method": "echo", "params": None})
    await d.drain()
    assert sent.reply("a")["value"]["echo"] == {} and sent.reply("b")["value"]["echo"] == {}


async def test_a_router_error_goes_on_the_wire_with_name_hint_and_details() -> None:
    d, sent = make()
    d.receive({"id": 2, "type": "call", "method": "fails", "params": {}})
    await d.drain()
    assert sent.reply(2) == {
        "id": 2,
        "type": "error",
        "error": {
            "name": "ValidationError",
            "message": "texts must not be empty",
            "hint": "Pass at least one text.",
            "details": {"field": "texts"},
        },
    }


async def test_an_unexpected_error_is_an_internal_error_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    d, sent = make()
    d.receive({"id": 3, "type": "call", "method": "crashes", "params": {}})
    await d.drain()
    error = sent.reply(3)["error"]
    assert error["name"] == "InternalError" and error["details"] == {"type": "KeyError"}
    assert any("crashes" in r.getMessage() for r in caplog.records)


async def test_progress_and_chunks_carry_the_call_id_and_come_before_the_result() -> None:
    d, sent = make()
    d.receive({"id": 4, "type": "call", "method": "talks", "params": {}})
    await d.drain()
    assert [m["type"] for m in sent.of(4)] == ["progress", "chunk", "chunk", "result"]
    assert sent.of(4, "progress")[0]["event"]["file"] == "a.onnx"
    assert [m["value"] for m in sent.of(4, "chunk")] == [{"text": "hel"}, {"text": "lo"}]


async def test_results_are_converted_to_plain_data() -> None:
    d, sent = make()
    d.receive({"id": 5, "type": "call", "method": "array", "params": {}})
    await d.drain()
    value = sent.reply(5)["value"]
    assert value == {"v": [0.0, 1.0, 2.0], "n": 2} and type(value["n"]) is int


async def test_a_result_that_is_not_data_becomes_an_error_reply() -> None:
    d, sent = make()
    d.receive({"id": 6, "type": "call", "method": "object", "params": {}})
    await d.drain()
    assert sent.reply(6)["error"]["name"] == "InternalError"


async def test_cancel_mid_call_cancels_the_task_and_replies_abort_error() -> None:
    entered, seen_cancel = asyncio.Event(), asyncio.Event()

    async def slow(params: dict[str, Any], ctx: CallContext) -> Any:
        entered.set()
        try:
            await asyncio.Event().wait()  # never set: only cancellation ends this
        except asyncio.CancelledError:
            seen_cancel.set()
            raise
        return "never"

    d, sent = make(slow=slow)
    d.receive({"id": 7, "type": "call", "method": "slow", "params": {}})
    await entered.wait()
    assert sent.of(7) == []
    d.receive({"id": 7, "type": "cancel"})
    await d.drain()
    assert seen_cancel.is_set(), "the handler's task was really cancelled"
    error = sent.reply(7)["error"]
    assert error["name"] == ABORT_ERROR and error["hint"]
    assert d.in_flight == 0


async def test_cancel_before_the_call_started_still_replies_abort_error() -> None:
    ran = []

    async def never_started(params: dict[str, Any], ctx: CallContext) -> Any:
        ran.append(True)

    d, sent = make(quick=never_started)
    d.receive({"id": 8, "type": "call", "method": "quick", "params": {}})
    d.receive({"id": 8, "type": "cancel"})
    await d.drain()
    assert ran == [] and sent.reply(8)["error"]["name"] == ABORT_ERROR


async def test_cancel_only_touches_its_own_call_and_a_late_cancel_is_ignored() -> None:
    gate = asyncio.Event()

    async def waits(params: dict[str, Any], ctx: CallContext) -> Any:
        await gate.wait()
        return params["n"]

    d, sent = make(waits=waits)
    d.receive({"id": 1, "type": "call", "method": "waits", "params": {"n": 1}})
    d.receive({"id": 2, "type": "call", "method": "waits", "params": {"n": 2}})
    await asyncio.sleep(0)
    d.receive({"id": 1, "type": "cancel"})
    gate.set()
    await d.drain()
    assert sent.reply(1)["error"]["name"] == ABORT_ERROR
    assert sent.reply(2) == {"id": 2, "type": "result", "value": 2}
    count = len(sent)
    d.receive({"id": 2, "type": "cancel"})  # crossed the reply: nothing more is sent
    d.receive({"id": 99, "type": "cancel"})
    assert len(sent) == count


async def test_unknown_method_is_a_protocol_error_with_the_id() -> None:
    d, sent = make()
    d.receive({"id": 9, "type": "call", "method": "nope", "params": {}})
    error = sent.reply(9)["error"]
    assert error["name"] == "ProtocolError" and "nope" in error["message"]
    assert "echo" in error["hint"]
    assert d.in_flight == 0


@pytest.mark.parametrize(
    ("message", "reply_id"),
    [
        ("not a dict", None),
        (None, None),
        ({"type": "call", "method": "echo"}, None),  # no id
        ({"id": True, "type": "call", "method": "echo"}, None),  # bool is not an id
        ({"id": 1.5, "type": "call", "method": "echo"}, None),
        ({"id": 10, "type": "bogus"}, 10),
        ({"id": 11}, 11),
        ({"id": 12, "type": "call"}, 12),  # no method
        ({"id": 13, "type": "call", "method": 5}, 13),
        ({"id": 14, "type": "call", "method": "echo", "params": [1, 2]}, 14),
    ],
)
async def test_a_malformed_message_gets_a_protocol_error_and_the_dispatcher_goes_on(
    message: object, reply_id: int | None
) -> None:
    d, sent = make()
    d.receive(message)
    assert sent == [sent.reply(reply_id)]
    assert sent[0]["type"] == "error" and sent[0]["error"]["name"] == "ProtocolError"
    d.receive({"id": 100, "type": "call", "method": "echo", "params": {}})
    await d.drain()
    assert sent.reply(100)["type"] == "result"


async def test_a_duplicate_id_in_flight_is_a_protocol_error_and_the_first_call_completes() -> None:
    gate = asyncio.Event()

    async def waits(params: dict[str, Any], ctx: CallContext) -> Any:
        await gate.wait()
        return "first"

    d, sent = make(waits=waits)
    d.receive({"id": 1, "type": "call", "method": "waits", "params": {}})
    d.receive({"id": 1, "type": "call", "method": "echo", "params": {}})
    assert [m["error"]["name"] for m in sent.of(1, "error")] == ["ProtocolError"]
    assert d.in_flight == 1
    gate.set()
    await d.drain()
    assert sent.of(1, "result") == [{"id": 1, "type": "result", "value": "first"}]
    # once answered, the id may be used again
    d.receive({"id": 1, "type": "call", "method": "echo", "params": {}})
    await d.drain()
    assert len(sent.of(1, "result")) == 2


async def test_the_dispatcher_keeps_working_after_errors() -> None:
    d, sent = make()
    for i, method in enumerate(["crashes", "fails", "nope", "echo"]):
        d.receive({"id": i, "type": "call", "method": method, "params": {}})
    await d.drain()
    assert [sent.reply(i)["type"] for i in range(4)] == ["error", "error", "error", "result"]


async def test_a_handler_that_is_not_async_fails_its_call_not_the_dispatcher() -> None:
    def sync_handler(params: dict[str, Any], ctx: CallContext) -> Any:
        raise RuntimeError("sync")

    d, sent = make(sync=sync_handler)
    d.receive({"id": 1, "type": "call", "method": "sync", "params": {}})
    await d.drain()
    assert sent.reply(1)["error"]["name"] == "InternalError"


async def test_a_failing_send_does_not_break_the_dispatcher(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[dict[str, Any]] = []

    def flaky(message: dict[str, Any]) -> None:
        calls.append(message)
        if len(calls) == 1:
            raise RuntimeError("postMessage failed")

    d = Dispatcher({"echo": echo}, flaky)
    d.receive({"id": 1, "type": "call", "method": "echo", "params": {}})
    await d.drain()
    d.receive({"id": 2, "type": "call", "method": "echo", "params": {}})
    await d.drain()
    assert [m["id"] for m in calls] == [1, 2] and calls[1]["type"] == "result"
    assert d.in_flight == 0


@dataclasses.dataclass
class Point:
    x: float
    tags: tuple[str, ...]


class Wired:
    def to_wire(self) -> dict[str, Any]:
        return {"kind": "wired", "values": np.array([[1, 2]])}


def test_to_plain_converts_numpy_dataclasses_to_wire_and_tuples() -> None:
    value = {
        "array": np.array([[1.5, 2.0]], dtype=np.float32),
        "scalar": np.float32(0.5),
        "flag": np.bool_(True),
        "point": Point(1.0, ("a", "b")),
        "wired": Wired(),
        "tuple": (1, (2, 3)),
        "none": None,
    }
    plain = to_plain(value)
    assert plain == {
        "array": [[1.5, 2.0]],
        "scalar": 0.5,
        "flag": True,
        "point": {"x": 1.0, "tags": ["a", "b"]},
        "wired": {"kind": "wired", "values": [[1, 2]]},
        "tuple": [1, [2, 3]],
        "none": None,
    }
    assert type(plain["scalar"]) is float and type(plain["flag"]) is bool
    assert json.loads(json.dumps(plain)) == plain


def test_to_plain_refuses_what_cannot_cross_to_js() -> None:
    with pytest.raises(TypeError):
        to_plain(object())
    with pytest.raises(TypeError, match="key"):
        to_plain({1: "a"})
    with pytest.raises(TypeError):
        to_plain({"a": {1, 2}})


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_to_plain_turns_scalar_subclasses_into_the_base_types() -> None:
    plain = to_plain([np.float64(0.25), Level.HIGH, np.int32(7)])
    assert plain == [0.25, 3, 7] and [type(x) for x in plain] == [float, int, int]
    with pytest.raises(TypeError):
        to_plain(Color.RED)  # a plain Enum is not data: say what to send instead
