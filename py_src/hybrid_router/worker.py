"""Glue inside the Web Worker: build the router on the browser's platform pieces and speak the protocol.

``web/worker.js`` boots Pyodide, then calls :func:`start` with its ``postMessage`` and the boot
configuration, and hands every incoming message to :meth:`WorkerApp.receive`. Only this module,
``local/transformers_js.py`` and ``transport_pyfetch.py`` touch ``js``/``pyodide``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import __version__
from .errors import ModelLoadError
from .manifest import Manifest
from .protocol import Dispatcher
from .providers.base import CloudProvider
from .retry import RetryPolicy
from .router import Router
from .routing import Policy


class WorkerApp:
    def __init__(self, router: Router, post_message: Callable[[Any], None]) -> None:
        import js  # type: ignore[import-not-found]
        from pyodide.ffi import to_js  # type: ignore[import-not-found]

        def send(message: dict[str, Any]) -> None:
            post_message(to_js(message, dict_converter=js.Object.fromEntries, depth=-1))

        self.router = router
        self.dispatcher = Dispatcher(router.handlers(), send)

    def receive(self, message: Any) -> None:
        data = message.to_py() if hasattr(message, "to_py") else message
        self.dispatcher.receive(data)


async def _fetch_json(url: str) -> tuple[int, Any]:
    from pyodide.http import pyfetch  # type: ignore[import-not-found]

    response = await pyfetch(url)
    return response.status, (await response.json() if response.ok else None)


def cloud_provider(config: dict[str, Any], base_url: str, options: dict[str, Any]) -> CloudProvider | None:
    """The provider the relay speaks for (``/api/cloud/config``), reached through pyfetch; None if none."""
    if not config or not config.get("available"):
        return None
    from .providers.anthropic import AnthropicProvider
    from .providers.openai_compat import OpenAICompatProvider
    from .transport_pyfetch import PyfetchTransport

    kind = AnthropicProvider if config.get("kind") == "anthropic" else OpenAICompatProvider
    retry = RetryPolicy(max_retries=int(options.get("max_retries", 2)))
    return kind(PyfetchTransport(), model=str(config["model"]), base_url=base_url,
                timeout=float(options.get("timeout_s", 60.0)), retry=retry)


async def start(post_message: Callable[[Any], None], config: Any) -> WorkerApp:
    """Create the router in the worker.

    ``config``: absolute URLs ``transformers_url``, ``manifest_url``, ``cloud_config_url``,
    ``cloud_base_url``; ``device``; ``cloud`` options (``timeout_s``, ``max_retries``); ``policy``.
    """
    from transformers_js_py import import_transformers_js  # type: ignore[import-not-found]

    from .local.transformers_js import TransformersJsRuntime

    cfg: dict[str, Any] = config.to_py() if hasattr(config, "to_py") else dict(config)
    module = await import_transformers_js(cfg["transformers_url"])
    # transformers_js_py turns local models off on every import; the worker configured the rest in JS
    module.js_obj.env.allowLocalModels = True
    module.js_obj.env.allowRemoteModels = False
    status, manifest_data = await _fetch_json(cfg["manifest_url"])
    if manifest_data is None:
        raise ModelLoadError(f"the model manifest could not be fetched: HTTP {status}",
                             hint="Serve the app with serve.py from the repository root (./hr run).",
                             url=cfg["manifest_url"], status=status)
    manifest = Manifest.from_dict(manifest_data)
    _, cloud_config = await _fetch_json(cfg["cloud_config_url"])
    cloud = cloud_provider(cloud_config or {}, cfg["cloud_base_url"], cfg.get("cloud") or {})
    label = (cloud_config or {}).get("label") if cloud else None
    policy = Policy().replace(**(cfg.get("policy") or {}))
    runtime = TransformersJsRuntime(module, device=cfg.get("device", "wasm"))
    router = Router(runtime, manifest, cloud=cloud, cloud_label=label, policy=policy)
    return WorkerApp(router, post_message)


def boot_info() -> dict[str, Any]:
    import sys

    return {"version": __version__, "python": sys.version.split()[0]}
