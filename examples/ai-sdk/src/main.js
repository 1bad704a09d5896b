// A page that calls Hybrid Router through the Vercel AI SDK (see README.md): streamText answers the form,
// from this device or the cloud as the route says; the route record comes back in providerMetadata.
import "./zod-jitless.js"; // first: see the file
import { embed, embedMany, generateObject, generateText, jsonSchema, streamText } from "ai";
import { HybridRouter } from "hybrid-router";
import { createHybridRouter } from "hybrid-router/ai-sdk";
import { ROUTER_BASE_URL } from "./config.js";

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const status = $("status"), answer = $("answer"), why = $("why");
const stop = /** @type {HTMLButtonElement} */ ($("stop"));

/** @param {"boot" | "ready" | "error"} state @param {string} text */
function show(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

/** One line of the route record: where it ran, the model, and why. @param {any} route */
const describe = (route) => route ? `${route.target} (${route.model}): ${route.reason}` : "";

try {
  // the worker is the bundle's own dist/worker.js; the runtime and the relay are at ROUTER_BASE_URL
  const router = await HybridRouter.create({ baseUrl: ROUTER_BASE_URL,
    onProgress: (e) => { if (e.stage === "boot") show("boot", `Starting: ${e.step}`); } });
  const hr = createHybridRouter({ router });
  // for the browser's console (and the example's test): the router, the provider and the AI SDK's calls
  Object.assign(window, { demo: { router, hr, embed, embedMany, generateObject, generateText, jsonSchema, streamText } });

  /** @type {AbortController | null} */ let running = null;
  stop.addEventListener("click", () => running?.abort());
  $("ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(/** @type {HTMLFormElement} */ (event.target));
    running = new AbortController();
    stop.disabled = false;
    answer.textContent = "";
    why.textContent = "";
    try {
      const result = streamText({ model: hr(/** @type {any} */ (form.get("route"))), prompt: String(form.get("question")),
        abortSignal: running.signal });
      for await (const delta of result.textStream) answer.textContent += delta;
      const metadata = await result.providerMetadata;
      why.textContent = describe(metadata?.hybridRouter?.route);
    } catch (err) {
      why.textContent = `${/** @type {Error} */ (err).name}: ${/** @type {Error} */ (err).message}`;
    } finally {
      stop.disabled = true;
      running = null;
    }
  });
  show("ready", "Ready: ask a question; the answer says where it ran.");
} catch (err) {
  const e = /** @type {Error & { hint?: string }} */ (err);
  show("error", `${e.name}: ${e.message}\n${e.hint ?? ""}`);
}
