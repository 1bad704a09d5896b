"""The router's facts in the real worker, with the real cloud behind the relay (llama-server behind the
fault proxy): the prompt router scores as it does in CPython, the dry run names the side, rule and score
the real call gets and sends nothing, personal data stays on the device or goes as placeholders (and
stays on the device while the entity model is missing), offline requests stay local without retries,
and the ledger counts every task."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from hybrid_router.pii import NER_MODEL
from hybrid_router.prompt_features import embedding_text
from hybrid_router.prompt_router import PromptRouter
from tests.faults import FaultProxy
from tests.harness import RouterPage, open_router_page

pytestmark = pytest.mark.browser

CLOUD_OPTIONS = {"cloud": {"timeoutMs": 60000}}
#: varied prompts, none of them from the router's training or calibration data
PROMPTS = [
    "hi there!",
    "What's a good name for a grey cat?",
    "Translate 'where is the station' into German.",
    "Write a Python function that merges two sorted lists in O(n) time, with tests.",
    "Prove that there are infinitely many primes of the form 4k+3.",
    "A train leaves at 14:05 at 80 km/h, another at 14:35 at 110 km/h on the same track. When does the second "
    "catch up, and how far from the station?",
    "Summarise the plot of Hamlet in two sentences.",
    "¿Cuál es la capital de Australia? Responde en una palabra.",
    "Explain, step by step, why the halting problem is undecidable, and relate it to Gödel's theorem.",
    "List 3 fruits.",
    "Given the contract clause below, identify the governing law and any indemnification obligations:\n"
    + "The parties agree that this agreement is governed by the laws of Delaware. " * 20,
    "Compare the time complexity of quicksort and heapsort; when would you prefer each?",
]
COMPLEX = PROMPTS[8]
EMAIL = "jane.doe@example.com"
PHONE = "+1 415 555 0123"
NAMED = "Tomasz Wierzbicki"


@pytest.fixture(scope="module")
def page(browser: Any, cloud_server: Any) -> Iterator[RouterPage]:
    rp = open_router_page(browser, cloud_server, options=CLOUD_OPTIONS)
    yield rp
    rp.page.context.close()


@pytest.fixture(scope="module")
def reference() -> PromptRouter:
    return PromptRouter.load()


def test_the_dry_run_names_what_the_real_call_gets(page: RouterPage, proxy: FaultProxy) -> None:
    """Dry run, then the real call, prompt by prompt: the same side, reason, rule and router record (score,
    threshold, head: the embedding head, as the call's), and the dry runs sent nothing to the cloud."""
    pairs = page.call(
        """const out = [];
        for (const prompt of arg) {
          const before = (await router.stats()).requests;
          const dry = await router.route({ prompt, maxTokens: 4 });
          const counted = (await router.stats()).requests - before;
          const real = await router.generate({ prompt, maxTokens: 4 });
          out.push({ dry, counted, real: real.route });
        }
        return out;""",
        PROMPTS,
    )
    keys = ("target", "reason", "rule", "router", "sensitive")
    cloud_calls = 0
    for prompt, pair in zip(PROMPTS, pairs, strict=True):
        dry, real = pair["dry"], pair["real"]
        assert dry["dry_run"] is True and pair["counted"] == 0, prompt  # a dry run is not a request
        assert real["fallbacks"] == [], prompt  # a fallback would change the rule, not the decision
        assert {k: dry[k] for k in keys} == {k: real[k] for k in keys}, prompt
        assert dry["router"]["head"] == "embedding+lexical", prompt
        cloud_calls += real["target"] == "cloud"
    assert {p["real"]["target"] for p in pairs} == {"local", "cloud"}  # the set exercised both sides
    assert proxy.requests() == cloud_calls  # only the real calls reached the cloud


def test_a_real_call_scores_with_the_embedding_head_as_cpython(
    page: RouterPage, reference: PromptRouter
) -> None:
    prompt = PROMPTS[6]
    result = page.call("return await router.generate({ prompt: arg, maxTokens: 4 });", prompt)
    scored = result["route"]["router"]
    assert scored["head"] == "embedding+lexical"
    # the same vector the worker scored with (MiniLM's fidelity to sentence-transformers is checked in
    # test_embeddings.py), through the router in CPython
    vector = page.call("return (await router.embed([arg])).vectors[0];", embedding_text(prompt))
    expected = reference.score(prompt, np.asarray(vector, dtype=np.float32))
    assert scored["score"] == pytest.approx(expected.score, abs=1e-4)
    assert result["route"]["target"] == ("cloud" if expected.score >= scored["threshold"] else "local")


def test_personal_data_stays_on_the_device_under_sensitive_local(page: RouterPage, proxy: FaultProxy) -> None:
    prompt = f"{COMPLEX} Send the answer to {EMAIL} or call {PHONE}."
    result = page.call(
        "return await router.generate({ prompt: arg, maxTokens: 4, policy: { sensitive: 'local' } });", prompt
    )
    route = result["route"]
    assert (route["target"], route["reason"]) == ("local", "sensitive")
    found = route["sensitive"]["found"]  # the NER model may add a name (Gödel) to the patterns' finds
    assert found["EMAIL"] == 1 and found["PHONE"] == 1 and EMAIL not in json.dumps(route)
    assert proxy.requests() == 0
    # the policy held for that call only: the same complex prompt without personal data goes to the cloud
    again = page.call("return await router.route({ prompt: arg });", COMPLEX)
    assert again["target"] == "cloud"


def _entity_model(page: RouterPage) -> bool:
    info = page.call('return await router.call("info", {});')
    return any(m["id"] == NER_MODEL for m in info["models"])


def test_names_are_checked_or_the_prompt_stays_on_the_device(page: RouterPage, proxy: FaultProxy) -> None:
    """With the entity model built, the name is found; without it (a fresh machine, a site without it),
    the prompt stays on the device under 'local' and 'redact' alike, its route naming the missing
    detector, and what only the cloud could serve is refused: nothing reaches the cloud either way."""
    prompt = f"A reference letter for my colleague {NAMED}: prove first that sqrt(2) is irrational."
    built = _entity_model(page)
    for action in ("local", "redact"):
        dry = page.call(
            f"return await router.route({{ prompt: arg, policy: {{ sensitive: '{action}' }} }});", prompt
        )
        result = page.call(
            f"return await router.generate({{ prompt: arg, maxTokens: 4, policy: {{ sensitive: '{action}' }} }});",
            prompt,
        )
        route = result["route"]
        assert (dry["target"], dry["reason"], dry["sensitive"]) == (
            route["target"],
            route["reason"],
            route["sensitive"],
        )
        if built:
            assert route["sensitive"]["missing"] == [] and route["sensitive"]["found"].get("PERSON", 0) >= 1
        else:
            assert (route["target"], route["reason"]) == ("local", "sensitive")
            assert route["sensitive"]["missing"] == [f"ner:{NER_MODEL}"] and NER_MODEL in route["rule"]
            error = page.error_of(
                f"await router.generate({{ prompt: arg, maxTokens: 4, route: 'cloud', "
                f"policy: {{ sensitive: '{action}' }} }})",
                prompt,
            )
            assert error["name"] == "PolicyError" and error["details"]["missing"] == [f"ner:{NER_MODEL}"]
    if not built:
        assert proxy.requests() == 0
    sent = b"".join(proxy.bodies).decode()
    assert "Wierzbicki" not in sent


#: garbage where the entity model's weights should be (what a broken download or a bad file serves)
CORRUPT_ONNX = b"not an ONNX model: " + bytes(range(256)) * 64


def test_an_entity_model_that_fails_to_load_keeps_the_prompt_on_the_device(
    browser: Any, cloud_server: Any, proxy: FaultProxy
) -> None:
    """The entity model is installed but its weights do not load (the server answers its ONNX file with
    garbage): under 'local' and 'redact' the prompt that would go to the cloud stays on the device, its
    route naming the detector that could not run; 'cloud' is refused; nothing reaches the cloud."""
    # a first visit: a returning user's profile has the entity model in its cache, not asking the network
    rp = open_router_page(browser, cloud_server, options=CLOUD_OPTIONS, fresh=True)
    served: list[str] = []

    def corrupt(route: Any) -> None:
        served.append(route.request.url)
        route.fulfill(status=200, body=CORRUPT_ONNX, headers={"Content-Type": "application/octet-stream"})

    rp.page.context.route(f"**/{NER_MODEL}/**/*.onnx", corrupt)
    try:
        if not _entity_model(rp):
            pytest.skip(f"{NER_MODEL} is not built here: the absent case is tested above")
        prompt = f"A reference letter for my colleague {NAMED}: prove first that sqrt(2) is irrational."
        for action in ("local", "redact"):
            result = rp.call(
                f"return await router.generate({{ prompt: arg, maxTokens: 4, policy: {{ sensitive: '{action}' }} }});",
                prompt,
            )
            route = result["route"]
            assert (route["target"], route["reason"]) == ("local", "sensitive"), route
            assert route["sensitive"]["missing"] == [f"ner:{NER_MODEL}"] and NER_MODEL in route["rule"]
            dry = rp.call(
                f"return await router.route({{ prompt: arg, policy: {{ sensitive: '{action}' }} }});", prompt
            )
            assert (dry["target"], dry["reason"], dry["sensitive"]) == (
                "local",
                "sensitive",
                route["sensitive"],
            )
            error = rp.error_of(
                f"await router.generate({{ prompt: arg, maxTokens: 4, route: 'cloud', "
                f"policy: {{ sensitive: '{action}' }} }})",
                prompt,
            )
            assert error["name"] == "PolicyError" and error["details"]["missing"] == [f"ner:{NER_MODEL}"]
        assert served, "the entity model's weights were asked for and answered with garbage"
        assert proxy.requests() == 0
    finally:
        rp.page.context.close()


def test_redact_sends_placeholders_to_the_cloud(page: RouterPage, proxy: FaultProxy) -> None:
    if not _entity_model(page):
        pytest.skip(f"{NER_MODEL} is not built: 'redact' keeps prompts on the device (the test above)")
    prompt = f"Write one short sentence telling {EMAIL} that their order shipped. Reply to {PHONE} too."
    result = page.call(
        "return await router.generate({ prompt: arg, maxTokens: 24, route: 'cloud', policy: { sensitive: 'redact' } });",
        prompt,
    )
    assert result["route"]["target"] == "cloud" and result["route"]["sensitive"]["action"] == "redact"
    sent = b"".join(proxy.bodies).decode()
    assert proxy.requests() == 1 and "[EMAIL_1]" in sent and "[PHONE_1]" in sent
    assert EMAIL not in sent and "555 0123" not in sent and "555" not in sent.split("[PHONE_1]")[0][-20:]
    # placeholders the cloud's answer used are put back on the device
    assert "[EMAIL_1]" not in result["text"] and "[PHONE_1]" not in result["text"]


def test_offline_requests_stay_local_without_retries(page: RouterPage, proxy: FaultProxy) -> None:
    page.call(
        "return await router.generate({ prompt: 'Say hi.', maxTokens: 2, route: 'local' });"
    )  # model loaded
    context = page.page.context
    context.set_offline(True)
    try:
        page.page.wait_for_function("() => navigator.onLine === false")
        result = page.call("return await router.generate({ prompt: arg, maxTokens: 4 });", COMPLEX)
        route = result["route"]
        assert (route["target"], route["reason"]) == ("local", "offline") and route["fallbacks"] == []
        error = page.error_of("await router.generate({ prompt: arg, maxTokens: 4, route: 'cloud' })", COMPLEX)
        assert error["name"] == "OfflineError" and "local models keep working" in error["hint"]
        assert proxy.requests() == 0  # nothing was tried against the network that is gone
    finally:
        context.set_offline(False)
    page.page.wait_for_function("() => navigator.onLine === true")
    back = page.call("return await router.route({ prompt: arg });", COMPLEX)
    assert back["target"] == "cloud"


def test_the_ledger_counts_every_task(page: RouterPage) -> None:
    before = page.call("return await router.stats();")
    page.call("""await router.embed(["one", "two"]);
        await router.classify("a wonderful film", { labels: ["praise", "complaint"] });
        await router.rerank("cats", ["about cats", "about dogs"]);""")
    after = page.call("return await router.stats();")
    for task in ("feature-extraction", "text-classification", "text-ranking"):
        old = before["by_task"].get(task, {"requests": 0, "saved_usd": 0.0})
        assert after["by_task"][task]["requests"] == old["requests"] + 1, task
        assert after["by_task"][task]["saved_usd"] > old["saved_usd"], task
    assert after["requests"] == before["requests"] + 3 and after["local"] == before["local"] + 3
    assert 0 < after["local_share"] <= 1


def test_an_answer_cut_at_its_budget_says_so_on_both_sides(page: RouterPage, proxy: FaultProxy) -> None:
    """finish_reason from the real device (Transformers.js reached max_new_tokens) and the real cloud
    (llama-server's finish_reason), on the result, the route and a stream's last item."""
    prompt = "Write a long story about a lighthouse keeper and the sea, in many paragraphs."
    for side in ("local", "cloud"):
        cut = page.call(
            f"return await router.generate({{ prompt: arg, maxTokens: 3, route: '{side}', temperature: 0 }});",
            prompt,
        )
        assert cut["finish_reason"] == cut["route"]["finish_reason"] == "length", side
        assert cut["route"]["max_tokens"] == 3 and cut["route"]["target"] == side, side
        last = page.call(
            f"""let last = null;
            for await (const item of router.stream({{ prompt: arg, maxTokens: 3, route: '{side}', temperature: 0 }}))
              last = item;
            return last;""",
            prompt,
        )
        assert last["done"] and last["finish_reason"] == last["route"]["finish_reason"] == "length", side
    ended = page.call(
        "return await router.generate({ prompt: 'Reply with the single word: yes', route: 'cloud', temperature: 0 });"
    )
    assert ended["finish_reason"] == "stop" and ended["route"]["max_tokens"] == 1024  # the cloud's default
