// @ts-check
/**
 * A small key-value store in IndexedDB for the router's own state (the cost ledger, so that a daily
 * cloud budget survives a reload and holds across the origin's tabs). Database `hybrid-router-state`,
 * object store `kv`; `lock(name)` is the Web Lock the tabs take turns with.
 */

import { committed, done, openDatabase } from "./idb.js";

export const DB_NAME = "hybrid-router-state";

/** @param {string} [name] */
export async function openStateStore(name = DB_NAME) {
  const db = await openDatabase(name, 1, { kv: {} });
  return {
    /** @param {string} key @returns {Promise<string | null>} JSON text */
    async get(key) {
      return (await done(db.transaction("kv").objectStore("kv").get(key))) ?? null;
    },
    /** @param {string} key @param {string} json */
    async put(key, json) {
      const tx = db.transaction("kv", "readwrite");
      tx.objectStore("kv").put(json, key);
      await committed(tx);
    },
    /**
     * Take the Web Lock `name`, which every tab and worker of the origin shares; resolves, once it is held,
     * with the function that releases it (without Web Locks: a no-op lock). Aborting `signal` withdraws a
     * waiting request (the promise rejects with an AbortError) and releases the lock if it was granted
     * meanwhile: a caller that gave up never leaves the lock held.
     * @param {string} name @param {{ signal?: AbortSignal }} [options] @returns {Promise<() => void>}
     */
    lock(name, { signal } = {}) {
      const locks = /** @type {any} */ (globalThis.navigator)?.locks;
      if (!locks) return Promise.resolve(() => {});
      return new Promise((resolve, reject) => {
        locks.request(name, { signal }, () => new Promise((release) => {
          const free = () => release(undefined);
          signal?.addEventListener("abort", free, { once: true });
          resolve(free);
        })).catch(reject);
      });
    },
  };
}
