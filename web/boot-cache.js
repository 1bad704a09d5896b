// @ts-check
/**
 * What makes a later start of the worker fast: the Python side's site-packages (Pyodide's packages from its
 * lock, our wheels) and the bytecode the first start compiled, kept as ONE archive in Cache Storage.
 *
 * A first start fetches the packages (each checked against the sha256 in pyodide-lock.json by the fetch's
 * `integrity`, as Pyodide's own loadPackage does) and the wheels, and unpacks them without micropip (which
 * would itself have to be unpacked and imported first) and without loading every shared library of numpy
 * up front (Python dlopens the ones an import needs). While it imports, Python writes the bytecode of every
 * module it compiles; after `ready`, once no call of the page has been in flight for 2 s (web/worker.js
 * whenIdle: the packing and the snapshot's second interpreter are seconds of CPU that would otherwise slow
 * the first calls down), that site-packages folder is packed (a bundle of its files, uncompressed,
 * that JS writes into the file system on a later start: writeBundle) and stored under
 * a key made of the Pyodide build and the packages' and wheels' URLs (all content-hashed: a new build of our
 * package is a new key, and the entries of other keys are deleted). A later start reads that one entry,
 * checks it against the sha256 stored with it, and writes its files into the file system from JS (views of
 * the entry's bytes: no copy, no Python tarfile): no package fetches, no compiling of numpy's or our
 * modules. An entry that fails its check (or any step of reading it) is deleted and the start goes on as a
 * first start does.
 *
 * The bytecode is marked hash-based and unchecked (PEP 552) before it is packed: the files written on a
 * later start have new modification times, which would make timestamp-checked bytecode stale. The key covers
 * the sources.
 */

/** the Cache Storage cache (one entry: the archive of the current key) */
export const CACHE_NAME = "hybrid-router-boot-v1";
/** the name of the worker that makes the snapshot (this module) */
const SNAPSHOT_WORKER = "hybrid-router-snapshot";
/** the entries' format; part of the keys (2: a bundle written into the file system from JS, not a tar; 3: the
 * snapshot holds our package's modules imported) */
const FORMAT = 3;
/** the bundle's first 32-bit word ("HRSP", little-endian) */
const BUNDLE_MAGIC = 0x50535248;
const DIGEST_HEADER = "x-hybrid-router-sha256";

/** @param {ArrayBuffer | Uint8Array} bytes */
const sha256Hex = async (bytes) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
  (b) => b.toString(16).padStart(2, "0")).join("");

/** @param {string} hex @returns {string} base64 of the bytes `hex` spells (for a fetch's `integrity`) */
const hexToBase64 = (hex) => btoa(String.fromCharCode(...(hex.match(/../g) ?? []).map((h) => parseInt(h, 16))));

/** @param {any} value @returns {Promise<string>} */
const keyOf = async (value) => (await sha256Hex(new TextEncoder().encode(JSON.stringify(value)))).slice(0, 32);

/**
 * The entries' keys: `site`, what the site-packages folder is made of (the Pyodide build, its packages, the
 * wheels: content-hashed URLs, so our package's hash is in it); `snapshot`, the Pyodide build and `site`.
 * @param {{ pyodide: { version: string, packages: string[] } }} boot boot.json
 * @param {string} indexURL @param {string[]} wheels absolute URLs
 * @returns {Promise<{ site: string, snapshot: string }>}
 */
export async function bootKeys(boot, indexURL, wheels) {
  const { version, packages } = boot.pyodide;
  const site = await keyOf({ format: FORMAT, indexURL, version, packages, wheels });
  return { site, snapshot: await keyOf({ format: FORMAT, indexURL, version, site }) };
}

/**
 * The stored snapshot of `key` (bytes null where there is none or it failed its check).
 * @param {string} key @param {string} base
 * @returns {Promise<{ key: string, base: string, bytes: Uint8Array | null, status: "hit" | "miss" | "corrupt" | "off", detail?: string }>}
 */
export async function openSnapshot(key, base) {
  const entry = await openEntry("snapshot", key, base).catch((error) => ({ bytes: null,
    status: /** @type {const} */ ("off"), detail: String(error) }));
  if (entry.status === "corrupt") console.warn(`the stored Python snapshot was not used (${entry.detail})`);
  return { key, base, ...entry };
}

