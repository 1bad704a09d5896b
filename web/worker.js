// @ts-check
/// <reference lib="webworker" />
/**
 * Hybrid Router's module worker: boots Pyodide, loads numpy and our Python package, imports
 * Transformers.js from our own server, and hands every message to the Python dispatcher.
 *
 * Boot messages carry `id: null`: `{type: "progress", event: {stage: "boot", step, progress}}`,
 * then `{type: "ready", info}` or `{type: "fatal", error: {name, message, hint}}`.
 * After that, messages are the data-only protocol of docs/ARCHITECTURE.md, answered by Python.
 */

import { customCache, guardedFetch, openModelStore } from "./idb-store.js";
import { estimateStorage, probeCapabilities } from "./capabilities.js";
import { REFUSAL_HINT, refusal } from "./limits.js";
import { bootKeys, bootPython, installSite, makeSnapshot, openSnapshot, packSite, sitePackages } from "./boot-cache.js";
import * as bridge from "./py-bridge.js";

/** @type {any} */ let app = null;
/** @type {any[]} */ const early = [];

/** the ids of the page's calls not yet answered, and when the last one was (web/protocol.js) */
const inFlight = new Set();
let lastAnswered = 0;

/** @param {any} message */
const post = (message) => {
  if (message && (message.type === "result" || message.type === "error") && inFlight.delete(message.id)) {
    lastAnswered = performance.now();
  }
  self.postMessage(message);
};

/**
 * Resolves once no call of the page has been in flight for `quietMs` (counted from now at the earliest), or
 * `atMostMs` from now whatever runs: work for later (the boot cache) keeps off the cores a call is using.
 * @param {number} quietMs @param {number} atMostMs @returns {Promise<void>}
 */
function whenIdle(quietMs, atMostMs) {
  const asked = performance.now();
  return new Promise((resolve) => {
    const check = () => {
      const now = performance.now();
      const quiet = inFlight.size === 0 ? now - Math.max(lastAnswered, asked) : 0;
      if (quiet >= quietMs || now - asked >= atMostMs) resolve();
      else setTimeout(check, Math.min(quietMs - quiet, 250));
    };
    check();
  });
}

/** @param {string} step @param {number} progress @param {Record<string, any>} [extra] */
const bootProgress = (step, progress, extra = {}) =>
  post({ id: null, type: "progress", event: { stage: "boot", step, progress, ...extra } });

/**
 * Where boot.json is looked for: next to this module (`import.meta.url`, which is our server's even when a
 * host page's own worker file imports this one), unless `create({ baseUrl })` says elsewhere.
 */
let base = import.meta.url;
/** @param {string} url */
const abs = (url) => new URL(url, base).href;

class BootError extends Error {
  /** @param {string} name @param {string} message @param {string} hint */
  constructor(name, message, hint) {
    super(message);
    this.name = name;
    this.hint = hint;
  }
}

/** the Python packages are stored for the next start (web/boot-cache.js) once no call has been in flight for
 * this long after `ready`, or PACK_AT_MOST_MS after it whatever runs */
const PACK_DELAY_MS = 2000;
const PACK_AT_MOST_MS = 60_000;
/** ms after ready before numpy is imported (a call that needs it first imports it itself) */
const NUMPY_DELAY_MS = 500;

