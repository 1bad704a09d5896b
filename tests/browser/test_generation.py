"""Local generation in a real browser: SmolLM2-135M-Instruct through Transformers.js, against transformers on torch."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import RouterPage, open_router_page

pytestmark = pytest.mark.browser

MODEL = "SmolLM2-135M-Instruct"
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Give me three tips for staying focused while studying.",
]
NEW_TOKENS = 32


@pytest.fixture(scope="module")
def reference() -> list[str]:
    """Greedy continuations from the reference implementation: transformers on torch, same weights."""
    import torch
    from builder.models import source_dir
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = str(source_dir(MODEL))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    out = []
    for prompt in PROMPTS:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt"
        )
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False)
        out.append(tokenizer.decode(gen[0, ids.shape[1] :], skip_special_tokens=True))
    return out


@pytest.fixture(scope="module")
def page(browser: Any, server: Any) -> Any:
    rp = open_router_page(browser, server)
    yield rp
    rp.page.context.close()


def _generate(rp: RouterPage, prompt: str, **options: Any) -> dict[str, Any]:
    result: dict[str, Any] = rp.call(
        "return await router.generate({ prompt: arg.prompt, ...arg.options });",
        {"prompt": prompt, "options": {"maxTokens": NEW_TOKENS, "route": "local", **options}},
    )
    return result


def test_greedy_output_equals_the_torch_reference(page: RouterPage, reference: list[str]) -> None:
    for prompt, expected in zip(PROMPTS, reference, strict=True):
        result = _generate(page, prompt)
        assert result["text"].strip() == expected.strip(), prompt
        route = result["route"]
        assert route["target"] == "local" and route["model"] == MODEL and route["cost_usd"] == 0
        assert 0 < result["usage"]["tokens_out"] <= NEW_TOKENS and result["usage"]["tokens_in"] > 10


def test_stream_yields_deltas_then_done_and_matches_generate(page: RouterPage) -> None:
    chunks = page.call(
        """const out = [];
        for await (const c of router.stream({ prompt: arg, maxTokens: 24, route: "local" })) out.push(c);
        return out;""",
        PROMPTS[0],
    )
    deltas = [c["delta"] for c in chunks[:-1]]
    assert len(deltas) >= 2 and all(isinstance(d, str) and d for d in deltas)
    final = chunks[-1]
    assert final["done"] is True and final["route"]["target"] == "local"
    whole = _generate(page, PROMPTS[0], maxTokens=24)
    assert "".join(deltas).strip() == whole["text"].strip()


def test_deltas_arrive_while_the_model_is_still_generating(page: RouterPage) -> None:
    """Ordering, not timing: a call sent after the first delta is answered before the stream ends.

    If the generation loop never yielded to the worker's event loop, every delta (and that reply)
    would only be delivered after the last token.
    """
    order = page.call(
        """const order = []; let asked = false;
        for await (const c of router.stream({ prompt: arg, maxTokens: 48, route: "local" })) {
          if (c.delta && !asked) { asked = true; router.stats().then(() => order.push("stats")); }
          order.push(c.done ? "done" : "delta");
        }
        return order;""",
        "Tell me a long story about a dragon.",
    )
    assert "stats" in order and order.index("stats") < order.index("done"), order
    assert order.count("delta") >= 2


def test_abort_mid_stream_stops_local_generation(page: RouterPage) -> None:
    result = page.call(
        """const c = new AbortController(); let got = 0;
        try {
          for await (const chunk of router.stream({ prompt: arg, maxTokens: 200, route: "local", signal: c.signal })) {
            if (chunk.delta) { got++; if (got === 2) c.abort(); }
          }
          return { name: "no error", got };
        } catch (e) { return { name: e.name, got, hint: e.hint }; }""",
        "Tell me a long story about a dragon.",
    )
    assert result["name"] == "AbortError" and result["got"] == 2 and result["hint"]
    after = _generate(page, "Say hi.", maxTokens=8)  # the worker is free again
    assert after["text"]
    stats = page.call("return await router.stats();")
    assert stats["errors"] >= 1  # the aborted request is counted, not lost


def test_bad_generation_input_is_a_validation_error(page: RouterPage) -> None:
    for bad in (
        {},
        {"prompt": 5},
        {"prompt": "x", "messages": [{"role": "user", "content": "y"}]},
        {"prompt": "x", "maxTokens": -1},
        {"messages": [{"role": "wizard", "content": "x"}]},
    ):
        err = page.error_of("await router.generate(arg)", bad)
        assert err["name"] == "ValidationError", (bad, err)
        assert err["hint"]


def test_no_cloud_configured_keeps_everything_local(page: RouterPage) -> None:
    err = page.error_of("await router.generate({ prompt: 'hi', route: 'cloud' })")
    assert err["name"] == "PolicyError" and err["hint"]
    complex_prompt = (
        "Prove that the square root of 2 is irrational, then derive the closed form of the sum of "
        "the first n cubes and explain each step of the induction rigorously."
    )
    result = _generate(page, complex_prompt, route="auto", maxTokens=8)
    assert result["route"]["target"] == "local"


def test_stats_and_the_daily_spend_survive_a_reload(browser: Any, server: Any) -> None:
    """The ledger is saved in IndexedDB: a reload (same profile) keeps the counts, so a budget holds."""
    rp = open_router_page(browser, server)
    try:
        rp.call("return await router.generate({ prompt: 'Say hi.', maxTokens: 2, route: 'local' });")
        before = rp.call("return await router.stats();")
        assert before["requests"] >= 1
        rp.page.reload()
        rp.page.evaluate("""async () => {
            const { HybridRouter } = await import("/hybrid-router.js");
            window.router = await HybridRouter.create();
        }""")
        after = rp.call("return await router.stats();")
        assert after["requests"] == before["requests"] and after["local"] == before["local"]
    finally:
        rp.page.context.close()


#: a conversation of three user turns (the answers are the model's own, greedy)
TURNS = [
    "What is the capital of France?",
    "And what is it famous for?",
    "Name one museum there.",
]
CHAT_TOKENS = 24


def _chat(rp: RouterPage, messages: list[dict[str, str]]) -> dict[str, Any]:
    result: dict[str, Any] = rp.call(
        "return await router.generate({ messages: arg.messages, maxTokens: arg.n, route: 'local' });",
        {"messages": messages, "n": CHAT_TOKENS},
    )
    return result


def test_a_follow_up_turn_reuses_the_kv_cache_and_answers_as_a_fresh_evaluation(page: RouterPage) -> None:
    """Each follow-up turn evaluates only its new tokens (the runtime passes the previous turn's
    past_key_values to Transformers.js), and its greedy answer is the one the whole conversation gives
    when evaluated from scratch."""
    page.call("return await router.generate({ prompt: 'Say hi.', maxTokens: 2, route: 'local' });")
    history: list[dict[str, str]] = []
    turns: list[dict[str, Any]] = []
    for i, question in enumerate(TURNS):
        history.append({"role": "user", "content": question})
        result = _chat(page, history)
        route = result["route"]
        assert route["target"] == "local" and route["model"] == MODEL
        if i == 0:
            assert route["tokens_cached"] == 0  # another conversation's cache is not used
        else:
            before = turns[-1]["route"]
            # everything the previous turn evaluated: its prompt and answer (the answer's last token
            # was sampled but never fed back to the model)
            assert route["tokens_cached"] == before["tokens_in"] + before["tokens_out"] - 1, (i, route)
            assert route["tokens_in"] > route["tokens_cached"]
        turns.append(result)
        history.append({"role": "assistant", "content": result["text"]})

    for i in range(1, len(TURNS)):
        page.call("return await router.generate({ prompt: 'Say hi.', maxTokens: 2, route: 'local' });")
        fresh = _chat(page, history[: 2 * i + 1])  # the same conversation, after another one
        assert fresh["route"]["tokens_cached"] == 0, i  # evaluated from scratch
        assert fresh["text"] == turns[i]["text"], i
        assert fresh["usage"]["tokens_out"] == turns[i]["usage"]["tokens_out"]


def test_an_aborted_follow_up_leaves_no_stale_cache(page: RouterPage) -> None:
    """A turn stopped mid-answer frees the cache it was given: the next turn is evaluated from scratch
    and still answers as a fresh evaluation does."""
    first = _chat(page, [{"role": "user", "content": TURNS[0]}])
    history = [
        {"role": "user", "content": TURNS[0]},
        {"role": "assistant", "content": first["text"]},
        {"role": "user", "content": "Tell me a long story about a dragon."},
    ]
    stopped = page.call(
        """const c = new AbortController(); let got = 0;
        try {
          for await (const chunk of router.stream({ messages: arg, maxTokens: 200, route: "local", signal: c.signal })) {
            if (chunk.delta) { got++; if (got === 2) c.abort(); }
          }
          return "no error";
        } catch (e) { return e.name; }""",
        history,
    )
    assert stopped == "AbortError"
    again = _chat(page, history)
    assert again["route"]["tokens_cached"] == 0
    page.call("return await router.generate({ prompt: 'Say hi.', maxTokens: 2, route: 'local' });")
    assert _chat(page, history)["text"] == again["text"]


# ---------------------------------------------------------------- the second chat model

QWEN = "Qwen2.5-Coder-0.5B-Instruct"
#: one short answer: onnxruntime-web's wasm MatMulNBits decodes this model at 0.08 tokens/s (each token
#: about 12 s here), so 5 tokens ("The capital of France is"): the prompt's prefill and 4 decode steps, each
#: an exact match; the conversion's weight equality is tests/unit/test_gguf_qwen.py's
QWEN_PROMPTS = ["What is the capital of France?"]
QWEN_TOKENS = 5


@pytest.fixture(scope="module")
def qwen_reference() -> list[str]:
    """Qwen's greedy continuations on torch (its reference folder: transformers dequantizing the GGUF)."""
    import torch
    from builder.models import load_manifest, model_dir, reference_dir
    from transformers import AutoModelForCausalLM, AutoTokenizer

    manifest = load_manifest()
    if QWEN not in manifest.ids:
        pytest.fail(f"the manifest has no {QWEN}")
    entry = manifest.model(QWEN)
    if not (model_dir(entry) / "onnx" / "model_q4.onnx").is_file() or not reference_dir(entry).is_dir():
        pytest.skip(f"{QWEN} is not built here (python -m builder all --models {QWEN} builds it)")
    folder = str(reference_dir(entry))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    out = []
    for prompt in QWEN_PROMPTS:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt"
        )
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=QWEN_TOKENS, do_sample=False)
        out.append(tokenizer.decode(gen[0, ids.shape[1] :], skip_special_tokens=True))
    return out


