"""The router's encoder steps on CPython onnxruntime, over the ONNX files the browser loads.

:class:`OnnxRuntime` implements the part of :class:`hybrid_router.runtime.LocalRuntime` that
classification and reranking use (``feature_extraction``, ``zero_shot_classification``,
``cross_encoder_scores``), so the router's own steps run on it unchanged. What each method computes is
the browser's:

- ``feature_extraction``: the model's last hidden state, mean-pooled over the attention mask (or the
  first token for ``cls``), L2-normalized (Transformers.js's feature-extraction pipeline, with the final
  ``[SEP]`` kept on a truncated text as :mod:`hybrid_router.browser.transformers_js` does);
- ``zero_shot_classification``: Transformers.js 4.3.1's ``ZeroShotClassificationPipeline``: one
  (premise, hypothesis) pass per label with the hypothesis ``template.replace("{}", label)``; one label
  or ``multi_label``: per label, softmax of (contradiction, entailment) logits; else softmax over the
  labels' entailment logits; labels best first;
- ``cross_encoder_scores``: the first logit of each (query, document) pair.

Inputs are tokenized by the model's own tokenizer files (Hugging Face tokenizers, truncated to the
model's ``model_max_length``). A set is scored in batches of similar length first (:meth:`embed_all`,
:meth:`pairs_all`, results cached on disk by the model file and the inputs); the router's steps then read
those results per item. Padding changes a row by float rounding only (the attention mask excludes it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from builder.convert.recipe import onnx_file

from hybrid_router.manifest import ModelEntry
from hybrid_router.runtime import LocalRuntime, ProgressCallback

__all__ = ["Loaded", "OnnxRuntime"]

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

Floats = npt.NDArray[np.float32]


@dataclass
class Loaded:
    """One model file in an onnxruntime session, with its tokenizer."""

    entry: ModelEntry
    dtype: str
    path: Path
    session: Any
    tokenizer: Any
    max_length: int
    inputs: frozenset[str]
    digest: str

    def run(self, batch: dict[str, npt.NDArray[np.int64]], output: str) -> Floats:
        feed = {k: v for k, v in batch.items() if k in self.inputs}
        return cast(Floats, self.session.run([output], feed)[0])


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class OnnxRuntime:
    """``folders``: model id -> its built folder (``$CACHE/models/index.json``); ``cache``: where scored sets
    are kept (None: nowhere); ``threads``: onnxruntime's intra-op threads."""

    def __init__(
        self, folders: dict[str, Path], *, threads: int = 1, cache: Path | None = None, batch: int = 32
    ) -> None:
        self.folders = folders
        self.threads = threads
        self.cache = cache
        self.batch = batch
        self._loaded: dict[tuple[str, str], Loaded] = {}
        self._vectors: dict[tuple[str, str, str], Floats] = {}
        self._logits: dict[tuple[str, str, str, str], Floats] = {}
        #: inputs longer than the model's window (truncated), per model id
        self.truncated: dict[str, int] = {}

    def as_runtime(self) -> LocalRuntime:
        """This object where the router's steps want a runtime (the steps use only the methods it has)."""
        return cast(LocalRuntime, self)

    def load(self, entry: ModelEntry, dtype: str) -> Loaded:
        key = (entry.id, dtype)
        if key not in self._loaded:
            import onnxruntime as ort
            from transformers import AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()  # it warns of each text over the window: counted instead

            folder = self.folders[entry.id]
            path = folder / onnx_file(dtype)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # a shared machine
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
            self._loaded[key] = Loaded(
                entry,
                dtype,
                path,
                session,
                AutoTokenizer.from_pretrained(str(folder)),
                int(config.get("model_max_length", 512)),
                frozenset(i.name for i in session.get_inputs()),
                _file_sha256(path),
            )
        return self._loaded[key]

    # -- batched scoring of a whole set (cached) ------------------------------------------------------

    def _batches(
        self, m: Loaded, first: Sequence[str], second: Sequence[str] | None
    ) -> list[tuple[list[int], dict[str, npt.NDArray[np.int64]]]]:
        enc = m.tokenizer(
            list(first),
            list(second) if second is not None else None,
            truncation=True,
            max_length=m.max_length,
        )
        plain = m.tokenizer(list(first), list(second) if second is not None else None, truncation=False)
        self.truncated[m.entry.id] = self.truncated.get(m.entry.id, 0) + sum(
            len(ids) > m.max_length for ids in plain["input_ids"]
        )
        ids, types = enc["input_ids"], enc["token_type_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = []
        for s in range(0, len(order), self.batch):
            idx = order[s : s + self.batch]
            width = max(len(ids[i]) for i in idx)
            batch = {
                k: np.zeros((len(idx), width), np.int64)
                for k in ("input_ids", "attention_mask", "token_type_ids")
            }
            for r, i in enumerate(idx):
                batch["input_ids"][r, : len(ids[i])] = ids[i]
                batch["attention_mask"][r, : len(ids[i])] = 1
                batch["token_type_ids"][r, : len(ids[i])] = types[i]
            out.append((idx, batch))
        return out

    def _cached(self, m: Loaded, what: str, items: Sequence[str]) -> tuple[Path | None, Floats | None]:
        if self.cache is None:
            return None, None
        h = hashlib.sha256(f"{m.digest}\0{m.dtype}\0{what}\0{m.max_length}".encode())
        for item in items:
            h.update(item.encode() + b"\0")
        path = self.cache / f"{m.entry.id}-{m.dtype}-{what}-{h.hexdigest()[:16]}.npy"
        return path, (np.load(path) if path.is_file() else None)

    @staticmethod
    def _save(path: Path | None, array: Floats) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, array)
            tmp.replace(path)

    def embed_all(
        self, entry: ModelEntry, dtype: str, texts: Sequence[str], *, pooling: str = "mean"
    ) -> None:
        """Embed ``texts`` (unique, in length-sorted batches) so that later calls read them."""
        todo = sorted({t for t in texts if (entry.id, dtype, t) not in self._vectors})
        if not todo:
            return
        m = self.load(entry, dtype)
        path, rows = self._cached(m, f"embed-{pooling}", todo)
        if rows is None:
            rows = np.zeros((len(todo), 0), np.float32)
            for idx, batch in self._batches(m, todo, None):
                hidden = m.run(batch, "last_hidden_state")
                if pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    mask = batch["attention_mask"][..., None].astype(np.float32)
                    pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
                if rows.shape[1] == 0:
                    rows = np.zeros((len(todo), pooled.shape[1]), np.float32)
                rows[idx] = pooled
            self._save(path, rows)
        for text, row in zip(todo, rows, strict=True):
            self._vectors[(entry.id, dtype, text)] = row

    def pairs_all(self, entry: ModelEntry, dtype: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Run the pairs' logits (unique, in length-sorted batches) so that later calls read them."""
        todo = sorted({p for p in pairs if (entry.id, dtype, *p) not in self._logits})
        if not todo:
            return
        m = self.load(entry, dtype)
        path, rows = self._cached(m, "pairs", [f"{a}\0{b}" for a, b in todo])
        if rows is None:
            rows = np.zeros((len(todo), 0), np.float32)
            for idx, batch in self._batches(m, [a for a, _ in todo], [b for _, b in todo]):
                logits = m.run(batch, "logits")
                if rows.shape[1] == 0:
                    rows = np.zeros((len(todo), logits.shape[1]), np.float32)
                rows[idx] = logits
            self._save(path, rows)
        for pair, row in zip(todo, rows, strict=True):
            self._logits[(entry.id, dtype, *pair)] = row

    # -- the LocalRuntime methods the router's steps call ---------------------------------------------

    async def feature_extraction(
        self,
        model: ModelEntry,
        dtype: str,
        texts: list[str],
        *,
        pooling: str,
        normalize: bool,
        on_progress: ProgressCallback | None = None,
    ) -> Floats:
        self.embed_all(model, dtype, texts, pooling=pooling)
        rows = np.stack([self._vectors[(model.id, dtype, t)] for t in texts])
        if normalize:
            rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return rows.astype(np.float32)

    async def zero_shot_classification(
        self,
        model: ModelEntry,
        dtype: str,
        text: str,
        labels: list[str],
        *,
        hypothesis_template: str,
        multi_label: bool,
        on_progress: ProgressCallback | None = None,
    ) -> list[tuple[str, float]]:
        m = self.load(model, dtype)
        label2id = _label2id(m)
        entail = label2id.get("entailment", 2)
        contra = label2id.get("contradiction", label2id.get("not_entailment", 0))
        hypotheses = [hypothesis_template.replace("{}", label, 1) for label in labels]
        pairs = [(text, h) for h in hypotheses]
        self.pairs_all(model, dtype, pairs)
        logits = np.stack([self._logits[(model.id, dtype, *p)] for p in pairs]).astype(np.float64)
        if multi_label or len(labels) == 1:
            two = logits[:, [contra, entail]]
            e = np.exp(two - two.max(axis=1, keepdims=True))
            scores = e[:, 1] / e.sum(axis=1)
        else:
            z = np.exp(logits[:, entail] - logits[:, entail].max())
            scores = z / z.sum()
        order = sorted(range(len(labels)), key=lambda i: -scores[i])  # a stable sort, as the pipeline's
        return [(labels[i], float(scores[i])) for i in order]

    async def cross_encoder_scores(
        self,
        model: ModelEntry,
        dtype: str,
        query: str,
        documents: list[str],
        *,
        on_progress: ProgressCallback | None = None,
    ) -> list[float]:
        pairs = [(query, d) for d in documents]
        self.pairs_all(model, dtype, pairs)
        return [float(self._logits[(model.id, dtype, *p)][0]) for p in pairs]


def _label2id(m: Loaded) -> dict[str, int]:
    """The model config's ``label2id``, keys lower-cased (as the pipeline reads them)."""
    config = json.loads((m.path.parent.parent / "config.json").read_text(encoding="utf-8"))
    return {str(k).lower(): int(v) for k, v in config.get("label2id", {}).items()}
