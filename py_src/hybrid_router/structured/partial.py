"""The value an unfinished JSON text stands for so far (``streamObject``'s partial objects).

``{"name": "Ad`` is ``{"name": "Ad"}``; ``{"a": [1, 2`` is ``{"a": [1, 2]}``; a key without its value
yet, a half-written ``tru`` or a trailing ``-`` is left out until it is whole. Not a validator: a partial
value need not match the schema (required properties may still be missing); the final one is checked.
"""

from __future__ import annotations

import json
from typing import Any

from hybrid_router.structured.validate import json_text

__all__ = ["partial_value"]


def partial_value(text: str) -> Any:
    """The value of the JSON text so far, completed; None when nothing whole enough has arrived."""
    body = (
        json_text(text) if text.rstrip().endswith("```") else text.lstrip().removeprefix("```json").lstrip()
    )
    closers: list[str] = []
    in_string = escaped = False
    #: where the text may be cut so that what remains, closed, parses (and the closers open there)
    cut, cut_closers = 0, 0
    for index, ch in enumerate(body):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]" and closers:
            closers.pop()
        if ch in ",{[" or ch in "}]":
            cut, cut_closers = (index if ch == "," else index + 1), len(closers)
    for candidate in _candidates(body, in_string, escaped, closers, cut, cut_closers):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def _candidates(
    body: str, in_string: bool, escaped: bool, closers: list[str], cut: int, cut_closers: int
) -> list[str]:
    """Ways to close the text, most complete first."""
    whole = body[:-1] if escaped else body
    closing = "".join(reversed(closers))
    tries = []
    if in_string:
        tries.append(whole + '"' + closing)
    else:
        tries.append(whole + closing)
    prefix = body[:cut]
    tries.append(prefix + "".join(reversed(closers[:cut_closers])))
    return tries
