import dataclasses
from typing import Any

import pytest

from hybrid_router.errors import ContextLengthError, ModelLoadError, PolicyError, ValidationError
from hybrid_router.routing import TIERS, Decision, Facts, Policy, decide

# A request every rule can see: a generation that fits the device, a cloud configured, nothing spent.
BASE = Facts(
    task="text-generation",
    tokens_in=100,
    context_length=1000,
    max_tokens=200,
    complexity=0.1,
    local_available=True,
    cloud_available=True,
    spent_today_usd=0.0,
)
COMPLEX = dataclasses.replace(BASE, complexity=0.9, complexity_reasons=("numbers_log", "chars_log"))
TOO_LONG = dataclasses.replace(BASE, tokens_in=900)  # 900 + 200 > 1000


def test_policy_defaults() -> None:
    policy = Policy()
    assert (policy.route, policy.privacy, policy.tier, policy.over_budget) == (
        "auto",
        "allow-cloud",
        "pro",
        "local",
    )
    assert policy.daily_budget_usd is None and policy.fallback is True
    # None: the prompt router's own calibrated threshold (or the one cloud_share gives)
    assert policy.complexity_threshold is None and policy.cloud_share is None and policy.sensitive == "allow"


@pytest.mark.parametrize(
    "changes",
    [
        {"route": "remote"},
        {"privacy": "private"},
        {"tier": "gold"},
        {"over_budget": "fail"},
        {"daily_budget_usd": -1},
        {"daily_budget_usd": "5"},
        {"daily_budget_usd": float("nan")},
        {"daily_budget_usd": True},
        {"complexity_threshold": 1.5},
        {"complexity_threshold": -0.1},
        {"fallback": "yes"},
    ],
)
def test_bad_policy_values_are_validation_errors(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        Policy(**changes)
    assert info.value.hint
    with pytest.raises(ValidationError):
        Policy().replace(**changes)


def test_an_integer_budget_is_stored_as_a_float() -> None:
    assert Policy(daily_budget_usd=2).daily_budget_usd == 2.0


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"privacy": "local-only", "route": "cloud"}, "local-only"),
        ({"tier": "free", "route": "cloud"}, "free"),
    ],
)
def test_contradictory_policies_are_policy_errors_with_a_hint(changes: dict[str, Any], word: str) -> None:
    with pytest.raises(PolicyError, match=word) as info:
        Policy(**changes)
    assert "route" in info.value.hint
    # the same contradiction built step by step
    with pytest.raises(PolicyError):
        Policy(route="cloud").replace(**{k: v for k, v in changes.items() if k != "route"})


def test_the_tier_table_documents_every_tier() -> None:
    assert set(TIERS) == {"free", "pro", "enterprise"}
    assert not TIERS["free"].explicit_cloud and not TIERS["free"].complexity_cloud
    assert TIERS["pro"].complexity_cloud and not TIERS["pro"].cloud_first
    assert TIERS["enterprise"].cloud_first
    assert all(t.summary for t in TIERS.values())


# -- rule 1: privacy ----------------------------------------------------------------------------------


def test_local_only_keeps_even_complex_prompts_on_the_device_without_fallback() -> None:
    decision = decide(COMPLEX, Policy(privacy="local-only"))
    assert decision == Decision("local", "privacy", decision.rule, None)
    assert "local-only" in decision.rule


def test_local_only_refuses_a_call_that_asks_for_the_cloud() -> None:
    with pytest.raises(PolicyError, match="local-only") as info:
        decide(dataclasses.replace(BASE, route="cloud"), Policy(privacy="local-only"))
    assert "allow-cloud" in info.value.hint


def test_local_only_refuses_input_too_long_for_the_device_naming_both_numbers() -> None:
    with pytest.raises(PolicyError) as info:
        decide(TOO_LONG, Policy(privacy="local-only"))
    assert "900" in info.value.message and "1000" in info.value.message and "200" in info.value.message
    assert "Shorten" in info.value.hint and "allow-cloud" in info.value.hint
    assert info.value.details["tokens_in"] == 900 and info.value.details["context_length"] == 1000


