"""./hr bench NAME [--runs N] -- run the benchmark NAME (one of BENCHES) and print its table."""

from __future__ import annotations

import argparse
import importlib

BENCHES = ("cache", "embeddings", "generation", "overhead", "tasks", "transcribe", "vector_index")


def main() -> None:
    parser = argparse.ArgumentParser(prog="./hr bench")
    parser.add_argument("name", nargs="?", default="embeddings", choices=BENCHES)
    parser.add_argument("--runs", type=int, default=None,
                        help="timed repetitions per measurement (default: the benchmark's own)")
    args = parser.parse_args()
    bench = importlib.import_module(f"bench.{args.name}")
    bench.run(**({} if args.runs is None else {"runs": args.runs}))


main()
