"""What the browser edges share: destroying JS proxies, Python data as JS objects, browser errors in words.

Importing this module imports nothing from the browser (``js`` is imported when a JS object is made), so
the edges that are unit-tested in CPython with fakes (:mod:`.transport_pyfetch`) can use it too.
"""

from __future__ import annotations

from typing import Any

from ..errors import StorageError

__all__ = ["destroy", "js_error_name", "js_error_text", "js_object", "storage_error"]


def destroy(*proxies: Any) -> None:
    """Destroy each JS proxy given (None and plain values are skipped; a proxy destroyed twice is fine)."""
    for proxy in proxies:
        release = getattr(proxy, "destroy", None)
        if release is not None:
            try:
                release()
            except Exception:  # already destroyed, or not a proxy after all
                pass


def js_object(value: Any) -> Any:
    """``value`` (dicts, lists, scalars) as JS data, dicts as plain objects (not Maps)."""
    import js
    from pyodide.ffi import to_js

    return to_js(value, dict_converter=js.Object.fromEntries)


def js_error_name(exc: BaseException) -> str:
    """The JS error's name (``QuotaExceededError``, ``AbortError``, ...), else the Python type's."""
    js_error = getattr(exc, "js_error", None)
    return str(getattr(js_error, "name", "") or type(exc).__name__)


def js_error_text(exc: BaseException) -> str:
    """The JS error's message, else the first line of the Python one."""
    js_error = getattr(exc, "js_error", None)
    message = getattr(js_error, "message", None)
    return str(message) if message else (str(exc).splitlines() or [type(exc).__name__])[0]


def storage_error(
    store: str, what: str, exc: BaseException, *, hint: str, full_hint: str | None = None
) -> StorageError:
    """An IndexedDB failure of ``store`` while it tried to ``what``; ``full_hint`` when storage is full."""
    name = js_error_name(exc)
    chosen = full_hint if full_hint is not None and name == "QuotaExceededError" else hint
    return StorageError(
        f"the {store} could not {what}: {name}: {js_error_text(exc)}", hint=chosen, js_name=name
    )