/** @typedef {"site-packages" | "snapshot"} Kind the two entries: the archive, the memory snapshot */

/** @param {Kind} kind @param {string} key @param {string} base */
const entryUrl = (kind, key, base) => new URL(`__hybrid-router-boot__/${kind}-${key}.bin`, base).href;

/**
 * The stored entry of `kind` and `key`, checked; null where there is none, Cache Storage is not available,
 * or the entry failed its check (then it is deleted).
 * @param {Kind} kind @param {string} key @param {string} base a URL of our origin (the entry's URL is made
 *   from it)
 * @returns {Promise<{ bytes: Uint8Array | null, status: "hit" | "miss" | "corrupt" | "off", detail?: string }>}
 */
export async function openEntry(kind, key, base) {
  if (typeof caches === "undefined") return { bytes: null, status: "off" };
  const url = entryUrl(kind, key, base);
  let cache;
  try {
    cache = await caches.open(CACHE_NAME);
  } catch (error) {
    return { bytes: null, status: "off", detail: String(error) };
  }
  try {
    const response = await cache.match(url);
    if (!response) return { bytes: null, status: "miss" };
    const expected = response.headers.get(DIGEST_HEADER);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const digest = await sha256Hex(bytes);
    if (digest === expected) return { bytes, status: "hit" };
    await cache.delete(url);
    return { bytes: null, status: "corrupt", detail: `sha256 ${digest.slice(0, 12)}… is not the stored ${String(expected).slice(0, 12)}…` };
  } catch (error) {
    await cache.delete(url).catch(() => false);
    return { bytes: null, status: "corrupt", detail: String(error) };
  }
}

/**
 * Keep `bytes` as the entry of `kind` and `key` (with its sha256), dropping that kind's entries of other keys.
 * @param {Kind} kind @param {string} key @param {string} base @param {Uint8Array} bytes
 */
export async function storeEntry(kind, key, base, bytes) {
  if (typeof caches === "undefined") return;
  const cache = await caches.open(CACHE_NAME);
  const url = entryUrl(kind, key, base);
  const prefix = entryUrl(kind, "", base);
  for (const request of await cache.keys()) {
    if (request.url.startsWith(prefix) && request.url !== url) await cache.delete(request);
  }
  await cache.put(url, new Response(bytes, { headers: { "content-type": "application/octet-stream",
    [DIGEST_HEADER]: await sha256Hex(bytes) } }));
}

/** @param {Kind} kind @param {string} key @param {string} base */
export async function deleteEntry(kind, key, base) {
  if (typeof caches === "undefined") return;
  await (await caches.open(CACHE_NAME)).delete(entryUrl(kind, key, base)).catch(() => false);
}

/**
 * The files of Pyodide's packages `names` and everything they depend on (pyodide-lock.json), each fetched
 * with the lock's sha256 as its `integrity` (a mismatch is a network error).
 * @param {string} indexURL @param {string[]} names @returns {Promise<{ name: string, bytes: ArrayBuffer }[]>}
 */
export async function fetchPackages(indexURL, names) {
  const response = await fetch(new URL("pyodide-lock.json", indexURL));
  if (!response.ok) throw new Error(`pyodide-lock.json: HTTP ${response.status}`);
  const lock = (await response.json()).packages;
  /** @type {Set<string>} */ const wanted = new Set();
  const add = (/** @type {string} */ name) => {
    const entry = lock[name];
    if (!entry) throw new Error(`pyodide-lock.json has no package ${name}`);
    if (wanted.has(name)) return;
    wanted.add(name);
    for (const dep of entry.depends ?? []) add(dep);
  };
  names.forEach(add);
  return Promise.all([...wanted].map(async (name) => {
    const { file_name: file, sha256 } = lock[name];
    const got = await fetch(new URL(file, indexURL), { integrity: `sha256-${hexToBase64(sha256)}` });
    if (!got.ok) throw new Error(`${file}: HTTP ${got.status}`);
    return { name, bytes: await got.arrayBuffer() };
  }));
}

/**
 * @param {string} url @returns {Promise<ArrayBuffer>} a wheel's bytes
 */
