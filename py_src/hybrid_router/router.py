"""``Router``: the public Python API, built from a runtime and a manifest; ``handlers()`` for the worker.

The worker glue does ``Dispatcher(router.handlers(), send)``: each wire method maps to one router
method, whose params are checked here (unknown keys are refused so a misspelt option is not ignored).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from hybrid_router import embeddings, validation
from hybrid_router.embeddings import EmbedResult
from hybrid_router.local.runtime import LocalRuntime, ProgressCallback
from hybrid_router.manifest import Manifest
from hybrid_router.protocol import CallContext, Handler

__all__ = ["Router"]


class Router:
    """Routes each call to the device (and, later, the cloud) and records why in its ``Route``."""

    def __init__(
        self, runtime: LocalRuntime, manifest: Manifest, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.runtime = runtime
        self.manifest = manifest
        self._clock = clock

    async def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dtype: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> EmbedResult:
        """Unit-norm embeddings of ``texts``, computed on the device (see :mod:`hybrid_router.embeddings`)."""
        return await embeddings.embed(
            self.runtime,
            self.manifest,
            texts,
            model_id=model,
            dtype=dtype,
            on_progress=on_progress,
            clock=self._clock,
        )

    def info(self) -> dict[str, Any]:
        """The version and the models the router can use, as plain data."""
        from hybrid_router import __version__  # the package imports this module: read it at call time

        return {
            "version": __version__,
            "models": [
                {
                    "id": m.id,
                    "tasks": list(m.tasks),
                    "context_length": m.context_length,
                    "default_dtype": m.default_dtype,
                    "dtypes": list(m.dtypes),
                    "memory_mb": m.memory_mb,
                    "min_device": m.min_device,
                }
                for m in self.manifest.models
            ],
        }

    def handlers(self) -> dict[str, Handler]:
        """The wire methods, for :class:`~hybrid_router.protocol.Dispatcher`."""
        return {"embed": self._handle_embed, "info": self._handle_info}

    async def _handle_embed(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        validation.known_keys(params, ("texts", "model", "dtype"), where="embed")
        result = await self.embed(
            cast(Sequence[str], params.get("texts")),  # embed checks it at run time
            model=params.get("model"),
            dtype=params.get("dtype"),
            on_progress=ctx.progress,
        )
        return result.to_wire()

    async def _handle_info(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        validation.known_keys(params, (), where="info")
        return self.info()
