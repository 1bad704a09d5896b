// @ts-check
/**
 * The response cache's storage edge: IndexedDB, no policy (py_src/hybrid_router/response_cache/ decides;
 * py_src/hybrid_router/browser/response_store_idb.py calls this module from Python in the worker). Every
 * tab and worker of the origin shares the database, and it survives reloads.
 *
 * Database `hybrid-router-responses` (version 1):
 *   entries  keyPath "id", index "scope"
 *            { id, scope, vector: Float32Array, created_ms, used_ms, text, finish_reason, route_json }
 *
 * A scope's vectors cross to Python as ONE Float32Array of n * dims values (one copy), not n small ones.
 */

import { committed, done } from "./idb.js";

export const DB_NAME = "hybrid-router-responses";
const DB_VERSION = 1;

/** @param {string} [name] @returns {Promise<ResponseCacheStore>} */
export async function openResponseCacheStore(name = DB_NAME) {
  const request = indexedDB.open(name, DB_VERSION);
  request.onupgradeneeded = () => {
    const db = request.result;
    if (!db.objectStoreNames.contains("entries")) {
      db.createObjectStore("entries", { keyPath: "id" }).createIndex("scope", "scope");
    }
  };
  return new ResponseCacheStore(await done(request));
}

/**
 * @typedef {{ id: string, scope: string, vector: Float32Array, created_ms: number, used_ms: number,
 *   text: string, finish_reason: string | null, route_json: string }} CacheRecord
 */

export class ResponseCacheStore {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this.db = db;
  }

  /** @param {IDBTransactionMode} [mode] */
  #entries(mode = "readonly") {
    const tx = this.db.transaction("entries", mode);
    return { tx, entries: tx.objectStore("entries") };
  }

  /**
   * The entries of one scope, as the match reads them.
   * @param {string} scope
   * @returns {Promise<{ ids: string[], vectors: Float32Array, dims: number, created_ms: number[] }>}
   */
  async scope(scope) {
    const rows = /** @type {CacheRecord[]} */ (await done(this.#entries().entries.index("scope").getAll(scope)));
    const dims = rows.length ? rows[0].vector.length : 0;
    const vectors = new Float32Array(rows.length * dims);
    rows.forEach((row, i) => vectors.set(row.vector.subarray(0, dims), i * dims));
    return { ids: rows.map((r) => r.id), vectors, dims, created_ms: rows.map((r) => r.created_ms) };
  }

  /** @param {string} id @returns {Promise<CacheRecord | null>} */
  async get(id) {
    return (await done(this.#entries().entries.get(id))) ?? null;
  }

  /** @param {CacheRecord} record */
  async put(record) {
    const { tx, entries } = this.#entries("readwrite");
    entries.put({ ...record, vector: Float32Array.from(record.vector) });
    await committed(tx);
  }

  /** @param {string} id @param {number} usedMs */
  async touch(id, usedMs) {
    const { tx, entries } = this.#entries("readwrite");
    const request = entries.get(id);
    request.onsuccess = () => { if (request.result) entries.put({ ...request.result, used_ms: usedMs }); };
    await committed(tx);
  }

  /** @returns {Promise<{ id: string, created_ms: number, used_ms: number }[]>} every entry, for eviction */
  async catalog() {
    const { tx, entries } = this.#entries();
    /** @type {{ id: string, created_ms: number, used_ms: number }[]} */ const out = [];
    const cursor = entries.openCursor();
    cursor.onsuccess = () => {
      const at = cursor.result;
      if (!at) return;
      out.push({ id: at.value.id, created_ms: at.value.created_ms, used_ms: at.value.used_ms });
      at.continue();
    };
    await committed(tx);
    return out;
  }

  /** @param {string[]} ids */
  async delete(ids) {
    const { tx, entries } = this.#entries("readwrite");
    for (const id of ids) entries.delete(id);
    await committed(tx);
  }

  async clear() {
    const { tx, entries } = this.#entries("readwrite");
    entries.clear();
    await committed(tx);
  }
}