export async function fetchWheel(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

/**
 * @typedef {{ key: string, base: string, status: "hit" | "miss" | "corrupt" | "off", detail?: string,
 *   archive: Bundle | null, packages: { name: string, bytes: ArrayBuffer }[] | null,
 *   wheels: ArrayBuffer[] | null, wheelUrls: string[], indexURL: string, names: string[] }} Site
 */

/** @param {string} message @param {unknown} [cause] */
const loadError = (message, cause) => Object.assign(new Error(message, { cause }), {
  name: "ModelLoadError",
  hint: "The Python packages failed their integrity check or could not be fetched: rebuild with ./hr build.",
});

/**
 * What this boot's site-packages are made from: the stored archive of its key, or else the package files
 * and wheels, fetched (started while Pyodide boots).
 * @param {{ pyodide: { version: string, packages: string[] } }} boot boot.json
 * @param {string} indexURL @param {string[]} wheelUrls absolute @param {string} base our origin's URL
 * @param {string} key bootKeys' `site`
 * @returns {Promise<Site>}
 */
export async function sitePackages(boot, indexURL, wheelUrls, base, key) {
  const names = boot.pyodide.packages;
  const stored = await openEntry("site-packages", key, base).catch((error) => ({ bytes: null, status: /** @type {const} */ ("off"),
    detail: String(error) }));
  /** @type {Site} */
  const site = { key, base, status: stored.status, detail: stored.detail, archive: null, packages: null,
    wheels: null, wheelUrls, indexURL, names };
  if (stored.bytes) {
    try {
      site.archive = readBundle(stored.bytes);
    } catch (error) {
      await deleteEntry("site-packages", key, base);
      Object.assign(site, { status: "corrupt", detail: String(error) });
    }
  }
  if (site.status === "corrupt") console.warn(`the stored Python packages were not used (${site.detail})`);
  return site.archive ? site : fetchSite(site);
}

/** @param {Site} site @returns {Promise<Site>} with its package files and wheels */
async function fetchSite(site) {
  try {
    [site.packages, site.wheels] = await Promise.all([fetchPackages(site.indexURL, site.names),
      Promise.all(site.wheelUrls.map(fetchWheel))]);
  } catch (error) {
    throw loadError(`could not load the Python packages: ${/** @type {any} */ (error)?.message ?? error}`, error);
  }
  return site;
}

/**
 * Install `site` in `pyodide`'s site-packages: the archive (a failing one falls back to the fetched files),
 * or the package files and wheels, then bytecode is written while our modules are imported (packSite
 * stores it).
 * @param {any} pyodide @param {Site} site @returns {Promise<Site>}
 */
export async function installSite(pyodide, site) {
  if (site.archive) {
    try {
      const root = pyodide.runPython("from pyodide._package_loader import SITE_PACKAGES; str(SITE_PACKAGES)");
      writeBundle(pyodide.FS, root, site.archive);
      site.archive = null;
      pyodide.runPython(FORGET_LISTINGS);
      return site;
    } catch (error) {
      console.warn("the stored Python packages could not be written: installing them from their files", error);
      await deleteEntry("site-packages", site.key, site.base);
      Object.assign(site, { status: "corrupt", detail: String(error), archive: null });
      await fetchSite(site);
    }
  }
  const extractDir = pyodide.runPython("from pyodide._package_loader import SITE_PACKAGES; str(SITE_PACKAGES)");
  for (const bytes of [...(site.packages ?? []).map((p) => p.bytes), ...(site.wheels ?? [])]) {
    pyodide.unpackArchive(bytes, "wheel", { extractDir });
  }
  site.packages = site.wheels = null;
  if (site.status !== "off") pyodide.runPython("import sys; sys.dont_write_bytecode = False");
  return site;
}

/**
 * After a start that did not use the archive: pack site-packages with the bytecode written so far and store
 * it under the site's key. Resolves to the archive's size in bytes (0: nothing stored).
 * @param {any} pyodide @param {Site} site @returns {Promise<number>}
 */
export async function packSite(pyodide, site) {
  if (site.status === "hit" || site.status === "off") return 0;
  pyodide.runPython(PACK_SITE);
  const bytes = pyodide.FS.readFile("/tmp/site.bin");
  pyodide.FS.unlink("/tmp/site.bin");
  await storeEntry("site-packages", site.key, site.base, bytes);
  return bytes.byteLength;
}

/*
 * The memory snapshot of a booted interpreter (Pyodide's `_makeSnapshot` / `makeMemorySnapshot` /
 * `_loadSnapshot`, experimental in 0.27): its heap after the bootstrap and the imports of the standard
 * library modules our package uses, so that a later start skips Python's initialization and those imports.
 * Pyodide 0.27 cannot snapshot an interpreter that loaded a shared library (numpy's), nor one whose Python
 * holds JS objects other than globals, so the snapshot is made by a throwaway interpreter in a worker of its
 * own (this module, started as a worker named SNAPSHOT_WORKER: see the end of the file) after the first
 * start is ready, and numpy and our package are installed and
 * imported after the restore. Its key: bootKeys' `snapshot` (the Pyodide build, our package's hash).
 * A restore that fails (Pyodide checks its build id; a heap that does not fit) deletes the entry and boots
 * as a first start does. The restored interpreter's `random` is seeded again (the snapshot's state would
 * repeat on every start); its string hash seed is the snapshot's (as in Pyodide's own snapshots).
 */
/** Pyodide 0.27's snapshot magic number (its first 32-bit word) and the least heap it makes (20 MiB) */
const SNAPSHOT_MAGIC = 1886286592;
const LEAST_HEAP = 20 * 1024 * 1024;

/**
 * Whether `bytes` can be handed to loadPyodide: one smaller than Pyodide's least heap would become the
 * heap's size, which the runtime cannot instantiate with (and then never settles).
 * @param {Uint8Array} bytes
 */
const looksLikeSnapshot = (bytes) => bytes.byteLength > LEAST_HEAP
  && new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) === SNAPSHOT_MAGIC;

