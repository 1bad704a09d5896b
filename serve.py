"""Serve Hybrid Router: the page (web/), the built runtime assets and models, on 127.0.0.1 by default.

    python serve.py [--host H] [--port N] [--no-isolation] [--cloud auto|none] [--build-in-background]
                    [--token T] [--allow-origin O] [--public-host H] [--embed-origin O] [--csp-report-uri URL]

Run it with the project's Python (``./hr run`` does all of it: set-up, the first build, serve, and the
rest of the build in the background). What it serves:

    /                          web/ (the page, the worker, the client module /hybrid-router.js)
    /boot.json                 the URLs the worker boots from (written by the build into site.json)
    /models_manifest.json      the model manifest as this server has built it (see below)
    /vendor/..., /app/...      versioned runtime files: cached for a year, immutable
    /models/<id>/<file>        built model folders (revalidated with ETag; Range requests supported)
    /api/build/status          the background build's jobs (see below)
    /api/cloud/...             the cloud relay (hybrid_router_relay, mounted here): GET /api/cloud/config
                               (kind, model, label; never the key), POST /api/cloud/chat/completions
                               (openai kind) or /api/cloud/v1/messages (anthropic), forwarded with the key

The three JSON endpoints under /api and the manifest are sent with ``Cache-Control: no-store``; none of
them tells the page a path of this server (a log is named by its file name only) or a key.

**/models_manifest.json**: ``models`` lists only the models built here, each with the files of *its built
folder* (sizes and sha256s from the build's stamp, ``$CACHE/models/<id>/<key>.stamp.json``), so that the
browser's integrity checks compare against the bytes this server has: trained weights differ between
machines, and the committed manifest's hashes are one reference build's. It is re-read when the build
writes ``$CACHE/models/index.json``: a model built in the background is served without a restart. Every
other model is listed under ``not_built``::

    {"id", "tasks", "state", "step", "progress", "eta_s", "message", "hint"}

**GET /api/build/status** (``--build-in-background``: the jobs ``./hr run`` leaves to the background
build, :mod:`builder.jobs`; without it, no jobs)::

    {"pending": bool,               # a job is queued or running
     "version": int,                # grows by one whenever anything below changes
     "jobs": [{"id": str,           # the model id, or "cloud-tier"
               "kind": "model" | "cloud",
               "title": str,
               "state": "queued" | "running" | "done" | "failed" | "blocked" | "skipped",
               "step": str | null,  # "downloading", "downloading data", "preparing", "training",
                                    # "evaluating", "converting", "checking", "configuring", "compiling", ...
               "detail": str | null,      # e.g. "epoch 1/1, step 340/1894, loss 0.312"
               "progress": float | null,  # 0..1, of the whole job
               "eta_s": number | null,    # seconds until the job should be done (a queued job: counting
                                          # the jobs before it)
               "message": str | null,     # what happened ("built in 812 s", the error, why it is blocked)
               "hint": str | null}]}      # what to do about it

``blocked``: something the job needs is not here (the training data, a source that cannot be reached);
``failed``: an error (the hint names the job's log); ``skipped``: not wanted here.

**GET /api/cloud/config**: the configured provider, ``{"available": true, "kind", "model", "label",
"base_url": "/api/cloud", "has_key"}``; with no provider configured and ``--cloud auto`` the default
cloud tier (llama-server serving Qwen2.5-Coder-0.5B-Instruct on this machine), which this server starts
itself once the background build has built it. Until it is up::

    {"available": false, "starting": true, "kind": "openai", "model", "label",
     "status": {"state", "step", "progress", "eta_s", "message"}}

(``starting`` false, with the reason in ``status``, when it cannot come up: a failed or blocked build).
Meanwhile the relay answers 503 ``{"error": {"type": "cloud_tier_starting", ...}}``.

The cloud is configured by HYBRID_ROUTER_CLOUD_* environment variables (the key stays on the server),
the relay's defences by HYBRID_ROUTER_RELAY_* (see hybrid_router_relay/config.py). A non-loopback --host
is refused unless an access token is configured (--token or HYBRID_ROUTER_RELAY_TOKEN).

and where things are by: ``HYBRID_ROUTER_CACHE`` (the build's cache: ``site.json``, ``models/``,
``build/status.json``; default ``~/.cache/hybrid-router``) and ``HYBRID_ROUTER_MANIFEST`` (the manifest
to serve, default the repository's ``models_manifest.json``; the build reads the same).

Every response carries the Content-Security-Policy and the cross-origin-isolation headers (COOP/COEP)
unless --no-isolation (isolation gives SharedArrayBuffer and multi-threaded ONNX Runtime in the page);
--embed-origin (or HYBRID_ROUTER_EMBED_ORIGINS, comma-separated) names the sites whose pages may load the
router's static files (CORS and CORP for them only; the relay's own origins are --allow-origin). The
policy and the headers: site_headers.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import mimetypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import site_headers
from aiohttp import web
from builder.served import BuildStatus, BuiltModels, page_text, served_manifest
from hybrid_router_relay import (
    MOUNT,
    STATE,
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
NO_STORE = "no-store"
CLOUD_JOB = "cloud-tier"
DEFAULT_CLOUD_MODEL = "qwen2.5-coder-0.5b-instruct"
DEFAULT_CLOUD_LABEL = (
    "Qwen2.5-Coder-0.5B-Instruct on llama-server (the default cloud tier: a bigger model "
    "than the browser's, running on this machine)"
)

for ext, mime in {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".json": "application/json",
    ".onnx": "application/octet-stream",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
}.items():
    mimetypes.add_type(mime, ext)


def cache_root() -> Path:
    return Path(os.environ.get("HYBRID_ROUTER_CACHE", Path.home() / ".cache" / "hybrid-router"))


def manifest_path() -> Path:
    explicit = os.environ.get("HYBRID_ROUTER_MANIFEST", "").strip()
    return Path(explicit) if explicit else ROOT / "models_manifest.json"


def load_site(cache: Path) -> dict[str, Any]:
    site_path = cache / "site.json"
    if not site_path.exists():
        raise SystemExit(
            f"error: {site_path} is missing: the assets are not built.\n"
            "  hint: run ./hr run (it builds them first), or ./hr build"
        )
    site: dict[str, Any] = json.loads(site_path.read_text())
    return site


class CloudTier:
    """The cloud the relay forwards to: the configured provider, or the default tier (llama-server with
    Qwen2.5-Coder-0.5B-Instruct on this machine), started here once the build has made it.

    ``run()`` (an asyncio task) waits for the binary and the GGUF (built by the background job
    ``cloud-tier``), starts llama-server in a thread (its health check takes seconds) and then makes it
    the relay's upstream; the event loop never waits for the build or the start.
    """

    def __init__(self, configured: CloudConfig, *, default: bool, build: BuildStatus | None = None) -> None:
        self.config = configured
        self.default = default and not configured.available
        self.build = build
        self.server: Any = None  # builder.llama.LlamaServer once started
        self.failure: dict[str, Any] | None = None  # why the default tier cannot come up
        #: told the tier's config once it is up (serve.py: the relay forwards to it)
        self.on_up: Callable[[CloudConfig], None] | None = None

    def pending(self) -> dict[str, Any] | None:
        """What the page should know while the default tier is not up (None: nothing to add)."""
        return None if not self.default or self.config.available else self.public()

    @property
    def starting(self) -> bool:
        return self.default and not self.config.available and self.failure is None

    def status(self) -> dict[str, Any]:
        """The default tier's build/start status: ``{"state", "step", "progress", "eta_s", "message"}``."""
        if self.failure is not None:
            return self.failure
        job = self.build.job(CLOUD_JOB) if self.build is not None else None
        if job is not None and job["state"] != "done":
            return {k: job[k] for k in ("state", "step", "progress", "eta_s", "message")}
        return {
            "state": "running",
            "step": "starting",
            "progress": None,
            "eta_s": None,
            "message": "llama-server is starting",
        }

    def status_line(self) -> str:
        st = self.status()
        return ", ".join(str(v) for v in (st["state"], st["step"], st["message"]) if v)

    def public(self) -> dict[str, Any]:
        """What the page may know: never the key, never a path."""
        if not self.default or self.config.available:
            return self.config.public()
        status = self.status()
        status["message"] = page_text(status.get("message"))
        return {
            "available": False,
            "starting": self.starting,
            "status": status,
            "kind": "openai",
            "model": DEFAULT_CLOUD_MODEL,
            "label": DEFAULT_CLOUD_LABEL,
        }

    async def run(self, *, poll_s: float = 1.0) -> None:
        """Start the default tier as soon as it is built (nothing to do for a configured provider)."""
        if not self.default:
            return
        from builder.llama import cloud_tier_built

        while not cloud_tier_built():
            job = self.build.job(CLOUD_JOB) if self.build is not None else None
            if self.build is None or (job is not None and job["state"] in ("failed", "blocked", "skipped")):
                if self.build is None:
                    self.failure = {
                        "state": "blocked",
                        "step": None,
                        "progress": None,
                        "eta_s": None,
                        "message": "llama-server is not built (run ./hr run: it builds it in the "
                        "background, or python -m builder llama)",
                    }
                elif job is not None:
                    self.failure = {k: job[k] for k in ("state", "step", "progress", "eta_s", "message")}
                if self.build is None or not self.build.snapshot()["pending"]:
                    return
            await asyncio.sleep(poll_s)
        self.failure = None
        await self._start()

    async def _start(self) -> None:
        from builder.common import BuildError
        from builder.llama import LlamaServer, ensure_gguf

        server = LlamaServer(ensure_gguf("qwen2.5-coder-0.5b-instruct-q4_k_m"), alias=DEFAULT_CLOUD_MODEL)
        try:
            await asyncio.get_running_loop().run_in_executor(None, server.start)
        except BuildError as exc:
            self.failure = {
                "state": "failed",
                "step": "starting",
                "progress": None,
                "eta_s": None,
                "message": f"llama-server did not start: {exc.message}",
            }
            print(f"  the default cloud tier did not start: {exc}", file=sys.stderr, flush=True)
            return
        self.server = server
        self.config = CloudConfig("openai", server.url, "", DEFAULT_CLOUD_MODEL, DEFAULT_CLOUD_LABEL)
        if self.on_up is not None:
            self.on_up(self.config)
        print(
            f"\r\033[K  the default cloud tier is up: {DEFAULT_CLOUD_LABEL.split(' (')[0]}"
            if sys.stderr.isatty()
            else f"  the default cloud tier is up: {server.url}",
            file=sys.stderr,
            flush=True,
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


class BackgroundBuild:
    """``python -m builder background`` as a child process: the jobs ``./hr run`` leaves for later.

    Its terminal lines go to this server's stderr; its status to ``$CACHE/build/status.json``, which
    :attr:`status` reads. It dies with the server (SIGTERM on Linux even if the server is killed), and a
    training it was running keeps its checkpoint for the next start.
    """

    def __init__(self, cache: Path, *, cloud: str = "auto", jobs: str | None = None) -> None:
        self.cache = cache
        self.args = ["--cloud", cloud, *(["--jobs", jobs] if jobs else [])]
        self.proc: subprocess.Popen[bytes] | None = None
        self.status = BuildStatus(cache / "build" / "status.json", since=time.time())

    def start(self) -> None:
        self.status.since = time.time()
        env = {
            **os.environ,
            "HYBRID_ROUTER_CACHE": str(self.cache),
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "py_src"), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "builder", "background", *self.args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def stop(self, grace_s: float = 60.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)  # a training saves its checkpoint first
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _die_with_parent() -> None:  # in the child, between fork and exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _safe_join(base: Path, rel: str) -> Path | None:
    path = (base / rel).resolve()
    return path if path.is_file() and path.is_relative_to(base.resolve()) else None


def _file(path: Path, cache_control: str) -> web.FileResponse:
    resp = web.FileResponse(path, headers={"Cache-Control": cache_control})
    ctype, _ = mimetypes.guess_type(path.name)
    if ctype:
        resp.content_type = ctype
    return resp


@dataclass
class Site:
    """The handlers: what the server knows (assets, built models, build status, cloud) and how it answers."""

    site: dict[str, Any]
    built: BuiltModels
    tier: CloudTier
    build: BuildStatus | None
    manifest: Path

    async def boot(self, _: web.Request) -> web.Response:
        return web.json_response(
            {**self.site["boot"], "models_manifest": "/models_manifest.json", "models_url": "/models/"},
            headers={"Cache-Control": REVALIDATE},
        )

    async def manifest_json(self, _: web.Request) -> web.Response:
        raw = json.loads(self.manifest.read_text(encoding="utf-8"))
        files = {mid: b.files for mid, b in self.built.current().items()}
        jobs = self.build.by_id() if self.build is not None else None
        return web.json_response(served_manifest(raw, files, jobs), headers={"Cache-Control": NO_STORE})

    async def build_status(self, _: web.Request) -> web.Response:
        body = (
            self.build.snapshot() if self.build is not None else {"pending": False, "version": 0, "jobs": []}
        )
        return web.json_response(body, headers={"Cache-Control": NO_STORE})

    async def vendor(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        for prefix, base in self.site["mounts"].items():
            if path.startswith(prefix) and (hit := _safe_join(Path(base), path[len(prefix) :])):
                return _file(hit, IMMUTABLE)
        raise web.HTTPNotFound(text=f"{path}: not built (run ./hr build)")

    async def model_file(self, request: web.Request) -> web.StreamResponse:
        model = self.built.current().get(request.match_info["model"])
        hit = _safe_join(model.dir, request.match_info["path"]) if model else None
        if hit is None:
            raise web.HTTPNotFound(text=f"model file not found: {request.path}")
        return _file(hit, REVALIDATE)

    async def static(self, request: web.Request) -> web.StreamResponse:
        hit = _safe_join(WEB, request.match_info["path"] or "index.html")
        if hit is None:
            raise web.HTTPNotFound(text=f"{request.path}: not found")
        return _file(hit, REVALIDATE)

    async def cloud_tier(self, _: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self.tier.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.get_running_loop().run_in_executor(None, self.tier.stop)


def make_app(
    site: dict[str, Any],
    models: BuiltModels | Mapping[str, Any],
    *,
    isolation: bool = True,
    relay: RelayConfig | None = None,
    tier: CloudTier | None = None,
    build: BuildStatus | None = None,
    manifest: Path | None = None,
    policy: site_headers.SiteHeaders | None = None,
) -> web.Application:
    """The server's application. ``models``: the built models (a :class:`BuiltModels` follows the build;
    a mapping shaped like ``index.json`` is fixed); ``relay``: the cloud relay's settings (default: from
    the environment); ``tier``: the default cloud tier that comes up later; ``build``: the background
    build's status."""
    built = models if isinstance(models, BuiltModels) else BuiltModels(models)
    relay = relay or RelayConfig.from_env(port=8000)
    tier = tier or CloudTier(relay.cloud, default=False)
    h = Site(site, built, tier, build, manifest or manifest_path())

    # CSP, COOP/COEP, CORP; CORS for the embedding origins (site_headers.py)
    headers = site_headers.middleware(policy or site_headers.SiteHeaders(isolation=isolation))

    app = web.Application(middlewares=[headers])
    cloud_relay = relay_app(relay, pending=tier.pending)
    tier.on_up = lambda cloud: _use_cloud(cloud_relay, cloud)
    app.add_subapp(MOUNT, cloud_relay)  # the cloud relay (before the static catch-all)
    app.cleanup_ctx.append(h.cloud_tier)
    app.router.add_get("/api/build/status", h.build_status)
    app.router.add_get("/boot.json", h.boot)
    app.router.add_get("/models_manifest.json", h.manifest_json)
    app.router.add_get("/models/{model}/{path:.+}", h.model_file)
    app.router.add_get("/{path:(vendor|app)/.+}", h.vendor)
    app.router.add_get("/{path:.*}", h.static)
    return app


def _use_cloud(cloud_relay: web.Application, cloud: CloudConfig) -> None:
    """The default cloud tier is up: the relay forwards to it from now on."""
    state = cloud_relay[STATE]
    state.config = state.config.with_cloud(cloud)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve Hybrid Router locally.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--no-isolation", action="store_true", help="omit the COOP/COEP headers")
    parser.add_argument(
        "--cloud",
        choices=["auto", "none"],
        default="auto",
        help="auto (default): with no HYBRID_ROUTER_CLOUD_BASE_URL, start llama-server with "
        "Qwen2.5-Coder-0.5B-Instruct as the cloud tier once it is built; none: only what the "
        "environment sets",
    )
    parser.add_argument(
        "--build-in-background",
        action="store_true",
        help="build what is not built yet (python -m builder background) while serving",
    )
    parser.add_argument("--build-jobs", default=None, help=argparse.SUPPRESS)  # MODULE:FUNCTION, for tests
    add_relay_arguments(parser, limits=False)
    site_headers.add_arguments(parser)  # --embed-origin, --csp-report-uri
    args = parser.parse_args(argv)
    try:  # before anything starts: a non-loopback --host without a token stops here
        relay = RelayConfig.from_args(args, host=args.host, port=args.port)
    except RelayConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    cache = cache_root()
    site = load_site(cache)
    background = (
        BackgroundBuild(cache, cloud=args.cloud, jobs=args.build_jobs) if args.build_in_background else None
    )
    status = background.status if background is not None else None
    tier = CloudTier(relay.cloud, default=args.cloud == "auto", build=status)
    built = BuiltModels(cache / "models" / "index.json")
    if not built.current() and background is None:
        print("warning: no models are built yet; run ./hr build", file=sys.stderr)
    app = make_app(
        site, built, relay=relay, tier=tier, build=status, policy=site_headers.from_arguments(args)
    )
    bound, url = describe_bind(args.host, args.port)

    def started(_: str) -> None:  # aiohttp calls this once the socket listens
        where = "" if relay.loopback else f" on {bound}"
        print(f"Hybrid Router is running{where}: open {url}  (Ctrl+C to stop)", flush=True)
        if background is not None:
            background.start()

    try:
        web.run_app(
            app, host=args.host, port=args.port, print=started, access_log=None, handler_cancellation=True
        )
    finally:
        if background is not None:
            background.stop()


if __name__ == "__main__":
    main()
