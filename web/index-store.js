// @ts-check
/**
 * The vector index's storage edge: IndexedDB, no policy (py_src/hybrid_router/vector_index.py decides;
 * py_src/hybrid_router/index_store_idb.py calls this module from Python in the worker).
 *
 * Database `hybrid-router-indexes` (version 1):
 *   indexes  keyPath "name"          { name, model, dims }
 *   items    keyPath ["index", "id"] { index, id, text, vector: Float32Array }
 *
 * Vectors cross to Python as ONE Float32Array of n * dims values (one copy), not n small ones.
 */

import { committed, done, openDatabase } from "./idb.js";

export const DB_NAME = "hybrid-router-indexes";
const DB_VERSION = 1;

/** Every item of index `name`: ids are strings, and arrays sort after strings in IndexedDB. @param {string} name */
const itemsOf = (name) => IDBKeyRange.bound([name], [name, []]);

/** @param {string} [name] @returns {Promise<IndexStore>} */
export async function openIndexStore(name = DB_NAME) {
  return new IndexStore(await openDatabase(name, DB_VERSION, {
    indexes: { keyPath: "name" },
    items: { keyPath: ["index", "id"] },
  }));
}

export class IndexStore {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this.db = db;
  }

  /**
   * The index `name`, or null: `{ meta, ids, texts, vectors: Float32Array (n * dims) }` in id order.
   * @param {string} name
   */
  async load(name) {
    const tx = this.db.transaction(["indexes", "items"], "readonly");
    const [meta, rows] = await Promise.all([
      done(tx.objectStore("indexes").get(name)),
      done(tx.objectStore("items").getAll(itemsOf(name))),
    ]);
    if (!meta) return null;
    const dims = meta.dims ?? 0;
    const vectors = new Float32Array(rows.length * dims);
    rows.forEach((row, i) => vectors.set(row.vector, i * dims));
    return { meta, ids: rows.map((r) => r.id), texts: rows.map((r) => r.text), vectors };
  }

  /** @param {{ name: string, model: string, dims: number | null }} meta */
  async saveMeta(meta) {
    const tx = this.db.transaction("indexes", "readwrite");
    tx.objectStore("indexes").put({ name: meta.name, model: meta.model, dims: meta.dims });
    await committed(tx);
  }

  /**
   * Add or replace items, in one transaction (all or nothing).
   * @param {string} name @param {string[]} ids @param {string[]} texts @param {Float32Array} vectors n * dims
   */
  async put(name, ids, texts, vectors) {
    const dims = ids.length ? vectors.length / ids.length : 0;
    const tx = this.db.transaction("items", "readwrite");
    const items = tx.objectStore("items");
    ids.forEach((id, i) => items.put({ index: name, id, text: texts[i], vector: vectors.slice(i * dims, (i + 1) * dims) }));
    await committed(tx);
  }

  /** @param {string} name @param {string[]} ids */
  async delete(name, ids) {
    const tx = this.db.transaction("items", "readwrite");
    const items = tx.objectStore("items");
    for (const id of ids) items.delete([name, id]);
    await committed(tx);
  }

  /** Delete the index: its meta and every item. @param {string} name */
  async drop(name) {
    const tx = this.db.transaction(["indexes", "items"], "readwrite");
    tx.objectStore("indexes").delete(name);
    tx.objectStore("items").delete(itemsOf(name));
    await committed(tx);
  }

  /** @returns {Promise<string[]>} */
  async names() {
    return /** @type {string[]} */ (await done(this.db.transaction("indexes").objectStore("indexes").getAllKeys()));
  }
}
