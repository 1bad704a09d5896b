"""A structured-output call, checked once where it enters, and its result.

``generate_object`` / ``stream_object`` take a generation's parameters (:mod:`hybrid_router.chat`) plus
``schema`` (the subset of :mod:`.schema`), and answer ``{"object", "text", "route", "usage",
"finish_reason", "repaired"}``: ``object`` the parsed value, valid against the schema; ``repaired`` True
when the first answer failed and the repair round's answer is the one returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hybrid_router.chat import ChatRequest
from hybrid_router.route import Route
from hybrid_router.structured.schema import Schema

__all__ = ["PARAMS", "ObjectRequest", "ObjectResult"]

#: the parameters a structured call accepts (the wire's and :meth:`ObjectRequest.parse`'s)
PARAMS = ("prompt", "messages", "schema", "max_tokens", "temperature", "route")


@dataclass(frozen=True, slots=True)
class ObjectRequest:
    """A checked structured call: the generation request and its schema."""

    chat: ChatRequest
    schema: Schema

    @classmethod
    def parse(
        cls,
        prompt: object = None,
        *,
        messages: object = None,
        schema: object = None,
        max_tokens: object = None,
        temperature: object = None,
        route: object = None,
    ) -> ObjectRequest:
        checked = Schema.parse(schema)
        chat = ChatRequest.parse(
            prompt, messages=messages, max_tokens=max_tokens, temperature=temperature, route=route
        )
        return cls(chat, checked)


@dataclass(frozen=True, slots=True)
class ObjectResult:
    """The object (valid against the schema), the text it was parsed from, where it ran and its usage
    (both rounds' tokens when it was repaired)."""

    object: Any
    text: str
    route: Route
    finish_reason: str | None = None
    repaired: bool = False

    @property
    def usage(self) -> dict[str, int]:
        return {"tokens_in": self.route.tokens_in, "tokens_out": self.route.tokens_out}

    def to_wire(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "text": self.text,
            "route": self.route.to_wire(),
            "usage": self.usage,
            "finish_reason": self.finish_reason,
            "repaired": self.repaired,
        }
