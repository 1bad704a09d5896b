"""The worker protocol, pure Python: calls matched to replies by id, cancellation, errors as data.

Page -> worker: ``{"id", "type": "call", "method", "params"}`` and ``{"id", "type": "cancel"}``.
Worker -> page, same id: ``result`` (``value``), ``error`` (``error``: name, message, hint, details),
``progress`` (``event``) and ``chunk`` (``value``). Every call gets exactly one ``result`` or ``error``;
a cancelled call gets the error named :data:`~hybrid_router.errors.ABORT_ERROR`. A malformed message
gets a ``ProtocolError`` reply (with its id when it has one) and the dispatcher keeps going.

Values leave through :func:`to_plain`, so what ``send`` receives is data the edge can hand to JS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hybrid_router.errors import ABORT_ERROR, BusyError, HybridRouterError, ProtocolError, error_to_wire

__all__ = ["MAX_IN_FLIGHT", "CallContext", "Dispatcher", "Handler", "Send", "Unstarted", "to_plain"]

#: Calls a worker holds at once (running or queued for their model); more are refused with ``BusyError``.
MAX_IN_FLIGHT = 64

logger = logging.getLogger(__name__)

CallId = int | str
Send = Callable[[dict[str, Any]], None]
Handler = Callable[[dict[str, Any], "CallContext"], Awaitable[Any]]
Unstarted = Callable[[str, Mapping[str, Any], str], None]

# Exact types: subclasses (numpy.float64 is a float, an IntEnum an int) are converted below.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def to_plain(value: Any) -> Any:
    """``value`` as plain data (dict with str keys, list, str, int, float, bool, None).

    numpy arrays and scalars become lists and Python numbers, objects with ``to_wire()`` their wire
    form, other dataclasses a dict of their fields, tuples lists. Anything else is a ``TypeError``
    (a handler bug, which reaches the page as an ``InternalError``).
    """
    if type(value) in _SCALARS:
        return value
    if isinstance(value, list | tuple):
        return [item if type(item) in _SCALARS else to_plain(item) for item in value]
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"cannot send a mapping key of type {type(key).__name__}: {key!r}")
            plain[key] = to_plain(item)
        return plain
    to_wire = getattr(value, "to_wire", None)
    if callable(to_wire):
        return to_plain(to_wire())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, without importing numpy here
    if callable(tolist):
        return to_plain(tolist())
    for base in (str, bool, int, float):  # enums and other subclasses of the scalars
        if isinstance(value, base):
            return base(value)
    raise TypeError(f"cannot send a value of type {type(value).__name__} to the page")


def _abort_wire(method: str) -> dict[str, Any]:
    return {
        "name": ABORT_ERROR,
        "message": f"the call to {method!r} was cancelled",
        "hint": "The call was cancelled on request; send it again if you still need the result.",
        "details": {"method": method},
    }


class CallContext:
    """What a handler gets besides its params: the call id and the way to send progress and chunks."""

    __slots__ = ("_send", "id", "method", "started")

    def __init__(self, call_id: CallId, method: str, send: Send) -> None:
        self.id = call_id
        self.method = method
        self._send = send
        #: the handler began (a call cancelled before its first step never does)
        self.started = False

    def progress(self, event: Mapping[str, Any]) -> None:
        self._send({"id": self.id, "type": "progress", "event": to_plain(event)})

    def chunk(self, value: Any) -> None:
        self._send({"id": self.id, "type": "chunk", "value": to_plain(value)})


class Dispatcher:
    """Runs each call as an asyncio task and sends exactly one reply per call through ``send``."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        send: Send,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        on_unstarted: Unstarted | None = None,
    ) -> None:
        """``on_unstarted(method, params, error_name)`` hears of each call whose handler never ran
        (refused as busy, cancelled before its first step), so that the caller can still count it."""
        self._on_unstarted = on_unstarted
        self._handlers = dict(handlers)
        self._send = send
        self.max_in_flight = max_in_flight
        self._tasks: dict[CallId, asyncio.Task[Any]] = {}

    @property
    def in_flight(self) -> int:
        """How many calls have not replied yet."""
        return len(self._tasks)

    def receive(self, message: object) -> None:
        """Handle one message from the page; never raises for a bad message, never blocks.

        Must be called with an event loop running (calls become tasks on it).
        """
        call_id = _id_of(message)
        try:
            self._receive(message, call_id)
        except ProtocolError as exc:
            self._reply(call_id, {"type": "error", "error": _plain_error(exc.to_wire())})

    async def drain(self) -> None:
        """Wait until every call in flight has replied."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _receive(self, message: object, call_id: CallId | None) -> None:
        if not isinstance(message, Mapping):
            raise ProtocolError(
                f"a message must be an object, got {type(message).__name__}", got=type(message).__name__
            )
        kind = message.get("type")
        if call_id is None:
            raise ProtocolError(
                f"a {kind!r} message needs an integer or string id, got {message.get('id')!r}"
            )
        if kind == "call":
            self._start(call_id, message)
        elif kind == "cancel":
            task = self._tasks.get(call_id)
            # A cancel that crosses the reply is normal: the call has already answered, so do nothing.
            if task is not None:
                task.cancel()
        else:
            raise ProtocolError(
                f"unknown message type {kind!r}",
                hint='Send {"type": "call", ...} or {"type": "cancel", ...}; reload the page if it persists.',
                type=repr(kind),
            )

    def _start(self, call_id: CallId, message: Mapping[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params", {})
        if params is None:
            params = {}
        if not isinstance(method, str) or method not in self._handlers:
            raise ProtocolError(
                f"unknown method {method!r}",
                hint=f"Call one of: {', '.join(sorted(self._handlers))}.",
                method=method if isinstance(method, str) else repr(method),
            )
        if not isinstance(params, Mapping):
            raise ProtocolError(
                f"params of {method!r} must be an object, got {type(params).__name__}", method=method
            )
        if call_id in self._tasks:
            raise ProtocolError(
                f"call id {call_id!r} is already in flight",
                hint="Give every call a new id (the client counts them); this is a bug in the client.",
                method=method,
            )
        if len(self._tasks) >= self.max_in_flight:
            busy = BusyError(
                f"{len(self._tasks)} calls are already in flight (the limit is {self.max_in_flight})",
                method=method,
                limit=self.max_in_flight,
            )
            self._reply(call_id, {"type": "error", "error": _plain_error(busy.to_wire())})
            self._unstarted(method, params, "BusyError")
            return
        ctx = CallContext(call_id, method, self._send)
        task = asyncio.get_running_loop().create_task(_run(self._handlers[method], dict(params), ctx))
        self._tasks[call_id] = task
        task.add_done_callback(lambda done: self._finish(ctx, params, done))

    def _unstarted(self, method: str, params: Mapping[str, Any], error_name: str) -> None:
        if self._on_unstarted is None:
            return
        try:
            self._on_unstarted(method, params, error_name)
        except Exception:  # counting must never break a reply
            logger.exception("on_unstarted failed for a call to %r", method)

    def _finish(self, ctx: CallContext, params: Mapping[str, Any], task: asyncio.Task[Any]) -> None:
        # Done callbacks also see tasks cancelled before their first step, which a try/except inside
        # the coroutine would not: every call replies here, once.
        call_id, method = ctx.id, ctx.method
        if self._tasks.get(call_id) is task:
            del self._tasks[call_id]
        if task.cancelled():
            self._reply(call_id, {"type": "error", "error": _abort_wire(method)})
            if not ctx.started:
                self._unstarted(method, params, ABORT_ERROR)
            return
        exc = task.exception()
        if exc is None:
            try:
                value = to_plain(task.result())
            except TypeError as plain_exc:  # the handler returned something that is not data
                exc = plain_exc
            else:
                self._reply(call_id, {"type": "result", "value": value})
                return
        if not isinstance(exc, HybridRouterError):
            logger.error("call %r to %r failed unexpectedly", call_id, method, exc_info=exc)
        self._reply(call_id, {"type": "error", "error": _plain_error(error_to_wire(exc))})

    def _reply(self, call_id: CallId | None, reply: dict[str, Any]) -> None:
        try:
            self._send({"id": call_id, **reply})
        except Exception:  # the edge failed to post; nothing more can reach the page for this call
            logger.exception("could not send the reply to call %r", call_id)


async def _run(handler: Handler, params: dict[str, Any], ctx: CallContext) -> Any:
    # Calling the handler inside the task keeps even a handler that raises before awaiting (or is not
    # async at all) from breaking ``receive``: its error becomes the call's reply.
    ctx.started = True
    return await handler(params, ctx)


def _plain_error(wire: dict[str, Any]) -> dict[str, Any]:
    """An error's wire form with ``details`` made plain (values that are not data become their repr)."""
    details: dict[str, Any] = {}
    for key, value in wire.get("details", {}).items():
        try:
            details[str(key)] = to_plain(value)
        except TypeError:
            details[str(key)] = repr(value)
    return {**wire, "details": details}


def _id_of(message: object) -> CallId | None:
    """The message's id if it is a valid one (an int that is not a bool, or a str), else None."""
    call_id = message.get("id") if isinstance(message, Mapping) else None
    if isinstance(call_id, int | str) and not isinstance(call_id, bool):
        return call_id
    return None
