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
- a model that writes its call as JSON text instead of the API's ``tool_calls`` (small open models behind
  llama-server do: Qwen2.5-Coder-0.5B answers ``{"name": ..., "arguments": {...}}`` without its chat
  template's ``<tool_call>`` tags) is read by :func:`calls_from_text`, checked the same way;
- tools run only in the cloud: the device's chat model cannot pick a tool (the routing's rule 0,
  :data:`hybrid_router.routing.rules.TOOLS_RULE`); a relay that does not forward tools answers 400
  ``relay_field_not_allowed``, which :func:`relay_refusal` turns into a ``PolicyError`` naming the flag.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hybrid_router.errors import CloudError, PolicyError, ToolCallError, ValidationError
from hybrid_router.structured.schema import Schema
from hybrid_router.structured.validate import check

__all__ = [
    "CHOICES",
    "MAX_TOOLS",
    "RELAY_FLAG",
    "Tool",
    "ToolCall",
    "ToolMessage",
    "Turn",
    "anthropic_messages",
    "anthropic_tool_choice",
    "anthropic_tools",
    "calls_from_anthropic",
    "calls_from_openai",
    "calls_from_text",
    "check_call",
    "openai_messages",
    "openai_tool_choice",
    "openai_tools",
    "parse_tool_choice",
    "parse_tool_messages",
    "parse_tools",
    "relay_refusal",
]

MAX_TOOLS = 64
CHOICES = ("auto", "none", "required")
#: how the relay's operator lets tool calls through (hybrid_router_relay)
RELAY_FLAG = "--allow-tools (HYBRID_ROUTER_RELAY_ALLOW_TOOLS=1)"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMPTY: Mapping[str, Any] = {"type": "object", "properties": {}}
_TOOL_HINT = 'Pass tools: [{ name: "get_weather", description: "...", parameters: { type: "object", ... } }].'


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


@dataclass(frozen=True, slots=True)
class ToolMessage:
    """One message of a conversation with tools: ``role`` system/user/assistant/tool; an assistant's
    ``tool_calls`` (the calls it made, ``content`` then may be empty); a tool's ``tool_call_id``."""

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


_MSG_HINT = (
    'Send the assistant\'s answer back as {role: "assistant", content: "", toolCalls: [...]} and each '
    'result as {role: "tool", toolCallId: "<the call\'s id>", content: "<the result as text>"}.'
)


def parse_tool_messages(messages: object, tools: Sequence[Tool]) -> tuple[ToolMessage, ...]:
    """A conversation with tool rounds (the page's shape: ``toolCalls``, ``toolCallId``): each tool
    result answers a call an earlier assistant message made; the calls are checked against ``tools``."""
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise ValidationError("messages must be a non-empty array", hint=_MSG_HINT, field="messages")
    out: list[ToolMessage] = []
    called: set[str] = set()
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping) or set(message) - {"role", "content", "toolCalls", "toolCallId"}:
            raise ValidationError(
                f"{where} must be an object with role and content", hint=_MSG_HINT, field=where
            )
        role, content = message.get("role"), message.get("content", "")
        if role not in ("system", "user", "assistant", "tool") or not isinstance(content, str):
            raise ValidationError(
                f"{where} needs a role (system, user, assistant, tool) and a string content",
                hint=_MSG_HINT,
                field=where,
            )
        calls: tuple[ToolCall, ...] = ()
        if "toolCalls" in message:
            raw = message["toolCalls"]
            if role != "assistant" or not isinstance(raw, Sequence) or isinstance(raw, str):
                raise ValidationError(
                    f"{where}.toolCalls is an assistant's list of calls", hint=_MSG_HINT, field=where
                )
            try:
                calls = tuple(
                    check_call(tools, str(c.get("id")), c.get("name"), c.get("arguments"))
                    for c in raw
                    if isinstance(c, Mapping)
                )
            except ToolCallError as exc:
                raise ValidationError(
                    f"{where}.toolCalls: {exc.message}", hint=_MSG_HINT, field=where
                ) from exc
            called.update(c.id for c in calls)
        call_id = message.get("toolCallId")
        if (role == "tool") != (call_id is not None) or (call_id is not None and call_id not in called):
            raise ValidationError(
                f"{where}: a tool message needs the toolCallId of an earlier assistant message's call",
                hint=_MSG_HINT,
                field=where,
            )
        out.append(ToolMessage(str(role), content, calls, None if call_id is None else str(call_id)))
    return tuple(out)


