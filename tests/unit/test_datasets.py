"""builder.datasets: the training files come from the data folder, or from their pinned sources (here a local
HTTP server standing in for raw.githubusercontent.com), each one checked against its sha256."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from builder import datasets
from builder.common import BuildError
from builder.datasets import MissingData

REPO = Path(__file__).resolve().parents[2]
CONTENT = b"sentence\tlabel\n" + b"".join(b"a fine sentence number %d\t1\n" % i for i in range(4000))
SHA = hashlib.sha256(CONTENT).hexdigest()


@dataclass
class Source:
    """What the stand-in server serves at /<repo>/<commit>/<path>: ``mode`` per path, every request logged."""

    modes: dict[str, str] = field(default_factory=dict)  # path -> ok | corrupt | cut-once | no-range
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    cut: set[str] = field(default_factory=set)


def _handler(source: Source) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("/", 4)[-1]  # /<owner>/<repo>/<commit>/<path>: the path
            rng = self.headers.get("Range")
            source.requests.append((path, rng))
            mode = source.modes.get(path)
            if mode is None:
                self.send_error(404)
                return
            body = CONTENT if mode != "corrupt" else CONTENT.replace(b"fine", b"FINE", 1)
            start = int(rng.split("=")[1].split("-")[0]) if rng and mode != "no-range" else 0
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if mode == "cut-once" and path not in source.cut:  # the connection dies half way
                source.cut.add(path)
                self.wfile.write(body[start : len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start:])

    return Handler


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Source]:
    state = Source()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HYBRID_ROUTER_DATA_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HYBRID_ROUTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HYBRID_ROUTER_DATA", str(tmp_path / "no-data-folder"))
    monkeypatch.setattr(datasets, "ATTEMPTS", 3)
    monkeypatch.setattr("builder.datasets.time.sleep", lambda s: None)
    registry = tmp_path / "datasets.tsv"
    rows = [
        f"d/{name}.tsv\t{len(CONTENT)}\t{SHA}\torg/repo\tabc123\tdata/{name}.tsv\tMIT"
        for name in ("ok", "corrupt", "cut", "missing", "no-range")
    ]
    rows.append(f"d/derived.tsv\t{len(CONTENT)}\t{SHA}\tderived\t-\tmade by a script from x.zip\tas x.zip")
    header = "# comment\npath\tbytes\tsha256\trepository\tcommit\tsource_path\tlicence\n"
    registry.write_text(header + "\n".join(rows) + "\n")
    monkeypatch.setattr(datasets, "REGISTRY", registry)
    yield state
    server.shutdown()
    server.server_close()


def files(*names: str) -> dict[str, dict[str, str]]:
    return {name: {"path": f"d/{name}.tsv", "sha256": SHA} for name in names}


def test_the_right_file_is_fetched_checked_and_then_reused(source: Source, tmp_path: Path) -> None:
    source.modes["data/ok.tsv"] = "ok"
    got = datasets.resolve(files("ok"))
    assert got["ok"] == tmp_path / "cache" / "datasets" / "d" / "ok.tsv" and got["ok"].read_bytes() == CONTENT
    assert source.requests == [("data/ok.tsv", None)]
    assert datasets.resolve(files("ok")) == got and len(source.requests) == 1  # fetched once


def test_a_corrupted_download_is_refused_and_not_kept(source: Source, tmp_path: Path) -> None:
    source.modes["data/corrupt.tsv"] = "corrupt"
    with pytest.raises(BuildError) as err:
        datasets.resolve(files("corrupt"))
    assert not isinstance(err.value, MissingData)  # a mismatch stops the build: it is not "waiting for data"
    assert f"pinned: {SHA}" in err.value.message and "not used" in err.value.hint
    assert list((tmp_path / "cache" / "datasets" / "d").iterdir()) == []  # neither the file nor a .part


def test_a_missing_file_blocks_the_model_with_a_hint(source: Source) -> None:
    with pytest.raises(MissingData) as err:
        datasets.resolve(files("missing"))
    assert "HTTP 404" in err.value.message and "HYBRID_ROUTER_DATA" in err.value.hint


def test_an_interrupted_download_resumes_with_a_range_request(source: Source) -> None:
    source.modes["data/cut.tsv"] = "cut-once"
    got = datasets.resolve(files("cut"))
    assert got["cut"].read_bytes() == CONTENT
    assert [r for _, r in source.requests] == [None, f"bytes={len(CONTENT) // 2}-"]


def test_a_server_that_ignores_range_restarts_the_file(source: Source, tmp_path: Path) -> None:
    source.modes["data/no-range.tsv"] = "no-range"
    part = tmp_path / "cache" / "datasets" / "d" / "no-range.tsv.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage left by an interrupted try")
    assert datasets.resolve(files("no-range"))["no-range"].read_bytes() == CONTENT
    assert source.requests[0][1] == f"bytes={len(b'garbage left by an interrupted try')}-"
    assert not part.exists()


def test_an_unreachable_source_blocks_the_model(source: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRID_ROUTER_DATA_MIRROR", "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(MissingData) as err:
        datasets.resolve(files("ok"))
    assert "cannot download" in err.value.message and "127.0.0.1:9" in err.value.hint


def test_a_derived_file_has_nothing_to_fetch(source: Source) -> None:
    with pytest.raises(MissingData) as err:
        datasets.resolve({"x": {"path": "d/derived.tsv", "sha256": SHA}})
    assert "no public copy" in err.value.message and source.requests == []


def test_the_data_folder_wins_and_its_files_are_checked(
    source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "data"
    (folder / "d").mkdir(parents=True)
    (folder / "d" / "ok.tsv").write_bytes(CONTENT)
    monkeypatch.setenv("HYBRID_ROUTER_DATA", str(folder))
    assert datasets.resolve(files("ok"))["ok"] == folder / "d" / "ok.tsv" and source.requests == []
    (folder / "d" / "ok.tsv").write_bytes(CONTENT + b"x")
    with pytest.raises(BuildError, match="the data folder's ok.tsv: sha256"):
        datasets.resolve(files("ok"))


def test_every_training_file_of_the_manifest_is_recorded_with_its_source() -> None:
    known = datasets.registry()
    manifest = json.loads((REPO / "models_manifest.json").read_text())
    for model in manifest["models"]:
        for spec in (model["conversion"].get("train") or {}).get("files", {}).values():
            entry = known[spec["path"]]
            assert entry.sha256 == spec["sha256"], spec["path"]
            assert entry.fetchable or entry.repository == "derived"
            if entry.fetchable:
                assert entry.url(datasets.DEFAULT_MIRROR).startswith("https://raw.githubusercontent.com/")
