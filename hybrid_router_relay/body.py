"""What a request body may ask for: parsed once, checked, and re-serialized for the upstream.

The relay refuses rather than rewrites, so that a caller never gets silently less than it asked for:

- a JSON object only (``relay_bad_json``);
- ``model`` absent (then set to the configured one) or equal to the configured model
  (``relay_model_not_allowed`` otherwise: a body cannot pick a pricier model);
- the output cap: OpenAI's ``max_tokens`` and ``max_completion_tokens``, Anthropic's ``max_tokens``, each
  an integer 1..cap (``relay_max_tokens_over_cap``); when none is given, ``max_tokens`` is set to the cap,
  so every forwarded call has a bounded worst case;
- OpenAI's ``n`` (choices, each billed) only 1;
- only the fields the provider kind's chat API documents for plain text generation
  (``relay_field_not_allowed``): tools, web search, audio, service tiers, stored completions and the like
  cost more or reach further than the router needs;
- OpenAI's ``response_format`` (structured output) only as ``{"type": "text"}``, ``{"type": "json_object"}``
  or ``{"type": "json_schema", "json_schema": {"name", "schema", "strict", "description"}}`` with a schema
  object under :data:`MAX_SCHEMA_CHARS` as JSON (``relay_field_not_allowed``, ``relay_bad_json``): any
  other key is refused (an upstream compiles the schema into a grammar per call: its size is bounded);
- Anthropic's ``tools`` and ``tool_choice`` only as structured output's forced answer: exactly one tool
  ``{"name", "description", "input_schema"}`` (a schema object under :data:`MAX_SCHEMA_CHARS`) and
  ``tool_choice`` ``{"type": "tool", "name": <that tool>}`` (``relay_field_not_allowed`` otherwise);
- tool calling only when the operator opts in (``--allow-tools``, ``HYBRID_ROUTER_RELAY_ALLOW_TOOLS=1``;
  ``allow_tools``): then OpenAI's ``tools`` (at most :data:`MAX_TOOLS` functions
  ``{"type": "function", "function": {"name", "description", "parameters", "strict"}}``, each schema under
  :data:`MAX_SCHEMA_CHARS`), ``tool_choice`` (``"none"``, ``"auto"``, ``"required"`` or one of those
  functions by name) and ``parallel_tool_calls``, and Anthropic's ``tools`` ``{"name", "description",
  "input_schema"}`` with any ``tool_choice``; otherwise these fields, ``role: "tool"`` messages, an
  assistant message's ``tool_calls`` and Anthropic ``tool_use`` / ``tool_result`` blocks are refused
  (``relay_field_not_allowed``, the hint naming the flag), since a tool's arguments and results then
  reach the upstream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .config import CloudConfig
from .errors import RelayError

__all__ = [
    "ALLOWED_FIELDS",
    "MAX_SCHEMA_CHARS",
    "MAX_TOOLS",
    "RESPONSE_FORMATS",
    "TOOL_FIELDS",
    "CheckedBody",
    "check_body",
]

ALLOWED_FIELDS = {
    "openai": frozenset(
        {
            "model",
            "messages",
            "max_tokens",
            "max_completion_tokens",
            "temperature",
            "top_p",
            "n",
            "stop",
            "stream",
            "stream_options",
            "presence_penalty",
            "frequency_penalty",
            "seed",
            "response_format",
            "user",
            "logprobs",
            "top_logprobs",
            "logit_bias",
        }
    ),
    "anthropic": frozenset(
        {
            "model",
            "messages",
            "system",
            "max_tokens",
            "temperature",
            "top_p",
            "top_k",
            "stop_sequences",
            "stream",
            "metadata",
            "tools",
            "tool_choice",
        }
    ),
}
#: the fields forwarded only when the relay allows tools (``allow_tools``)
TOOL_FIELDS = {
    "openai": frozenset({"tools", "tool_choice", "parallel_tool_calls"}),
    "anthropic": frozenset({"tools", "tool_choice"}),
}
#: the most tools one request may declare
MAX_TOOLS = 64
_TOOLS_HINT = (
    "The relay's operator enables tool calling with --allow-tools (HYBRID_ROUTER_RELAY_ALLOW_TOOLS=1); "
    "until then send no tools, tool_choice or tool messages."
)
#: OpenAI's response_format: the types forwarded, and the keys of a json_schema
RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
_JSON_SCHEMA_KEYS = frozenset({"name", "schema", "strict", "description"})
#: the longest schema forwarded (compact JSON; the router's own limit is the same)
MAX_SCHEMA_CHARS = 16_000
_CAP_FIELDS = {"openai": ("max_tokens", "max_completion_tokens"), "anthropic": ("max_tokens",)}
_NOT_RETRIED = "Fix the request; the relay will refuse it again as it is."


@dataclass(frozen=True)
class CheckedBody:
    """The body to forward, and what bounds its cost."""

    data: bytes
    max_output_tokens: int
    stream: bool


def _bad(kind: str, message: str, hint: str = _NOT_RETRIED) -> RelayError:
    return RelayError(400, kind, message, hint=hint)


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 80 else text[:77] + "..."


def check_body(
    raw: bytes, cloud: CloudConfig, max_tokens_cap: int, *, allow_tools: bool = False
) -> CheckedBody:
    """The checked body (see the module docstring), or a ``RelayError`` saying what to change."""
    try:
        body: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad("relay_bad_json", "the request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise _bad("relay_bad_json", "the request body is not a JSON object")
    allowed = ALLOWED_FIELDS[cloud.kind] | (TOOL_FIELDS[cloud.kind] if allow_tools else frozenset())
    extra = sorted(set(body) - allowed)
    if extra and set(extra) <= TOOL_FIELDS["openai"]:
        raise _bad(
            "relay_field_not_allowed",
            f"this relay does not forward tool calling (the field(s) {_short(extra[:5])})",
            _TOOLS_HINT,
        )
    if extra:
        raise _bad(
            "relay_field_not_allowed",
            f"the relay does not forward the field(s) {_short(extra[:5])}",
            f"Send only {', '.join(sorted(ALLOWED_FIELDS[cloud.kind]))}.",
        )
    model = body.setdefault("model", cloud.model)
    if model != cloud.model:
        raise _bad(
            "relay_model_not_allowed",
            f"this relay serves only the model {cloud.model!r}, not {_short(model)}",
            f"Ask for {cloud.model!r} (GET /api/cloud/config names it), or leave model out.",
        )
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise _bad("relay_bad_json", "the request has no messages (a non-empty list)")
    if cloud.kind == "openai" and body.get("n", 1) != 1:
        raise _bad("relay_field_not_allowed", "the relay asks for one choice only (n must be 1)")
    if not isinstance(body.get("stream", False), bool):
        raise _bad("relay_bad_json", "stream must be true or false")
    if body.get("response_format") is not None:
        _check_response_format(body["response_format"])
    _check_tools(body, cloud.kind, allow_tools)
    bound = _cap_output(body, cloud.kind, max_tokens_cap)
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return CheckedBody(data, bound, bool(body.get("stream", False)))


def _check_response_format(value: object) -> None:
    """Structured output, in exactly the shapes of the module docstring."""
    shape = 'response_format is {"type": "json_schema", "json_schema": {"name": "...", "schema": {...}}}'
    if not isinstance(value, dict) or value.get("type") not in RESPONSE_FORMATS:
        raise _bad(
            "relay_field_not_allowed",
            f"response_format must be an object whose type is one of {sorted(RESPONSE_FORMATS)}",
            f"Send {shape}, or leave it out.",
        )
    allowed = {"type", "json_schema"} if value["type"] == "json_schema" else {"type"}
    extra = sorted(set(value) - allowed)
    if extra:
        raise _bad(
            "relay_field_not_allowed",
            f"the relay does not forward response_format's field(s) {_short(extra[:5])}",
            f"Send {shape}.",
        )
    if value["type"] != "json_schema":
        return
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        raise _bad("relay_bad_json", "response_format.json_schema must be an object with a schema object")
    extra = sorted(set(spec) - _JSON_SCHEMA_KEYS)
    if extra:
        raise _bad(
            "relay_field_not_allowed",
            f"the relay does not forward response_format.json_schema's field(s) {_short(extra[:5])}",
            f"Send only {', '.join(sorted(_JSON_SCHEMA_KEYS))}.",
        )
    if not isinstance(spec.get("name", ""), str) or not isinstance(spec.get("strict", False), bool):
        raise _bad("relay_bad_json", "response_format.json_schema's name is a string and strict a boolean")
    size = len(json.dumps(spec["schema"], separators=(",", ":")))
    if size > MAX_SCHEMA_CHARS:
        raise _bad(
            "relay_field_not_allowed",
            f"response_format's schema has {size} characters as JSON, "
            f"over the relay's limit of {MAX_SCHEMA_CHARS}",
            "Send a smaller schema.",
        )


def _check_tools(body: dict[str, Any], kind: str, allow_tools: bool) -> None:
    """Tool calling's fields and messages (module docstring), per ``allow_tools``."""
    asked = "tools" in body or "tool_choice" in body
    if allow_tools and kind == "openai" and asked:
        _check_openai_tools(body.get("tools"), body.get("tool_choice"), body.get("parallel_tool_calls"))
    elif allow_tools and kind == "anthropic" and asked:
        _check_anthropic_tools(body.get("tools"), body.get("tool_choice"))
    elif kind == "anthropic" and asked:
        _check_forced_answer(body.get("tools"), body.get("tool_choice"))
    if not allow_tools:
        _refuse_tool_messages(body["messages"])


