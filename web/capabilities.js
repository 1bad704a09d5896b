// @ts-check
/**
 * The device's facts, probed once in the worker; what they mean is decided in Python
 * (py_src/hybrid_router/capabilities.py). Keys are snake_case, as on the wire.
 */

/** @template T @param {Promise<T>} promise @param {number} ms @param {T} fallback @returns {Promise<T>} */
const within = (promise, ms, fallback) =>
  Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(fallback), ms))]);

/** @returns {Promise<{ usage: number | null, quota: number | null, persisted: boolean | null }>} */
export async function estimateStorage() {
  const storage = /** @type {any} */ (navigator).storage;
  /** @type {{ usage: number | null, quota: number | null, persisted: boolean | null }} */
  const out = { usage: null, quota: null, persisted: null };
  try {
    const { usage, quota } = await storage.estimate();
    out.usage = usage ?? null;
    out.quota = quota ?? null;
  } catch { /* no StorageManager here */ }
  try {
    out.persisted = await storage.persisted();
  } catch { /* persisted() is not exposed everywhere */ }
  return out;
}

/** WebGPU: the adapter (null without one), whether it is a software fallback, features and limits. */
async function probeWebGPU() {
  const gpu = /** @type {any} */ (navigator).gpu;
  /** @type {Record<string, any>} */
  const out = { api: Boolean(gpu), adapter: false, fallback: false, features: [], info: {} };
  if (!gpu) return out;
  try {
    const adapter = await within(gpu.requestAdapter(), 3000, null);
    if (!adapter) return out;
    const info = adapter.info ?? {};
    out.adapter = true;
    out.fallback = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter);
    out.features = [...adapter.features];
    out.max_buffer_size = adapter.limits.maxBufferSize;
    out.max_storage_buffer_binding_size = adapter.limits.maxStorageBufferBindingSize;
    out.info = { vendor: info.vendor ?? "", architecture: info.architecture ?? "", device: info.device ?? "",
      description: info.description ?? "" };
  } catch (error) {
    out.error = String(error);
  }
  return out;
}

/**
 * What the ONNX Runtime builds and its proxy worker need: JS Promise Integration (the jspi build), a worker
 * that may start workers (ONNX Runtime's proxy worker), and the runtime's files on this worker's origin (a
 * worker made from another origin's file would have to be a blob:, which the Content-Security-Policy
 * refuses).
 * @param {string[]} runtimeUrls the absolute URLs of Transformers.js and ONNX Runtime's loaders
 */
function probeRuntime(runtimeUrls) {
  const wasm = /** @type {any} */ (globalThis.WebAssembly);
  return {
    jspi: typeof wasm?.Suspending === "function" && typeof wasm?.promising === "function",
    nested_workers: typeof Worker === "function",
    same_origin_runtime: runtimeUrls.length > 0
      && runtimeUrls.every((url) => new URL(url, self.location.href).origin === self.location.origin),
  };
}

/**
 * @param {{ runtimeUrls?: string[] }} [options]
 * @returns {Promise<Record<string, any>>} the facts Capabilities.from_facts reads
 */
export async function probeCapabilities({ runtimeUrls = [] } = {}) {
  const nav = /** @type {any} */ (navigator);
  const [webgpu, storage] = await Promise.all([probeWebGPU(), estimateStorage()]);
  return {
    webgpu,
    runtime: probeRuntime(runtimeUrls),
    device_memory_gb: typeof nav.deviceMemory === "number" ? nav.deviceMemory : null,
    hardware_concurrency: nav.hardwareConcurrency ?? null,
    cross_origin_isolated: Boolean(self.crossOriginIsolated),
    storage,
    online: typeof nav.onLine === "boolean" ? nav.onLine : null,
  };
}
