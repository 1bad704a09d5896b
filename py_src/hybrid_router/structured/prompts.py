"""What a model is told for structured output: the schema in the conversation, and the repair round.

Both sides get the schema as a system instruction (the cloud also as ``response_format``; the device
also as its decoding constraint): the constraint decides the shape, the instruction helps the model
fill it with the right content. The repair round shows the model its answer and the validator's errors,
and asks once more.
"""

from __future__ import annotations

from collections.abc import Sequence

from hybrid_router.chat import ChatMessage
from hybrid_router.structured.schema import Schema

__all__ = ["instructed", "repair"]


def instruction(schema: Schema) -> str:
    return (
        "Answer with one JSON value and nothing else (no prose, no code fence). "
        f"It must match this JSON Schema: {schema.to_json()}"
    )


def instructed(messages: Sequence[ChatMessage], schema: Schema) -> tuple[ChatMessage, ...]:
    """The conversation with the schema's instruction added to its system message (or as a first one)."""
    text = instruction(schema)
    if messages and messages[0].role == "system":
        first = ChatMessage("system", f"{messages[0].content}\n\n{text}")
        return (first, *messages[1:])
    return (ChatMessage("system", text), *messages)


def repair(messages: Sequence[ChatMessage], answer: str, errors: Sequence[str]) -> tuple[ChatMessage, ...]:
    """The conversation once more, with the failed answer and what was wrong with it."""
    listed = "\n".join(f"- {e}" for e in errors)
    return (
        *messages,
        ChatMessage("assistant", answer[:4000]),
        ChatMessage(
            "user",
            f"That answer does not match the schema:\n{listed}\n"
            "Answer again with only the corrected JSON value.",
        ),
    )
