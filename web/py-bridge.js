// @ts-check
/**
 * The JS functions Python calls in the worker, registered by worker.js as the Python module
 * `hybrid_router_js` (with `transformers`, the Transformers.js module worker.js imported).
 *
 * They live in this file rather than in Python strings given to `pyodide.code.run_js` because run_js is
 * `eval`, and the site's Content-Security-Policy has no 'unsafe-eval' (site_headers.py). For the same
 * reason the stores are imported here, statically, instead of by a dynamic `import()` from Python:
 * their URLs then follow this module's, which also holds when a host page's worker imports ours.
 */

export { openIndexStore } from "./index-store.js";
export { openResponseCacheStore } from "./response-cache-store.js";
export { openStateStore } from "./state-store.js";

/**
 * Set elements of a tensor's BigInt64Array: a Python int arrives as a Number, which such an array refuses.
 * @param {{ data: BigInt64Array }} tensor @param {number[]} at flat indexes @param {number} value
 */
export function setBigInts(tensor, at, value) {
  for (const i of at) tensor.data[i] = BigInt(value);
}

/** Resolvers of the pending ticks, in order; one channel serves them all (a channel per tick was a
 * measurable share of the worker's time and garbage during generation). */
const ticks = /** @type {Array<(value: undefined) => void>} */ ([]);
const tickChannel = new MessageChannel();
tickChannel.port1.onmessage = () => { ticks.shift()?.(undefined); };

/** One macrotask: lets the worker handle its messages (a cancel, the page's next call). */
const tick = () => new Promise((resolve) => {
  ticks.push(resolve);
  tickChannel.port2.postMessage(null);
});

/**
 * Hand this step's past keys and values to ONNX Runtime's proxy worker without a copy.
 *
 * The proxy *transfers* the buffers of the tensors it is given, so Transformers.js clones every input
 * first (validateInputs). The decoder's own past keys and values are the largest inputs (all layers, the
 * whole context) and are dead after the step, which returns the next ones: the copy made each decoding
 * step cost more than the rest of the worker's work, and its garbage long major GCs that held up every
 * other message (`./hr bench load`). An encoder's keys and values (Whisper's) are reused by every step,
 * so they are still copied, as is everything else.
 * @param {any} inputs the model's inputs for one forward pass
 */
function handOverPast(inputs) {
  const past = inputs?.past_key_values;
  if (!past || typeof past !== "object" || !ort.used?.proxy) return;
  for (const [name, tensor] of Object.entries(past)) {
    if (name.includes("encoder") || !tensor || typeof tensor !== "object" || !("ort_tensor" in tensor)) continue;
    Object.defineProperty(tensor, "clone", { value: () => tensor, configurable: true });
  }
}

/**
 * Make a pipeline's model give the event loop a turn before every forward pass (each decoding step):
 * ONNX Runtime's generation loop never yields otherwise, so neither streamed pieces nor a cancel would be
 * handled before the last token. Installed once per model.
 * @param {{ model?: any }} pipe
 */
export function yieldBetweenSteps(pipe) {
  const model = pipe.model;
  if (!model || model.__hybridRouterYields) return;
  const forward = model.forward.bind(model);
  model.forward = async (/** @type {any[]} */ ...args) => {
    await tick();
    handOverPast(args[0]);
    return forward(...args);
  };
  model.__hybridRouterYields = true;
}

/**
 * @typedef {{ url: string, size: number, sha256: string }} WasmPart
 * @typedef {{ mjs: string, wasm: string, wasmParts?: WasmPart[] }} OrtBuild
 *   `wasmParts`: a static site serves this build's wasm in parts (hosts limit the size of one file)
 */

/**
 * ONNX Runtime's builds (boot.json's `ort.builds`, absolute URLs), handed over by worker.js with
 * Transformers.js's ONNX Runtime wasm settings; `pinned`: a build named by the worker's init options
 * (`ortBuild`: benchmarks compare builds side by side); `used`: what `useOrtBuild` applied;
 * `joining`: the parts of its wasm being fetched and joined.
 * @type {{ wasm: any, builds: Record<string, OrtBuild>, pinned: string | null,
 *   used: { build: string, proxy: boolean, reason: string } | null, joining: Promise<void> | null }}
 */
const ort = { wasm: null, builds: {}, pinned: null, used: null, joining: null };

