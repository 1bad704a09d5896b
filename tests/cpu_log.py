"""Where a test run's time went, by module: ``python -m tests.cpu_log PATH [PATH ...]`` reads the lines
that ``HYBRID_ROUTER_TEST_CPU_LOG=PATH`` made a run write (tests/conftest.py) and prints each module's
wall seconds, the machine's busy core-seconds meanwhile and their ratio (cores busy on average), largest
first, and the totals. Busy core-seconds count every process of the machine: read them as a run's own
when nothing else ran beside it."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def by_module(paths: list[Path]) -> dict[str, tuple[float, float]]:
    """Module (file path) -> (wall seconds, busy core-seconds), every phase of every test summed."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                module = entry["test"].split("::", 1)[0]
                totals[module][0] += entry["wall_s"]
                totals[module][1] += entry["busy_s"]
    return {module: (wall, busy) for module, (wall, busy) in totals.items()}


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m tests.cpu_log PATH [PATH ...]", file=sys.stderr)
        return 2
    modules = by_module([Path(a) for a in argv])
    print(f"{'wall s':>8} {'busy core-s':>12} {'cores':>6}  module")
    for module, (wall, busy) in sorted(modules.items(), key=lambda kv: -kv[1][1]):
        print(f"{wall:8.1f} {busy:12.1f} {busy / wall if wall else 0:6.2f}  {module}")
    wall = sum(w for w, _ in modules.values())
    busy = sum(b for _, b in modules.values())
    print(f"{wall:8.1f} {busy:12.1f} {busy / wall if wall else 0:6.2f}  all ({len(modules)} modules)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
