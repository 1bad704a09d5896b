"""A target cloud share turned into a score threshold, on a reference mix of prompts.

RouteLLM calibrates its threshold so that a chosen percentage of calls goes to the strong model; here
the policy says ``cloud_share`` (say 0.1: one request in ten may go to the cloud) and
:func:`threshold_for_share` returns the router-score threshold at which that share of the reference
mix reaches it. The mix ships with the router's weights as its sorted scores, so the worker needs no
data. On the mix itself the share hit is exact to ``1 / len(scores)`` (half of that when no two scores
are equal); on real traffic it is as close as the traffic resembles the mix.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from hybrid_router.errors import ValidationError

__all__ = ["share_at", "threshold_for_share"]


def _checked_scores(sorted_scores: Sequence[float]) -> Sequence[float]:
    if not sorted_scores:
        raise ValidationError(
            "the reference mix has no scores",
            hint="Ship the router's weights with its reference scores (eval/train_router.py writes them).",
        )
    if any(b < a for a, b in zip(sorted_scores, sorted_scores[1:], strict=False)):
        raise ValidationError("the reference scores must be sorted in ascending order")
    return sorted_scores


def threshold_for_share(sorted_scores: Sequence[float], cloud_share: float) -> float:
    """The threshold ``t`` such that ``cloud_share`` of the reference scores are ``>= t``.

    ``sorted_scores`` ascending. ``cloud_share`` 0 gives a threshold above every score (nothing goes to
    the cloud), 1 gives the lowest score (everything does). Between two neighbouring scores the
    midpoint is returned, so a score equal to a reference score is not on the edge.
    """
    if (
        isinstance(cloud_share, bool)
        or not isinstance(cloud_share, int | float)
        or not math.isfinite(cloud_share)
    ):
        raise ValidationError(
            f"cloud_share must be a number between 0 and 1, got {cloud_share!r}", field="cloud_share"
        )
    if not 0.0 <= cloud_share <= 1.0:
        raise ValidationError(
            f"cloud_share must be between 0 and 1, got {cloud_share}",
            hint="Pass the share of requests that may go to the cloud, e.g. 0.1 for one in ten.",
            field="cloud_share",
        )
    scores = _checked_scores(sorted_scores)
    n = len(scores)
    k = round(cloud_share * n)  # how many reference prompts go to the cloud
    if k <= 0:
        return math.nextafter(float(scores[-1]), math.inf)
    if k >= n:
        return float(scores[0])
    low, high = float(scores[n - k - 1]), float(scores[n - k])
    return high if low == high else (low + high) / 2.0


def share_at(sorted_scores: Sequence[float], threshold: float) -> float:
    """The share of the reference scores that are ``>= threshold``."""
    scores = _checked_scores(sorted_scores)
    return (len(scores) - bisect.bisect_left(scores, threshold)) / len(scores)