/** @param {Uint8Array} bytes */
const sha256Hex = async (bytes) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
  (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * The wasm served in `parts`, fetched (in parallel), each checked against its size and sha256, joined.
 * @param {WasmPart[]} parts @returns {Promise<Uint8Array>}
 */
async function joinWasm(parts) {
  const pieces = await Promise.all(parts.map(async (part, i) => {
    const response = await fetch(part.url);
    const bytes = response.ok ? new Uint8Array(await response.arrayBuffer()) : null;
    const digest = bytes && bytes.byteLength === part.size ? await sha256Hex(bytes) : null;
    if (digest !== part.sha256) {
      const what = !bytes ? `HTTP ${response.status}` : digest === null ? `${bytes.byteLength} of ${part.size} bytes`
        : `sha256 ${digest.slice(0, 12)}… instead of ${part.sha256.slice(0, 12)}…`;
      throw Object.assign(new Error(`ONNX Runtime's wasm part ${i + 1} of ${parts.length} (${part.url}): ${what}`), {
        name: "ModelLoadError",
        hint: "Deploy the site folder that python -m builder site wrote as it is (every part with its boot.json).",
      });
    }
    return bytes;
  }));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.size, 0));
  let at = 0;
  for (const piece of pieces) { out.set(/** @type {Uint8Array} */ (piece), at); at += piece?.byteLength ?? 0; }
  return out;
}

/**
 * Resolves once the ONNX Runtime build in use can load: where its wasm is served in parts, once they
 * are fetched, checked and joined into ONNX Runtime's `wasmBinary` (Python awaits this before a model
 * loads; a failed join is tried again by the next call).
 * @returns {Promise<void>}
 */
export function ortReady() {
  const parts = ort.used ? ort.builds[ort.used.build]?.wasmParts : undefined;
  if (!parts || !ort.wasm || ort.wasm.wasmBinary) return Promise.resolve();
  ort.joining ??= joinWasm(parts)
    .then((bytes) => { ort.wasm.wasmBinary = bytes; })
    .finally(() => { ort.joining = null; });
  return ort.joining;
}

/**
 * @param {any} wasm Transformers.js's `env.backends.onnx.wasm` (ONNX Runtime's own settings object)
 * @param {Record<string, OrtBuild>} builds @param {string | null} [pinned]
 */
export function offerOrtBuilds(wasm, builds, pinned = null) {
  Object.assign(ort, { wasm, builds, pinned: pinned || null, used: null });
}

/**
 * Load ONNX Runtime from `build` (Python's choice: hybrid_router.routing.devices.choose_ort_runtime) and,
 * with `proxy`, create and run every session in ONNX Runtime's proxy worker, so that a model's
 * computation never holds this worker's thread. ONNX Runtime reads these settings when it creates its
 * first session: call this before any model loads.
 * @param {string} build @param {boolean} proxy @param {string} reason
 * @returns {{ build: string, proxy: boolean, reason: string }}
 */
export function useOrtBuild(build, proxy, reason) {
  if (ort.used) return ort.used;
  const name = ort.pinned ?? build;
  const files = ort.builds[name];
  if (!ort.wasm || !files) {  // a boot.json without the builds: worker.js's default stays, in this worker
    ort.used = { build: "default", proxy: false, reason: `boot.json names no ONNX Runtime build ${name}` };
    return ort.used;
  }
  ort.wasm.wasmPaths = { mjs: files.mjs, wasm: files.wasm };
  if (proxy) {
    // ONNX Runtime proxies only where `document` exists: it takes the proxy to be for a page's main thread.
    // This worker's thread is as precious (it answers the page's messages), so it says it has one; nothing
    // here reads it (Transformers.js's image helpers would, and no task of ours decodes images).
    if (typeof (/** @type {any} */ (globalThis)).document === "undefined") {
      Object.defineProperty(globalThis, "document", { value: Object.freeze({}), configurable: true });
    }
    ort.wasm.proxy = true;
  }
  ort.used = { build: name, proxy, reason: ort.pinned ? `the worker's init options pin the ${name} build` : reason };
  ortReady().catch(() => { /* fetched ahead; the error is the caller's of ortReady before a model loads */ });
  return ort.used;
}

/** What `useOrtBuild` applied (null before). */
export const ortInUse = () => ort.used;
