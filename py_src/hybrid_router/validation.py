"""Argument checks for the public API; each failure is a :class:`ValidationError` with a hint.

``details`` always names the ``field`` and, where a value had the wrong type, what was ``got``,
spelled as JavaScript would (``"string"``, ``"number"``, ``"array"``, ``"object"``, ``"null"``),
since most calls come from the page.

Empty strings are accepted in ``texts``: a batch built from user data may contain them, and models
embed them like any other text. Only the list itself must be non-empty.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from hybrid_router.errors import ValidationError

__all__ = [
    "MAX_TEXTS",
    "MAX_TEXT_CHARS",
    "choice",
    "known_keys",
    "optional_str",
    "positive_int",
    "text",
    "texts",
    "type_name",
]

#: The most texts one call may carry; bigger jobs are split by the caller (memory stays bounded).
MAX_TEXTS = 1024
#: The longest single text in characters; models truncate at their context window long before this.
MAX_TEXT_CHARS = 100_000


def type_name(value: object) -> str:
    """The type of ``value`` as a JavaScript caller would name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def texts(
    value: object, *, field: str = "texts", max_items: int = MAX_TEXTS, max_chars: int = MAX_TEXT_CHARS
) -> list[str]:
    """A non-empty list (or tuple) of strings, at most ``max_items`` of at most ``max_chars`` each."""
    if isinstance(value, str):
        raise ValidationError(
            f"{field} must be an array of strings, got a single string",
            hint=f"Wrap a single text in an array: {field}: [text].",
            field=field,
            got="string",
        )
    if not isinstance(value, list | tuple):
        raise ValidationError(
            f"{field} must be an array of strings, got {type_name(value)}",
            hint=f'Pass {field} as an array of strings, e.g. ["first text", "second text"].',
            field=field,
            got=type_name(value),
        )
    if not value:
        raise ValidationError(
            f"{field} must not be empty",
            hint=f"Pass at least one string in {field}; skip the call when there is nothing to process.",
            field=field,
        )
    if len(value) > max_items:
        raise ValidationError(
            f"{field} has {len(value)} items, more than the limit of {max_items}",
            hint=f"Split the input into batches of at most {max_items} texts.",
            field=field,
            count=len(value),
            limit=max_items,
        )
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ValidationError(
                f"{field}[{index}] must be a string, got {type_name(item)}",
                hint=f"Every item of {field} must be a string; convert or drop the others.",
                field=f"{field}[{index}]",
                got=type_name(item),
                index=index,
            )
        if len(item) > max_chars:
            raise ValidationError(
                f"{field}[{index}] has {len(item)} characters, more than the limit of {max_chars}",
                hint=f"Split long documents into passages of at most {max_chars} characters.",
                field=f"{field}[{index}]",
                index=index,
                length=len(item),
                limit=max_chars,
            )
    return list(value)


def text(value: object, field: str = "text") -> str:
    """A task's text argument: a non-empty string of at most ``MAX_TEXT_CHARS`` characters."""
    if not isinstance(value, str):
        raise ValidationError(
            f"{field} must be a string, got {type_name(value)}",
            hint=f"Pass {field} as a string.",
            field=field,
            got=type_name(value),
        )
    if not value.strip():
        raise ValidationError(f"{field} must not be empty", hint=f"Pass some text in {field}.", field=field)
    if len(value) > MAX_TEXT_CHARS:
        raise ValidationError(
            f"{field} has {len(value)} characters, more than the limit of {MAX_TEXT_CHARS}",
            hint="Split long documents into passages.",
            field=field,
            length=len(value),
        )
    return value


def optional_str(value: object, field: str) -> str | None:
    """``None`` or a non-empty string (an empty string is refused rather than read as "default")."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(
            f"{field} must be a string or null, got {type_name(value)}",
            hint=f"Pass {field} as a string, or leave it out for the default.",
            field=field,
            got=type_name(value),
        )
    if not value:
        raise ValidationError(
            f"{field} must not be an empty string",
            hint=f"Leave {field} out (or pass null) for the default.",
            field=field,
        )
    return value


def choice(value: object, allowed: Collection[str], field: str) -> str:
    """``value`` if it is one of ``allowed``."""
    if isinstance(value, str) and value in allowed:
        return value
    options = ", ".join(sorted(allowed))
    raise ValidationError(
        f"{field} must be one of: {options}; got {value!r}",
        hint=f"Use one of: {options}.",
        field=field,
        got=type_name(value),
        allowed=sorted(allowed),
    )


def positive_int(value: object, field: str, *, maximum: int | None = None) -> int:
    """An integer >= 1 (and <= ``maximum``); integral floats are accepted, as JavaScript has no ints."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None:
        raise ValidationError(
            f"{field} must be a positive integer, got {type_name(value)}",
            hint=f"Pass {field} as a whole number of at least 1.",
            field=field,
            got=type_name(value),
        )
    if number < 1 or (maximum is not None and number > maximum):
        bound = f"between 1 and {maximum}" if maximum is not None else "at least 1"
        raise ValidationError(
            f"{field} must be {bound}, got {number}",
            hint=f"Pass {field} as a whole number {bound}.",
            field=field,
            got=number,
            limit=maximum,
        )
    return number


def known_keys(params: Mapping[str, object], allowed: Collection[str], *, where: str) -> None:
    """Refuse keys outside ``allowed`` (a misspelt option would otherwise be ignored silently)."""
    unknown = sorted(str(key) for key in params if key not in allowed)
    if unknown:
        raise ValidationError(
            f"unknown parameter(s) for {where}: {', '.join(unknown)}",
            hint=f"{where} accepts: {', '.join(sorted(allowed))}; check the spelling.",
            field=unknown[0],
            unknown=unknown,
            allowed=sorted(allowed),
        )
