"""``Router``: the public Python API, one typed call per concept, built from a runtime and a manifest.

Every call follows the same path: its request is checked once (a typed request from
:mod:`hybrid_router.requests` or :class:`~hybrid_router.chat.ChatRequest`; from Python the same keyword
arguments are accepted and parsed here), the routing makes a plan (:mod:`hybrid_router.planner`,
:mod:`hybrid_router.routing`), the executor carries it out (:mod:`hybrid_router.execute`), and the
result carries its route. The worker's wire methods map onto these calls in :mod:`hybrid_router.wire`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router import embeddings, savings, sides, similarity, text_tasks, transcription, validation
from hybrid_router.capabilities import Capabilities
from hybrid_router.chat import ChatRequest, GenerateResult
from hybrid_router.embeddings import EmbedResult
from hybrid_router.errors import ValidationError
from hybrid_router.execute import Executor, Outcome
from hybrid_router.ledger import Ledger
from hybrid_router.manifest import Manifest
from hybrid_router.model_manager import ModelManager
from hybrid_router.planner import Planner
from hybrid_router.providers.base import CloudProvider
from hybrid_router.redaction import StreamRestorer, restore, summary
from hybrid_router.requests import ClassifyRequest, EmbedRequest, NerRequest, RerankRequest, TranscribeRequest
from hybrid_router.response_cache import ResponseCache, Use, cache_key, replay_pieces, skip_reason
from hybrid_router.routing import (
    ASR,
    CLASSIFY,
    EMBED,
    GENERATE,
    NER,
    RERANK,
    SEARCH,
    TIERS,
    ZERO_SHOT,
    Devices,
    Policy,
    Step,
    cascade,
    choose,
    classify_plan,
    rerank_plan,
    single,
)
from hybrid_router.routing.recommend import choose_chat_model
from hybrid_router.runtime import LocalRuntime, ProgressCallback
from hybrid_router.sides import Output
from hybrid_router.structured import prompts
from hybrid_router.structured.request import ObjectRequest, ObjectResult
from hybrid_router.structured.steps import Answered, PartialCallback, answer_object
from hybrid_router.text_tasks import ClassifyResult, NerResult, RerankResult
from hybrid_router.tools import ToolCall
from hybrid_router.transcription import TranscribeResult
from hybrid_router.vector_index import IndexAdd, Indexes, IndexSearch, IndexStore, MemoryIndexStore

__all__ = ["Router"]

#: the tasks a dry run may be asked about
TASK_NAMES = (EMBED, ASR, CLASSIFY, ZERO_SHOT, NER, RERANK, SEARCH, GENERATE)


def _restored_call(call: ToolCall, mapping: Mapping[str, str]) -> ToolCall:
    """``call`` with the placeholders in its arguments' strings replaced by the originals."""

    def back(value: Any) -> Any:
        if isinstance(value, str):
            return restore(value, mapping)
        if isinstance(value, Mapping):
            return {k: back(v) for k, v in value.items()}
        if isinstance(value, list):
            return [back(v) for v in value]
        return value

    return dataclasses.replace(call, arguments=back(call.arguments))


async def _restored(
    pieces: AsyncGenerator[str | Output, None], mapping: Mapping[str, str]
) -> AsyncGenerator[str | Output, None]:
    """A cloud stream that saw placeholders, with the originals put back (a placeholder may be split
    between two pieces: it is held until it is whole)."""
    restorer = StreamRestorer(mapping)
    async with aclosing(pieces) as items:
        async for item in items:
            if isinstance(item, Output):
                if tail := restorer.flush():
                    yield tail
                yield dataclasses.replace(item, text=restore(item.text, mapping))
            elif text := restorer.feed(item):
                yield text


V = TypeVar("V")
#: a step's runner: (runtime, model, dtype, request, on_progress) -> value
Runner = Callable[..., Awaitable[V]]

