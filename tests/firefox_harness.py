"""Firefox for the browser tests: Debian's ``firefox-esr`` driven over WebDriver BiDi by puppeteer-core
(tests/firefox/driver.mjs), with a page object that answers the calls the Chromium helpers make
(``goto``, ``wait_for_selector``, ``evaluate``, ``eval_on_selector``, ``text_content``,
``get_attribute``), so tests/site_harness.py's task runner and checks serve both engines.

Playwright cannot drive a stock Firefox (it needs its own patched build, which is not reachable from
here); WebDriver BiDi is the standard protocol Firefox ships, and puppeteer-core is the well-kept client
of it. Its npm dependencies are installed once per lockfile into the build cache (never the repo):
``$HYBRID_ROUTER_CACHE/node/firefox-driver-<lock hash>/``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from builder.common import cache_root

HERE = Path(__file__).resolve().parent / "firefox"
DEFAULT_FIREFOX = "/usr/bin/firefox-esr"


class FirefoxUnavailable(RuntimeError):
    """Firefox or its driver cannot be set up here (the message says what to do)."""


def firefox_path() -> str:
    explicit = os.environ.get("HYBRID_ROUTER_FIREFOX")
    for candidate in (explicit or "", DEFAULT_FIREFOX, shutil.which("firefox-esr") or ""):
        if candidate and Path(candidate).exists():
            return candidate
    raise FirefoxUnavailable(
        "no Firefox ESR found: install it (apt-get install firefox-esr; ./hr test does) "
        "or set HYBRID_ROUTER_FIREFOX to a Firefox executable"
    )


def ensure_driver() -> Path:
    """The folder holding puppeteer-core and its dependencies (``npm ci`` of tests/firefox's lockfile,
    once per lockfile, into the build cache)."""
    lock = (HERE / "package-lock.json").read_bytes()
    key = hashlib.sha256(lock + (HERE / "package.json").read_bytes()).hexdigest()[:16]
    dest = cache_root() / "node" / f"firefox-driver-{key}"
    done = dest / ".complete"
    if done.exists():
        return dest / "node_modules"
    npm = shutil.which("npm")
    if not npm:
        raise FirefoxUnavailable("npm is needed to install the Firefox driver (apt-get install npm)")
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".lock-firefox-driver-{key}", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if not done.exists():
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(HERE / name, dest / name)
            print(f"installing the Firefox driver (puppeteer-core, npm ci) into {dest}", file=sys.stderr)
            proc = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=dest,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if proc.returncode != 0:
                raise FirefoxUnavailable(f"npm ci of the Firefox driver failed: {proc.stderr[-2000:]}")
            done.write_text(key)
    return dest / "node_modules"


class DriverError(RuntimeError):
    """A driver command failed (the browser's message)."""


class Firefox:
    """One Firefox (one profile) and the node process driving it."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["HR_FIREFOX_DRIVER_MODULES"] = str(ensure_driver())
        env["HR_FIREFOX"] = firefox_path()
        node = shutil.which("node")
        if not node:
            raise FirefoxUnavailable("node is needed to drive Firefox (apt-get install nodejs)")
        self.proc = subprocess.Popen(
            [node, str(HERE / "driver.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._next = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.version = str(self.call("version", timeout=120))

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            if line.strip():
                self._answers.put(json.loads(line))
        self._answers.put(None)

    def call(self, op: str, *, timeout: float = 300, **args: Any) -> Any:
        assert self.proc.stdin
        self._next += 1
        self.proc.stdin.write(json.dumps({"id": self._next, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            raise DriverError(f"{op}: no answer from Firefox in {timeout:.0f} s (driver stopped)") from None
        if answer is None:
            raise DriverError(f"{op}: the Firefox driver exited ({self.proc.poll()})")
        assert answer["id"] == self._next, answer
        if not answer["ok"]:
            raise DriverError(f"{op}: {answer['error']}")
        return answer["value"]

    def new_context(self) -> FirefoxContext:
        return FirefoxContext(self, str(self.call("newContext")))

    def close(self) -> None:
        try:
            self.call("close", timeout=30)
        except DriverError:
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class FirefoxContext:
    """A separate profile inside the one browser (its own storage, service workers and caches)."""

    def __init__(self, browser: Firefox, ident: str) -> None:
        self.browser, self.id = browser, ident

    def new_page(self) -> FirefoxPage:
        return FirefoxPage(self.browser, str(self.browser.call("newPage", context=self.id)))

    def close(self) -> None:
        self.browser.call("closeContext", context=self.id)


class FirefoxPage:
    """The subset of Playwright's Page the shared helpers use, over the driver."""

    def __init__(self, browser: Firefox, ident: str) -> None:
        self.browser, self.id = browser, ident

    def _call(self, op: str, *, timeout: float = 300, **args: Any) -> Any:
        return self.browser.call(op, page=self.id, timeout=timeout, **args)

    def goto(self, url: str) -> None:
        self._call("goto", url=url)

    def reload(self) -> None:
        self._call("reload")

    def wait_for_selector(self, selector: str, *, timeout: float = 180_000) -> None:
        self._call("waitForSelector", selector=selector, ms=timeout, timeout=timeout / 1000 + 30)

    def evaluate(self, fn: str, arg: Any = None) -> Any:
        return self._call("evaluate", fn=fn, arg=arg, timeout=900)

    def eval_on_selector(self, selector: str, fn: str) -> Any:
        return self.evaluate(f"(s) => ({fn})(document.querySelector(s))", selector)

    def text_content(self, selector: str) -> str | None:
        result: str | None = self.evaluate("(s) => document.querySelector(s)?.textContent ?? null", selector)
        return result

    def get_attribute(self, selector: str, name: str) -> str | None:
        result: str | None = self.evaluate(
            "([s, n]) => document.querySelector(s)?.getAttribute(n) ?? null", [selector, name]
        )
        return result

    @property
    def requests(self) -> list[str]:
        return list(self._call("requests"))

    def console(self) -> list[str]:
        return list(self._call("console"))
