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
  ``tool_choice`` ``{"type": "tool", "name": <that tool>}`` (``relay_field_not_allowed`` otherwise).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .config import CloudConfig
from .errors import RelayError

__all__ = ["ALLOWED_FIELDS", "MAX_SCHEMA_CHARS", "RESPONSE_FORMATS", "CheckedBody", "check_body"]

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


def check_body(raw: bytes, cloud: CloudConfig, max_tokens_cap: int) -> CheckedBody:
    """The checked body (see the module docstring), or a ``RelayError`` saying what to change."""
    try:
        body: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad("relay_bad_json", "the request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise _bad("relay_bad_json", "the request body is not a JSON object")
    extra = sorted(set(body) - ALLOWED_FIELDS[cloud.kind])
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
    if cloud.kind == "anthropic" and ("tools" in body or "tool_choice" in body):
        _check_forced_answer(body.get("tools"), body.get("tool_choice"))
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
            f"Send {shape}, or leave tools out.",
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
