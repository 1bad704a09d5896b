// @ts-check
/**
 * A small key-value store in IndexedDB for the router's own state (the cost ledger, so that a daily
 * cloud budget survives a reload and holds across the origin's tabs). Database `hybrid-router-state`,
 * object store `kv`; `lock(name)` is the Web Lock the tabs take turns with.
 */

import { committed, done, openDatabase, webLock } from "./idb.js";

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
    /** The Web Lock `name` (see idb.js's webLock). @param {string} name @param {{ signal?: AbortSignal }} [options] */
    lock: (name, options) => webLock(name, options),
  };
}
