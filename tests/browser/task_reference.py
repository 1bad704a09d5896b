"""The CPython reference of the task models' browser tests: the built folder's ONNX file in onnxruntime with
the HF tokenizer of the same folder (what the browser must answer), and which task models are built here.

Shared by test_task_models.py (the real models) and test_tiny_task_models.py (tiny stand-ins, built in
seconds where the real ones are not).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hybrid_router.entities import Entity

__all__ = ["TASKS", "Onnx", "built_task_models", "sigmoid"]

#: the task models' kinds, by the task each model is chosen for
TASKS = {
    "sentiment": "text-classification",
    "ner": "token-classification",
    "nli": "zero-shot-classification",
    "rerank": "text-ranking",
}


def built_task_models() -> dict[str, tuple[str, Path, str]]:
    """kind -> (model id, built folder, default dtype) for the task models of the manifest that are built
    in this cache (the first of each task)."""
    from builder.models import load_manifest, read_index

    index = read_index()
    manifest = load_manifest()
    out = {}
    for kind, task in TASKS.items():
        for entry in manifest.for_task(task):
            # the sentiment test wants a sentiment model: the NLI model also does text-classification
            # (its three NLI labels), and answers label-less classify while minilm-l6-sst2 is not built
            if kind == "sentiment" and "zero-shot-classification" in entry.tasks:
                continue
            if entry.id in index:
                out[kind] = (entry.id, Path(index[entry.id]["dir"]), entry.default_dtype)
                break
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


class Onnx:
    """The built folder's ONNX file of ``dtype`` in onnxruntime, with the HF tokenizer of the same folder.

    ``fuse=False`` leaves out onnxruntime's extended graph fusions: native onnxruntime then computes a q8
    file's int8 weights as ONNX Runtime Web does (on a tiny q8 model: the same probabilities to 1e-7, where
    the fused graph is about 1e-3 off); fp32 files compute the same either way.
    """

    def __init__(self, folder: Path, dtype: str, *, fuse: bool = True) -> None:
        import onnxruntime as ort
        from builder.convert.recipe import onnx_file
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(folder))
        options = ort.SessionOptions()
        if not fuse:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        self.session = ort.InferenceSession(
            str(folder / onnx_file(dtype)), options, providers=["CPUExecutionProvider"]
        )
        config = json.loads((folder / "config.json").read_text())
        self.id2label = {int(k): v for k, v in config["id2label"].items()}
        self.label2id = {k.lower(): int(v) for k, v in config["label2id"].items()}

    def logits(self, first: list[str], second: list[str] | None = None) -> np.ndarray:
        enc = self.tok(first, second, padding=True, truncation=True, return_tensors="np")
        names = {i.name for i in self.session.get_inputs()}
        return np.asarray(
            self.session.run(["logits"], {k: v.astype(np.int64) for k, v in enc.items() if k in names})[0]
        )

    def labels(self, text: str) -> list[tuple[str, float]]:
        """The classifier's labels of ``text`` with their softmax probabilities, best first."""
        probs = softmax(self.logits([text])[0])
        return [(self.id2label[int(i)], float(probs[i])) for i in np.argsort(-probs, kind="stable")]

    def zero_shot_scores(
        self, text: str, labels: list[str], template: str = "This example is {}."
    ) -> list[tuple[str, float]]:
        """Transformers.js's zero-shot pipeline (single label): the softmax of the entailment logits over the
        labels, best first."""
        entail = np.asarray(
            [
                self.logits([text], [template.replace("{}", lab)])[0, self.label2id["entailment"]]
                for lab in labels
            ]
        )
        probs = softmax(entail)
        return [(labels[i], float(probs[i])) for i in np.argsort(-entail, kind="stable")]

    def zero_shot(self, text: str, labels: list[str], template: str = "This example is {}.") -> list[str]:
        """The labels of :meth:`zero_shot_scores`, best first."""
        return [label for label, _ in self.zero_shot_scores(text, labels, template)]

    def entity_list(self, text: str) -> list[Entity]:
        """The entities of ``text`` as the router groups the word pieces' best labels."""
        from hybrid_router.entities import group_entities

        enc = self.tok(text, truncation=True)
        logits = self.logits([text])[0]
        tokens = []
        for pos, piece in enumerate(self.tok.convert_ids_to_tokens(enc["input_ids"])):
            if piece in self.tok.all_special_tokens:
                continue
            probs = softmax(logits[pos])
            best = int(probs.argmax())
            tokens.append({"word": piece, "entity": self.id2label[best], "score": float(probs[best])})
        return group_entities(text, tokens)

    def entities(self, text: str) -> list[tuple[str, str, int, int]]:
        """(text, label, start, end) of each entity of :meth:`entity_list`."""
        return [(e.text, e.label, e.start, e.end) for e in self.entity_list(text)]
