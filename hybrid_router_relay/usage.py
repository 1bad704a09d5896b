"""The token usage an answer reports, read while it passes through (for the spend cap's settlement).

- OpenAI, whole answer: ``usage.prompt_tokens`` / ``completion_tokens``; streamed: the same in the
  last chunk when the call asked ``stream_options.include_usage`` (the page's provider does).
- Anthropic, whole answer: ``usage.input_tokens`` (+ cache creation and cache read) / ``output_tokens``;
  streamed: ``message_start``'s input counts and ``message_delta``'s cumulative output count.

A :class:`UsageMeter` sees every chunk; it keeps at most ``limit`` bytes of a JSON answer and of one
event-stream line, so a huge answer costs no memory (its usage is then unknown, and the call is
charged its worst case).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["UsageMeter"]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class UsageMeter:
    def __init__(self, kind: str, content_type: str, *, limit: int = 4 << 20) -> None:
        self.kind = kind
        self.stream = content_type.split(";")[0].strip().lower() == "text/event-stream"
        self.limit = limit
        self._buffer = bytearray()
        self._overflow = False
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None

    def feed(self, chunk: bytes) -> None:
        if self._overflow:
            if not self.stream:
                return
            newline = chunk.find(b"\n")  # an oversized event line: skip to its end
            if newline < 0:
                return
            self._overflow, chunk = False, chunk[newline + 1 :]
        self._buffer += chunk
        if self.stream:
            *lines, rest = bytes(self._buffer).split(b"\n")
            self._buffer = bytearray(rest)
            for line in lines:
                self._line(line.strip())
        if len(self._buffer) > self.limit:
            self._buffer.clear()
            self._overflow = True

    def finish(self) -> tuple[int, int] | None:
        """(tokens in, tokens out) when the answer said, else None."""
        if self.stream and self._buffer:
            self._line(bytes(self._buffer).strip())
        elif not self.stream and not self._overflow and self._buffer:
            self._payload(bytes(self._buffer))
        self._buffer.clear()
        if self.tokens_in is None or self.tokens_out is None:
            return None
        return self.tokens_in, self.tokens_out

    def _line(self, line: bytes) -> None:
        if line.startswith(b"data:") and b'"usage"' in line:
            self._payload(line[5:])

    def _payload(self, data: bytes) -> None:
        try:
            payload = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(payload, Mapping):
            return
        if self.kind == "anthropic":
            self._anthropic(payload)
        else:
            self._openai(payload.get("usage"))

    def _openai(self, usage: object) -> None:
        if isinstance(usage, Mapping):
            tokens_in, tokens_out = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
            if tokens_in is not None and tokens_out is not None:
                self.tokens_in, self.tokens_out = tokens_in, tokens_out

    def _anthropic(self, payload: Mapping[str, Any]) -> None:
        message = payload.get("message")
        usage = message.get("usage") if isinstance(message, Mapping) else payload.get("usage")
        if not isinstance(usage, Mapping):
            return
        parts = [
            _int(usage.get(k))
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        ]
        if parts[0] is not None:
            self.tokens_in = sum(p or 0 for p in parts)
        out = _int(usage.get("output_tokens"))
        if out is not None:
            self.tokens_out = max(out, self.tokens_out or 0)
