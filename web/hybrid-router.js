// @ts-check
/**
 * Hybrid Router's client, the public façade: starts the worker (Python in Pyodide) and calls it.
 *
 *   import { HybridRouter } from "/hybrid-router.js";
 *   const router = await HybridRouter.create({ onProgress: (e) => console.log(e) });
 *   const { vectors, dims, model, route } = await router.embed(["hello", "world"]);
 *   router.terminate();
 *
 * Options you pass are camelCase (`maxTokens`, `topK`, `signal`); results are snake_case, as on the wire
 * and as the OpenAI and Transformers.js SDKs return them (`route.tokens_in`, `usage.tokens_out`,
 * `stats().cloud_cost_usd`). Errors are `Error`s whose `name` is one of ERROR_NAMES, with a `hint` a
 * person can act on and `details`. Every call takes `{ signal }` (an AbortSignal): aborting cancels the
 * Python task and rejects with an `AbortError`.
 *
 * The protocol (ids, cancellation, the worker dying) is in protocol.js, audio decoding in audio.js, the
 * errors in errors.js.
 */

import { audioParams } from "./audio.js";
import { ERROR_NAMES, HybridRouterError, abortError, workerError } from "./errors.js";
import { WorkerConnection } from "./protocol.js";

export { ERROR_NAMES, HybridRouterError };

/**
 * @typedef {{ target: "local" | "cloud", model: string, error_name: string, message: string }} FallbackStep
 * @typedef {{ target: "local" | "cloud" | "cache", reason: string, rule: string, model: string, ms: number,
 *   fallbacks: FallbackStep[], tokens_in: number, tokens_out: number, cost_usd: number,
 *   complexity?: number | null, device?: string | null, dtype?: string | null, decision_ms?: number,
 *   router?: Record<string, any> | null, sensitive?: SensitiveRecord | null,
 *   cache?: CacheRecord | null, finish_reason?: FinishReason | null, max_tokens?: number | null, chat_model?: ChatModel | null,
 *   verify?: VerifyRecord | null }} Route
 * @typedef {{ method: "confidence", score: number, threshold: number, mean_logprob: number | null,
 *   min_logprob: number | null, tokens_scored: number, device_tokens_out: number, escalated: boolean,
 *   not_escalated: string | null }} VerifyRecord the cascade's check of the device's answer (policy
 *   `verify: "confidence"`, docs/routing.md#the-cascade-verify-confidence): its score, the threshold, whether
 *   it went to the cloud, and why not where the cloud was not allowed
 * @typedef {"stop" | "length" | string} FinishReason "stop": the answer ended; "length": it was cut at
 *   `max_tokens` (the route's `max_tokens` says how many); a cloud may name others ("content_filter")
 * @typedef {{ action: "local" | "redact", found: Record<string, number>, missing: string[] }} SensitiveRecord
 *   personal data in the prompt by kind and count (never the values); `missing`: the detectors that could
 *   not run (e.g. "ner:minilm-l6-conll03-ner"), so the request stayed on the device
 * @typedef {{ vectors: number[][], dims: number, model: string, dtype?: string, route: Route }} EmbedResult
 * @typedef {{ labels: { label: string, score: number }[], model: string, dtype: string, route: Route }} ClassifyResult
 * @typedef {{ text: string, label: string, start: number, end: number, score: number }} NamedEntity
 * @typedef {{ entities: NamedEntity[], model: string, dtype: string, route: Route }} NerResult
 * @typedef {{ results: { index: number, score: number, document: string }[], model: string, dtype: string,
 *   route: Route }} RerankResult
 * @typedef {import("./protocol.js").ProgressEvent} ProgressEvent
 * @typedef {{ route?: "auto" | "local" | "cloud", privacy?: "allow-cloud" | "local-only", tier?: string,
 *   dailyBudgetUSD?: number | null, overBudget?: "local" | "refuse", complexityThreshold?: number | null,
 *   fallback?: boolean, cloudShare?: number | null, sensitive?: "allow" | "local" | "redact",
 *   chatModel?: string | null, verify?: "off" | "confidence", verifyThreshold?: number | null,
 *   verifyTokens?: number }} PolicyOptions `chatModel`: the on-device chat model every generation uses
 *   (null: the largest that fits the device); `verify`: the cascade (docs/routing.md#the-cascade-verify-confidence)
 * @typedef {{ signal?: AbortSignal, onProgress?: (event: ProgressEvent) => void, policy?: PolicyOptions }} CallOptions
 * @typedef {{ target: "local" | "cloud", reason: string, rule: string, model: string | null,
 *   fallback_target: "local" | "cloud" | null, router: Record<string, any> | null,
 *   sensitive: SensitiveRecord | null, tokens_in: number | null, decision_ms: number, dry_run: true,
 *   dtype?: string | null, chat_model?: ChatModel | null }} RouteDecision
 * @typedef {{ model: string | null, dtype: string | null, why: string, device_class: "phone" | "desktop",
 *   named: "call" | "policy" | null }} ChatModel the device's chat model and why (`model` null: no chat model
 *   fits this device, and `why` says so)
 */

