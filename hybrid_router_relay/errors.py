"""What the relay answers when it refuses or fails: one JSON shape, one exception.

Every error the client sees is ``{"error": {"type", "message", "hint"}}`` (OpenAI's error shape plus a
``hint``, so the page's provider code reads ``type`` and ``message`` as it reads a provider's). No
error names the upstream's host, URL or key. The types, grouped by what the caller does next:

- fix the request (``x-should-retry: false`` on every 4xx but 408, 409 and 429): ``relay_bad_json`` (400),
  ``relay_model_not_allowed`` (400), ``relay_max_tokens_over_cap`` (400), ``relay_field_not_allowed``
  (400), ``relay_endpoint_not_allowed`` (404), ``relay_method_not_allowed`` (405),
  ``relay_body_too_large`` (413), ``relay_unsupported_media_type`` (415);
- the caller is not allowed (never retried): ``relay_host_forbidden`` (403), ``relay_origin_forbidden``
  (403), ``relay_token_required`` / ``relay_token_invalid`` (401);
- wait: ``relay_rate_limited`` (429, ``Retry-After`` and ``retry-after-ms``), ``relay_spend_cap_reached``
  (402, until the next UTC day);
- the operator must act: ``relay_not_configured`` (503, ``x-should-retry: false``);
- the provider failed (retried by the page's client): ``relay_upstream_unreachable`` (502),
  ``relay_upstream_timeout`` (504), ``relay_upstream_bad_answer`` (502); a provider's own error status
  is passed through with its ``type`` and a scrubbed ``message``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web

__all__ = ["RelayConfigError", "RelayError", "error_response"]

#: 4xx statuses the page's client may retry (the SDKs' contract, with 5xx); other 4xx say not to
_RETRYABLE_4XX = frozenset({408, 409, 429})


class RelayConfigError(Exception):
    """A setting the relay cannot start with (the CLIs print it with its hint and exit with status 2)."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}"


class RelayError(Exception):
    """A refusal or failure, answered as JSON with ``status`` (see the module docstring)."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        hint: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.hint = hint
        self.headers = dict(headers or {})

    def response(self, extra_headers: Mapping[str, str] | None = None) -> web.Response:
        return error_response(
            self.status, self.type, self.message, self.hint, headers={**self.headers, **(extra_headers or {})}
        )


def error_response(
    status: int, type: str, message: str, hint: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The JSON error answer; ``x-should-retry: false`` on a 4xx not worth retrying (``headers`` win)."""
    out = {"Cache-Control": "no-store"}
    if status < 500 and status not in _RETRYABLE_4XX:
        out["x-should-retry"] = "false"
    out.update(headers or {})
    body = {"error": {"type": type, "message": message, "hint": hint}}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=out)
