// @ts-check
// The start-up benchmark's baseline (bench/startup.py): bare Pyodide + numpy + Transformers.js in a module
// worker, from the same server URLs as web/worker.js (boot.json), with nothing of ours: loadPyodide,
// loadPackage("numpy") with its integrity checked, `import numpy`, and the Transformers.js module imported
// in parallel (as our worker imports it while Python boots). The benchmark serves this file from the page's
// own origin with the headers serve.py gives web/worker.js (its Content-Security-Policy included).

self.onmessage = async () => {
  try {
    const t0 = performance.now();
    const boot = await (await fetch("/boot.json", { cache: "no-cache" })).json();
    const indexURL = new URL(boot.pyodide.index_url, self.location.origin).href;
    const tjs = import(new URL(boot.transformers.url, self.location.origin).href);
    const { loadPyodide } = await import(indexURL + "pyodide.mjs");
    const pyodide = await loadPyodide({ indexURL });
    const pyodideMs = performance.now() - t0;
    await pyodide.loadPackage(["numpy"], { messageCallback: () => {}, checkIntegrity: true });
    pyodide.runPython("import numpy");
    const numpyMs = performance.now() - t0;
    await tjs;
    self.postMessage({ timings: { worker: Math.round(t0), pyodide: Math.round(pyodideMs),
      numpy: Math.round(numpyMs), ready: Math.round(performance.now() - t0) } });
  } catch (error) {
    self.postMessage({ error: String(/** @type {any} */ (error)?.stack ?? error) });
  }
};