/**
 * @typedef {{ name: string, description?: string, parameters?: JsonSchema }} Tool a tool the model may call:
 *   `parameters` an object schema in structured output's subset (docs/api.md#tools)
 * @typedef {{ id: string, name: string, arguments: Record<string, any> }} ToolCall a call the model made,
 *   its `arguments` parsed and valid against the tool's `parameters`
 * @typedef {{ role: string, content: string, toolCalls?: ToolCall[], toolCallId?: string }} Message
 *   a conversation's message (`role`: system, user, assistant, tool); with `tools`, an assistant's `toolCalls` (send
 *   a result's `tool_calls` back as they came) and each tool's result as `{ role: "tool", toolCallId, content }`
 * @typedef {{ prompt?: string, messages?: Message[], maxTokens?: number,
 *   temperature?: number, route?: "auto" | "local" | "cloud", model?: string, signal?: AbortSignal,
 *   onProgress?: (e: ProgressEvent) => void, policy?: PolicyOptions, cache?: boolean, tools?: Tool[],
 *   toolChoice?: "auto" | "none" | "required" | string }} GenerateOptions `model`: the on-device
 *   chat model for this call (default: the policy's `chatModel`, else the largest that fits the device);
 *   `tools`: the cloud answers (the device's chat model cannot call tools), `toolChoice` a tool's name forces it
 * @typedef {{ tokens_in: number, tokens_out: number }} Usage
 * @typedef {{ text: string, route: Route, usage: Usage, finish_reason: FinishReason | null,
 *   tool_calls?: ToolCall[] }} GenerateResult
 *   `finish_reason` (also `route.finish_reason`): "length" when the answer was cut at its `max_tokens`,
 *   "tool_calls" when the model called tools; `tool_calls` (present when the call offered `tools`): the calls
 * @typedef {{ delta?: string, done?: boolean, route?: Route, usage?: Usage,
 *   finish_reason?: FinishReason | null }} StreamItem
 */

/**
 * @typedef {{ type?: string, properties?: Record<string, JsonSchema>, required?: string[],
 *   additionalProperties?: false, items?: JsonSchema, minItems?: number, maxItems?: number,
 *   minLength?: number, maxLength?: number, enum?: (string | number | boolean | null)[],
 *   const?: string | number | boolean | null, title?: string, description?: string }} JsonSchema
 *   the subset structured output enforces (docs/api.md#structured-output)
 * @typedef {{ prompt?: string, messages?: { role: string, content: string }[], schema: JsonSchema,
 *   maxTokens?: number, temperature?: number, route?: "auto" | "local" | "cloud", signal?: AbortSignal,
 *   onProgress?: (e: ProgressEvent) => void, policy?: PolicyOptions }} ObjectOptions
 * @typedef {{ object: any, text: string, route: Route, usage: Usage, finish_reason: FinishReason | null,
 *   repaired: boolean }} ObjectResult
 * @typedef {{ partial?: any, done?: boolean, object?: any, text?: string, route?: Route, usage?: Usage,
 *   finish_reason?: FinishReason | null, repaired?: boolean }} ObjectStreamItem
 */

/**
 * @typedef {{ similarity?: number, ttlMs?: number, maxEntries?: number, sampled?: boolean }} CacheOptions
 *   the semantic response cache (docs/api.md#the-response-cache): the cosine similarity a stored question
 *   needs to answer a new one, how long an answer is kept, how many are kept, whether calls with
 *   `temperature` > 0 use it
 * @typedef {{ similarity: number, threshold: number, age_ms: number, saved_usd: number, original: Route }} CacheRecord
 *   an answer from the response cache (`route.target` "cache"): how similar its question was, the threshold,
 *   its age, what it saved, and the route of the answer it replays
 */

