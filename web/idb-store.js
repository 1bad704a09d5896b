// @ts-check
/**
 * The model cache's storage edge: IndexedDB records and chunks, SHA-256, and resumable downloads.
 *
 * No policy lives here: what to verify, keep, resume or evict is decided in Python
 * (py_src/hybrid_router/model_cache.py), which calls this module through py_src/hybrid_router/store_idb.py.
 *
 * Database `hybrid-router-models` (version 1):
 *   files   keyPath "key"            { key: "<model>/<path>", model, path, size, sha256, chunk_bytes, complete, last_used }
 *   chunks  keyPath ["key", "index"] { key, index, data: ArrayBuffer }  (chunk i holds bytes [i*chunk_bytes, (i+1)*chunk_bytes))
 */

import { committed, done, openDatabase, webLock } from "./idb.js";

export const DB_NAME = "hybrid-router-models";
const DB_VERSION = 1;

/** @param {string} key */
const chunkRange = (key, last = Number.MAX_SAFE_INTEGER) => IDBKeyRange.bound([key, 0], [key, last]);

/** @param {string} name @param {string} message @param {Record<string, any>} [extra] */
function named(name, message, extra = {}) {
  const error = new Error(message);
  error.name = name;
  return Object.assign(error, extra);
}

/** @param {string} [name] @returns {Promise<ModelStore>} */
export async function openModelStore(name = DB_NAME) {
  return new ModelStore(await openDatabase(name, DB_VERSION, {
    files: { keyPath: "key" },
    chunks: { keyPath: ["key", "index"] },
  }));
}

