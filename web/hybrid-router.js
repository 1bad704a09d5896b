// @ts-check
/**
 * Hybrid Router's client: starts the worker (Python in Pyodide) and calls it.
 *
 *   import { HybridRouter } from "/hybrid-router.js";
 *   const router = await HybridRouter.create({ onProgress: (e) => console.log(e) });
 *   const { vectors, dims, model, route } = await router.embed(["hello", "world"]);
 *   router.terminate();
 *
 * Errors are `Error`s whose `name` is one of ERROR_NAMES, with a `hint` a person can act on and
 * `details`. Every call takes `{ signal }` (an AbortSignal): aborting cancels the Python task and
 * rejects with an `AbortError`.
 */

/** The error names the router can reject with (see py_src/hybrid_router/errors.py). */
export const ERROR_NAMES = Object.freeze([
  "ValidationError", "PolicyError", "LocalError", "ModelLoadError", "InferenceError", "ContextLengthError",
  "StorageError", "CloudError", "RateLimitError", "CloudTimeoutError", "OfflineError", "ProtocolError",
  "AbortError", "WorkerError", "InternalError",
]);

/**
 * @typedef {{ target: "local" | "cloud", model: string, error_name: string, message: string }} FallbackStep
 * @typedef {{ target: "local" | "cloud", reason: string, rule: string, model: string, ms: number,
 *   fallbacks: FallbackStep[], tokens_in: number, tokens_out: number, cost_usd: number,
 *   complexity?: number | null, device?: string | null, dtype?: string | null, decision_ms?: number }} Route
 * @typedef {{ vectors: number[][], dims: number, model: string, dtype?: string, route: Route }} EmbedResult
 * @typedef {{ labels: { label: string, score: number }[], model: string, dtype: string, route: Route }} ClassifyResult
 * @typedef {{ text: string, label: string, start: number, end: number, score: number }} NamedEntity
 * @typedef {{ entities: NamedEntity[], model: string, dtype: string, route: Route }} NerResult
 * @typedef {{ results: { index: number, score: number, document: string }[], model: string, dtype: string,
 *   route: Route }} RerankResult
 * @typedef {{ stage?: string, status?: string, step?: string, progress?: number, file?: string,
 *   loaded?: number, total?: number, model?: string }} ProgressEvent
 * @typedef {{ signal?: AbortSignal, onProgress?: (event: ProgressEvent) => void }} CallOptions
 */

export class HybridRouterError extends Error {
  /** @param {{ name: string, message: string, hint?: string, details?: any }} wire */
  constructor(wire) {
    super(wire.message);
    this.name = wire.name;
    /** @type {string} */ this.hint = wire.hint || "";
    /** @type {Record<string, any>} */ this.details = wire.details || {};
  }
}

/**
 * @typedef {{ prompt?: string, messages?: { role: string, content: string }[], maxTokens?: number,
 *   temperature?: number, route?: "auto" | "local" | "cloud", signal?: AbortSignal,
 *   onProgress?: (e: ProgressEvent) => void }} GenerateOptions
 * @typedef {{ tokens_in: number, tokens_out: number }} Usage
 */

/** camelCase option -> snake_case wire key */
const SNAKE = /** @type {Record<string, string>} */ ({ maxTokens: "max_tokens", dailyBudgetUSD: "daily_budget_usd",
  overBudget: "over_budget" });

/** @param {Record<string, any>} options */
function generateParams(options) {
  /** @type {Record<string, any>} */ const params = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) params[SNAKE[k] ?? k] = v;
  return params;
}

/** @param {string} message @param {string} hint @param {any} [details] */
const validationError = (message, hint, details = {}) =>
  new HybridRouterError({ name: "ValidationError", message, hint, details: { field: "audio", ...details } });

/** @param {Uint8Array} head */
const isWav = (head) => {
  const tag = (/** @type {number} */ at) => String.fromCharCode(...head.subarray(at, at + 4));
  return head.length >= 12 && (tag(0) === "RIFF" || tag(0) === "RF64") && tag(8) === "WAVE";
};

/**
 * Decode a compressed recording (webm/ogg/mp3...) to 16 kHz mono with the page's audio stack.
 * @param {ArrayBuffer} bytes
 */
