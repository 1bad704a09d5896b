// @ts-check
// The chat dtypes benchmark's worker (bench/chat_dtypes.py): Transformers.js alone, set up as web/worker.js
// sets it up (same server URLs, offline, same ONNX Runtime build and thread count), loading one chat model
// in one dtype. Served from the page's own origin with the headers serve.py gives web/worker.js.

/** @type {any} */
let tjs = null;
/** @type {any} */
let tokenizer = null;
/** @type {any} */
let model = null;

/** @type {Record<string, (args: any) => Promise<any>>} */
const ops = {
  async setup({ origin, boot, threads }) {
    const abs = (/** @type {string} */ url) => new URL(url, origin).href;
    tjs = await import(abs(boot.transformers.url));
    tjs.env.allowRemoteModels = false;
    tjs.env.allowLocalModels = true;
    tjs.env.localModelPath = new URL(abs(boot.models_url)).pathname;
    const ort = boot.ort.builds?.plain || boot.ort;
    tjs.env.backends.onnx.wasm.wasmPaths = { mjs: abs(ort.mjs), wasm: abs(ort.wasm) };
    tjs.env.backends.onnx.wasm.numThreads = threads;
    tjs.env.useWasmCache = false; // a blob: copy of ONNX Runtime's .mjs would be refused by the CSP
    tjs.env.useBrowserCache = false; // every load fetches the files: the load time includes reading them
    return { crossOriginIsolated: self.crossOriginIsolated, ort: ort.mjs.split("/").at(-1) };
  },
  async load({ model: id, dtype }) {
    const t0 = performance.now();
    tokenizer ??= await tjs.AutoTokenizer.from_pretrained(id);
    model = await tjs.AutoModelForCausalLM.from_pretrained(id, { dtype, device: "wasm" });
    return { load_ms: performance.now() - t0 };
  },
  async generate({ prompt, maxTokens }) {
    const text = tokenizer.apply_chat_template([{ role: "user", content: prompt }], {
      add_generation_prompt: true,
      tokenize: false,
    });
    const inputs = tokenizer(text);
    const t0 = performance.now();
    const ids = await model.generate({ ...inputs, max_new_tokens: maxTokens, do_sample: false });
    const ms = performance.now() - t0;
    const n = inputs.input_ids.dims[1];
    const out = ids.slice(null, [n, null]);
    return { ms, tokens: out.dims[1], text: tokenizer.decode(out, { skip_special_tokens: true }) };
  },
  async dispose() {
    await model?.dispose();
    model = null;
    return {};
  },
};

self.onmessage = async ({ data }) => {
  try { self.postMessage({ id: data.id, value: await ops[data.op](data) }); }
  catch (e) { self.postMessage({ id: data.id, error: String((e && /** @type {any} */ (e).stack) || e) }); }
};
