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
export { openStateStore } from "./state-store.js";

/**
 * Set elements of a tensor's BigInt64Array: a Python int arrives as a Number, which such an array refuses.
 * @param {{ data: BigInt64Array }} tensor @param {number[]} at flat indexes @param {number} value
 */
export function setBigInts(tensor, at, value) {
  for (const i of at) tensor.data[i] = BigInt(value);
}

/** One macrotask: lets the worker handle its messages (a cancel, the page's next call). */
const tick = () => new Promise((resolve) => {
  const channel = new MessageChannel();
  channel.port1.onmessage = () => { channel.port1.close(); resolve(undefined); };
  channel.port2.postMessage(null);
});

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
  model.forward = async (/** @type {any[]} */ ...args) => { await tick(); return forward(...args); };
  model.__hybridRouterYields = true;
}
