// @ts-check
/**
 * IndexedDB as promises, shared by the project's stores (web/idb-store.js: model files;
 * web/index-store.js: vector indexes; web/state-store.js: the router's own state), and the Web Lock
 * the stores' writers take turns with.
 */

/**
 * Take the Web Lock `name`, which every tab and worker of the origin shares; resolves, once held, to the
 * function that releases it. Aborting `signal` withdraws a waiting request (the promise rejects with an
 * AbortError) and releases the lock if it was granted meanwhile: a caller that gave up never leaves the
 * lock held. Without Web Locks (an old browser), resolves at once to a no-op.
 * @param {string} name @param {{ signal?: AbortSignal }} [options] @returns {Promise<() => void>}
 */
export function webLock(name, { signal } = {}) {
  const locks = /** @type {any} */ (globalThis.navigator)?.locks;
  if (!locks) return Promise.resolve(() => {});
  return new Promise((resolve, reject) => {
    locks.request(name, { signal }, () => new Promise((release) => {
      const free = () => release(undefined);
      signal?.addEventListener("abort", free, { once: true });
      resolve(free);
    })).catch(reject);
  });
}

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