/** @param {any} options */
async function boot(options) {
  const t0 = performance.now();
  // ms from t0; `worker`: from the worker's creation to t0 (its module and imports loaded, the init received)
  const timings = /** @type {Record<string, number>} */ ({ worker: Math.round(t0) });
  // each phase is also a performance mark (`hr:NAME`: visible in a DevTools trace of the worker)
  const mark = (/** @type {string} */ name) => {
    performance.mark(`hr:${name}`);
    timings[name] = Math.round(performance.now() - t0);
  };

  bootProgress("config", 0.02);
  if (options.baseUrl) base = new URL(options.baseUrl, self.location.href).href;
  const response = await fetch(abs(options.bootUrl || "boot.json"), { cache: "no-cache" });
  if (!response.ok) {
    throw new BootError("ModelLoadError", `boot.json: HTTP ${response.status}`,
      "The assets are not built or the server is not Hybrid Router's serve.py: run ./hr run.");
  }
  const boot = await response.json();
  base = response.url; // the URLs in boot.json are relative to it (a static site may live under any path)

  bootProgress("python-runtime", 0.05, { detail: `Pyodide ${boot.pyodide.version}` });
  const indexURL = abs(boot.pyodide.index_url);
  const transformersUrl = abs(boot.transformers.url);
  // started now, awaited where they are needed: the stored snapshot and packages (web/boot-cache.js) or the
  // package fetches, and the JS libraries, load while Python boots
  const wheels = boot.wheels.map(abs);
  const keys = bootKeys(boot, indexURL, wheels);
  const snapshot = keys.then((k) => openSnapshot(k.snapshot, base));
  const site = keys.then((k) => sitePackages(boot, indexURL, wheels, base, k.site));
  const tjsImport = import(transformersUrl);
  site.catch(() => {});
  tjsImport.catch(() => {});
  const { loadPyodide } = await import(indexURL + "pyodide.mjs");
  const restored = await snapshot;
  mark("snapshot-read");
  const pyodide = await bootPython(loadPyodide, {
    indexURL,
    stdout: (/** @type {string} */ s) => console.log("[py]", s),
    stderr: (/** @type {string} */ s) => console.warn("[py]", s),
  }, restored);
  mark("pyodide");

  bootProgress("python-packages", 0.35, { detail: [...boot.pyodide.packages, "hybrid_router"].join(", ") });
  const stored = await site;
  mark("site-read");
  const installed = await installSite(pyodide, stored);
  mark("packages");

  bootProgress("transformers-js", 0.7, { detail: `Transformers.js ${boot.transformers.version}` });
  const tjs = await tjsImport;
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = new URL(abs(boot.models_url)).pathname; // a path, not a URL (see OFFLINE-STACK.md)
  // the default build until Python picks the one for this device (routing/devices.py choose_ort_runtime,
  // applied by py-bridge.js useOrtBuild before the first model loads)
  tjs.env.backends.onnx.wasm.wasmPaths = { mjs: abs(boot.ort.mjs), wasm: abs(boot.ort.wasm) };
  bridge.offerOrtBuilds(tjs.env.backends.onnx.wasm, Object.fromEntries(Object.entries(boot.ort.builds ?? {})
    .map(([name, b]) => [name, { mjs: abs(/** @type {any} */ (b).mjs), wasm: abs(/** @type {any} */ (b).wasm),
      // a static site's wasm in parts (hosts limit one file's size): py-bridge.js joins them
      ...(/** @type {any} */ (b).wasm_parts ? { wasmParts: /** @type {any} */ (b).wasm_parts.map(
        (/** @type {any} */ p) => ({ ...p, url: abs(p.url) })) } : {}) }])),
  options.ortBuild ?? null);
  // ONNX Runtime imports its .mjs by URL: Transformers.js's wasm cache would import a blob: copy instead,
  // which the Content-Security-Policy refuses (script-src has no blob:); the HTTP cache or the service
  // worker keeps the files instead
  tjs.env.useWasmCache = false;
  // ONNX Runtime's threads are workers made from its .mjs: only possible where that file is same-origin
  // (otherwise it would make them from a blob:, which the Content-Security-Policy refuses)
  const ortSameOrigin = new URL(abs(boot.ort.mjs)).origin === self.location.origin;
  tjs.env.backends.onnx.wasm.numThreads = self.crossOriginIsolated && ortSameOrigin
    ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  // One model cache: ours in IndexedDB (verified against the manifest, installed as env.customCache by
  // Python); Transformers.js's own Cache Storage is off and it may not fetch model files itself.
  tjs.env.useBrowserCache = false;
  const store = await openModelStore().catch((/** @type {any} */ e) => {
    console.warn("IndexedDB is not available: models run from memory", e);
    return null;
  });
  if (store) tjs.env.fetch = guardedFetch(new URL(abs(boot.models_url)).pathname);
  const capabilities = await probeCapabilities({ runtimeUrls: [transformersUrl, abs(boot.ort.mjs)] });
  mark("transformers");

  bootProgress("router", 0.85);
  // the JS that Python calls (no pyodide.code.run_js: it is eval, which the CSP refuses)
  pyodide.registerJsModule("hybrid_router_js", { ...bridge, transformers: { ...tjs } });
  // our modules the restored snapshot already holds (0 on a first start): web/boot-cache.js IMPORT_OURS
  const snapshotModules = pyodide.runPython(
    "import sys\nsum(n == 'hybrid_router' or n.startswith('hybrid_router.') for n in list(sys.modules))");
  const worker = pyodide.pyimport("hybrid_router.browser.worker");
  mark("import");
  // cloud_config null in boot.json: a local-only site, no relay
  const relay = "cloud_config" in boot ? boot.cloud_config : "/api/cloud/config";
  app = await worker.start(post, pyodide.toPy({
    transformers_url: transformersUrl,
    manifest_url: abs(boot.models_manifest),
    models_url: abs(boot.models_url),
    cache_budget_bytes: options.cacheBudgetBytes ?? null,
    download_idle_ms: options.downloadIdleMs ?? null,
    cloud_config_url: relay ? abs(relay) : null,
    cloud_base_url: abs(boot.cloud_base_url || "/api/cloud"),
    build_status_url: abs(boot.build_status || "/api/build/status"),
    cloud: options.cloud || {},
    policy: options.policy || {},
    response_cache: options.responseCache ?? null, // create({ cache }): null, true or its fields
    device: options.device ?? null, // null: chosen per model from the capabilities
    capabilities: options.capabilities ?? null, // create({ capabilities }): facts over the probe's
  }), { store, customCache, capabilities, estimateStorage });
  mark("start");
  // the browser's view of the network: offline, a request that could go either way stays on the device and
  // an explicit cloud call fails at once with an OfflineError (no retries against a network that is gone)
  const router = app.router;
  router.set_online(navigator.onLine !== false);
  self.addEventListener("online", () => router.set_online(true));
  self.addEventListener("offline", () => router.set_online(false));
  const info = worker.boot_info().toJs({ dict_converter: Object.fromEntries });
  worker.destroy();
  await holdLifeLock(options.lifeLock);
  mark("ready");
  bootProgress("ready", 1);
  post({ id: null, type: "ready", info: { ...info, pyodide: boot.pyodide.version,
    transformers: boot.transformers.version, crossOriginIsolated: self.crossOriginIsolated,
    threads: tjs.env.backends.onnx.wasm.numThreads, ort: bridge.ortInUse(), modelCache: Boolean(store),
    timings, snapshotModules, bootCache: { snapshot: restored.status, site: installed.status,
      ...(restored.detail || installed.detail ? { detail: [restored.detail, installed.detail].filter(Boolean).join("; ") } : {}) } } });
  for (const message of early.splice(0)) deliver(message);
  // numpy, which our modules take on first use (hybrid_router/_lazy.py), imported once the page's first
  // messages have had their turn, unless a call did (before the packages are stored: PACK_DELAY_MS)
  setTimeout(() => pyodide.runPython("import numpy"), NUMPY_DELAY_MS);
  // for the next start: site-packages with the bytecode compiled so far, and the memory snapshot (a second
  // interpreter booted in a worker of its own: seconds of CPU), made once the page's calls have been answered
  // and none came for PACK_DELAY_MS, so that they do not slow the first calls down (web/boot-cache.js)
  whenIdle(PACK_DELAY_MS, PACK_AT_MOST_MS).then(() => packSite(pyodide, installed))
    .catch((error) => console.warn("the Python packages were not stored for the next start", error))
    .then(() => makeSnapshot(pyodide, restored, indexURL, installed))
    .catch((error) => console.warn("no Python snapshot was made for the next start", error));
}

