"""What the work the device did would have cost in the cloud: the savings of every task.

The ledger counts every request; a device task's saving is what a cloud service would have charged for the
same work (:func:`cloud_equivalent_usd`), priced from :data:`TASK_PRICES`:

- embeddings (and the query or texts of a vector search): a cloud embedding API per token;
- speech to text: a hosted speech-to-text API per minute of audio;
- classification, zero-shot labels, entities, reranking: the configured cloud LLM's token prices for the
  same work done by prompting (an instruction, the text, a short answer), as an app without on-device
  models would do it.

Token counts are estimated from characters (about 4 a token for English text), as a cloud tokenizer is
not at hand on the device. The figures are list prices; the sources are in the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["TASK_PRICES", "Measure", "TaskPrice", "cloud_equivalent_usd", "measure"]


class Price(Protocol):
    def cost(self, tokens_in: int, tokens_out: int) -> float: ...


@dataclass(frozen=True, slots=True)
class TaskPrice:
    """How a task is priced: per million tokens or per minute of a dedicated API, or as an LLM prompt
    (``prompt_tokens`` of instruction + the text's tokens in, ``output_tokens`` (+ per item) out)."""

    source: str
    usd_per_mtok: float | None = None
    usd_per_minute: float | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    output_tokens_per_item: int = 0
    output_tokens_per_input_token: float = 0.0


_OPENAI = "OpenAI API list prices, https://openai.com/api/pricing/"
#: task -> how its cloud equivalent is priced
TASK_PRICES: Mapping[str, TaskPrice] = {
    "feature-extraction": TaskPrice(
        f"text-embedding-3-small at $0.02 per million tokens ({_OPENAI})", usd_per_mtok=0.02
    ),
    "vector-search": TaskPrice(
        f"text-embedding-3-small at $0.02 per million tokens ({_OPENAI})", usd_per_mtok=0.02
    ),
    "automatic-speech-recognition": TaskPrice(
        f"whisper-1 at $0.006 per minute ({_OPENAI})", usd_per_minute=0.006
    ),
    "text-classification": TaskPrice(
        "the configured cloud LLM prompted to label the text (a 60-token "
        "instruction, the text, a 3-token answer)",
        prompt_tokens=60,
        output_tokens=3,
    ),
    "zero-shot-classification": TaskPrice(
        "the configured cloud LLM prompted with the labels (an 80-token "
        "instruction, the text, 4 tokens a label out)",
        prompt_tokens=80,
        output_tokens_per_item=4,
    ),
    "token-classification": TaskPrice(
        "the configured cloud LLM prompted to list the entities (a 100-token "
        "instruction, the text; half as many tokens out)",
        prompt_tokens=100,
        output_tokens_per_input_token=0.5,
    ),
    "text-ranking": TaskPrice(
        "the configured cloud LLM prompted to rank the documents (an 80-token instruction, "
        "the query and the documents, 3 tokens a document out)",
        prompt_tokens=80,
        output_tokens_per_item=3,
    ),
}


@dataclass(frozen=True, slots=True)
class Measure:
    """The size of one request's work: characters of text, items (labels, documents), seconds of audio."""

    chars: int = 0
    items: int = 0
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return math.ceil(self.chars / 4)


def measure(request: Any) -> Measure:
    """The measure of a typed request (:mod:`hybrid_router.requests`, the index requests)."""
    texts: list[str] = []
    items = 0
    for name in ("texts", "text", "query"):
        value = getattr(request, name, None)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, tuple | list):
            texts.extend(v for v in value if isinstance(v, str))
    for name in ("labels", "documents"):
        value = getattr(request, name, None)
        if isinstance(value, tuple | list):
            texts.extend(v for v in value if isinstance(v, str))
            items += len(value)
    seconds = float(getattr(request, "seconds", 0.0) or 0.0)
    return Measure(sum(len(t) for t in texts), items, seconds)


def cloud_equivalent_usd(task: str, work: Measure, llm: Price) -> float:
    """What ``work`` of ``task`` would have cost in the cloud (0 for a task the table does not price)."""
    price = TASK_PRICES.get(task)
    if price is None:
        return 0.0
    if price.usd_per_mtok is not None:
        return work.tokens * price.usd_per_mtok / 1e6
    if price.usd_per_minute is not None:
        return work.seconds / 60.0 * price.usd_per_minute
    tokens_in = price.prompt_tokens + work.tokens
    tokens_out = (
        price.output_tokens
        + price.output_tokens_per_item * work.items
        + math.ceil(price.output_tokens_per_input_token * work.tokens)
    )
    return llm.cost(tokens_in, tokens_out)
