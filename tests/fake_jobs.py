"""Job targets for the job runner's tests (they run in real job processes: ``builder.job_process``).

Each one stands for a kind of real job: it reports steps, prints what libraries print, fails, is blocked,
crashes, or waits until the test lets it go (a file appears), so that a test can observe the server while
the job is still running without any timing assumption.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from builder.common import BuildError
from builder.datasets import MissingData
from builder.progress import report


def chatty() -> str:
    """Does its work the way the conversion libraries do: warnings, logging, prints on both streams."""
    report("converting", "a fake model", 0, 2)
    warnings.warn(
        "Converting a tensor to a Python boolean might cause the trace to be incorrect", stacklevel=1
    )
    warnings.warn("You are using the default legacy behaviour of the tokenizer", UserWarning, stacklevel=1)
    logging.getLogger("optimum.exporters").warning("Some chatter from optimum: Warning: shapes may differ")
    print("pip: Requirement already satisfied: something", flush=True)
    print("/usr/lib/python3/site.py:1: FutureWarning: warn(...)", file=sys.stderr, flush=True)
    report("converting", "a fake model", 2, 2)
    return "converted"


def fails() -> None:
    report("training", "epoch 1/1, step 1/2", 1, 2)
    raise BuildError("the fake training did not reach its min_metric", hint="check the fake data")


def blocked() -> None:
    report("downloading data", "fake.tsv", 0, 10)
    raise MissingData(
        "fake.tsv cannot be downloaded", hint="set HYBRID_ROUTER_DATA to a copy of the datasets"
    )


def crashes() -> None:
    report("converting", "about to crash")
    os.kill(os.getpid(), signal.SIGKILL)


def steps(n: str) -> str:
    for i in range(int(n)):
        report("training", f"step {i + 1}/{n}", i + 1, int(n))
    return f"{n} steps"


def wait_for(path: str) -> str:
    """Runs until ``path`` exists (the test creates it), reporting a step while it waits."""
    while not Path(path).exists():
        report("training", "waiting for the test to let it finish", 1, 3)
        time.sleep(0.05)
    return "released"


def build_fake_model(cache: str, model_id: str, files_json: str) -> str:
    """Writes a built model the way builder.models does (folder, stamp, index.json): the server must pick
    it up without a restart."""
    root = Path(cache) / "models"
    folder = root / model_id / "fakekey"
    files = json.loads(files_json)
    folder.mkdir(parents=True, exist_ok=True)
    for rel, body in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(body)
    import hashlib

    stamp = {
        rel: {"size": len(body.encode()), "sha256": hashlib.sha256(body.encode()).hexdigest()}
        for rel, body in files.items()
    }
    folder.with_name("fakekey.stamp.json").write_text(json.dumps({"key": "fakekey", "files": stamp}))
    index_path = root / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"models": {}}
    index["models"][model_id] = {"dir": str(folder), "key": "fakekey"}
    tmp = index_path.with_name(".index.json.tmp")
    tmp.write_text(json.dumps(index))
    tmp.replace(index_path)
    return "built"


FAKE_MODEL = "fake-model"
FAKE_FILES = {"config.json": '{"model_type": "fake"}', "onnx/model.onnx": "a graph built on this machine"}


def slow_background() -> list[Any]:
    """The background build of the server's tests: one model job (``$FAKE_JOB_ID``, default ``waits``)
    that waits until the file ``$FAKE_JOB_RELEASE`` exists, then one that writes the built model
    ``fake-model`` into ``$HYBRID_ROUTER_CACHE``."""
    from builder.jobs import JobSpec

    cache, release = os.environ["HYBRID_ROUTER_CACHE"], os.environ["FAKE_JOB_RELEASE"]
    waiting = os.environ.get("FAKE_JOB_ID", "waits")  # a model of the served manifest, or not
    return [
        JobSpec(
            waiting,
            "model",
            "a model that waits for the test",
            "tests.fake_jobs:wait_for",
            (release,),
            plan=(("training", 600.0),),
        ),
        JobSpec(
            FAKE_MODEL,
            "model",
            "the fake model",
            "tests.fake_jobs:build_fake_model",
            (cache, FAKE_MODEL, json.dumps(FAKE_FILES)),
            plan=(("converting", 60.0),),
        ),
    ]