/**
 * Hold a Web Lock for as long as this worker lives: the page asks for the same lock, and is granted it
 * only when the worker is gone (crashed, out of memory, closed), so it learns of a death no event reports.
 * @param {string | undefined} name
 */
async function holdLifeLock(name) {
  const locks = /** @type {any} */ (navigator).locks;
  if (!name || !locks) return;
  await new Promise((held) => { locks.request(name, () => { held(undefined); return new Promise(() => {}); }); });
}

/** @param {any} message @param {string} name @param {string} text @param {string} hint */
function refuse(message, name, text, hint) {
  const id = message && (typeof message.id === "number" || typeof message.id === "string") ? message.id : null;
  post({ id, type: "error", error: { name, message: text, hint, details: { method: String(message?.method ?? "") } } });
}

/** @param {any} message */
function deliver(message) {
  const why = refusal(message);
  if (why) {
    refuse(message, "ValidationError", why, REFUSAL_HINT);
    return;
  }
  try {
    app.receive(message);
  } catch (error) {
    refuse(message, "ProtocolError", `the worker could not read the message: ${error}`,
      "The page and the worker disagree on the message format; reload the page and report it.");
  }
}

self.onmessage = (event) => {
  const message = event.data;
  if (message && message.type === "init") {
    boot(message.options || {}).catch((error) => {
      post({ id: null, type: "fatal", error: {
        name: error.name && error.name !== "Error" ? error.name : "ModelLoadError",
        message: String(error.message || error),
        hint: error.hint || "The worker could not start: check the browser console, then reload the page.",
        details: {},
      } });
    });
  } else {
    const id = message?.id;
    if (message?.type === "call" && (typeof id === "number" || typeof id === "string")) inFlight.add(id);
    if (app) deliver(message);
    else early.push(message);
  }
};
