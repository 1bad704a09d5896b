// @ts-check
/** The demo page: boot progress, model download progress, and a sentence-similarity matrix. */
import { HybridRouter } from "./hybrid-router.js";

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const downloads = new Map();

/** @param {number} bytes */
const mb = (bytes) => (bytes / 1e6).toFixed(1) + " MB";

/** @param {any} e */
function showProgress(e) {
  if (e.stage === "boot") {
    /** @type {HTMLElement} */ ($("boot-bar")).style.width = `${Math.round(e.progress * 100)}%`;
    $("boot-status").textContent = e.step === "ready" ? "Ready." : `Loading ${e.step}${e.detail ? ` (${e.detail})` : ""}…`;
    return;
  }
  if (!e.file) return;
  const key = `${e.model || e.name}/${e.file}`;
  let row = downloads.get(key);
  if (!row) {
    row = document.createElement("li");
    row.innerHTML = `<span></span><div class="bar"><div style="width:0%"></div></div><span></span>`;
    /** @type {HTMLElement} */ (row.children[0]).textContent = key;
    $("downloads").append(row);
    downloads.set(key, row);
  }
  const pct = e.status === "done" ? 100 : Math.round(e.progress ?? 0);
  /** @type {HTMLElement} */ (row.children[1].firstElementChild).style.width = `${pct}%`;
  /** @type {HTMLElement} */ (row.children[2]).textContent = e.total ? `${mb(e.loaded ?? 0)} / ${mb(e.total)}` : `${pct}%`;
}

/** @param {number} v */
const shade = (v) => `hsl(${Math.round(220 - 220 * Math.max(0, v))} 70% ${Math.round(95 - 35 * Math.max(0, v))}%)`;

/** @param {string[]} texts @param {number[][]} vectors */
function drawMatrix(texts, vectors) {
  const dot = (/** @type {number[]} */ a, /** @type {number[]} */ b) => a.reduce((s, x, i) => s + x * b[i], 0);
  const table = document.createElement("table");
  table.className = "sim";
  const head = table.insertRow();
  head.insertCell();
  texts.forEach((_, j) => { const th = document.createElement("th"); th.textContent = `#${j + 1}`; head.append(th); });
  texts.forEach((t, i) => {
    const row = table.insertRow();
    const th = document.createElement("th");
    th.textContent = `#${i + 1} ${t}`; th.title = t;
    row.append(th);
    vectors.forEach((_, j) => {
      const cell = row.insertCell();
      const s = dot(vectors[i], vectors[j]);
      cell.textContent = s.toFixed(3);
      cell.style.background = shade(s);
    });
  });
  $("matrix").replaceChildren(table);
}

async function main() {
  let router;
  try {
    router = await HybridRouter.create({ onProgress: showProgress });
  } catch (err) {
    $("boot-status").textContent = `${err.name}: ${err.message}\n${err.hint || ""}`;
    $("boot-status").className = "error";
    return;
  }
  const i = router.info;
  $("boot-info").textContent = `Python ${i.python} (Pyodide ${i.pyodide}), Transformers.js ${i.transformers}, ` +
    `${i.threads} thread(s)${i.crossOriginIsolated ? ", cross-origin isolated" : ""}; ready in ${(i.timings.ready / 1000).toFixed(1)} s.`;
  const button = /** @type {HTMLButtonElement} */ ($("embed"));
  button.disabled = false;
  button.onclick = async () => {
    const texts = /** @type {HTMLTextAreaElement} */ ($("sentences")).value.split("\n").map((s) => s.trim()).filter(Boolean);
    const dtype = /** @type {HTMLSelectElement} */ ($("dtype")).value || undefined;
    $("embed-error").textContent = "";
    button.disabled = true;
    try {
      const result = await router.embed(texts, { dtype });
      drawMatrix(texts, result.vectors);
      const r = result.route;
      $("route").innerHTML = `<span class="badge ${r.target}">${r.target}</span> ${result.model} (${result.dtype ?? ""}, ${result.dims} dims) ` +
        `in ${r.ms.toFixed(0)} ms — ${r.reason}: ${r.rule ?? ""}`;
    } catch (err) {
      $("embed-error").textContent = `${err.name}: ${err.message}\n${err.hint || ""}`;
    } finally {
      button.disabled = false;
    }
  };
}

main();
