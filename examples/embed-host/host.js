// The host page's use of Hybrid Router: the snippet of docs/embedding.md.
import { ROUTER } from "./router-config.js";

const HELP = [
  "How do I reset my password?",
  "Where is my order? Tracking your parcel.",
  "Returning an item for a refund.",
  "Changing the delivery address of an order.",
];

const state = document.getElementById("router-state");
try {
  const { HybridRouter } = await import(new URL("hybrid-router.js", ROUTER).href);
  const router = await HybridRouter.create({
    baseUrl: ROUTER,                                          // boot.json, runtime and models come from there
    workerUrl: new URL("hybrid-router-worker.js", import.meta.url), // our same-origin worker file
  });
  window.router = router; // for the console (and the example's test)
  const index = await router.openIndex("shop-help");
  if (index.count < HELP.length) await index.add(HELP.map((_, i) => `help-${i}`), HELP);
  state.dataset.state = "ready";
  state.textContent = `Ready: the router runs in this browser (${router.info.threads} thread(s)).`;
  const go = document.getElementById("go");
  go.disabled = false;
  document.getElementById("ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = document.getElementById("question").value;
    const hits = await index.search(question, { topK: 3 });
    document.getElementById("answers").replaceChildren(...hits.map((h) =>
      Object.assign(document.createElement("li"), { textContent: `${h.text} (${h.score.toFixed(2)})` })));
    const { labels } = await router.classify(question, { labels: ["a complaint", "a question"] });
    document.getElementById("mood").textContent = `That reads like ${labels[0].label}.`;
  });
} catch (err) {
  state.dataset.state = "error";
  state.textContent = `${err.name}: ${err.message}\n${err.hint ?? ""}`;
}
