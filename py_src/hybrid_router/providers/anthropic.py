"""Anthropic's Messages API: ``POST {base_url}/v1/messages``.

- ``x-api-key`` is sent only when a key was configured (in the browser the relay adds it; the page
  never holds one). ``anthropic-version: 2023-06-01`` is always sent: it is not a secret, and the API
  rejects requests without it if the relay does not add it.
- System messages are taken out of the list and joined (blank line between) into ``system``; the API
  has no system role inside ``messages``. Their position in the conversation is not kept.
- ``max_tokens`` is required by the API: :attr:`AnthropicProvider.default_max_tokens` when not given.
- Stream events: ``message_start`` (id, model, input tokens), ``content_block_delta`` (``text_delta``),
  ``message_delta`` (stop reason, output tokens so far), ``message_stop``; ``ping`` and unknown events
  are skipped, as Anthropic's versioning policy asks; ``error`` raises ``CloudError``.
- ``tokens_in`` counts cached prompt tokens too (``input_tokens`` + ``cache_creation_input_tokens`` +
  ``cache_read_input_tokens``), like OpenAI's ``prompt_tokens``. Stop reasons are reported in OpenAI's
  words (``end_turn`` -> ``stop``, ``max_tokens`` -> ``length``, ...).
- Structured output (a ``response_format`` of type ``json_schema`` whose schema is an object): Anthropic
  has no response format, so the schema becomes one tool, :data:`ANSWER_TOOL`, that the model is forced
  to call (``tool_choice``); its input is the answer, returned as JSON text (streamed from its
  ``input_json_delta`` events), and its ``tool_use`` stop reads ``stop``. Another schema is left to the
  instructions (and the router's validator).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..sse import Event
from ..tools import Tool, anthropic_messages, anthropic_tool_choice, anthropic_tools, calls_from_anthropic
from .base import ChatMessage, Completion, Delta, GenerateOptions, StreamParser, Usage
from .http import HTTPProvider, text_or_none

__all__ = ["ANSWER_TOOL", "ANTHROPIC_VERSION", "AnthropicProvider"]

ANTHROPIC_VERSION = "2023-06-01"
#: the one tool structured output forces (its input is the answer)
ANSWER_TOOL = "answer"

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def _finish_reason(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _STOP_REASONS.get(value, value)


def _answered(finish: str | None, answered: bool) -> str | None:
    """The forced answer tool's ``tool_use`` stop is the answer's end."""
    return "stop" if answered and finish == "tool_calls" else finish


def _forced_schema(response_format: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The object schema structured output asks for, where the answer tool can carry it."""
    spec = _get(response_format, "json_schema") if _get(response_format, "type") == "json_schema" else None
    schema = _get(spec, "schema")
    return schema if isinstance(schema, Mapping) and schema.get("type") == "object" else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _get(mapping: object, key: str) -> object:
    return mapping.get(key) if isinstance(mapping, Mapping) else None


def _tokens_in(usage: Mapping[str, Any]) -> int | None:
    if not isinstance(usage.get("input_tokens"), int):
        return None
    return sum(
        _int(usage.get(k)) for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )


