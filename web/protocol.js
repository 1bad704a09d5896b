// @ts-check
/**
 * The page's side of the worker protocol (docs/ARCHITECTURE.md): calls matched to replies by id, progress
 * and chunks routed to their call, cancellation, and "the worker died" rejecting every pending call.
 *
 * Page -> worker: `{ type: "init", options }` once, then `{ id, type: "call", method, params }` and
 * `{ id, type: "cancel" }`. Worker -> page: boot messages with `id: null` (`progress`, then `ready` or
 * `fatal`), then `result | error | progress | chunk` with the call's id.
 */

import { HybridRouterError, abortError, workerError } from "./errors.js";
import { REFUSAL_HINT, refusal } from "./limits.js";

/**
 * @typedef {{ stage?: string, status?: string, step?: string, progress?: number, file?: string,
 *   loaded?: number, total?: number, model?: string }} ProgressEvent
 * @typedef {{ signal?: AbortSignal, onProgress?: (event: ProgressEvent) => void,
 *   onChunk?: (value: any) => void }} CallOptions
 */

export class WorkerConnection {
  /** @type {Worker} */ #worker;
  /** @type {Map<number, { resolve: (v: any) => void, reject: (e: any) => void, onProgress?: (e: any) => void, onChunk?: (v: any) => void, cleanup: () => void }>} */
  #pending = new Map();
  #nextId = 1;
  /** @type {HybridRouterError | null} */ #dead = null;
  /** @type {((e: ProgressEvent) => void) | undefined} */ #onProgress;
  /** @type {((e: { kind: string }) => void) | undefined} */ #onEvent;

  /**
   * @param {Worker} worker @param {(e: ProgressEvent) => void} [onProgress] every progress event
   * @param {(e: { kind: string }) => void} [onEvent] what the worker tells unasked (models built, the cloud up)
   */
  constructor(worker, onProgress, onEvent) {
    this.#worker = worker;
    this.#onProgress = onProgress;
    this.#onEvent = onEvent;
  }

  /** The error every call rejects with once the worker is gone (null while it runs). */
  get dead() {
    return this.#dead;
  }

  /**
   * Boot the worker: resolves with its `ready` info. `signal` governs the start-up only: once the worker is
   * ready (or has failed), aborting it changes nothing.
   * @param {Record<string, any>} options @param {AbortSignal} [signal]
   * @returns {Promise<Record<string, any>>}
   */
  start(options, signal) {
    const lifeLock = `hybrid-router-worker-${crypto.randomUUID?.() ?? Math.random().toString(36).slice(2)}`;
    return new Promise((resolve, reject) => {
      const onAbort = () => fail(abortError("start-up was cancelled"));
      const settle = () => signal?.removeEventListener("abort", onAbort);
      const fail = (/** @type {HybridRouterError} */ err) => { settle(); this.die(err); reject(err); };
      if (signal?.aborted) { fail(abortError("start-up was cancelled")); return; }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#worker.onmessage = (event) => {
        const msg = event.data;
        if (msg.id === null || msg.id === undefined) {
          if (msg.type === "progress") this.#onProgress?.(msg.event);
          else if (msg.type === "ready") {
            settle();
            this.#worker.onmessage = (e) => this.#reply(e.data);
            this.#watch(lifeLock);
            resolve(msg.info);
          } else if (msg.type === "fatal") fail(new HybridRouterError(msg.error));
          return;
        }
        this.#reply(msg);
      };
      this.#worker.onerror = (event) => {
        event.preventDefault?.();
        fail(workerError(`the worker failed: ${event.message || "unknown error"}`,
          "Reload the page; if it persists, check the browser console and that the site is served by serve.py."));
      };
      this.#worker.onmessageerror = () => this.die(workerError("a message from the worker could not be read",
        "Reload the page."));
      this.#worker.postMessage({ type: "init", options: { ...options, lifeLock } });
    });
  }

  /**
   * The worker holds the Web Lock `name` while it lives; asking for it here is granted only once the worker
   * is gone. A worker that crashed or ran out of memory sends no event: this is how the page learns of it.
   * @param {string} name
   */
  #watch(name) {
    const locks = /** @type {any} */ (globalThis.navigator)?.locks;
    locks?.request(name, () => {
      this.die(workerError("the worker stopped (it crashed, ran out of memory or was closed)",
        "Your next call starts a new worker; cached models load again from this browser's storage."));
    });
  }

  /**
   * Send one call; resolves with its result, rejects with its error (an AbortError when `signal` aborts).
   * @param {string} method @param {Record<string, any>} params @param {CallOptions} [options]
   */
  call(method, params, options = {}) {
    if (this.#dead) return Promise.reject(this.#dead);
    const { signal, onProgress, onChunk } = options ?? {};
    if (signal != null && !(signal instanceof AbortSignal)) {
      return Promise.reject(new HybridRouterError({ name: "ValidationError", message: "signal must be an AbortSignal",
        hint: "Pass an AbortController's signal (or AbortSignal.timeout(ms)), or leave it out.", details: { field: "signal" } }));
    }
    if ((onProgress != null && typeof onProgress !== "function") || (onChunk != null && typeof onChunk !== "function")) {
      return Promise.reject(new HybridRouterError({ name: "ValidationError", message: "onProgress must be a function",
        hint: "Pass a function that takes each progress event, or leave it out.", details: { field: "onProgress" } }));
    }
    if (signal?.aborted) return Promise.reject(abortError("aborted before it started"));
    const why = refusal({ params });
    if (why) {
      return Promise.reject(new HybridRouterError({ name: "ValidationError", message: why, hint: REFUSAL_HINT,
        details: { method } }));
    }
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

  /** Stop the worker; every pending call (and every later one) rejects with `error`. @param {HybridRouterError} error */
  die(error) {
    if (this.#dead) return;
    this.#dead = error;
    this.#worker.terminate();
    for (const call of this.#pending.values()) { call.cleanup(); call.reject(error); }
    this.#pending.clear();
  }

  /** @param {any} msg */
  #reply(msg) {
    if ((msg.id === null || msg.id === undefined) && msg.type === "event") { this.#onEvent?.(msg.event); return; }
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
}
