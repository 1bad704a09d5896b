"""The on-device runtime in the browser: Transformers.js, reached through Pyodide's JS interop.

One of the browser edges (``hybrid_router.browser``: the modules that touch ``js``/``pyodide``); the
router only sees the :class:`~hybrid_router.runtime.LocalRuntime` protocol it implements. Import it only
inside Pyodide. Where each model runs is the routing's :class:`~hybrid_router.routing.devices.Devices`:
this runtime asks it for the device and reports a WebGPU failure to it, which moves the model to wasm.

The module object comes from ``transformers_js_py.import_transformers_js``; calls go to the raw JS
objects (``module.js_obj``) so that classes are constructed with ``new`` and options are real JS
objects. Every JS proxy created for a call is destroyed when the call is over.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np
else:
    from hybrid_router._lazy import numpy as np
from pyodide.ffi import JsException, create_proxy, to_js

from ..chat import ChatMessage
from ..errors import InferenceError, ModelLoadError
from ..manifest import ModelEntry
from ..model_cache import ModelCache
from ..routing import cascade
from ..routing.devices import Devices
from ..structured import Schema, TokenConstraint, Vocabulary
from ..structured.automaton import State
from . import encoder_tasks
from .jsinterop import destroy, js_object
from .kv_cache import CachedPrefix, KvSlot
from .tensors import (
    dispose,
    ints,
    message,
    released_when_settled,
    restore_final_special_token,
    tensor_to_numpy,
    yield_between_steps,
)

ProgressFn = Callable[[dict[str, Any]], None]
#: Transformers.js's download events: with the model cache, ours (from the network or the store) replace them
_FILE_EVENTS = frozenset({"initiate", "download", "progress", "done", "progress_total"})


#: pipelines whose model runs a token-by-token generation loop
_GENERATIVE = ("text-generation", "automatic-speech-recognition")

T = TypeVar("T")
#: a pipeline: (task, model id, dtype, device)
_Key = tuple[str, str, str, str]


class _LoadStopped(Exception):
    """The shared load this call joined was stopped by its last other waiter (internal: loads again)."""


def _ready(fut: asyncio.Future[Any]) -> bool:
    return fut.done() and not fut.cancelled() and fut.exception() is None


def _chat(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [m.to_wire() for m in messages]


def _dispose_tensor(tensor: Any) -> None:
    if tensor is not None:
        tensor.dispose()
        destroy(tensor)


def _dispose_cache(cache: Any) -> None:
    """Free a ``DynamicCache``'s tensors (ORT buffers: on the GPU too) and its proxy."""
    if cache is not None:
        dispose(cache)
        destroy(cache)


def _tokenized_chat(
    tokenizer: Any, model: ModelEntry, messages: Sequence[ChatMessage]
) -> tuple[Any, Any, tuple[int, ...]]:
    """``(input_ids, attention_mask, token ids)`` of the chat as the text-generation pipeline tokenizes
    it: the chat template applied as text, then tokenized without adding special tokens (it has them)."""
    options = js_object({"tokenize": False, "add_generation_prompt": True})
    encode = js_object({"add_special_tokens": False, "padding": True, "truncation": True})
    chat = js_object(_chat(messages))
    inputs = ids = mask = None
    try:
        inputs = tokenizer(js_object([tokenizer.apply_chat_template(chat, options)]), encode)
        ids, mask = inputs.input_ids, inputs.attention_mask
        return ids, mask, tuple(int(t) for t in ints(ids)[0])
    except JsException as exc:
        destroy(ids, mask)
        raise InferenceError(
            f"{model.id}: could not apply the chat template: {message(exc)}", model=model.id
        ) from exc
    finally:
        destroy(options, encode, chat, inputs)


def _decoded(tokenizer: Any, ids: Any) -> str:
    """The first row of ``ids`` as text, special tokens skipped (as the text-generation pipeline does)."""
    options = js_object({"skip_special_tokens": True})
    texts = tokenizer.batch_decode(ids, options)
    try:
        return str(texts[0])
    finally:
        destroy(options, texts)


