"""The wire table: each method of the worker protocol, its parameters, and the one typed call it makes.

:func:`handlers` gives the :class:`~hybrid_router.protocol.Dispatcher` one handler per method. A handler
refuses parameters the method does not take (a misspelt option would otherwise be ignored), parses the
rest into the typed request once, makes its :class:`~hybrid_router.router.Router` call (or, for model
management, the router's :class:`~hybrid_router.model_manager.ModelManager` call) and returns the
result's ``to_wire()`` form. Parameters are snake_case, as every key on the wire.

Method: its params -> its call.

Every call method takes ``policy``: policy fields that hold for this call only (e.g.
``{"sensitive": "local"}``), checked like ``configure``'s.

- ``embed``: texts, model, dtype -> ``Router.embed``
- ``classify``: text, labels, examples, model, dtype, multi_label, hypothesis_template -> ``Router.classify``
- ``ner``: text, model, dtype -> ``Router.ner``
- ``rerank``: query, documents, top_k, model, dtype -> ``Router.rerank``
- ``transcribe``: audio (samples) or wav (a WAV file's bytes), sampling_rate, model, dtype ->
  ``Router.transcribe``
- ``generate``: prompt or messages, max_tokens, temperature, route, model (the on-device chat model),
  tools, tool_choice -> ``Router.generate`` (``stream`` refuses tools)
- ``generate`` and ``stream`` also take ``cache`` (false: this call bypasses the response cache)
- ``stream``: as ``generate``; each ``{"delta"}`` goes as a chunk, the reply is the final item ->
  ``Router.stream``
- ``generate_object``: prompt or messages, schema, max_tokens, temperature, route ->
  ``Router.generate_object``; ``stream_object``: the same, each ``{"partial"}`` goes as a chunk, the reply
  is the final item -> ``Router.stream_object``
- ``route``: prompt or messages, max_tokens, route, model, task -> ``Router.route`` (the decision alone: a
  dry run on the call's own facts that generates nothing and sends nothing)
- ``index_open`` (name, model), ``index_add`` (name, ids, texts), ``index_search`` (name, query, top_k),
  ``index_remove`` (name, ids), ``index_drop`` (name), ``index_list`` -> ``Router.index_*``
- ``cache_clear`` -> ``Router.cache_clear`` (every entry of the response cache)
- ``stats``, ``info`` -> ``Router.stats``, ``Router.info``; ``configure``: policy fields
  (:class:`~hybrid_router.routing.policy.Policy`) -> ``Router.configure``; ``set_online`` (online: the
  page's ``online``/``offline`` events) -> ``Router.set_online``
- ``preload`` (models, dtype), ``cached_models``, ``delete_model`` (model), ``cache_events``,
  ``configure_cache`` (budget_bytes), ``capabilities``, ``recommend_models`` (task) -> the
  :class:`~hybrid_router.model_manager.ModelManager`'s methods

Every request of a task (the methods with a ledger task below) is counted in the ledger once, however it
ends: answered, refused at the wire (an unknown or bad parameter), failed, cancelled, or never started
(:func:`unstarted`, for the dispatcher's refused-as-busy and cancelled-before-it-began calls).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from hybrid_router import audio, validation
from hybrid_router.chat import PARAMS as CHAT_PARAMS
from hybrid_router.chat import ChatRequest
from hybrid_router.errors import ValidationError
from hybrid_router.model_manager import ModelManager
from hybrid_router.protocol import CallContext, Handler, Unstarted
from hybrid_router.requests import ClassifyRequest, EmbedRequest, NerRequest, RerankRequest, TranscribeRequest
from hybrid_router.router import Router
from hybrid_router.routing import ASR, CLASSIFY, EMBED, GENERATE, NER, POLICY_FIELDS, RERANK, SEARCH
from hybrid_router.structured.request import PARAMS as OBJECT_PARAMS
from hybrid_router.structured.request import ObjectRequest
from hybrid_router.vector_index import IndexAdd, IndexSearch

__all__ = ["METHODS", "MODEL_METHODS", "WireMethod", "chat_request", "handlers", "unstarted"]

Params = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WireMethod:
    """A wire method: the parameters it takes (``None``: checked by the call itself) and its call."""

    params: tuple[str, ...] | None
    call: Callable[[Router, Params, CallContext], Awaitable[Any]]
    where: str = ""
    #: the ledger's task for a request of this method (None: not a request the ledger counts)
    task: str | None = None


async def _embed(r: Router, p: Params, ctx: CallContext) -> Any:
    request = EmbedRequest.parse(p.get("texts"), model=p.get("model"), dtype=p.get("dtype"))
    return (await r.embed(request, on_progress=ctx.progress, policy=p.get("policy"))).to_wire()


async def _classify(r: Router, p: Params, ctx: CallContext) -> Any:
    request = ClassifyRequest.parse(
        p.get("text"),
        labels=p.get("labels"),
        examples=p.get("examples"),
        model=p.get("model"),
        dtype=p.get("dtype"),
        multi_label=p.get("multi_label", False),
        hypothesis_template=p.get("hypothesis_template"),
    )
    return (await r.classify(request, on_progress=ctx.progress, policy=p.get("policy"))).to_wire()


async def _ner(r: Router, p: Params, ctx: CallContext) -> Any:
    request = NerRequest.parse(p.get("text"), model=p.get("model"), dtype=p.get("dtype"))
    return (await r.ner(request, on_progress=ctx.progress, policy=p.get("policy"))).to_wire()


async def _rerank(r: Router, p: Params, ctx: CallContext) -> Any:
    request = RerankRequest.parse(
        p.get("query"), p.get("documents"), top_k=p.get("top_k"), model=p.get("model"), dtype=p.get("dtype")
    )
    return (await r.rerank(request, on_progress=ctx.progress, policy=p.get("policy"))).to_wire()


async def _transcribe(r: Router, p: Params, ctx: CallContext) -> Any:
    request = TranscribeRequest.parse(
        p.get("audio"),
        wav=p.get("wav"),
        sampling_rate=p.get("sampling_rate", audio.SAMPLE_RATE),
        model=p.get("model"),
        dtype=p.get("dtype"),
    )
    return (await r.transcribe(request, on_progress=ctx.progress, policy=p.get("policy"))).to_wire()


def chat_request(r: Router, p: Params, where: str) -> ChatRequest:
    """A generation's params as its request; a refused one is counted in the ledger."""
    with r.executor.counted(GENERATE):
        validation.known_keys(p, (*CHAT_PARAMS, "policy", "cache"), where=where)
        return ChatRequest.parse(
            p.get("prompt"),
            messages=p.get("messages"),
            max_tokens=p.get("max_tokens"),
            temperature=p.get("temperature"),
            route=p.get("route"),
            model=p.get("model"),
            tools=p.get("tools"),
            tool_choice=p.get("tool_choice"),
        )


