"""Target cloud share -> threshold on a reference mix: exact to 1/len(mix), edge cases, bad input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hybrid_router.cloud_share import share_at, threshold_for_share
from hybrid_router.errors import ValidationError


@given(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=300, unique=True),
    st.floats(0, 1, allow_nan=False),
)
def test_share_is_hit_within_half_a_prompt_when_scores_are_distinct(
    scores: list[float], share: float
) -> None:
    ordered = sorted(scores)
    t = threshold_for_share(ordered, share)
    assert abs(share_at(ordered, t) - share) <= 0.5 / len(ordered) + 1e-12


@given(st.lists(st.sampled_from([0.1, 0.2, 0.3, 0.4]), min_size=1, max_size=200), st.floats(0, 1))
def test_ties_keep_the_share_as_close_as_the_ties_allow(scores: list[float], share: float) -> None:
    ordered = sorted(scores)
    t = threshold_for_share(ordered, share)
    achieved = share_at(ordered, t)
    # some cut between the groups of equal scores; the achieved share is at one of them
    possible = {share_at(ordered, v) for v in ordered} | {0.0}
    assert achieved in possible


def test_edges() -> None:
    scores = [0.1, 0.2, 0.3, 0.4]
    assert share_at(scores, threshold_for_share(scores, 0.0)) == 0.0
    assert share_at(scores, threshold_for_share(scores, 1.0)) == 1.0
    assert threshold_for_share(scores, 0.5) == pytest.approx(0.25)  # midpoint between neighbours
    assert threshold_for_share(scores, 0.25) == pytest.approx(0.35)


@pytest.mark.parametrize("share", [-0.1, 1.5, math.nan, "0.1", True, None])
def test_bad_shares_are_validation_errors(share: object) -> None:
    with pytest.raises(ValidationError) as err:
        threshold_for_share([0.1, 0.2], share)  # type: ignore[arg-type]  # bad on purpose
    assert err.value.details["field"] == "cloud_share"


def test_bad_reference_scores_are_validation_errors() -> None:
    with pytest.raises(ValidationError):
        threshold_for_share([], 0.1)
    with pytest.raises(ValidationError):
        threshold_for_share([0.3, 0.1], 0.1)
