"""python -m builder [all|first|test|background|assets|models|llama] -- build what the app needs.

``all`` (the default), ``first``, ``test`` and ``background`` run job lists (:mod:`builder.jobs`): one job
at a time, each in its own process with its log under ``$CACHE/logs/``, one terminal line per step.
``assets``, ``models`` and ``llama`` run one part in this process, printing everything (for debugging).

python -m builder site DIR [--relay URL] -- write the static site from what is built (builder/site.py).
python -m builder package OUT -- the client's npm package, with its declarations (builder/package.py).
"""

from __future__ import annotations

import argparse
import sys
import time

from .common import BuildError

JOB_LISTS = ("all", "first", "test", "background")


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["site"]:
        from .site import main as site_main

        return site_main(args_in[1:])
    if args_in[:1] == ["package"]:
        from .package import main as package_main

        return package_main(args_in[1:])
    what = args_in[0] if args_in and not args_in[0].startswith("-") else "all"
    rest = args_in[1:] if args_in and args_in[0] == what else args_in
    if what in JOB_LISTS:
        from .jobs import main as jobs_main

        return jobs_main(what, rest)
    parser = argparse.ArgumentParser(prog="python -m builder", description=__doc__)
    parser.add_argument("what", choices=["assets", "models", "llama"])
    parser.add_argument("--models", nargs="*", default=None, help="only these model ids")
    args = parser.parse_args(args_in)
    t0 = time.perf_counter()
    try:
        if args.what == "assets":
            from .assets import build_assets

            build_assets()
        if args.what == "models":
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
