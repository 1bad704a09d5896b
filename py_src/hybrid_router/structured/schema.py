"""The JSON Schema subset structured output accepts: parsed once into typed nodes, or refused with a hint.

The subset is what the device's constrained decoding (:mod:`.automaton`) can enforce token by token, so
that every answer it lets through parses and validates:

- ``type``: ``"object"``, ``"array"``, ``"string"``, ``"number"``, ``"integer"``, ``"boolean"``,
  ``"null"`` (one type, not a list);
- objects: ``properties`` (each a schema of this subset), ``required`` (names among the properties),
  ``additionalProperties`` (``false``, or left out: the answer has only the declared properties either way);
- arrays: ``items`` (one schema), ``minItems``, ``maxItems``;
- strings: ``minLength``, ``maxLength``;
- ``enum`` (strings, numbers, booleans, null) and ``const`` (one such value), with or without a ``type``;
- annotations that change nothing: ``title``, ``description``, ``$schema``, ``examples``, ``default``.

Anything else (``pattern``, ``format``, ``minimum``, ``anyOf``, ``$ref``, a list of types, ...) is a
:class:`~hybrid_router.errors.ValidationError` naming the keyword and where it is: the device could not
guarantee it, so the call is refused rather than silently weakened.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from hybrid_router.errors import ValidationError

__all__ = [
    "ANNOTATIONS",
    "KEYWORDS",
    "MAX_SCHEMA_CHARS",
    "ArrayNode",
    "BooleanNode",
    "EnumNode",
    "Node",
    "NullNode",
    "NumberNode",
    "ObjectNode",
    "Schema",
    "StringNode",
]

#: a schema this long (as compact JSON) or longer is refused: the cloud compiles it to a grammar per call
MAX_SCHEMA_CHARS = 16_000
#: nesting deeper than this is refused (the device keeps one frame per level)
MAX_DEPTH = 12
#: keywords that change nothing about what is valid
ANNOTATIONS = frozenset({"title", "description", "$schema", "examples", "default", "$comment"})
#: the keywords each type may carry (besides the annotations, ``type``, ``enum`` and ``const``)
KEYWORDS: Mapping[str, frozenset[str]] = {
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "array": frozenset({"items", "minItems", "maxItems"}),
    "string": frozenset({"minLength", "maxLength"}),
    "number": frozenset(),
    "integer": frozenset(),
    "boolean": frozenset(),
    "null": frozenset(),
}
_HINT = (
    "Use the subset in docs/api.md#structured-output: type (object, array, string, number, integer, "
    "boolean, null), properties, required, items, minItems, maxItems, minLength, maxLength, enum, const."
)


@dataclass(frozen=True, slots=True)
class ObjectNode:
    properties: tuple[tuple[str, Node], ...]
    required: frozenset[str]
    #: False: only the declared properties are valid (``additionalProperties: false``)
    additional: bool = True


@dataclass(frozen=True, slots=True)
class ArrayNode:
    items: Node
    min_items: int = 0
    max_items: int | None = None


@dataclass(frozen=True, slots=True)
class StringNode:
    min_length: int = 0
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class NumberNode:
    integer: bool = False


@dataclass(frozen=True, slots=True)
class BooleanNode:
    pass


@dataclass(frozen=True, slots=True)
class NullNode:
    pass


@dataclass(frozen=True, slots=True)
class EnumNode:
    """``enum`` / ``const``: one of these JSON scalars (compared as JSON values: 1 == 1.0, True != 1)."""

    values: tuple[str | int | float | bool | None, ...]


Node: TypeAlias = ObjectNode | ArrayNode | StringNode | NumberNode | BooleanNode | NullNode | EnumNode


@dataclass(frozen=True, slots=True)
class Schema:
    """A checked schema: its typed ``root`` and the caller's JSON (``source``, sent to the cloud as is)."""

    root: Node
    source: Mapping[str, Any]

    @classmethod
    def parse(cls, value: object, field: str = "schema") -> Schema:
        """The schema, or a ``ValidationError`` naming the first keyword outside the subset."""
        if not isinstance(value, Mapping):
            raise ValidationError(
                f"{field} must be a JSON Schema object, got {_type_name(value)}",
                hint='Pass e.g. schema: { type: "object", properties: { name: { type: "string" } } }.',
                field=field,
            )
        try:
            text = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"{field} is not plain JSON ({exc})",
                hint="Pass a schema made of JSON values only.",
                field=field,
            ) from exc
        if len(text) >= MAX_SCHEMA_CHARS:
            raise ValidationError(
                f"{field} has {len(text)} characters as JSON, more than the limit of {MAX_SCHEMA_CHARS}",
                hint="Split the task into smaller schemas.",
                field=field,
                length=len(text),
                limit=MAX_SCHEMA_CHARS,
            )
        return cls(_node(json.loads(text), field, 0), json.loads(text))

    def to_json(self) -> str:
        """The schema as compact JSON (what the prompt and the cloud are given)."""
        return json.dumps(self.source, separators=(",", ":"), ensure_ascii=False)

    def response_format(self, name: str = "answer") -> dict[str, Any]:
        """OpenAI's ``response_format`` asking for this schema (the relay forwards exactly this shape)."""
        return {"type": "json_schema", "json_schema": {"name": name, "schema": dict(self.source)}}


