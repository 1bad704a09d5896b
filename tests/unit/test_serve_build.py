"""serve.py while the build goes on in the background: the page is served before the jobs finish, a model
built meanwhile is served without a restart, /api/build/status tells the jobs (and no server path), and the
default cloud tier says it is starting until it is up.

The background build here is real (``python -m builder background`` in a child process) with the fake job
list of tests/fake_jobs.py: a job that waits until the test creates a file, then one that writes a built
model. Nothing waits on a clock: the test polls for the states it expects, with a generous deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import serve
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from builder.served import BuildStatus, BuiltModels, page_text
from hybrid_router_relay import CloudConfig, RelayConfig
from tests import fake_jobs

SITE: dict[str, Any] = {"mounts": {}, "boot": {}}
DEADLINE_S = 120.0  # a safety net for a stuck test, not a timing assertion


def fake_manifest(path: Path) -> Path:
    entry = {
        "id": fake_jobs.FAKE_MODEL,
        "tasks": ["feature-extraction"],
        # the committed record of a build elsewhere: the same names, other hashes
        "files": {"config.json": {"size": 1, "sha256": "0" * 64}},
        "variants": {"fp32": {"files": {"onnx/model.onnx": {"size": 1, "sha256": "0" * 64}}}},
    }
    waits = {
        "id": "waits",
        "tasks": ["text-classification"],
        "files": {},
        "variants": {"fp32": {"files": {}}},
    }
    path.write_text(json.dumps({"schema": 1, "models": [entry, waits]}))
    return path


async def poll(
    client: TestClient[web.Request, web.Application], url: str, until: Callable[[dict[str, Any]], object]
) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        body: dict[str, Any] = await (await client.get(url)).json()
        if until(body):
            return body
        assert time.monotonic() < deadline, f"{url} never reached the expected state: {body}"
        await asyncio.sleep(0.1)


async def test_the_page_is_served_while_the_background_build_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    release = tmp_path / "release"
    monkeypatch.setenv("HYBRID_ROUTER_CACHE", str(cache))
    monkeypatch.setenv("FAKE_JOB_RELEASE", str(release))
    background = serve.BackgroundBuild(cache, cloud="none", jobs="tests.fake_jobs:slow_background")
    app = serve.make_app(
        SITE,
        BuiltModels(cache / "models" / "index.json"),
        build=background.status,
        manifest=fake_manifest(tmp_path / "manifest.json"),
    )
    try:
        async with TestClient(TestServer(app)) as client:
            background.start()
            status = await poll(
                client, "/api/build/status", lambda b: any(j["step"] == "training" for j in b["jobs"])
            )
            # the first job cannot finish until the test lets it: everything below happens while it runs
            assert status["pending"] is True and [j["id"] for j in status["jobs"]] == ["waits", "fake-model"]
            waits, model = status["jobs"]
            assert waits["step"] == "training" and waits["detail"] == "waiting for the test to let it finish"
            assert model["state"] == "queued" and model["eta_s"] is not None
            assert set(waits) == {
                "id",
                "kind",
                "title",
                "state",
                "step",
                "detail",
                "progress",
                "eta_s",
                "message",
                "hint",
            }
            page = await client.get("/")
            assert page.status == 200 and "Hybrid Router" in await page.text()
            manifest = await (await client.get("/models_manifest.json")).json()
            assert manifest["models"] == []
            assert {e["id"]: e["state"] for e in manifest["not_built"]} == {
                "fake-model": "queued",
                "waits": "running",
            }
            version = status["version"]

            release.touch()  # the slow job finishes; the next one builds the model
            status = await poll(client, "/api/build/status", lambda b: not b["pending"])
            assert [j["state"] for j in status["jobs"]] == ["done", "done"] and status["version"] > version
            manifest = await (await client.get("/models_manifest.json")).json()
            assert [m["id"] for m in manifest["models"]] == ["fake-model"]  # no restart
            assert manifest["models"][0]["variants"]["fp32"]["files"]["onnx/model.onnx"]["size"] == len(
                fake_jobs.FAKE_FILES["onnx/model.onnx"]
            )
            resp = await client.get("/models/fake-model/onnx/model.onnx")
            assert await resp.text() == fake_jobs.FAKE_FILES["onnx/model.onnx"]
            assert str(tmp_path) not in json.dumps(status) + json.dumps(manifest)
    finally:
        release.touch()
        background.stop()
    assert (cache / "logs" / "waits.log").is_file()


def write_status(
    path: Path,
    jobs: list[dict[str, Any]],
    *,
    pid: int,
    finished: bool = False,
    started_at: float | None = None,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "runner_pid": pid,
                "started_at": started_at or time.time(),
                "updated_at": time.time(),
                "finished": finished,
                "jobs": jobs,
            }
        )
    )
    os.utime(path, ns=(time.time_ns(), time.time_ns()))


def job(jid: str, state: str, **kw: Any) -> dict[str, Any]:
    base = {
        "id": jid,
        "kind": "model",
        "title": jid,
        "state": state,
        "step": None,
        "detail": None,
        "progress": None,
        "eta_s": None,
        "message": None,
        "hint": None,
        "log": f"{jid}.log",
    }
    return {**base, **kw}


def test_the_status_hides_paths_counts_versions_and_tells_a_dead_runner(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    status = BuildStatus(path)
    msg = "/root/.cache/hybrid-router/datasets/sst2/train.tsv: sha256 abc, pinned def."
    write_status(
        path,
        [
            job("a", "failed", message=msg, hint="see /root/.cache/hybrid-router/logs/a.log."),
            job("b", "running", step="training"),
        ],
        pid=os.getpid(),
    )
    first = status.snapshot()
    assert first["pending"] is True and "log" not in first["jobs"][0]
    assert first["jobs"][0]["message"] == "train.tsv: sha256 abc, pinned def."
    assert first["jobs"][0]["hint"] == "see a.log."
    assert status.snapshot()["version"] == first["version"]  # nothing changed
    write_status(
        path,
        [job("a", "failed"), job("b", "running", step="training"), job("c", "queued")],
        pid=2**22 + 12345,
    )  # a runner that is gone (no such process)
    after = status.snapshot()
    assert after["version"] == first["version"] + 1 and after["pending"] is False
    b, c = after["jobs"][1:]
    assert b["state"] == "failed" and "b.log" in b["hint"] and "restart ./hr run" in b["hint"]
    assert c["state"] == "blocked" and "stopped before this job ran" in c["message"]


def test_a_status_file_left_by_the_last_run_is_not_shown_as_this_one(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    write_status(path, [job("a", "running")], pid=2**22 + 12345, started_at=time.time() - 3600)
    assert BuildStatus(path, since=time.time()).snapshot()["jobs"] == []
    assert BuildStatus(path, since=time.time()).snapshot()["pending"] is True  # its runner is starting


def test_page_text_keeps_urls_and_words() -> None:
    url = "https://raw.githubusercontent.com/a/b/c.tsv"
    text = f"fetch {url} or set HYBRID_ROUTER_DATA (and/or see /tmp/x/y.log)"
    assert page_text(text) == f"fetch {url} or set HYBRID_ROUTER_DATA (and/or see y.log)"


async def test_the_default_cloud_tier_says_it_is_starting_until_it_is_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "status.json"
    write_status(
        path,
        [
            job(
                "cloud-tier",
                "running",
                kind="cloud",
                step="compiling",
                progress=0.4,
                eta_s=250,
                detail="[120/300] ggml.c",
            )
        ],
        pid=os.getpid(),
    )
    monkeypatch.setattr("builder.llama.cloud_tier_built", lambda: False)
    status = BuildStatus(path)
    tier = serve.CloudTier(CloudConfig(), default=True, build=status)
    port = unused_port()  # the relay answers only for the host it serves
    app = serve.make_app(
        SITE, {"models": {}}, relay=RelayConfig.from_env({}, port=port), tier=tier, build=status
    )
    async with TestClient(TestServer(app, port=port)) as client:
        resp = await client.get("/api/cloud/config")
        body = await resp.json()
        assert resp.headers["Cache-Control"] == "no-store"
        assert body == {
            "available": False,
            "starting": True,
            "kind": "openai",
            "model": "qwen2.5-coder-0.5b-instruct",
            "label": serve.DEFAULT_CLOUD_LABEL,
            "status": {
                "state": "running",
                "step": "compiling",
                "progress": 0.4,
                "eta_s": 250,
                "message": None,
            },
        }
        relay = await client.post(
            "/api/cloud/chat/completions", json={}, headers={"Origin": f"http://127.0.0.1:{port}"}
        )
        assert relay.status == 503 and (await relay.json())["error"]["type"] == "cloud_tier_starting"
        # the build fails: the tier will not come up, and says why
        write_status(
            path,
            [job("cloud-tier", "failed", kind="cloud", step="compiling", message="cmake failed")],
            pid=os.getpid(),
            finished=True,
        )
        body = await poll(client, "/api/cloud/config", lambda b: not b["starting"])
        assert body["available"] is False and body["status"]["state"] == "failed"
        assert body["status"]["message"] == "cmake failed"
