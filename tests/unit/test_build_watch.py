"""Models built and a cloud tier brought up while the page is open reach the router without a reload; a
fully built server is never asked."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.fakes import FakeCloud, FakeRuntime, as_runtime, fake_manifest_dict

from hybrid_router.build_watch import BuildWatch, cloud_note, pending
from hybrid_router.manifest import Manifest
from hybrid_router.router import Router

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
    # the NLI model is the first choice now (the fake runtime cannot run it: the embedding model answers,
    # and the route names the NLI model's failure)
    assert [f.model for f in after.route.fallbacks] == ["fake-nli"] and after.route.reason == "fallback"
    late = await router.generate(complex_prompt)
    assert late.route.target == "cloud" and late.route.reason == "complexity"
