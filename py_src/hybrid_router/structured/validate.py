"""The validator: does a JSON value (or an answer's text) match a schema of the subset?

Plain Python over the typed nodes of :mod:`.schema`: no code is generated or evaluated (the page's
Content-Security-Policy forbids ``eval``), and it runs in the worker on every answer, from either side.
Errors name the place (``$.items[2].name``) and what was wrong, as a person (or the model, in the repair
round) can act on them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hybrid_router.structured.schema import (
    ArrayNode,
    BooleanNode,
    EnumNode,
    Node,
    NullNode,
    NumberNode,
    ObjectNode,
    Schema,
    StringNode,
)

__all__ = ["Checked", "check", "check_text", "json_text"]

#: errors reported at most (the repair prompt and the error's details stay short)
MAX_ERRORS = 8
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Checked:
    """An answer's text checked against a schema: ``value`` when it parsed, ``errors`` (none: valid)."""

    text: str
    value: Any
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def json_text(text: str) -> str:
    """The JSON in an answer: the text, less a Markdown code fence a cloud model may wrap it in."""
    fenced = _FENCE.match(text)
    return fenced.group(1) if fenced else text.strip()


def check_text(text: str, schema: Schema) -> Checked:
    """Parse ``text`` as JSON (a fenced block too) and check it against ``schema``."""
    try:
        value = json.loads(json_text(text))
    except ValueError as exc:
        where = f" at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        return Checked(text, None, (f"the answer is not valid JSON{where}: {reason}",))
    return Checked(text, value, tuple(check(schema.root, value)))


def check(node: Node, value: Any, path: str = "$") -> list[str]:
    """What is wrong with ``value`` against ``node`` (empty: valid), at most :data:`MAX_ERRORS`."""
    errors: list[str] = []
    _check(node, value, path, errors)
    return errors[:MAX_ERRORS]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _same(a: Any, b: Any) -> bool:
    """JSON equality of scalars: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _check(node: Node, value: Any, path: str, errors: list[str]) -> None:  # noqa: C901 - one branch per node
    if len(errors) >= MAX_ERRORS:
        return
    kind = _kind(value)
    if isinstance(node, EnumNode):
        if not any(_same(value, v) for v in node.values):
            allowed = ", ".join(json.dumps(v) for v in node.values)
            errors.append(f"{path} must be one of {allowed}, got {json.dumps(value)[:60]}")
    elif isinstance(node, StringNode):
        if kind != "string":
            errors.append(f"{path} must be a string, got {kind}")
        elif len(value) < node.min_length:
            errors.append(f"{path} must have at least {node.min_length} characters, got {len(value)}")
        elif node.max_length is not None and len(value) > node.max_length:
            errors.append(f"{path} must have at most {node.max_length} characters, got {len(value)}")
    elif isinstance(node, NumberNode):
        if node.integer and not (kind == "integer" or (kind == "number" and float(value).is_integer())):
            errors.append(f"{path} must be an integer, got {kind}")
        elif not node.integer and kind not in ("integer", "number"):
            errors.append(f"{path} must be a number, got {kind}")
    elif isinstance(node, BooleanNode):
        if kind != "boolean":
            errors.append(f"{path} must be true or false, got {kind}")
    elif isinstance(node, NullNode):
        if kind != "null":
            errors.append(f"{path} must be null, got {kind}")
    elif isinstance(node, ArrayNode):
        if kind != "array":
            errors.append(f"{path} must be an array, got {kind}")
            return
        if len(value) < node.min_items:
            errors.append(f"{path} must have at least {node.min_items} items, got {len(value)}")
        if node.max_items is not None and len(value) > node.max_items:
            errors.append(f"{path} must have at most {node.max_items} items, got {len(value)}")
        for index, item in enumerate(value):
            _check(node.items, item, f"{path}[{index}]", errors)
    else:
        _check_object(node, value, path, errors)


def _check_object(node: ObjectNode, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path} must be an object, got {_kind(value)}")
        return
    declared = dict(node.properties)
    for name, _ in node.properties:
        if name in node.required and name not in value:
            errors.append(f"{path} is missing the required property {name!r}")
    if not node.additional:
        for name in value:
            if name not in declared:
                errors.append(f"{path} has the property {name!r}, which the schema does not allow")
    for name, item in value.items():
        if name in declared:
            _check(declared[name], item, f"{path}.{name}", errors)
