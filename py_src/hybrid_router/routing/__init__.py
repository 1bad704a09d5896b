"""Routing: every decision about where a request runs and what serves it, as pure functions over frozen
facts. Nothing here does I/O; the planner gathers the facts, the executor carries the plan out.

| question | module |
|---|---|
| may the cloud be used at all (privacy, tier, budget, route)? | :mod:`.policy` |
| device or cloud, and why (the eight rules, every task) | :mod:`.rules` (:func:`decide`) |
| the device failed before running: may the cloud answer? | :mod:`.rules` (``decide_after_local_failure``) |
| which errors move a request to its next step, in which direction | :mod:`.fallback` |
| which model serves a task; task model or the embedding fallback | :mod:`.models` |
| WebGPU or wasm, which dtype, when a model moves to wasm | :mod:`.devices` |
| the steps of a request, and the route record of the one that answered | :mod:`.plans` |
"""

from hybrid_router.routing.devices import Devices, choose_device, choose_dtype, fits_memory
from hybrid_router.routing.fallback import may_fall_back, recoverable
from hybrid_router.routing.models import (
    ASR,
    CLASSIFY,
    EMBED,
    GENERATE,
    NER,
    RERANK,
    SEARCH,
    ZERO_SHOT,
    Method,
    choose,
    classify_plan,
    rerank_plan,
    single,
)
from hybrid_router.routing.plans import Plan, Step, generation_plan, issue_route, local_plan
from hybrid_router.routing.policy import OVER_BUDGET, POLICY_FIELDS, PRIVACY, ROUTES, TIERS, Policy, TierRules
from hybrid_router.routing.rules import CLOUD_TASKS, Decision, Facts, decide, decide_after_local_failure

__all__ = [
    "ASR",
    "CLASSIFY",
    "CLOUD_TASKS",
    "EMBED",
    "GENERATE",
    "NER",
    "OVER_BUDGET",
    "POLICY_FIELDS",
    "PRIVACY",
    "RERANK",
    "ROUTES",
    "SEARCH",
    "TIERS",
    "ZERO_SHOT",
    "Decision",
    "Devices",
    "Facts",
    "Method",
    "Plan",
    "Policy",
    "Step",
    "TierRules",
    "choose",
    "choose_device",
    "choose_dtype",
    "classify_plan",
    "decide",
    "decide_after_local_failure",
    "fits_memory",
    "generation_plan",
    "issue_route",
    "local_plan",
    "may_fall_back",
    "recoverable",
    "rerank_plan",
    "single",
]
