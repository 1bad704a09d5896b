"""500 seeded random JS values (wrong types, huge and deep structures, NaN, binary data, odd strings)
through every client method in a real browser: each call ends in a result or an error with one of the
router's names and a hint, none hangs, and the worker keeps serving."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import RouterPage, Server, open_router_page

pytestmark = pytest.mark.browser

FUZZ = r"""
async ({ seed, start, count, names }) => {
  let state = seed >>> 0;
  const rand = () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const strings = () => pick(["", " ", "x", "hello world", "\u0000", "\ud800", "𝕳𝖊𝖑𝖑𝖔 👋🏽", "a".repeat(200001),
    "<script>alert(1)</script>", "%2e%2e/", "null", "NaN", "\n".repeat(50), "é".repeat(3000)]);
  const deep = (n) => { let v = ["leaf"]; for (let i = 0; i < n; i++) v = rand() < 0.5 ? [v] : { k: v }; return v; };
  const value = (depth = 0) => {
    const r = rand();
    if (r < 0.1) return pick([null, undefined, true, false, 0, -0, NaN, Infinity, -Infinity, 2 ** 53, -1, 1.5, 1e308]);
    if (r < 0.3) return strings();
    if (r < 0.38) return new Float32Array(Math.floor(rand() * 2000)).map(() => rand() * 4 - 2);
    if (r < 0.43) return new Uint8Array(Math.floor(rand() * 300)).map(() => rand() * 256).buffer;
    if (r < 0.47) return deep(Math.floor(rand() * 60));
    if (r < 0.5) return Array.from({ length: Math.floor(rand() * 3000) }, () => strings().slice(0, 30));
    if (r < 0.53) return pick([() => 1, Symbol("s"), new Date(0), new Map([[1, 2]]), /re/g, new Error("e")]);
    if (r < 0.56) return new Blob([new Uint8Array(64)]);
    if (depth > 3) return strings();
    if (r < 0.78) return Array.from({ length: Math.floor(rand() * 5) }, () => value(depth + 1));
    const o = {};
    for (const k of ["texts", "labels", "model", "dtype", "topK", "maxTokens", "route", "prompt", "messages",
                     "role", "content", "temperature", "signal", "examples", "budgetBytes", "task"]) {
      if (rand() < 0.3) o[k] = value(depth + 1);
    }
    return o;
  };
  const calls = [
    (a, b) => router.embed(a, b),
    (a, b) => router.classify(a, b),
    (a, b) => router.classify("a fine text", { labels: a, examples: b }),
    (a, b) => router.ner(a, b),
    (a, b) => router.rerank(a, b),
    (a, b) => router.transcribe(a, b),
    (a, b) => router.generate({ prompt: a, maxTokens: 1, ...(typeof b === "object" && b ? b : {}), maxTokens: 1 }),
    (a) => router.generate(a),
    async (a) => { for await (const _ of router.stream({ messages: a, maxTokens: 1 })) { /* drain */ } },
    (a) => router.openIndex(a),
    (a, b) => router.preload(a, b),
    (a) => router.deleteModel(a),
    (a) => router.configure(a),
    (a) => router.recommendModels(a),
    (a) => router.configureCache(a),
  ];
  const bad = [];
  let results = 0;
  for (let i = 0; i < start + count; i++) {
    const a = value(), b = value(), call = calls[i % calls.length];
    if (i < start) continue;  // the same sequence, another part of it
    const guard = new Promise((resolve) => setTimeout(() => resolve("hang"), 120000));
    let outcome;
    try {
      outcome = await Promise.race([Promise.resolve().then(() => call(a, b)).then(() => "ok"), guard]);
    } catch (e) {
      outcome = e;
    }
    if (outcome === "ok") { results++; continue; }
    if (outcome === "hang" || !(outcome instanceof Error) || !names.includes(outcome.name) || !outcome.hint) {
      bad.push({ i, call: i % calls.length, name: outcome?.name ?? String(outcome), message: String(outcome?.message ?? "").slice(0, 200) });
    }
  }
  await router.configure({ route: "auto", privacy: "allow-cloud", tier: "pro", dailyBudgetUSD: null });
  return { bad, results };
}
"""


@pytest.mark.parametrize("start", [0, 100, 200, 300, 400])
def test_random_values_through_every_client_method_get_typed_errors(
    browser: Any, server: Server, start: int
) -> None:
    # 500 values in five pages of 100: one worker that runs every model on random inputs grows its
    # WebAssembly heap until the tab runs out of memory (about 200 values in, on this machine)
    rp: RouterPage = open_router_page(browser, server)
    try:
        names = rp.page.evaluate("async () => (await import('/errors.js')).ERROR_NAMES")
        allowed = [n for n in names if n != "InternalError"]
        out = rp.page.evaluate(FUZZ, {"seed": 20261202, "start": start, "count": 100, "names": allowed})
        assert out["bad"] == [], out["bad"][:10]
        assert out["results"] > 0  # some values were valid and answered
        assert rp.call("return (await router.embed(['still serving'])).dims") == 384
    finally:
        rp.page.context.close()
