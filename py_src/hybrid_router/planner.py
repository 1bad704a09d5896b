"""Gather the facts of a request and ask the routing for its plan.

The rules are pure (:mod:`hybrid_router.routing`); some facts are not free: a generation's prompt is
counted with the local tokenizer (which loads the local model once), scored by the prompt router (with the
embedding model's vector of it) and, when the policy asks, searched for personal data
(:mod:`hybrid_router.prompt_facts`). This module collects them and hands back the
:class:`~hybrid_router.routing.plans.Plan` (with the redacted request a cloud step sends, under
``sensitive: "redact"``); the executor carries it out.

A dry run (``Router.route``) goes through :meth:`Planner.generation` too, with the same facts (the
count, the router's embedding, the entity model): it names the side, rule and score the call would get.
It only reserves nothing against the budget and runs no generation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hybrid_router.capabilities import Capabilities
from hybrid_router.chat import ChatRequest
from hybrid_router.errors import HybridRouterError, InferenceError
from hybrid_router.ledger import Ledger
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.pii import Finding
from hybrid_router.prompt_facts import PersonalData, PromptFacts, Queue
from hybrid_router.providers.base import CloudProvider
from hybrid_router.redaction import Redactor, summary
from hybrid_router.route import TARGETS, FallbackStep, Target
from hybrid_router.routing import (
    GENERATE,
    TIERS,
    Facts,
    Method,
    Policy,
    decide,
    decide_after_local_failure,
    generation_plan,
    local_plan,
)
from hybrid_router.routing.plans import Plan
from hybrid_router.routing.recommend import ChatChoice, choose_chat_model
from hybrid_router.runtime import LocalRuntime, ProgressCallback

__all__ = ["UNREACHABLE_S", "Planner", "estimated_tokens"]

#: how long a cloud call that found the network gone keeps the requests that could go either way local
UNREACHABLE_S = 30.0
#: prompt tokens a provider may add around the messages (its chat template, a default system prompt),
#: allowed for in a call's worst case until a call's usage has shown how many it adds
FRAMING_TOKENS = 64
#: added to the most framing seen, for requests framed a little more than any seen so far
FRAMING_MARGIN = 8


class Planner:
    """Plans for one router: its manifest, runtime and cloud (None: the device only). ``cloud_note``
    says why there is no cloud when there is none (the default: none is configured). ``caps`` and
    ``cached`` (model id -> dtypes stored whole) are the device's facts the chat model is chosen on
    (:attr:`chat`, again for each manifest: :meth:`use_manifest`)."""

    def __init__(
        self,
        runtime: LocalRuntime,
        manifest: Manifest,
        cloud: CloudProvider | None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        cloud_note: str | None = None,
        queue: Queue | None = None,
        caps: Capabilities | None = None,
        cached: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.runtime = runtime
        self.manifest = manifest
        self.caps = caps if caps is not None else Capabilities()
        self.cached = dict(cached or {})
        #: the device's chat model when neither the call nor the policy names one, and why
        self.chat = choose_chat_model(manifest, self.caps, cached=self.cached)
        self.cloud = cloud
        self.cloud_note = cloud_note
        self.clock = clock
        #: the browser is online (its events set this)
        self.online = True
        #: until then (``clock``), a cloud call found the network gone: requests that could go either way
        #: stay on the device instead of waiting out the cloud's retries
        self.unreachable_until = 0.0
        #: the most prompt tokens the cloud added to a request's own (None: no usage seen yet)
        self.framing_seen: int | None = None
        self.facts = PromptFacts(
            runtime, lambda: self.manifest, queue or (lambda _: contextlib.nullcontext())
        )

    def use_manifest(self, manifest: Manifest) -> None:
        """Plan with ``manifest`` from now on (a model was built): the chat model is chosen again."""
        self.manifest = manifest
        self.chat = choose_chat_model(manifest, self.caps, cached=self.cached)

    def chat_for(self, request: ChatRequest, policy: Policy) -> ChatChoice:
        """The chat model of one generation: the call's ``model``, else the policy's ``chat_model``, else
        the device's (:attr:`chat`); a named one that is unknown or does not fit is a ``ValidationError``."""
        named, by = (request.model, "call") if request.model is not None else (policy.chat_model, "policy")
        if named is None:
            return self.chat
        return choose_chat_model(self.manifest, self.caps, named=named, by=by, cached=self.cached)

    def local(
        self,
        task: str,
        methods: Sequence[Method],
        policy: Policy,
        *,
        dtype: str | None = None,
        route: str | None = None,
    ) -> Plan:
        """The plan of a task only the device serves (rules 1-3), with its ways to run in order."""
        decision = decide(Facts(task=task, route=route, cloud_available=self.cloud is not None), policy)
        return local_plan(task, decision, methods, dtype)

    async def generation(
        self,
        request: ChatRequest,
        policy: Policy,
        ledger: Ledger,
        on_progress: ProgressCallback | None = None,
        *,
        dry_run: bool = False,
    ) -> Plan:
        """Count, score and decide; the plan's ``decision_ms`` is the time this took.

        The decision and, when it chooses the cloud, the reservation of the call's worst-case cost are
        made while the ledger is synced (across the origin's tabs): concurrent calls cannot overspend.
        ``dry_run``: the same facts and rules (the decision a call would get), without reserving anything.
        """
        started = self.clock()
        chat = self.chat_for(request, policy)
        entry, dtype = chat.model, chat.dtype
        tokens_in: int | None = None
        failure: HybridRouterError | None = None
        route = request.route or policy.route
        if entry is not None and dtype is not None and route != "cloud" and not request.tools:
            tokens_in, failure = await self._count(entry, dtype, request, on_progress)
        may_use_cloud = self.cloud is not None and policy.privacy != "local-only"
        scored = await self.facts.score(
            request,
            embed=may_use_cloud and route == "auto" and TIERS[policy.tier].complexity_cloud and self.online,
        )
        threshold = (
            policy.complexity_threshold
            if policy.complexity_threshold is not None
            else self.facts.threshold(scored, policy.cloud_share)
        )
        personal = (
            await self.facts.personal_data(request)
            if policy.sensitive != "allow" and may_use_cloud
            else PersonalData(tuple(() for _ in request.messages))
        )
        found = summary(personal.all)
        budgets: dict[Target, int] = {t: request.max_tokens_for(t) for t in TARGETS}
        framing = self.framing_tokens
        priced_in = (tokens_in if tokens_in is not None else estimated_tokens(request)) + framing
        model = self.cloud.model if self.cloud is not None else None
        worst = ledger.cost(model, priced_in, budgets["cloud"]) if self.cloud is not None else 0.0
        facts = Facts(
            task=GENERATE,
            route=request.route,
            tokens_in=tokens_in,
            context_length=entry.context_length if entry is not None else None,
            max_tokens=budgets["local"],
            complexity=scored.score,
            complexity_reasons=scored.drivers,
            complexity_threshold=threshold,
            local_available=entry is not None and failure is None,
            local_note=chat.reason if entry is None else None,
            cloud_available=self.cloud is not None,
            cloud_note=self.cloud_note,
            cloud_worst_usd=worst,
            online=self.online,
            cloud_reachable=self.clock() >= self.unreachable_until,
            sensitive=tuple(sorted(found.items())),
            sensitive_missing=personal.missing,
            tools=bool(request.tools),
        )
        async with ledger.synced():
            facts = dataclasses.replace(facts, spent_today_usd=ledger.spent_today() + ledger.reserved_now())
            failures: tuple[FallbackStep, ...] = ()
            if failure is None:
                decision = decide(facts, policy)
            else:
                decision = decide_after_local_failure(facts, policy, failure)
                failures = (FallbackStep.from_error("local", entry.id if entry else None, failure),)
            first_cloud = decision.target == "cloud" and not dry_run
            reservation = ledger.reserve(worst, policy.daily_budget_usd) if first_cloud else None
        plan = generation_plan(
            decision,
            local=entry,
            dtype=dtype,
            cloud_model=model,
            failures=failures,
            complexity=scored.score,
            tokens_in=tokens_in,
            max_tokens=budgets,
        )
        plan = plan.budgeted(policy.daily_budget_usd, worst, priced_in, reservation, framing)
        record = {**scored.to_wire(), "threshold": threshold}
        redacted: ChatRequest | None = None
        restore: dict[str, str] = {}
        sensitive: dict[str, Any] | None = None
        if found or personal.missing:
            sensitive = {"action": policy.sensitive, "found": found, "missing": list(personal.missing)}
            if policy.sensitive == "redact" and found and not personal.missing:
                redacted, restore = _redacted(request, personal.findings)
        plan = dataclasses.replace(
            plan,
            router=record,
            sensitive=sensitive,
            redacted=redacted,
            restore=restore,
            chat=chat.to_wire(),
        )
        return plan.timed((self.clock() - started) * 1000.0)

    @property
    def framing_tokens(self) -> int:
        """The prompt tokens a cloud call's worst case allows for beyond the request's own."""
        if self.framing_seen is None:
            return FRAMING_TOKENS
        return self.framing_seen + FRAMING_MARGIN

    def cloud_usage(self, plan: Plan, tokens_in: int) -> None:
        """A cloud call's usage came back: learn how many prompt tokens the provider adds (llama-server's
        chat template added ~30 to a short prompt, more than the local tokenizer's count: without this,
        worst cases fell short and a run of 1,000 calls passed its budget by 1.5 %)."""
        own = plan.cloud_tokens_in - plan.cloud_framing_tokens
        self.framing_seen = max(self.framing_seen or 0, tokens_in - own)

    def cloud_outcome(self, reached: bool) -> None:
        """A cloud call reached the provider, or found the network gone (then for
        :data:`UNREACHABLE_S`, requests that could go either way are served locally at once)."""
        self.unreachable_until = 0.0 if reached else self.clock() + UNREACHABLE_S

    async def _count(
        self, entry: ModelEntry, dtype: str, request: ChatRequest, on_progress: ProgressCallback | None
    ) -> tuple[int | None, HybridRouterError | None]:
        try:
            count = await self.runtime.count_chat_tokens(entry, dtype, request.messages, on_progress)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise InferenceError(
                    f"{entry.id}: the token count is not a count ({count!r})", model=entry.id
                )
            return count, None
        except HybridRouterError as exc:
            return None, exc
        except Exception as exc:  # CancelledError is a BaseException: it passes through untouched
            return None, InferenceError(
                f"{entry.id} failed: {type(exc).__name__}: {exc}",
                model=entry.id,
                task=GENERATE,
                type=type(exc).__name__,
            )


def _redacted(
    request: ChatRequest, findings: Sequence[Sequence[Finding]]
) -> tuple[ChatRequest, dict[str, str]]:
    """``request`` with each finding replaced by its typed placeholder (the same value, the same one in
    every message), and placeholder -> value."""
    redactor = Redactor([m.content for m in request.messages])
    messages = tuple(
        dataclasses.replace(m, content=redactor.redact(m.content, found))
        for m, found in zip(request.messages, findings, strict=True)
    )
    return dataclasses.replace(request, messages=messages), dict(redactor.mapping)


def estimated_tokens(request: ChatRequest) -> int:
    """A prompt's tokens where the local tokenizer did not count them: about 3 characters a token, and a
    few for each message's framing (on the generous side: it prices a worst case)."""
    return sum(len(m.content) // 3 + 4 for m in request.messages) + 1
