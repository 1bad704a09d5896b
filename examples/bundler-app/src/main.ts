// A page that bundles Hybrid Router from its npm package (see README.md: npm run build).
import { HybridRouter, ERROR_NAMES, HybridRouterError, type EmbedResult, type Route } from "hybrid-router";
import { ROUTER_BASE_URL } from "./config";

const status = document.getElementById("status") as HTMLElement;

function show(state: "boot" | "ready" | "error", text: string): void {
  status.dataset.state = state;
  status.textContent = text;
}

try {
  // the worker is the bundle's own dist/worker.js (next to this file); the runtime comes from ROUTER_BASE_URL
  const router = await HybridRouter.create({
    baseUrl: ROUTER_BASE_URL,
    onProgress: (e) => { if (e.stage === "boot") show("boot", `Starting: ${e.step}`); },
  });
  (window as unknown as { router: HybridRouter }).router = router;
  const result: EmbedResult = await router.embed(["A bundled router.", "A router in a bundle."]);
  const route: Route = result.route;
  const [a, b] = result.vectors;
  const cosine = a.reduce((sum, x, i) => sum + x * b[i], 0);
  show("ready", `Ready: ${result.model} (${result.dims} dims) on the ${route.target} side; the two sentences ` +
    `have cosine ${cosine.toFixed(3)}.`);
} catch (err) {
  const e = err as HybridRouterError;
  const known = (ERROR_NAMES as readonly string[]).includes(e.name);
  show("error", `${known ? e.name : "Error"}: ${e.message}\n${e.hint ?? ""}`);
}
