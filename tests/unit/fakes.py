"""Test doubles for the core: a deterministic fake runtime and cloud, and a small in-memory manifest."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from hybrid_router.chat import ChatMessage
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.providers.base import CloudProvider, Completion, Delta, StreamItem, Usage
from hybrid_router.runtime import LocalRuntime, ProgressCallback

if TYPE_CHECKING:
    from hybrid_router.chat import GenerateResult
    from hybrid_router.ledger import Ledger
    from hybrid_router.router import Router
    from hybrid_router.routing import Policy

FAKE_DIMS = 8
#: The context window of the fake generator (prompt tokens + max_tokens must fit in it).
FAKE_LLM_CONTEXT = 2048
_SHA = "0" * 64


def _model(mid: str, tasks: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "id": mid,
        "tasks": tasks,
        "hf_id": f"fake/{mid}",
        "license": "apache-2.0",
        "context_length": 256,
        "memory_mb": 100,
        "min_device": "wasm",
        "default_dtype": "q8",
        "dtype_reason": "smallest that passes the parity check",
        "source": {
            "kind": "pypi",
            "package": "fake-weights",
            "version": "1.0",
            "sha256": _SHA,
            "path": mid,
            "weights": "model.safetensors",
            "weights_sha256": _SHA,
        },
        "conversion": {"recipe": "encoder"},
        "files": {"config.json": {"size": 10, "sha256": _SHA}},
        "variants": {
            "fp32": {"files": {"onnx/model.onnx": {"size": 1000, "sha256": _SHA}}},
            "q8": {"files": {"onnx/model_quantized.onnx": {"size": 250, "sha256": _SHA}}},
        },
        **extra,
    }


def fake_manifest_dict() -> dict[str, Any]:
    """Two embedding models (the first is the default), one generator (``FAKE_LLM_CONTEXT`` tokens), and
    a price table: ``fake-gpt`` (FakeCloud's model) at 1/2 USD per Mtok, anything else at 10/20."""
    return {
        "schema": 1,
        "models": [
            _model("fake-embed", ["feature-extraction"], pooling="mean", normalize=True),
            _model("fake-embed-cls", ["feature-extraction"], pooling="cls", normalize=False),
            _model("fake-llm", ["text-generation"], context_length=FAKE_LLM_CONTEXT),
        ],
        "cloud_prices": {
            "default": {"input_usd_per_mtok": 10.0, "output_usd_per_mtok": 20.0, "note": "fake"},
            "fake-gpt": {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0, "source": "fake"},
        },
    }


#: the id of the fake entity (NER) model that :func:`fake_manifest` adds with ``ner=True``
FAKE_NER = "fake-ner"


def fake_manifest(*, ner: bool = False) -> Manifest:
    """The fake manifest; ``ner``: with an entity model (:data:`FAKE_NER`, served by
    ``FakeRuntime.token_classification``)."""
    d = fake_manifest_dict()
    if ner:
        d["models"].append(_model(FAKE_NER, ["token-classification"]))
    return Manifest.from_dict(d)


def fake_vector(text: str, model_id: str, dims: int = FAKE_DIMS) -> npt.NDArray[np.float32]:
    """A deterministic, not normalized vector derived from a hash of the model and the text."""
    key = f"{model_id}\0{text}".encode()
    if dims > 32:  # wide vectors (the router's 384): centred, so they point every way
        wide = np.frombuffer(hashlib.shake_256(key).digest(dims), dtype=np.uint8).astype(np.float32)
        return (wide - 127.5) * 0.5
    digest = hashlib.sha256(key).digest()
    return (np.frombuffer(digest[:dims], dtype=np.uint8).astype(np.float32) - 100.0) * 0.5


@dataclass
class FakeCall:
    model: str
    dtype: str
    texts: list[str]
    pooling: str
    normalize: bool


def pieces_of(text: str) -> list[str]:
    """The fake tokenisation: each word with the spaces after it is one token."""
    return re.findall(r"\S+\s*", text)


def plain(messages: Sequence[ChatMessage | Mapping[str, str]]) -> list[dict[str, str]]:
    """Messages as ``{"role", "content"}`` dicts (what the fakes record)."""
    return [m.to_wire() if isinstance(m, ChatMessage) else dict(m) for m in messages]


def fake_token_count(messages: Sequence[ChatMessage | Mapping[str, str]]) -> int:
    """What ``FakeRuntime.count_chat_tokens`` returns: words + 3 per message + 1 (the template)."""
    return sum(len(m["content"].split()) + 3 for m in plain(messages)) + 1


@dataclass
class FakeGenerateCall:
    model: str
    dtype: str
    messages: list[dict[str, str]]
    max_new_tokens: int
    temperature: float


@dataclass
class FakeRuntime:
    """A ``LocalRuntime`` that computes vectors from a hash (deliberately not unit norm) and generates
    ``reply`` word by word.

    Embeddings: ``fail`` makes the next calls raise it; ``output`` replaces the computed array (to test
    shape checks). Generation: ``generate_fail`` is raised after ``fail_after`` pieces were streamed
    (0: before any text, like a load failure); ``count_fail`` makes token counting raise;
    ``token_count`` overrides the count. ``gate``, when set, makes calls wait on it after ``started``
    is set (generation: after ``gate_after`` pieces), to test cancellation; ``cancelled`` records
    whether a call saw ``CancelledError``.
    """

    fail: BaseException | None = None
    output: Any = None
    progress_events: list[dict[str, Any]] = field(
        default_factory=lambda: [{"status": "initiate", "file": "x"}]
    )
    gate: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    calls: list[FakeCall] = field(default_factory=list)
    reply: str = "Hello from the device."
    generate_fail: BaseException | None = None
    fail_after: int = 0
    count_fail: BaseException | None = None
    token_count: int | None = None
    gate_after: int = 0
    #: whether ``gate`` holds embedding calls too (False: only the generation, which the planner's
    #: routing embedding of the prompt then does not wait for)
    gate_texts: bool = True
    device: str = "wasm"
    generate_calls: list[FakeGenerateCall] = field(default_factory=list)
    #: structured output: the ``schema`` each generation was given (None: free text), and replies to
    #: give one per generation, in order, before ``reply`` (a wrong answer, then the repaired one)
    schemas: list[Any] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    count_calls: list[list[dict[str, str]]] = field(default_factory=list)
    #: the width of the fake vectors (384: the width the prompt router's embedding head reads)
    dims: int = FAKE_DIMS
    #: fake NER: these words (case-insensitive) are tagged as people, every other word ``O``;
    #: ``ner_fail`` is raised instead (a model that fails to load or to run)
    people: tuple[str, ...] = ()
    ner_fail: BaseException | None = None
    #: the most word pieces a fake NER pass returns (the pipeline truncates at the model's window)
    ner_window: int | None = None
    ner_calls: list[str] = field(default_factory=list)
    #: recorded vectors by text (e.g. real MiniLM vectors from tests/data), used instead of the hash
    recorded: Mapping[str, npt.NDArray[np.float32]] = field(default_factory=dict)

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
        self.calls.append(FakeCall(model.id, dtype, list(texts), pooling, normalize))
        for event in self.progress_events:
            if on_progress is not None:
                on_progress({**event, "model": model.id, "dtype": dtype})
        if self.gate_texts:
            self.started.set()
        if self.gate is not None and self.gate_texts:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        if self.fail is not None:
            raise self.fail
        if self.output is not None:
            output: npt.NDArray[np.float32] = self.output
            return output
        return np.stack(
            [self.recorded[t] if t in self.recorded else fake_vector(t, model.id, self.dims) for t in texts]
        )

    async def token_classification(
        self, model: ModelEntry, dtype: str, text: str, *, on_progress: ProgressCallback | None = None
    ) -> list[dict[str, Any]]:
        """Word pieces as an uncased BERT tokenizer spells them, ``B-PER``/``I-PER`` on :attr:`people`."""
        self.ner_calls.append(text)
        self._progress(model, dtype, on_progress)
        await asyncio.sleep(0)
        if self.ner_fail is not None:
            raise self.ner_fail
        people = {p.lower() for p in self.people}
        out: list[dict[str, Any]] = []
        previous = "O"
        for index, word in enumerate(re.findall(r"\w+|[^\w\s]", text.lower())):
            label = "O" if word not in people else ("I-PER" if previous != "O" else "B-PER")
            out.append({"word": word, "entity": label, "score": 0.99, "index": index + 1})
            previous = label
        return out[: self.ner_window]

    async def _wait_gate(self) -> None:
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise

    def _progress(self, model: ModelEntry, dtype: str, on_progress: ProgressCallback | None) -> None:
        for event in self.progress_events:
            if on_progress is not None:
                on_progress({**event, "model": model.id, "dtype": dtype})

    async def count_chat_tokens(
        self,
        model: ModelEntry,
        dtype: str,
        messages: Sequence[ChatMessage],
        on_progress: ProgressCallback | None = None,
    ) -> int:
        self.count_calls.append(plain(messages))
        self._progress(model, dtype, on_progress)
        await asyncio.sleep(0)
        if self.count_fail is not None:
            raise self.count_fail
        return fake_token_count(messages) if self.token_count is None else self.token_count

    async def generate(
        self,
        model: ModelEntry,
        dtype: str,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int,
        temperature: float,
        on_text: Callable[[str], None] | None = None,
        on_progress: ProgressCallback | None = None,
        schema: Any = None,
    ) -> dict[str, Any]:
        self.generate_calls.append(
            FakeGenerateCall(model.id, dtype, plain(messages), max_new_tokens, temperature)
        )
        self.schemas.append(schema)
        if self.replies:
            self.reply = self.replies.pop(0)
        self._progress(model, dtype, on_progress)
        self.started.set()
        try:
            return await self._generate(max_new_tokens, on_text)
        except asyncio.CancelledError:
            self.cancelled = True  # interrupted wherever it was
            raise

    async def _generate(self, max_new_tokens: int, on_text: Callable[[str], None] | None) -> dict[str, Any]:
        pieces = pieces_of(self.reply)[:max_new_tokens]
        for index, piece in enumerate(pieces):
            if self.generate_fail is not None and index == self.fail_after:
                raise self.generate_fail
            if index == self.gate_after:
                await self._wait_gate()
            if on_text is not None:
                on_text(piece)
            await asyncio.sleep(0)  # let the reader run, as the JS event loop would
        if self.generate_fail is not None:
            raise self.generate_fail
        if self.gate_after == len(pieces):
            await self._wait_gate()
        return {
            "text": "".join(pieces),
            "tokens_out": len(pieces),
            "finish_reason": "length" if len(pieces) < len(pieces_of(self.reply)) else "stop",
        }


@dataclass
class FakeCloud:
    """A ``CloudProvider`` that answers ``reply`` word by word and records every call.

    ``fail`` is raised after ``fail_after`` deltas were streamed (0: before any text; ``complete``
    raises it at once). ``gate`` makes calls wait after ``started`` is set; ``usage`` None leaves the
    usage out of the completion; ``can_stream`` False makes it a provider without streaming.
    """

    name: str = "fake-cloud"
    model: str = "fake-gpt"
    can_stream: bool = True
    max_temperature: float = 2.0
    reply: str = "Hello from the cloud."
    fail: BaseException | None = None
    fail_after: int = 0
    usage: tuple[int, int] | None = (40, 5)
    gate: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    #: structured output: each call's ``response_format`` (None: free text), and replies to give one per
    #: call, in order, before ``reply``
    response_formats: list[Any] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)

    def _record(
        self, method: str, messages: Sequence[Any], max_tokens: int | None, temperature: float | None
    ) -> None:
        self.calls.append(
            {
                "method": method,
                "messages": plain(messages),
                "max_tokens": max_tokens,
                "temperature": temperature,
            }
        )

    def _structured(self, response_format: Mapping[str, Any] | None) -> None:
        self.response_formats.append(response_format)
        if self.replies:
            self.reply = self.replies.pop(0)

    async def _wait(self) -> None:
        self.started.set()
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise

    def _completion(self, text: str) -> Completion:
        usage = Usage(*self.usage) if self.usage is not None else None
        return Completion(text=text, usage=usage, model=self.model, finish_reason="stop", raw_id="fake-1")

    async def complete(
        self,
        messages: Sequence[Any],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Any] = (),
        tool_choice: str = "auto",
    ) -> Completion:
        self._record("complete", messages, max_tokens, temperature)
        if tools:
            self.calls[-1].update(tools=[t.name for t in tools], tool_choice=tool_choice)
        self._structured(response_format)
        await self._wait()
        if self.fail is not None:
            raise self.fail
        return self._completion(self.reply)

    async def stream(
        self,
        messages: Sequence[Any],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
        response_format: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[StreamItem, None]:
        self._record("stream", messages, max_tokens, temperature)
        self._structured(response_format)
        await self._wait()
        pieces = pieces_of(self.reply)
        for index, piece in enumerate(pieces):
            if self.fail is not None and index == self.fail_after:
                raise self.fail
            yield Delta(piece)
        if self.fail is not None:
            raise self.fail
        yield self._completion("".join(pieces))


def as_runtime(fake: object) -> LocalRuntime:
    """``fake`` typed as the ``LocalRuntime`` it stands in for. The fakes implement only the methods their
    tests call (a missing one stays an AttributeError, which some tests rely on), so they are not one."""
    return cast(LocalRuntime, fake)


def _router(
    runtime: object,
    manifest: Manifest,
    cloud: CloudProvider | None,
    policy: Policy | None,
    ledger: Ledger | None,
    clock: Callable[[], float],
) -> Router:
    from hybrid_router.router import Router

    return Router(as_runtime(runtime), manifest, cloud=cloud, policy=policy, ledger=ledger, clock=clock)


async def generate_with(
    params: Mapping[str, Any],
    *,
    runtime: object,
    manifest: Manifest,
    cloud: CloudProvider | None,
    policy: Policy | None,
    ledger: Ledger | None,
    clock: Callable[[], float] | None = None,
    on_progress: ProgressCallback | None = None,
) -> GenerateResult:
    """One generation with these parts, its params parsed as the wire parses them."""
    import time

    from hybrid_router.wire import chat_request

    router = _router(runtime, manifest, cloud, policy, ledger, clock or time.perf_counter)
    return await router.generate(chat_request(router, params, "generate"), on_progress=on_progress)


async def stream_with(
    params: Mapping[str, Any],
    *,
    runtime: object,
    manifest: Manifest,
    cloud: CloudProvider | None,
    policy: Policy | None,
    ledger: Ledger | None,
    clock: Callable[[], float] | None = None,
    on_progress: ProgressCallback | None = None,
) -> AsyncGenerator[dict[str, Any], None]:
    """One streamed generation with these parts (as :func:`generate_with`)."""
    import time
    from contextlib import aclosing

    from hybrid_router.wire import chat_request

    router = _router(runtime, manifest, cloud, policy, ledger, clock or time.perf_counter)
    async with aclosing(
        router.stream(chat_request(router, params, "stream"), on_progress=on_progress)
    ) as items:
        async for item in items:
            yield item