def test_local_only_without_a_local_model_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="no on-device model"):
        decide(dataclasses.replace(BASE, local_available=False), Policy(privacy="local-only"))


# -- rule 2: explicit route -----------------------------------------------------------------------------


def test_explicit_local_pins_the_device_with_no_fallback() -> None:
    decision = decide(dataclasses.replace(COMPLEX, route="local"), Policy())
    assert (decision.target, decision.reason, decision.fallback_target) == ("local", "explicit", None)


def test_explicit_cloud_pins_the_cloud_even_for_a_simple_prompt() -> None:
    decision = decide(dataclasses.replace(BASE, route="cloud"), Policy())
    assert (decision.target, decision.reason, decision.fallback_target) == ("cloud", "explicit", None)


def test_the_policy_default_route_applies_when_the_call_has_none_and_the_call_overrides_it() -> None:
    assert decide(COMPLEX, Policy(route="local")).reason == "explicit"
    decision = decide(dataclasses.replace(COMPLEX, route="auto"), Policy(route="local"))
    assert (decision.target, decision.reason) == ("cloud", "complexity")


def test_a_bad_route_in_the_facts_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        decide(dataclasses.replace(BASE, route="edge"), Policy())


def test_explicit_local_that_does_not_fit_is_a_context_length_error() -> None:
    with pytest.raises(ContextLengthError, match="1000"):
        decide(dataclasses.replace(TOO_LONG, route="local"), Policy())


def test_explicit_local_without_a_model_is_a_model_load_error() -> None:
    with pytest.raises(ModelLoadError):
        decide(dataclasses.replace(BASE, route="local", local_available=False), Policy())


@pytest.mark.parametrize(
    ("facts", "policy", "match"),
    [
        (dataclasses.replace(BASE, route="cloud", cloud_available=False), Policy(), "no cloud provider"),
        (dataclasses.replace(BASE, route="cloud"), Policy(tier="free"), "free"),
        (
            dataclasses.replace(BASE, route="cloud", spent_today_usd=1.0),
            Policy(daily_budget_usd=1.0),
            "budget",
        ),
        (dataclasses.replace(BASE, route="cloud", task="feature-extraction"), Policy(), "only on the device"),
    ],
)
def test_explicit_cloud_that_cannot_be_honoured_is_a_policy_error(
    facts: Facts, policy: Policy, match: str
) -> None:
    with pytest.raises(PolicyError, match=match) as info:
        decide(facts, policy)
    assert info.value.hint


# -- rule 3: task default ----------------------------------------------------------------------------


def test_analysis_tasks_stay_on_the_device_whatever_the_prompt() -> None:
    facts = dataclasses.replace(COMPLEX, task="feature-extraction", tokens_in=5000)
    decision = decide(facts, Policy(tier="enterprise"))
    assert (decision.target, decision.reason, decision.fallback_target) == ("local", "task-default", None)


# -- rule 4: local capability -------------------------------------------------------------------------


def test_input_over_the_local_window_goes_to_the_cloud_without_fallback() -> None:
    decision = decide(TOO_LONG, Policy())
    assert (decision.target, decision.reason, decision.fallback_target) == ("cloud", "context-length", None)
    assert "900" in decision.rule and "1000" in decision.rule


def test_input_that_exactly_fits_stays_local() -> None:
    decision = decide(dataclasses.replace(BASE, tokens_in=800), Policy())
    assert decision.target == "local"


def test_unknown_token_count_is_assumed_to_fit() -> None:
    assert decide(dataclasses.replace(BASE, tokens_in=None), Policy()).target == "local"


