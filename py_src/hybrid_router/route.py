"""``Route``: the decision record every result carries (where it ran, why, and what it cost).

A route says which side answered (``target``), a short machine-readable ``reason`` code, the
human-readable ``rule`` that decided, the model, the latency and usage, and the ``fallbacks`` tried
before the answer (each a :class:`FallbackStep`). Reason codes in use:

- ``"task-default"``: the task's default side (embeddings run on the device);
- ``"explicit"``: the caller asked for a target or a model;
- ``"fallback"``: the first choice failed and the other side answered (see ``fallbacks``);
- ``"privacy"``: privacy ``"local-only"`` kept it on the device;
- ``"local-unavailable"``: there is no on-device model for the task;
- ``"context-length"``: the input does not fit the on-device context window;
- ``"budget"``: today's cloud budget is spent;
- ``"tier"``: the user tier decided (free: device, enterprise: cloud first);
- ``"complexity"``: the prompt's complexity estimate reached the threshold;
- ``"cloud-unavailable"``: the rules preferred the cloud but none is configured;
- ``"sensitive"``: the prompt holds personal data and the policy keeps such prompts on the device;
- ``"offline"``: the browser is offline, so a request that could go either way stays on the device;
- ``"default"``: nothing sent it elsewhere, so the device;
- ``"cache"``: the response cache answered (target ``"cache"``; ``cache`` holds the similarity and the
  original route: :mod:`hybrid_router.response_cache`).

The order in which these rules apply is in :mod:`hybrid_router.routing.rules`; routes are issued only by
:func:`hybrid_router.routing.plans.issue_route`. ``complexity`` is the
estimate's score when one was computed; ``decision_ms`` the router's own time to choose the side
(request checks, token count, complexity estimate, rules), 0 where there is nothing to choose.

New fields are added with defaults; ``to_wire`` follows the dataclass fields, so they reach the wire
without touching it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from hybrid_router.errors import error_to_wire

__all__ = [
    "REASON_BUDGET",
    "REASON_CACHE",
    "REASON_CLOUD_UNAVAILABLE",
    "REASON_COMPLEXITY",
    "REASON_CONTEXT_LENGTH",
    "REASON_DEFAULT",
    "REASON_EXPLICIT",
    "REASON_FALLBACK",
    "REASON_LOCAL_UNAVAILABLE",
    "REASON_OFFLINE",
    "REASON_PRIVACY",
    "REASON_SENSITIVE",
    "REASON_TASK_DEFAULT",
    "REASON_TIER",
    "REASON_TOOLS",
    "ROUTE_TARGETS",
    "TARGETS",
    "FallbackStep",
    "Route",
    "RouteTarget",
    "Target",
]

Target = Literal["local", "cloud"]
TARGETS: tuple[Target, ...] = get_args(Target)
#: what a route may name: a side, or the response cache (which ran nothing)
RouteTarget = Literal["local", "cloud", "cache"]
ROUTE_TARGETS: tuple[RouteTarget, ...] = get_args(RouteTarget)

REASON_TASK_DEFAULT = "task-default"
REASON_EXPLICIT = "explicit"
REASON_FALLBACK = "fallback"
REASON_PRIVACY = "privacy"
REASON_LOCAL_UNAVAILABLE = "local-unavailable"
REASON_CONTEXT_LENGTH = "context-length"
REASON_BUDGET = "budget"
REASON_TIER = "tier"
REASON_COMPLEXITY = "complexity"
REASON_CLOUD_UNAVAILABLE = "cloud-unavailable"
REASON_DEFAULT = "default"
REASON_SENSITIVE = "sensitive"
REASON_OFFLINE = "offline"
REASON_CACHE = "cache"
REASON_TOOLS = "tools"


def _check_target(target: str, allowed: tuple[str, ...] = TARGETS) -> None:
    # A bad target is a bug in the router itself, not in the caller's input: it surfaces as InternalError.
    if target not in allowed:
        raise ValueError(f"route target must be one of {allowed}, got {target!r}")


@dataclass(frozen=True, slots=True)
class FallbackStep:
    """One attempt that failed before the route that answered: where, with what, and why it failed."""

    target: Target
    model: str | None
    error_name: str
    message: str

    def __post_init__(self) -> None:
        _check_target(self.target)

    @classmethod
    def from_error(cls, target: Target, model: str | None, exc: BaseException) -> FallbackStep:
        """The step for an attempt that raised ``exc`` (named as it would be on the wire)."""
        wire = error_to_wire(exc)
        return cls(target=target, model=model, error_name=wire["name"], message=wire["message"])

    def to_wire(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True)
class Route:
    """Where a call ran and why; ``ms`` is the wall time of the call, ``cost_usd`` 0 on the device."""

    target: RouteTarget
    reason: str
    rule: str
    model: str | None
    ms: float = 0.0
    fallbacks: tuple[FallbackStep, ...] = ()
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    device: str | None = None
    dtype: str | None = None
    complexity: float | None = None
    decision_ms: float = 0.0
    #: the prompt router's score, its head and threshold, and what drove it (generations)
    router: dict[str, Any] | None = None
    #: personal data looked for in the prompt: ``{"action": "local" | "redact", "found": {kind: count},
    #: "missing": [detector, ...]}`` (``missing``: the detectors that could not run, e.g.
    #: ``"ner:minilm-l6-conll03-ner"``; the request then stayed on the device)
    sensitive: dict[str, Any] | None = None
    #: a generation's answer: ``"stop"`` (it ended) or ``"length"`` (cut at ``max_tokens``), as the side
    #: that answered reported it (None where it did not say, and for the other tasks)
    finish_reason: str | None = None
    #: a generation's output budget on the side that answered (the call's, else that side's default)
    max_tokens: int | None = None
    #: prompt tokens the device served from its KV cache of the conversation's earlier turns (not
    #: evaluated again: a follow-up turn evaluates only its new tokens); 0 in the cloud
    tokens_cached: int = 0
    #: a generation: the device's chat model and why it was chosen, whichever side answered
    #: (``{"model", "dtype", "why", "device_class", "named"}``; ``model`` None: no chat model fits the device)
    chat_model: dict[str, Any] | None = None
    #: an answer from the response cache: ``{"similarity", "threshold", "age_ms", "saved_usd", "original"}``
    #: (``original``: the route of the answer it replays); None otherwise
    cache: dict[str, Any] | None = None
    #: the cascade's check of the device's answer (policy ``verify: "confidence"``): ``{"method", "score",
    #: "threshold", "mean_logprob", "min_logprob", "tokens_scored", "device_tokens_out", "escalated",
    #: "not_escalated"}`` (``not_escalated``: why a low score stayed on the device); None when not checked
    verify: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _check_target(self.target, ROUTE_TARGETS)
        if not isinstance(self.fallbacks, tuple):
            # Keeps the record immutable even when a caller builds it from a list.
            object.__setattr__(self, "fallbacks", tuple(self.fallbacks))

    def replace(self, **changes: Any) -> Route:
        """A copy with some fields changed (e.g. ``ms`` or usage once the call is done)."""
        return dataclasses.replace(self, **changes)

    def to_wire(self) -> dict[str, Any]:
        """The route as plain data with snake_case keys; ``fallbacks`` becomes a list of dicts."""
        wire = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        wire["fallbacks"] = [step.to_wire() for step in self.fallbacks]
        return wire
