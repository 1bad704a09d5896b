"""Glue inside the Web Worker: build the router on the browser's platform pieces and speak the protocol.

``web/worker.js`` boots Pyodide, then calls :func:`start` with its ``postMessage`` and the boot
configuration, and hands every incoming message to :meth:`WorkerApp.receive`. This module and the other
modules of ``hybrid_router.browser`` are the only ones that touch ``js``/``pyodide``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .. import __version__, build_watch, wire
from ..capabilities import Capabilities, merged_facts
from ..errors import ModelLoadError, StorageError
from ..ledger import Ledger
from ..manifest import Manifest
from ..model_cache import ModelCache
from ..model_manager import ModelManager, adapt_manifest
from ..protocol import Dispatcher
from ..providers.base import CloudProvider
from ..response_cache import CacheConfig, MemoryResponseStore, ResponseCache, ResponseStore
from ..retry import RetryPolicy
from ..router import Router
from ..routing import Devices, Policy


class WorkerApp:
    def __init__(self, router: Router, post_message: Callable[[Any], None]) -> None:
        import js
        from pyodide.ffi import to_js

        def send(message: dict[str, Any]) -> None:
            post_message(to_js(message, dict_converter=js.Object.fromEntries, depth=-1))

        self.router = router
        self.send = send
        self.dispatcher = Dispatcher(wire.handlers(router), send, on_unstarted=wire.unstarted(router))
        self.watch: asyncio.Task[None] | None = None

    def event(self, kind: str, **data: Any) -> None:
        """Tell the page something changed in the worker (not a reply to a call: ``id`` null)."""
        self.send({"id": None, "type": "event", "event": {"kind": kind, **data}})

    def follow_build(self, cfg: dict[str, Any], manifest: dict[str, Any], cloud: dict[str, Any]) -> None:
        """While the server still builds models or the cloud tier, pick them up as they come."""
        if not build_watch.pending(manifest, cloud):
            return

        def on_manifest(data: dict[str, Any]) -> None:
            self.router.use_manifest(Manifest.from_dict(data))
            self.event("models", models=list(self.router.manifest.ids))

        def on_cloud(data: dict[str, Any]) -> None:
            provider = cloud_provider(data, cfg["cloud_base_url"], cfg.get("cloud") or {})
            self.router.use_cloud(provider, label=data.get("label"), note=build_watch.cloud_note(data))
            self.event("cloud", available=provider is not None, note=self.router.planner.cloud_note)

        urls = {
            "status": cfg["build_status_url"],
            "manifest": cfg["manifest_url"],
            "cloud": cfg["cloud_config_url"],
        }
        watch = build_watch.BuildWatch(
            _fetch_json, urls, on_manifest, on_cloud, manifest=manifest, cloud=cloud
        )
        self.watch = asyncio.ensure_future(watch.run())

    def receive(self, message: Any) -> None:
        data = message.to_py() if hasattr(message, "to_py") else message
        self.dispatcher.receive(data)


async def _fetch_json(url: str) -> tuple[int, Any]:
    from pyodide.http import pyfetch

    response = await pyfetch(url)
    return response.status, (await response.json() if response.ok else None)


def cloud_provider(config: dict[str, Any], base_url: str, options: dict[str, Any]) -> CloudProvider | None:
    """The provider the relay speaks for (``/api/cloud/config``), reached through pyfetch; None if none."""
    if not config or not config.get("available"):
        return None
    from ..providers.anthropic import AnthropicProvider
    from ..providers.openai_compat import OpenAICompatProvider
    from .transport_pyfetch import PyfetchTransport

    kind = AnthropicProvider if config.get("kind") == "anthropic" else OpenAICompatProvider
    retry = RetryPolicy(max_retries=int(options.get("max_retries", 2)))
    return kind(
        PyfetchTransport(),
        model=str(config["model"]),
        base_url=base_url,
        timeout=float(options.get("timeout_s", 60.0)),
        retry=retry,
    )


def _transformers_module() -> Any:
    """transformers_js_py's proxy of the Transformers.js module worker.js imported and configured.

    Not ``import_transformers_js(url)``: it imports through ``pyodide.code.run_js`` (``eval``, refused by
    the site's Content-Security-Policy) and resets ``env.allowLocalModels``. This sets what it sets
    (transformers-js-py 0.19.10, pinned in builder/pins.py) and wraps the same object. Its module imports
    numpy when it is imported; it gets our lazy numpy, so the start does not wait for numpy's import.
    """
    import hybrid_router_js

    from .._lazy import numpy

    with numpy.standing_in():  # it imports numpy: let it take ours, imported on first use
        from transformers_js_py import proxies

    js_module = hybrid_router_js.transformers
    proxies._TRANSFORMERS_JS = js_module
    return proxies.TjsModuleProxy(js_module)


async def _cloud_config(url: str | None) -> dict[str, Any] | None:
    """The relay's ``/config``, or None: no relay (a local-only site), or it cannot be reached (offline
    on a start without a cached copy). Either way the router starts; without a provider the cloud is off."""
    if not url:
        return None
    import js
    from pyodide.ffi import JsException

    try:
        _, data = await _fetch_json(url)
    except (OSError, JsException) as exc:  # pyfetch's "Failed to fetch", a body that is not JSON
        js.console.warn(f"the cloud relay's configuration could not be fetched ({url}): {exc}")
        return None
    return data if isinstance(data, dict) else None


async def _cached_dtypes(cache: ModelCache | None) -> dict[str, list[str]]:
    if cache is None:
        return {}
    try:
        return {m["id"]: m["dtypes"] for m in await cache.stored_models()}
    except StorageError:  # IndexedDB failing is not a reason to stop: the dtype choice just ignores it
        return {}


def _install_cache(env: Any, cache: ModelCache, edge: Any) -> None:
    """Make ``cache`` Transformers.js's only cache: its ``customCache``, Cache Storage off."""
    import asyncio

    from pyodide.ffi import create_proxy

    # lives as long as the worker: Transformers.js calls it for every model file
    lookup = create_proxy(lambda key: asyncio.ensure_future(cache.match(str(key))))
    env.useBrowserCache = False
    env.useCustomCache = True
    env.customCache = edge.customCache(lookup)


