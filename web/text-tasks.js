// @ts-check
/**
 * The page's text-task panel: classify (the sentiment model, or zero-shot over your labels), named
 * entities (highlighted in the text) and reranking passages for a query — each on the device, each
 * answer with its route record. Wired by app.js once the router is ready.
 */

import { $, describe, escapeHtml, routeLine, scoreItem as scoreRow } from "./page-parts.js";

/**
 * `text` with each entity wrapped in a <mark> that names its label (offsets are into `text`).
 * @param {string} text @param {{ text: string, label: string, start: number, end: number, score: number }[]} entities
 */
export function markEntities(text, entities) {
  let html = "", at = 0;
  for (const e of [...entities].sort((a, b) => a.start - b.start)) {
    if (e.start < at) continue; // overlapping spans: keep the first
    html += escapeHtml(text.slice(at, e.start)) +
      `<mark class="ent ${escapeHtml(e.label)}" title="${escapeHtml(e.label)} ${e.score.toFixed(2)}">` +
      `${escapeHtml(text.slice(e.start, e.end))}<small>${escapeHtml(e.label)}</small></mark>`;
    at = e.end;
  }
  return html + escapeHtml(text.slice(at));
}

/**
 * One task's button: disables it while running, shows errors in `<prefix>-error`, the route in `<prefix>-route`.
 * @param {string} prefix @param {() => Promise<any>} body resolves to the result (with its route)
 */
function wire(prefix, body) {
  const button = /** @type {HTMLButtonElement} */ ($(`${prefix}-go`));
  button.onclick = async () => {
    $(`${prefix}-error`).textContent = "";
    $(`${prefix}-route`).textContent = "";
    button.disabled = true;
    try {
      const result = await body();
      $(`${prefix}-route`).innerHTML = routeLine(result.route);
    } catch (err) {
      $(`${prefix}-error`).textContent = describe(err);
    } finally {
      button.disabled = false;
    }
  };
  button.disabled = false;
}

/** @param {string} id */
const value = (id) => /** @type {HTMLInputElement | HTMLTextAreaElement} */ ($(id)).value;

/** @param {import("./hybrid-router.js").HybridRouter} router */
export function setUpTextTasks(router) {
  wire("classify", async () => {
    const labels = value("classify-labels").split(",").map((s) => s.trim()).filter(Boolean);
    const result = await router.classify(value("classify-text"), labels.length ? { labels } : {});
    $("classify-results").replaceChildren(...result.labels.map((/** @type {any} */ l) => scoreRow(l.score, l.label)));
    return result;
  });
  wire("ner", async () => {
    const text = value("ner-text");
    const result = await router.ner(text);
    $("ner-output").innerHTML = result.entities.length ? markEntities(text, result.entities) : "(no entities found)";
    return result;
  });
  wire("rerank", async () => {
    const documents = value("rerank-docs").split("\n").map((s) => s.trim()).filter(Boolean);
    const result = await router.rerank(value("rerank-query"), documents, { topK: documents.length });
    $("rerank-results").replaceChildren(...result.results.map((/** @type {any} */ r) => scoreRow(r.score, r.document)));
    return result;
  });
}
