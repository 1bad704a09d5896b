"""Glue inside the Web Worker: build the router on the browser's platform pieces and speak the protocol.

``web/worker.js`` boots Pyodide, then calls :func:`start` with its ``postMessage`` and the boot
configuration, and hands every incoming message to :meth:`WorkerApp.receive`. Only this module and
``local/transformers_js.py`` (and the pyfetch transport) touch ``js``/``pyodide``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import __version__
from .errors import ModelLoadError
from .manifest import Manifest
from .protocol import Dispatcher
from .router import Router


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


async def start(post_message: Callable[[Any], None], config: Any) -> WorkerApp:
    """Create the router in the worker. ``config`` holds absolute URLs: transformers_url, manifest_url."""
    from pyodide.http import pyfetch  # type: ignore[import-not-found]
    from transformers_js_py import import_transformers_js  # type: ignore[import-not-found]

    from .local.transformers_js import TransformersJsRuntime

    cfg: dict[str, Any] = config.to_py() if hasattr(config, "to_py") else dict(config)
    module = await import_transformers_js(cfg["transformers_url"])
    # transformers_js_py turns local models off on every import; the worker configured the rest in JS
    module.js_obj.env.allowLocalModels = True
    module.js_obj.env.allowRemoteModels = False
    response = await pyfetch(cfg["manifest_url"])
    if not response.ok:
        raise ModelLoadError(f"the model manifest could not be fetched: HTTP {response.status}",
                             hint="Serve the app with serve.py from the repository root (./hr run).",
                             url=cfg["manifest_url"], status=response.status)
    manifest = Manifest.from_json(await response.string())
    runtime = TransformersJsRuntime(module, device=cfg.get("device", "wasm"))
    router = Router(runtime, manifest)
    return WorkerApp(router, post_message)


def boot_info() -> dict[str, Any]:
    import sys

    return {"version": __version__, "python": sys.version.split()[0]}
