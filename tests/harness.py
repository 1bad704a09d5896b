"""The real-browser harness of the tests and benchmarks: serve.py in a subprocess, Debian's Chromium
through Playwright, a request log.

The browser is Debian's chromium by default (/usr/bin/chromium); set HYBRID_ROUTER_CHROMIUM to use
another one (for example Playwright's own Chromium on a laptop).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-pings",
]


def chromium_path() -> str:
    explicit = os.environ.get("HYBRID_ROUTER_CHROMIUM")
    if explicit:
        return explicit
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium") or "",
        shutil.which("chromium-browser") or "",
    ):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(
        "no Chromium found: install it (apt-get install chromium; ./hr test does) "
        "or set HYBRID_ROUTER_CHROMIUM to a Chromium executable"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    #: a browser profile that visited this server once (see :class:`WarmProfile`); None: every page fresh
    warm: WarmProfile | None = None

    @property
    def origin(self) -> str:
        return self.url.rstrip("/")


def start_server(
    tmp: Path,
    port: int | None = None,
    extra: list[str] | None = None,
    cloud: dict[str, str] | None = None,
    env_extra: dict[str, str] | None = None,
) -> Server:
    """serve.py in a subprocess; ``cloud``: HYBRID_ROUTER_CLOUD_* settings (none: no cloud at all);
    ``env_extra``: more environment (e.g. HYBRID_ROUTER_RELAY_* limits)."""
    port = port or free_port()
    log = tmp / f"serve-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRID_ROUTER_CLOUD_")}
    env.update({f"HYBRID_ROUTER_CLOUD_{k.upper()}": v for k, v in (cloud or {}).items()})
    env.update(env_extra or {})
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "serve.py"), "--port", str(port), "--cloud", "none", *(extra or [])],
        cwd=REPO,
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve.py exited ({proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "boot.json", timeout=2) as resp:
                if resp.status == 200:
                    return Server(url, proc, log)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"serve.py did not answer on {url}:\n{log.read_text()}")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()


@dataclass
class RequestLog:
    """Every request the browser context makes (pages and workers), in order."""

    urls: list[str] = field(default_factory=list)

    def attach(self, context: Any) -> None:
        context.on("request", lambda req: self.urls.append(req.url))

    def foreign(self, origin: str) -> list[str]:
        return [u for u in self.urls if not (u.startswith(origin + "/") or u.startswith(("data:", "blob:")))]


@dataclass
class RouterPage:
    page: Any
    requests: RequestLog
    server: Server
    boot_events: list[dict[str, Any]]

    def call(self, js: str, arg: Any = None) -> Any:
        """Evaluate an async JS function body `(router, arg) => ...` against the page's router."""
        return self.page.evaluate(f"async (arg) => {{ const router = window.router; {js} }}", arg)

    def error_of(self, js: str, arg: Any = None) -> dict[str, Any]:
        """Run JS that must reject; return the error's name, message, hint and details."""
        error: dict[str, Any] = self.call(
            f"try {{ {js}; return {{ name: 'no error' }}; }} catch (e) {{ "
            "return { name: e.name, message: e.message, hint: e.hint, details: e.details }; }",
            arg,
        )
        return error


#: the chat model the browser tests run (their greedy == torch checks are SmolLM2's): a router takes the
#: largest chat model that fits the device, which on this machine's headless Chromium (deviceMemory 8) is a
#: bigger one once the server serves it; :func:`open_router_page` names this one then, unless the options do
TEST_CHAT_MODEL = "SmolLM2-135M-Instruct"


def served_models(server: Server) -> list[dict[str, Any]]:
    """The models of the manifest ``server`` serves (built ones only)."""
    with urllib.request.urlopen(server.url + "boot.json", timeout=10) as resp:
        boot = json.load(resp)
    url = urllib.parse.urljoin(server.url + "boot.json", boot["models_manifest"])
    with urllib.request.urlopen(url, timeout=10) as resp:
        return list(json.load(resp)["models"])


def served_chat_models(server: Server) -> list[str]:
    """The text-generation models of the manifest ``server`` serves (built ones only)."""
    return [m["id"] for m in served_models(server) if "text-generation" in m["tasks"]]


