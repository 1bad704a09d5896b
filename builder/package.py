"""The client's npm package: ``python -m builder package OUT`` writes ``OUT/hybrid-router-<version>.tgz``.

The package is the client and the worker from web/ (plain ES modules, unchanged), the AI SDK provider
from npm/ai-sdk.js (``hybrid-router/ai-sdk``), ``types/*.d.ts`` written by TypeScript from their JSDoc,
package.json (npm/package.json with the project's version) and npm/README.md. The runtime (Pyodide,
Transformers.js, ONNX Runtime, the wheels, the models) is not in it: the page names where it is with
``create({ baseUrl })`` (serve.py, or the static site). The tools are pinned in builder/pins.py
(TypeScript) and kept under ``$HYBRID_ROUTER_CACHE/tools/``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

from . import pins
from .common import REPO, BuildError, atomic_dir, cache_root, key_of, log, npm_pack, run

WEB = REPO / "web"
NPM = REPO / "npm"
STAMP = ".complete"
IMPORT = re.compile(r"""(?:^|\s)(?:import|export)\s(?:[^"';]*?\sfrom\s)?["'](\./[\w.-]+\.js)["']""", re.M)


def module_graph(entry: str) -> tuple[str, ...]:
    """``entry`` and every module of web/ it imports, directly or not (static relative imports only: the
    runtime it imports dynamically comes from the base URL)."""
    seen: list[str] = []
    todo = [entry]
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.append(name)
        todo += [m.removeprefix("./") for m in IMPORT.findall((WEB / name).read_text(encoding="utf-8"))]
    return tuple(seen)


#: what the package holds of web/: the client's modules and the worker's (their import graphs)
CLIENT = module_graph("hybrid-router.js")
WORKER = tuple(m for m in module_graph("worker.js") if m not in CLIENT)
#: the package's own modules, from npm/: the Vercel AI SDK provider (``hybrid-router/ai-sdk``; it imports
#: ``@ai-sdk/provider``, an optional peer dependency, so it never joins web/, which serves the page as it is)
OWN = ("ai-sdk.js",)


def version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def npm_tool(spec: tuple[str, str]) -> Path:
    """A pinned npm package extracted under the cache's tools/ (its ``package`` folder)."""
    cache = cache_root()
    name = spec[0].rsplit("@", 1)[0].strip("@").replace("/", "-")
    final = cache / "tools" / f"{name}-{key_of(spec)}"
    if (final / STAMP).is_file():
        return final / "package"
    tgz = npm_pack(spec[0], cache / "downloads" / "npm", spec[1])
    with atomic_dir(final) as tmp:
        with tarfile.open(tgz) as tar:
            tar.extractall(tmp, filter="data")
        (tmp / STAMP).write_text(spec[0])
    return final / "package"


def tool_tarball(spec: tuple[str, str]) -> Path:
    """The pinned tarball itself (for ``npm install <tarball>`` in an example project)."""
    return npm_pack(spec[0], cache_root() / "downloads" / "npm", spec[1])


def node() -> str:
    path = shutil.which("node")
    if not path:
        raise BuildError("node is not installed", hint="install Node.js (it comes with npm)")
    return path


def declarations(src: Path) -> None:
    """``src/types/*.d.ts`` from the JSDoc of the client (TypeScript, pinned); the AI SDK provider's types
    come from the pinned ``@ai-sdk/provider``, there for tsc only."""
    tsc = npm_tool(pins.TYPESCRIPT_NPM) / "bin" / "tsc"
    shutil.copy2(NPM / "tsconfig.json", src / "tsconfig.json")
    provider = src / "node_modules" / "@ai-sdk" / "provider"
    provider.parent.mkdir(parents=True)
    spec = next(s for s in pins.AI_SDK_NPM if s[0].startswith("@ai-sdk/provider@"))
    provider.symlink_to(npm_tool(spec), target_is_directory=True)
    proc = subprocess.run(
        [node(), str(tsc), "-p", str(src / "tsconfig.json")], capture_output=True, text=True
    )
    (src / "tsconfig.json").unlink()
    shutil.rmtree(src / "node_modules")
    if proc.returncode != 0:
        raise BuildError(
            f"tsc could not write the declarations:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}",
            hint="the client's JSDoc does not type-check: fix what tsc says in web/ (npm/ for ai-sdk.js)",
        )


def build_package(out: Path) -> Path:
    """Write the package's tarball into ``out``; return its path."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "package"
        src.mkdir()
        for name in (*CLIENT, *WORKER):
            shutil.copy2(WEB / name, src / name)
        for name in OWN:
            shutil.copy2(NPM / name, src / name)
        manifest = json.loads((NPM / "package.json").read_text())
        manifest["version"] = version()
        (src / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.copy2(NPM / "README.md", src / "README.md")
        declarations(src)
        info = json.loads(
            run(["npm", "pack", "--json", "--pack-destination", str(out)], cwd=src, quiet=True)
        )[0]
    tarball: Path = out / info["filename"]
    log(f"npm package {tarball} ({info['size'] / 1e3:.0f} kB, {len(info['files'])} files)")
    return tarball


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m builder package", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write the tarball into")
    args = parser.parse_args(argv)
    try:
        build_package(args.out)
    except BuildError as exc:
        print(f"\nbuild failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