async def start(post_message: Callable[[Any], None], config: Any, edge: Any = None) -> WorkerApp:
    """Create the router in the worker.

    ``config``: absolute URLs ``manifest_url``, ``models_url``, ``cloud_config_url`` (None: no relay),
    ``cloud_base_url``, ``build_status_url``; ``device``; ``cloud`` options (``timeout_s``,
    ``max_retries``); ``policy``;
    ``cache_budget_bytes``; ``capabilities`` (facts that override the probe's: create({ capabilities })).
    ``edge`` (JS): ``store`` (web/idb-store.js's ModelStore, null without
    IndexedDB), ``customCache`` (its factory), ``capabilities`` (web/capabilities.js's probe).
    """
    from .transformers_js import TransformersJsRuntime

    cfg: dict[str, Any] = config.to_py() if hasattr(config, "to_py") else dict(config)
    module = _transformers_module()
    status, manifest_data = await _fetch_json(cfg["manifest_url"])
    if manifest_data is None:
        raise ModelLoadError(
            f"the model manifest could not be fetched: HTTP {status}",
            hint="Serve the app with serve.py from the repository root (./hr run).",
            url=cfg["manifest_url"],
            status=status,
        )
    manifest = Manifest.from_dict(manifest_data)
    probed = edge.capabilities.to_py() if edge is not None and edge.capabilities else {}
    overrides = cfg.get("capabilities") or {}  # create({ capabilities }): for tests and embedding apps
    caps = Capabilities.from_facts(merged_facts(probed, overrides))
    cache = None
    if edge is not None and edge.store and cfg.get("models_url"):
        from .store_idb import IdbStore

        idle = cfg.get("download_idle_ms")
        store = IdbStore(
            edge.store, idle_ms=int(idle) if isinstance(idle, int | float) and idle > 0 else None
        )
        cache = ModelCache(
            manifest, store, base_url=cfg["models_url"], budget_bytes=cfg.get("cache_budget_bytes")
        )
        _install_cache(module.js_obj.env, cache, edge)
    cached = await _cached_dtypes(cache)
    manifest, choices = adapt_manifest(manifest, caps, cached)
    if cache is not None:
        cache.manifest = manifest
    cloud_config = await _cloud_config(cfg.get("cloud_config_url"))
    cloud = cloud_provider(cloud_config or {}, cfg["cloud_base_url"], cfg.get("cloud") or {})
    label = (cloud_config or {}).get("label") if cloud else None
    policy = Policy().replace(**(cfg.get("policy") or {}))
    devices = Devices(caps, pinned=cfg.get("device"))  # create({ device }) pins one device for every model
    runtime = TransformersJsRuntime(module, devices=devices, cache=cache)

    async def estimate() -> dict[str, Any]:
        probe = await edge.estimateStorage()
        return dict(merged_facts({"storage": probe.to_py()}, overrides)["storage"])

    models = ModelManager(
        manifest,
        cache,
        caps,
        estimate=estimate if edge is not None else None,
        devices=devices,
        choices=choices,
        cached=cached,
    )
    ledger = await _persistent_ledger(manifest, cloud)
    router = Router(
        runtime,
        manifest,
        cloud=cloud,
        cloud_label=label,
        cloud_note=build_watch.cloud_note(cloud_config),
        policy=policy,
        models=models,
        devices=devices,
        index_store=await _index_store(),
        response_cache=await _response_cache(cfg.get("response_cache")),
        ledger=ledger,
    )
    app = WorkerApp(router, post_message)
    app.follow_build(cfg, manifest_data, cloud_config or {})
    return app