/**
 * Boot Pyodide, from the snapshot where one is stored.
 * @param {(options: any) => Promise<any>} loadPyodide @param {Record<string, any>} options loadPyodide's
 * @param {{ key: string, base: string, bytes: Uint8Array | null, status: string, detail?: string }} snapshot
 * @returns {Promise<any>} the interpreter
 */
export async function bootPython(loadPyodide, options, snapshot) {
  if (snapshot.bytes && !looksLikeSnapshot(snapshot.bytes)) {
    await deleteEntry("snapshot", snapshot.key, snapshot.base);
    Object.assign(snapshot, { bytes: null, status: "corrupt", detail: "not a Pyodide memory snapshot" });
  }
  if (snapshot.bytes) {
    try {
      const pyodide = await loadPyodide({ ...options, _loadSnapshot: snapshot.bytes });
      pyodide.runPython("import random; random.seed()");
      return pyodide;
    } catch (error) {
      console.warn("the stored Python snapshot could not be restored: booting without it", error);
      await deleteEntry("snapshot", snapshot.key, snapshot.base);
      Object.assign(snapshot, { status: "corrupt", detail: String(error) });
    } finally {
      snapshot.bytes = null;
    }
  }
  return loadPyodide(options);
}

/** Python: the standard library modules imported so far (the snapshot imports them) */
export const STDLIB_MODULES = `
import sys
zips = tuple(p for p in sys.path if p.endswith(".zip"))
sorted(n for n, m in list(sys.modules.items()) if zips and not n.startswith(("pyodide", "_pyodide"))
       and str(getattr(m, "__file__", "") or "").startswith(zips))
`;

/** Python: our package's modules imported so far (the snapshot imports them too, less what needs numpy) */
export const OUR_MODULES = `
import sys
sorted(n for n in list(sys.modules) if n == "hybrid_router" or n.startswith("hybrid_router."))
`;

/**
 * After a start without a snapshot: make one in a worker of its own (this module) and store it.
 * Resolves to its size in bytes (0: not made, and why is logged).
 * @param {any} pyodide the running interpreter (asked which modules it imported)
 * @param {{ key: string, base: string, status: string }} snapshot @param {string} indexURL
 * @param {Site} [site] the stored packages (their bundle is installed in the snapshot's interpreter, and our
 *   package's modules imported there)
 * @returns {Promise<number>}
 */
