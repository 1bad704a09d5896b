"""The device's answers: the built ONNX file the browser loads, run by CPython's onnxruntime, greedy.

:func:`chat_models` lists the built on-device chat models (``$CACHE/models/index.json``, manifest task
``text-generation``) with their default dtype's file (what Transformers.js downloads); :class:`Generator`
decodes greedily with the KV cache (the chat template applied as text, then tokenized without special
tokens, as Transformers.js's text-generation pipeline does), stopping at the end-of-turn token or
``max_tokens``; :class:`AnswerCache` keeps every answer on disk, keyed by the model file's sha256, the
prompt and ``max_tokens``, so a re-run generates only what is new.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENERATE_TASK = "text-generation"


def cache_root() -> Path:
    """``$HYBRID_ROUTER_CACHE/eval`` (answers, embeddings and results of the harness)."""
    base = os.environ.get("HYBRID_ROUTER_CACHE") or str(Path.home() / ".cache" / "hybrid-router")
    return Path(base) / "eval"


@dataclass(frozen=True)
class ChatModel:
    """A built on-device chat model: its folder, the dtype the browser loads by default, that file."""

    id: str
    folder: Path
    dtype: str
    onnx: Path
    sha256: str


def _file_sha256(folder: Path, rel: str) -> str:
    stamp = folder.parent / f"{folder.name}.stamp.json"
    if stamp.is_file():
        files = json.loads(stamp.read_text(encoding="utf-8")).get("files", {})
        if rel in files:
            return str(files[rel]["sha256"])
    h = hashlib.sha256()
    with (folder / rel).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def chat_models(ids: Sequence[str] | None = None) -> list[ChatModel]:
    """The built chat models of the manifest (all, or ``ids``), in manifest order."""
    from builder.convert.recipe import onnx_file
    from builder.models import load_manifest, read_index

    index = read_index()
    out = []
    for entry in load_manifest().for_task(GENERATE_TASK):
        if (ids and entry.id not in ids) or entry.id not in index:
            continue
        folder = Path(index[entry.id]["dir"])
        dtype = str(index[entry.id].get("default_dtype") or entry.default_dtype)
        rel = onnx_file(dtype)
        if (folder / rel).is_file():
            out.append(ChatModel(entry.id, folder, dtype, folder / rel, _file_sha256(folder, rel)))
    return out


@dataclass(frozen=True)
class Answer:
    text: str
    tokens: int
    finish_reason: str  # "stop" (end of turn) or "length" (max_tokens reached)
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tokens": self.tokens,
            "finish_reason": self.finish_reason,
            "seconds": round(self.seconds, 3),
        }


def answer_key(model_sha256: str, prompt: str, max_tokens: int) -> str:
    return hashlib.sha256(f"{model_sha256}\0{max_tokens}\0{prompt}".encode()).hexdigest()


class AnswerCache:
    """Answers of one model file, one JSON line each (appended; the last line of a key wins)."""

    def __init__(self, model: ChatModel, root: Path | None = None) -> None:
        self.model = model
        self.path = (root or cache_root()) / "answers" / model.id / f"{model.sha256[:16]}.jsonl"
        self._rows: dict[str, Answer] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self._rows[row["key"]] = Answer(
                        row["text"], int(row["tokens"]), row["finish_reason"], float(row["seconds"])
                    )

    def get(self, prompt: str, max_tokens: int) -> Answer | None:
        return self._rows.get(answer_key(self.model.sha256, prompt, max_tokens))

    def put(self, prompt: str, max_tokens: int, answer: Answer) -> None:
        key = answer_key(self.model.sha256, prompt, max_tokens)
        self._rows[key] = answer
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "max_tokens": max_tokens, **answer.to_json()}) + "\n")


class Generator:
    """Greedy decoding of one chat model's ONNX file with its KV cache (onnxruntime, CPU)."""

    def __init__(self, model: ChatModel, threads: int = 1) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.model = model
        self.config = json.loads((model.folder / "config.json").read_text(encoding="utf-8"))
        gen = model.folder / "generation_config.json"
        eos = json.loads(gen.read_text(encoding="utf-8")).get("eos_token_id") if gen.is_file() else None
        eos = eos if eos is not None else self.config.get("eos_token_id")
        self.eos = set(eos if isinstance(eos, list) else [eos])
        self.tokenizer = AutoTokenizer.from_pretrained(str(model.folder))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.enable_cpu_mem_arena = False  # a batch's prefill logits are large: give them back
        self.session = ort.InferenceSession(str(model.onnx), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}
        self._outputs = [o.name for o in self.session.get_outputs()]

    def prompt_ids(self, prompt: str) -> list[int]:
        """The chat template applied as text, then tokenized without adding special tokens."""
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def tokens(self, prompt_ids: Sequence[int], max_tokens: int) -> Iterator[int]:
        """The greedy answer's token ids, one at a time (its end-of-sequence token included)."""
        for nxt, _ in self.steps(prompt_ids, max_tokens):
            yield nxt

    def steps(self, prompt_ids: Sequence[int], max_tokens: int) -> Iterator[tuple[int, Any]]:
        """Each greedy step's token id and the logits it was chosen from (the KV cache carried along)."""
        import numpy as np

        cfg = self.config
        n_kv = cfg.get("num_key_value_heads", cfg["num_attention_heads"])
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        past = {n: np.zeros((1, n_kv, 0, head_dim), np.float32) for n in self._inputs if n.startswith("past")}
        step, pos = list(prompt_ids), 0
        for _ in range(max_tokens):
            length = pos + len(step)
            feeds: dict[str, Any] = {
                "input_ids": np.array([step], np.int64),
                "attention_mask": np.ones((1, length), np.int64),
                **past,
            }
            if "position_ids" in self._inputs:
                feeds["position_ids"] = np.arange(pos, length, dtype=np.int64)[None]
            logits, *presents = self.session.run(None, feeds)
            past = {
                n.replace("present", "past_key_values"): v
                for n, v in zip(self._outputs[1:], presents, strict=True)
            }
            nxt = int(logits[0, -1].argmax())
            yield nxt, logits[0, -1]
            if nxt in self.eos:
                return
            pos, step = length, [nxt]

    def answer(self, prompt: str, max_tokens: int) -> Answer:
        """One prompt alone (what the browser does)."""
        t0 = time.perf_counter()
        out = list(self.tokens(self.prompt_ids(prompt), max_tokens))
        return self._answer(out, time.perf_counter() - t0)

    def _answer(self, out: list[int], seconds: float) -> Answer:
        stopped = bool(out) and out[-1] in self.eos
        text = self.tokenizer.decode(out, skip_special_tokens=True)
        return Answer(text, len(out), "stop" if stopped else "length", seconds)

    def answer_batch(self, prompts: Sequence[str], max_tokens: int) -> list[Answer]:
        """Several prompts at once, left-padded (masked), a row leaving the batch when it ends: about
        three times the throughput of one at a time on a CPU; the same greedy tokens up to float
        rounding at near-ties (``python -m eval.quality check-batch`` compares them)."""
        import numpy as np

        t0 = time.perf_counter()
        rows = [self.prompt_ids(p) for p in prompts]
        width = max(len(r) for r in rows)
        cfg = self.config
        n_kv = cfg.get("num_key_value_heads", cfg["num_attention_heads"])
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        mask = np.array([[0] * (width - len(r)) + [1] * len(r) for r in rows], np.int64)
        step = np.array([[0] * (width - len(r)) + r for r in rows], np.int64)
        past = {
            n: np.zeros((len(rows), n_kv, 0, head_dim), np.float32)
            for n in self._inputs
            if n.startswith("past")
        }
        live = list(range(len(rows)))  # the original index of each row still in the batch
        outs: list[list[int]] = [[] for _ in rows]
        positions = mask.cumsum(-1) - 1
        for _ in range(max_tokens):
            feeds: dict[str, Any] = {"input_ids": step, "attention_mask": mask, **past}
            if "position_ids" in self._inputs:
                feeds["position_ids"] = np.where(positions < 0, 1, positions)[:, -step.shape[1] :]
            logits, *presents = self.session.run(None, feeds)
            past = {
                n.replace("present", "past_key_values"): v
                for n, v in zip(self._outputs[1:], presents, strict=True)
            }
            nxt = logits[:, -1].argmax(-1)
            keep = []
            for j, token in enumerate(nxt.tolist()):
                outs[live[j]].append(int(token))
                if int(token) not in self.eos:
                    keep.append(j)
            if not keep:
                break
            if len(keep) < len(live):
                live = [live[j] for j in keep]
                nxt, mask, positions = nxt[keep], mask[keep], positions[keep]
                past = {n: v[keep] for n, v in past.items()}
            step = nxt[:, None].astype(np.int64)
            mask = np.concatenate([mask, np.ones((len(live), 1), np.int64)], axis=1)
            positions = np.concatenate([positions, positions[:, -1:] + 1], axis=1)
        seconds = (time.perf_counter() - t0) / len(rows)
        return [self._answer(o, seconds) for o in outs]
