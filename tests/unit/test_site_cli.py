"""The commands of docs/deploying.md: ``python -m builder site DIR [--relay URL] [--models ...]`` on this
machine's build (skipped where nothing is built). What the site then does in a browser is
tests/browser/test_static_site.py's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from builder.common import cache_root
from builder.models import read_index
from builder.site import HOST_FILE_LIMIT

REPO = Path(__file__).resolve().parents[2]
MODEL = "all-MiniLM-L6-v2"

pytestmark = pytest.mark.skipif(
    not (cache_root() / "site.json").is_file() or MODEL not in read_index(),
    reason="the assets or the embedding model are not built here (./hr build)",
)


def site(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "builder", "site", str(tmp_path / "site"), "--models", MODEL, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("relay", "mode", "connect"),
    [
        (None, "local-only", "connect-src 'self';"),
        ("/api/cloud", "cloud-relay", "connect-src 'self';"),
        (
            "https://relay.example.com/api/cloud",
            "cloud-relay",
            "connect-src 'self' https://relay.example.com;",
        ),
    ],
)
def test_the_deploying_guides_commands(tmp_path: Path, relay: str | None, mode: str, connect: str) -> None:
    done = site(tmp_path, *(["--relay", relay] if relay else []))
    assert done.returncode == 0, done.stderr
    root = tmp_path / "site"
    config = json.loads((root / "config.json").read_text())
    assert config["mode"] == mode and config["relay"] == relay and config["version"] in done.stderr
    assert [m["id"] for m in json.loads((root / "models_manifest.json").read_text())["models"]] == [MODEL]
    assert connect in (root / "index.html").read_text() and connect in (root / "_headers").read_text()


def test_a_model_that_is_not_built_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "builder", "site", str(tmp_path / "s"), "--models", "no-such-model"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        done.returncode == 1 and "not built: no-such-model" in done.stderr and not (tmp_path / "s").exists()
    )


def test_it_says_its_size_what_it_left_out_and_writes_no_file_over_the_hosts_limit(tmp_path: Path) -> None:
    done = site(tmp_path, "--dtypes", "q8")
    assert done.returncode == 0, done.stderr
    assert "static site " in done.stderr and " MB (local-only)" in done.stderr
    assert f"warning: left out: {MODEL} fp32: not in the chosen set (--dtypes)" in done.stderr
    assert "warning: left out: SmolLM2-135M-Instruct: not in the chosen set (--models)" in done.stderr
    root = tmp_path / "site"
    (entry,) = json.loads((root / "models_manifest.json").read_text())["models"]
    assert list(entry["variants"]) == ["q8"] and entry["default_dtype"] == "q8"
    # the q8 model (31 MiB) and ONNX Runtime's asyncify wasm (25.6 MiB) are written in parts
    assert "files over" not in done.stderr
    assert max(p.stat().st_size for p in root.rglob("*") if p.is_file()) <= HOST_FILE_LIMIT
    names = {p.name for p in root.rglob("*.onnx*")}
    assert names == {"model_quantized.onnx.part0", "model_quantized.onnx.part1"}
    info = entry["variants"]["q8"]["files"]["onnx/model_quantized.onnx"]
    assert [p["path"] for p in info["parts"]] == sorted(f"onnx/{n}" for n in names)
    asyncify = json.loads((root / "boot.json").read_text())["ort"]["builds"]["asyncify"]
    assert not (root / asyncify["wasm"]).exists() and len(asyncify["wasm_parts"]) == 2
    joined = b"".join((root / p["url"]).read_bytes() for p in asyncify["wasm_parts"])
    assert joined[:4] == b"\0asm" and len(joined) > HOST_FILE_LIMIT


def test_the_default_site_holds_the_default_dtype_only(tmp_path: Path) -> None:
    done = site(tmp_path)
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads((tmp_path / "site" / "models_manifest.json").read_text())["models"]
    assert list(entry["variants"]) == ["fp32"] == [entry["default_dtype"]]
    assert f"warning: left out: {MODEL} q8: not the default policy's dtype" in done.stderr
