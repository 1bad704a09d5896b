"""Where a request runs: the eight rules, pure functions over frozen facts.

:func:`decide` looks at the :class:`Facts` of one request (any task) under a
:class:`~hybrid_router.routing.policy.Policy` and returns a :class:`Decision` (target, reason code, the
rule as a sentence, and the side to fall back to). The rules are applied in this order; the first that
decides wins:

0. **tools** (the call offers tools): the cloud, with no fallback: the device's chat model cannot call
   tools (``"tools"``). ``route="local"``, privacy ``"local-only"``, personal data kept on the device
   (``sensitive="local"`` with findings, or a detector that could not run) raise ``PolicyError`` with a
   hint; so do no cloud or the budget spent (``PolicyError``) and the browser offline (``OfflineError``).
1. **privacy** ``"local-only"``: the device, never the cloud (no fallback). A request only the cloud
   could serve (``route="cloud"``, input over the local context window, no local model) raises
   ``PolicyError``.
1b. **personal data** (``sensitive="local"`` and findings in the prompt): the device, no fallback; an
   explicit ``route="cloud"`` is a ``PolicyError``. (``"redact"`` does not change the target: the
   planner sends placeholders to the cloud; ``"allow"`` looks for nothing.) **Fail closed**: when a
   detector could not run (``sensitive_missing``, e.g. the entity model is not built, failed to load or
   was left out of a site), ``"local"`` and ``"redact"`` alike keep the prompt on the device, no
   fallback: what was not looked for cannot be redacted. A request only the cloud could serve
   (``route="cloud"``, no local model, over the local window) raises ``PolicyError`` naming the missing
   detector.
2. **explicit route** (the call's ``route``, else the policy's default): ``"local"`` or ``"cloud"``
   pins that side, with no fallback. ``"cloud"`` raises ``PolicyError`` when the tier forbids it,
   the budget is spent, no cloud is configured, or the task runs only on the device.
3. **task default**: embeddings and the other analysis tasks run on the device (for them the policy's
   default route does not apply, and a call's ``route="cloud"`` is a ``PolicyError``).
4. **local capability**: no local generation model -> cloud (``"local-unavailable"``); prompt tokens +
   ``max_tokens`` over the local context window -> cloud (``"context-length"``). With no cloud to send
   it to, ``ModelLoadError`` / ``ContextLengthError``.
5. **budget** (``daily_budget_usd``, spend of the current day): once spent, ``over_budget="local"``
   keeps every remaining request on the device (``"budget"``); ``"refuse"`` raises ``PolicyError``
   for a request that rules 6-7 would send to the cloud and lets the others run locally. Either way
   there is no cloud fallback. A request that steps 2 or 4 need in the cloud raises ``PolicyError``.
6. **tier** (:data:`TIERS`): ``free`` stays on the device here; ``enterprise`` goes to the cloud;
   ``pro`` goes on to rule 7.
7. **complexity**: the prompt router's score ``>=`` its threshold (``complexity_threshold``, else the
   one calibrated for ``cloud_share``, else the shipped operating point) -> cloud (``"complexity"``).
8. **default**: the device (``"default"``).

A cloud outcome of rules 6-7 with no cloud configured is served on the device instead
(``"cloud-unavailable"``); with the browser offline (or the last cloud call unreachable, for
:data:`~hybrid_router.planner.UNREACHABLE_S`), on the device at once (``"offline"``), without waiting
out the cloud's retries. Fallback (``policy.fallback``, only for ``route="auto"``): from the device
to the cloud when privacy, a configured cloud and the budget allow it; from the cloud to the device
when a local model exists and the input fits its context window.

``decide`` raises ``PolicyError`` for contradictions (always with a hint), and ``ContextLengthError``
/ ``ModelLoadError`` when no side can serve the request. :func:`decide_after_local_failure` is the rule
for a device that failed before the request ran (while its tokens were counted).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hybrid_router import validation
from hybrid_router.complexity import DEFAULT_THRESHOLD
from hybrid_router.errors import (
    ContextLengthError,
    HybridRouterError,
    LocalError,
    ModelLoadError,
    OfflineError,
    PolicyError,
)
from hybrid_router.route import (
    REASON_BUDGET,
    REASON_CLOUD_UNAVAILABLE,
    REASON_COMPLEXITY,
    REASON_CONTEXT_LENGTH,
    REASON_DEFAULT,
    REASON_EXPLICIT,
    REASON_LOCAL_UNAVAILABLE,
    REASON_OFFLINE,
    REASON_PRIVACY,
    REASON_SENSITIVE,
    REASON_TASK_DEFAULT,
    REASON_TIER,
    REASON_TOOLS,
    Target,
)
from hybrid_router.routing.policy import ROUTES, TIERS, Policy, check_cloud_allowed

__all__ = ["CLOUD_TASKS", "TOOLS_RULE", "Decision", "Facts", "decide", "decide_after_local_failure"]

#: Tasks the cloud can serve; every other task (embeddings, analysis, speech) runs on the device.
CLOUD_TASKS = frozenset({"text-generation"})


@dataclass(frozen=True, slots=True)
class Facts:
    """What the router knows about one request when it decides.

    ``tokens_in`` is the prompt counted with the local tokenizer (None when unknown),
    ``context_length`` the local model's window, ``route`` the call's own route (None: the policy's).
    """

    task: str = "text-generation"
    route: str | None = None
    tokens_in: int | None = None
    context_length: int | None = None
    max_tokens: int = 0
    complexity: float | None = None
    complexity_reasons: tuple[str, ...] = ()
    local_available: bool = True
    cloud_available: bool = False
    spent_today_usd: float = 0.0
    #: why there is no cloud, when ``cloud_available`` is False (default: none is configured)
    cloud_note: str | None = None
    #: why there is no on-device model, when ``local_available`` is False (e.g. no chat model fits the device)
    local_note: str | None = None
    #: the most the cloud call could cost (its prompt and ``max_tokens`` at the cloud's price); with the
    #: spend and the reservations of the calls in flight, it must fit the daily budget
    cloud_worst_usd: float = 0.0
    #: the threshold of rule 7 when the policy sets none (the prompt router's calibrated one)
    complexity_threshold: float = DEFAULT_THRESHOLD
    #: the browser says it is online (``navigator.onLine`` and its events): else a cloud call fails fast
    online: bool = True
    #: no cloud call found the network gone lately: else a request that could go either way stays local
    cloud_reachable: bool = True
    #: personal data found in the prompt (kinds and counts), looked for when the policy's ``sensitive``
    #: is not "allow"
    sensitive: tuple[tuple[str, int], ...] = ()
    #: the personal-data detectors that could not run (``"ner:<model>"``): what they look for went unchecked
    sensitive_missing: tuple[str, ...] = ()
    #: the call offers tools, which only the cloud can call (rule 0)
    tools: bool = False

    def fits_locally(self) -> bool:
        """Whether prompt + ``max_tokens`` fit the local window (True when either is unknown)."""
        if self.tokens_in is None or self.context_length is None:
            return True
        return self.tokens_in + self.max_tokens <= self.context_length


@dataclass(frozen=True, slots=True)
class Decision:
    """Where to run first, why (``reason`` code and ``rule`` sentence), and where to go if it fails."""

    target: Target
    reason: str
    rule: str
    fallback_target: Target | None = None


def decide(facts: Facts, policy: Policy) -> Decision:
    """Apply the rules of the module docstring, in order, for any task."""
    if facts.task not in CLOUD_TASKS:
        return _device_task(facts, policy)
    route = policy.route if facts.route is None else validation.choice(facts.route, ROUTES, "route")
    if facts.tools:
        return _tools(facts, policy, route)
    if policy.privacy == "local-only":
        return _local_only(facts, policy, route)
    if policy.sensitive != "allow" and facts.sensitive_missing:
        return _unchecked(facts, policy, route)
    if policy.sensitive == "local" and facts.sensitive:
        return _sensitive(facts, policy, route)
    if route != "auto":
        return _explicit(facts, policy, route)
    if (needed := _capability(facts)) is not None:
        return _needs_cloud(facts, policy, needed)
    decision = _preference(facts, policy)
    if decision.target == "cloud" and facts.cloud_available and not (facts.online and facts.cloud_reachable):
        why = "the browser is offline" if not facts.online else "the last cloud call found the network gone"
        decision = Decision(
            "local", REASON_OFFLINE, f"{decision.rule}, but {why}: the device answers at once"
        )
    elif decision.target == "cloud" and not facts.cloud_available:
        decision = Decision("local", REASON_CLOUD_UNAVAILABLE, f"{decision.rule}, but {_no_cloud(facts)}")
    if _budget_spent(facts, policy):
        return _over_budget(facts, policy, decision)
    return _with_fallback(decision, facts, policy)


def decide_after_local_failure(facts: Facts, policy: Policy, failure: HybridRouterError) -> Decision:
    """The device failed before the request ran (counting its tokens loads the model): the cloud answers
    if the rules would send the request there once the device is out; otherwise ``failure`` is raised."""
    try:
        decision = decide(dataclasses.replace(facts, local_available=False), policy)
    except HybridRouterError:
        raise failure from None
    if not policy.fallback or decision.target != "cloud" or not isinstance(failure, LocalError):
        raise failure
    return Decision("cloud", decision.reason, "the on-device model failed before generating")


#: why a call with tools goes to the cloud (rule 0)
TOOLS_RULE = (
    "the call offers tools and the device's chat model cannot call tools (SmolLM2 picks no tool usefully): "
    "the cloud answers"
)


def _tools(facts: Facts, policy: Policy, route: str) -> Decision:
    """Rule 0: a call with tools runs in the cloud, or is refused with what to change."""
    why = "the device's chat model cannot call tools"
    refusal = (
        "route 'local'"
        if route == "local"
        else "privacy 'local-only'"
        if policy.privacy == "local-only"
        else f"sensitive '{policy.sensitive}' (personal data could not be checked)"
        if policy.sensitive != "allow" and facts.sensitive_missing
        else "sensitive 'local' (personal data in the prompt)"
        if policy.sensitive == "local" and facts.sensitive
        else None
    )
    if refusal is not None:
        raise PolicyError(
            f"{refusal} keeps this call on the device, but {why}",
            hint="Use route 'auto' or 'cloud' for calls with tools (and a relay started with --allow-tools), "
            "or leave tools out.",
            route=route,
            privacy=policy.privacy,
            sensitive=policy.sensitive,
        )
    what = "a call with tools"
    _require_cloud(facts, what)
    _require_online(facts, what)
    _require_budget(facts, policy, what)
    return Decision("cloud", REASON_TOOLS, TOOLS_RULE)


def _sensitive(facts: Facts, policy: Policy, route: str) -> Decision:
    found = ", ".join(f"{n} {kind}" for kind, n in facts.sensitive)
    if route == "cloud":
        raise PolicyError(
            f"route 'cloud' contradicts the policy for personal data ({found} in the prompt, sensitive "
            "'local')",
            hint="Remove the personal data, use sensitive 'redact' (placeholders go to the cloud), or route "
            "'auto'.",
            sensitive=policy.sensitive,
        )
    _require_local(facts, "a prompt with personal data (sensitive 'local')")
    return Decision(
        "local", REASON_SENSITIVE, f"the prompt holds personal data ({found}): it stays on the device"
    )


def _unchecked(facts: Facts, policy: Policy, route: str) -> Decision:
    """Rule 1b failing closed: a detector the policy relies on could not run."""
    missing = ", ".join(facts.sensitive_missing)
    found = "".join(f", {n} {kind}" for kind, n in facts.sensitive)
    why = f"personal data could not be checked ({missing} unavailable{found})"
    cloud_only = (
        "route 'cloud'"
        if route == "cloud"
        else (
            _no_local(facts)
            if not facts.local_available
            else _too_long(facts)
            if not facts.fits_locally()
            else None
        )
    )
    if cloud_only is not None:
        raise PolicyError(
            f"only the cloud can serve this request ({cloud_only}), but {why}: sensitive "
            f"'{policy.sensitive}' does not send it",
            hint="Build the entity model (./hr build) or let the page load it, or set sensitive to 'allow' "
            "for prompts you know hold no names.",
            sensitive=policy.sensitive,
            missing=list(facts.sensitive_missing),
        )
    return Decision(
        "local",
        REASON_SENSITIVE,
        f"{why}: under sensitive '{policy.sensitive}' the prompt stays on the device",
    )


def _device_task(facts: Facts, policy: Policy) -> Decision:
    """Rules 1-3 for a task only the device serves: the policy's default route does not apply to it
    (it is about generations); a call's own ``route='cloud'`` is refused."""
    route = "auto" if facts.route is None else validation.choice(facts.route, ROUTES, "route")
    if route == "cloud":
        check_cloud_allowed(policy, "route 'cloud'")
        raise PolicyError(
            f"route 'cloud' is not available for {facts.task}, which runs only on the device",
            hint="Leave route out (or 'local') for this task.",
            task=facts.task,
        )
    if route == "local":
        return Decision("local", REASON_EXPLICIT, "the call asked for the device (route 'local')")
    return Decision("local", REASON_TASK_DEFAULT, f"{facts.task} runs on the device")


def _local_only(facts: Facts, policy: Policy, route: str) -> Decision:
    if route == "cloud":
        check_cloud_allowed(policy, "route 'cloud'")
    if not facts.local_available:
        raise PolicyError(
            f"privacy is 'local-only' but there is {_no_local(facts)}",
            hint="Build the local model (./hr build), or set privacy to 'allow-cloud'.",
            privacy=policy.privacy,
            task=facts.task,
        )
    if not facts.fits_locally():
        raise PolicyError(
            f"privacy is 'local-only' but {_too_long(facts)}",
            hint="Shorten the input or lower max_tokens, or set privacy to 'allow-cloud'.",
            privacy=policy.privacy,
            tokens_in=facts.tokens_in,
            max_tokens=facts.max_tokens,
            context_length=facts.context_length,
        )
    return Decision("local", REASON_PRIVACY, "privacy is 'local-only': everything stays on the device")


def _explicit(facts: Facts, policy: Policy, route: str) -> Decision:
    if route == "local":
        _require_local(facts, "route 'local'")
        return Decision("local", REASON_EXPLICIT, "the call asked for the device (route 'local')")
    check_cloud_allowed(policy, "route 'cloud'")
    if facts.task not in CLOUD_TASKS:
        raise PolicyError(
            f"route 'cloud' is not available for {facts.task}, which runs only on the device",
            hint="Leave route out (or 'local') for this task.",
            task=facts.task,
        )
    _require_cloud(facts, "route 'cloud'")
    _require_online(facts, "route 'cloud'")
    _require_budget(facts, policy, "route 'cloud'")
    return Decision("cloud", REASON_EXPLICIT, "the call asked for the cloud (route 'cloud')")


def _capability(facts: Facts) -> Decision | None:
    """A cloud decision when the device cannot serve the request (rule 4), else None."""
    if not facts.local_available:
        return Decision("cloud", REASON_LOCAL_UNAVAILABLE, _no_local(facts))
    if not facts.fits_locally():
        return Decision("cloud", REASON_CONTEXT_LENGTH, _too_long(facts))
    return None


def _needs_cloud(facts: Facts, policy: Policy, decision: Decision) -> Decision:
    if not facts.cloud_available:
        _require_local(facts, "the request")  # raises: the device cannot serve it either
    _require_online(facts, f"this request ({decision.rule})")
    _require_budget(facts, policy, f"this request ({decision.rule})")
    return decision  # no fallback: the device cannot serve it


def _preference(facts: Facts, policy: Policy) -> Decision:
    """Rules 6-8: tier, complexity, default (before the budget and availability checks)."""
    tier = TIERS[policy.tier]
    if tier.cloud_first:
        return Decision("cloud", REASON_TIER, f"{policy.tier} tier: {tier.summary}")
    if not tier.complexity_cloud:
        return Decision("local", REASON_TIER, f"{policy.tier} tier: {tier.summary}")
    score = facts.complexity
    threshold = (
        facts.complexity_threshold if policy.complexity_threshold is None else policy.complexity_threshold
    )
    if score is not None and score >= threshold:
        why = f" ({', '.join(facts.complexity_reasons)})" if facts.complexity_reasons else ""
        return Decision(
            "cloud",
            REASON_COMPLEXITY,
            f"complexity {score:.2f} >= threshold {threshold:.2f}{why}",
        )
    shown = "unknown" if score is None else f"{score:.2f} < threshold {threshold:.2f}"
    return Decision("local", REASON_DEFAULT, f"a simple prompt (complexity {shown}) stays on the device")


def _over_budget(facts: Facts, policy: Policy, preferred: Decision) -> Decision:
    """Rule 5 (after rules 6-8 were looked at, for ``over_budget="refuse"``); never a cloud fallback."""
    if policy.over_budget == "local":
        spent, budget = _money(facts.spent_today_usd), _money(policy.daily_budget_usd or 0.0)
        rule = f"today's cloud budget is spent ({spent} of {budget}{_worst(facts)}): staying on the device"
        return Decision("local", REASON_BUDGET, rule)
    if preferred.target == "cloud":
        _require_budget(facts, policy, f"this request ({preferred.rule})")  # raises
    return preferred


def _with_fallback(decision: Decision, facts: Facts, policy: Policy) -> Decision:
    fallback: Target | None = None
    reachable = facts.cloud_available and facts.online and facts.cloud_reachable
    if policy.fallback and decision.target == "local" and reachable:
        fallback = "cloud"
    elif policy.fallback and decision.target == "cloud" and facts.local_available and facts.fits_locally():
        fallback = "local"
    return dataclasses.replace(decision, fallback_target=fallback)


def _require_local(facts: Facts, what: str) -> None:
    if not facts.local_available:
        raise ModelLoadError(
            f"{what} needs the device, but there is {_no_local(facts)}",
            hint="Build the local model (./hr build), or configure a cloud provider.",
            task=facts.task,
        )
    if not facts.fits_locally():
        raise ContextLengthError(
            _too_long(facts),
            hint="Shorten the input or lower max_tokens, or configure a cloud provider and use route 'auto'.",
            tokens_in=facts.tokens_in,
            max_tokens=facts.max_tokens,
            context_length=facts.context_length,
        )


def _require_online(facts: Facts, what: str) -> None:
    if not facts.online:
        raise OfflineError(
            f"{what} needs the cloud, but the browser is offline",
            hint="The browser is offline; local models keep working, cloud calls resume when online.",
            offline=True,
        )


def _no_local(facts: Facts) -> str:
    return f"no on-device model for {facts.task}" + (f" ({facts.local_note})" if facts.local_note else "")


def _no_cloud(facts: Facts) -> str:
    return facts.cloud_note or "no cloud is configured"


def _require_cloud(facts: Facts, what: str) -> None:
    if not facts.cloud_available:
        raise PolicyError(
            f"{what} needs the cloud, but {facts.cloud_note or 'no cloud provider is configured'}",
            hint="Configure a cloud provider on the server (the relay), or use route 'auto' or 'local'.",
            route="cloud",
        )


def _budget_spent(facts: Facts, policy: Policy) -> bool:
    """Spent, or too little left for this call's worst case (``spent_today_usd`` counts the calls in
    flight too)."""
    budget = policy.daily_budget_usd
    if budget is None:
        return False
    return facts.spent_today_usd >= budget or facts.spent_today_usd + facts.cloud_worst_usd > budget


def _require_budget(facts: Facts, policy: Policy, what: str) -> None:
    if _budget_spent(facts, policy):
        raise PolicyError(
            f"{what} needs the cloud, but today's cloud budget is spent "
            f"({_money(facts.spent_today_usd)} of {_money(policy.daily_budget_usd or 0.0)}{_worst(facts)})",
            hint="Raise daily_budget_usd, wait until tomorrow, or make the request one the device can serve.",
            spent_today_usd=facts.spent_today_usd,
            daily_budget_usd=policy.daily_budget_usd,
            over_budget=policy.over_budget,
        )


def _too_long(facts: Facts) -> str:
    return (
        f"the prompt ({facts.tokens_in} tokens) plus max_tokens ({facts.max_tokens}) exceeds the "
        f"on-device context window of {facts.context_length} tokens"
    )


def _worst(facts: Facts) -> str:
    return f"; this request could cost up to {_money(facts.cloud_worst_usd)}" if facts.cloud_worst_usd else ""


def _money(usd: float) -> str:
    return f"${usd:.4f}"