export async function makeSnapshot(pyodide, snapshot, indexURL, site) {
  if (snapshot.status === "hit" || snapshot.status === "off") return 0;
  // a host page's worker that imports ours from another origin cannot start a worker from this module
  if (new URL(import.meta.url).origin !== self.location.origin) return 0;
  const modules = pyodide.runPython(STDLIB_MODULES).toJs();
  const ours = site && site.status !== "off" ? pyodide.runPython(OUR_MODULES).toJs() : [];
  const worker = new Worker(new URL(import.meta.url), { type: "module", name: SNAPSHOT_WORKER });
  try {
    const reply = await new Promise((resolve, reject) => {
      worker.onmessage = ({ data }) => resolve(data);
      worker.onerror = (event) => reject(new Error(event.message || "the snapshot worker failed"));
      worker.postMessage({ indexURL, key: snapshot.key, base: snapshot.base, modules, ours, site: site?.key });
    });
    if (reply.error) throw new Error(reply.error);
    if (reply.note) console.warn(reply.note);
    return reply.size;
  } finally {
    worker.terminate();
  }
}

/**
 * Python: forget the listing of site-packages the import system may keep (the folder was empty when the
 * snapshot was made). Only that folder's: importlib.invalidate_caches() also makes the standard library's
 * zipimporter read its zip's directory again and imports importlib.metadata, which took 450 ms (more than
 * writing the whole bundle).
 */
const FORGET_LISTINGS = `
import sys
from pyodide._package_loader import SITE_PACKAGES
sys.path_importer_cache.pop(str(SITE_PACKAGES), None)
`;

/** @typedef {{ files: { path: string, data: Uint8Array }[] }} Bundle site-packages' files (views) */

/**
 * Read the bundle `bytes` (PACK_SITE's, checked by its sha256): the magic number, the length of a JSON
 * header (`{ files }`: the count of files), the header, then per file its path (relative to site-packages,
 * UTF-8) and its bytes, each behind its 32-bit length (all little-endian). The files are views of `bytes`:
 * nothing is copied. Throws on anything else (a cut bundle, bytes after its end, a path that leaves
 * site-packages).
 * @param {Uint8Array} bytes @returns {Bundle}
 */
export function readBundle(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder("utf-8", { fatal: true });
  if (bytes.byteLength < 8 || view.getUint32(0, true) !== BUNDLE_MAGIC) throw new Error("not a site-packages bundle");
  let at = 4;
  /** @param {number} n the next `n` bytes */
  const take = (n) => {
    if (at + n > bytes.byteLength) throw new Error(`the bundle is cut short at byte ${at}`);
    at += n;
    return bytes.subarray(at - n, at);
  };
  const length = () => {
    take(4);
    return view.getUint32(at - 4, true);
  };
  const header = JSON.parse(text.decode(take(length())));
  /** @type {Bundle["files"]} */ const files = [];
  for (let i = 0; i < header.files; i++) {
    const path = text.decode(take(length()));
    if (path.startsWith("/") || path.split("/").some((p) => p === ".." || p === "." || p === "")) {
      throw new Error(`the bundle names a file outside site-packages: ${path}`);
    }
    files.push({ path, data: take(length()) });
  }
  if (at !== bytes.byteLength) throw new Error(`the bundle has ${bytes.byteLength - at} bytes after its last file`);
  return { files };
}

/**
 * Write `bundle`'s files into the folder `root` of the Emscripten file system `FS`: MEMFS keeps each view as
 * it is (`canOwn`), so nothing is copied or decompressed, and Python does no work.
 * @param {any} FS @param {string} root @param {Bundle} bundle
 */
export function writeBundle(FS, root, bundle) {
  /** @type {Set<string>} */ const folders = new Set();
  for (const { path, data } of bundle.files) {
    const folder = path.slice(0, Math.max(0, path.lastIndexOf("/")));
    if (folder && !folders.has(folder)) {
      FS.mkdirTree(`${root}/${folder}`);
      folders.add(folder);
    }
    FS.writeFile(`${root}/${path}`, data, { canOwn: true });
  }
}

/**
 * Python: make the bytecode the imports wrote hash-based and unchecked (flags 1, PEP 552: the sources come
 * back with new modification times), pack site-packages into the bundle /tmp/site.bin that writeBundle
 * reads (less what only builds or tests a package), stop writing bytecode.
 */
