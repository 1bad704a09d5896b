"""Models built and a cloud tier brought up while the page is open reach the router without a reload; a
fully built server is never asked."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.unit.fakes import FakeCloud, FakeRuntime, as_runtime, fake_manifest_dict

from hybrid_router.build_watch import BuildWatch, cloud_note, pending
from hybrid_router.errors import ModelLoadError, ModelNotReadyError, ValidationError, error_to_wire
from hybrid_router.manifest import Manifest
from hybrid_router.router import Router
from hybrid_router.routing.models import classify_plan

STARTING = {
    "available": False,
    "starting": True,
    "status": {"state": "running", "step": "compiling", "progress": 0.4, "eta_s": 370, "message": None},
}


class Server:
    """Answers the three URLs from what the test sets; records every request."""

    def __init__(self, manifest: dict[str, Any], cloud: dict[str, Any]) -> None:
        self.manifest, self.cloud, self.version = manifest, cloud, 1
        self.asked: list[str] = []

    async def fetch(self, url: str) -> tuple[int, Any]:
        self.asked.append(url)
        body = {
            "status": {"pending": True, "version": self.version, "jobs": []},
            "manifest": self.manifest,
            "cloud": self.cloud,
        }[url]
        return 200, body


def test_what_is_pending_and_what_the_route_says_meanwhile() -> None:
    assert not pending({"models": [], "not_built": [{"id": "x", "state": "skipped"}]}, {"available": True})
    assert pending({"not_built": [{"id": "x", "state": "running"}]}, {})
    assert pending({}, STARTING)
    assert cloud_note(STARTING) == "the cloud tier is still starting (compiling, ~6 minutes left)"
    assert cloud_note({"available": True}) is None
    failed = {"available": False, "starting": False, "status": {"state": "failed", "message": "cmake failed"}}
    assert cloud_note(failed) == "the cloud tier could not start (cmake failed)"


async def test_nothing_pending_means_no_request() -> None:
    server = Server({"models": []}, {"available": True})
    watch = BuildWatch(
        server.fetch,
        {"status": "status", "manifest": "manifest", "cloud": "cloud"},
        lambda m: None,
        lambda c: None,
        manifest=server.manifest,
        cloud=server.cloud,
    )
    await watch.run()
    assert server.asked == []


async def test_a_model_built_in_the_background_and_the_cloud_coming_up_reach_the_router() -> None:
    data = fake_manifest_dict()
    nli = {**data["models"][0], "id": "fake-nli", "tasks": ["zero-shot-classification"]}
    before = {**data, "not_built": [{"id": "fake-nli", "tasks": nli["tasks"], "state": "running"}]}
    router = Router(as_runtime(FakeRuntime()), Manifest.from_dict(before), cloud_note=cloud_note(STARTING))
    labelled = await router.classify("sports news", labels=["sports", "music"])
    assert labelled.model == "fake-embed" and "embedding similarity" in labelled.route.rule
    complex_prompt = (
        "Prove that the square root of 2 is irrational, then compute 17*23+45/9-2^7 step by step."
    )
    early = await router.generate(complex_prompt)
    assert early.route.target == "local" and "still starting" in early.route.rule
    server = Server(before, STARTING)
    seen: list[str] = []

    def on_manifest(m: dict[str, Any]) -> None:
        router.use_manifest(Manifest.from_dict(m))
        seen.append("manifest")

    def on_cloud(c: dict[str, Any]) -> None:
        router.use_cloud(FakeCloud() if c.get("available") else None, label="up", note=cloud_note(c))
        seen.append("cloud")

    async def sleep(_: float) -> None:  # the build finishes between two polls
        server.version += 1
        server.manifest = {**data, "models": [*data["models"], nli]}
        server.cloud = {"available": True, "kind": "openai", "model": "fake-gpt", "label": "up"}
        await asyncio.sleep(0)

    watch = BuildWatch(
        server.fetch,
        {"status": "status", "manifest": "manifest", "cloud": "cloud"},
        on_manifest,
        on_cloud,
        sleep=sleep,
        manifest=before,
        cloud=STARTING,
    )
    await watch.run()
    assert seen == ["manifest", "cloud"] and server.asked == ["status", "manifest", "cloud"]
    after = await router.classify("sports news", labels=["sports", "music"])
    # the NLI model is installed now: the route no longer says it is missing (embedding similarity stays
    # the first choice, measured better); named, it is the one that runs
    assert after.model == "fake-embed" and "no zero-shot (NLI) model" not in after.route.rule
    assert "no zero-shot (NLI) model" in labelled.route.rule
    assert [
        m.model.id for m in classify_plan(router.manifest, labels=True, examples=0, model_id="fake-nli")
    ] == ["fake-nli"]
    late = await router.generate(complex_prompt)
    assert late.route.target == "cloud" and late.route.reason == "complexity"


async def test_a_task_whose_model_is_still_being_built_says_so() -> None:
    """Sentiment and entities while their models train: a typed error with the progress, the time left and
    what answers meanwhile, not "the manifest has no text-classification model"; the wire carries it."""
    data = fake_manifest_dict()
    training = {
        "id": "fake-sentiment",
        "tasks": ["text-classification"],
        "state": "running",
        "step": "training",
        "progress": 0.33,
        "eta_s": 420,
    }
    queued = {"id": "fake-ner", "tasks": ["token-classification"], "state": "queued", "eta_s": 2400}
    blocked = {
        "id": "fake-ranker",
        "tasks": ["text-ranking"],
        "state": "blocked",
        "step": "downloading data",
        "message": "the training data is not here",
        "hint": "Put the data folder next to the repository.",
    }
    served = {**data, "not_built": [training, queued, blocked, {"id": 3}, "junk"]}
    manifest = Manifest.from_dict(served)
    assert [m.id for m in manifest.not_built] == ["fake-sentiment", "fake-ner", "fake-ranker"]
    router = Router(as_runtime(FakeRuntime()), manifest)

    with pytest.raises(ModelNotReadyError) as sentiment:
        await router.classify("The battery died after two days.")
    err = sentiment.value
    assert isinstance(err, ModelLoadError)  # callers that handle a model that cannot load still catch it
    assert err.message == (
        "the text-classification model fake-sentiment is still being built on the server "
        "(training, 33%, ~7 minutes left)"
    )
    assert "manifest has no" not in err.message and "labels" in err.hint and "embedding" in err.hint
    assert err.details == {
        "model": "fake-sentiment",
        "task": "text-classification",
        "state": "running",
        "step": "training",
        "progress": 0.33,
        "eta_s": 420.0,
    }
    # the way the hint names answers now
    labelled = await router.classify("The battery died after two days.", labels=["positive", "negative"])
    assert labelled.model == "fake-embed"

    with pytest.raises(ModelNotReadyError) as entities:
        await router.ner("Angela Merkel met Emmanuel Macron in Paris.")
    assert entities.value.message == (
        "the named-entity model fake-ner is queued in the server's build (ready in ~40 minutes)"
    )
    assert entities.value.hint.startswith("Try again when it is built")
    with pytest.raises(ModelNotReadyError, match="fake-ner is queued"):
        await router.ner("Paris", model="fake-ner")  # asked for by name: the same answer

    # a model the build cannot make here: says why and what to do, still not "the manifest has no ..."
    reranked = await router.rerank("q", ["a", "b"])  # reranking has its own way meanwhile
    assert reranked.model == "fake-embed"
    with pytest.raises(ModelNotReadyError) as ranker:
        await router.rerank("q", ["a", "b"], model="fake-ranker")
    assert ranker.value.message.endswith(
        "not built: the server's build is waiting (the training data is not here)"
    )
    assert ranker.value.hint == "Put the data folder next to the repository."

    # on the wire: the name the page shows, the details it reads the progress from
    wire_error = error_to_wire(err)
    assert wire_error["name"] == "ModelNotReadyError" and wire_error["details"]["eta_s"] == 420.0

    # once built, the model answers (the served manifest lists it under models, no longer under not_built)
    router.use_manifest(Manifest.from_dict(data))
    with pytest.raises(ValidationError, match="manifest has no text-classification model"):
        await router.classify("no model and none coming")
