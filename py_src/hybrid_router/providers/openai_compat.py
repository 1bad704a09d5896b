"""OpenAI-compatible chat completions: OpenAI itself, llama.cpp's ``llama-server``, vLLM, Ollama, ...

``POST {base_url}/chat/completions`` (``base_url`` ends in ``/v1`` as for the OpenAI SDK). Streaming asks
for ``stream_options: {"include_usage": true}``: the server then sends a last chunk with
``"choices": []`` and the ``usage`` before ``data: [DONE]``. llama-server adds ``timings`` to its last
chunk; they are not needed here and ignored. An error in the middle of a stream arrives as
``data: {"error": {...}}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ..sse import Event
from ..tools import Tool, calls_from_openai, openai_messages, openai_tool_choice, openai_tools
from .base import ChatMessage, Completion, Delta, GenerateOptions, StreamParser, Usage
from .http import HTTPProvider, text_or_none

__all__ = ["OpenAICompatProvider"]


def _usage(payload: object) -> Usage | None:
    if not isinstance(payload, Mapping):
        return None
    tokens_in, tokens_out = payload.get("prompt_tokens"), payload.get("completion_tokens")
    if not isinstance(tokens_in, int) or not isinstance(tokens_out, int):
        return None
    return Usage(tokens_in=tokens_in, tokens_out=tokens_out)


class OpenAICompatProvider(HTTPProvider):
    """A provider speaking OpenAI's chat completions API (``Authorization: Bearer`` only with a key)."""

    default_name = "openai"
    api = "OpenAI chat completions"

    def _path(self) -> str:
        return "/chat/completions"

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _body(self, messages: list[ChatMessage], options: GenerateOptions, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": openai_messages(messages),
        }
        if options.tools:
            body["tools"] = openai_tools(options.tools)
            body["tool_choice"] = openai_tool_choice(options.tool_choice)
        if options.max_tokens is not None:
            body["max_tokens"] = options.max_tokens
        if options.response_format is not None:
            body["response_format"] = dict(options.response_format)
        if options.temperature is not None:
            body["temperature"] = options.temperature
        if options.stop:
            body["stop"] = list(options.stop)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _parse_completion(self, payload: Any) -> Completion:
        if not isinstance(payload, Mapping):
            raise self.unexpected("a response")
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            raise self.unexpected("a response without choices")
        message = choices[0].get("message")
        if not isinstance(message, Mapping):
            raise self.unexpected("a response without a message")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise self.unexpected("a message whose content is not text")
        return Completion(
            text=content or "",
            usage=_usage(payload.get("usage")),
            model=str(payload.get("model") or self.model),
            finish_reason=text_or_none(choices[0].get("finish_reason")),
            raw_id=text_or_none(payload.get("id")),
        )

    def _stream_parser(self) -> StreamParser:
        return _ChunkParser(self)

    def _with_tool_calls(
        self, payload: Any, completion: Completion, tools: Sequence[Tool], choice: str
    ) -> Completion:
        """``choices[0].message.tool_calls`` checked against ``tools`` (else a call written as text)."""
        message = payload["choices"][0]["message"]  # _parse_completion checked the shape
        calls = calls_from_openai(tools, message)
        if not calls:
            return super()._with_tool_calls(payload, completion, tools, choice)
        return dataclasses.replace(completion, tool_calls=calls, finish_reason="tool_calls")


class _ChunkParser:
    """Reads ``chat.completion.chunk`` events up to ``[DONE]``."""

    def __init__(self, provider: OpenAICompatProvider) -> None:
        self._provider = provider
        self.done = False
        self._parts: list[str] = []
        self._usage: Usage | None = None
        self._finish_reason: str | None = None
        self._id: str | None = None
        self._model: str | None = None

    def feed(self, event: Event) -> list[Delta]:
        if event.data.strip() == "[DONE]":
            self.done = True
            return []
        if event.event not in ("message", "error"):
            return []  # an event kind this parser does not know: skip it
        chunk = self._provider.parse_json(event.data, "a stream event")
        if not isinstance(chunk, Mapping):
            raise self._provider.unexpected("a stream event")
        if event.event == "error" or chunk.get("error") is not None:
            raise self._provider.error_event(chunk)
        self._id = self._id or text_or_none(chunk.get("id"))
        self._model = self._model or text_or_none(chunk.get("model"))
        self._usage = _usage(chunk.get("usage")) or self._usage
        choices = chunk.get("choices")
        if choices is None:
            return []
        if not isinstance(choices, list):
            raise self._provider.unexpected("a stream event whose choices are not a list")
        deltas: list[Delta] = []
        for choice in choices:
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, Mapping) else None
            if isinstance(content, str) and content:
                self._parts.append(content)
                deltas.append(Delta(content))
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                self._finish_reason = reason
        return deltas

    def finish(self) -> Completion:
        provider = self._provider
        if not self.done and self._finish_reason is None:
            raise provider.cut_short("its last event (no finish_reason, no [DONE])")
        return Completion(
            text="".join(self._parts),
            usage=self._usage,
            model=self._model or provider.model,
            finish_reason=self._finish_reason,
            raw_id=self._id,
        )
