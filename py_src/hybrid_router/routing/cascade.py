"""The cascade (``verify: "confidence"``): answer on the device, score the answer, escalate when it is low.

The device model's own log-probabilities of the tokens it generated say how sure it was: the runtime
records, for each generated token, ``log_softmax(logits)[token]`` (greedy decoding: the chosen token's,
the largest). The score is the geometric mean of those probabilities over the first ``verify_tokens``
tokens (``exp(mean log-probability)``, in (0, 1]; 1: every token certain); the minimum is recorded too.
Below the policy's ``verify_threshold`` the request is escalated to the cloud, when the plan has a cloud
step after the device's; where it has none (privacy, route, fallback off, no provider, offline, budget)
the device's answer is returned and the record says why it was not escalated.

Pure functions: the executor's fallback carries out an escalation (:class:`LowConfidenceError` is a
``LocalError``, so the device -> cloud fallback applies, and never once a stream has shown text: a
stream's check runs on its first ``verify_tokens`` tokens before any text is shown).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router.errors import LocalError

if TYPE_CHECKING:
    from hybrid_router.route import Route
    from hybrid_router.routing.plans import Plan
    from hybrid_router.routing.policy import Policy

T = TypeVar("T")

__all__ = [
    "DEFAULT_THRESHOLD",
    "Check",
    "check_for",
    "verified_pieces",
    "DEFAULT_TOKENS",
    "VERIFY",
    "Confidence",
    "LowConfidenceError",
    "Verdict",
    "confidence",
    "decide",
    "not_escalated_because",
    "token_logprob",
]

#: the policy's ``verify`` values: off (default), or score the device's answer by its own log-probabilities
VERIFY = ("off", "confidence")
#: the score below which a device answer is escalated (uncalibrated default; see docs/routing.md)
DEFAULT_THRESHOLD = 0.5
#: how many of the answer's first tokens are scored (a stream shows nothing until they are)
DEFAULT_TOKENS = 16


class LowConfidenceError(LocalError):
    """The device's answer scored below the threshold: the next step (the cloud) answers instead."""

    default_hint = "The cloud answers instead; lower verify_threshold to keep more answers on the device."


@dataclass(frozen=True, slots=True)
class Confidence:
    """The score of an answer's first tokens: ``score`` = exp(mean log-probability), ``min_logprob``."""

    score: float
    mean_logprob: float
    min_logprob: float
    tokens: int


def token_logprob(logits: np.ndarray, token: int) -> float:
    """``log_softmax(logits)[token]`` (stable; -inf logits, a mask's, are excluded by the softmax)."""
    row = np.asarray(logits, dtype=np.float64)
    top = float(np.max(row))
    if not math.isfinite(top):
        return -math.inf
    lse = top + math.log(float(np.sum(np.exp(row - top))))
    return float(row[token]) - lse


def confidence(logprobs: Sequence[float], tokens: int = DEFAULT_TOKENS) -> Confidence | None:
    """The score of the first ``tokens`` log-probabilities; None when there are none (an empty answer)."""
    head = [float(v) for v in logprobs[:tokens]]
    if not head:
        return None
    mean = sum(head) / len(head)
    return Confidence(score=math.exp(mean), mean_logprob=mean, min_logprob=min(head), tokens=len(head))


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the device's answer is escalated, and the route's ``verify`` record."""

    escalate: bool
    record: dict[str, Any]


def decide(
    conf: Confidence | None,
    threshold: float,
    *,
    blocked: str | None,
    device_tokens_out: int = 0,
) -> Verdict:
    """Escalate when the score is below ``threshold`` and nothing blocks the cloud (``blocked``: why the
    cloud may not answer, else None). An empty answer (no tokens to score) scores 0."""
    score = conf.score if conf is not None else 0.0
    low = score < threshold
    record: dict[str, Any] = {
        "method": "confidence",
        "score": score,
        "threshold": threshold,
        "mean_logprob": conf.mean_logprob if conf is not None else None,
        "min_logprob": conf.min_logprob if conf is not None else None,
        "tokens_scored": conf.tokens if conf is not None else 0,
        "device_tokens_out": device_tokens_out,
        "escalated": low and blocked is None,
        "not_escalated": blocked if low and blocked is not None else None,
    }
    return Verdict(escalate=bool(record["escalated"]), record=record)


def not_escalated_because(
    *, has_cloud_step: bool, privacy: str, route: str, fallback: bool, cloud_configured: bool
) -> str | None:
    """Why a low-scoring device answer cannot go to the cloud (None: it can)."""
    if has_cloud_step:
        return None
    if privacy == "local-only":
        return "privacy 'local-only'"
    if route == "local":
        return "route 'local'"
    if not fallback:
        return "fallback is off"
    if not cloud_configured:
        return "no cloud provider"
    return "the plan has no cloud step (offline, over budget, or a personal-data rule)"


class Check:
    """One request's cascade check (made by :func:`check_for`): ``judge`` raises
    :class:`LowConfidenceError` to escalate; ``record`` is the route's ``verify`` once judged."""

    def __init__(self, threshold: float, tokens: int, blocked: str | None) -> None:
        self.threshold = threshold
        self.tokens = tokens
        self.blocked = blocked
        self.record: dict[str, Any] | None = None

    def judge(self, logprobs: Sequence[float], device_tokens_out: int, model: str | None = None) -> None:
        verdict = decide(
            confidence(logprobs, self.tokens),
            self.threshold,
            blocked=self.blocked,
            device_tokens_out=device_tokens_out,
        )
        self.record = verdict.record
        if verdict.escalate:
            raise LowConfidenceError(
                f"the device's answer scored {verdict.record['score']:.3f} (exp of the mean log-probability "
                f"of its first {verdict.record['tokens_scored']} tokens), below the threshold "
                f"{self.threshold:.3f}: escalated to the cloud",
                model=model,
                score=verdict.record["score"],
                threshold=self.threshold,
            )

    def stamp(self, route: Route) -> Route:
        """``route`` with the ``verify`` record (unchanged when nothing was judged)."""
        return route if self.record is None else dataclasses.replace(route, verify=self.record)


def check_for(plan: Plan, policy: Policy, *, cloud_configured: bool) -> Check | None:
    """The check of a generation whose first step is the device, when the policy verifies; else None."""
    if policy.verify != "confidence" or plan.first.target != "local":
        return None
    has_cloud = any(step.target == "cloud" for step in plan.steps[1:])
    blocked = not_escalated_because(
        has_cloud_step=has_cloud,
        privacy=policy.privacy,
        route=policy.route,
        fallback=policy.fallback,
        cloud_configured=cloud_configured,
    )
    threshold = DEFAULT_THRESHOLD if policy.verify_threshold is None else policy.verify_threshold
    return Check(threshold, policy.verify_tokens, blocked)


async def verified_pieces(
    items: AsyncGenerator[T, None], logprobs: Sequence[float], check: Check, output_type: type
) -> AsyncGenerator[T, None]:
    """A device stream held back until its first ``check.tokens`` tokens are scored (or it ended): then
    shown, or :class:`LowConfidenceError` raised before any text was (the executor falls back)."""
    held: list[T] = []
    judged = False
    async with aclosing(items) as stream:
        async for item in stream:
            if judged:
                yield item
                continue
            if isinstance(item, output_type):
                check.judge(logprobs, int(getattr(item, "tokens_out", len(logprobs))))
                judged = True
            else:
                held.append(item)
                if len(logprobs) < check.tokens:
                    continue
                check.judge(logprobs, len(logprobs))
                judged = True
            for piece in held:
                yield piece
            held.clear()
