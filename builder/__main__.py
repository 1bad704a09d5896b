"""python -m builder [all|assets|models|llama] -- build what the app needs into the cache (see builder/*.py).

python -m builder site DIR [--relay URL] -- write the static site from what is built (builder/site.py).
python -m builder package OUT -- the client's npm package, with its declarations (builder/package.py)."""

from __future__ import annotations

import argparse
import sys
import time

from .common import BuildError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["site"]:
        from .site import main as site_main

        return site_main(argv[1:])
    if argv[:1] == ["package"]:
        from .package import main as package_main

        return package_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m builder", description=__doc__)
    parser.add_argument("what", nargs="?", default="all", choices=["all", "assets", "models", "llama"])
    parser.add_argument("--models", nargs="*", default=None, help="only these model ids")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if args.what in ("all", "assets"):
            from .assets import build_assets

            build_assets()
        if args.what in ("all", "models"):
            from .models import build_models

            build_models(args.models)
        if args.what == "llama":
            from .llama import main as llama_main

            return llama_main([])
    except BuildError as exc:
        print(f"\nbuild failed: {exc}", file=sys.stderr)
        return 1
    print(f"  build ready in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