def test_no_local_model_goes_to_the_cloud() -> None:
    decision = decide(dataclasses.replace(BASE, local_available=False), Policy())
    assert (decision.target, decision.reason, decision.fallback_target) == (
        "cloud",
        "local-unavailable",
        None,
    )


def test_too_long_with_no_cloud_is_a_context_length_error_and_no_model_no_cloud_a_load_error() -> None:
    with pytest.raises(ContextLengthError) as info:
        decide(dataclasses.replace(TOO_LONG, cloud_available=False), Policy())
    assert info.value.details["context_length"] == 1000
    with pytest.raises(ModelLoadError):
        decide(dataclasses.replace(BASE, local_available=False, cloud_available=False), Policy())


@pytest.mark.parametrize("over_budget", ["local", "refuse"])
def test_too_long_when_the_budget_is_spent_is_a_policy_error(over_budget: str) -> None:
    facts = dataclasses.replace(TOO_LONG, spent_today_usd=2.0)
    with pytest.raises(PolicyError, match="budget") as info:
        decide(facts, Policy(daily_budget_usd=1.0, over_budget=over_budget))
    assert "daily_budget_usd" in info.value.hint


def test_context_length_comes_before_the_free_tier() -> None:
    assert decide(TOO_LONG, Policy(tier="free")).reason == "context-length"


# -- rule 5: budget ---------------------------------------------------------------------------------------


def test_spent_budget_keeps_complex_prompts_local_without_fallback() -> None:
    facts = dataclasses.replace(COMPLEX, spent_today_usd=1.0)
    decision = decide(facts, Policy(daily_budget_usd=1.0))
    assert (decision.target, decision.reason, decision.fallback_target) == ("local", "budget", None)
    assert "$1.0000" in decision.rule


def test_spent_budget_refuses_what_would_go_to_the_cloud_when_configured_to() -> None:
    facts = dataclasses.replace(COMPLEX, spent_today_usd=1.5)
    with pytest.raises(PolicyError, match="budget") as info:
        decide(facts, Policy(daily_budget_usd=1.0, over_budget="refuse"))
    assert info.value.details["spent_today_usd"] == 1.5 and info.value.details["daily_budget_usd"] == 1.0


def test_spent_budget_with_refuse_still_serves_simple_prompts_locally_without_fallback() -> None:
    facts = dataclasses.replace(BASE, spent_today_usd=1.5)
    decision = decide(facts, Policy(daily_budget_usd=1.0, over_budget="refuse"))
    assert (decision.target, decision.reason, decision.fallback_target) == ("local", "default", None)


def test_budget_not_spent_or_unlimited_changes_nothing_and_zero_means_no_cloud() -> None:
    assert (
        decide(dataclasses.replace(COMPLEX, spent_today_usd=0.5), Policy(daily_budget_usd=1.0)).target
        == "cloud"
    )
    assert decide(dataclasses.replace(COMPLEX, spent_today_usd=1e6), Policy()).target == "cloud"
    assert decide(COMPLEX, Policy(daily_budget_usd=0)).reason == "budget"


def test_the_budget_comes_before_the_tier() -> None:
    facts = dataclasses.replace(BASE, spent_today_usd=3.0)
    assert decide(facts, Policy(tier="enterprise", daily_budget_usd=1.0)).reason == "budget"


# -- rules 6-8: tier, complexity, default ------------------------------------------------------------------


def test_free_tier_keeps_complex_prompts_local_but_falls_back_to_the_cloud() -> None:
    decision = decide(COMPLEX, Policy(tier="free"))
    assert (decision.target, decision.reason, decision.fallback_target) == ("local", "tier", "cloud")
    assert "free" in decision.rule


def test_enterprise_tier_goes_to_the_cloud_first_with_the_device_as_fallback() -> None:
    decision = decide(BASE, Policy(tier="enterprise"))
    assert (decision.target, decision.reason, decision.fallback_target) == ("cloud", "tier", "local")


