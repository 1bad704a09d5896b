"""Model management behind the router: preload, the cache's list/delete/events/budget, capabilities and
recommendations, and the per-model device and dtype choice. Pure Python (the cache's store and the
capability probe are handed in).

Wire methods (:meth:`ModelManager.handlers`, merged into the router's):

- ``preload`` ``{models: [id | {id, dtype}], dtype}``: progress events (per file, and
  ``progress_total`` with bytes done over the manifest's total); a file that cannot be stored raises
  ``StorageError`` at the end while its bytes stay in memory for the model's first use;
- ``cached_models`` ``{}``: ``[{id, dtypes, bytes, files, partial_files, last_used, known}]``;
- ``delete_model`` ``{model}``; ``cache_events`` ``{}``; ``configure_cache`` ``{budget_bytes}``;
- ``capabilities`` ``{}`` (the storage figures read again); ``recommend_models`` ``{task}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from . import validation
from .capabilities import Capabilities, choose_device, choose_dtype, recommend
from .errors import StorageError, ValidationError
from .manifest import Manifest, ModelEntry
from .model_cache import ModelCache
from .protocol import CallContext, Handler

__all__ = ["ModelManager", "adapt_manifest"]

_NO_CACHE_HINT = "This browser gave the worker no IndexedDB: models run from memory and download each time."


def adapt_manifest(
    manifest: Manifest, caps: Capabilities, cached: Mapping[str, list[str]] | None = None
) -> tuple[Manifest, dict[str, dict[str, str]]]:
    """The manifest with each model's default dtype chosen for this device (:func:`choose_dtype`), so
    every task that takes the default gets it; and the choices ``{model: {dtype, device, why}}``."""
    models: list[ModelEntry] = []
    choices: dict[str, dict[str, str]] = {}
    for m in manifest.models:
        dtype, why = choose_dtype(m, caps, (cached or {}).get(m.id, []))
        choices[m.id] = {"dtype": dtype, "device": choose_device(m, caps), "why": why}
        models.append(m if dtype == m.default_dtype else dataclasses.replace(m, default_dtype=dtype))
    return dataclasses.replace(manifest, models=tuple(models)), choices


def _targets(params: Mapping[str, Any], manifest: Manifest) -> list[tuple[str, str | None]]:
    raw = params.get("models")
    default_dtype = validation.optional_str(params.get("dtype"), "dtype")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ValidationError("preload needs a list of model ids",
                              hint=f"Pass e.g. ['{manifest.ids[0] if manifest.ids else 'model-id'}'], "
                              "or [{ id, dtype }] items.", field="models")
    out: list[tuple[str, str | None]] = []
    for item in raw:
        mid, dtype = (item.get("id"), item.get("dtype", default_dtype)) if isinstance(item, Mapping) else \
            (item, default_dtype)
        if not isinstance(mid, str) or mid not in manifest.ids:
            raise ValidationError(f"preload: unknown model {mid!r}",
                                  hint=f"Use one of the manifest's models: {', '.join(manifest.ids)}.",
                                  field="models", model=str(mid))
        manifest.model(mid).variant(dtype)  # ValidationError for a dtype it does not have
        out.append((mid, dtype))
    return out


class ModelManager:
    """``cache`` None: no IndexedDB (models run from memory). ``estimate`` reads the storage figures
    again for :meth:`capabilities`; ``device_of`` says where a model runs now (the runtime's view,
    with WebGPU failures moved to wasm) and ``device_fallbacks`` lists those failures."""

    def __init__(self, manifest: Manifest, cache: ModelCache | None, caps: Capabilities, *,
                 estimate: Callable[[], Awaitable[Mapping[str, Any]]] | None = None,
                 device_of: Callable[[ModelEntry], str] | None = None,
                 device_fallbacks: Callable[[], list[dict[str, str]]] | None = None,
                 choices: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.manifest = manifest
        self.cache = cache
        self.caps = caps
        self._estimate = estimate
        self._device_of = device_of
        self._device_fallbacks = device_fallbacks
        self.choices = dict(choices or {})

    def _need_cache(self) -> ModelCache:
        if self.cache is None:
            raise StorageError("there is no model cache in this browser", hint=_NO_CACHE_HINT)
        return self.cache

    async def preload(self, targets: list[tuple[str, str | None]],
                      on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        cache = self._need_cache()
        summary = await cache.ensure(targets, on_progress=on_progress, fail_on_storage=True)
        return {**summary, "models": [{"id": m, "dtype": self.manifest.model(m).variant(d).dtype}
                                      for m, d in targets]}

    async def capabilities(self) -> dict[str, Any]:
        if self._estimate is not None:
            est = await self._estimate()
            self.caps = self.caps.with_storage(est.get("usage"), est.get("quota"), est.get("persisted"))
        fallbacks = list(self._device_fallbacks()) if self._device_fallbacks else []
        devices = {m.id: self._device_of(m) for m in self.manifest.models} if self._device_of else {}
        choices = {mid: {**c, "device": devices.get(mid, c.get("device"))} for mid, c in self.choices.items()}
        return {**self.caps.to_wire(), "cache": self.cache is not None, "choices": choices,
                "device_fallbacks": fallbacks}

    async def recommend(self, task: str | None) -> list[dict[str, Any]]:
        await self.capabilities()
        cached = {m["id"]: m["dtypes"] for m in await self.cache.stored_models()} if self.cache else {}
        return [r.to_wire() for r in recommend(self.manifest, self.caps, task, cached)]

    def annotate(self, value: Any) -> Any:
        """Fill ``route.device`` of a local result with where its model ran."""
        route = value.get("route") if isinstance(value, dict) else None
        if not isinstance(route, dict) or route.get("target") != "local" or self._device_of is None:
            return value
        model = route.get("model")
        if isinstance(model, str) and model in self.manifest.ids:
            route["device"] = self._device_of(self.manifest.model(model))
        return value

    def handlers(self) -> dict[str, Handler]:
        return {
            "cache_events": self._handle_events,
            "cached_models": self._handle_list,
            "capabilities": self._handle_capabilities,
            "configure_cache": self._handle_configure,
            "delete_model": self._handle_delete,
            "preload": self._handle_preload,
            "recommend_models": self._handle_recommend,
        }

    async def _handle_preload(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        validation.known_keys(params, ("models", "dtype"), where="preload")
        return await self.preload(_targets(params, self.manifest), ctx.progress)

    async def _handle_list(self, params: dict[str, Any], ctx: CallContext) -> list[dict[str, Any]]:
        validation.known_keys(params, (), where="cachedModels")
        return await self.cache.stored_models() if self.cache else []

    async def _handle_delete(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        validation.known_keys(params, ("model",), where="deleteModel")
        return await self._need_cache().delete(params.get("model"))  # type: ignore[arg-type]

    async def _handle_events(self, params: dict[str, Any], ctx: CallContext) -> list[dict[str, Any]]:
        validation.known_keys(params, (), where="cacheEvents")
        return self.cache.events() if self.cache else []

    async def _handle_configure(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        validation.known_keys(params, ("budget_bytes",), where="configureCache")
        return await self._need_cache().set_budget(params.get("budget_bytes"))

    async def _handle_capabilities(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        validation.known_keys(params, (), where="capabilities")
        return await self.capabilities()

    async def _handle_recommend(self, params: dict[str, Any], ctx: CallContext) -> list[dict[str, Any]]:
        validation.known_keys(params, ("task",), where="recommendModels")
        return await self.recommend(validation.optional_str(params.get("task"), "task"))