class AnthropicProvider(HTTPProvider):
    """A provider speaking Anthropic's Messages API."""

    default_name = "anthropic"
    api = "Anthropic Messages"
    max_temperature = 1.0
    default_max_tokens = 1024

    def _path(self) -> str:
        return "/v1/messages"

    def _auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def _body(self, messages: list[ChatMessage], options: GenerateOptions, *, stream: bool) -> dict[str, Any]:
        system = [m.content for m in messages if m.role == "system"]
        turns = [{"role": m.role, "content": m.content} for m in messages if m.role != "system"]
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": options.max_tokens or self.default_max_tokens,
            "messages": turns,
        }
        if system:
            body["system"] = "\n\n".join(system)
        if options.temperature is not None:
            body["temperature"] = options.temperature
        if options.stop:
            body["stop_sequences"] = list(options.stop)
        if stream:
            body["stream"] = True
        schema = _forced_schema(options.response_format)
        if options.tools:
            system_text, body["messages"] = anthropic_messages(messages)
            if system_text:
                body["system"] = system_text
            body["tools"] = anthropic_tools(options.tools)
            body["tool_choice"] = anthropic_tool_choice(options.tool_choice)
        elif schema is not None:
            body["tools"] = [
                {"name": ANSWER_TOOL, "description": "Give the answer in this form.", "input_schema": schema}
            ]
            body["tool_choice"] = {"type": "tool", "name": ANSWER_TOOL}
        return body

    def _parse_completion(self, payload: Any) -> Completion:
        if not isinstance(payload, Mapping):
            raise self.unexpected("a response")
        if payload.get("type") == "error":
            raise self.error_event(payload)
        content = payload.get("content")
        if not isinstance(content, list):
            raise self.unexpected("a response without content")
        text = "".join(
            block["text"]
            for block in content
            if isinstance(block, Mapping)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        )
        answers = [
            json.dumps(block.get("input"), ensure_ascii=False)
            for block in content
            if isinstance(block, Mapping)
            and block.get("type") == "tool_use"
            and block.get("name") == ANSWER_TOOL
        ]
        usage = payload.get("usage")
        tokens_in = _tokens_in(usage) if isinstance(usage, Mapping) else None
        return Completion(
            text=answers[0] if answers else text,
            usage=None if tokens_in is None else Usage(tokens_in, _int(_get(usage, "output_tokens"))),
            model=str(payload.get("model") or self.model),
            finish_reason=_answered(_finish_reason(payload.get("stop_reason")), bool(answers)),
            raw_id=text_or_none(payload.get("id")),
        )

    def _stream_parser(self) -> StreamParser:
        return _EventParser(self)

    def _with_tool_calls(
        self, payload: Any, completion: Completion, tools: Sequence[Tool], choice: str
    ) -> Completion:
        """The answer's ``tool_use`` blocks checked against ``tools``."""
        calls = calls_from_anthropic(tools, payload["content"])  # _parse_completion checked the shape
        if not calls:
            return completion
        return dataclasses.replace(completion, tool_calls=calls, finish_reason="tool_calls")


class _EventParser:
    """Reads the Messages stream events up to ``message_stop``."""

    def __init__(self, provider: AnthropicProvider) -> None:
        self._provider = provider
        self.done = False
        self._parts: list[str] = []
        self._id: str | None = None
        self._model: str | None = None
        self._tokens_in: int | None = None
        self._tokens_out = 0
        self._finish_reason: str | None = None
        self._answered = False

    def feed(self, event: Event) -> list[Delta]:
        if event.event == "ping":
            return []
        payload = self._provider.parse_json(event.data, "a stream event")
        if not isinstance(payload, Mapping):
            raise self._provider.unexpected("a stream event")
        kind = payload.get("type") or event.event
        if kind == "error":
            raise self._provider.error_event(payload)
        if kind == "message_start":
            self._start(payload.get("message"))
        elif kind == "content_block_start":
            block = payload.get("content_block")
            if isinstance(block, Mapping) and block.get("type") == "text":
                return self._text(block.get("text"))
        elif kind == "content_block_delta":
            delta = payload.get("delta")
            if isinstance(delta, Mapping) and delta.get("type") == "text_delta":
                return self._text(delta.get("text"))
            if isinstance(delta, Mapping) and delta.get("type") == "input_json_delta":
                self._answered = True  # the forced answer tool's input, as it is written
                return self._text(delta.get("partial_json"))
        elif kind == "message_delta":
            self._message_delta(payload)
        elif kind == "message_stop":
            self.done = True
        return []

    def _start(self, message: object) -> None:
        if not isinstance(message, Mapping):
            raise self._provider.unexpected("a message_start event without a message")
        self._id = text_or_none(message.get("id"))
        self._model = text_or_none(message.get("model"))
        usage = message.get("usage")
        if isinstance(usage, Mapping):
            self._tokens_in = _tokens_in(usage)
            self._tokens_out = _int(usage.get("output_tokens"))

    def _text(self, text: object) -> list[Delta]:
        if not isinstance(text, str) or not text:
            return []
        self._parts.append(text)
        return [Delta(text)]

    def _message_delta(self, payload: Mapping[str, Any]) -> None:
        delta = payload.get("delta")
        if isinstance(delta, Mapping) and delta.get("stop_reason") is not None:
            self._finish_reason = _finish_reason(delta.get("stop_reason"))
        usage = payload.get("usage")
        if isinstance(usage, Mapping):
            # message_delta counts are cumulative; newer API versions repeat the input counts here
            if isinstance(usage.get("output_tokens"), int):
                self._tokens_out = usage["output_tokens"]
            self._tokens_in = _tokens_in(usage) or self._tokens_in

    def finish(self) -> Completion:
        provider = self._provider
        if not self.done:
            raise provider.cut_short("message_stop")
        return Completion(
            text="".join(self._parts),
            usage=None if self._tokens_in is None else Usage(self._tokens_in, self._tokens_out),
            model=self._model or provider.model,
            finish_reason=_answered(self._finish_reason, self._answered),
            raw_id=self._id,
        )
