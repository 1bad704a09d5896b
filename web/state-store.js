// @ts-check
/**
 * A small key-value store in IndexedDB for the router's own state (the cost ledger, so that a daily
 * cloud budget survives a reload). Database `hybrid-router-state`, object store `kv`.
 */

export const DB_NAME = "hybrid-router-state";

/** @template T @param {IDBRequest<T>} request @returns {Promise<T>} */
const done = (request) => new Promise((resolve, reject) => {
  request.onsuccess = () => resolve(request.result);
  request.onerror = () => reject(request.error);
});

/** @param {string} [name] */
export async function openStateStore(name = DB_NAME) {
  const request = indexedDB.open(name, 1);
  request.onupgradeneeded = () => request.result.createObjectStore("kv");
  const db = await done(request);
  return {
    /** @param {string} key @returns {Promise<string | null>} JSON text */
    async get(key) {
      return (await done(db.transaction("kv").objectStore("kv").get(key))) ?? null;
    },
    /** @param {string} key @param {string} json */
    async put(key, json) {
      const tx = db.transaction("kv", "readwrite");
      tx.objectStore("kv").put(json, key);
      await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = tx.onabort = () => reject(tx.error); });
    },
  };
}
