"""Model management behind the router: preload, the cache's list/delete/events/budget, capabilities and
recommendations, and the manifest adapted to this device (the dtype the routing chose per model). Pure
Python (the cache's store and the capability probe are handed in).

Its wire methods (:mod:`hybrid_router.wire`):

- ``preload`` ``{models: [id | {id, dtype}], dtype}``: progress events (per file, and
  ``progress_total`` with bytes done over the manifest's total); a file that cannot be stored raises
  ``StorageError`` at the end while its bytes stay in memory for the model's first use;
- ``cached_models`` ``{}``: ``[{id, dtypes, bytes, files, partial_files, last_used, known}]``;
- ``delete_model`` ``{model}``; ``cache_events`` ``{}``; ``configure_cache`` ``{budget_bytes}``;
- ``capabilities`` ``{}`` (the storage figures read again); ``recommend_models`` ``{task}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from . import validation
from .capabilities import Capabilities
from .errors import StorageError, ValidationError
from .manifest import Manifest, ModelEntry
from .model_cache import ModelCache
from .routing.devices import Devices, choose_device, choose_dtype
from .routing.recommend import recommend

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


def preload_targets(raw: object, dtype: object, manifest: Manifest) -> list[tuple[str, str | None]]:
    """``preload``'s ``models`` (ids, or ``{id, dtype}`` items) and ``dtype``, checked against the
    manifest."""
    default_dtype = validation.optional_str(dtype, "dtype")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ValidationError(
            "preload needs a list of model ids",
            hint=f"Pass e.g. ['{manifest.ids[0] if manifest.ids else 'model-id'}'], "
            "or [{ id, dtype }] items.",
            field="models",
        )
    out: list[tuple[str, str | None]] = []
    for item in raw:
        mid, item_dtype = (
            (item.get("id"), item.get("dtype", default_dtype))
            if isinstance(item, Mapping)
            else (item, default_dtype)
        )
        if not isinstance(mid, str) or mid not in manifest.ids:
            raise ValidationError(
                f"preload: unknown model {mid!r}",
                hint=f"Use one of the manifest's models: {', '.join(manifest.ids)}.",
                field="models",
                model=str(mid),
            )
        manifest.model(mid).variant(item_dtype)  # ValidationError for a dtype it does not have
        out.append((mid, item_dtype))
    return out


class ModelManager:
    """``cache`` None: no IndexedDB (models run from memory). ``estimate`` reads the storage figures
    again for :meth:`capabilities`; ``devices`` says where each model runs now (WebGPU failures moved to
    wasm); ``cached``: model id -> the dtypes the cache held whole at the start (the chat model is chosen
    on them, :func:`~hybrid_router.routing.recommend.choose_chat_model`)."""

    def __init__(
        self,
        manifest: Manifest,
        cache: ModelCache | None,
        caps: Capabilities,
        *,
        estimate: Callable[[], Awaitable[Mapping[str, Any]]] | None = None,
        devices: Devices | None = None,
        choices: Mapping[str, Mapping[str, str]] | None = None,
        cached: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.manifest = manifest
        self.cache = cache
        self.caps = caps
        self._estimate = estimate
        self.devices = devices
        self.choices = dict(choices or {})
        self.cached: dict[str, Sequence[str]] = dict(cached or {})

    def use_manifest(self, manifest: Manifest) -> None:
        """The server's manifest changed (a model built in the background): the dtypes are chosen for this
        device again and the cache follows."""
        adapted, choices = adapt_manifest(manifest, self.caps)
        self.manifest = adapted
        self.choices = dict(choices)
        if self.cache is not None:
            self.cache.manifest = adapted

    def _need_cache(self) -> ModelCache:
        if self.cache is None:
            raise StorageError("there is no model cache in this browser", hint=_NO_CACHE_HINT)
        return self.cache

    async def preload(
        self,
        models: object,
        dtype: object = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        targets = preload_targets(models, dtype, self.manifest)
        cache = self._need_cache()
        summary = await cache.ensure(targets, on_progress=on_progress, fail_on_storage=True)
        return {
            **summary,
            "models": [{"id": m, "dtype": self.manifest.model(m).variant(d).dtype} for m, d in targets],
        }

    async def cached_models(self) -> list[dict[str, Any]]:
        return await self.cache.stored_models() if self.cache else []

    async def delete_model(self, model: object) -> dict[str, Any]:
        return await self._need_cache().delete(model)

    def cache_events(self) -> list[dict[str, Any]]:
        return self.cache.events() if self.cache else []

    async def configure_cache(self, budget_bytes: object) -> dict[str, Any]:
        return await self._need_cache().set_budget(budget_bytes)

    async def capabilities(self) -> dict[str, Any]:
        if self._estimate is not None:
            est = await self._estimate()
            self.caps = self.caps.with_storage(est.get("usage"), est.get("quota"), est.get("persisted"))
        devices = self.devices
        fallbacks = devices.to_wire() if devices is not None else []
        choices = {
            mid: {**c, "device": devices.device_of(self.manifest.model(mid)) if devices else c.get("device")}
            for mid, c in self.choices.items()
            if mid in self.manifest.ids
        }
        return {
            **self.caps.to_wire(),
            "cache": self.cache is not None,
            "choices": choices,
            "device_fallbacks": fallbacks,
        }

    async def recommend(self, task: object = None) -> list[dict[str, Any]]:
        chosen = validation.optional_str(task, "task")
        await self.capabilities()
        cached = {m["id"]: m["dtypes"] for m in await self.cache.stored_models()} if self.cache else {}
        return [r.to_wire() for r in recommend(self.manifest, self.caps, chosen, cached)]
