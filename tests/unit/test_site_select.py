"""What ``python -m builder site`` puts on the site and what it says it left out (builder/site.py's
``select`` and ``summary``, CPython, no files written): each model or dtype of the manifest not built
yet or not chosen (``--models``, ``--dtypes``) is named with its reason; the site's size and every file
over the 25 MiB some hosts allow are printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builder.site import HOST_FILE_LIMIT, Site, SiteFile, select, site_manifest, summary

from hybrid_router.manifest import FileInfo

REPO = Path(__file__).resolve().parents[2]
RAW = json.loads((REPO / "models_manifest.json").read_text())
EMBED, CHAT = "all-MiniLM-L6-v2", "SmolLM2-135M-Instruct"
FILES = {
    "config.json": FileInfo(10, "a" * 64),
    "onnx/model.onnx": FileInfo(100, "b" * 64),
    "onnx/model_quantized.onnx": FileInfo(30, "c" * 64),
    "onnx/model_q4.onnx": FileInfo(25, "d" * 64),
}
BUILT = {
    EMBED: (Path("/cache/embed"), ["fp32", "q8"], {k: v for k, v in FILES.items() if "q4" not in k}),
    CHAT: (Path("/cache/chat"), ["fp32", "q4"], {k: v for k, v in FILES.items() if "quantized" not in k}),
}


def test_every_unbuilt_model_is_named_with_its_reason() -> None:
    kept, left = select(RAW, BUILT, dtypes=["all"])
    assert set(kept) == {EMBED, CHAT} and kept[EMBED][1] == ["fp32", "q8"]
    unbuilt = {m["id"] for m in RAW["models"]} - set(BUILT)
    assert unbuilt  # the manifest has more models than this fake build
    assert sorted(left) == sorted(f"{m}: not built yet (./hr build builds it)" for m in unbuilt)


def test_by_default_each_model_comes_in_the_dtype_the_default_policy_loads() -> None:
    kept, left = select(RAW, BUILT)
    defaults = {m["id"]: m["default_dtype"] for m in RAW["models"]}
    assert defaults[EMBED] == "fp32" and defaults[CHAT] == "q4"
    assert kept[EMBED][1] == ["fp32"] and sorted(kept[EMBED][2]) == ["config.json", "onnx/model.onnx"]
    assert kept[CHAT][1] == ["q4"] and sorted(kept[CHAT][2]) == ["config.json", "onnx/model_q4.onnx"]
    assert f"{EMBED} q8: not the default policy's dtype (--dtypes all keeps every built one)" in left
    assert f"{CHAT} fp32: not the default policy's dtype (--dtypes all keeps every built one)" in left


def test_a_model_whose_default_dtype_is_not_built_comes_in_a_built_one_and_says_so() -> None:
    built = {
        CHAT: (
            Path("/cache/chat"),
            ["fp32"],
            {k: v for k, v in FILES.items() if k != "onnx/model_q4.onnx" and "quantized" not in k},
        )
    }
    kept, left = select(RAW, built, models=[CHAT])
    assert kept[CHAT][1] == ["fp32"]
    assert f"{CHAT} q4 (its default): not built yet, fp32 stands in" in left


def test_a_dtype_not_built_yet_is_named() -> None:
    built = {
        EMBED: (
            Path("/cache/embed"),
            ["q8"],
            {k: v for k, v in FILES.items() if k.endswith(("json", "quantized.onnx"))},
        )
    }
    kept, left = select(RAW, built, models=[EMBED])
    assert kept[EMBED][1] == ["q8"]
    assert f"{EMBED} fp32: not built yet (./hr build builds it)" in left


def test_models_and_dtypes_choose_and_the_rest_is_named_with_its_reason() -> None:
    kept, left = select(RAW, BUILT, models=[EMBED, CHAT], dtypes=["q8"])
    folder, dtypes, files = kept[EMBED]
    assert dtypes == ["q8"] and sorted(files) == ["config.json", "onnx/model_quantized.onnx"]
    assert CHAT not in kept  # it has no q8
    assert f"{EMBED} fp32: not in the chosen set (--dtypes)" in left
    assert f"{CHAT} fp32: not in the chosen set (--dtypes)" in left
    assert f"{CHAT} q4: not in the chosen set (--dtypes)" in left
    assert f"{CHAT}: none of its built dtypes (fp32, q4) is in the chosen set (--dtypes)" in left
    others = {m["id"] for m in RAW["models"]} - {EMBED, CHAT}
    assert {f"{m}: not in the chosen set (--models)" for m in others} <= set(left)


def test_a_model_whose_default_dtype_is_left_out_gets_a_kept_one() -> None:
    kept, _ = select(RAW, BUILT, models=[EMBED], dtypes=["q8"])
    manifest = site_manifest(RAW, {m: (d, f) for m, (_, d, f) in kept.items()})
    (entry,) = manifest["models"]
    assert entry["default_dtype"] == "q8" and list(entry["variants"]) == ["q8"]


@pytest.mark.parametrize("chosen", [None, ["q8"]])
def test_the_summary_says_the_size_the_large_files_and_what_was_left_out(chosen: list[str] | None) -> None:
    files = [
        SiteFile("index.html", 2_000, "0" * 64, False),
        SiteFile("models-x/m/onnx/model.onnx", HOST_FILE_LIMIT + 1, "1" * 64, True),
        SiteFile("assets/ort-y/ort.wasm", HOST_FILE_LIMIT, "2" * 64, True),  # at the limit: fine
    ]
    _, left = select(RAW, BUILT, dtypes=chosen)
    text = summary(Site(Path("/srv/site"), "v1", None, files), left)
    lines = text.splitlines()
    size = (2_000 + 2 * HOST_FILE_LIMIT + 1) / 1e6
    assert lines[0] == f"static site v1 in /srv/site: 3 files, {size:.1f} MB (local-only)"
    assert "1 files over 25 MiB" in lines[1] and lines[2].strip() == "models-x/m/onnx/model.onnx (25.0 MiB)"
    assert [line for line in lines if "warning" in line] == [f"  warning: left out: {line}" for line in left]
    assert len(left) >= 4