def _discard(reused: Any, output: Any) -> None:
    """A generation that did not end well: the cache it was given (updated in place) and the one it made
    are freed, with its output."""
    _dispose_cache(reused)
    if output is not None:
        _dispose_cache(output.past_key_values)
        _dispose_tensor(output.sequences)
        destroy(output)


def _when_settled(release: Callable[[], None], discard: Callable[[Any], None]) -> Callable[[Any], None]:
    """A done-callback for a generation left running after a cancel: once its promise settles, free its
    proxies and whatever it produced (an interrupted generation resolves with its output)."""

    def done(future: asyncio.Future[Any]) -> None:
        release()
        output = None if future.cancelled() or future.exception() is not None else future.result()
        discard(output)

    return done


def _masker(constraint: TokenConstraint, prompt_length: int) -> Callable[[Any, Any], Any]:
    """A logits processor for ``generate()`` (called synchronously once per step, before sampling): the
    logits of every token the constraint refuses after the tokens generated so far become -inf."""
    state: State | None = constraint.start()
    seen = prompt_length

    def process(input_ids: Any, logits: Any) -> Any:
        nonlocal state, seen
        row = input_ids[0]
        length = int(row.length)
        while seen < length and state is not None:  # the token sampled at the previous step
            state = constraint.advance(state, int(row[seen]))
            seen += 1
        data = logits.data
        values = np.frombuffer(data.to_py(), dtype=np.float32).copy()
        allowed = constraint.mask(state, values.size) if state is not None else np.zeros(values.size, bool)
        if not allowed.any():
            # a dead end: the schema needs a character no whole token of this vocabulary writes (a rare
            # symbol: only byte pieces of it are tokens); end here, and the validator sends it on
            allowed[list(constraint.vocabulary.eos_ids)] = True
        values[~allowed] = -np.inf
        data.assign(values)
        destroy(row, data)
        return logits

    return process


def _scorer(logprobs: list[float], prompt_length: int) -> Callable[[Any, Any], Any]:
    """A logits processor (after any mask) that appends each chosen token's log-probability to
    ``logprobs``: a step's log-softmax is kept until the next step's ``input_ids`` name the token chosen
    (its ``last`` reads the final one from the output's sequence)."""
    state: dict[str, Any] = {"row": None, "seen": prompt_length}

    def process(input_ids: Any, logits: Any) -> Any:
        row = input_ids[0]
        length = int(row.length)
        kept = state["row"]
        if kept is not None and length > state["seen"]:
            logprobs.append(cascade.token_logprob(kept, int(row[state["seen"]])))
        state["seen"] = length
        data = logits.data
        state["row"] = np.frombuffer(data.to_py(), dtype=np.float32).copy()
        destroy(row, data)
        return logits

    process.last = lambda token: (  # type: ignore[attr-defined]
        logprobs.append(cascade.token_logprob(state["row"], token)) if state["row"] is not None else None
    )
    return process


async def _ort_ready() -> None:
    """ONNX Runtime's build can load (py-bridge.js ``ortReady``: its wasm parts, where a static site serves
    it in parts, fetched, checked and joined)."""
    import hybrid_router_js

    await hybrid_router_js.ortReady()


class _Pieces:
    """A generation's streamer callbacks: tokens counted, text handed to ``on_text`` (structured output
    token by token: the text streamer waits for a space, and compact JSON has none; every token the
    constraint allows is whole text on its own)."""

    def __init__(self, on_text: Callable[[str], None] | None, constraint: TokenConstraint | None) -> None:
        self.on_text = on_text
        self.constraint = constraint
        self.tokens = 0

    def token(self, ids: Any) -> None:
        self.tokens += 1
        if self.constraint is not None and self.on_text is not None:
            piece = self.constraint.vocabulary.text_of(int(ids[0]))
            if piece:
                self.on_text(piece)

    def text(self, piece: Any) -> None:
        if self.on_text is not None and piece and self.constraint is None:
            self.on_text(str(piece))


