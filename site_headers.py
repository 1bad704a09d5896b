"""The security and cross-origin headers of Hybrid Router's site, in one place.

serve.py calls :meth:`SiteHeaders.apply` on every response; the static-site build (builder/site.py)
writes the same policy into the page (``<meta http-equiv>``) and into a ``_headers`` file for hosts that
read one. What each header is for:

- ``Content-Security-Policy`` (:func:`content_security_policy`): scripts, workers, styles and fetches
  from the site itself only, no inline script or style, no ``eval``: ``'wasm-unsafe-eval'`` is the one
  relaxation (compiling WebAssembly: Pyodide, its packages' shared libraries, ONNX Runtime). The worker
  gets the policy from its own response, so it is sent on every response, not only the page's.
- ``Cross-Origin-Opener-Policy`` / ``-Embedder-Policy`` (``isolation``): cross-origin isolation, which
  gives SharedArrayBuffer and so multi-threaded ONNX Runtime. Without it everything works on one thread.
- ``Cross-Origin-Resource-Policy`` and CORS (``embed_origins``): a page of another origin the operator
  allows (``--embed-origin``, ``HYBRID_ROUTER_EMBED_ORIGINS``) may load the client, the worker, the
  runtime and the models: those responses carry ``Access-Control-Allow-Origin: <that origin>`` and
  ``Cross-Origin-Resource-Policy: cross-origin`` (so a cross-origin isolated host page may load them too).
  Any other origin gets neither: ``same-origin`` stays. The cloud relay (``/api/``) is not covered here:
  it decides its own origins (the relay module's allowed origins).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # aiohttp is imported where it is used (the static-site build reads this module too)
    from aiohttp.typedefs import Handler, Middleware

__all__ = ["SiteHeaders", "add_arguments", "content_security_policy", "parse_origin", "parse_origins"]

#: the paths CORS never applies to here: the cloud relay answers for its own origins
RELAY_PREFIX = "/api/"
#: response headers a cross-origin page may read (resumable downloads read Content-Range and the length)
EXPOSED = "Content-Length, Content-Range, Accept-Ranges, ETag, Content-Type"


def content_security_policy(
    *,
    connect: Iterable[str] = (),
    script: Iterable[str] = (),
    report_uri: str | None = None,
    frame_ancestors: str | None = "'self'",
) -> str:
    """The Content-Security-Policy of the page and its worker.

    ``connect``/``script``: origins besides the site's own (a relay elsewhere; an embedding page lists
    the router's server). ``script`` goes into worker-src too: the host's worker file imports our worker
    by URL, and a module worker's imports are checked against worker-src, not script-src. The worker
    itself stays a same-origin file (never blob:). ``frame_ancestors`` is left out of a ``<meta>`` policy
    (browsers ignore it there).
    """
    connect_src = ["'self'", *dict.fromkeys(connect)]
    script_src = ["'self'", *dict.fromkeys(script), "'wasm-unsafe-eval'"]
    directives: dict[str, list[str]] = {
        "default-src": ["'self'"],
        "script-src": script_src,  # no 'unsafe-eval', no 'unsafe-inline'
        "worker-src": ["'self'", *dict.fromkeys(script)],  # a same-origin module worker file; never blob:
        "connect-src": connect_src,  # boot.json, runtime, wheels, model files, the relay
        "style-src": ["'self'"],  # style.css only: no inline style
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "media-src": ["'self'"],
        "manifest-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
    }
    if frame_ancestors:
        directives["frame-ancestors"] = [frame_ancestors]
    text = "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())
    return text + (f"; report-uri {report_uri}" if report_uri else "")


def parse_origin(text: str) -> str:
    """``scheme://host[:port]`` normalized as browsers send it in ``Origin``; anything else is refused."""
    raw = text.strip().rstrip("/")
    parts = urlsplit(raw)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"{text!r} is not an origin: write it as scheme://host[:port] (no path, no '*')")
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def parse_origins(values: Iterable[str]) -> frozenset[str]:
    """Origins from flags and comma- or space-separated lists."""
    return frozenset(parse_origin(o) for v in values for o in v.replace(",", " ").split() if o)


@dataclass(frozen=True)
class SiteHeaders:
    """What serve.py adds to every response (see the module docstring)."""

    isolation: bool = True
    embed_origins: frozenset[str] = field(default_factory=frozenset)
    report_uri: str | None = None

    @property
    def csp(self) -> str:
        return content_security_policy(report_uri=self.report_uri)

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and origin in self.embed_origins

    def cors(self, path: str, origin: str | None) -> dict[str, str]:
        """The CORS headers for a GET/HEAD of ``path`` from ``origin`` (empty unless it is allowed)."""
        if path.startswith(RELAY_PREFIX) or not self.allows(origin):
            return {}
        assert origin is not None
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": EXPOSED,
            "Cross-Origin-Resource-Policy": "cross-origin",
        }

    def preflight(self, path: str, origin: str | None) -> dict[str, str] | None:
        """The answer to an ``OPTIONS`` preflight for an allowed origin, or None (not ours to answer)."""
        allowed = self.cors(path, origin)
        if not allowed:
            return None
        return {
            **allowed,
            "Access-Control-Allow-Methods": "GET, HEAD",
            "Access-Control-Allow-Headers": "Range, Cache-Control",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }

    def apply(self, path: str, origin: str | None, headers: MutableMapping[str, str]) -> None:
        """Add the site's headers to a response of ``path`` requested from ``origin``."""
        headers["Content-Security-Policy"] = self.csp
        if self.isolation:
            headers["Cross-Origin-Opener-Policy"] = "same-origin"
            headers["Cross-Origin-Embedder-Policy"] = "require-corp"
        headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        if self.embed_origins and not path.startswith(RELAY_PREFIX):
            vary = headers.get("Vary")
            if not vary:
                headers["Vary"] = "Origin"
            elif "origin" not in vary.lower():
                headers["Vary"] = f"{vary}, Origin"
            headers.update(self.cors(path, origin))


def middleware(policy: SiteHeaders) -> Middleware:
    """An aiohttp middleware that applies ``policy`` to every response (errors included) and answers the
    CORS preflights of the embedding origins."""
    from aiohttp import web

    @web.middleware
    async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and (answer := policy.preflight(request.path, origin)) is not None:
            return web.Response(status=204, headers=answer)
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            policy.apply(request.path, origin, exc.headers)
            raise
        policy.apply(request.path, origin, resp.headers)
        return resp

    return headers


ENV_EMBED_ORIGINS = "HYBRID_ROUTER_EMBED_ORIGINS"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """serve.py's options for these headers (``--no-isolation`` is serve.py's own)."""
    parser.add_argument(
        "--embed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a site allowed to embed the router: its pages may load the client, worker, "
        f"runtime and models (CORS + CORP). Repeat it, or set {ENV_EMBED_ORIGINS} "
        "(comma-separated). Example: --embed-origin https://shop.example",
    )
    parser.add_argument(
        "--csp-report-uri",
        default=None,
        metavar="URL",
        help="where browsers report Content-Security-Policy violations (report-uri)",
    )


def from_arguments(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> SiteHeaders:
    try:
        origins = parse_origins([*args.embed_origin, env.get(ENV_EMBED_ORIGINS, "")])
    except ValueError as exc:
        raise SystemExit(f"error: --embed-origin / {ENV_EMBED_ORIGINS}: {exc}") from None
    return SiteHeaders(isolation=not args.no_isolation, embed_origins=origins, report_uri=args.csp_report_uri)
