"""The typed requests of the device tasks, each checked once where it enters (the wire or a Python call).

Every ``parse`` takes the values as a caller sends them (JSON-like: the page's params) and returns a
frozen request or raises ``ValidationError`` with a hint. Inside the router, a request is only ever this
type: no module checks its fields again. Generation's request is :class:`~hybrid_router.chat.ChatRequest`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router import audio, validation
from hybrid_router.errors import ValidationError

__all__ = [
    "MAX_DOCUMENTS",
    "MAX_EXAMPLES",
    "MAX_LABELS",
    "ClassifyRequest",
    "EmbedRequest",
    "NerRequest",
    "RerankRequest",
    "TranscribeRequest",
]

MAX_LABELS = 32
MAX_DOCUMENTS = 256
MAX_EXAMPLES = 256
#: Transformers.js's default hypothesis for zero-shot classification.
HYPOTHESIS_TEMPLATE = "This example is {}."


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    texts: tuple[str, ...]
    model: str | None = None
    dtype: str | None = None

    @classmethod
    def parse(cls, texts: object, *, model: object = None, dtype: object = None) -> EmbedRequest:
        return cls(
            tuple(validation.texts(texts)),
            validation.optional_str(model, "model"),
            validation.optional_str(dtype, "dtype"),
        )


@dataclass(frozen=True, slots=True)
class ClassifyRequest:
    """``labels``: zero-shot over them; ``examples``: few-shot, label -> example texts; neither: the
    classifier's own labels."""

    text: str
    labels: tuple[str, ...] | None = None
    examples: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    model: str | None = None
    dtype: str | None = None
    multi_label: bool = False
    hypothesis_template: str = HYPOTHESIS_TEMPLATE

    @property
    def example_count(self) -> int:
        return sum(len(texts) for _, texts in self.examples or ())

    @classmethod
    def parse(
        cls,
        text: object,
        *,
        labels: object = None,
        examples: object = None,
        model: object = None,
        dtype: object = None,
        multi_label: object = False,
        hypothesis_template: object = None,
    ) -> ClassifyRequest:
        template = validation.optional_str(hypothesis_template, "hypothesis_template") or HYPOTHESIS_TEMPLATE
        if "{}" not in template:
            raise ValidationError(
                "hypothesis_template must contain {} (where the label goes)",
                hint='For example "This text is about {}."',
                field="hypothesis_template",
            )
        return cls(
            text=validation.text(text),
            labels=None if labels is None else _labels(labels),
            examples=None if examples is None else _examples(examples),
            model=validation.optional_str(model, "model"),
            dtype=validation.optional_str(dtype, "dtype"),
            multi_label=bool(multi_label),
            hypothesis_template=template,
        )


def _labels(value: object) -> tuple[str, ...]:
    names = validation.texts(value, field="labels", max_items=MAX_LABELS, max_chars=200)
    if len(set(names)) != len(names) or not all(n.strip() for n in names):
        raise ValidationError(
            "labels must be distinct, non-empty strings",
            hint='Pass the candidate labels once each, e.g. ["sports", "politics"].',
            field="labels",
        )
    return tuple(names)


def _examples(value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, Mapping) or not value:
        raise ValidationError(
            "examples must be an object mapping each label to a list of example texts",
            hint='For example { positive: ["great!", "loved it"], negative: ["awful"] }.',
            field="examples",
            got=validation.type_name(value),
        )
    if len(value) > MAX_LABELS:
        raise ValidationError(
            f"at most {MAX_LABELS} labels", hint="Merge or drop some labels.", field="examples"
        )
    return tuple(
        (str(k), tuple(validation.texts(v, field=f"examples[{k!r}]", max_items=MAX_EXAMPLES)))
        for k, v in value.items()
    )


@dataclass(frozen=True, slots=True)
class NerRequest:
    text: str
    model: str | None = None
    dtype: str | None = None

    @classmethod
    def parse(cls, text: object, *, model: object = None, dtype: object = None) -> NerRequest:
        return cls(
            validation.text(text),
            validation.optional_str(model, "model"),
            validation.optional_str(dtype, "dtype"),
        )


@dataclass(frozen=True, slots=True)
class RerankRequest:
    """``top_k`` None: every document, best first."""

    query: str
    documents: tuple[str, ...]
    top_k: int | None = None
    model: str | None = None
    dtype: str | None = None

    @classmethod
    def parse(
        cls,
        query: object,
        documents: object,
        *,
        top_k: object = None,
        model: object = None,
        dtype: object = None,
    ) -> RerankRequest:
        return cls(
            query=validation.text(query, "query"),
            documents=tuple(validation.texts(documents, field="documents", max_items=MAX_DOCUMENTS)),
            top_k=None if top_k is None else validation.positive_int(top_k, "top_k"),
            model=validation.optional_str(model, "model"),
            dtype=validation.optional_str(dtype, "dtype"),
        )

    @property
    def k(self) -> int:
        return len(self.documents) if self.top_k is None else self.top_k


@dataclass(frozen=True, eq=False)
class TranscribeRequest:
    """16 kHz mono float32 samples (decoded, downmixed and resampled from what the caller sent)."""

    samples: npt.NDArray[np.float32]
    model: str | None = None
    dtype: str | None = None

    @property
    def seconds(self) -> float:
        return audio.duration_s(self.samples)

    @classmethod
    def parse(
        cls,
        audio_in: object = None,
        *,
        wav: object = None,
        sampling_rate: object = audio.SAMPLE_RATE,
        model: object = None,
        dtype: object = None,
    ) -> TranscribeRequest:
        """``audio_in``: float samples at ``sampling_rate`` (or WAV bytes from Python); ``wav``: the bytes
        of a WAV file (the page sends a Blob's bytes here). Exactly one of them."""
        given = [name for name, value in (("audio", audio_in), ("wav", wav)) if value is not None]
        if len(given) != 1:
            raise ValidationError(
                "transcribe needs exactly one of audio (samples) and wav (a WAV file), got "
                + (" and ".join(given) or "neither"),
                hint="Pass a Float32Array of 16 kHz mono samples, or a WAV Blob/File.",
                field="audio",
            )
        if wav is not None and not audio.is_wav_bytes(wav):
            raise ValidationError(
                f"wav must be the bytes of a WAV file, got {validation.type_name(wav)}",
                hint="Pass the file as an ArrayBuffer or Uint8Array (the client does this for a Blob).",
                field="wav",
            )
        model_id = validation.optional_str(model, "model")
        chosen_dtype = validation.optional_str(dtype, "dtype")
        samples = audio.prepare(wav if wav is not None else audio_in, sampling_rate)
        return cls(samples, model_id, chosen_dtype)