class TransformersJsRuntime:
    """Pipelines of Transformers.js, created once per (task, model, dtype, device) and reused.

    Concurrent first calls for the same pipeline share one load, which runs as a task of its own: a
    cancelled caller leaves it, and only the last one to leave stops it. Transformers.js 4.3.1 chains every
    session creation on one promise and never recovers from a rejection, so WebGPU is never tried
    without an adapter (:class:`~hybrid_router.routing.devices.Devices` demotes such a model at once).
    """

    def __init__(self, module: Any, *, devices: Devices, cache: ModelCache | None = None) -> None:
        self._tjs = getattr(module, "js_obj", module)  # the raw JS module
        self.devices = devices
        #: model files come from here, verified, before Transformers.js reads them (its customCache)
        self.cache = cache
        self._pipelines: dict[_Key, asyncio.Future[Any]] = {}
        #: the progress listener of each call waiting for a load (None: the call takes no progress)
        self._waiters: dict[_Key, list[ProgressFn | None]] = {}
        #: the KV cache of the latest on-device chat, for its next turn (see :mod:`.kv_cache`)
        self.kv = KvSlot(dispose=_dispose_cache)
        #: structured output: each chat model's vocabulary as text, and the latest schemas' constraints
        self._vocabularies: dict[str, Vocabulary] = {}
        self._constraints: dict[tuple[str, str], TokenConstraint] = {}
        self._use_ort_build()

    def _use_ort_build(self) -> None:
        """Load the ONNX Runtime build the routing chose for this device, in its proxy worker where it said
        so (:func:`~hybrid_router.routing.devices.choose_ort_runtime`); before the first session, which is
        when ONNX Runtime reads these settings."""
        import hybrid_router_js

        choice = self.devices.runtime
        hybrid_router_js.useOrtBuild(choice.build, choice.proxy, choice.reason)

    def _drop_webgpu(self, model: ModelEntry) -> None:
        """``model`` moved to wasm: its WebGPU pipelines are freed."""
        for key in [k for k in self._pipelines if k[1] == model.id and k[3] == "webgpu"]:
            fut = self._pipelines.pop(key)
            if _ready(fut) and hasattr(fut.result(), "dispose"):
                asyncio.ensure_future(fut.result().dispose())

    async def _on_device(self, model: ModelEntry, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work``; when it fails on WebGPU, the routing's rule may move the model to wasm: once more."""
        device = self.devices.device_of(model)
        try:
            return await work()
        except InferenceError as exc:
            if not self.devices.retry_on_wasm(model, device, exc):
                raise
            self._drop_webgpu(model)
            return await work()

    @property
    def loaded(self) -> list[dict[str, str]]:
        return [
            {"task": t, "model": m, "dtype": d, "device": dev}
            for (t, m, d, dev), fut in self._pipelines.items()
            if _ready(fut)
        ]

    async def _pipeline(
        self, task: str, model: ModelEntry, dtype: str, on_progress: ProgressFn | None
    ) -> Any:
        while True:
            device = self.devices.device_of(model)
            key = (task, model.id, dtype, device)
            loading = self._pipelines.get(key)
            if loading is None:
                loading = asyncio.ensure_future(
                    self._load(task, model, dtype, device, self._progress_of(key))
                )
                self._pipelines[key] = loading
                loading.add_done_callback(functools.partial(self._settled, key))
            try:
                return await self._join(key, loading, on_progress)
            except ModelLoadError as exc:
                if not self.devices.retry_on_wasm(model, device, exc):
                    raise
                self._drop_webgpu(model)  # WebGPU could not take it: the same model on wasm
            except _LoadStopped:
                continue  # its last waiter stopped the load just before this call joined: load again

    async def _join(self, key: _Key, loading: asyncio.Future[Any], on_progress: ProgressFn | None) -> Any:
        """Wait for a shared load. A cancelled waiter leaves it; the last one to leave stops it (the
        download too), so a load outlives a cancelled first caller while others wait for it."""
        waiters = self._waiters.setdefault(key, [])
        waiters.append(on_progress)
        try:
            return await asyncio.shield(loading)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is None or me.cancelling():  # this call was cancelled
                if len(waiters) == 1 and not loading.done():
                    loading.cancel()
                raise
            raise _LoadStopped from None
        finally:
            waiters.remove(on_progress)
            if not waiters:
                self._waiters.pop(key, None)

    def _progress_of(self, key: _Key) -> ProgressFn:
        """A load's progress goes to every call waiting for it."""

        def progress(event: dict[str, Any]) -> None:
            for listener in list(self._waiters.get(key, ())):
                if listener is not None:
                    listener(event)

        return progress

    def _settled(self, key: _Key, loading: asyncio.Future[Any]) -> None:
        """A failed or stopped load is forgotten (the next call loads again); its error is retrieved here
        so that a load nobody waits for any more logs nothing."""
        if loading.cancelled() or loading.exception() is not None:
            if self._pipelines.get(key) is loading:
                del self._pipelines[key]

    async def _load(
        self, task: str, model: ModelEntry, dtype: str, device: str, on_progress: ProgressFn | None
    ) -> Any:
        def tagged(data: dict[str, Any]) -> None:
            if on_progress is not None:
                on_progress({**data, "model": model.id, "dtype": dtype})

        def progress(event: Any) -> None:
            data = event.to_py() if hasattr(event, "to_py") else dict(event)
            # with the cache, the files were fetched and verified above: Transformers.js only re-reads them
            if self.cache is None or data.get("status") not in _FILE_EVENTS:
                tagged(data)

        refs = self.cache.files(model.id, dtype) if self.cache is not None else []
        callback = create_proxy(progress)
        options = js_object({"dtype": dtype, "device": device, "progress_callback": callback})
        try:
            if self.cache is not None:  # every file read and checked against the manifest, held for the load
                await self.cache.ensure([(model.id, dtype)], on_progress=tagged, hold=True)
            await _ort_ready()  # a static site's ONNX Runtime wasm in parts: joined before a session
            pipe = await self._tjs.pipeline(task, model.id, options)
            if task in _GENERATIVE:
                yield_between_steps(pipe)
            return pipe
        except JsException as exc:
            raise ModelLoadError(
                f"could not load {model.id} ({dtype}) for {task} on {device}: {message(exc)}",
                hint="Check that the model is built (./hr build) and served under /models/; "
                "reload the page if the cache was cleared.",
                model=model.id,
                dtype=dtype,
                task=task,
                device=device,
            ) from exc
        finally:
            callback.destroy()
            if self.cache is not None:
                self.cache.release(refs)

    async def feature_extraction(
        self,
        model: ModelEntry,
        dtype: str,
        texts: list[str],
        *,
        pooling: str,
        normalize: bool,
        on_progress: ProgressFn | None = None,
    ) -> np.ndarray:
        return await self._on_device(
            model,
            lambda: self._feature_extraction(
                model, dtype, texts, pooling=pooling, normalize=normalize, on_progress=on_progress
            ),
        )

    async def _feature_extraction(
        self,
        model: ModelEntry,
        dtype: str,
        texts: list[str],
        *,
        pooling: str,
        normalize: bool,
        on_progress: ProgressFn | None = None,
    ) -> np.ndarray:
        """The feature-extraction pipeline's steps (tokenize, run, pool), with reference truncation.

        Transformers.js truncates after adding special tokens, so a text longer than the window loses
        its final ``[SEP]``; Hugging Face tokenizers (the reference) truncate first and keep it. We put
        it back before running the model, then pool in numpy.
        """
        pipe = await self._pipeline("feature-extraction", model, dtype, on_progress)
        inputs = outputs = None
        try:
            inputs = pipe.tokenizer(js_object(list(texts)), js_object({"padding": True, "truncation": True}))
            mask = ints(inputs.attention_mask)
            restore_final_special_token(inputs.input_ids, pipe.tokenizer.sep_token_id, mask)
            outputs = await pipe.model(inputs)
            hidden = tensor_to_numpy(outputs.last_hidden_state)
        except JsException as exc:
            raise InferenceError(
                f"{model.id} failed on {len(texts)} text(s): {message(exc)}",
                model=model.id,
                dtype=dtype,
                task="feature-extraction",
            ) from exc
        finally:
            dispose(outputs)
            destroy(inputs, outputs)
        if pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)

    async def count_chat_tokens(
        self,
        model: ModelEntry,
        dtype: str,
        messages: Sequence[ChatMessage],
        on_progress: ProgressFn | None = None,
    ) -> int:
        return await self._on_device(
            model, lambda: self._count_chat_tokens(model, dtype, messages, on_progress)
        )

    async def _count_chat_tokens(
        self,
        model: ModelEntry,
        dtype: str,
        messages: Sequence[ChatMessage],
        on_progress: ProgressFn | None = None,
    ) -> int:
        """Tokens of the prompt as the model sees it: chat template applied, generation prompt added."""
        pipe = await self._pipeline("text-generation", model, dtype, on_progress)
        ids = None
        try:
            ids = pipe.tokenizer.apply_chat_template(
                js_object(_chat(messages)),
                js_object(
                    {
                        "tokenize": True,
                        "add_generation_prompt": True,
                        "return_tensor": False,
                        "return_dict": False,
                    }
                ),
            )
            return int(ids.length)
        except JsException as exc:
            raise InferenceError(
                f"{model.id}: could not apply the chat template: {message(exc)}", model=model.id
            ) from exc
        finally:
            destroy(ids)

    async def generate(
        self,
        model: ModelEntry,
        dtype: str,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int,
        temperature: float,
        on_text: Callable[[str], None] | None = None,
        on_progress: ProgressFn | None = None,
        schema: Schema | None = None,
        logprobs: list[float] | None = None,
    ) -> dict[str, Any]:
        """Chat completion on the device, streaming text pieces to ``on_text``; with ``schema``, decoding
        is constrained to it (a ``logits_processor`` masks every token the schema's automaton refuses).
        ``logprobs``: each chosen token's log-probability is appended as it is chosen (a second
        processor, after the mask), for the cascade's check.

        Greedy when ``temperature`` is 0. Cancelling the task interrupts generation at the next token
        (Transformers.js's InterruptableStoppingCriteria) and re-raises.

        The text-generation pipeline's steps (chat template, tokenize, ``model.generate``, decode), run
        here so that the KV cache of the conversation's previous turn is passed in and the new one kept
        (:mod:`.kv_cache`): a follow-up turn evaluates only the tokens after the previous answer.
        ``tokens_cached`` in the result: the prompt tokens served from that cache (0: all evaluated).
        """
        pipe = await self._pipeline("text-generation", model, dtype, on_progress)
        constraint = self._constraint(pipe, model, schema) if schema is not None else None
        if constraint is not None and constraint.unwritable:
            raise InferenceError(
                f"{model.id} cannot write {constraint.unwritable!r} (no token of its vocabulary has it), "
                "which every answer to the schema needs",
                hint="Allow the cloud (route 'auto'), or use a schema without those characters.",
                model=model.id,
                task="text-generation",
            )
        owner = (model.id, dtype, self.devices.device_of(model))
        tokenizer = pipe.tokenizer
        prompt_ids, mask, prompt = _tokenized_chat(tokenizer, model, messages)
        reused = self.kv.take(owner, prompt)
        pieces = _Pieces(on_text, constraint)
        js_text, js_token = create_proxy(pieces.text), create_proxy(pieces.token)
        stopper = self._tjs.InterruptableStoppingCriteria.new()
        streamer = self._tjs.TextStreamer.new(
            tokenizer,
            js_object(
                {
                    "skip_prompt": True,
                    "skip_special_tokens": True,
                    "callback_function": js_text,
                    "token_callback_function": js_token,
                }
            ),
        )
        options: dict[str, Any] = {
            "input_ids": prompt_ids,
            "attention_mask": mask,
            "max_new_tokens": max_new_tokens,
            "streamer": streamer,
            "stopping_criteria": stopper,
            "do_sample": temperature > 0,
            "return_dict_in_generate": True,
        }
        if temperature > 0:
            options["temperature"] = temperature
        if reused is not None:
            options["past_key_values"] = reused.cache  # updated in place by generate
        js_masker = None
        if constraint is not None:
            js_masker = create_proxy(_masker(constraint, len(prompt)))
            options["logits_processor"] = [js_masker]
        scorer = js_scorer = None
        if logprobs is not None:
            scorer = _scorer(logprobs, len(prompt))
            js_scorer = create_proxy(scorer)
            options["logits_processor"] = [*options.get("logits_processor", []), js_scorer]
        js_options = js_object(options)

        def release(_: Any = None) -> None:
            destroy(js_text, js_token, streamer, stopper, js_options, prompt_ids, mask, js_masker, js_scorer)

        discard = functools.partial(_discard, reused.cache if reused is not None else None)
        running = asyncio.ensure_future(pipe.model.generate(js_options))
        try:
            output = await asyncio.shield(running)
        except asyncio.CancelledError:
            # stop at the next token; the callbacks and the caches must outlive the JS promise: free them then
            stopper.interrupt()
            running.add_done_callback(_when_settled(release, discard))
            raise
        except JsException as exc:
            release()
            discard(None)
            raise InferenceError(
                f"{model.id} failed while generating: {message(exc)}",
                model=model.id,
                dtype=dtype,
                task="text-generation",
            ) from exc
        try:
            sequence = ints(output.sequences)[0]
            held = int(output.past_key_values.get_seq_length())  # the last token was sampled, not evaluated
            # the pipeline's decoding: the whole sequence less the decoded prompt
            whole, asked = _decoded(tokenizer, output.sequences), _decoded(tokenizer, prompt_ids)
        except JsException as exc:
            discard(output)
            raise InferenceError(
                f"{model.id}: could not read the generated tokens: {message(exc)}", model=model.id
            ) from exc
        finally:
            release()
        if reused is not None:
            destroy(reused.cache)  # the proxy only: generate updated that cache in place, it lives on
        if scorer is not None and logprobs is not None and len(logprobs) < pieces.tokens and len(sequence):
            scorer.last(int(sequence[-1]))  # type: ignore[attr-defined]
        self.kv.put(CachedPrefix(owner, tuple(int(t) for t in sequence[:held]), output.past_key_values))
        _dispose_tensor(output.sequences)
        destroy(output)
        return {
            "text": whole[len(asked) :],
            "tokens_out": pieces.tokens,
            "finish_reason": "length" if pieces.tokens >= max_new_tokens else "stop",
            "tokens_cached": len(reused.tokens) if reused is not None else 0,
        }

    def _constraint(self, pipe: Any, model: ModelEntry, schema: Schema) -> TokenConstraint:
        """``schema``'s token constraint over ``model``'s vocabulary (both kept: masks are memoized)."""
        vocab = self._vocabularies.get(model.id)
        if vocab is None:
            tokenizer = pipe.tokenizer
            inner = tokenizer._tokenizer
            tokens = inner.model.vocab.to_py()
            special = [int(t.id) for t in inner.added_tokens]
            eos = pipe.model.generation_config.eos_token_id
            eos_ids = [int(e) for e in eos] if hasattr(eos, "__iter__") else [int(eos)]
            vocab = self._vocabularies[model.id] = Vocabulary.from_byte_level(
                tokens, special=special, eos_ids=eos_ids
            )
        key = (model.id, schema.to_json())
        constraint = self._constraints.pop(key, None) or TokenConstraint(schema, vocab)
        self._constraints[key] = constraint  # most recent last
        while len(self._constraints) > 8:
            self._constraints.pop(next(iter(self._constraints)))
        return constraint

    async def transcribe(
        self, model: ModelEntry, dtype: str, audio: np.ndarray, *, on_progress: ProgressFn | None = None
    ) -> str:
        return await self._on_device(
            model, lambda: self._transcribe(model, dtype, audio, on_progress=on_progress)
        )

    async def _transcribe(
        self, model: ModelEntry, dtype: str, audio: np.ndarray, *, on_progress: ProgressFn | None = None
    ) -> str:
        """Speech to text with the automatic-speech-recognition pipeline (Whisper), greedy.

        ``audio``: 16 kHz mono float32 samples, handed to JS as a Float32Array (one copy). Audio over 30 s
        is cut into 30 s windows with 5 s of overlap, which the pipeline merges. Cancelling the task stops
        decoding at the next token (InterruptableStoppingCriteria) and re-raises.
        """
        import js

        pipe = await self._pipeline("automatic-speech-recognition", model, dtype, on_progress)
        samples = np.ascontiguousarray(audio, dtype="<f4")
        raw = to_js(samples.tobytes())  # a Uint8Array over a fresh ArrayBuffer (aligned for Float32Array)
        floats = js.Float32Array.new(raw.buffer, 0, samples.size)
        stopper = self._tjs.InterruptableStoppingCriteria.new()
        options: dict[str, Any] = {"stopping_criteria": stopper, "return_timestamps": False}
        if samples.size > 30 * 16_000:
            options.update(chunk_length_s=30, stride_length_s=5)

        def release(_: Any = None) -> None:
            destroy(raw, floats, stopper)

        running = asyncio.ensure_future(pipe(floats, js_object(options)))
        try:
            output = await asyncio.shield(running)
        except asyncio.CancelledError:
            stopper.interrupt()  # JS keeps the arrays until the promise settles: free them then
            running.add_done_callback(released_when_settled(release))
            raise
        except JsException as exc:
            release()
            seconds = samples.size / 16_000
            raise InferenceError(
                f"{model.id} failed on {seconds:.1f} s of audio: {message(exc)}",
                model=model.id,
                dtype=dtype,
                task="automatic-speech-recognition",
            ) from exc
        try:
            return str(output.text)
        finally:
            destroy(output)
            release()

    async def text_classification(
        self, model: ModelEntry, dtype: str, texts: list[str], *, on_progress: ProgressFn | None = None
    ) -> list[list[tuple[str, float]]]:
        async def run() -> list[list[tuple[str, float]]]:
            pipe = await self._pipeline("text-classification", model, dtype, on_progress)
            return await encoder_tasks.text_classification(pipe, model, dtype, texts)

        return await self._on_device(model, run)

    async def zero_shot_classification(
        self,
        model: ModelEntry,
        dtype: str,
        text: str,
        labels: list[str],
        *,
        hypothesis_template: str,
        multi_label: bool,
        on_progress: ProgressFn | None = None,
    ) -> list[tuple[str, float]]:
        async def run() -> list[tuple[str, float]]:
            pipe = await self._pipeline("zero-shot-classification", model, dtype, on_progress)
            return await encoder_tasks.zero_shot(
                pipe,
                model,
                dtype,
                text,
                labels,
                hypothesis_template=hypothesis_template,
                multi_label=multi_label,
            )

        return await self._on_device(model, run)

    async def token_classification(
        self, model: ModelEntry, dtype: str, text: str, *, on_progress: ProgressFn | None = None
    ) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            pipe = await self._pipeline("token-classification", model, dtype, on_progress)
            return await encoder_tasks.token_classification(pipe, model, dtype, text)

        return await self._on_device(model, run)

    async def cross_encoder_scores(
        self,
        model: ModelEntry,
        dtype: str,
        query: str,
        documents: list[str],
        *,
        on_progress: ProgressFn | None = None,
    ) -> list[float]:
        async def run() -> list[float]:
            pipe = await self._pipeline("text-classification", model, dtype, on_progress)
            return await encoder_tasks.cross_encoder_scores(pipe, model, dtype, query, documents)

        return await self._on_device(model, run)