async function decodeWithAudioContext(bytes) {
  const Offline = /** @type {any} */ (globalThis).OfflineAudioContext;
  if (!Offline) {
    throw validationError("audio is not a WAV file, and there is no AudioContext here to decode it",
      "Pass a WAV file or a Float32Array of 16 kHz mono samples (workers have no AudioContext).");
  }
  let buffer;
  try {
    buffer = await new Offline({ numberOfChannels: 1, length: 1, sampleRate: 16000 }).decodeAudioData(bytes);
  } catch (err) {
    throw validationError(`audio could not be decoded: ${err}`,
      "Pass a WAV file, a Float32Array of 16 kHz mono samples, or a format this browser can play.");
  }
  const out = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const channel = buffer.getChannelData(c);
    for (let i = 0; i < out.length; i++) out[i] += channel[i] / buffer.numberOfChannels;
  }
  return out;
}

/**
 * The wire params of `transcribe`: `{ audio, sampling_rate }` for samples, `{ wav }` for a WAV file.
 * @param {unknown} audio @param {number | undefined} samplingRate
 * @returns {Promise<Record<string, any>>}
 */
async function audioParams(audio, samplingRate) {
  if (audio instanceof Float32Array) return { audio, sampling_rate: samplingRate ?? 16000 };
  if (Array.isArray(audio) || audio instanceof Float64Array) {
    return { audio: Float32Array.from(/** @type {ArrayLike<number>} */ (audio)), sampling_rate: samplingRate ?? 16000 };
  }
  /** @type {ArrayBuffer} */ let bytes;
  if (typeof Blob !== "undefined" && audio instanceof Blob) bytes = await audio.arrayBuffer();
  else if (audio instanceof ArrayBuffer) bytes = audio;
  else if (audio instanceof Uint8Array) bytes = audio.slice().buffer;
  else {
    const got = audio === null ? "null" : ArrayBuffer.isView(audio) ? audio.constructor.name : typeof audio;
    throw validationError(`audio must be a Float32Array, a Blob/File or an ArrayBuffer, got ${got}`,
      "Pass a Float32Array of 16 kHz mono samples, or a WAV Blob/File (e.g. from an <input type=file>).",
      { got });
  }
  if (bytes.byteLength === 0) {
    throw validationError("audio is empty", "Record or pick some audio first.");
  }
  if (isWav(new Uint8Array(bytes, 0, Math.min(12, bytes.byteLength)))) return { wav: bytes };
  return { audio: await decodeWithAudioContext(bytes), sampling_rate: 16000 };
}

/** @type {Promise<boolean> | null} */ let persistence = null;

/**
 * Ask once per page for persistent storage, so the browser does not evict cached models under pressure
 * (only a page may ask: workers have no `persist()`). Headless browsers answer false.
 */
export function requestPersistence() {
  const storage = /** @type {any} */ (globalThis.navigator)?.storage;
  persistence ??= (async () => {
    try {
      return (await storage?.persisted?.()) || Boolean(await storage?.persist?.());
    } catch {
      return false;
    }
  })();
  return persistence;
}

/** @param {string} message @param {any} [details] */
const abortError = (message, details = {}) => new HybridRouterError({
  name: "AbortError", message, hint: "The call was cancelled; call again if you still need the result.", details,
});

/**
 * @typedef {{ id: string, score: number, text: string }} SearchHit
 */

/** A handle on one vector index of the worker (from `router.openIndex(name)`). */
export class VectorIndex {
  /** @type {HybridRouter} */ #router;
  /**
   * @param {HybridRouter} router
   * @param {{ name: string, model: string, dims: number | null, count: number, persistent: boolean }} info
   */
  constructor(router, info) {
    this.#router = router;
    /** @type {string} */ this.name = info.name;
    /** @type {string} the embedding model of its vectors */ this.model = info.model;
    /** @type {number | null} */ this.dims = info.dims;
    /** @type {number} items, as of the last call */ this.count = info.count;
    /** @type {boolean} false: IndexedDB was unavailable, the index lives in memory only */
    this.persistent = info.persistent;
  }

  /**
   * Embed `texts` and store them under `ids` (an id already there gets the new text).
   * @param {string[]} ids @param {string[]} texts @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<{ added: number, replaced: number, count: number, route: Route }>}
   */
  async add(ids, texts, options = {}) {
    const out = await this.#router.call("index_add", { name: this.name, ids, texts }, options);
    this.count = out.count;
    return out;
  }