def test_a_complex_prompt_goes_to_the_cloud_and_the_rule_says_why() -> None:
    decision = decide(COMPLEX, Policy())
    assert (decision.target, decision.reason, decision.fallback_target) == ("cloud", "complexity", "local")
    assert "0.90" in decision.rule and "numbers_log" in decision.rule


def test_the_threshold_itself_goes_to_the_cloud_and_the_policy_sets_it() -> None:
    at = dataclasses.replace(BASE, complexity=0.5)
    assert decide(at, Policy(complexity_threshold=0.5)).target == "cloud"
    assert decide(at, Policy(complexity_threshold=0.51)).target == "local"


def test_a_simple_prompt_or_no_estimate_is_the_local_default_with_cloud_fallback() -> None:
    for facts in (BASE, dataclasses.replace(BASE, complexity=None)):
        decision = decide(facts, Policy())
        assert (decision.target, decision.reason, decision.fallback_target) == ("local", "default", "cloud")


def test_a_cloud_preference_with_no_cloud_is_served_locally_and_says_so() -> None:
    decision = decide(dataclasses.replace(COMPLEX, cloud_available=False), Policy())
    assert (decision.target, decision.reason, decision.fallback_target) == (
        "local",
        "cloud-unavailable",
        None,
    )
    assert "no cloud" in decision.rule


def test_fallback_off_means_no_fallback_target() -> None:
    assert decide(BASE, Policy(fallback=False)).fallback_target is None
    assert decide(COMPLEX, Policy(fallback=False)).fallback_target is None


def test_a_cloud_decision_falls_back_to_the_device_when_the_count_is_unknown_or_fits() -> None:
    for tokens in (None, 800):
        facts = dataclasses.replace(COMPLEX, tokens_in=tokens)
        assert decide(facts, Policy(tier="enterprise")).fallback_target == "local"


# -- the order, end to end -----------------------------------------------------------------------------


def test_the_rules_apply_in_the_documented_order() -> None:
    """One request that every rule would act on; turning the earlier rules off reveals the next."""
    policy = Policy(privacy="local-only", tier="free", daily_budget_usd=1.0)
    facts = dataclasses.replace(COMPLEX, route="local", spent_today_usd=5.0)
    seen = [decide(facts, policy).reason]  # 1. privacy
    policy = policy.replace(privacy="allow-cloud")
    seen.append(decide(facts, policy).reason)  # 2. explicit
    facts = dataclasses.replace(facts, route=None, task="feature-extraction")
    seen.append(decide(facts, policy).reason)  # 3. task default
    facts = dataclasses.replace(facts, task="text-generation", tokens_in=900, spent_today_usd=0.0)
    seen.append(decide(facts, policy).reason)  # 4. context length
    facts = dataclasses.replace(facts, tokens_in=100, spent_today_usd=5.0)
    seen.append(decide(facts, policy).reason)  # 5. budget
    facts = dataclasses.replace(facts, spent_today_usd=0.0)
    seen.append(decide(facts, policy).reason)  # 6. tier
    policy = policy.replace(tier="pro")
    seen.append(decide(facts, policy).reason)  # 7. complexity
    facts = dataclasses.replace(facts, complexity=0.0)
    seen.append(decide(facts, policy).reason)  # 8. default
    assert seen == [
        "privacy",
        "explicit",
        "task-default",
        "context-length",
        "budget",
        "tier",
        "complexity",
        "default",
    ]


def test_policy_to_wire_is_plain_data() -> None:
    wire = Policy(daily_budget_usd=3).to_wire()
    assert (
        wire["daily_budget_usd"] == 3.0
        and wire["tier"] == "pro"
        and set(wire)
        == {
            "route",
            "privacy",
            "tier",
            "daily_budget_usd",
            "over_budget",
            "complexity_threshold",
            "fallback",
            "cloud_share",
            "sensitive",
            "chat_model",
            "verify",
            "verify_threshold",
            "verify_tokens",
        }
    )