def with_test_chat_model(server: Server, options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` with ``policy.chatModel`` :data:`TEST_CHAT_MODEL` where the server serves it among
    other chat models and the options name none (``chatModel: None`` asks for the device's choice)."""
    out = dict(options or {})
    policy = dict(out.get("policy") or {})
    try:
        served = served_chat_models(server)
    except (OSError, ValueError, KeyError, TypeError):  # a server a test breaks on purpose: as given
        return out
    if "chatModel" not in policy and TEST_CHAT_MODEL in served and len(served) > 1:
        out["policy"] = {**policy, "chatModel": TEST_CHAT_MODEL}
    return out


#: the boot cache's Cache Storage name (web/boot-cache.js CACHE_NAME)
BOOT_CACHE = "hybrid-router-boot-v1"


class WarmProfile:
    """A browser profile that visited ``server`` once: its boot cache (the memory snapshot and the packages'
    bundle) stored and the models of the test policy in its model cache, as a returning user's browser has
    them. :meth:`new_context` gives each page a copy of it, in a browser of its own (a persistent context).

    The tests whose subject is a first visit (start-up, the model cache, privacy of the downloads, every
    deployment's fresh profile) ask for a fresh context (``open_router_page(..., fresh=True)`` or
    ``browser.new_context()``); the others start where a returning user starts, which skips the first
    visit's Python start-up, boot-cache writing and model downloads (a page that runs every local task:
    34-36 s on a fresh profile, 21.6 s on a copy of the warm one, here).
    """

    def __init__(self, server: Server, root: Path, models: list[str]) -> None:
        self.server, self.root, self.models = server, root, models
        self._made: Path | None = None
        self._lock = threading.Lock()

    def _make(self, browser_type: Any) -> Path:
        with self._lock:
            if self._made is None:
                profile = self.root / "profile"
                # the plain flags, whatever browser asks first: the models of a device without WebGPU
                context = browser_type.launch_persistent_context(
                    str(profile), executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
                )
                try:
                    page = context.new_page()
                    page.goto(self.server.url + "sandbox.html")
                    page.evaluate(
                        """async ({ options, models, cache }) => {
                        const { HybridRouter } = await import("/hybrid-router.js");
                        const router = await HybridRouter.create(options);
                        if (models.length) await router.preload(models);
                        // the boot cache is written once no call has been in flight for a while
                        const deadline = Date.now() + 120000;
                        for (;;) {
                          const urls = (await (await caches.open(cache)).keys()).map((r) => r.url);
                          if (urls.some((u) => u.includes("/snapshot-"))
                              && urls.some((u) => u.includes("/site-packages-"))) break;
                          if (Date.now() > deadline) throw new Error("boot cache not stored: " + urls);
                          await new Promise((r) => setTimeout(r, 250));
                        }
                        router.terminate();
                      }""",
                        {
                            "options": with_test_chat_model(self.server, None),
                            "models": self.models,
                            "cache": BOOT_CACHE,
                        },
                    )
                finally:
                    context.close()
                self._made = profile
            return self._made

    def new_context(self, browser: Any) -> Any:
        """A persistent context on a copy of the warm profile, launched as ``browser`` was; the copy is
        removed when the context closes."""
        args = _LAUNCH_ARGS.get(id(browser), CHROMIUM_FLAGS)
        profile = self._make(browser.browser_type)
        copy = Path(tempfile.mkdtemp(prefix="profile-", dir=self.root))
        shutil.copytree(profile, copy, dirs_exist_ok=True, ignore=shutil.ignore_patterns("Singleton*"))
        context = browser.browser_type.launch_persistent_context(
            str(copy), executable_path=chromium_path(), headless=True, args=args
        )
        context.on("close", lambda _c: shutil.rmtree(copy, ignore_errors=True))
        return context

    def remove(self) -> None:
        """Remove the profile and what is left of its copies (about 0.5 GB each)."""
        shutil.rmtree(self.root, ignore_errors=True)


def warm_models(server: Server) -> list[str]:
    """The models a test page loads under the default policy: every served model but the chat models
    other than :data:`TEST_CHAT_MODEL`."""
    return [
        m["id"]
        for m in served_models(server)
        if "text-generation" not in m["tasks"] or m["id"] == TEST_CHAT_MODEL
    ]


def open_router_page(
    browser: Any,
    server: Server,
    *,
    create: bool = True,
    options: dict[str, Any] | None = None,
    fresh: bool = False,
) -> RouterPage:
    """A page of ``server``'s sandbox with ``window.router`` created (``create``). Its context is a copy
    of the server's warm profile where it has one (a returning user's browser), or a fresh one (``fresh``,
    or no warm profile: a first visit)."""
    fresh = fresh or bool(os.environ.get("HYBRID_ROUTER_TEST_FRESH_PROFILES"))
    context = browser.new_context() if fresh or server.warm is None else server.warm.new_context(browser)
    requests = RequestLog()
    requests.attach(context)
    page = context.new_page()
    page.on(
        "console", lambda m: print(f"[browser {m.type}] {m.text}") if m.type in ("error", "warning") else None
    )
    page.goto(server.url + "sandbox.html")
    events: list[dict[str, Any]] = []
    if create:
        events = page.evaluate(
            """async (options) => {
            const { HybridRouter } = await import("/hybrid-router.js");
            const events = [];
            window.router = await HybridRouter.create({ ...options, onProgress: (e) => events.push(e) });
            return events;
        }""",
            with_test_chat_model(server, options),
        )
    return RouterPage(page, requests, server, events)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


#: the arguments each browser of :func:`launch_browser` was launched with (by id), for its warm contexts
_LAUNCH_ARGS: dict[int, list[str]] = {}


def launch_browser(playwright: Any, extra_args: list[str] | None = None) -> Any:
    args = CHROMIUM_FLAGS + (extra_args or [])
    browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args)
    _LAUNCH_ARGS[id(browser)] = args
    browser.on("disconnected", lambda _b: _LAUNCH_ARGS.pop(id(browser), None))
    return browser
