"""A generation request, checked once where it enters: ``prompt`` or ``messages``, ``max_tokens``,
``temperature``, ``route``, ``model``; and :class:`ChatMessage`, the one message type from the wire to the
model or the provider.

The page sends ``prompt`` (a string, sent as one user message) *or* ``messages`` (OpenAI chat
messages ``[{"role": "system"|"user"|"assistant", "content": str}, ...]`` with at least one user
message, the last of which is not blank). ``max_tokens`` is 1..4096, the answer's budget on whichever
side answers; left out, each side has its own (:data:`DEFAULT_MAX_TOKENS`: 512 on the device, 1024 in the
cloud, see below). ``temperature`` is 0..2 (default: greedy on the device, the provider's default in the
cloud); ``route`` is ``"auto"``, ``"local"`` or ``"cloud"`` (default: the policy's); ``model`` names the
on-device chat model (default: the policy's ``chat_model``, else the largest that fits the device:
:func:`~hybrid_router.routing.recommend.choose_chat_model`, which checks it against the manifest and the
device). Every failure is a ``ValidationError`` with a hint.

The default budgets fit an ordinary answer, so one is not cut mid-line (the old 128 was: a cloud answer of
a few paragraphs ends near 300-600 tokens, a code answer near 400-900):

- the device, **512**: SmolLM2-135M's everyday answers (a few sentences, a short list, a recipe) end well
  within it; its window is 8192 tokens, so 512 leaves a long conversation room and a greedy loop stops
  after ~512 tokens (a few seconds on wasm) instead of running on;
- the cloud, **1024**: a frontier model's answer to a hard prompt (a proof, a function with tests, a
  comparison) fits; the budget's worst case of a call is priced with it, so a larger default would keep
  more of a daily budget reserved while calls are in flight.

An answer that still reaches its budget says so: its ``finish_reason`` (and its route's) is ``"length"``.

Tool calling (:mod:`hybrid_router.tools`): ``tools`` (the tools the model may call) and ``tool_choice``;
with tools, ``messages`` may carry tool rounds (an assistant's ``toolCalls``, a ``role: "tool"`` result
with its ``toolCallId``), checked by :func:`~hybrid_router.tools.parse_tool_messages`. The answer's calls
are in :attr:`GenerateResult.tool_calls`, their arguments checked against each tool's schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from hybrid_router import validation
from hybrid_router.errors import ValidationError
from hybrid_router.route import Route, Target
from hybrid_router.routing.policy import ROUTES
from hybrid_router.tools import Tool, ToolCall, parse_tool_choice, parse_tool_messages, parse_tools

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MAX_TOKENS_CLOUD",
    "DEFAULT_MAX_TOKENS_LOCAL",
    "MAX_MAX_TOKENS",
    "MAX_MESSAGES",
    "MAX_TEMPERATURE",
    "PARAMS",
    "ROLES",
    "ChatMessage",
    "ChatRequest",
    "GenerateResult",
    "Role",
]

#: the answer's budget when a call gives no ``max_tokens``, per side (see the module docstring)
DEFAULT_MAX_TOKENS_LOCAL = 512
DEFAULT_MAX_TOKENS_CLOUD = 1024
DEFAULT_MAX_TOKENS: Mapping[Target, int] = MappingProxyType(
    {"local": DEFAULT_MAX_TOKENS_LOCAL, "cloud": DEFAULT_MAX_TOKENS_CLOUD}
)
MAX_MAX_TOKENS = 4096
MAX_TEMPERATURE = 2.0
MAX_MESSAGES = 512
ROLES = ("system", "user", "assistant")
#: The parameters a generation call accepts (the wire's and :meth:`ChatRequest.parse`'s).
PARAMS = ("prompt", "messages", "max_tokens", "temperature", "route", "model", "tools", "tool_choice")

Role = Literal["system", "user", "assistant", "tool"]
_ROLES: dict[str, Role] = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool"}


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation, as the router, the local model and the providers all take it;
    with tools, an assistant's ``tool_calls`` and a ``"tool"`` result's ``tool_call_id``."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def to_wire(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


_MESSAGES_HINT = 'Pass messages as [{"role": "user", "content": "..."}] (roles: system, user, assistant).'


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A checked generation request; ``messages`` always holds the conversation (a prompt becomes one
    user message). ``temperature`` None means "not given"; ``max_tokens`` None: each side's default
    (:meth:`max_tokens_for`)."""

    messages: tuple[ChatMessage, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    route: str | None = None
    #: the on-device chat model the call names (None: the policy's, else the device's)
    model: str | None = None
    #: the tools the model may call (:mod:`hybrid_router.tools`); auto, none, required or a tool's name
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"

    @classmethod
    def parse(
        cls,
        prompt: object = None,
        *,
        messages: object = None,
        max_tokens: object = None,
        temperature: object = None,
        route: object = None,
        model: object = None,
        tools: object = None,
        tool_choice: object = None,
    ) -> ChatRequest:
        """Check the parameters as they come from the page (see the module docstring)."""
        if (prompt is None) == (messages is None):
            raise ValidationError(
                "pass either prompt or messages" + (", not both" if prompt is not None else ""),
                hint='Pass prompt: "..." for one question, or messages: [...] for a conversation.',
                field="prompt",
            )
        offered = () if tools is None else parse_tools(tools)
        if not offered and tool_choice is not None:
            raise ValidationError(
                "toolChoice needs tools",
                hint="Pass tools: [...] with toolChoice, or leave toolChoice out.",
                field="toolChoice",
            )
        if messages is None:
            conversation = _prompt(prompt)
        else:
            conversation = _tool_messages(messages, offered) if offered else _messages(messages)
        return cls(
            messages=conversation,
            max_tokens=(
                None
                if max_tokens is None
                else validation.positive_int(max_tokens, "max_tokens", maximum=MAX_MAX_TOKENS)
            ),
            temperature=None if temperature is None else _temperature(temperature),
            route=None if route is None else validation.choice(route, ROUTES, "route"),
            model=validation.optional_str(model, "model"),
            tools=offered,
            tool_choice=parse_tool_choice(tool_choice, offered),
        )

    def max_tokens_for(self, target: Target) -> int:
        """The answer's budget on ``target``: the call's ``max_tokens``, else that side's default."""
        return self.max_tokens if self.max_tokens is not None else DEFAULT_MAX_TOKENS[target]

    @property
    def scored(self) -> tuple[str, int]:
        """What the complexity estimate reads: the last user message, and how many user turns came before."""
        users = [m.content for m in self.messages if m.role == "user"]
        return users[-1], len(users) - 1


@dataclass(frozen=True, slots=True)
class GenerateResult:
    """The answer, where it ran and why (``route``), and its usage; ``finish_reason`` is ``"stop"`` (the
    answer ended) or ``"length"`` (it was cut at its ``max_tokens``; ``route.max_tokens`` says how many),
    as the side reported it (the route carries it too)."""

    text: str
    route: Route
    finish_reason: str | None = None
    #: the tools the model called (their arguments checked); None: the call offered no tools
    tool_calls: tuple[ToolCall, ...] | None = None

    @property
    def usage(self) -> dict[str, int]:
        return {"tokens_in": self.route.tokens_in, "tokens_out": self.route.tokens_out}

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "text": self.text,
            "route": self.route.to_wire(),
            "usage": self.usage,
            "finish_reason": self.finish_reason,
        }
        if self.tool_calls is not None:
            wire["tool_calls"] = [call.to_wire() for call in self.tool_calls]
        return wire