def _refuse_tool_messages(messages: list[Any]) -> None:
    """Without ``allow_tools``: no tool results, and no assistant turn that called a tool."""
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        if (
            message.get("role") == "tool"
            or message.get("tool_calls")
            or any(isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result") for b in blocks)
        ):
            raise _bad(
                "relay_field_not_allowed",
                f"messages[{index}] is a tool call or a tool result, which this relay does not forward",
                _TOOLS_HINT,
            )


def _schema_size_ok(schema: object, where: str) -> None:
    if not isinstance(schema, dict):
        raise _bad("relay_bad_json", f"{where} must be a JSON Schema object")
    size = len(json.dumps(schema, separators=(",", ":")))
    if size > MAX_SCHEMA_CHARS:
        raise _bad(
            "relay_field_not_allowed",
            f"{where} has {size} characters as JSON, over the relay's limit of {MAX_SCHEMA_CHARS}",
            "Send a smaller schema.",
        )


def _tool_list(tools: object) -> list[Any]:
    if not isinstance(tools, list) or not tools or len(tools) > MAX_TOOLS:
        raise _bad("relay_bad_json", f"tools must be a list of 1 to {MAX_TOOLS} tools")
    return tools


def _check_openai_tools(tools: object, choice: object, parallel: object) -> None:
    """OpenAI's function tools and tool_choice, in the shapes of the module docstring."""
    names: list[str] = []
    for index, tool in enumerate(_tool_list(tools) if tools is not None else []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or set(tool) != {"type", "function"}
            or tool["type"] != "function"
            or not isinstance(function, dict)
            or set(function) - {"name", "description", "parameters", "strict"}
            or not isinstance(function.get("name"), str)
            or not function["name"]
            or not isinstance(function.get("description", ""), str)
        ):
            raise _bad(
                "relay_field_not_allowed",
                f"tools[{index}] is not a function tool the relay forwards",
                'Send {"type": "function", "function": {"name", "description", "parameters", "strict"}}.',
            )
        if "parameters" in function:
            _schema_size_ok(function["parameters"], f"tools[{index}].function.parameters")
        names.append(function["name"])
    named = choice.get("function") if isinstance(choice, dict) else None
    if not (
        choice is None
        or (choice in ("none", "auto", "required"))
        or (
            isinstance(choice, dict)
            and set(choice) == {"type", "function"}
            and choice["type"] == "function"
            and isinstance(named, dict)
            and set(named) == {"name"}
            and named["name"] in names
        )
    ):
        raise _bad(
            "relay_field_not_allowed",
            "tool_choice must be none, auto, required or one of the request's tools by name",
            'Send "auto", or {"type": "function", "function": {"name": <a tool in tools>}}.',
        )
    if parallel is not None and not isinstance(parallel, bool):
        raise _bad("relay_bad_json", "parallel_tool_calls must be true or false")


def _check_anthropic_tools(tools: object, choice: object) -> None:
    """Anthropic's client tools ``{"name", "description", "input_schema"}`` and their tool_choice."""
    names: list[str] = []
    for index, tool in enumerate(_tool_list(tools)):
        if (
            not isinstance(tool, dict)
            or set(tool) - {"name", "description", "input_schema"}
            or not isinstance(tool.get("name"), str)
            or not isinstance(tool.get("description", ""), str)
        ):
            raise _bad(
                "relay_field_not_allowed",
                f"tools[{index}] is not a client tool the relay forwards (server tools are refused)",
                'Send {"name", "description", "input_schema"}.',
            )
        _schema_size_ok(tool.get("input_schema"), f"tools[{index}].input_schema")
        names.append(tool["name"])
    kind = choice.get("type") if isinstance(choice, dict) else None
    if choice is not None and not (
        isinstance(choice, dict)
        and set(choice) <= {"type", "name", "disable_parallel_tool_use"}
        and (
            kind in ("auto", "any", "none")
            and "name" not in choice
            or kind == "tool"
            and choice.get("name") in names
        )
    ):
        raise _bad(
            "relay_field_not_allowed",
            "tool_choice must be auto, any, none, or one of the request's tools by name",
            'Send {"type": "auto"} or {"type": "tool", "name": <a tool in tools>}.',
        )


def _check_forced_answer(tools: object, choice: object) -> None:
    """Anthropic's tools only as structured output's one forced answer tool (module docstring)."""
    shape = 'tools: [{"name", "description", "input_schema"}] with tool_choice {"type": "tool", "name"}'
    tool = tools[0] if isinstance(tools, list) and len(tools) == 1 and isinstance(tools[0], dict) else None
    if (
        tool is None
        or set(tool) - {"name", "description", "input_schema"}
        or not isinstance(tool.get("name"), str)
        or not isinstance(tool.get("input_schema"), dict)
        or choice != {"type": "tool", "name": tool["name"]}
    ):
        raise _bad(
            "relay_field_not_allowed",
            "the relay forwards tools only as structured output's one forced answer tool",
            f"Send {shape}, or leave tools out. {_TOOLS_HINT}",
        )
    if len(json.dumps(tool["input_schema"], separators=(",", ":"))) > MAX_SCHEMA_CHARS:
        raise _bad(
            "relay_field_not_allowed",
            f"the answer tool's input_schema is over the relay's limit of {MAX_SCHEMA_CHARS} characters",
            "Send a smaller schema.",
        )


def _cap_output(body: dict[str, Any], kind: str, cap: int) -> int:
    given = [(name, body[name]) for name in _CAP_FIELDS[kind] if name in body and body[name] is not None]
    for name, value in given:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _bad("relay_bad_json", f"{name} must be a positive integer, not {_short(value)}")
        if value > cap:
            raise _bad(
                "relay_max_tokens_over_cap",
                f"{name}={value} is over this relay's cap of {cap}",
                f"Ask for at most {cap} output tokens (the operator sets HYBRID_ROUTER_RELAY_MAX_TOKENS).",
            )
    if not given:
        body["max_tokens"] = cap
        return cap
    return max(int(v) for _, v in given)