async def _persistent_ledger(manifest: Manifest, cloud: CloudProvider | None) -> Ledger:
    """The cost ledger, kept in IndexedDB and shared by the origin's tabs (under a Web Lock), so that the
    daily cloud budget survives a reload and holds across tabs. Without IndexedDB it lives in memory."""
    import hybrid_router_js
    import js
    from pyodide.ffi import JsException

    from .ledger_store_idb import IdbLedgerStore

    cloud_model = cloud.model if cloud is not None else None
    try:
        store = IdbLedgerStore(await hybrid_router_js.openStateStore())
    except JsException as exc:
        js.console.warn(f"the cost ledger stays in memory: {exc}")
        return Ledger(manifest, cloud_model=cloud_model)
    ledger = Ledger(manifest, cloud_model=cloud_model, store=store)
    try:
        await ledger.sync()  # what this origin's tabs spent and hold today
    except JsException as exc:
        js.console.warn(f"the cost ledger could not be read and stays in memory: {exc}")
        return Ledger(manifest, cloud_model=cloud_model)
    return ledger


async def _index_store() -> Any:
    """The vector indexes' IndexedDB store, or None (indexes then live in memory only)."""
    from .index_store_idb import IdbIndexStore

    try:
        return await IdbIndexStore.open()
    except StorageError as exc:
        import js

        js.console.warn(f"vector indexes stay in memory: {exc.message}")
        return None


async def _response_cache(options: Any) -> ResponseCache | None:
    """The response cache ``create({ cache })`` asked for (None: off), in IndexedDB (shared by the origin's
    tabs, kept across reloads), else in memory."""
    config = CacheConfig.parse(options)
    if config is None:
        return None
    from .response_store_idb import IdbResponseStore

    try:
        store: ResponseStore = await IdbResponseStore.open()
    except StorageError as exc:
        import js

        js.console.warn(f"the response cache stays in memory: {exc.message}")
        store = MemoryResponseStore()
    return ResponseCache(config, store)


def boot_info() -> dict[str, Any]:
    import sys

    return {"version": __version__, "python": sys.version.split()[0]}
