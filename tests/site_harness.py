"""What the tests of the three ways of use share (the static site, the embedded router, the offline PWA)
and of the Content-Security-Policy: static servers, a CSP violation listener and report collector, and
"every local task" run in a page with each answer checked against a reference.

The references: sentence-transformers on torch for embeddings and the vector index (same weights), the
committed task examples (tests/data/task_examples.json) for the task models, the sentence espeak-ng spoke
for speech. Where a task model is not built on this machine, its task is checked to fall back to the
embedding model instead (as the router does).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from tests.harness import REPO, free_port, load_json

EXAMPLES: dict[str, Any] = load_json(REPO / "tests" / "data" / "task_examples.json")
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
GENERATION_MODEL = "SmolLM2-135M-Instruct"
#: the last one is longer than the model's 256 tokens: its truncation (the final [SEP] put back from JS,
#: web/py-bridge.js's setBigInts) must give sentence-transformers' vector
SENTENCES = [
    "The cat sits on the mat.",
    "A kitten is resting on a rug.",
    "Stock markets fell sharply today.",
    " ".join(["The quick brown fox jumps over the lazy dog while the farmer watches."] * 25),
]
INDEX_DOCS = [
    "How do I reset my password?",
    "The invoice is due at the end of the month.",
    "Our office is closed on public holidays.",
    "The train to the airport leaves every twenty minutes.",
]
INDEX_QUERY = "I forgot my login"

#: installed before any script of the page: every securitypolicyviolation of the document, kept for the test
CSP_LISTENER = """(() => {
  const seen = [];
  Object.defineProperty(window, "__cspViolations", { value: seen });
  addEventListener("securitypolicyviolation", (e) => seen.push({ directive: e.effectiveDirective,
    blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, sample: e.sample,
    policy: e.originalPolicy }));
})();"""


#: appends an inline script: under the policy it must not run (and is a script-src-elem violation)
INLINE_SCRIPT_RUNS = """() => {
  const s = document.createElement("script");
  s.textContent = "window.__inlineRan = true";
  document.head.append(s);
  return window.__inlineRan === true;
}"""


def violations(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate("() => window.__cspViolations"))


@dataclass
class ReportCollector:
    """An endpoint for CSP ``report-uri``: browsers POST a JSON report per violation (the worker's too,
    which no listener in the page can see)."""

    reports: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def start(self) -> ReportCollector:
        collected = self.reports

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    collected.append(json.loads(body).get("csp-report", {}))
                except ValueError:
                    collected.append({"unreadable": body.decode(errors="replace")})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/csp-report"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def wait_for(self, condition: Any, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Wait until ``condition()`` holds over the reports received (they arrive as the browser sends
        them); return them. Raises if it never does."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"the expected CSP reports never came: {self.reports}")
            time.sleep(0.1)
        return list(self.reports)

    def stop(self) -> None:
        self._server.shutdown()


@dataclass
class Static:
    """A static server of a folder in a subprocess (python -m http.server, or tests/static_server.py)."""

    root: Path
    url: str
    proc: subprocess.Popen[bytes]

    @property
    def origin(self) -> str:
        return self.url.rstrip("/")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_static(
    root: Path,
    *,
    plain: bool = False,
    headers: dict[str, str] | None = None,
    headers_file: Path | None = None,
    fake_cloud: bool = False,
    port: int | None = None,
    log: Path | None = None,
) -> Static:
    """Serve ``root``: ``plain`` with Python's own http.server (no header of ours at all), otherwise with
    tests/static_server.py adding exactly ``headers`` and what ``headers_file`` (a ``_headers`` file)
    says, and a stand-in relay with ``fake_cloud``."""
    port = port or free_port()
    if plain:
        assert not headers and not fake_cloud and not headers_file
        cmd = [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(root),
        ]
    else:
        cmd = [sys.executable, "-m", "tests.static_server", str(root), "--port", str(port)]
        cmd += [a for name, value in (headers or {}).items() for a in ("--header", f"{name}: {value}")]
        cmd += ["--fake-cloud"] if fake_cloud else []
        cmd += ["--headers-file", str(headers_file)] if headers_file else []
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the static server exited ({proc.returncode}): {cmd}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return Static(root, url, proc)
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error: it answers
                return Static(root, url, proc)
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the static server did not answer on {url}")


def build_test_site(out: Path, *, relay: str | None = None) -> Any:
    """The static site of every built model, as ``python -m builder site`` writes it."""
    from builder.site import build_site

    return build_site(out, relay=relay)


def open_app(context: Any, url: str, *, timeout_ms: int = 180_000) -> Any:
    """A page of ``context`` at the app ``url``, once its router is ready (the app state says so)."""
    page = context.new_page()
    page.on(
        "console", lambda m: print(f"[browser {m.type}] {m.text}") if m.type in ("error", "warning") else None
    )
    page.goto(url)
    wait_ready(page, timeout_ms=timeout_ms)
    return page


def wait_ready(page: Any, *, timeout_ms: int = 180_000) -> None:
    # a selector, not wait_for_function: Playwright evals a function's text, which the CSP refuses
    page.wait_for_selector(
        '#app-state[data-state="ready"], #app-state[data-state="error"]', timeout=timeout_ms
    )
    state = page.eval_on_selector("#app-state", "(e) => e.dataset.state")
    assert state == "ready", page.text_content("#boot-status")


# ------------------------------------------------------------------ every local task, checked


@functools.cache
def _st_model() -> Any:
    from builder.models import source_dir
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(source_dir(EMBEDDING_MODEL)), device="cpu")


def _reference_vectors(texts: list[str]) -> np.ndarray:
    return np.asarray(_st_model().encode(texts, normalize_embeddings=True), dtype=np.float64)


def _task_model(task: str) -> str:
    """The model the router should use for ``task`` here: the task model where it is built, else the
    embedding model (the router's fallback)."""
    from builder.models import load_manifest, read_index

    built = read_index()
    for entry in load_manifest().for_task(task):
        # an NLI model lists text-classification too, but never answers a classification without labels
        if entry.id in built and not (
            task == "text-classification" and "zero-shot-classification" in entry.tasks
        ):
            return entry.id
    return EMBEDDING_MODEL


TASKS_JS = """async (arg) => {
  const router = window.router;
  const out = {};
  const attempt = async (name, fn) => {
    try { out[name] = await fn(); }
    catch (e) { out[name] = { error: { name: e.name, message: e.message, hint: e.hint } }; }
  };
  await attempt("embed", () => router.embed(arg.sentences));
  await attempt("classify", () => router.classify(arg.sentiment.text));
  await attempt("zero_shot", () => router.classify(arg.zero_shot.text, { labels: arg.zero_shot.labels }));
  await attempt("ner", () => router.ner(arg.entities.text));
  await attempt("rerank", () => router.rerank(arg.rerank.query, arg.rerank.documents, { topK: 2 }));
  await attempt("generate", () => router.generate({ prompt: "What is the capital of France?", maxTokens: 8,
    route: "local" }));
  await attempt("transcribe", () => router.transcribe(Float32Array.from(arg.audio)));
  await attempt("index", async () => {
    const index = await router.openIndex(arg.index_name);
    await index.add(arg.docs.map((_, i) => `d${i}`), arg.docs);
    const hits = await index.search(arg.query, { topK: arg.docs.length });
    return { hits: [...hits], route: hits.route, count: index.count };
  });
  return out;
}"""


@functools.cache
def _speech() -> tuple[str, list[float]]:
    from tests.speech import SENTENCES as SPOKEN
    from tests.speech import speak

    samples, _ = speak(SPOKEN[1])
    return SPOKEN[1], samples.tolist()


def run_local_tasks(page: Any, *, index_name: str = "site-test") -> dict[str, Any]:
    """Every local task once, in ``page`` (whose ``window.router`` is ready); results or errors by task."""
    _, audio = _speech()
    arg = {
        "sentences": SENTENCES,
        "sentiment": EXAMPLES["sentiment"][0],
        "zero_shot": EXAMPLES["zero_shot"][0],
        "entities": EXAMPLES["entities"][0],
        "rerank": EXAMPLES["rerank"][0],
        "audio": audio,
        "docs": INDEX_DOCS,
        "query": INDEX_QUERY,
        "index_name": index_name,
    }
    return dict(page.evaluate(TASKS_JS, arg))


TASK_NAMES = ("embed", "classify", "zero_shot", "ner", "rerank", "generate", "transcribe", "index")


def check_local_tasks(results: dict[str, Any]) -> None:
    """Each task answered on the device, by the right model, with the reference's answer (all of
    TASK_NAMES)."""
    from tests.speech import word_error_rate

    # classify without labels and ner have no fallback: without their task model they are not checked
    unbuilt = {
        name
        for name, task in (("classify", "text-classification"), ("ner", "token-classification"))
        if _task_model(task) == EMBEDDING_MODEL
    }
    wanted = set(TASK_NAMES) - unbuilt
    assert wanted <= set(results), sorted(wanted - set(results))
    results = {k: v for k, v in results.items() if k in wanted}
    failed = {k: v["error"] for k, v in results.items() if "error" in v}
    assert not failed, failed
    for name, result in results.items():
        route = result["route"]
        assert route["target"] == "local", (name, route)
    checks: dict[str, Callable[[dict[str, Any]], None]] = {
        "embed": _check_embed,
        "classify": _check_classify,
        "zero_shot": _check_zero_shot,
        "ner": _check_ner,
        "rerank": _check_rerank,
        "generate": _check_generate,
        "index": _check_index,
        "transcribe": lambda r: _check_transcribe(r, word_error_rate),
    }
    for name, result in results.items():
        checks[name](result)


def _check_embed(embed: dict[str, Any]) -> None:
    cos = (np.asarray(embed["vectors"]) * _reference_vectors(SENTENCES)).sum(axis=1)
    assert embed["model"] == EMBEDDING_MODEL and cos.min() >= 0.999, cos


def _check_classify(classify: dict[str, Any]) -> None:
    assert classify["model"] == _task_model("text-classification")
    assert classify["labels"][0]["label"] == EXAMPLES["sentiment"][0]["label"], classify["labels"]


def _check_zero_shot(zero_shot: dict[str, Any]) -> None:
    # labels are scored by embedding similarity unless a call names the NLI model (the method measured
    # better: python -m eval.methods, docs/models.md#which-method-answers)
    assert zero_shot["model"] == EMBEDDING_MODEL
    assert zero_shot["labels"][0]["label"] == EXAMPLES["zero_shot"][0]["label"], zero_shot["labels"]


def _check_ner(ner: dict[str, Any]) -> None:
    assert ner["model"] == _task_model("token-classification")
    expected = [tuple(e) for e in EXAMPLES["entities"][0]["entities"]]
    assert [(e["text"], e["label"]) for e in ner["entities"]] == expected, ner["entities"]


def _check_rerank(rerank: dict[str, Any]) -> None:
    assert rerank["model"] == _task_model("text-ranking")
    assert rerank["results"][0]["index"] == EXAMPLES["rerank"][0]["best"], rerank["results"]


def _check_generate(generate: dict[str, Any]) -> None:
    assert generate["route"]["model"] == GENERATION_MODEL and generate["text"].strip(), generate
    assert generate["usage"]["tokens_out"] > 0


def _check_transcribe(transcribe: dict[str, Any], word_error_rate: Any) -> None:
    spoken, _ = _speech()
    assert word_error_rate(spoken, transcribe["text"]) <= 0.2, transcribe["text"]


def _check_index(index: dict[str, Any]) -> None:
    hits = index["hits"]
    ref = _reference_vectors([INDEX_QUERY])[0] @ _reference_vectors(INDEX_DOCS).T
    assert hits[0]["text"] == INDEX_DOCS[int(np.argmax(ref))], hits
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
