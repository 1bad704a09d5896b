"""./hr bench NAME [--runs N] [args] -- run the benchmark NAME (one of BENCHES) and print its table; a
benchmark whose ``run`` takes ``argv`` gets the arguments this parser does not know."""

from __future__ import annotations

import argparse
import importlib
import inspect

BENCHES = (
    "cache",
    "embeddings",
    "generation",
    "load",
    "overhead",
    "relay_load",
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
    args, rest = parser.parse_known_args()
    bench = importlib.import_module(f"bench.{args.name}")
    kwargs = {} if args.runs is None else {"runs": args.runs}
    if "argv" in inspect.signature(bench.run).parameters:
        kwargs["argv"] = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    bench.run(**kwargs)


main()