async def _generate(r: Router, p: Params, ctx: CallContext) -> Any:
    request = chat_request(r, p, "generate")
    result = await r.generate(request, on_progress=ctx.progress, policy=p.get("policy"), cache=p.get("cache"))
    return result.to_wire()


async def _stream(r: Router, p: Params, ctx: CallContext) -> Any:
    final: dict[str, Any] = {}
    request = chat_request(r, p, "stream")
    items_of = r.stream(request, on_progress=ctx.progress, policy=p.get("policy"), cache=p.get("cache"))
    async with aclosing(items_of) as items:
        async for item in items:
            if item.get("done"):
                final = item
            else:
                ctx.chunk(item)
    return final


def object_request(r: Router, p: Params, where: str) -> ObjectRequest:
    """A structured call's params as its request; a refused one is counted in the ledger."""
    with r.executor.counted(GENERATE):
        validation.known_keys(p, (*OBJECT_PARAMS, "policy"), where=where)
        return ObjectRequest.parse(
            p.get("prompt"),
            messages=p.get("messages"),
            schema=p.get("schema"),
            max_tokens=p.get("max_tokens"),
            temperature=p.get("temperature"),
            route=p.get("route"),
        )


async def _generate_object(r: Router, p: Params, ctx: CallContext) -> Any:
    request = object_request(r, p, "generate_object")
    return (await r.generate_object(request, on_progress=ctx.progress, policy=p.get("policy"))).to_wire()


async def _stream_object(r: Router, p: Params, ctx: CallContext) -> Any:
    final: dict[str, Any] = {}
    request = object_request(r, p, "stream_object")
    items = r.stream_object(request, on_progress=ctx.progress, policy=p.get("policy"))
    async with aclosing(items) as stream:
        async for item in stream:
            if item.get("done"):
                final = item
            else:
                ctx.chunk(item)
    return final


async def _route(r: Router, p: Params, ctx: CallContext) -> Any:
    task = p.get("task")
    if task is not None and task != GENERATE:
        return await r.route(route=p.get("route"), task=validation.text(task, "task"), policy=p.get("policy"))
    request = ChatRequest.parse(
        p.get("prompt"),
        messages=p.get("messages"),
        max_tokens=p.get("max_tokens"),
        route=p.get("route"),
        model=p.get("model"),
        tools=p.get("tools"),
        tool_choice=p.get("tool_choice"),
    )
    return await r.route(request, policy=p.get("policy"))


async def _configure(r: Router, p: Params, ctx: CallContext) -> Any:
    return {"policy": r.configure(**p).to_wire()}


async def _set_online(r: Router, p: Params, ctx: CallContext) -> Any:
    online = p.get("online")
    if not isinstance(online, bool):
        raise ValidationError(
            f"online must be true or false, got {validation.type_name(online)}",
            hint="Pass { online: navigator.onLine }.",
            field="online",
        )
    r.set_online(online)
    return {"online": online}


async def _stats(r: Router, p: Params, ctx: CallContext) -> Any:
    return r.stats()


async def _info(r: Router, p: Params, ctx: CallContext) -> Any:
    return r.info()


