"""Which models suit this device for a task: usable ones first, best first, each with its reasons; and
the device's chat model.

Pure functions over the probed :class:`~hybrid_router.capabilities.Capabilities`, the manifest and what
the model cache holds; the device and dtype of each candidate come from :mod:`.devices`.

:func:`choose_chat_model` is the one place the on-device chat model is chosen (the planner asks it for
every generation, :meth:`Router.info` and the page show it):

- a model the call (``model``) or the policy (``chat_model``) names: used if it fits this device, else a
  ``ValidationError`` that says why and names the ones that fit;
- otherwise the largest text-generation model of the manifest (by ``memory_mb``) that fits: its memory
  within :data:`~.devices.MEMORY_SHARE` of the device's, its download within the free storage (unless
  cached), a WebGPU-only model only on a real GPU, and on a phone-class device
  (:func:`~.devices.phone_class`) a download under :data:`~.devices.PHONE_CHAT_BYTES`;
- none fits: no local chat (``model`` None), and the reason says why, for the route.

The manifest is the one served to this deployment: a model the server has not built is not in it, so it
is never chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hybrid_router.capabilities import Capabilities
from hybrid_router.errors import ValidationError
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.routing.devices import (
    MEMORY_SHARE,
    PHONE_CHAT_BYTES,
    choose_device,
    choose_dtype,
    fits_memory,
    phone_class,
)
from hybrid_router.routing.models import GENERATE, choose

__all__ = ["ChatChoice", "Recommendation", "choose_chat_model", "recommend"]

_MB = 1e6


@dataclass(frozen=True)
class Recommendation:
    """One model for a task on this device: usable or not, where and how it would run, and why."""

    model: str
    task: str
    usable: bool
    device: str
    dtype: str
    download_bytes: int
    cached: bool
    memory_mb: int
    score: float
    reasons: tuple[str, ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "task": self.task,
            "usable": self.usable,
            "device": self.device,
            "dtype": self.dtype,
            "download_bytes": self.download_bytes,
            "cached": self.cached,
            "memory_mb": self.memory_mb,
            "score": round(self.score, 3),
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class ChatChoice:
    """The device's chat model (None: no local chat), its dtype, and why (``reason``: one sentence, for
    the route and the page); ``named``: who named it (``"call"``, ``"policy"``), None when chosen for the
    device; ``phone``: the device is phone-class."""

    model: ModelEntry | None
    dtype: str | None
    reason: str
    phone: bool
    named: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "model": self.model.id if self.model is not None else None,
            "dtype": self.dtype,
            "why": self.reason,
            "device_class": "phone" if self.phone else "desktop",
            "named": self.named,
        }


def _chat_fit(
    model: ModelEntry, caps: Capabilities, cached: Sequence[str], phone: bool
) -> tuple[str, list[str]]:
    """The dtype ``model`` would run in on this device, and why it cannot (empty: it fits)."""
    dtype, _ = choose_dtype(model, caps, cached)
    size = model.total_bytes(dtype)
    problems: list[str] = []
    if model.min_device == "webgpu" and not caps.real_gpu:
        problems.append("it needs a real GPU (WebGPU)")
    if not fits_memory(model, caps):
        problems.append(
            f"it needs about {model.memory_mb} MB of memory, over {MEMORY_SHARE:.0%} of the device's "
            f"{caps.device_memory_gb:g} GB"
        )
    if phone and size >= PHONE_CHAT_BYTES:
        problems.append(
            f"its smallest download ({size / _MB:.0f} MB, {dtype}) is not under the "
            f"{PHONE_CHAT_BYTES / _MB:.0f} MB a phone-class device takes"
        )
    free = caps.storage_free
    if dtype not in cached and free is not None and size > free:
        problems.append(
            f"its {size / _MB:.0f} MB download does not fit the {free / _MB:.0f} MB of storage left"
        )
    return dtype, problems


def _described(model: ModelEntry, dtype: str) -> str:
    return (
        f"{model.id} ({dtype}, {model.total_bytes(dtype) / _MB:.0f} MB download, about "
        f"{model.memory_mb} MB of memory)"
    )


def choose_chat_model(
    manifest: Manifest,
    caps: Capabilities,
    *,
    named: str | None = None,
    by: str = "call",
    cached: Mapping[str, Sequence[str]] | None = None,
) -> ChatChoice:
    """The device's chat model (see the module docstring); ``named``: a model the call or policy (``by``)
    names; ``cached``: model id -> its dtypes stored whole."""
    phone, device = phone_class(caps)
    stored = cached or {}
    if named is not None:
        entry = choose(manifest, GENERATE, named)  # unknown, not a chat model, not built: with a hint
        dtype, problems = _chat_fit(entry, caps, stored.get(entry.id, ()), phone)
        if problems:
            fitting = [
                m.id
                for m in manifest.for_task(GENERATE)
                if not _chat_fit(m, caps, stored.get(m.id, ()), phone)[1]
            ]
            raise ValidationError(
                f"the chat model {named!r} does not fit this device ({device}): {'; '.join(problems)}",
                hint=(
                    f"Name one that fits ({', '.join(fitting)}), or leave the model unset: the router "
                    "chooses the largest that fits."
                    if fitting
                    else "No chat model fits this device: leave the model unset (the cloud answers, where "
                    "one is configured)."
                ),
                field="model" if by == "call" else "chat_model",
                model=named,
            )
        where = "the call's model option" if by == "call" else "the policy's chat_model"
        return ChatChoice(entry, dtype, f"{_described(entry, dtype)}, named by {where}", phone, by)
    ranked = sorted(manifest.for_task(GENERATE), key=lambda m: -m.memory_mb)  # stable: manifest order next
    skipped: list[str] = []
    for entry in ranked:
        dtype, problems = _chat_fit(entry, caps, stored.get(entry.id, ()), phone)
        if not problems:
            rest = f"; {'; '.join(skipped)}" if skipped else ""
            return ChatChoice(
                entry,
                dtype,
                f"{device}: {_described(entry, dtype)} is the largest chat model that fits{rest}",
                phone,
            )
        skipped.append(f"{entry.id} does not fit: {', '.join(problems)}")
    if not ranked:
        return ChatChoice(None, None, "this deployment has no on-device chat model", phone)
    return ChatChoice(
        None, None, f"no local chat: no chat model fits this device ({device}): {'; '.join(skipped)}", phone
    )


def _assess(
    model: ModelEntry, task: str, caps: Capabilities, cached_dtypes: Sequence[str], rank: int
) -> Recommendation:
    reasons: list[str] = []
    usable = True
    score = 1.0 - 0.01 * rank  # the manifest lists a task's default model first
    if model.min_device == "webgpu" and not caps.real_gpu:
        usable = False
        reasons.append(
            "needs a real GPU (WebGPU); this device has "
            + ("only a software adapter" if caps.adapter else "no WebGPU adapter")
        )
    if not fits_memory(model, caps):
        usable = False
        reasons.append(
            f"needs about {model.memory_mb} MB of memory; this device reports "
            f"{caps.device_memory_gb:g} GB (a model may take at most half)"
        )
    elif caps.memory_mb is not None:
        reasons.append(f"about {model.memory_mb} MB of memory of the device's {caps.device_memory_gb:g} GB")
    device = choose_device(model, caps)
    dtype, why = choose_dtype(model, caps, cached_dtypes)
    reasons.append(f"{dtype} on {device}: {why}")
    cached = dtype in cached_dtypes
    download = 0 if cached else model.total_bytes(dtype)
    free = caps.storage_free
    if cached:
        score += 0.5
        reasons.append("already cached on this device: no download")
    elif free is not None and download > free:
        score -= 0.4
        reasons.append(
            f"{download / _MB:.0f} MB download does not fit the {free / _MB:.0f} MB of storage "
            "left: it would run from memory and download again next time"
        )
    else:
        reasons.append(
            f"{download / _MB:.0f} MB to download"
            + (f" ({free / _MB:.0f} MB of storage left)" if free is not None else "")
        )
    score -= min(0.3, download / 2e9)  # a smaller download ranks higher
    if device == "webgpu":
        score += 0.1
    return Recommendation(
        model.id,
        task,
        usable,
        device,
        dtype,
        download,
        cached,
        model.memory_mb,
        score if usable else score - 10,
        tuple(reasons),
    )


def recommend(
    manifest: Manifest,
    caps: Capabilities,
    task: str | None = None,
    cached: Mapping[str, Sequence[str]] | None = None,
) -> list[Recommendation]:
    """The models for ``task`` (every model when None), usable ones first, best first.

    ``cached``: model id -> its dtypes stored whole in the model cache.
    """
    if task is not None and not any(task in m.tasks for m in manifest.models):
        known = sorted({t for m in manifest.models for t in m.tasks})
        raise ValidationError(
            f"no model of the manifest does {task!r}",
            hint=f"Use one of the tasks: {', '.join(known)}.",
            field="task",
        )
    out: list[Recommendation] = []
    chat = choose_chat_model(manifest, caps, cached=cached) if task in (None, GENERATE) else None
    for m in manifest.models:
        for t in m.tasks:
            if task is None or t == task:
                rank = [x.id for x in manifest.for_task(t)].index(m.id)
                found = _assess(m, t, caps, (cached or {}).get(m.id, ()), rank)
                out.append(_as_chat(found, m, caps, chat) if chat is not None and t == GENERATE else found)
    return sorted(out, key=lambda r: (-r.usable, -r.score, r.model))


def _as_chat(rec: Recommendation, model: ModelEntry, caps: Capabilities, chat: ChatChoice) -> Recommendation:
    """A chat model's recommendation, as :func:`choose_chat_model` sees it: the chosen one first, one
    that does not fit this device not usable."""
    if chat.model is not None and chat.model.id == model.id:
        return replace(
            rec, score=rec.score + 1, reasons=(f"the device's chat model: {chat.reason}", *rec.reasons)
        )
    phone, _ = phone_class(caps)
    _, problems = _chat_fit(model, caps, () if not rec.cached else (rec.dtype,), phone)
    if not problems:
        return rec
    score = rec.score - 10 if rec.usable else rec.score
    return replace(rec, usable=False, score=score, reasons=(*problems, *rec.reasons))
