"""``LocalRuntime``: what the router needs from an on-device runtime, and nothing more.

The browser implementation is :mod:`hybrid_router.browser.transformers_js` (Transformers.js through
Pyodide); unit tests use a fake. The router is handed a runtime, it never imports one. Where a model runs
(WebGPU or wasm) is the routing's :class:`~hybrid_router.routing.devices.Devices`, which the runtime asks.

Contract of every method:

- it is async and cancellable: on ``asyncio.CancelledError`` it stops (aborting the JS side where it
  can) and re-raises;
- it loads the model on first use, reporting download events through ``on_progress`` (the
  Transformers.js union tagged by ``status``, with ``model`` and ``dtype`` keys added);
- it raises :class:`~hybrid_router.errors.ModelLoadError` when the model cannot be loaded and
  :class:`~hybrid_router.errors.InferenceError` when it fails while running; anything else it raises
  is wrapped as ``InferenceError`` by the caller.

Generation takes :class:`~hybrid_router.chat.ChatMessage` s; the runtime applies the model's chat
template. ``generate`` streams text pieces to ``on_text`` as they are decoded and returns
``{"text", "tokens_out", "finish_reason"}`` (``"stop"`` or ``"length"``), and optionally
``"tokens_cached"``: the prompt tokens served from the runtime's KV cache of the conversation's earlier
turns instead of being evaluated again (a follow-up turn evaluates only its new tokens; the answer is the
one a fresh evaluation of the whole conversation gives).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router.chat import ChatMessage
from hybrid_router.manifest import ModelEntry

__all__ = ["LocalRuntime", "ProgressCallback", "TextCallback"]

#: Receives one progress event (a plain dict) per call; must not block.
ProgressCallback = Callable[[dict[str, Any]], None]
#: Receives each piece of generated text as it is decoded; must not block.
TextCallback = Callable[[str], None]


class LocalRuntime(Protocol):
    """An on-device model runner."""

    async def feature_extraction(
        self,
        model: ModelEntry,
        dtype: str,
        texts: list[str],
        *,
        pooling: str,
        normalize: bool,
        on_progress: ProgressCallback | None = None,
    ) -> npt.NDArray[np.float32]:
        """One pooled embedding per text, in order: float32 of shape ``(len(texts), dims)``.

        ``pooling`` is ``"mean"`` or ``"cls"`` (from the manifest); ``dtype`` one of ``model.dtypes``.
        """
        ...

    async def count_chat_tokens(
        self,
        model: ModelEntry,
        dtype: str,
        messages: Sequence[ChatMessage],
        on_progress: ProgressCallback | None = None,
    ) -> int:
        """Tokens of ``messages`` as the model sees them: chat template applied, generation prompt added."""
        ...

    async def generate(
        self,
        model: ModelEntry,
        dtype: str,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int,
        temperature: float,
        on_text: TextCallback | None = None,
        on_progress: ProgressCallback | None = None,
        schema: Any = None,
        logprobs: list[float] | None = None,
    ) -> dict[str, Any]:
        """A chat completion (greedy when ``temperature`` is 0), streaming pieces to ``on_text``; with
        ``schema`` (a :class:`~hybrid_router.structured.Schema`) decoding is constrained to it, so the
        answer is one JSON value that matches it (unless ``max_new_tokens`` cut it short). ``logprobs``:
        a list the runtime appends each generated token's log-probability to as it is chosen (the cascade's
        score, :mod:`hybrid_router.routing.cascade`; passed only when the policy verifies).

        Returns ``{"text": str, "tokens_out": int, "finish_reason": "stop" | "length"}`` (and optionally
        ``"tokens_cached": int``, see the module docstring); cancelling the task interrupts generation at
        the next token and re-raises.
        """
        ...

    async def transcribe(
        self,
        model: ModelEntry,
        dtype: str,
        audio: npt.NDArray[np.float32],
        *,
        on_progress: ProgressCallback | None = None,
    ) -> str:
        """The text spoken in ``audio`` (16 kHz mono float32 samples, any length: long audio is chunked)."""
        ...

    async def text_classification(
        self,
        model: ModelEntry,
        dtype: str,
        texts: list[str],
        *,
        on_progress: ProgressCallback | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Per text, every label of the classifier with its probability (softmax of the logits)."""
        ...

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
        """Each candidate label with its score, by an NLI model (Transformers.js's zero-shot pipeline)."""
        ...

    async def token_classification(
        self,
        model: ModelEntry,
        dtype: str,
        text: str,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> list[dict[str, Any]]:
        """Every word piece of ``text`` in order (special tokens excluded): ``{"word", "entity", "score",
        "index"}``, ``word`` as the tokenizer spells the piece (``##`` marks a continuation)."""
        ...

    async def cross_encoder_scores(
        self,
        model: ModelEntry,
        dtype: str,
        query: str,
        documents: list[str],
        *,
        on_progress: ProgressCallback | None = None,
    ) -> list[float]:
        """One relevance logit per (query, document) pair, in the order of ``documents``."""
        ...