METHODS: Mapping[str, WireMethod] = {
    "embed": WireMethod(("texts", "model", "dtype", "policy"), _embed, task=EMBED),
    "classify": WireMethod(
        ("text", "labels", "model", "dtype", "multi_label", "hypothesis_template", "examples", "policy"),
        _classify,
        task=CLASSIFY,
    ),
    "ner": WireMethod(("text", "model", "dtype", "policy"), _ner, task=NER),
    "rerank": WireMethod(("query", "documents", "top_k", "model", "dtype", "policy"), _rerank, task=RERANK),
    "transcribe": WireMethod(
        ("audio", "wav", "sampling_rate", "model", "dtype", "policy"), _transcribe, task=ASR
    ),
    "generate": WireMethod(None, _generate, task=GENERATE),  # params checked inside (chat_request)
    "stream": WireMethod(None, _stream, task=GENERATE),
    "generate_object": WireMethod(None, _generate_object, task=GENERATE),  # params: object_request
    "stream_object": WireMethod(None, _stream_object, task=GENERATE),
    "route": WireMethod(
        ("prompt", "messages", "max_tokens", "route", "model", "tools", "tool_choice", "task", "policy"),
        _route,
    ),
    "configure": WireMethod(POLICY_FIELDS, _configure),
    "set_online": WireMethod(("online",), _set_online),
    "stats": WireMethod((), _stats),
    "cache_clear": WireMethod((), lambda r, p, c: r.cache_clear(), "clearCache"),
    "info": WireMethod((), _info),
    "index_open": WireMethod(("name", "model"), lambda r, p, c: r.index_open(p.get("name"), p.get("model"))),
    "index_add": WireMethod(
        ("name", "ids", "texts"),
        lambda r, p, c: r.index_add(IndexAdd.parse(p.get("name"), p.get("ids"), p.get("texts"))),
        task=SEARCH,
    ),
    "index_search": WireMethod(
        ("name", "query", "top_k"),
        lambda r, p, c: r.index_search(IndexSearch.parse(p.get("name"), p.get("query"), p.get("top_k", 10))),
        task=SEARCH,
    ),
    "index_remove": WireMethod(("name", "ids"), lambda r, p, c: r.index_remove(p.get("name"), p.get("ids"))),
    "index_drop": WireMethod(("name",), lambda r, p, c: r.index_drop(p.get("name"))),
    "index_list": WireMethod((), lambda r, p, c: r.index_list()),
}


def _manager(
    call: Callable[[ModelManager, Params, CallContext], Awaitable[Any]],
) -> Callable[[Router, Params, CallContext], Awaitable[Any]]:
    async def run(r: Router, p: Params, ctx: CallContext) -> Any:
        assert r.models is not None  # MODEL_METHODS are served only with a manager
        return await call(r.models, p, ctx)

    return run


async def _events(m: ModelManager, p: Params, ctx: CallContext) -> Any:
    return m.cache_events()


MODEL_METHODS: Mapping[str, WireMethod] = {
    "preload": WireMethod(
        ("models", "dtype"), _manager(lambda m, p, c: m.preload(p.get("models"), p.get("dtype"), c.progress))
    ),
    "cached_models": WireMethod((), _manager(lambda m, p, c: m.cached_models()), "cachedModels"),
    "delete_model": WireMethod(
        ("model",), _manager(lambda m, p, c: m.delete_model(p.get("model"))), "deleteModel"
    ),
    "cache_events": WireMethod((), _manager(_events), "cacheEvents"),
    "configure_cache": WireMethod(
        ("budget_bytes",),
        _manager(lambda m, p, c: m.configure_cache(p.get("budget_bytes"))),
        "configureCache",
    ),
    "capabilities": WireMethod((), _manager(lambda m, p, c: m.capabilities())),
    "recommend_models": WireMethod(
        ("task",), _manager(lambda m, p, c: m.recommend(p.get("task"))), "recommendModels"
    ),
}


def _handler(router: Router, name: str, method: WireMethod) -> Handler:
    async def handle(params: dict[str, Any], ctx: CallContext) -> Any:
        if method.task is None:
            if method.params is not None:
                validation.known_keys(params, method.params, where=method.where or name)
            return await method.call(router, params, ctx)
        with router.executor.counted(method.task):
            if method.params is not None:
                validation.known_keys(params, method.params, where=method.where or name)
            return await method.call(router, params, ctx)

    return handle


def unstarted(router: Router) -> Unstarted:
    """The dispatcher's ``on_unstarted``: a task's call that never reached its handler is counted too."""

    def count(name: str, params: Mapping[str, Any], error_name: str) -> None:
        method = METHODS.get(name)
        if method is not None and method.task is not None:
            router.executor.refused(method.task, error_name)

    return count


def handlers(router: Router) -> dict[str, Handler]:
    """The wire methods of ``router`` for :class:`~hybrid_router.protocol.Dispatcher` (model management
    only when the router has a manager)."""
    table = {**METHODS, **(MODEL_METHODS if router.models is not None else {})}
    return {name: _handler(router, name, method) for name, method in table.items()}
