"""The routing policy: what the caller (or the page's settings) allows, as one frozen, checked value.

:class:`Policy` holds the route (``auto`` | ``local`` | ``cloud``), privacy (``allow-cloud`` |
``local-only``), the user tier (:data:`TIERS`), the daily cloud budget and what to do over it, the
complexity threshold, whether a failed side may fall back to the other, and the on-device chat model
(``chat_model``: None, the largest that fits the device, see
:func:`~hybrid_router.routing.recommend.choose_chat_model`; checked against the manifest on each
generation). Every combination is checked
when it is made (:meth:`Policy.replace` too): a contradiction is a ``PolicyError``, a bad value a
``ValidationError``, each with a hint.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hybrid_router import validation
from hybrid_router.errors import PolicyError, ValidationError

__all__ = [
    "OVER_BUDGET",
    "POLICY_FIELDS",
    "PRIVACY",
    "ROUTES",
    "SENSITIVE",
    "TIERS",
    "Policy",
    "TierRules",
    "check_cloud_allowed",
]

ROUTES = ("auto", "local", "cloud")
PRIVACY = ("allow-cloud", "local-only")
OVER_BUDGET = ("local", "refuse")
#: what to do with a prompt that holds personal data (e-mail addresses, phone numbers, cards, IBANs, IP
#: addresses, people, organisations, places): send it as is, keep it on the device, or send it redacted
SENSITIVE = ("allow", "local", "redact")


@dataclass(frozen=True, slots=True)
class TierRules:
    """What a user tier may use the cloud for (fallback to the cloud is allowed in every tier)."""

    explicit_cloud: bool  # may a call ask for route="cloud"?
    complexity_cloud: bool  # do complex prompts go to the cloud (rule 7)?
    cloud_first: bool  # does every generation go to the cloud (rule 6)?
    summary: str


#: The tiers. Over-context input and local failures go to the cloud in every tier.
TIERS: Mapping[str, TierRules] = MappingProxyType(
    {
        "free": TierRules(
            explicit_cloud=False,
            complexity_cloud=False,
            cloud_first=False,
            summary="the cloud only for what the device cannot do (over-context input, local failures)",
        ),
        "pro": TierRules(
            explicit_cloud=True,
            complexity_cloud=True,
            cloud_first=False,
            summary="complex prompts go to the cloud, the rest stay on the device",
        ),
        "enterprise": TierRules(
            explicit_cloud=True,
            complexity_cloud=True,
            cloud_first=True,
            summary="cloud first: generations go to the cloud, the device serves when the cloud fails",
        ),
    }
)


@dataclass(frozen=True, slots=True)
class Policy:
    """How requests are routed (see :mod:`hybrid_router.routing.rules`); ``replace`` checks the new
    combination."""

    route: str = "auto"
    privacy: str = "allow-cloud"
    tier: str = "pro"
    daily_budget_usd: float | None = None
    over_budget: str = "local"
    #: None: the prompt router's calibrated threshold (or the one ``cloud_share`` gives)
    complexity_threshold: float | None = None
    fallback: bool = True
    #: the share of typical traffic that may go to the cloud (0..1): turned into the router's threshold on
    #: its reference mix of prompts; None: its calibrated operating point
    cloud_share: float | None = None
    sensitive: str = "allow"
    #: the on-device chat model every generation uses (a manifest id); None: the largest that fits the device
    chat_model: str | None = None
    #: the cascade (:mod:`~hybrid_router.routing.cascade`): ``"confidence"`` scores a device answer by the
    #: model's own token log-probabilities and escalates it to the cloud below ``verify_threshold`` (None:
    #: the default), checking the first ``verify_tokens`` tokens (a stream shows nothing before)
    verify: str = "off"
    verify_threshold: float | None = None
    verify_tokens: int = 16

    def __post_init__(self) -> None:
        validation.choice(self.route, ROUTES, "route")
        validation.choice(self.privacy, PRIVACY, "privacy")
        validation.choice(self.tier, TIERS, "tier")
        validation.choice(self.over_budget, OVER_BUDGET, "over_budget")
        if self.daily_budget_usd is not None:
            object.__setattr__(self, "daily_budget_usd", _number(self.daily_budget_usd, "daily_budget_usd"))
        for name in ("complexity_threshold", "cloud_share"):
            value = getattr(self, name)
            if value is None:
                continue
            number = _number(value, name)
            if number > 1:
                raise ValidationError(
                    f"{name} must be between 0 and 1, got {number}",
                    hint=f"Pass {name} in [0, 1], or null for the router's calibrated one.",
                    field=name,
                )
            object.__setattr__(self, name, number)
        validation.choice(self.sensitive, SENSITIVE, "sensitive")
        validation.optional_str(self.chat_model, "chat_model")
        validation.choice(self.verify, ("off", "confidence"), "verify")
        if self.verify_threshold is not None:
            number = _number(self.verify_threshold, "verify_threshold")
            if number > 1:
                raise ValidationError(
                    f"verify_threshold must be between 0 and 1, got {number}",
                    hint="Pass verify_threshold in [0, 1] (a geometric-mean token probability), or null.",
                    field="verify_threshold",
                )
            object.__setattr__(self, "verify_threshold", number)
        tokens = self.verify_tokens
        if isinstance(tokens, bool) or not isinstance(tokens, int) or not 1 <= tokens <= 4096:
            raise ValidationError(
                f"verify_tokens must be an integer in [1, 4096], got {tokens!r}",
                hint="Pass how many of the answer's first tokens are scored (e.g. 16).",
                field="verify_tokens",
            )
        if not isinstance(self.fallback, bool):
            raise ValidationError(
                f"fallback must be true or false, got {validation.type_name(self.fallback)}",
                field="fallback",
            )
        if self.route == "cloud":
            check_cloud_allowed(self, "the default route 'cloud'")

    def replace(self, **changes: Any) -> Policy:
        """A copy with ``changes`` applied (and checked); unknown fields are a ``ValidationError``."""
        validation.known_keys(changes, POLICY_FIELDS, where="configure")
        return dataclasses.replace(self, **changes)

    def to_wire(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


#: What ``configure`` may change: the fields of :class:`Policy`.
POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(Policy))


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValidationError(
            f"{field} must be a number >= 0, got {value!r}",
            hint=f"Pass {field} as a number >= 0" + (" (or null: no limit)." if "budget" in field else "."),
            field=field,
            got=validation.type_name(value),
        )
    return float(value)


def check_cloud_allowed(policy: Policy, what: str) -> None:
    """Contradictions between a demand for the cloud and the policy (privacy, tier)."""
    if policy.privacy == "local-only":
        raise PolicyError(
            f"{what} contradicts privacy 'local-only', which never sends anything to the cloud",
            hint="Use route 'auto' or 'local', or set privacy to 'allow-cloud'.",
            privacy=policy.privacy,
            route="cloud",
        )
    if not TIERS[policy.tier].explicit_cloud:
        raise PolicyError(
            f"{what} is not available in the {policy.tier!r} tier ({TIERS[policy.tier].summary})",
            hint="Use route 'auto' (the cloud still serves what the device cannot), or upgrade the tier.",
            tier=policy.tier,
            route="cloud",
        )
