"""Plans and route records: what may serve a request, in order, and the record of what did.

A :class:`Plan` is the routing's answer for one request: its task, the reason code of the decision and
the :class:`Step` s that may serve it, first choice first (a generation: the decided side, then the side
to fall back to; a classification with labels: the NLI model, then embedding similarity). The executor
(:mod:`hybrid_router.execute`) runs the steps as :mod:`hybrid_router.routing.fallback` allows and asks
:func:`issue_route` for the :class:`~hybrid_router.route.Route` of the one that answered: no other module
builds a route.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hybrid_router.manifest import ModelEntry
from hybrid_router.route import REASON_FALLBACK, FallbackStep, Route, Target
from hybrid_router.routing.models import Method
from hybrid_router.routing.rules import Decision

__all__ = ["Plan", "Step", "generation_plan", "issue_route", "local_plan"]


@dataclass(frozen=True, slots=True)
class Step:
    """One way to serve a request: where, with which model (``entry`` on the device; ``model`` names it,
    or the cloud's model), in which dtype, by which ``method``, and the rule sentence when it answers;
    ``max_tokens``: a generation's output budget on this side."""

    target: Target
    model: str | None
    rule: str
    method: str = "generate"
    entry: ModelEntry | None = None
    dtype: str | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps that may serve one request, first choice first; ``failures``: what failed while the
    plan was made (the device, counting a prompt's tokens); ``decision_ms``: the time it took."""

    task: str
    reason: str
    steps: tuple[Step, ...]
    failures: tuple[FallbackStep, ...] = ()
    complexity: float | None = None
    tokens_in: int | None = None
    decision_ms: float = 0.0
    #: the budget a cloud step must fit, the most it could cost, the prompt tokens it is priced with, and
    #: the reservation made for it when the decision chose the cloud first
    budget_usd: float | None = None
    cloud_worst_usd: float = 0.0
    cloud_tokens_in: int = 0
    #: of ``cloud_tokens_in``, the allowance for what the provider adds around the messages
    cloud_framing_tokens: int = 0
    reservation: str | None = None
    #: the prompt router's score record and the personal data found (both go into the route)
    router: dict[str, Any] | None = None
    sensitive: dict[str, Any] | None = None
    #: what a cloud step sends instead of the request (personal data replaced by placeholders), and
    #: placeholder -> original value, to restore the answer
    redacted: Any = None
    restore: Mapping[str, str] = field(default_factory=dict)
    #: a generation: the device's chat model and why (``ChatChoice.to_wire()``), for the route
    chat: dict[str, Any] | None = None

    @property
    def first(self) -> Step:
        return self.steps[0]

    def timed(self, decision_ms: float) -> Plan:
        return dataclasses.replace(self, decision_ms=decision_ms)

    def budgeted(
        self,
        budget_usd: float | None,
        worst_usd: float,
        tokens_in: int,
        reservation: str | None,
        framing_tokens: int = 0,
    ) -> Plan:
        return dataclasses.replace(
            self,
            budget_usd=budget_usd,
            cloud_worst_usd=worst_usd,
            cloud_tokens_in=tokens_in,
            cloud_framing_tokens=framing_tokens,
            reservation=reservation,
        )


def local_plan(task: str, decision: Decision, methods: Sequence[Method], dtype: str | None = None) -> Plan:
    """A device task's plan: its methods in order; ``dtype`` (the call's) applies to the first one, the
    others run in their model's default dtype."""
    steps = tuple(
        Step("local", m.model.id, m.rule, m.kind, m.model, m.model.variant(dtype if i == 0 else None).dtype)
        for i, m in enumerate(methods)
    )
    first = steps[0]
    steps = (dataclasses.replace(first, rule=_joined(decision.rule, first.rule, task)), *steps[1:])
    return Plan(task, decision.reason, steps)


def _joined(decision_rule: str, method_rule: str, task: str) -> str:
    # "feature-extraction runs on the device" adds nothing to a method's own rule
    return method_rule if decision_rule == f"{task} runs on the device" else decision_rule


def generation_plan(
    decision: Decision,
    *,
    local: ModelEntry | None,
    dtype: str | None,
    cloud_model: str | None,
    failures: Sequence[FallbackStep] = (),
    complexity: float | None = None,
    tokens_in: int | None = None,
    max_tokens: Mapping[Target, int] | None = None,
) -> Plan:
    """A generation's plan: the decided side, then the side to fall back to (if the decision has one);
    ``max_tokens``: each side's output budget."""
    budgets = max_tokens or {}

    def step(target: Target) -> Step:
        if target == "local":
            model = local.id if local else None
            return Step("local", model, decision.rule, "generate", local, dtype, budgets.get("local"))
        return Step("cloud", cloud_model, decision.rule, "generate", max_tokens=budgets.get("cloud"))

    targets = [decision.target] + ([decision.fallback_target] if decision.fallback_target else [])
    return Plan(
        "text-generation",
        decision.reason,
        tuple(step(t) for t in targets),
        tuple(failures),
        complexity,
        tokens_in,
    )


def issue_route(
    plan: Plan,
    answered: Step,
    fallbacks: Sequence[FallbackStep],
    *,
    ms: float,
    model: str | None = None,
    tokens_in: int = 0,
    tokens_out: int = 0,
    cost_usd: float = 0.0,
    device: str | None = None,
    dtype: str | None = None,
    finish_reason: str | None = None,
    tokens_cached: int = 0,
) -> Route:
    """The route of a request that ``answered`` served after the ``fallbacks`` had failed."""
    reason, rule = plan.reason, answered.rule
    if fallbacks:
        last = fallbacks[-1]
        reason = REASON_FALLBACK
        error = f"({last.error_name}: {last.message})"
        if last.target != answered.target:
            rule = (
                f"{plan.first.rule}; the {last.target} side failed {error}, "
                f"so the {answered.target} side answered"
            )
        else:
            rule = f"{plan.first.rule}; {last.model} failed {error}, so {answered.rule}"
    return Route(
        target=answered.target,
        reason=reason,
        rule=rule,
        model=model if model is not None else answered.model,
        ms=ms,
        fallbacks=tuple(fallbacks),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_usd=cost_usd,
        device=device,
        dtype=dtype if dtype is not None else answered.dtype,
        complexity=plan.complexity,
        decision_ms=plan.decision_ms,
        router=plan.router,
        sensitive=plan.sensitive,
        finish_reason=finish_reason,
        tokens_cached=tokens_cached,
        max_tokens=answered.max_tokens,
        chat_model=plan.chat,
    )
