// @ts-check
/**
 * The page's text-task panel: classify (the sentiment model, or zero-shot over your labels), named
 * entities (highlighted in the text) and reranking passages for a query — each on the device, each
 * answer with its route record. Wired by app.js once the router is ready.
 *
 * A task whose model the server has not built yet (queued, training: the served manifest's `not_built`)
 * says so under its button, with the progress and what answers meanwhile; a button whose task cannot
 * answer at all until then (entities; sentiment without labels) is disabled.
 */

import { describeJob } from "./build-status.js";
import { $, callEnded, describe, escapeHtml, routeLine, scoreItem as scoreRow } from "./page-parts.js";

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

/** @type {Record<string, boolean>} the buttons that cannot answer now (their model is not built) */
const unavailable = {};

/**
 * One task's button: disables it while running, shows errors in `<prefix>-error`, the route in `<prefix>-route`.
 * @param {string} prefix @param {() => Promise<any>} body resolves to the result (with its route)
 */
function wire(prefix, body) {
  const button = /** @type {HTMLButtonElement} */ ($(`${prefix}-go`));
  button.onclick = async () => {
    button.dataset.running = "yes";
    $(`${prefix}-error`).textContent = "";
    $(`${prefix}-route`).textContent = "";
    button.disabled = true;
    try {
      const result = await body();
      $(`${prefix}-route`).innerHTML = routeLine(result.route);
    } catch (err) {
      $(`${prefix}-error`).textContent = describe(err);
    } finally {
      button.dataset.running = "";
      button.disabled = Boolean(unavailable[prefix]);
      callEnded();
    }
  };
  button.disabled = Boolean(unavailable[prefix]);
}

/**
 * Whether the served manifest has a model for `task`; if not, the one on its way (still being built
 * first), or null where none is. `notAlso`: a model that also does that task does not count.
 * @param {{ models?: any[], not_built?: any[] }} manifest @param {string} task @param {string} [notAlso]
 * @returns {{ ready: boolean, coming: any }}
 */
export function taskModel(manifest, task, notAlso = "") {
  const does = (/** @type {any} */ m) => m.tasks?.includes(task) && !(notAlso && m.tasks.includes(notAlso));
  if (!manifest.models || manifest.models.some(does)) return { ready: true, coming: null };
  const coming = (manifest.not_built ?? []).filter(does)
    .sort((a, b) => Number(!["running", "queued"].includes(a.state)) - Number(!["running", "queued"].includes(b.state)))[0];
  return { ready: false, coming: coming ?? null };
}

/** "The sentiment model sst2-x is still being built on the server: training (33%), ~7 minutes left"
 * @param {string} what @param {any} coming a `not_built` entry, or null */
function pendingText(what, coming) {
  if (!coming) return `There is no ${what} here`;
  if (["running", "queued"].includes(coming.state)) return `The ${what} ${coming.id} is still being built on the server: ${describeJob(coming)}`;
  if (coming.state === "skipped") return `The ${what} ${coming.id} is not built on this server`;
  return `The ${what} ${coming.id} is not built: ${describeJob(coming)}`;
}

/** @type {{ models?: any[], not_built?: any[] }} the last served manifest (none yet: every task answers) */
let served = {};

/** The notes and buttons of the tasks whose model is not built (yet). */
function showAvailability() {
  const labels = value("classify-labels").trim() !== "";
  // an NLI model lists text-classification too, but never answers a classification without labels
  const sentiment = taskModel(served, "text-classification", "zero-shot-classification");
  const entities = taskModel(served, "token-classification");
  const ranker = taskModel(served, "text-ranking");
  const notes = {
    classify: labels
      ? (sentiment.ready ? "" : "Your labels are scored by embedding similarity: no task model needed.")
      : (sentiment.ready ? "" : `${pendingText("sentiment model", sentiment.coming)} — type your own labels to classify now (scored by embedding similarity).`),
    ner: entities.ready ? "" : `${pendingText("entity model", entities.coming)} — entities can be found once it is built.`,
    rerank: ranker.ready ? "" : `${pendingText("cross-encoder", ranker.coming)} — passages are ranked by embedding similarity meanwhile.`,
  };
  unavailable.classify = !labels && !sentiment.ready;
  unavailable.ner = !entities.ready;
  for (const [prefix, note] of Object.entries(notes)) {
    const button = /** @type {HTMLButtonElement} */ ($(`${prefix}-go`));
    $(`${prefix}-state`).textContent = note;
    if (button.dataset.running !== "yes") button.disabled = Boolean(unavailable[prefix]);
  }
}

/** @param {string} id */
const value = (id) => /** @type {HTMLInputElement | HTMLTextAreaElement} */ ($(id)).value;

/**
 * @param {import("./hybrid-router.js").HybridRouter} router
 * @returns {{ show: (state: import("./build-status.js").ServerModels) => void }} what the server has built
 */
export function setUpTextTasks(router) {
  $("classify-labels").addEventListener("input", showAvailability);
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
  return { show: (state) => { served = state.manifest; showAvailability(); } };
}