export class ModelStore {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this.db = db;
  }

  /** @param {"files" | "chunks"} store @param {IDBTransactionMode} [mode] */
  #store(store, mode = "readonly") {
    return this.db.transaction(store, mode).objectStore(store);
  }

  /**
   * Hold the Web Lock "<database>:<key>" across every tab and worker of this origin, so that one of them
   * at a time checks, downloads and stores a given file (the others then find it stored).
   * Resolves, once held, to the function that releases it. Aborting `signal` withdraws a waiting request,
   * and releases the lock if it was granted meanwhile. Without Web Locks (an old browser), resolves at once.
   * @param {string} key @param {{ signal?: AbortSignal }} [options] @returns {Promise<() => void>}
   */
  lock(key, { signal } = {}) {
    return webLock(`${this.db.name}:${key}`, { signal });
  }

  /** @returns {Promise<any[]>} every file record */
  records() {
    return done(this.#store("files").getAll());
  }

  /** @param {string} key */
  async getRecord(key) {
    return (await done(this.#store("files").get(key))) ?? null;
  }

  /** @param {Record<string, any>} record (a QuotaExceededError keeps its name) */
  async putRecord(record) {
    const tx = this.db.transaction("files", "readwrite");
    tx.objectStore("files").put(record);
    await committed(tx);
  }

  /** Delete a file: its record and every chunk. @param {string} key */
  async delete(key) {
    const tx = this.db.transaction(["files", "chunks"], "readwrite");
    tx.objectStore("files").delete(key);
    tx.objectStore("chunks").delete(chunkRange(key));
    await committed(tx);
  }

  /** @param {string} key */
  chunkCount(key) {
    return done(this.#store("chunks").count(chunkRange(key)));
  }

  /** @param {string} key @param {number} index @param {ArrayBuffer} data */
  async putChunk(key, index, data) {
    const tx = this.db.transaction("chunks", "readwrite");
    tx.objectStore("chunks").put({ key, index, data });
    await committed(tx);
  }

  /**
   * The stored chunks of `key` joined (the first `count` only, when given), or null when one is
   * missing. Nothing is checked here: the caller measures and hashes what it gets.
   * @param {string} key @param {number} [count]
   * @returns {Promise<Uint8Array | null>}
   */
  async read(key, count) {
    /** @type {{ index: number, data: ArrayBuffer }[]} */
    const chunks = await done(this.#store("chunks").getAll(chunkRange(key, count === undefined ? undefined : count - 1)));
    if (chunks.some((c, i) => c.index !== i) || (count !== undefined && chunks.length !== count)) return null;
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.data.byteLength, 0));
    let at = 0;
    for (const c of chunks) { out.set(new Uint8Array(c.data), at); at += c.data.byteLength; }
    return out;
  }

  /** @param {Uint8Array} bytes @returns {Promise<string>} lowercase hex SHA-256 */
  async digest(bytes) {
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /**
   * Fetch `url` from byte `start` (a Range request; bytes before it come from the stored chunks),
   * storing each full chunk as it arrives when `store`. A write refused by the browser (quota) stops
   * the storing, not the download: `storeError` says why. An aborted `signal` aborts the fetch. A download
   * that receives nothing for `idleMs` (default 30 s) is aborted as stalled (a `TimeoutError`): the chunks
   * stored so far stay for the next try, and the caller's cross-tab lock on the file is released.
   * `parts`: the file is served in parts (a static site), fetched in order instead of `url`, each one whole
   * (from the part that holds byte `start`), their bytes joined as they arrive; `partLengths` says how many
   * bytes each part held (those before the first fetched count as their size). `onBytes` counts across parts.
   * @param {string} url
   * @param {{ key: string, start: number, size: number, chunkBytes: number, store: boolean,
   *   signal?: AbortSignal, onBytes?: (held: number) => void, idleMs?: number,
   *   parts?: { url: string, size: number }[] }} options
   * @returns {Promise<{ data: Uint8Array, length: number, storeError: string | null, restarted: boolean,
   *   partLengths: number[] }>}
   */
  async download(url, { key, start, size, chunkBytes, store, signal, onBytes, idleMs = 30000, parts = [] }) {
    const idle = new AbortController();
    const onAbort = () => idle.abort(signal?.reason);
    if (signal?.aborted) onAbort(); else signal?.addEventListener("abort", onAbort, { once: true });
    /** @type {any} */ let timer = null;
    let fetching = url; // where the file is served in parts: the part being fetched
    /** @type {Error | null} */ let stalled = null;
    const watch = (/** @type {string} */ now = fetching) => {
      fetching = now;
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(stalled = named("TimeoutError",
        `the download of ${fetching} stalled: no data for ${Math.round(idleMs / 1000)} s`, {})), idleMs);
    };
    watch();
    try {
      return await this.#download(url, { key, start, size, chunkBytes, store, signal: idle.signal, onBytes, watch, parts });
    } catch (error) {
      throw stalled && idle.signal.reason === stalled ? stalled : error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * @param {string} url
   * @param {{ key: string, start: number, size: number, chunkBytes: number, store: boolean,
   *   signal: AbortSignal, onBytes?: (held: number) => void, watch: (url?: string) => void,
   *   parts: { url: string, size: number }[] }} options
   */
  async #download(url, { key, start, size, chunkBytes, store, signal, onBytes, watch, parts }) {
    let restarted = false;
    let out = new Uint8Array(Math.max(size, 1));
    if (start > 0) {
      const held = await this.read(key, Math.ceil(start / chunkBytes));
      if (held && held.byteLength === start) out.set(held);
      else { start = 0; restarted = true; }
    }
    // what to fetch: the file from `start` (a Range request), or each part whole from the one holding `start`
    let first = 0;
    let offset = 0;
    while (first < parts.length - 1 && offset + parts[first].size <= start) offset += parts[first++].size;
    const requests = parts.length ? parts.slice(first).map((p) => ({ url: p.url, range: false }))
      : [{ url, range: start > 0 }];
    /** @type {number[]} */
    const partLengths = parts.slice(0, first).map((p) => p.size);
    const report = (/** @type {number} */ n) => { try { onBytes?.(n); } catch { /* the listener went away */ } };
    let held = parts.length ? offset : start;
    let chunkStart = start;
    /** @type {string | null} */ let storeError = null;
    report(held);
    for (const request of requests) {
      watch(request.url);
      const response = await fetch(request.url, { signal, cache: "no-store", headers: request.range ? { Range: `bytes=${start}-` } : {} });
      if (!response.ok || !response.body) {
        throw named("HttpError", `HTTP ${response.status} ${response.statusText} for ${request.url}`, { status: response.status });
      }
      if (request.range && response.status !== 206) { held = chunkStart = start = 0; restarted = true; } // the server sent the whole file
      const reader = response.body.getReader();
      const partStart = held;
      while (true) {
        const { done: finished, value } = await reader.read();
        if (finished) break;
        watch();
        if (held + value.byteLength > out.byteLength) { // longer than the manifest says: keep it, the caller will see
          const bigger = new Uint8Array(Math.max(out.byteLength * 2, held + value.byteLength));
          bigger.set(out.subarray(0, held));
          out = bigger;
        }
        out.set(value, held);
        held += value.byteLength;
        report(held);
        while (store && !storeError && held - chunkStart >= chunkBytes) {
          storeError = await this.#tryPut(key, chunkStart / chunkBytes, out.slice(chunkStart, chunkStart + chunkBytes).buffer);
          chunkStart += chunkBytes;
        }
      }
      if (parts.length) partLengths.push(held - partStart);
    }
    if (store && !storeError && held > chunkStart) {
      storeError = await this.#tryPut(key, chunkStart / chunkBytes, out.slice(chunkStart, held).buffer);
    }
    return { data: out.subarray(0, held), length: held, storeError, restarted, partLengths };
  }

  /** @param {string} key @param {number} index @param {ArrayBuffer} data @returns {Promise<string | null>} */
  async #tryPut(key, index, data) {
    try {
      await this.putChunk(key, index, data);
      return null;
    } catch (error) {
      const e = /** @type {any} */ (error);
      return [e?.name ?? "Error", e?.message].filter(Boolean).join(": ");
    }
  }

  /** @returns {Promise<{ usage: number, quota: number }>} (zeros where the browser cannot say) */
  async estimate() {
    try {
      const { usage = 0, quota = 0 } = await navigator.storage.estimate();
      return { usage, quota };
    } catch {
      return { usage: 0, quota: 0 };
    }
  }
}

/**
 * The object Transformers.js calls as `env.customCache`: `match(key)` asks `lookup` (Python's
 * ModelCache.match) for the verified bytes of a model file; `put` stores nothing, because model files
 * are stored by the verified download and nothing else is cached here.
 * @param {(key: string) => Promise<Uint8Array | null | undefined>} lookup
 */
export function customCache(lookup) {
  return {
    /** @param {string | Request | URL} request */
    async match(request) {
      const key = typeof request === "string" ? request : request instanceof URL ? request.href : request.url;
      const bytes = await lookup(key);
      if (!bytes) return undefined;
      return new Response(/** @type {any} */ (bytes), { status: 200, headers: {
        "content-length": String(bytes.byteLength), "content-type": "application/octet-stream" } });
    },
    async put() {},
  };
}

/**
 * A fetch for Transformers.js that refuses model files: those only arrive through the verified cache,
 * so a file the cache did not hand over counts as missing instead of being read unchecked.
 * @param {string} modelsPath e.g. "/models/"
 * @returns {typeof fetch}
 */
export function guardedFetch(modelsPath) {
  return (input, init) => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url, self.location.href);
    if (url.origin === self.location.origin && url.pathname.startsWith(modelsPath)) {
      return Promise.reject(named("ModelLoadError", `${url.pathname} is read only through the verified model cache`));
    }
    return fetch(input, init);
  };
}
