"""What the cloud relay adds: requests per second and latency percentiles, straight to the upstream vs
through ``relay.py``, for N requests with C in flight.

Each side runs in its own process, as deployed: the fake upstream (``tests/fake_upstream.py``: OpenAI
wire format, answers at once, so nearly all of the difference is the relay) and ``relay.py`` in front of
it (rate limit off, the other defences on: Host, Origin, JSON, body policy, usage metering); the client is
aiohttp in this process. Two kinds of call: a whole answer, and a stream of ``--words`` chunks read to
its end. With ``--llama``, the same against the real llama-server (Qwen2.5-Coder-0.5B, 8 tokens; fewer
requests: generation dominates there).

    ./hr bench relay_load [--requests 2000] [--concurrency 8] [--words 32] [--llama]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from tests.harness import REPO, free_port

from .common import header, table

MODEL = "fake-model-1"
LLAMA_MODEL = "qwen2.5-coder-0.5b-instruct"
WARMUP = 30


def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest rank."""
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Result:
    label: str
    seconds: float
    latencies_ms: list[float]
    errors: Counter[str]

    @property
    def failed(self) -> int:
        return sum(n for kind, n in self.errors.items() if not kind.startswith("retried"))

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


@contextmanager
def _process(cmd: list[str], env: dict[str, str], ready_url: str, what: str) -> Iterator[None]:
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(ready_url, proc, what)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def fake_upstream(words: int) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "tests.fake_upstream", "--port", str(port), "--words", str(words)]
    with _process(cmd, dict(os.environ), f"http://127.0.0.1:{port}/", "the fake upstream"):
        yield f"http://127.0.0.1:{port}/v1"


@contextmanager
def relay(base_url: str, model: str) -> Iterator[str]:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HYBRID_ROUTER_CLOUD_", "HYBRID_ROUTER_RELAY_"))
    }
    env.update(
        {
            "HYBRID_ROUTER_CLOUD_BASE_URL": base_url,
            "HYBRID_ROUTER_CLOUD_MODEL": model,
            "HYBRID_ROUTER_CLOUD_API_KEY": "sk-bench",
            "HYBRID_ROUTER_RELAY_RATE_PER_MINUTE": "0",
        }
    )
    cmd = [sys.executable, str(REPO / "relay.py"), "--port", str(port)]
    with _process(cmd, env, f"http://127.0.0.1:{port}/api/cloud/config", "relay.py"):
        yield f"http://127.0.0.1:{port}"


async def _load(
    url: str, origin: str | None, body: dict[str, Any], n: int, concurrency: int, label: str
) -> Result:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    if origin:
        headers["Origin"] = origin
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as s:

        async def send() -> aiohttp.ClientResponse:
            try:
                return await s.post(url, json=body, headers=headers)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                # llama-server closes kept-alive connections after a stream: as the relay does, try once more
                errors["retried (stale connection)"] += 1
                return await s.post(url, json=body, headers=headers)

        async def one() -> None:
            t0 = time.perf_counter()
            try:
                async with await send() as r:
                    await r.read()
                    error = None if r.status == 200 else str(r.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = type(exc).__name__
            if error is None:
                latencies.append((time.perf_counter() - t0) * 1000)
            else:
                errors[error] += 1

        async def worker(count: int) -> None:
            for _ in range(count):
                await one()

        await asyncio.gather(*(worker(WARMUP // concurrency + 1) for _ in range(concurrency)))
        latencies.clear()
        errors.clear()
        t0 = time.perf_counter()
        share = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
        await asyncio.gather(*(worker(k) for k in share))
        seconds = time.perf_counter() - t0
    return Result(label, seconds, latencies, errors)


async def _compare(upstream: str, relayed: str, model: str, n: int, c: int, max_tokens: int) -> list[Result]:
    results = []
    for kind, extra in (
        ("whole", {}),
        ("stream", {"stream": True, "stream_options": {"include_usage": True}}),
    ):
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "Say OK."}],
            "max_tokens": max_tokens,
            **extra,
        }
        results.append(await _load(upstream + "/chat/completions", None, body, n, c, f"{kind}: direct"))
        results.append(
            await _load(relayed + "/api/cloud/chat/completions", relayed, body, n, c, f"{kind}: relay")
        )
    return results


def _print(results: list[Result]) -> None:
    cols = [
        ("calls", 22),
        ("requests", 9),
        ("errors", 7),
        ("req/s", 8),
        ("p50 ms", 8),
        ("p95 ms", 8),
        ("p99 ms", 8),
    ]
    table(
        cols,
        [(r.label, len(r.latencies_ms), r.failed, r.rps, r.p(50), r.p(95), r.p(99)) for r in results],
    )
    for r in results:
        if r.errors:
            print(f"  {r.label}: {dict(r.errors)}")
    print("\nadded by the relay (relay minus direct):")
    rows = []
    for direct, relayed in zip(results[::2], results[1::2], strict=True):
        kind = direct.label.split(":")[0]
        rows.append(
            (
                kind,
                relayed.p(50) - direct.p(50),
                relayed.p(95) - direct.p(95),
                relayed.p(99) - direct.p(99),
                1000 / relayed.rps - 1000 / direct.rps,
            )
        )
    table([("calls", 22), ("p50 ms", 8), ("p95 ms", 8), ("p99 ms", 8), ("ms/req", 8)], rows)


def run(runs: int | None = None, argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(prog="./hr bench relay_load")
    parser.add_argument("--requests", type=int, default=runs or 2000, help="per measurement (default 2000)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--words", type=int, default=32, help="chunks per streamed answer (default 32)")
    parser.add_argument("--llama", action="store_true", help="also against the real llama-server")
    parser.add_argument("--smoke", action="store_true", help="the smallest form: 20 requests, 4 in flight")
    args = parser.parse_args(list(argv))
    if args.smoke:
        args.requests, args.concurrency, args.words = 20, 4, 4
    header(
        f"The cloud relay: {args.requests} requests, {args.concurrency} in flight, direct vs through "
        f"relay.py (fake upstream: answers at once, {args.words} chunks per stream)"
    )
    with fake_upstream(args.words) as upstream, relay(upstream, MODEL) as relayed:
        _print(asyncio.run(_compare(upstream, relayed, MODEL, args.requests, args.concurrency, 16)))
    if args.llama:
        from builder.llama import LlamaServer, ensure_gguf, ensure_llama_server

        ensure_llama_server()
        n = max(args.concurrency, args.requests // 20)
        print(
            f"\nllama-server (Qwen2.5-Coder-0.5B-Instruct, 8 tokens per answer): {n} requests, "
            f"{args.concurrency} in flight"
        )
        with LlamaServer(ensure_gguf("qwen2.5-coder-0.5b-instruct-q4_k_m"), alias=LLAMA_MODEL) as server:
            server.start()
            with relay(server.url, LLAMA_MODEL) as relayed:
                _print(asyncio.run(_compare(server.url, relayed, LLAMA_MODEL, n, args.concurrency, 8)))