class Turn(Protocol):
    """What the providers' message writers read (:class:`ToolMessage`, ``chat.ChatMessage``)."""

    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def tool_calls(self) -> tuple[ToolCall, ...]: ...
    @property
    def tool_call_id(self) -> str | None: ...


def openai_messages(messages: Sequence[Turn]) -> list[dict[str, Any]]:
    """Chat Completions' messages: an assistant's ``tool_calls`` (arguments as a JSON string), then
    ``role: "tool"`` results with their ``tool_call_id``."""
    out: list[dict[str, Any]] = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            item["content"] = m.content or None
            item["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(dict(c.arguments))},
                }
                for c in m.tool_calls
            ]
        if m.tool_call_id is not None:
            item["tool_call_id"] = m.tool_call_id
        out.append(item)
    return out


def anthropic_messages(messages: Sequence[Turn]) -> tuple[str, list[dict[str, Any]]]:
    """The Messages API's ``(system, messages)``: an assistant's calls as ``tool_use`` blocks, the results
    as ``tool_result`` blocks of one user message (consecutive results merged, as the API requires)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)}
                for c in m.tool_calls
            ]
            out.append({"role": "assistant", "content": blocks})
            continue
        out.append({"role": m.role, "content": m.content})
    return system, out


def relay_refusal(exc: CloudError) -> PolicyError | None:
    """A relay's refusal of tool calling (HTTP 400 ``relay_field_not_allowed`` about tools) as the
    ``PolicyError`` the caller sees, naming the relay's flag; None for any other error."""
    details = exc.details
    if details.get("status") != 400 or details.get("error_type") != "relay_field_not_allowed":
        return None
    if "tool" not in exc.message:
        return None
    return PolicyError(
        f"the relay does not forward tool calling: {exc.message}",
        hint=f"Start the relay with {RELAY_FLAG} (serve.py or relay.py), or call without tools.",
        relay_flag="--allow-tools",
        status=400,
        error_type="relay_field_not_allowed",
    )


def calls_from_text(tools: Sequence[Tool], text: str, choice: str) -> tuple[ToolCall, ...]:
    """Calls a model wrote as text (see the module docstring): a JSON object ``{"name", "arguments"}`` (or a
    list of them), bare, in a code fence or in ``<tool_call>`` tags, naming one of ``tools``. The whole
    answer must be the call(s), except where ``choice`` demands a call (``"required"`` or a tool's name):
    then the first call is taken and what the model wrote after it is dropped. None found: ``()``."""
    if choice == "none" or not tools:
        return ()
    body = text.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, re.S)
    if fence:
        body = fence.group(1)
    tags = re.findall(r"<tool_call>\s*(.*?)\s*</tool_call>", body, re.S)
    items: list[Any] = []
    try:
        if tags:
            items = [json.loads(tag) for tag in tags]
        else:
            value, end = json.JSONDecoder().raw_decode(body)
            if body[end:].strip() and choice == "auto":
                return ()
            items = value if isinstance(value, list) else [value]
    except ValueError:
        return ()
    names = {t.name for t in tools}
    if not items or not all(
        isinstance(i, Mapping) and set(i) <= {"name", "arguments"} and i.get("name") in names for i in items
    ):
        return ()
    return tuple(
        check_call(tools, f"call_{uuid.uuid4().hex[:12]}", item["name"], item.get("arguments", {}))
        for item in items
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
