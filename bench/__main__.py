"""./hr bench NAME [--runs N] [--smoke] [--json PATH] [args] -- run the benchmark NAME (one of BENCHES)
and print its table; a benchmark whose ``run`` takes ``argv`` gets the arguments this parser does not know.

``--smoke``: the benchmark's smallest form (a run or two of the smallest inputs; what is not built is
skipped and said so): the tests run every benchmark this way (tests/browser/test_benches.py) so that none
rots unnoticed. ``--json PATH``: the printed tables, as JSON. A page call that takes longer than
``HYBRID_ROUTER_BENCH_TIMEOUT_S`` (default 900 s) fails the benchmark."""

from __future__ import annotations

import argparse
import importlib
import inspect
from pathlib import Path

BENCHES = (
    "cache",
    "chat_dtypes",
    "embeddings",
    "generation",
    "load",
    "ort_builds",
    "overhead",
    "relay_load",
    "response_cache",
    "startup",
    "tasks",
    "transcribe",
    "vector_index",
    "workload",
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="./hr bench")
    parser.add_argument("name", nargs="?", default="embeddings", choices=BENCHES)
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="timed repetitions per measurement (default: the benchmark's own)",
    )
    parser.add_argument("--smoke", action="store_true", help="the smallest form (the tests run it)")
    parser.add_argument("--json", type=Path, default=None, help="also write the tables to this file")
    args, rest = parser.parse_known_args()
    bench = importlib.import_module(f"bench.{args.name}")
    from bench.common import write_tables

    kwargs: dict[str, object] = {} if args.runs is None else {"runs": args.runs}
    params = inspect.signature(bench.run).parameters
    if "argv" in params:
        kwargs["argv"] = rest + (["--smoke"] if args.smoke and "smoke" not in params else [])
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.smoke and "smoke" in params:
        kwargs["smoke"] = True
    elif args.smoke and "argv" not in params:
        parser.error(f"{args.name} has no --smoke form")
    try:
        bench.run(**kwargs)
    finally:
        if args.json is not None:
            write_tables(args.json)


main()
