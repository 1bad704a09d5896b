// @ts-check
/**
 * IndexedDB as promises, shared by the project's stores (web/idb-store.js: model files;
 * web/index-store.js: vector indexes; web/state-store.js: the router's own state).
 */

/** @template T @param {IDBRequest<T>} request @returns {Promise<T>} */
export const done = (request) => new Promise((resolve, reject) => {
  request.onsuccess = () => resolve(request.result);
  request.onerror = () => reject(request.error);
});

/** @param {IDBTransaction} tx @returns {Promise<void>} */
export const committed = (tx) => new Promise((resolve, reject) => {
  tx.oncomplete = () => resolve();
  tx.onabort = tx.onerror = () => reject(tx.error ?? new DOMException("the transaction was aborted", "AbortError"));
});

/**
 * Open database `name` at `version`, creating the object stores it lacks.
 * @param {string} name @param {number} version
 * @param {Record<string, IDBObjectStoreParameters>} stores object store name -> its parameters
 * @returns {Promise<IDBDatabase>}
 */
export function openDatabase(name, version, stores) {
  const request = indexedDB.open(name, version);
  request.onupgradeneeded = () => {
    const db = request.result;
    for (const [store, params] of Object.entries(stores)) {
      if (!db.objectStoreNames.contains(store)) db.createObjectStore(store, params);
    }
  };
  return done(request);
}
