"""RouteLLM's quality-vs-cost figures (eval/quality/curves.py) on small inline verdicts."""

from __future__ import annotations

import math

import pytest
from eval.quality.curves import curve, random_curve

DEVICE = [False, False, True, True]
CLOUD = [True, True, True, True]


def test_a_router_that_sends_the_device_failures_first() -> None:
    c = curve([0.9, 0.8, 0.2, 0.1], DEVICE, CLOUD)
    assert c.share == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert c.quality == (0.5, 0.75, 1.0, 1.0, 1.0)
    assert list(c.pgr()) == [0.0, 0.5, 1.0, 1.0, 1.0]
    assert c.apgr() == pytest.approx(0.75)
    assert c.cpt(0.5) == 0.25 and c.cpt(0.8) == 0.5
    assert c.at(0.85) == (0.25, 0.75)  # one prompt scores >= 0.85
    assert c.at(0.05) == (1.0, 1.0) and c.at(2.0) == (0.0, 0.5)


def test_a_router_that_sends_the_device_successes_first_is_worse_than_random() -> None:
    c = curve([0.1, 0.2, 0.8, 0.9], DEVICE, CLOUD)
    assert c.apgr() == pytest.approx(0.25)
    assert c.cpt(0.5) == 0.75 and c.cpt(0.8) == 1.0
    assert random_curve(DEVICE, CLOUD).apgr() == pytest.approx(0.5)
    assert random_curve(DEVICE, CLOUD).cpt(0.5) == pytest.approx(0.5)


def test_equal_scores_are_not_split_by_a_threshold() -> None:
    c = curve([0.5, 0.5, 0.1, 0.1], DEVICE, CLOUD)
    assert c.share == (0.0, 0.5, 1.0)
    assert c.thresholds[1] == 0.5


def test_where_the_cloud_is_wrong_sending_there_loses_quality() -> None:
    c = curve([0.9, 0.1], [True, False], [False, True])
    assert c.quality == (0.5, 0.0, 0.5)
    assert c.gap == 0 and math.isnan(c.apgr()) and math.isnan(c.cpt(0.5))


def test_verdicts_of_another_length_are_refused() -> None:
    with pytest.raises(ValueError):
        curve([0.1], [True, False], [True, True])