def _refuse(where: str, message: str, **details: Any) -> ValidationError:
    return ValidationError(f"{where}: {message}", hint=_HINT, field=where, **details)


def _type_name(value: object) -> str:
    from hybrid_router.validation import type_name

    return type_name(value)


def _count(schema: Mapping[str, Any], key: str, where: str) -> int | None:
    value = schema.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refuse(f"{where}.{key}", f"must be a non-negative integer, got {value!r}")
    return value


def _bounds(schema: Mapping[str, Any], low_key: str, high_key: str, where: str) -> tuple[int, int | None]:
    low, high = _count(schema, low_key, where) or 0, _count(schema, high_key, where)
    if high is not None and high < low:
        raise _refuse(where, f"{high_key} ({high}) is less than {low_key} ({low})")
    return low, high


def _scalar(value: object, where: str) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise _refuse(where, f"enum and const values must be strings, numbers, booleans or null, got {value!r}")


def _node(schema: object, where: str, depth: int) -> Node:
    if not isinstance(schema, Mapping):
        raise _refuse(where, f"a schema must be an object, got {_type_name(schema)}")
    if depth > MAX_DEPTH:
        raise _refuse(where, f"nesting deeper than {MAX_DEPTH} levels is not supported")
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind not in KEYWORDS):
        raise _refuse(f"{where}.type", f"type must be one of {', '.join(KEYWORDS)}, got {kind!r}")
    allowed = ANNOTATIONS | {"type", "enum", "const"} | (KEYWORDS[kind] if kind else frozenset())
    unknown = sorted(set(schema) - allowed)
    if unknown:
        raise _refuse(
            f"{where}.{unknown[0]}",
            f"the keyword {unknown[0]!r} is outside the subset structured output can enforce"
            + ("" if kind else " (or needs a type)"),
            keyword=unknown[0],
        )
    if "enum" in schema or "const" in schema:
        return _enum(schema, where, kind)
    if kind is None:
        raise _refuse(where, "a schema needs a type (or an enum / const)")
    if kind == "object":
        return _object(schema, where, depth)
    if kind == "array":
        low, high = _bounds(schema, "minItems", "maxItems", where)
        if "items" not in schema:
            raise _refuse(f"{where}.items", "an array needs an items schema")
        return ArrayNode(_node(schema["items"], f"{where}.items", depth + 1), low, high)
    if kind == "string":
        return StringNode(*_bounds(schema, "minLength", "maxLength", where))
    if kind in ("number", "integer"):
        return NumberNode(integer=kind == "integer")
    return BooleanNode() if kind == "boolean" else NullNode()


def _enum(schema: Mapping[str, Any], where: str, kind: str | None) -> EnumNode:
    if "enum" in schema and "const" in schema:
        raise _refuse(where, "use enum or const, not both")
    if "const" in schema:
        values = [_scalar(schema["const"], f"{where}.const")]
    else:
        raw = schema["enum"]
        if not isinstance(raw, list) or not raw:
            raise _refuse(f"{where}.enum", "enum must be a non-empty array")
        values = [_scalar(v, f"{where}.enum[{i}]") for i, v in enumerate(raw)]
    if kind is not None:
        from hybrid_router.structured.validate import check

        for value in values:
            if check(_KIND_NODES[kind], value):
                raise _refuse(where, f"the value {value!r} is not of type {kind}")
    unique: list[str | int | float | bool | None] = []
    for value in values:
        if json.dumps(value) not in {json.dumps(u) for u in unique}:
            unique.append(value)
    return EnumNode(tuple(unique))


_KIND_NODES: Mapping[str, Node] = {
    "string": StringNode(),
    "number": NumberNode(),
    "integer": NumberNode(integer=True),
    "boolean": BooleanNode(),
    "null": NullNode(),
    "object": ObjectNode((), frozenset()),
    "array": ArrayNode(NullNode()),
}


def _object(schema: Mapping[str, Any], where: str, depth: int) -> ObjectNode:
    props = schema.get("properties", {})
    if not isinstance(props, Mapping):
        raise _refuse(f"{where}.properties", "properties must be an object of schemas")
    nodes = tuple(
        (str(name), _node(sub, f"{where}.properties.{name}", depth + 1)) for name, sub in props.items()
    )
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise _refuse(f"{where}.required", "required must be an array of property names")
    missing = sorted(set(required) - set(props))
    if missing:
        raise _refuse(f"{where}.required", f"{missing[0]!r} is required but not among the properties")
    additional = schema.get("additionalProperties", True)
    if additional is not False and additional is not True:
        raise _refuse(
            f"{where}.additionalProperties", "additionalProperties may be false (or left out), not a schema"
        )
    return ObjectNode(nodes, frozenset(required), bool(additional))
