"""``Router``: the public Python API, built from a runtime and a manifest; ``handlers()`` for the worker.

The worker glue does ``Dispatcher(router.handlers(), send)``: each wire method maps to one router
method, whose params are checked here (unknown keys are refused so a misspelt option is not ignored).

Wire methods: ``embed``, ``generate`` and ``stream`` (params ``prompt`` | ``messages``, ``max_tokens``,
``temperature``, ``route``; ``stream`` sends each ``{"delta"}`` as a chunk and returns the final
``{"done": true, "route", "usage", "finish_reason"}``), ``stats``, ``configure`` (policy fields, see
:class:`~hybrid_router.routing.Policy`), ``info``, ``transcribe`` (``audio`` samples at ``sampling_rate``
or ``wav`` bytes) and the vector index methods ``index_open``, ``index_add``, ``index_search``,
``index_remove``, ``index_drop``, ``index_list`` (:mod:`hybrid_router.vector_index`), and the task models'
``classify`` (``text``, ``labels`` for zero-shot, ``model``), ``ner`` (``text``) and ``rerank`` (``query``,
``documents``, ``top_k``) (:mod:`hybrid_router.tasks`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from typing import Any, cast

from hybrid_router import audio, embeddings, generation, similarity, tasks, transcription, validation
from hybrid_router.chat import PARAMS
from hybrid_router.embeddings import EmbedResult
from hybrid_router.errors import ValidationError
from hybrid_router.generation import GenerateResult
from hybrid_router.ledger import Ledger
from hybrid_router.local.runtime import LocalRuntime, ProgressCallback
from hybrid_router.manifest import Manifest
from hybrid_router.model_manager import ModelManager
from hybrid_router.protocol import CallContext, Handler
from hybrid_router.providers.base import CloudProvider
from hybrid_router.routing import TIERS, Policy
from hybrid_router.transcription import TranscribeResult
from hybrid_router.vector_index import Indexes, IndexStore, MemoryIndexStore

__all__ = ["POLICY_FIELDS", "Router"]

#: What ``configure`` may change: the fields of :class:`~hybrid_router.routing.Policy`.
POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(Policy))


class Router:
    """Routes each call to the device or the cloud and records why in its ``Route``.

    ``cloud`` is the configured provider (None: the device only); ``cloud_label`` how the page names
    it (e.g. "llama-server on this machine, the default cloud tier"). ``ledger`` defaults to one priced
    with the manifest's ``cloud_prices`` and the cloud's model. ``models`` adds model management (preload,
    the model cache, capabilities, recommendations: :mod:`hybrid_router.model_manager`) and fills
    ``route.device`` of local results with where the model ran.
    """

    def __init__(
        self,
        runtime: LocalRuntime,
        manifest: Manifest,
        *,
        cloud: CloudProvider | None = None,
        cloud_label: str | None = None,
        policy: Policy | None = None,
        ledger: Ledger | None = None,
        clock: Callable[[], float] = time.perf_counter,
        models: ModelManager | None = None,
        index_store: IndexStore | None = None,
    ) -> None:
        self.models = models
        self.runtime = runtime
        self.manifest = manifest
        self.cloud = cloud
        self.cloud_label = cloud_label
        self.policy = policy if policy is not None else Policy()
        self.ledger = ledger if ledger is not None else Ledger(manifest, cloud_model=_model_of(cloud))
        self._clock = clock
        #: named vector indexes over this router's embeddings (in memory unless a store is given)
        self.indexes = Indexes(
            index_store if index_store is not None else MemoryIndexStore(),
            self.embed,
            default_model=lambda: embeddings.embedding_model(self.manifest).id,
            clock=clock,
        )

    async def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dtype: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> EmbedResult:
        """Unit-norm embeddings of ``texts``, computed on the device (see :mod:`hybrid_router.embeddings`)."""
        return await embeddings.embed(
            self.runtime,
            self.manifest,
            texts,
            model_id=model,
            dtype=dtype,
            on_progress=on_progress,
            clock=self._clock,
        )

    async def transcribe(
        self,
        audio: object,
        *,
        sampling_rate: int = 16_000,
        model: str | None = None,
        dtype: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> TranscribeResult:
        """The text spoken in ``audio`` (WAV bytes, or float samples at ``sampling_rate``), on the device
        (see :mod:`hybrid_router.transcription`)."""
        return await transcription.transcribe(
            self.runtime,
            self.manifest,
            audio,
            sampling_rate=sampling_rate,
            model_id=model,
            dtype=dtype,
            on_progress=on_progress,
            clock=self._clock,
        )

    async def generate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[dict[str, str]] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        route: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GenerateResult:
        """The answer to ``prompt`` or ``messages``, routed (see :mod:`hybrid_router.generation`)."""
        params = _params(prompt, messages, max_tokens, temperature, route)
        return await generation.generate(params, on_progress=on_progress, **self._generation_kwargs())

    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[dict[str, str]] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        route: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """``{"delta"}`` items, then ``{"done": True, "route", "usage", "finish_reason"}``; close it
        (``contextlib.aclosing``) when stopping early."""
        params = _params(prompt, messages, max_tokens, temperature, route)
        return generation.stream(params, on_progress=on_progress, **self._generation_kwargs())

    def stats(self) -> dict[str, Any]:
        """The ledger's counters (see :mod:`hybrid_router.ledger`)."""
        return self.ledger.stats()

    def configure(self, **changes: Any) -> Policy:
        """Change policy fields (checked together; nothing changes if the result is refused)."""
        validation.known_keys(changes, POLICY_FIELDS, where="configure")
        self.policy = self.policy.replace(**changes)
        return self.policy

    def info(self) -> dict[str, Any]:
        """The version, the models, the cloud and the policy, as plain data."""
        from hybrid_router import __version__  # the package imports this module: read it at call time

        cloud = None
        if self.cloud is not None:
            label = self.cloud_label or f"{self.cloud.name} ({self.cloud.model})"
            cloud = {"kind": self.cloud.name, "model": self.cloud.model, "label": label}
        return {
            "version": __version__,
            "models": [
                {
                    "id": m.id,
                    "tasks": list(m.tasks),
                    "context_length": m.context_length,
                    "default_dtype": m.default_dtype,
                    "dtypes": list(m.dtypes),
                    "memory_mb": m.memory_mb,
                    "min_device": m.min_device,
                }
                for m in self.manifest.models
            ],
            "cloud": cloud,
            "policy": self.policy.to_wire(),
            "tiers": {name: rules.summary for name, rules in TIERS.items()},
        }

    def handlers(self) -> dict[str, Handler]:
        """The wire methods, for :class:`~hybrid_router.protocol.Dispatcher`."""
        if self.models is None:
            return self._task_handlers()
        models = self.models

        def annotated(handler: Handler) -> Handler:
            async def run(params: dict[str, Any], ctx: CallContext) -> Any:
                return models.annotate(await handler(params, ctx))
            return run

        return {**{k: annotated(h) for k, h in self._task_handlers().items()}, **models.handlers()}

    def _task_handlers(self) -> dict[str, Handler]:
        return {
            "configure": self._handle_configure,
            "embed": self._handle_embed,
            "generate": self._handle_generate,
            "info": self._handle_info,
            "stats": self._handle_stats,
            "stream": self._handle_stream,
            "transcribe": self._handle_transcribe,
            "classify": self._handle_classify,
            "ner": self._handle_ner,
            "rerank": self._handle_rerank,
            **self.indexes.handlers(),
        }

    def _generation_kwargs(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "manifest": self.manifest,
            "cloud": self.cloud,
            "policy": self.policy,
            "ledger": self.ledger,
            "clock": self._clock,
        }

    async def _handle_embed(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        validation.known_keys(params, ("texts", "model", "dtype"), where="embed")
        result = await self.embed(
            cast(Sequence[str], params.get("texts")),  # embed checks it at run time
            model=params.get("model"),
            dtype=params.get("dtype"),
            on_progress=ctx.progress,
        )
        return result.to_wire()

    async def classify(self, text: str, *, labels: Sequence[str] | None = None, model: str | None = None,
                       dtype: str | None = None, multi_label: bool = False,
                       hypothesis_template: str | None = None, examples: Any = None,
                       on_progress: ProgressCallback | None = None) -> tasks.ClassifyResult:
        """The labels of ``text``, best first: the classifier's; zero-shot over ``labels`` (by the NLI
        model, or by embedding similarity where none is installed); few-shot by ``examples`` centroids."""
        if examples is not None:
            return await similarity.classify_by_examples(
                self.runtime, self.manifest, validation.text(text), examples, on_progress=on_progress,
                clock=self._clock)
        if labels is not None and model is None and not self.manifest.for_task(tasks.ZERO_SHOT):
            return await similarity.classify_by_labels(
                self.runtime, self.manifest, validation.text(text), labels, on_progress=on_progress,
                clock=self._clock)
        return await tasks.classify(self.runtime, self.manifest, text, labels=labels, model_id=model,
                                    dtype=dtype, multi_label=multi_label,
                                    hypothesis_template=hypothesis_template, on_progress=on_progress,
                                    clock=self._clock)

    async def ner(self, text: str, *, model: str | None = None, dtype: str | None = None,
                  on_progress: ProgressCallback | None = None) -> tasks.NerResult:
        """The named entities of ``text`` with their character offsets."""
        return await tasks.ner(self.runtime, self.manifest, text, model_id=model, dtype=dtype,
                               on_progress=on_progress, clock=self._clock)

    async def rerank(self, query: str, documents: Sequence[str], *, top_k: int | None = None,
                     model: str | None = None, dtype: str | None = None,
                     on_progress: ProgressCallback | None = None) -> tasks.RerankResult:
        """``documents`` ordered by relevance to ``query`` (the best ``top_k``): by the cross-encoder, or
        by embedding similarity where none is installed or ``model`` names an embedding model."""
        by_embedding = model in {m.id for m in self.manifest.for_task(embeddings.TASK)} - {
            m.id for m in self.manifest.for_task(tasks.RERANK)}
        if by_embedding or (model is None and not self.manifest.for_task(tasks.RERANK)):
            return await similarity.rerank_by_similarity(
                self.runtime, self.manifest, validation.text(query, "query"), documents, top_k,
                model_id=model, dtype=dtype, on_progress=on_progress, clock=self._clock)
        return await tasks.rerank(self.runtime, self.manifest, query, documents, top_k=top_k, model_id=model,
                                  dtype=dtype, on_progress=on_progress, clock=self._clock)

    async def _handle_classify(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        allowed = ("text", "labels", "model", "dtype", "multi_label", "hypothesis_template", "examples")
        validation.known_keys(params, allowed, where="classify")
        result = await self.classify(params.get("text"), labels=params.get("labels"),  # type: ignore[arg-type]
                                     examples=params.get("examples"),
                                     model=params.get("model"), dtype=params.get("dtype"),
                                     multi_label=bool(params.get("multi_label", False)),
                                     hypothesis_template=params.get("hypothesis_template"),
                                     on_progress=ctx.progress)
        return result.to_wire()

    async def _handle_ner(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        validation.known_keys(params, ("text", "model", "dtype"), where="ner")
        result = await self.ner(params.get("text"), model=params.get("model"),  # type: ignore[arg-type]
                                dtype=params.get("dtype"), on_progress=ctx.progress)
        return result.to_wire()

    async def _handle_rerank(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        validation.known_keys(params, ("query", "documents", "top_k", "model", "dtype"), where="rerank")
        result = await self.rerank(params.get("query"), params.get("documents"),  # type: ignore[arg-type]
                                   top_k=params.get("top_k"), model=params.get("model"),
                                   dtype=params.get("dtype"), on_progress=ctx.progress)
        return result.to_wire()

    async def _handle_transcribe(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """``audio`` (float samples at ``sampling_rate``, default 16000) or ``wav`` (a WAV file's bytes)."""
        validation.known_keys(params, ("audio", "wav", "sampling_rate", "model", "dtype"), where="transcribe")
        given = [key for key in ("audio", "wav") if params.get(key) is not None]
        if len(given) != 1:
            raise ValidationError(
                "transcribe needs exactly one of audio (samples) and wav (a WAV file), got "
                + (" and ".join(given) or "neither"),
                hint="Pass a Float32Array of 16 kHz mono samples, or a WAV Blob/File.",
                field="audio",
            )
        if given == ["wav"] and not audio.is_wav_bytes(params["wav"]):
            raise ValidationError(
                f"wav must be the bytes of a WAV file, got {validation.type_name(params['wav'])}",
                hint="Pass the file as an ArrayBuffer or Uint8Array (the client does this for a Blob).",
                field="wav",
            )
        result = await self.transcribe(
            params[given[0]],
            sampling_rate=params.get("sampling_rate", audio.SAMPLE_RATE),
            model=params.get("model"),
            dtype=params.get("dtype"),
            on_progress=ctx.progress,
        )
        return result.to_wire()

    async def _handle_generate(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        # The params go to generation unchanged: it checks them (and records a bad call in the ledger).
        result = await generation.generate(params, on_progress=ctx.progress, **self._generation_kwargs())
        return result.to_wire()

    async def _handle_stream(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        final: dict[str, Any] = {}
        chunks = generation.stream(params, on_progress=ctx.progress, **self._generation_kwargs())
        async with aclosing(chunks) as items:
            async for item in items:
                if item.get("done"):
                    final = item
                else:
                    ctx.chunk(item)
        return final

    async def _handle_stats(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        validation.known_keys(params, (), where="stats")
        return self.stats()

    async def _handle_configure(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        return {"policy": self.configure(**params).to_wire()}

    async def _handle_info(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        validation.known_keys(params, (), where="info")
        return self.info()


def _model_of(cloud: CloudProvider | None) -> str | None:
    return cloud.model if cloud is not None else None


def _params(
    prompt: object, messages: object, max_tokens: object, temperature: object, route: object
) -> dict[str, Any]:
    values = (prompt, messages, max_tokens, temperature, route)
    return {key: value for key, value in zip(PARAMS, values, strict=True) if value is not None}
