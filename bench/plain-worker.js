// @ts-check
// The benchmark's plain worker (bench/overhead.py): Transformers.js alone, set up as web/worker.js sets
// it up (same server URLs, offline, same thread count), with no router around it. The benchmark serves
// this file from the page's own origin with the headers serve.py gives web/worker.js (its
// Content-Security-Policy included), as the product's worker is served; a blob: worker would be refused.

/** @type {any} */
let tjs = null;
/** @type {Record<string, Promise<any>>} */
const pipes = {};
/** @param {string} task @param {string} model */
const pipe = (task, model) => (pipes[model] ??= tjs.pipeline(task, model, { dtype: "fp32", device: "wasm" }));

/** @type {Record<string, (args: any) => Promise<any>>} */
const ops = {
  async setup({ origin, boot, threads, ortBuild }) {
    const abs = (/** @type {string} */ url) => new URL(url, origin).href;
    tjs = await import(abs(boot.transformers.url));
    tjs.env.allowRemoteModels = false;
    tjs.env.allowLocalModels = true;
    tjs.env.localModelPath = new URL(abs(boot.models_url)).pathname;
    // the ONNX Runtime build our worker runs (boot.json's default where it names none)
    const ort = (ortBuild && boot.ort.builds?.[ortBuild]) || boot.ort;
    tjs.env.backends.onnx.wasm.wasmPaths = { mjs: abs(ort.mjs), wasm: abs(ort.wasm) };
    tjs.env.backends.onnx.wasm.numThreads = threads;
    tjs.env.useWasmCache = false; // it would import a blob: copy of ONNX Runtime's .mjs: refused by the CSP
    tjs.env.useBrowserCache = false;
    return {
      crossOriginIsolated: self.crossOriginIsolated,
      threads: tjs.env.backends.onnx.wasm.numThreads,
      ort: ort.mjs.split("/").at(-1),
    };
  },
  async embed({ model, texts }) {
    const out = await (await pipe("feature-extraction", model))(texts, { pooling: "mean", normalize: true });
    try { return { vectors: out.tolist() }; } finally { out.dispose(); }
  },
  async generate({ model, prompt, maxTokens }) {
    const out = await (await pipe("text-generation", model))([{ role: "user", content: prompt }],
      { max_new_tokens: maxTokens, do_sample: false, return_full_text: false });
    return { text: out[0].generated_text.at(-1).content };
  },
};

self.onmessage = async ({ data }) => {
  try { self.postMessage({ id: data.id, value: await ops[data.op](data) }); }
  catch (e) { self.postMessage({ id: data.id, error: String((e && /** @type {any} */ (e).stack) || e) }); }
};
