"""One decision, dry or real: ``Router.route`` (the dry run) names the side, reason, rule, score and
threshold that the real call then gets, over a varied prompt set and several policies.

The fake runtime gives the embedding step the real all-MiniLM-L6-v2 vectors recorded in tests/data (so
the prompt router's embedding head decides, as in the browser); other texts get deterministic hashed
384-wide vectors. Before the planner shared one path, the dry run scored with the lexical head alone and
disagreed with the call on the score of every prompt and on the side of many.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.unit.fakes import FAKE_LLM_CONTEXT, FakeCloud, FakeRuntime, as_runtime, fake_manifest

from hybrid_router.errors import HybridRouterError
from hybrid_router.prompt_features import embedding_text
from hybrid_router.prompt_router import HEAD_EMBEDDING
from hybrid_router.router import Router

DATA = Path(__file__).resolve().parents[1] / "data"
ROWS = [json.loads(line) for line in (DATA / "router_handwritten.jsonl").read_text().splitlines()]
VECTORS = np.load(DATA / "router_handwritten_embeddings.npy").astype(np.float32)
#: prompts of other shapes: a conversation, personal data, a prompt over the device's window
EXTRA: list[dict[str, Any]] = [
    {"request": "Mail the summary to jane.doe@example.com and prove the lemma by induction."},
    {"request": "Ask my colleague Tomasz Wierzbicki to review the proof that sqrt(2) is irrational."},
    {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is a monad?"},
            {"role": "assistant", "content": "A monoid in the category of endofunctors."},
            {"role": "user", "content": "Now derive the Kleisli composition laws step by step."},
        ]
    },
    {"request": "word " * FAKE_LLM_CONTEXT},
]
POLICIES: list[dict[str, Any]] = [
    {},
    {"cloud_share": 0.3},
    {"sensitive": "local"},
    {"sensitive": "redact"},
    {"tier": "free"},
    {"daily_budget_usd": 0.0001},
]


def _router() -> tuple[Router, FakeRuntime, FakeCloud]:
    recorded = {embedding_text(r["prompt"]): v for r, v in zip(ROWS, VECTORS, strict=True)}
    runtime = FakeRuntime(dims=384, recorded=recorded, people=("Tomasz", "Wierzbicki"))
    cloud = FakeCloud()
    return Router(as_runtime(runtime), fake_manifest(ner=True), cloud=cloud), runtime, cloud


def _decision(d: dict[str, Any]) -> dict[str, Any]:
    """What must agree: the side, reason code, rule sentence, the router's score record, personal data."""
    return {k: d[k] for k in ("target", "reason", "rule", "router", "sensitive")}


def test_the_dry_run_names_what_the_real_call_gets_over_a_varied_prompt_set() -> None:
    router, runtime, cloud = _router()
    sides: set[str] = set()
    heads: set[str] = set()

    async def run() -> None:
        for policy in POLICIES:
            for params in [{"request": r["prompt"]} for r in ROWS] + EXTRA:
                before = (len(cloud.calls), len(runtime.generate_calls), router.stats()["requests"])
                try:
                    dry = _decision(await router.route(**params, policy=policy))
                except HybridRouterError as exc:  # refused: the call must be refused the same way
                    dry = {"error": type(exc).__name__, "message": exc.message}
                # the dry run sent nothing, generated nothing and is not a request
                assert (len(cloud.calls), len(runtime.generate_calls), router.stats()["requests"]) == before
                try:
                    real = _decision((await router.generate(**params, policy=policy)).route.to_wire())
                except HybridRouterError as exc:
                    real = {"error": type(exc).__name__, "message": exc.message}
                assert dry == real, (policy, params)
                sides.add(real.get("target") or real["error"])
                if "router" in real:
                    heads.add(real["router"]["head"])

    asyncio.run(run())
    # the set exercised both sides, the embedding head and a refusal (over budget, over the window)
    assert sides == {"local", "cloud", "PolicyError"} and HEAD_EMBEDDING in heads


def test_the_dry_run_scores_with_the_embedding_head_as_the_call_does() -> None:
    router, runtime, _ = _router()
    hard = next(r["prompt"] for r in ROWS if r["hard"] == 1)
    dry = asyncio.run(router.route(hard))
    assert dry["router"]["head"] == HEAD_EMBEDDING
    assert [c.texts for c in runtime.calls] == [[embedding_text(hard)]]  # the router's own input
    real = asyncio.run(router.generate(hard)).route
    assert real.router is not None
    assert real.router["score"] == pytest.approx(dry["router"]["score"], abs=0)
    assert real.router["threshold"] == dry["router"]["threshold"]