def _prompt(prompt: object) -> tuple[ChatMessage, ...]:
    if not isinstance(prompt, str):
        raise ValidationError(
            f"prompt must be a string, got {validation.type_name(prompt)}",
            hint="Pass prompt as a string, or a conversation as messages.",
            field="prompt",
            got=validation.type_name(prompt),
        )
    _check_text(prompt, "prompt")
    if not prompt.strip():
        raise ValidationError("prompt must not be blank", hint="Send a non-empty prompt.", field="prompt")
    return (ChatMessage("user", prompt),)


def _messages(messages: object) -> tuple[ChatMessage, ...]:
    if not isinstance(messages, list | tuple) or not messages:
        raise ValidationError(
            f"messages must be a non-empty array, got {validation.type_name(messages)}"
            + (" (empty)" if isinstance(messages, list | tuple) else ""),
            hint=_MESSAGES_HINT,
            field="messages",
        )
    if len(messages) > MAX_MESSAGES:
        raise ValidationError(
            f"messages has {len(messages)} items, more than the limit of {MAX_MESSAGES}",
            hint="Drop or summarise the oldest turns of the conversation.",
            field="messages",
            count=len(messages),
            limit=MAX_MESSAGES,
        )
    pairs: list[ChatMessage] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise ValidationError(
                f"{where} must be an object, got {validation.type_name(message)}",
                hint=_MESSAGES_HINT,
                field=where,
            )
        if "toolCalls" in message or "toolCallId" in message or message.get("role") == "tool":
            raise ValidationError(
                f"{where} is a tool call or a tool result, but the call offers no tools",
                hint="Pass the conversation's tools (tools: [...]) with messages that hold tool rounds.",
                field=where,
            )
        validation.known_keys(message, ("role", "content"), where=where)
        role = validation.choice(message.get("role"), ROLES, f"{where}.role")
        content = message.get("content")
        if not isinstance(content, str):
            raise ValidationError(
                f"{where}.content must be a string, got {validation.type_name(content)}",
                hint=_MESSAGES_HINT,
                field=f"{where}.content",
                got=validation.type_name(content),
            )
        _check_text(content, f"{where}.content")
        pairs.append(ChatMessage(_ROLES[role], content))
    users = [m.content for m in pairs if m.role == "user"]
    if not users or not users[-1].strip():
        raise ValidationError(
            "messages must contain a user message, and the last one must not be blank",
            hint=_MESSAGES_HINT,
            field="messages",
        )
    return tuple(pairs)


