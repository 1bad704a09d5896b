"""Tool calling's pieces, checked where they enter (#18 item 2): the tools a call offers, its
``toolChoice``, the tool calls a model answers with (arguments checked against the tool's schema) and the
messages that carry them back, in OpenAI's and Anthropic's wire shapes.

- a tool is ``{"name", "description"?, "parameters"?}``: a name of letters, digits, ``_`` and ``-``
  (1..64, what both providers accept), ``parameters`` a JSON Schema in structured output's subset
  (:class:`~hybrid_router.structured.schema.Schema`; an object with no properties when left out), at most
  :data:`MAX_TOOLS` tools with distinct names;
- ``toolChoice`` is ``"auto"`` (default), ``"none"``, ``"required"`` or a tool's name, which forces it;
- a model's tool call is checked by :func:`check_call`: an unknown tool or arguments that are not JSON or
  do not validate raise :class:`ToolCallError` (a ``CloudError``: the cloud answered with a call the app
  cannot run) naming the tool and the validator's errors;
- tools run only in the cloud: the device model cannot pick a tool (:data:`CLOUD_REASON`); ``route:
  "local"`` with tools is refused by :func:`local_refusal`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hybrid_router.errors import CloudError, ValidationError
from hybrid_router.structured.schema import Schema
from hybrid_router.structured.validate import check

__all__ = [
    "CHOICES",
    "CLOUD_REASON",
    "CLOUD_RULE",
    "MAX_TOOLS",
    "Tool",
    "ToolCall",
    "ToolCallError",
    "anthropic_tool_choice",
    "anthropic_tools",
    "calls_from_anthropic",
    "calls_from_openai",
    "check_call",
    "local_refusal",
    "openai_tool_choice",
    "openai_tools",
    "parse_tool_choice",
    "parse_tools",
]

MAX_TOOLS = 64
CHOICES = ("auto", "none", "required")
#: the route's rule and reason when a call with tools goes to the cloud
CLOUD_RULE = "tools"
CLOUD_REASON = "tools need the cloud: the device model cannot pick a tool"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMPTY: Mapping[str, Any] = {"type": "object", "properties": {}}
_TOOL_HINT = 'Pass tools: [{ name: "get_weather", description: "...", parameters: { type: "object", ... } }].'


class ToolCallError(CloudError):
    """The model called a tool the call did not offer, or with arguments its schema refuses."""

    default_hint = "Retry the call, force the tool with toolChoice, or simplify the tool's parameters."


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool the model may call: its name, what it does, and its arguments' checked schema."""

    name: str
    description: str
    parameters: Schema


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model made: the provider's id, the tool, and its arguments (checked, parsed)."""

    id: str
    name: str
    arguments: Mapping[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": dict(self.arguments)}


def parse_tools(value: object, field: str = "tools") -> tuple[Tool, ...]:
    """The call's tools (module docstring), or a ``ValidationError`` naming the first wrong one."""
    if not isinstance(value, Sequence) or isinstance(value, str) or not 1 <= len(value) <= MAX_TOOLS:
        raise ValidationError(
            f"{field} must be a list of 1 to {MAX_TOOLS} tools", hint=_TOOL_HINT, field=field
        )
    tools: list[Tool] = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping) or set(item) - {"name", "description", "parameters"}:
            raise ValidationError(
                f"{where} must be an object with name, description and parameters only",
                hint=_TOOL_HINT,
                field=where,
            )
        name, description = item.get("name"), item.get("description", "")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValidationError(
                f"{where}.name must be 1-64 letters, digits, '_' or '-'", hint=_TOOL_HINT, field=where
            )
        if not isinstance(description, str):
            raise ValidationError(f"{where}.description must be a string", hint=_TOOL_HINT, field=where)
        if any(t.name == name for t in tools):
            raise ValidationError(
                f"{where}.name {name!r} is already a tool's name", hint=_TOOL_HINT, field=where
            )
        schema = Schema.parse(item.get("parameters", _EMPTY), f"{where}.parameters")
        if schema.source.get("type") != "object":
            raise ValidationError(
                f"{where}.parameters must be an object schema (a tool's arguments are named)",
                hint=_TOOL_HINT,
                field=where,
            )
        tools.append(Tool(name, description, schema))
    return tuple(tools)


