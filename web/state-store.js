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
     * with the function that releases it (without Web Locks: a no-op lock).
     * @param {string} name @returns {Promise<() => void>}
     */
    async lock(name) {
      const locks = /** @type {any} */ (globalThis.navigator)?.locks;
      if (!locks) return () => {};
      /** @type {() => void} */ let release = () => {};
      const held = new Promise((resolve) => { release = () => resolve(undefined); });
      await new Promise((granted) => { locks.request(name, () => { granted(undefined); return held; }); });
      return release;
    },
  };
}