def _tool_messages(messages: object, tools: tuple[Tool, ...]) -> tuple[ChatMessage, ...]:
    """A conversation with tool rounds (:func:`~hybrid_router.tools.parse_tool_messages`), as messages."""
    if isinstance(messages, list | tuple) and len(messages) > MAX_MESSAGES:
        _messages(messages)  # raises the limit's error
    parsed = parse_tool_messages(messages, tools)
    for index, message in enumerate(parsed):
        _check_text(message.content, f"messages[{index}].content")
    if not any(m.role == "user" and m.content.strip() for m in parsed):
        raise ValidationError(
            "messages must contain a user message that is not blank",
            hint=_MESSAGES_HINT,
            field="messages",
        )
    return tuple(ChatMessage(_ROLES[m.role], m.content, m.tool_calls, m.tool_call_id) for m in parsed)


def _check_text(text: str, field: str) -> None:
    if len(text) > validation.MAX_TEXT_CHARS:
        raise ValidationError(
            f"{field} has {len(text)} characters, more than the limit of {validation.MAX_TEXT_CHARS}",
            hint="Shorten the text (or split the work into several calls).",
            field=field,
            length=len(text),
            limit=validation.MAX_TEXT_CHARS,
        )


def _temperature(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_TEMPERATURE
    ):
        raise ValidationError(
            f"temperature must be a number between 0 and {MAX_TEMPERATURE:g}, got {value!r}",
            hint="Pass a temperature in [0, 2] (0: deterministic), or leave it out.",
            field="temperature",
            got=validation.type_name(value),
        )
    return float(value)
