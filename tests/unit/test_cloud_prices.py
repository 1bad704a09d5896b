import json
from pathlib import Path

import pytest
from tests.unit.fakes import fake_manifest, fake_manifest_dict

from hybrid_router.errors import ValidationError
from hybrid_router.ledger import Ledger
from hybrid_router.manifest import Manifest
from hybrid_router.prices import CloudPrice, CloudPrices

REPO = Path(__file__).resolve().parents[2]


def repo_manifest() -> Manifest:
    return Manifest.from_json((REPO / "models_manifest.json").read_text(encoding="utf-8"))


def test_the_repository_manifest_lists_list_prices_a_default_and_the_default_cloud_tier() -> None:
    manifest = repo_manifest()
    mini = manifest.price_for("gpt-4o-mini")
    assert (mini.input_usd_per_mtok, mini.output_usd_per_mtok) == (0.15, 0.60) and mini.source
    sonnet = manifest.price_for("claude-sonnet-4")
    assert (sonnet.input_usd_per_mtok, sonnet.output_usd_per_mtok) == (3.0, 15.0)
    default = manifest.price_for("some-new-model")
    assert default.model == "default" and default.note
    qwen = manifest.price_for("qwen2.5-coder-0.5b-instruct")
    assert qwen.model == "qwen2.5-coder-0.5b-instruct" and "real cost is 0" in (qwen.note or "")
    assert (qwen.input_usd_per_mtok, qwen.output_usd_per_mtok) == (
        default.input_usd_per_mtok,
        default.output_usd_per_mtok,
    )
    assert all(p.source or p.note for p in manifest.cloud_prices.entries.values())


@pytest.mark.parametrize(
    ("name", "listed"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("GPT-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("Qwen2.5-Coder-0.5B-Instruct-Q8_0.gguf", "qwen2.5-coder-0.5b-instruct"),
        ("gpt-4o1", "default"),  # a prefix only counts at a separator
        (None, "default"),
        ("", "default"),
    ],
)
def test_model_names_match_exactly_then_by_the_longest_prefix_then_default(
    name: str | None, listed: str
) -> None:
    assert repo_manifest().price_for(name).model == listed


def test_cost_is_per_million_tokens() -> None:
    price = CloudPrice("m", input_usd_per_mtok=2.5, output_usd_per_mtok=10.0)
    assert price.cost(1_000_000, 0) == 2.5
    assert price.cost(2000, 500) == pytest.approx((2000 * 2.5 + 500 * 10.0) / 1e6)


def test_a_manifest_without_prices_prices_everything_at_zero() -> None:
    data = fake_manifest_dict()
    del data["cloud_prices"]
    manifest = Manifest.from_dict(data)
    assert manifest.cloud_prices.entries == {}
    assert manifest.price_for("gpt-4o").cost(10**6, 10**6) == 0.0


def test_the_ledger_prices_with_the_manifest() -> None:
    ledger = Ledger(fake_manifest(), cloud_model="fake-gpt")
    assert ledger.cost("fake-gpt", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert ledger.cost("other", 1_000_000, 0) == pytest.approx(10.0)


@pytest.mark.parametrize(
    "section",
    [
        [],
        {"gpt-x": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1}},  # no default
        {"default": {"input_usd_per_mtok": -1, "output_usd_per_mtok": 1}},
        {"default": {"input_usd_per_mtok": "1", "output_usd_per_mtok": 1}},
        {"default": {"input_usd_per_mtok": True, "output_usd_per_mtok": 1}},
        {"default": {"input_usd_per_mtok": 1}},
        {"default": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1, "currency": "EUR"}},
        {"default": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1, "note": 3}},
        {"default": "cheap"},
        {
            "default": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1},
            "GPT-X": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1},
            "gpt-x": {"input_usd_per_mtok": 2, "output_usd_per_mtok": 2},
        },
    ],
)
def test_a_bad_price_section_is_refused_with_a_hint(section: object) -> None:
    data = fake_manifest_dict()
    data["cloud_prices"] = section
    with pytest.raises(ValidationError) as info:
        Manifest.from_dict(data)
    assert "cloud_prices" in info.value.message and "prices.py" in info.value.hint


def test_the_table_round_trips_through_json() -> None:
    table = repo_manifest().cloud_prices
    assert CloudPrices.from_dict(json.loads(json.dumps(table.to_dict()))) == table