def test_qwen_greedy_output_in_chromium_equals_the_torch_reference(
    browser: Any, server: Any, qwen_reference: list[str]
) -> None:
    """The 0.5B model's q4 (its GGUF's blocks, MatMulNBits) in Transformers.js, chosen by name: no router
    call picks a chat model per call yet, so a plain Transformers.js worker set up as web/worker.js sets
    it up (bench/dtype-worker.js, same origin, the product's headers) loads it."""
    from bench.chat_dtypes import START, WORKER, WORKER_URL
    from bench.common import evaluate, serve_worker_file

    rp = open_router_page(browser, server)
    try:
        serve_worker_file(rp.page.context, server.origin, WORKER, WORKER_URL)
        setup = evaluate(rp.page, START, WORKER_URL, timeout_s=120)
        assert setup["ort"] == "ort-wasm-simd-threaded.mjs"  # the plain wasm build, not the asyncify one
        loaded = evaluate(
            rp.page, "(a) => window.dtypeCall('load', a)", {"model": QWEN, "dtype": "q4"}, timeout_s=600
        )
        assert loaded["load_ms"] > 0  # the session was created: its weights fit the wasm heap
        for prompt, expected in zip(QWEN_PROMPTS, qwen_reference, strict=True):
            got = evaluate(
                rp.page,
                "(a) => window.dtypeCall('generate', a)",
                {"prompt": prompt, "maxTokens": QWEN_TOKENS},
                timeout_s=900,
            )
            assert got["text"].strip() == expected.strip(), prompt
    finally:
        rp.page.context.close()
