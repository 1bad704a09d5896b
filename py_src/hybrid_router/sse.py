"""An incremental server-sent-events parser, after the WHATWG HTML "event stream" rules.

Bytes go in as they arrive (any split: inside a line, inside a ``\\r\\n``, inside a UTF-8 character);
events come out when a blank line ends them::

    decoder = SSEDecoder()
    for chunk in chunks:
        for event in decoder.feed(chunk):
            ...
    decoder.finish()

What the spec asks, and this does: lines end at ``\\r\\n``, ``\\n`` or ``\\r``; one leading BOM is
dropped; ``:comment`` lines are ignored; a field without a colon is a field with an empty value; one
space after the colon is dropped; ``data`` lines are joined with ``\\n``; ``id`` is kept for later events
(and ignored when it contains NUL); ``retry`` is read only when it is all ASCII digits; an event with no
``data`` is not dispatched; an unterminated event at the end of the stream is discarded.

The parser knows nothing about JSON: whether ``data`` is what the provider promised is checked (and
reported as a ``CloudError``) by the provider layer.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["Event", "SSEDecoder"]

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    """One dispatched event. ``event`` defaults to ``"message"``; ``id`` is the last event id seen."""

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Feed bytes, get events. One decoder per response body."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._at_start = True  # a BOM may still come
        self._skip_lf = False  # the previous text ended in "\r": a "\n" next belongs to it
        self._line: list[str] = []  # the unterminated line so far
        self._data: list[str] = []
        self._event_type = ""
        self._retry: int | None = None
        self._seen_field = False  # any field since the last dispatch (for `discarded`)
        #: The last event id (persists across events, as the spec says).
        self.last_event_id = ""
        #: The reconnection time the server asked for, in milliseconds, if any.
        self.retry: int | None = None
        #: True when :meth:`finish` dropped an unterminated event (the stream was cut mid-event).
        self.discarded = False

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse the next piece of the body; return the events it completed (often none)."""
        return self._feed_text(self._utf8.decode(chunk))

    def finish(self) -> list[Event]:
        """End of the body. Returns what it completes: by the spec, nothing (an unterminated event
        is dropped, and :attr:`discarded` says whether there was one)."""
        events = self._feed_text(self._utf8.decode(b"", final=True))
        self.discarded = bool(self._line) or self._seen_field
        self._line.clear()
        self._reset_event()
        return events

    def _feed_text(self, text: str) -> list[Event]:
        if not text:
            return []
        if self._at_start:
            self._at_start = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        events: list[Event] = []
        start = 0
        for match in _LINE_END.finditer(text):
            self._line.append(text[start : match.start()])
            line = "".join(self._line)
            self._line.clear()
            self._process_line(line, events)
            start = match.end()
        if start < len(text):
            self._line.append(text[start:])
        elif text.endswith("\r"):
            self._skip_lf = True
        return events

    def _process_line(self, line: str, events: list[Event]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == ":":
            return
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        self._seen_field = True
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value and value.isascii() and value.isdigit():
                self._retry = self.retry = int(value)
        # any other field name is ignored, as the spec says

    def _dispatch(self, events: list[Event]) -> None:
        if self._data:
            events.append(
                Event(
                    data="\n".join(self._data),
                    event=self._event_type or "message",
                    id=self.last_event_id,
                    retry=self._retry,
                )
            )
        self._reset_event()

    def _reset_event(self) -> None:
        self._data = []
        self._event_type = ""
        self._retry = None
        self._seen_field = False