_CLASSIFIERS: dict[str, Runner[list[tuple[str, float]]]] = {
    "classifier": text_tasks.classifier_labels,
    "zero-shot": text_tasks.zero_shot_labels,
    "similarity": similarity.label_similarity,
    "examples": similarity.example_labels,
}
_RANKERS: dict[str, Runner[list[tuple[int, float, str]]]] = {
    "cross-encoder": text_tasks.cross_encoder_ranking,
    "bi-encoder": similarity.similarity_ranking,
}


class Router:
    """Routes each call to the device or the cloud and records why in its ``Route``.

    ``cloud`` is the configured provider (None: the device only); ``cloud_label`` how the page names
    it; ``cloud_note`` why there is none (e.g. the default cloud tier is still starting). ``ledger``
    defaults to one priced with the manifest's ``cloud_prices`` and the cloud's model. ``models`` adds model
    management (:mod:`hybrid_router.model_manager`); ``devices`` says where each model runs (default: wasm,
    as on a device without a real GPU).
    """

    def __init__(
        self,
        runtime: LocalRuntime,
        manifest: Manifest,
        *,
        cloud: CloudProvider | None = None,
        cloud_label: str | None = None,
        cloud_note: str | None = None,
        policy: Policy | None = None,
        ledger: Ledger | None = None,
        clock: Callable[[], float] = time.perf_counter,
        models: ModelManager | None = None,
        devices: Devices | None = None,
        index_store: IndexStore | None = None,
        response_cache: ResponseCache | None = None,
    ) -> None:
        self.runtime = runtime
        self.manifest = manifest
        self.models = models
        self.cloud = cloud
        self.cloud_label = cloud_label
        self.policy = policy if policy is not None else Policy()
        self.ledger = (
            ledger if ledger is not None else Ledger(manifest, cloud_model=cloud.model if cloud else None)
        )
        self.devices = devices or (models.devices if models is not None else None) or Devices(Capabilities())
        self.clock = clock
        self.planner = Planner(
            runtime,
            manifest,
            cloud,
            clock=clock,
            cloud_note=cloud_note,
            caps=models.caps if models is not None else self.devices.caps,
            cached=models.cached if models is not None else None,
        )
        self.executor = Executor(
            self.ledger, self.devices, cloud_name=cloud.name if cloud else None, clock=clock
        )
        self.executor.on_cloud = self.planner.cloud_outcome
        self.executor.on_cloud_usage = self.planner.cloud_usage
        #: named vector indexes over this router's embeddings (in memory unless a store is given)
        self.indexes = Indexes(
            index_store if index_store is not None else MemoryIndexStore(),
            self._vectors,
            default_model=lambda: choose(self.manifest, EMBED).id,
        )
        #: the semantic response cache of generations (None: off; :mod:`hybrid_router.response_cache`)
        self.response_cache = response_cache

    # -- device tasks ----------------------------------------------------------------------------------

    async def embed(
        self,
        request: EmbedRequest | Sequence[str],
        *,
        model: str | None = None,
        dtype: str | None = None,
        on_progress: ProgressCallback | None = None,
        policy: Policy | Mapping[str, Any] | None = None,
    ) -> EmbedResult:
        """Unit-norm embeddings of the texts, computed on the device."""
        req = (
            request
            if isinstance(request, EmbedRequest)
            else EmbedRequest.parse(request, model=model, dtype=dtype)
        )
        plan = self.planner.local(
            EMBED, single(self.manifest, EMBED, req.model), self.policy_for(policy), dtype=req.dtype
        )
        rows, route = await self.executor.run(
            plan,
            self._step(lambda r, e, d, q, p: embeddings.vectors(r, e, d, q.texts, p), req, on_progress),
            what=f"{len(req.texts)} text(s)",
            saved_usd=self._saved(EMBED, req),
        )
        return EmbedResult(rows, int(rows.shape[1]), route.model or "", route.dtype or "", route)

    async def classify(
        self,
        request: ClassifyRequest | str,
        *,
        labels: Sequence[str] | None = None,
        examples: Any = None,
        model: str | None = None,
        dtype: str | None = None,
        multi_label: bool = False,
        hypothesis_template: str | None = None,
        on_progress: ProgressCallback | None = None,
        policy: Policy | Mapping[str, Any] | None = None,
    ) -> ClassifyResult:
        """The labels of the text, best first: the classifier's; zero-shot over ``labels`` (by embedding
        similarity, measured the better method; by the NLI model where ``model`` names it, or where the
        embedding model fails); few-shot by ``examples``."""
        req = (
            request
            if isinstance(request, ClassifyRequest)
            else ClassifyRequest.parse(
                request,
                labels=labels,
                examples=examples,
                model=model,
                dtype=dtype,
                multi_label=multi_label,
                hypothesis_template=hypothesis_template,
            )
        )
        methods = classify_plan(
            self.manifest, labels=req.labels is not None, examples=req.example_count, model_id=req.model
        )
        plan = self.planner.local(CLASSIFY, methods, self.policy_for(policy), dtype=req.dtype)
        what = f"1 text and {len(req.labels)} labels" if req.labels else "1 text"
        scored, route = await self.executor.run(
            plan,
            self._by_method(_CLASSIFIERS, req, on_progress),
            what=what,
            saved_usd=self._saved(ZERO_SHOT if req.labels else CLASSIFY, req),
        )
        return ClassifyResult(scored, route.model or "", route.dtype or "", route)

    async def ner(
        self,
        request: NerRequest | str,
        *,
        model: str | None = None,
        dtype: str | None = None,
        on_progress: ProgressCallback | None = None,
        policy: Policy | Mapping[str, Any] | None = None,
    ) -> NerResult:
        """The named entities of the text with their character offsets."""
        req = (
            request
            if isinstance(request, NerRequest)
            else NerRequest.parse(request, model=model, dtype=dtype)
        )
        plan = self.planner.local(
            NER, single(self.manifest, NER, req.model), self.policy_for(policy), dtype=req.dtype
        )
        found, route = await self.executor.run(
            plan,
            self._step(text_tasks.entities, req, on_progress),
            what="1 text",
            saved_usd=self._saved(NER, req),
        )
        return NerResult(found, route.model or "", route.dtype or "", route)

    async def rerank(
        self,
        request: RerankRequest | str,
        documents: Sequence[str] | None = None,
        *,
        top_k: int | None = None,
        model: str | None = None,
        dtype: str | None = None,
        on_progress: ProgressCallback | None = None,
        policy: Policy | Mapping[str, Any] | None = None,
    ) -> RerankResult:
        """The documents ordered by relevance to the query (the best ``top_k``): by the cross-encoder, or
        by embedding similarity where none is installed, it fails, or ``model`` names an embedding model."""
        req = (
            request
            if isinstance(request, RerankRequest)
            else RerankRequest.parse(request, documents, top_k=top_k, model=model, dtype=dtype)
        )
        plan = self.planner.local(
            RERANK, rerank_plan(self.manifest, model_id=req.model), self.policy_for(policy), dtype=req.dtype
        )
        ranked, route = await self.executor.run(
            plan,
            self._by_method(_RANKERS, req, on_progress),
            what=f"{len(req.documents)} documents",
            saved_usd=self._saved(RERANK, req),
        )
        return RerankResult(ranked, route.model or "", route.dtype or "", route)

    async def transcribe(
        self,
        request: TranscribeRequest | object,
        *,
        sampling_rate: object = 16_000,
        model: str | None = None,
        dtype: str | None = None,
        on_progress: ProgressCallback | None = None,
        policy: Policy | Mapping[str, Any] | None = None,
    ) -> TranscribeResult:
        """The text spoken in the audio (WAV bytes, or float samples at ``sampling_rate``), on the device."""
        req = (
            request
            if isinstance(request, TranscribeRequest)
            else TranscribeRequest.parse(request, sampling_rate=sampling_rate, model=model, dtype=dtype)
        )
        plan = self.planner.local(
            ASR, single(self.manifest, ASR, req.model), self.policy_for(policy), dtype=req.dtype
        )
        text, route = await self.executor.run(
            plan,
            self._step(transcription.text_of, req, on_progress),
            what=f"{req.seconds:.1f} s of audio",
            saved_usd=self._saved(ASR, req),
        )
        return TranscribeResult(text, route.model or "", route.dtype or "", req.seconds, route)

    # -- generation ------------------------------------------------------------------------------------

    async def generate(
        self,
        request: ChatRequest | str | None = None,
        *,
        messages: object = None,
        max_tokens: object = None,
        temperature: object = None,
        route: object = None,
        model: object = None,
        tools: object = None,
        tool_choice: object = None,
        on_progress: ProgressCallback | None = None,
        policy: Policy | Mapping[str, Any] | None = None,
        cache: object = None,
    ) -> GenerateResult:
        """The answer to a prompt or a conversation, routed; every request is recorded in the ledger (an
        answer from the response cache is counted in ``stats()["cache"]`` instead). ``cache=False``: this
        call neither reads nor fills the response cache. ``tools``: the cloud answers, and the result's
        ``tool_calls`` holds the calls its model made (:mod:`hybrid_router.tools`)."""
        started = self.clock()
        with self.executor.counted(GENERATE):
            req = (
                request
                if isinstance(request, ChatRequest)
                else ChatRequest.parse(
                    request,
                    messages=messages,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    route=route,
                    model=model,
                    tools=tools,
                    tool_choice=tool_choice,
                )
            )
            pol = self.policy_for(policy)
            use = await self._cache_lookup(req, pol, cache)
            if use is not None and use.hit is not None:
                assert self.response_cache is not None
                hit_route = self.response_cache.answer(
                    use.hit, ms=(self.clock() - started) * 1000.0, cost=self.ledger.cost
                )
                return GenerateResult(use.hit.entry.text, hit_route, use.hit.entry.finish_reason)
            plan = await self.planner.generation(req, pol, self.ledger, on_progress)
        check = cascade.check_for(plan, pol, cloud_configured=self.cloud is not None)

        async def attempt(step: Step) -> Outcome[Output]:
            sent = plan.redacted if step.target == "cloud" and plan.redacted is not None else req
            scored: list[float] | None = [] if check is not None and step is plan.first else None
            out = await sides.answer(
                step,
                sent,
                plan.tokens_in,
                runtime=self.runtime,
                cloud=self.cloud,
                on_progress=on_progress,
                logprobs=scored,
            )
            if check is not None and scored is not None:  # below the threshold: the cloud answers
                check.judge(scored, out.tokens_out, out.model)
            if sent is not req:  # the cloud saw placeholders: the caller gets the originals back
                out = dataclasses.replace(
                    out,
                    text=restore(out.text, plan.restore),
                    tool_calls=tuple(_restored_call(c, plan.restore) for c in out.tool_calls),
                )
            return Outcome(
                out, out.model, out.tokens_in, out.tokens_out, out.finish_reason, out.tokens_cached
            )

        output, routed = await self.executor.run(plan, attempt, started=started)
        if check is not None:
            routed = check.stamp(routed)
        calls = output.tool_calls if req.tools else None
        result = GenerateResult(output.text, routed, output.finish_reason, calls)
        if use is not None:
            await self._cache_keep(use, req, result)
        return result

    async def stream(
        self,
        request: ChatRequest | str | None = None,
        *,
        messages: object = None,
        max_tokens: object = None,
        temperature: object = None,
        route: object = None,
        model: object = None,
        on_progress: ProgressCallback | None = None,
        policy: Policy | Mapping[str, Any] | None = None,
        cache: object = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """``{"delta"}`` items, then ``{"done": True, "route", "usage", "finish_reason"}``; close it
        (``contextlib.aclosing``) when stopping early: the request is cancelled. An answer from the
        response cache is replayed in the same shape (``cache``: as :meth:`generate`'s)."""
        started = self.clock()
        with self.executor.counted(GENERATE):
            req = (
                request
                if isinstance(request, ChatRequest)
                else ChatRequest.parse(
                    request,
                    messages=messages,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    route=route,
                    model=model,
                )
            )
            if req.tools:
                raise ValidationError(
                    "stream does not take tools: a tool call is answered whole",
                    hint="Call generate({ ..., tools }) for calls with tools, then stream the final answer "
                    "(without tools) if you want it in pieces.",
                    field="tools",
                )
            pol = self.policy_for(policy)
            use = await self._cache_lookup(req, pol, cache)
            if use is None or use.hit is None:
                plan = await self.planner.generation(req, pol, self.ledger, on_progress)
        if use is not None and use.hit is not None:
            assert self.response_cache is not None
            hit_route = self.response_cache.answer(
                use.hit, ms=(self.clock() - started) * 1000.0, cost=self.ledger.cost
            )
            for piece in replay_pieces(use.hit.entry.text):
                yield {"delta": piece}
            replayed = GenerateResult(use.hit.entry.text, hit_route, use.hit.entry.finish_reason).to_wire()
            yield {"done": True, **{k: replayed[k] for k in ("route", "usage", "finish_reason")}}
            return

        def pieces(step: Step) -> AsyncGenerator[str | Output, None]:
            if step.target == "cloud" and plan.redacted is not None:
                return _restored(
                    sides.pieces(
                        step,
                        plan.redacted,
                        plan.tokens_in,
                        runtime=self.runtime,
                        cloud=self.cloud,
                        on_progress=on_progress,
                    ),
                    plan.restore,
                )
            if check is not None and step is plan.first:  # the cascade: shown once its prefix scores
                scored: list[float] = []
                local = sides.pieces(
                    step,
                    req,
                    plan.tokens_in,
                    runtime=self.runtime,
                    cloud=self.cloud,
                    on_progress=on_progress,
                    logprobs=scored,
                )
                return cascade.verified_pieces(local, scored, check, Output)
            return sides.pieces(
                step, req, plan.tokens_in, runtime=self.runtime, cloud=self.cloud, on_progress=on_progress
            )

        check = cascade.check_for(plan, pol, cloud_configured=self.cloud is not None)
        final: dict[str, Any] = {}
        async with aclosing(self.executor.stream(plan, pieces, started=started)) as items:
            async for item in items:
                if isinstance(item, str):
                    yield {"delta": item}
                else:
                    output, routed = item
                    if check is not None:
                        routed = check.stamp(routed)
                    answered = GenerateResult(output.text, routed, output.finish_reason)
                    final = answered.to_wire()
        if use is not None:
            await self._cache_keep(use, req, answered)
        yield {
            "done": True,
            "route": final["route"],
            "usage": final["usage"],
            "finish_reason": final["finish_reason"],
        }

    # -- structured output -----------------------------------------------------------------------------

    async def generate_object(
        self,
        request: ObjectRequest | str | None = None,
        *,
        messages: object = None,
        schema: object = None,
        max_tokens: object = None,
        temperature: object = None,
        route: object = None,
        on_progress: ProgressCallback | None = None,
        policy: Policy | Mapping[str, Any] | None = None,
        on_partial: PartialCallback | None = None,
    ) -> ObjectResult:
        """A JSON value that matches ``schema`` (:mod:`hybrid_router.structured`), routed like a
        generation: the device decodes under the schema's constraint, the cloud is sent it as
        ``response_format``; every answer is validated, with one repair round; a device answer that still
        fails falls back to the cloud on route ``"auto"``. ``on_partial`` receives partial values."""
        started = self.clock()
        with self.executor.counted(GENERATE):
            req = (
                request
                if isinstance(request, ObjectRequest)
                else ObjectRequest.parse(
                    request,
                    messages=messages,
                    schema=schema,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    route=route,
                )
            )
            chat = dataclasses.replace(req.chat, messages=prompts.instructed(req.chat.messages, req.schema))
            plan = await self.planner.generation(chat, self.policy_for(policy), self.ledger, on_progress)

        async def attempt(step: Step) -> Outcome[Answered]:
            return await answer_object(
                step,
                chat,
                req.schema,
                tokens_in=plan.tokens_in,
                runtime=self.runtime,
                cloud=self.cloud,
                redacted=plan.redacted,
                mapping=plan.restore,
                on_progress=on_progress,
                on_partial=on_partial,
            )

        answered, routed = await self.executor.run(plan, attempt, started=started)
        return ObjectResult(
            answered.checked.value, answered.checked.text, routed, routed.finish_reason, answered.repaired
        )

    async def stream_object(
        self,
        request: ObjectRequest | str | None = None,
        *,
        messages: object = None,
        schema: object = None,
        max_tokens: object = None,
        temperature: object = None,
        route: object = None,
        on_progress: ProgressCallback | None = None,
        policy: Policy | Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """``{"partial"}`` items as the answer is written (a repair round or a fallback starts over), then
        ``{"done": True, "object", "text", "route", "usage", "finish_reason", "repaired"}``; close it
        (``contextlib.aclosing``) when stopping early: the request is cancelled."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        call = self.generate_object(
            request,
            messages=messages,
            schema=schema,
            max_tokens=max_tokens,
            temperature=temperature,
            route=route,
            on_progress=on_progress,
            policy=policy,
            on_partial=lambda value: queue.put_nowait({"partial": value}),
        )
        task = asyncio.ensure_future(call)
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (item := await queue.get()) is not None:
                yield item
            result = task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait([task])
        yield {"done": True, **result.to_wire()}

    # -- vector indexes --------------------------------------------------------------------------------

    async def index_open(self, name: object, model: object = None) -> dict[str, Any]:
        return self.indexes.info(await self.indexes.open(name, model))

    async def index_add(
        self, request: IndexAdd | object, ids: object = None, texts: object = None
    ) -> dict[str, Any]:
        """Embed the texts and store them under their ids in the index; with the route of the work."""
        req = request if isinstance(request, IndexAdd) else IndexAdd.parse(request, ids, texts)
        return await self._on_index(req.name, lambda: self.indexes.add(req), self._saved(SEARCH, req))

    async def index_search(
        self, request: IndexSearch | object, query: object = None, top_k: object = 10
    ) -> dict[str, Any]:
        """The ``top_k`` items of the index most similar to the query, best first, and the route."""
        req = request if isinstance(request, IndexSearch) else IndexSearch.parse(request, query, top_k)
        return await self._on_index(req.name, lambda: self.indexes.search(req), self._saved(SEARCH, req))

    async def index_remove(self, name: object, ids: object) -> dict[str, Any]:
        return await self.indexes.remove(name, ids)

    async def index_drop(self, name: object) -> dict[str, Any]:
        return await self.indexes.drop(name)

    async def index_list(self) -> dict[str, Any]:
        return {"names": await self.indexes.names()}

    # -- state -----------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The ledger's counters (see :mod:`hybrid_router.ledger`), and the response cache's (``cache``:
        None when it is off; :meth:`~hybrid_router.response_cache.ResponseCache.stats`)."""
        stats = self.ledger.stats()
        stats["cache"] = self.response_cache.stats() if self.response_cache is not None else None
        return stats

    async def cache_clear(self) -> dict[str, Any]:
        """Delete every entry of the response cache (every tab's: they share it)."""
        cleared = await self.response_cache.clear() if self.response_cache is not None else 0
        return {"cleared": cleared}

    def configure(self, **changes: Any) -> Policy:
        """Change policy fields (checked together; nothing changes if the result is refused). A
        ``chat_model`` is checked against the manifest and the device at once."""
        policy = self.policy.replace(**changes)
        if changes.get("chat_model") is not None:
            planner = self.planner
            choose_chat_model(
                self.manifest, planner.caps, named=policy.chat_model, by="policy", cached=planner.cached
            )
        self.policy = policy
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
            "cloud_note": self.planner.cloud_note,
            "chat": self.planner.chat.to_wire(),
            "policy": self.policy.to_wire(),
            "tiers": {name: rules.summary for name, rules in TIERS.items()},
        }

    def policy_for(self, changes: Policy | Mapping[str, Any] | None) -> Policy:
        """This call's policy: the router's, with the call's own changes (a ``policy`` option)."""
        if changes is None:
            return self.policy
        if isinstance(changes, Policy):
            return changes
        if not isinstance(changes, Mapping):
            raise ValidationError(
                f"policy must be an object of policy fields, got {type(changes).__name__}",
                hint="Pass e.g. { privacy: 'local-only' } for this call.",
                field="policy",
            )
        return self.policy.replace(**changes)

    async def route(
        self,
        request: ChatRequest | str | None = None,
        *,
        messages: object = None,
        max_tokens: object = None,
        route: object = None,
        model: object = None,
        task: str | None = None,
        policy: Policy | Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The decision a call would get, without generating or sending anything (a dry run): the target,
        reason, rule, model, the side it could fall back to, the prompt router's score and the personal
        data found. It is made by the same planner on the same facts as the call (the prompt's tokens,
        the router's embedding of it, the entity model), so the call gets this side, rule and score; it
        reserves nothing and is not a request. ``task`` other than ``text-generation``: that task's
        decision (the device)."""
        pol = self.policy_for(policy)
        started = self.clock()
        if task is not None and task != GENERATE:
            name = validation.choice(task, TASK_NAMES, "task")
            if name == RERANK:
                methods = rerank_plan(self.manifest, model_id=None)
            elif name in (CLASSIFY, ZERO_SHOT):
                methods = classify_plan(self.manifest, labels=name == ZERO_SHOT, examples=0, model_id=None)
            else:
                methods = single(self.manifest, name)
            plan = self.planner.local(name, methods, pol, route=route if isinstance(route, str) else None)
        else:
            req = (
                request
                if isinstance(request, ChatRequest)
                else ChatRequest.parse(
                    request, messages=messages, max_tokens=max_tokens, route=route, model=model
                )
            )
            plan = await self.planner.generation(req, pol, self.ledger, dry_run=True)
        first = plan.first
        return {
            "target": first.target,
            "reason": plan.reason,
            "rule": first.rule,
            "model": first.model,
            "dtype": first.dtype,
            "chat_model": plan.chat,
            "fallback_target": plan.steps[1].target if len(plan.steps) > 1 else None,
            "router": plan.router,
            "sensitive": plan.sensitive,
            "tokens_in": plan.tokens_in,
            "decision_ms": (self.clock() - started) * 1000.0,
            "dry_run": True,
        }

    def set_online(self, online: bool) -> None:
        """The browser went online or offline (its events; a cloud call that found the network gone)."""
        self.planner.online = bool(online)

    # -- what the server built since the start ---------------------------------------------------------

    def use_manifest(self, manifest: Manifest) -> None:
        """Models built (or gone) since the start: every later call plans with ``manifest``."""
        if self.models is not None:
            self.models.use_manifest(manifest)
            manifest = self.models.manifest  # with the dtypes chosen for this device
        self.manifest = manifest
        self.planner.use_manifest(manifest)
        self.ledger.prices = manifest

    def use_cloud(
        self, cloud: CloudProvider | None, *, label: str | None = None, note: str | None = None
    ) -> None:
        """The cloud came up (or went): later generations may use ``cloud``; ``note`` says why there is
        none while there is none (the default cloud tier still starting)."""
        self.cloud = cloud
        self.cloud_label = label if cloud is not None else None
        self.planner.cloud = cloud
        self.planner.cloud_note = None if cloud is not None else note
        self.executor.cloud_name = cloud.name if cloud is not None else None
        self.ledger.cloud_model = cloud.model if cloud is not None else None

    # -- the response cache ----------------------------------------------------------------------------

    async def _cache_lookup(self, req: ChatRequest, pol: Policy, call: object) -> Use | None:
        """This call's use of the response cache: None when there is none, the call passed ``cache:
        false``, or it may not use it (:func:`~hybrid_router.response_cache.skip_reason`)."""
        cache = self.response_cache
        if cache is None:
            return None
        if call is not None and not isinstance(call, bool):
            raise ValidationError(
                f"cache must be true or false, got {validation.type_name(call)}",
                hint="Pass cache: false to bypass the response cache for this call.",
                field="cache",
            )
        if call is False:
            cache.skip("bypass")
            return None
        if (reason := skip_reason(req, cache.config)) is not None:
            cache.skip(reason)
            return None
        embedders = self.manifest.for_task(EMBED)
        if not embedders:
            cache.skip("unavailable")
            return None
        chat = self.planner.chat_for(req, pol).model  # the device's, or the one the call or policy names
        key = cache_key(
            req,
            route=req.route or pol.route,
            privacy=pol.privacy,
            embedding_model=embedders[0].id,
            local_model=chat.id if chat is not None else None,
            cloud_model=self.cloud.model if self.cloud is not None else None,
        )
        model = embedders[0].id
        return await cache.lookup(key, lambda text: self._vector_of(text, model))

    async def _vector_of(self, text: str, model: str) -> npt.NDArray[np.float32]:
        rows = await self._vectors([text], model)
        return np.asarray(rows[0], dtype=np.float32)

    async def _cache_keep(self, use: Use, req: ChatRequest, result: GenerateResult) -> None:
        """Store a missed call's answer, unless its prompt holds personal data or could not be checked for
        it: the route's record when the routing looked, else the same check here (patterns and the entity
        model, :meth:`~hybrid_router.prompt_facts.PromptFacts.personal_data`)."""
        assert self.response_cache is not None
        sensitive = result.route.sensitive
        if sensitive is None and use.vector is not None:
            personal = await self.planner.facts.personal_data(req)
            sensitive = {"found": summary(personal.all), "missing": list(personal.missing)}
        await self.response_cache.keep(
            use,
            text=result.text,
            finish_reason=result.finish_reason,
            route=result.route.to_wire(),
            sensitive=sensitive,
        )

    # -- helpers ---------------------------------------------------------------------------------------

    def _step(
        self, runner: Runner[V], request: Any, on_progress: ProgressCallback | None
    ) -> Callable[[Step], Awaitable[Outcome[V]]]:
        async def attempt(step: Step) -> Outcome[V]:
            assert step.entry is not None and step.dtype is not None  # a local step names its model
            return Outcome(await runner(self.runtime, step.entry, step.dtype, request, on_progress))

        return attempt

    def _by_method(
        self, runners: dict[str, Runner[V]], request: Any, on_progress: ProgressCallback | None
    ) -> Callable[[Step], Awaitable[Outcome[V]]]:
        async def attempt(step: Step) -> Outcome[V]:
            return await self._step(runners[step.method], request, on_progress)(step)

        return attempt

    async def _vectors(self, texts: list[str], model: str) -> npt.NDArray[np.float32]:
        entry = choose(self.manifest, EMBED, model)
        return await embeddings.vectors(self.runtime, entry, entry.default_dtype, texts)

    def _saved(self, task: str, request: Any) -> float:
        """What the cloud would have charged for ``request``'s work (:mod:`hybrid_router.savings`)."""
        llm = self.ledger.prices.price_for(self.ledger.cloud_model)
        return savings.cloud_equivalent_usd(task, savings.measure(request), llm)

    async def _on_index(
        self, name: str, work: Callable[[], Awaitable[dict[str, Any]]], saved_usd: float
    ) -> dict[str, Any]:
        index = await self.indexes.open(name)
        plan = self.planner.local(SEARCH, single(self.manifest, SEARCH, index.meta.model), self.policy)

        async def attempt(step: Step) -> Outcome[dict[str, Any]]:
            return Outcome(await work())

        value, route = await self.executor.run(plan, attempt, saved_usd=saved_usd)
        return {**value, "route": route.to_wire()}
