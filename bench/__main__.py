"""./hr bench [embeddings] [--runs N] -- run a benchmark and print its table."""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(prog="./hr bench")
    parser.add_argument("name", nargs="?", default="embeddings", choices=["embeddings"])
    parser.add_argument("--runs", type=int, default=10, help="timed repetitions per measurement")
    args = parser.parse_args()
    if args.name == "embeddings":
        from .embeddings import run

        run(runs=args.runs)


main()