/** camelCase option -> snake_case wire key */
const SNAKE = /** @type {Record<string, string>} */ ({ maxTokens: "max_tokens", toolChoice: "tool_choice", dailyBudgetUSD: "daily_budget_usd",
  overBudget: "over_budget", complexityThreshold: "complexity_threshold", cloudShare: "cloud_share",
  chatModel: "chat_model", verifyThreshold: "verify_threshold", verifyTokens: "verify_tokens" });

/**
 * Policy fields (camelCase) as the wire's snake_case; anything but an object is a ValidationError.
 * @param {any} value @param {string} where @returns {Record<string, any>}
 */
function policyParams(value, where) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new HybridRouterError({ name: "ValidationError", message: `${where} must be an object of policy fields, got ${
      Array.isArray(value) ? "an array" : value === null ? "null" : typeof value}`,
    hint: "Pass policy fields, e.g. { sensitive: \"local\" } or { route: \"cloud\" }.", details: { field: "policy" } });
  }
  /** @type {Record<string, any>} */ const params = {};
  for (const [k, v] of Object.entries(value)) params[SNAKE[k] ?? k] = v;
  return params;
}

/** @param {Record<string, any>} options */
function generateParams(options) {
  /** @type {Record<string, any>} */ const params = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) params[SNAKE[k] ?? k] = v;
  return params;
}

/**
 * `create({ cache })` as the wire's `response_cache`: null (off), or its fields in snake_case.
 * @param {CacheOptions | boolean | undefined | null} value @returns {Record<string, any> | boolean | null}
 */
function cacheParams(value) {
  if (value === undefined || value === null || value === false) return null;
  if (value === true || typeof value !== "object" || Array.isArray(value)) return value;
  /** @type {Record<string, any>} */ const params = {};
  const names = /** @type {Record<string, string>} */ ({ ttlMs: "ttl_ms", maxEntries: "max_entries" });
  for (const [k, v] of Object.entries(value)) if (v !== undefined) params[names[k] ?? k] = v;
  return params;
}

/**
 * A call's options: an object (or nothing); anything else is a ValidationError, not a TypeError.
 * @param {any} value @param {string} where @returns {Record<string, any>}
 */
function opts(value, where) {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new HybridRouterError({ name: "ValidationError", message: `the options of ${where} must be an object, got ${
      Array.isArray(value) ? "an array" : typeof value}`, hint: `Pass ${where}'s options as an object, e.g. { signal }.`,
    details: { field: "options" } });
  }
  return value;
}

/**
 * A streaming call's chunks, then its final value, as an async iterable; breaking out early (or aborting
 * `signal`) cancels the call.
 * @param {{ call: (method: string, params: Record<string, any>, options: any) => Promise<any> }} router
 * @param {string} method @param {Record<string, any>} params
 * @param {{ signal?: AbortSignal, onProgress?: (e: ProgressEvent) => void, policy?: PolicyOptions }} options
 * @returns {AsyncIterable<any>}
 */
