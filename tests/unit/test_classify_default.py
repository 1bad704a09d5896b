"""A classification without labels is never answered by an NLI model: it lists text-classification too, but
its labels (entailment, neutral, contradiction) answer no sentiment question. Found with the sentiment model
still training and the NLI model built: classify('What a wonderful film!') answered 'neutral'."""

from __future__ import annotations

import pytest
from tests.unit.fakes import fake_manifest_dict

from hybrid_router.errors import ModelNotReadyError, ValidationError
from hybrid_router.manifest import Manifest
from hybrid_router.routing.models import CLASSIFY, ZERO_SHOT, classify_plan

NLI_TASKS = [ZERO_SHOT, CLASSIFY]


def _manifest(*, sentiment: bool, sentiment_training: bool = False) -> Manifest:
    data = fake_manifest_dict()
    template = data["models"][0]
    data["models"].append({**template, "id": "fake-nli", "tasks": NLI_TASKS})
    if sentiment:
        data["models"].append({**template, "id": "fake-sentiment", "tasks": [CLASSIFY]})
    if sentiment_training:
        data["not_built"] = [
            {"id": "fake-sentiment", "tasks": [CLASSIFY], "state": "running", "progress": 0.3}
        ]
    return Manifest.from_dict(data)


def _plan(manifest: Manifest, model_id: str | None = None) -> list[tuple[str, str]]:
    return [
        (m.kind, m.model.id) for m in classify_plan(manifest, labels=False, examples=0, model_id=model_id)
    ]


def test_the_sentiment_model_answers_even_after_an_nli_model_in_the_manifest() -> None:
    assert _plan(_manifest(sentiment=True)) == [("classifier", "fake-sentiment")]


def test_while_the_sentiment_model_trains_the_call_is_not_ready_not_answered_by_nli() -> None:
    with pytest.raises(ModelNotReadyError) as caught:
        _plan(_manifest(sentiment=False, sentiment_training=True))
    assert caught.value.details["model"] == "fake-sentiment"
    assert "labels" in (caught.value.hint or "")  # what answers meanwhile


def test_without_any_sentiment_model_the_error_says_to_build_one() -> None:
    with pytest.raises(ValidationError) as caught:
        _plan(_manifest(sentiment=False))
    assert "text-classification" in (caught.value.hint or "")


def test_an_nli_model_asked_for_by_name_still_classifies() -> None:
    assert _plan(_manifest(sentiment=False), "fake-nli") == [("classifier", "fake-nli")]