export const PACK_SITE = `
import json, os, struct, sys
from pyodide._package_loader import SITE_PACKAGES
sys.dont_write_bytecode = True
for folder, _, files in os.walk(SITE_PACKAGES):
    if os.path.basename(folder) != "__pycache__":
        continue
    for name in files:
        path = os.path.join(folder, name)
        with open(path, "r+b") as f:
            head = f.read(8)
            if len(head) == 8 and head[4:8] == bytes(4):
                f.seek(4)
                f.write(bytes([1, 0, 0, 0]) + bytes(8))
def needed(name):  # not what only builds or tests a package (numpy's tests, C headers, stubs)
    return "tests" not in name.split("/") and not name.endswith((".pyi", ".h", ".c", ".pxd", ".pyx"))
files = []
for folder, _, names in os.walk(SITE_PACKAGES):
    for name in sorted(names):
        path = os.path.join(folder, name)
        rel = os.path.relpath(path, SITE_PACKAGES)
        if needed(rel) and os.path.isfile(path):
            files.append((rel, path))
header = json.dumps({"files": len(files)}).encode()
with open("/tmp/site.bin", "wb") as out:
    out.write(struct.pack("<II", 0x50535248, len(header)) + header)
    for rel, path in files:
        name = rel.encode()
        with open(path, "rb") as f:
            data = f.read()
        out.write(struct.pack("<I", len(name)) + name + struct.pack("<I", len(data)))
        out.write(data)
`;

/**
 * Python (the snapshot's interpreter, `ours` given): import our package's modules with numpy and the other
 * packages blocked. Pyodide 0.27 cannot snapshot an interpreter that loaded a shared library (numpy's), and
 * our modules take numpy on first use (hybrid_router/_lazy.py), so they import without it; a module that
 * cannot (one that needs a package or the worker's JS module at import) is left for the restored interpreter
 * to import. The blocks are lifted before the snapshot.
 */
const IMPORT_OURS = `
import importlib, sys
blocked = ("numpy", "transformers_js_py", "hybrid_router_js")
for name in blocked:
    sys.modules[name] = None
try:
    for name in ours:
        try:
            importlib.import_module(name)
        except Exception:
            pass
finally:
    for name in blocked:
        if sys.modules.get(name, 0) is None:
            del sys.modules[name]
    del name
del ours, json, importlib, sys, blocked
`;

/**
 * This module as the snapshot's worker: a throwaway interpreter, given the Pyodide URL, the snapshot's key,
 * the standard library modules to import and, where the packages are stored, their key and our package's
 * modules: boots with `_makeSnapshot`, imports the standard library's modules, installs the stored packages'
 * bundle and imports our modules without numpy (IMPORT_OURS), stores the snapshot and answers `{ size, note }`
 * or `{ error }`. If a snapshot with our modules cannot be made (Pyodide refuses an interpreter that holds JS
 * objects other than globals), it makes one of the standard library's modules alone and says why in `note`.
 */
async function snapshotWorker(/** @type {MessageEvent} */ { data }) {
  const { indexURL, key, base, modules, ours, site } = data;
  try {
    const { loadPyodide } = await import(indexURL + "pyodide.mjs");
    const boot = async (/** @type {boolean} */ withOurs) => {
      const pyodide = await loadPyodide({ indexURL, _makeSnapshot: true, stdout: () => {}, stderr: () => {} });
      pyodide.runPython(`
import importlib, json
for name in json.loads(${JSON.stringify(JSON.stringify(modules))}):
    try:
        importlib.import_module(name)
    except Exception:
        pass
`);
      if (withOurs) {
        const stored = await openEntry("site-packages", site, base);
        if (!stored.bytes) throw new Error(`the stored packages are not readable (${stored.status})`);
        const root = pyodide.runPython("from pyodide._package_loader import SITE_PACKAGES; str(SITE_PACKAGES)");
        writeBundle(pyodide.FS, root, readBundle(stored.bytes));
        pyodide.runPython(`import json\nours = json.loads(${JSON.stringify(JSON.stringify(ours))})\n${IMPORT_OURS}`);
      }
      return pyodide.makeMemorySnapshot();
    };
    let bytes;
    let note;
    try {
      bytes = await boot(Boolean(site && ours?.length));
    } catch (error) {  // our modules could not be held by a snapshot: the standard library's alone
      if (!(site && ours?.length)) throw error;
      note = `the Python snapshot holds the standard library only: ${String(error)}`;
      bytes = await boot(false);
    }
    await storeEntry("snapshot", key, base, bytes);
    self.postMessage({ size: bytes.byteLength, note });
  } catch (error) {
    self.postMessage({ error: String(/** @type {any} */ (error)?.stack ?? error) });
  }
}

if (typeof self !== "undefined" && self.name === SNAPSHOT_WORKER) self.onmessage = snapshotWorker;