def parse_tool_choice(value: object, tools: Sequence[Tool], field: str = "toolChoice") -> str:
    """``"auto"`` (default), ``"none"``, ``"required"`` or the name of one of ``tools``."""
    if value is None:
        return "auto"
    if isinstance(value, str) and (value in CHOICES or any(t.name == value for t in tools)):
        return value
    names = ", ".join(repr(t.name) for t in tools)
    raise ValidationError(
        f"{field} must be 'auto', 'none', 'required' or a tool's name ({names}), not {value!r}",
        hint="Leave toolChoice out (auto), or name one of the call's tools to force it.",
        field=field,
    )


def check_call(tools: Sequence[Tool], call_id: str, name: object, arguments: object) -> ToolCall:
    """The model's call, its arguments parsed (a JSON string or an object) and checked against its tool."""
    tool = next((t for t in tools if t.name == name), None)
    if tool is None:
        raise ToolCallError(
            f"the model called {name!r}, which is not one of the call's tools",
            tool=str(name),
            tools=[t.name for t in tools],
        )
    value: Any = arguments
    if isinstance(arguments, str):
        try:
            value = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            raise ToolCallError(
                f"the model's arguments for {tool.name!r} are not valid JSON ({exc})",
                tool=tool.name,
                arguments=arguments[:500],
            ) from exc
    errors = check(tool.parameters.root, value)
    if errors:
        raise ToolCallError(
            f"the model's arguments for {tool.name!r} do not match its parameters: {'; '.join(errors)}",
            tool=tool.name,
            errors=errors,
            arguments=value,
        )
    return ToolCall(call_id, tool.name, value)


def local_refusal(tools: Sequence[Tool]) -> ValidationError:
    """The error of a call with tools and ``route: "local"``."""
    return ValidationError(
        f'route "local" cannot call tools: {CLOUD_REASON}',
        hint='Use route "auto" or "cloud" for calls with tools (the relay must allow tools: --allow-tools).',
        field="route",
        tools=[t.name for t in tools],
    )


# --- the providers' wire shapes ----------------------------------------------------------------------


def openai_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """Chat Completions' ``tools``."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": dict(t.parameters.source),
            },
        }
        for t in tools
    ]


def openai_tool_choice(choice: str) -> str | dict[str, Any]:
    return choice if choice in CHOICES else {"type": "function", "function": {"name": choice}}


def anthropic_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """The Messages API's client tools."""
    return [
        {"name": t.name, "description": t.description, "input_schema": dict(t.parameters.source)}
        for t in tools
    ]


def anthropic_tool_choice(choice: str) -> dict[str, Any]:
    kinds = {"auto": "auto", "none": "none", "required": "any"}
    return {"type": kinds[choice]} if choice in kinds else {"type": "tool", "name": choice}


def calls_from_openai(tools: Sequence[Tool], message: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """The checked calls of a Chat Completions answer's ``message.tool_calls`` (none: a text answer)."""
    calls = message.get("tool_calls") or []
    out: list[ToolCall] = []
    for index, call in enumerate(calls if isinstance(calls, list) else []):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            raise ToolCallError(f"the cloud's tool_calls[{index}] has no function", call=call)
        call_id = str(call.get("id") or f"call_{index}")
        out.append(check_call(tools, call_id, function.get("name"), function.get("arguments", "")))
    return tuple(out)


def calls_from_anthropic(tools: Sequence[Tool], content: Sequence[Any]) -> tuple[ToolCall, ...]:
    """The checked calls of a Messages API answer's ``tool_use`` blocks."""
    return tuple(
        check_call(tools, str(block.get("id", f"toolu_{i}")), block.get("name"), block.get("input", {}))
        for i, block in enumerate(content)
        if isinstance(block, Mapping) and block.get("type") == "tool_use"
    )