  /**
   * The `topK` (default 10) items most similar to `query`, best first: `[{ id, score, text }]` (score is
   * the cosine similarity); the array's `route` property is the route record.
   * @param {string} query @param {{ topK?: number, signal?: AbortSignal }} [options]
   * @returns {Promise<SearchHit[] & { route?: Route }>}
   */
  async search(query, options = {}) {
    const { topK, signal } = options;
    const out = await this.#router.call("index_search", { name: this.name, query, top_k: topK ?? 10 }, { signal });
    this.count = out.count;
    return Object.assign(out.results, { route: out.route });
  }

  /**
   * Remove items by id (unknown ids are reported in `missing`).
   * @param {string[]} ids @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<{ removed: number, missing: string[], count: number }>}
   */
  async remove(ids, options = {}) {
    const out = await this.#router.call("index_remove", { name: this.name, ids }, options);
    this.count = out.count;
    return out;
  }

  /** Delete the whole index, from memory and from IndexedDB. */
  async drop() {
    await this.#router.call("index_drop", { name: this.name });
    this.count = 0;
  }
}

export class HybridRouter {
  /** @type {Worker} */ #worker;
  /** @type {Map<number, { resolve: (v: any) => void, reject: (e: any) => void, onProgress?: (e: any) => void, onChunk?: (v: any) => void, cleanup: () => void }>} */
  #pending = new Map();
  #nextId = 1;
  /** @type {((e: ProgressEvent) => void) | undefined} */ #onProgress;
  /** @type {HybridRouterError | null} */ #dead = null;
  /** @type {any} */ info = null;

  /**
   * Start the worker and resolve once Python, numpy and Transformers.js are ready.
   * @param {{ onProgress?: (e: ProgressEvent) => void, workerUrl?: string | URL, bootUrl?: string, signal?: AbortSignal, policy?: Parameters<HybridRouter["configure"]>[0], cloud?: { timeoutMs?: number, maxRetries?: number }, cacheBudgetBytes?: number | null, device?: "wasm" | "webgpu" }} [options]
   * @returns {Promise<HybridRouter>}
   */
  static async create(options = {}) {
    const router = new HybridRouter(options);
    await router.#ready(options);
    return router;
  }

  /** @param {{ onProgress?: (e: ProgressEvent) => void, workerUrl?: string | URL }} options */
  constructor(options) {
    this.#onProgress = options.onProgress;
    const url = options.workerUrl ?? new URL("./worker.js", import.meta.url);
    this.#worker = new Worker(url, { type: "module", name: "hybrid-router" });
  }

