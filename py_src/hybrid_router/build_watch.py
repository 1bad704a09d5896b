"""Follow the server's background build from the worker: models built while the page is open, and the
default cloud tier coming up, reach the router without a reload.

The server says what is still coming: its manifest lists the models it has not built under ``not_built``
(each with a ``state``), and ``/api/cloud/config`` says ``starting`` while the default cloud tier is
being built. While anything is queued or running, :class:`BuildWatch` asks ``/api/build/status`` every
``interval_s``; when its ``version`` changes it fetches the manifest and the cloud config again and hands
them on (``on_manifest``, ``on_cloud``). Nothing is pending, nothing is asked: a page on a fully built
server makes no request for this. Pure Python: the fetch and the sleep are passed in.

:func:`model_note` and :func:`not_ready` say the same of a model the server has not built yet (the
routing raises it when a task has no model but one is on its way, instead of claiming there is none).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ModelNotReadyError
from .manifest import NotBuilt

__all__ = ["PENDING_STATES", "BuildWatch", "cloud_note", "model_note", "not_ready", "pending"]

#: the states of a model (or the cloud tier) that will change by themselves
PENDING_STATES = frozenset({"queued", "running"})

FetchJson = Callable[[str], Awaitable[tuple[int, Any]]]


def pending(manifest: Mapping[str, Any] | None, cloud: Mapping[str, Any] | None) -> bool:
    """Whether the server is still building something the router would use."""
    models = (manifest or {}).get("not_built") or []
    building = any(isinstance(m, Mapping) and m.get("state") in PENDING_STATES for m in models)
    return building or bool((cloud or {}).get("starting"))


def cloud_note(cloud: Mapping[str, Any] | None) -> str | None:
    """Why there is no cloud yet, for the route's rule ("the cloud tier is still starting (compiling,
    ~6 minutes left)"), or None when the config says nothing of it."""
    if not cloud or cloud.get("available"):
        return None
    raw = cloud.get("status")
    status: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if not cloud.get("starting"):
        message = status.get("message")
        return f"the cloud tier could not start ({message})" if message else None
    parts = [str(status["step"])] if status.get("step") else []
    eta = status.get("eta_s")
    if isinstance(eta, int | float) and not isinstance(eta, bool) and eta > 0:
        minutes = max(1, round(eta / 60))
        parts.append(f"~{minutes} minute{'s' if minutes != 1 else ''} left")
    return "the cloud tier is still starting" + (f" ({', '.join(parts)})" if parts else "")


def _left(seconds: float | None) -> str | None:
    if seconds is None or seconds <= 0:
        return None
    if seconds < 60:
        return f"~{max(5, 5 * round(seconds / 5))} seconds"
    minutes = round(seconds / 60)
    return f"~{minutes} minute{'s' if minutes != 1 else ''}"


def model_note(model: NotBuilt) -> str:
    """Where the server's build of ``model`` stands (as web/build-status.js's ``describeJob`` says it):
    "still being built on the server (training, 33%, ~7 minutes left)", "queued in the server's build
    (ready in ~40 minutes)", "not built: the server's build is waiting (...)"."""
    left = _left(model.eta_s)
    if model.state == "running":
        parts = [model.step or "starting"]
        if model.progress is not None:
            parts.append(f"{round(model.progress * 100)}%")
        parts += [f"{left} left"] if left else []
        return f"still being built on the server ({', '.join(parts)})"
    if model.state == "queued":
        return "queued in the server's build" + (f" (ready in {left})" if left else "")
    why = model.message or model.state
    return {
        "blocked": f"not built: the server's build is waiting ({why})",
        "failed": f"not built: its build failed ({why})",
    }.get(model.state, f"not built on this server ({why})")


def not_ready(model: NotBuilt, task: str, kind: str, meanwhile: str | None = None) -> ModelNotReadyError:
    """The error of a ``task`` call whose ``kind`` model (e.g. "text-classification") is ``model``, not
    built yet; ``meanwhile`` (a sentence) says what answers instead, where anything does."""
    if model.state in PENDING_STATES:
        then = "try again when it is built: the model panel shows its progress."
    else:
        then = model.hint or "build it (./hr build) where its training data is."
    hint = f"{meanwhile} Or {then[0].lower()}{then[1:]}" if meanwhile else then[0].upper() + then[1:]
    return ModelNotReadyError(
        f"the {kind} model {model.id} is {model_note(model)}",
        hint=hint,
        model=model.id,
        task=task,
        state=model.state,
        step=model.step,
        progress=model.progress,
        eta_s=model.eta_s,
    )


@dataclass
class BuildWatch:
    """Polls the build while something is pending (see the module docstring)."""

    fetch_json: FetchJson
    urls: Mapping[str, str]  # "status", "manifest", "cloud"
    on_manifest: Callable[[dict[str, Any]], None]
    on_cloud: Callable[[dict[str, Any]], None]
    interval_s: float = 5.0
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    version: int | None = None
    manifest: dict[str, Any] | None = None
    cloud: dict[str, Any] | None = None

    async def run(self) -> None:
        """Poll until nothing is pending any more; fetch failures are retried at the next interval."""
        while pending(self.manifest, self.cloud):
            await self.sleep(self.interval_s)
            status, body = await self._get("status")
            if status != 200 or not isinstance(body, Mapping):
                continue
            version = body.get("version")
            if version == self.version:
                continue
            self.version = version if isinstance(version, int) else None
            await self.refresh()

    async def refresh(self) -> None:
        """Fetch the manifest and the cloud config again; hand on what changed."""
        status, manifest = await self._get("manifest")
        if status == 200 and isinstance(manifest, dict) and manifest != self.manifest:
            self.manifest = manifest
            self.on_manifest(manifest)
        status, cloud = await self._get("cloud")
        if status == 200 and isinstance(cloud, dict) and cloud != self.cloud:
            self.cloud = cloud
            self.on_cloud(cloud)

    async def _get(self, which: str) -> tuple[int, Any]:
        try:
            return await self.fetch_json(self.urls[which])
        except Exception:  # the server restarting, the network away: ask again next time
            return 0, None
