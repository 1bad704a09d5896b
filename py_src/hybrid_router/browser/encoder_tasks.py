"""The encoder tasks on a loaded Transformers.js pipeline: classification logits (with the reference
truncation), zero-shot, token classification, cross-encoder scores. Inside Pyodide only; the runtime
(:mod:`.transformers_js`) loads the pipelines and picks the device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
else:
    from hybrid_router._lazy import numpy as np
from pyodide.ffi import JsException

from ..errors import InferenceError
from ..manifest import ModelEntry
from .jsinterop import destroy, js_object
from .tensors import dispose, ints, message, restore_final_special_token, tensor_to_numpy

__all__ = ["cross_encoder_scores", "logits", "text_classification", "token_classification", "zero_shot"]


async def logits(
    pipe: Any,
    model: ModelEntry,
    dtype: str,
    task: str,
    texts: list[str],
    pairs: list[str] | None = None,
    *,
    batch: int = 16,
) -> np.ndarray:
    """The classifier's logits for ``texts`` (and ``pairs``: the second text of each), with reference
    truncation (the final [SEP] kept, as in feature extraction), in batches of ``batch``."""
    rows = []
    for start in range(0, len(texts), batch):
        options: dict[str, Any] = {"padding": True, "truncation": True}
        if pairs is not None:
            options["text_pair"] = pairs[start : start + batch]
        inputs = outputs = None
        try:
            inputs = pipe.tokenizer(js_object(texts[start : start + batch]), js_object(options))
            mask = ints(inputs.attention_mask)
            restore_final_special_token(inputs.input_ids, pipe.tokenizer.sep_token_id, mask)
            outputs = await pipe.model(inputs)
            rows.append(tensor_to_numpy(outputs.logits))
        except JsException as exc:
            raise InferenceError(
                f"{model.id} failed on {len(texts)} input(s): {message(exc)}",
                model=model.id,
                dtype=dtype,
                task=task,
            ) from exc
        finally:
            dispose(outputs)
            destroy(inputs, outputs)
    return np.concatenate(rows, axis=0)


async def text_classification(
    pipe: Any, model: ModelEntry, dtype: str, texts: list[str]
) -> list[list[tuple[str, float]]]:
    """The text-classification pipeline's model and labels (config ``id2label``), every label's softmax
    probability, best first; tokenized as the reference does (final [SEP] kept on long texts)."""
    config = pipe.model.config.id2label
    names = config.to_py() if hasattr(config, "to_py") else config
    id2label = {int(k): str(v) for k, v in names.items()}
    scores = await logits(pipe, model, dtype, "text-classification", list(texts))
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs = exp / exp.sum(axis=1, keepdims=True)
    return [
        sorted(((id2label.get(j, f"LABEL_{j}"), float(p)) for j, p in enumerate(row)), key=lambda x: -x[1])
        for row in probs
    ]


async def zero_shot(
    pipe: Any,
    model: ModelEntry,
    dtype: str,
    text: str,
    labels: list[str],
    *,
    hypothesis_template: str,
    multi_label: bool,
) -> list[tuple[str, float]]:
    """Transformers.js's zero-shot-classification pipeline (one NLI pass per label)."""
    output = None
    try:
        output = await pipe(
            text,
            js_object(list(labels)),
            js_object({"hypothesis_template": hypothesis_template, "multi_label": multi_label}),
        )
        result = output.to_py()
    except JsException as exc:
        raise InferenceError(
            f"{model.id} failed on zero-shot classification: {message(exc)}",
            model=model.id,
            dtype=dtype,
            task="zero-shot-classification",
        ) from exc
    finally:
        destroy(output)
    return [(str(lab), float(s)) for lab, s in zip(result["labels"], result["scores"], strict=True)]


async def token_classification(pipe: Any, model: ModelEntry, dtype: str, text: str) -> list[dict[str, Any]]:
    """Transformers.js's token-classification pipeline with ``ignore_labels: []``: every word piece."""
    output = None
    try:
        output = await pipe(text, js_object({"ignore_labels": []}))
        rows = output.to_py()
    except JsException as exc:
        raise InferenceError(
            f"{model.id} failed on token classification: {message(exc)}",
            model=model.id,
            dtype=dtype,
            task="token-classification",
        ) from exc
    finally:
        destroy(output)
    if rows and isinstance(rows[0], list):  # a batch of one
        rows = rows[0]
    return [
        {
            "word": str(r["word"]),
            "entity": str(r["entity"]),
            "score": float(r["score"]),
            "index": int(r["index"]),
        }
        for r in rows
    ]


async def cross_encoder_scores(
    pipe: Any, model: ModelEntry, dtype: str, query: str, documents: list[str]
) -> list[float]:
    """A cross-encoder's relevance logit per (query, document): the text-classification pipeline's
    tokenizer on pairs and its model, in batches of 16."""
    scores = await logits(pipe, model, dtype, "text-ranking", [query] * len(documents), list(documents))
    return [float(x) for x in scores[:, 0]]