  /** @param {{ bootUrl?: string, signal?: AbortSignal, policy?: Record<string, any>, cloud?: { timeoutMs?: number, maxRetries?: number }, cacheBudgetBytes?: number | null, device?: string }} options */
  #ready(options) {
    return new Promise((resolve, reject) => {
      const fail = (/** @type {HybridRouterError} */ err) => { this.#die(err); reject(err); };
      options.signal?.addEventListener("abort", () => fail(abortError("start-up was cancelled")), { once: true });
      this.#worker.onmessage = (event) => {
        const msg = event.data;
        if (msg.id === null || msg.id === undefined) {
          if (msg.type === "progress") this.#onProgress?.(msg.event);
          else if (msg.type === "ready") { this.info = msg.info; this.#worker.onmessage = (e) => this.#reply(e.data); resolve(undefined); }
          else if (msg.type === "fatal") fail(new HybridRouterError(msg.error));
          return;
        }
        this.#reply(msg);
      };
      this.#worker.onerror = (event) => {
        event.preventDefault?.();
        fail(new HybridRouterError({ name: "WorkerError", message: `the worker failed: ${event.message || "unknown error"}`,
          hint: "Reload the page; if it persists, check the browser console and that the site is served by serve.py." }));
      };
      this.#worker.onmessageerror = () => this.#die(new HybridRouterError({ name: "WorkerError",
        message: "a message from the worker could not be read", hint: "Reload the page." }));
      /** @type {Record<string, any>} */ const policy = {};
      for (const [k, v] of Object.entries(options.policy ?? {})) policy[SNAKE[k] ?? k] = v;
      const cloud = { timeout_s: options.cloud?.timeoutMs ? options.cloud.timeoutMs / 1000 : undefined,
        max_retries: options.cloud?.maxRetries };
      requestPersistence();
      this.#worker.postMessage({ type: "init", options: { bootUrl: options.bootUrl, policy,
        cacheBudgetBytes: options.cacheBudgetBytes, device: options.device,
        cloud: Object.fromEntries(Object.entries(cloud).filter(([, v]) => v !== undefined)) } });
    });
  }

  /** @param {any} msg */
  #reply(msg) {
    const call = this.#pending.get(msg.id);
    if (!call) return; // a reply to a call already settled (e.g. aborted)
    if (msg.type === "progress") { call.onProgress?.(msg.event); this.#onProgress?.(msg.event); return; }
    if (msg.type === "chunk") { call.onChunk?.(msg.value); return; }
    this.#pending.delete(msg.id);
    call.cleanup();
    if (msg.type === "result") call.resolve(msg.value);
    else if (msg.type === "error") call.reject(new HybridRouterError(msg.error));
    else call.reject(new HybridRouterError({ name: "ProtocolError", message: `unknown reply type ${msg.type}`, hint: "Reload the page." }));
  }

  /** @param {HybridRouterError} error */
  #die(error) {
    if (this.#dead) return;
    this.#dead = error;
    this.#worker.terminate();
    for (const call of this.#pending.values()) { call.cleanup(); call.reject(error); }
    this.#pending.clear();
  }

  /**
   * Send one call to the worker.
   * @param {string} method @param {Record<string, any>} params
   * @param {CallOptions & { onChunk?: (v: any) => void }} [options]
   */
  call(method, params, options = {}) {
    if (this.#dead) return Promise.reject(this.#dead);
    const { signal, onProgress, onChunk } = options;
    if (signal?.aborted) return Promise.reject(abortError("aborted before it started"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (!this.#pending.has(id)) return;
        this.#pending.delete(id);
        this.#worker.postMessage({ id, type: "cancel" });
        reject(abortError("the call was aborted", { id }));
      };
      const cleanup = () => signal?.removeEventListener("abort", onAbort);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(id, { resolve, reject, onProgress, onChunk, cleanup });
      try {
        this.#worker.postMessage({ id, type: "call", method, params });
      } catch (err) {
        this.#pending.delete(id);
        cleanup();
        reject(new HybridRouterError({ name: "ValidationError", message: `the arguments cannot be sent to the worker: ${err}`,
          hint: "Pass plain data (strings, numbers, arrays, objects); functions and DOM objects cannot be sent.",
          details: { method } }));
      }
    });
  }

  /**
   * Sentence embeddings, computed on the device: one unit-norm vector per text, in order.
   * @param {string[]} texts
   * @param {CallOptions & { model?: string, dtype?: string }} [options]
   * @returns {Promise<EmbedResult>}
   */
  embed(texts, options = {}) {
    const { model, dtype, ...rest } = options;
    return this.call("embed", { texts, model: model ?? null, dtype: dtype ?? null }, rest);
  }

  /**
   * Text classification on the device, labels best first. Without `labels`: the sentiment classifier
   * (NEGATIVE / POSITIVE). With `labels`: zero-shot over them with the NLI model, or by embedding similarity where
   * no NLI model is installed; with `examples` ({ label: [texts] }): few-shot by example centroids (scores sum to 1 unless
   * `multiLabel`; the hypothesis is `hypothesisTemplate` with the label for `{}`, "This example is {}." by default).
   * @param {string} text
   * @param {CallOptions & { labels?: string[], examples?: Record<string, string[]>, model?: string, dtype?: string, multiLabel?: boolean,
   *   hypothesisTemplate?: string }} [options]
   * @returns {Promise<ClassifyResult>}
   */
  classify(text, options = {}) {
    const { labels, examples, model, dtype, multiLabel, hypothesisTemplate, ...rest } = options;
    return this.call("classify", {
      text, labels: labels ?? null, model: model ?? null, dtype: dtype ?? null, multi_label: multiLabel ?? false,
      hypothesis_template: hypothesisTemplate ?? null, examples: examples ?? null,
    }, rest);
  }

  /**
   * Named entities on the device (PER, ORG, LOC, MISC), in text order; `start`/`end` are offsets into `text`
   * (`text.slice(start, end) === entity.text`).
   * @param {string} text
   * @param {CallOptions & { model?: string, dtype?: string }} [options]
   * @returns {Promise<NerResult>}
   */
  ner(text, options = {}) {
    const { model, dtype, ...rest } = options;
    return this.call("ner", { text, model: model ?? null, dtype: dtype ?? null }, rest);
  }

  /**
   * Reranks `documents` by relevance to `query` with the cross-encoder on the device, best first (the best
   * `topK`, all by default); `index` is the document's position in `documents`, `score` in 0..1.
   * @param {string} query
   * @param {string[]} documents
   * @param {CallOptions & { topK?: number, model?: string, dtype?: string }} [options]
   * @returns {Promise<RerankResult>}
   */
  rerank(query, documents, options = {}) {
    const { topK, model, dtype, ...rest } = options;
    return this.call("rerank", { query, documents, top_k: topK ?? null, model: model ?? null, dtype: dtype ?? null },
      rest);
  }

  /**
   * Speech to text on the device (whisper-tiny.en). `audio` is a Float32Array of mono samples (16 kHz unless
   * `samplingRate` says otherwise), or a Blob/File/ArrayBuffer of a WAV file (PCM or float, any rate and
   * channel count: the worker decodes, downmixes and resamples it). Other formats (webm, ogg, mp3, e.g. a
   * MediaRecorder recording) are decoded here with the page's AudioContext where there is one.
   * @param {Float32Array | number[] | Blob | ArrayBuffer | Uint8Array} audio
   * @param {CallOptions & { samplingRate?: number, model?: string, dtype?: string }} [options]
   * @returns {Promise<{ text: string, model: string, dtype: string, seconds: number, route: Route }>}
   */
  async transcribe(audio, options = {}) {
    const { samplingRate, model, dtype, ...rest } = options;
    const params = { model: model ?? null, dtype: dtype ?? null, ...(await audioParams(audio, samplingRate)) };
    return this.call("transcribe", params, rest);
  }

  /**
   * Open (or create) the vector index `name`: exact cosine search over this router's embeddings, kept in
   * the worker and persisted in IndexedDB across reloads. `model` fixes the embedding model when the index
   * is created (default: the manifest's first embedding model).
   * @param {string} name
   * @param {{ model?: string, signal?: AbortSignal }} [options]
   * @returns {Promise<VectorIndex>}
   */
  async openIndex(name, options = {}) {
    const { model, signal } = options;
    const info = await this.call("index_open", { name, model: model ?? null }, { signal });
    return new VectorIndex(this, info);
  }

  /** The names of the stored vector indexes. @returns {Promise<string[]>} */
  async listIndexes() {
    return (await this.call("index_list", {})).names;
  }

  /**
   * Text generation, on the device or in the cloud as the routing policy decides.
   * @param {GenerateOptions} options
   * @returns {Promise<{ text: string, route: Route, usage: Usage }>}
   */
  async generate(options) {
    const { signal, onProgress, ...rest } = options ?? {};
    return this.call("generate", generateParams(rest), { signal, onProgress });
  }

  /**
   * Streaming generation: an async iterable of `{ delta }` chunks, ending with `{ done: true, route, usage }`.
   * Breaking out of the loop (or aborting `signal`) cancels the request.
   * @param {GenerateOptions} options
   * @returns {AsyncIterable<{ delta?: string, done?: boolean, route?: Route, usage?: Usage }>}
   */
  stream(options) {
    const { signal, onProgress, ...rest } = options ?? {};
    const router = this;
    return {
      async *[Symbol.asyncIterator]() {
        /** @type {any[]} */ const queue = [];
        /** @type {(() => void) | null} */ let wake = null;
        const inner = new AbortController();
        const onAbort = () => inner.abort();
        signal?.addEventListener("abort", onAbort, { once: true });
        if (signal?.aborted) inner.abort();
        let finished = false;
        /** @type {any} */ let failure = null;
        const done = router.call("stream", generateParams(rest), {
          signal: inner.signal, onProgress,
          onChunk: (value) => { queue.push(value); wake?.(); },
        }).then((final) => { queue.push(final); finished = true; wake?.(); },
          (err) => { failure = err; finished = true; wake?.(); });
        try {
          while (true) {
            if (queue.length) { yield queue.shift(); continue; }
            if (finished) { if (failure) throw failure; return; }
            await new Promise((resolve) => { wake = () => { wake = null; resolve(undefined); }; });
          }
        } finally {
          signal?.removeEventListener("abort", onAbort);
          if (!finished) inner.abort(); // the consumer stopped early: cancel the request
          await done;
        }
      },
    };
  }

  /**
   * What the router has done so far.
   * @returns {Promise<{ requests: number, local: number, cloud: number, fallbacks: number, errors: number, cloudCostUSD: number, savedUSD: number }>}
   */
  async stats() {
    const s = await this.call("stats", {});
    return { requests: s.requests, local: s.local, cloud: s.cloud, fallbacks: s.fallbacks, errors: s.errors,
      cloudCostUSD: s.cloud_cost_usd, savedUSD: s.saved_usd };
  }

  /**
   * Change the routing policy of this router.
   * @param {{ route?: "auto" | "local" | "cloud", privacy?: "allow-cloud" | "local-only", tier?: string, dailyBudgetUSD?: number | null, overBudget?: "local" | "refuse" }} policy
   */
  configure(policy) {
    /** @type {Record<string, any>} */ const params = {};
    for (const [k, v] of Object.entries(policy)) params[SNAKE[k] ?? k] = v;
    return this.call("configure", params);
  }

  /**
   * Download models into the model cache (IndexedDB), verified against the manifest. `onProgress` gets
   * per-file events (`status` initiate | progress | done, `model`, `file`, `loaded`, `total`) and
   * `{ status: "progress_total", loaded, total, progress }` (bytes over the manifest's total, ending at
   * exactly 100). Aborting `signal` stops the download; the next preload resumes where it stopped.
   * Rejects with a StorageError (with a hint) when a file cannot be stored: the model then runs from memory.
   * @param {string | (string | { id: string, dtype?: string })[]} modelIds
   * @param {CallOptions & { dtype?: string }} [options]
   * @returns {Promise<{ files: number, bytes: number, from_cache: number, fetched: number, models: { id: string, dtype: string }[], events: any[] }>}
   */
  preload(modelIds, options = {}) {
    const { dtype, ...rest } = options;
    return this.call("preload", { models: typeof modelIds === "string" ? [modelIds] : modelIds, dtype: dtype ?? null }, rest);
  }

  /**
   * The models in the cache: `[{ id, dtypes, bytes, files, partial_files, last_used (s since the epoch), known }]`.
   * @param {CallOptions} [options]
   */
  cachedModels(options = {}) {
    return this.call("cached_models", {}, options);
  }

  /** Delete a model from the cache. @param {string} id @param {CallOptions} [options] */
  deleteModel(id, options = {}) {
    return this.call("delete_model", { model: id }, options);
  }

  /**
   * What the cache did: `[{ kind: "integrity" | "stale" | "storage" | "evicted" | "resumed" | "deleted",
   * model, file, message, at, error? }]`, oldest first.
   * @param {CallOptions} [options]
   */
  cacheEvents(options = {}) {
    return this.call("cache_events", {}, options);
  }

  /**
   * Cap the cache at `budgetBytes` (null: no cap); least recently used models are evicted to stay under it.
   * @param {{ budgetBytes: number | null }} settings
   */
  configureCache(settings) {
    return this.call("configure_cache", { budget_bytes: settings.budgetBytes ?? null });
  }

  /**
   * What this device can take: `{ webgpu: { adapter, fallback, real_gpu, shader_f16, max_buffer_size, ... },
   * device_memory_gb, hardware_concurrency, cross_origin_isolated, storage: { usage, quota, free, persisted },
   * online, cache, choices: { [model]: { dtype, device, why } } }`.
   * @param {CallOptions} [options]
   */
  capabilities(options = {}) {
    return this.call("capabilities", {}, options);
  }

  /**
   * The manifest's models for `task`, usable first and best first, each with where and how it would run
   * and why: `[{ model, task, usable, device, dtype, download_bytes, cached, memory_mb, score, reasons }]`.
   * @param {{ task?: string } & CallOptions} [options]
   */
  recommendModels(options = {}) {
    const { task, ...rest } = options;
    return this.call("recommend_models", { task: task ?? null }, rest);
  }

  /** Stop the worker; pending calls reject with an AbortError. */
  terminate() {
    this.#die(abortError("the router was terminated", { reason: "terminated" }));
  }
}