function streamed(router, method, params, { signal, onProgress, policy }) {
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
      const done = router.call(method, params, {
        signal: inner.signal, onProgress, policy,
        onChunk: (/** @type {any} */ value) => { queue.push(value); wake?.(); },
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
    const { topK, signal } = opts(options, "search");
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

/**
 * The router. It is an EventTarget: a `change` event (`event.detail`: `{ kind: "models", models }` or
 * `{ kind: "cloud", available, note }`) says the server built a model or brought the cloud up while the
 * page was open; the next calls use it.
 */
export class HybridRouter extends EventTarget {
  /** @type {WorkerConnection} */ #connection;
  /** @type {() => WorkerConnection} */ #connect;
  /** @type {Record<string, any>} */ #bootOptions = {};
  /** @type {Promise<void> | null} */ #restarting = null;
  /** @type {any} */ info = null;
  /** How many times a dead worker was replaced by a new one. */
  restarts = 0;

  /**
   * Start the worker and resolve once Python, numpy and Transformers.js are ready.
   *
   * Embedding (docs/embedding.md): `baseUrl` is where the router's files are (serve.py or the static site:
   * boot.json, the runtime, the models; default: next to the worker). A page of another origin must also
   * pass `workerUrl`: a module worker has to come from the page's own origin, so it serves a one-line file
   * that imports our worker.js by URL.
   *
   * `capabilities` (for tests, and for an app that knows its device better than the browser says): facts
   * that replace the probed ones, as `capabilities()` reports them (`{ device_memory_gb: 2, storage: { quota,
   * usage } }`); the models, dtypes and chat model are then chosen for that device, and `capabilities()`
   * lists them under `simulated`.
   * @param {{ onProgress?: (e: ProgressEvent) => void, workerUrl?: string | URL, baseUrl?: string | URL, bootUrl?: string, signal?: AbortSignal, policy?: Parameters<HybridRouter["configure"]>[0], cloud?: { timeoutMs?: number, maxRetries?: number }, cacheBudgetBytes?: number | null, device?: "wasm" | "webgpu", downloadIdleMs?: number, cache?: CacheOptions | boolean, capabilities?: Record<string, any> }} [options]
   *
   * `cache`: the semantic response cache of generations (off unless given: `true` for its defaults, or
   * `{ similarity, ttlMs, maxEntries, sampled }`), kept in IndexedDB; see docs/api.md#the-response-cache.
   * @returns {Promise<HybridRouter>}
   */
  static async create(options = {}) {
    const router = new HybridRouter(options);
    const policy = policyParams(options.policy ?? {}, "create({ policy })");
    const cloud = { timeout_s: options.cloud?.timeoutMs ? options.cloud.timeoutMs / 1000 : undefined,
      max_retries: options.cloud?.maxRetries };
    requestPersistence();
    const baseUrl = options.baseUrl ? new URL(options.baseUrl, globalThis.location?.href).href : undefined;
    router.#bootOptions = { bootUrl: options.bootUrl, baseUrl, policy, cacheBudgetBytes: options.cacheBudgetBytes,
      downloadIdleMs: options.downloadIdleMs, capabilities: options.capabilities,
      device: options.device, cloud: Object.fromEntries(Object.entries(cloud).filter(([, v]) => v !== undefined)) };
    router.#bootOptions.responseCache = cacheParams(options.cache);
    router.info = await router.#connection.start(router.#bootOptions, options.signal);
    router.#followNetwork();
    return router;
  }

  /** @type {(() => void) | null} */ #unfollow = null;

  /**
   * Tell the worker when the page goes offline or online (a worker's own `navigator.onLine` lags or
   * misses emulated changes): offline, a request that could go either way stays on the device and an
   * explicit cloud call fails at once with an OfflineError, instead of retrying against no network.
   */
  #followNetwork() {
    const target = globalThis.addEventListener ? globalThis : null;
    if (!target) return;
    const tell = (/** @type {boolean} */ online) => { this.call("set_online", { online }).catch(() => {}); };
    const onOnline = () => tell(true), onOffline = () => tell(false);
    target.addEventListener("online", onOnline);
    target.addEventListener("offline", onOffline);
    this.#unfollow = () => { target.removeEventListener("online", onOnline); target.removeEventListener("offline", onOffline); };
    if (globalThis.navigator?.onLine === false) tell(false);
  }

  /** @param {{ onProgress?: (e: ProgressEvent) => void, workerUrl?: string | URL }} options */
  constructor(options) {
    super();
    const page = globalThis.location?.origin;
    const here = new URL(import.meta.url);
    if (!options.workerUrl && page && here.origin !== page) {
      throw workerError(`the client was loaded from ${here.origin}, and a module worker must come from this ` +
        `page's origin (${page})`, "Serve a one-line worker file on your site that imports ours " +
        `(import "${here.href.replace(/[^/]*$/, "worker.js")}";) and pass its URL as create({ workerUrl }): ` +
        "see docs/embedding.md.");
    }
    const onEvent = (/** @type {{ kind: string }} */ detail) => this.dispatchEvent(new CustomEvent("change", { detail }));
    this.#connect = () => {
      // Written out so that bundlers (Vite, esbuild, webpack) find the worker and bundle it.
      const worker = options.workerUrl
        ? new Worker(options.workerUrl, { type: "module", name: "hybrid-router" })
        : new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "hybrid-router" });
      return new WorkerConnection(worker, options.onProgress, onEvent);
    };
    this.#connection = this.#connect();
  }

  /**
   * Send one call to the worker (the wire method and its snake_case params: docs/ARCHITECTURE.md). When the
   * worker has died (a crash, out of memory), the calls it held rejected with a WorkerError and this call
   * starts a new worker first, with the same options and policy; models come back from IndexedDB.
   * @param {string} method @param {Record<string, any>} params
   * A `policy` option holds for this call only (camelCase policy fields, as `configure` takes).
   * @param {CallOptions & { onChunk?: (v: any) => void }} [options]
   */
  async call(method, params, options = {}) {
    const { policy, ...rest } = options ?? {};
    const sent = policy === undefined ? params : { ...params, policy: policyParams(policy, `${method}'s policy option`) };
    if (this.#connection.dead?.name === "WorkerError") await this.#restart(rest.signal);
    return this.#connection.call(method, sent, rest);
  }

  /** @param {AbortSignal} [signal] */
  #restart(signal) {
    this.#restarting ??= (async () => {
      const connection = this.#connect();
      try {
        this.info = await connection.start(this.#bootOptions, signal);
        this.#connection = connection;
        this.restarts += 1;
      } finally {
        this.#restarting = null;
      }
    })();
    return this.#restarting;
  }

  /**
   * Sentence embeddings, computed on the device: one unit-norm vector per text, in order.
   * @param {string[]} texts
   * @param {CallOptions & { model?: string, dtype?: string }} [options]
   * @returns {Promise<EmbedResult>}
   */
  async embed(texts, options = {}) {
    const { model, dtype, ...rest } = opts(options, "embed");
    return this.call("embed", { texts, model: model ?? null, dtype: dtype ?? null }, rest);
  }

  /**
   * Text classification on the device, labels best first. Without `labels`: the sentiment classifier
   * (NEGATIVE / POSITIVE). With `labels`: zero-shot over them by embedding similarity (measured better than the NLI
   * model: docs/models.md), or by the NLI model with `model: "minilm-l6-nli"` (scores sum to 1 unless `multiLabel`; the
   * hypothesis is `hypothesisTemplate` with the label for `{}`, "This example is {}." by default); with `examples`
   * ({ label: [texts] }): few-shot by example centroids.
   * @param {string} text
   * @param {CallOptions & { labels?: string[], examples?: Record<string, string[]>, model?: string, dtype?: string, multiLabel?: boolean,
   *   hypothesisTemplate?: string }} [options]
   * @returns {Promise<ClassifyResult>}
   */
  async classify(text, options = {}) {
    const { labels, examples, model, dtype, multiLabel, hypothesisTemplate, ...rest } = opts(options, "classify");
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
  async ner(text, options = {}) {
    const { model, dtype, ...rest } = opts(options, "ner");
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
  async rerank(query, documents, options = {}) {
    const { topK, model, dtype, ...rest } = opts(options, "rerank");
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
    const { samplingRate, model, dtype, ...rest } = opts(options, "transcribe");
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
    const { model, signal } = opts(options, "openIndex");
    const info = await this.call("index_open", { name, model: model ?? null }, { signal });
    return new VectorIndex(this, info);
  }

  /** The names of the stored vector indexes. @returns {Promise<string[]>} */
  async listIndexes() {
    return (await this.call("index_list", {})).names;
  }

  /**
   * Text generation, on the device or in the cloud as the routing policy decides. Without `maxTokens`
   * each side has its own budget (the device 512 tokens, the cloud 1024); `finish_reason` "length" says
   * the answer was cut at it. `model` names the on-device chat model (else the policy's `chatModel`, else
   * the largest that fits this device: `info.chat` says which and why); an unknown one, or one that does not
   * fit this device, is a ValidationError with a hint. `route.chat_model` says which and why. With `tools`
   * (and `toolChoice`), the cloud answers (`route.reason` "tools") and `tool_calls` holds the calls its model
   * made, each checked against its tool's `parameters`; send the results back as messages (docs/api.md#tools).
   * A relay started without `--allow-tools` makes it a PolicyError whose hint names the flag.
   * @param {GenerateOptions} options
   * @returns {Promise<GenerateResult>}
   */
  async generate(options) {
    const { signal, onProgress, policy, ...rest } = opts(options, "generate");
    return this.call("generate", generateParams(rest), { signal, onProgress, policy });
  }

  /**
   * The decision a generation (or, with `task`, a device task) would get, without generating or sending
   * anything: a dry run on the call's own facts (the prompt's tokens, the prompt router's score with the
   * embedding model's vector, personal data by its patterns and the entity model), so it names the side,
   * rule and score the call then gets. Its first use loads the models those facts need, as a first call
   * would. `sensitive` is the personal data found and the detectors that could not run.
   * @param {{ prompt?: string, messages?: { role: string, content: string }[], maxTokens?: number,
   *   route?: "auto" | "local" | "cloud", model?: string, task?: string, policy?: PolicyOptions,
   *   signal?: AbortSignal }} options
   * @returns {Promise<RouteDecision>}
   */
  async route(options) {
    const { signal, policy, ...rest } = opts(options, "route");
    return this.call("route", generateParams(rest), { signal, policy });
  }

  /**
   * Streaming generation: an async iterable of `{ delta }` chunks, ending with
   * `{ done: true, route, usage, finish_reason }` ("length": cut at `maxTokens`).
   * Breaking out of the loop (or aborting `signal`) cancels the request.
   * @param {GenerateOptions} options
   * @returns {AsyncIterable<StreamItem>}
   */
  stream(options) {
    const { signal, onProgress, policy, ...rest } = opts(options, "stream");
    return streamed(this, "stream", generateParams(rest), { signal, onProgress, policy });
  }

  /**
   * Structured output: a JSON value that matches `schema` (a JSON Schema in the subset of
   * docs/api.md#structured-output; another keyword is a ValidationError), on the device or in the cloud as
   * the routing decides. The device decodes under the schema's constraint, the cloud is sent it as
   * `response_format`; every answer is validated in the worker, with one repair round that shows the model
   * its errors, and a device answer that still fails goes to the cloud on route "auto" (`route.fallbacks`
   * says why). `repaired`: the repair round's answer is the one returned.
   * @param {ObjectOptions} options
   * @returns {Promise<ObjectResult>}
   */
  async generateObject(options) {
    const { signal, onProgress, policy, ...rest } = opts(options, "generateObject");
    return this.call("generate_object", generateParams(rest), { signal, onProgress, policy });
  }

  /**
   * Streaming structured output: `{ partial }` items (the value so far, completed: a string cut short, an
   * array without its last items; a repair round or a fallback starts over), then `{ done: true, object,
   * text, route, usage, finish_reason, repaired }`. Breaking out of the loop (or aborting `signal`) cancels.
   * @param {ObjectOptions} options
   * @returns {AsyncIterable<ObjectStreamItem>}
   */
  streamObject(options) {
    const { signal, onProgress, policy, ...rest } = opts(options, "streamObject");
    return streamed(this, "stream_object", generateParams(rest), { signal, onProgress, policy });
  }

  /**
   * What the router has done so far, snake_case like every result: `{ requests, local, cloud, fallbacks,
   * errors, cloud_cost_usd, saved_usd, spent_today_usd, local_share, by_task }`. Every task is counted;
   * `saved_usd` is what the device's work would have cost in the cloud (a generation at the cloud model's
   * price, a device task at a cloud service's: see docs/routing.md), `by_task` has `{ requests, local,
   * saved_usd }` per task. `cloudCostUSD` and `savedUSD` (0.1's names) are kept for one release and will go in 0.3.
   * @returns {Promise<{ requests: number, local: number, cloud: number, fallbacks: number, errors: number,
   *   cloud_cost_usd: number, saved_usd: number, spent_today_usd: number, local_share: number,
   *   by_task: Record<string, { requests: number, local: number, saved_usd: number }>,
   *   cloudCostUSD: number, savedUSD: number }>}
   */
  async stats() {
    const s = await this.call("stats", {});
    return { ...s, cloudCostUSD: s.cloud_cost_usd, savedUSD: s.saved_usd };
  }

  /**
   * Delete every answer of the response cache (it is shared by the origin's tabs: theirs too).
   * @returns {Promise<{ cleared: number }>}
   */
  async clearCache() {
    return this.call("cache_clear", {});
  }

  /**
   * Change the routing policy of this router.
   * @param {PolicyOptions} policy
   */
  async configure(policy) {
    const params = policyParams(opts(policy, "configure"), "configure's policy");
    const out = await this.call("configure", params);
    this.#bootOptions.policy = { ...this.#bootOptions.policy, ...params }; // a restarted worker keeps it
    return out;
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
  async preload(modelIds, options = {}) {
    const { dtype, ...rest } = opts(options, "preload");
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
    return this.call("configure_cache", { budget_bytes: opts(settings, "configureCache").budgetBytes ?? null });
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
  async recommendModels(options = {}) {
    const { task, ...rest } = opts(options, "recommendModels");
    return this.call("recommend_models", { task: task ?? null }, rest);
  }

  /** Stop the worker; pending calls reject with an AbortError. */
  terminate() {
    this.#unfollow?.();
    this.#connection.die(abortError("the router was terminated", { reason: "terminated" }));
  }
}
