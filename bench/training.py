"""How a training step of the task models uses this machine: wall and CPU time per step, and how many
cores are busy, for a few thread settings.

    ./hr python -m bench.training [--steps N] [--dataset sst2|nli]

Each setting runs in its own process (OpenMP reads its environment once): the real training code of
``builder/convert/finetune.py`` (the manifest entry's tokenizer, batches, loss and optimizer) on the
real MiniLM weights and the real dataset, ``train_limit`` 2,000 rows, 3 warm-up steps, then ``--steps``
timed ones. It needs the built MiniLM source folder and the data folder (../shared/data).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SETTINGS = [  # (label, environment)
    ("1 thread", {"HYBRID_ROUTER_TRAIN_THREADS": "1"}),
    (
        "2 threads, OMP passive (the build's)",
        {"HYBRID_ROUTER_TRAIN_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
    ),
    ("2 threads, OMP active", {"HYBRID_ROUTER_TRAIN_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"}),
]
MODEL = {"sst2": "minilm-l6-sst2", "nli": "minilm-l6-nli"}


def _thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path("/proc/self/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def measure(dataset: str, steps: int) -> dict[str, Any]:
    """In this process: time ``steps`` training steps as finetune.train runs them."""
    import torch
    from builder.convert import finetune, task_data
    from builder.models import load_manifest, source_folder
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    entry = load_manifest().model(MODEL[dataset])
    spec = {**finetune.train_spec(entry.conversion.params), "train_limit": 2000}
    torch.set_num_threads(finetune.train_threads())
    src = source_folder(entry.source)
    rng = random.Random(spec["seed"])
    tok = AutoTokenizer.from_pretrained(str(src))
    prepared = finetune.DATASETS[spec["dataset"]](tok, task_data.verified_files(spec["files"]), spec, rng)
    model = AutoModelForSequenceClassification.from_pretrained(str(src), num_labels=len(prepared.labels))
    model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    model.train()
    opt = finetune._optimizer(model, spec)
    batches = prepared.epoch(rng)

    def step(i: int) -> None:
        loss = prepared.loss(model, batches[i % len(batches)])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for i in range(3):
        step(i)
    threads0, wall0, cpu0 = _thread_cpu(), time.perf_counter(), time.process_time()
    for i in range(3, 3 + steps):
        step(i)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    per_thread = {t: c - threads0.get(t, 0.0) for t, c in _thread_cpu().items()}
    busy = sorted((c / wall for c in per_thread.values() if c / wall > 0.02), reverse=True)
    return {
        "threads": torch.get_num_threads(),
        "wall_per_step_s": round(wall / steps, 3),
        "cpu_per_step_s": round(cpu / steps, 3),
        "cores_busy": round(cpu / wall, 2),
        "busy_threads": [round(b, 2) for b in busy],
        "load": os.getloadavg()[0],
    }


def run(steps: int = 20, dataset: str = "sst2") -> None:
    print(
        f"{dataset}: {steps} steps of batch 32 per setting (load average at start {os.getloadavg()[0]:.1f})"
    )
    print(
        f"{'setting':40} {'s/step':>7} {'CPU s/step':>10} {'cores busy':>10}  busy threads (share of a core)"
    )
    for label, env in SETTINGS:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.training", "--one", "--steps", str(steps), "--dataset", dataset],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(f"{label}: failed\n{proc.stderr[-2000:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{label:40} {r['wall_per_step_s']:7.3f} {r['cpu_per_step_s']:10.3f} {r['cores_busy']:10.2f}  "
            f"{r['busy_threads']} (load {r['load']:.1f})"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.training")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dataset", choices=sorted(MODEL), default="sst2")
    parser.add_argument("--one", action="store_true", help="measure in this process (one setting)")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.dataset, args.steps)))
    else:
        run(args.steps, args.dataset)


if __name__ == "__main__":
    main()
