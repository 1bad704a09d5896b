// @ts-check
/**
 * The demo page: the app's state (boot, downloads, ready, offline, an update waiting), the chat, the
 * routing chart and the sentence-similarity matrix; the other panels are in their own modules.
 *
 * `config.json` (written by the static-site build, builder/site.py) says the site's version, its cloud
 * relay or local-only, and its service worker; serve.py has none, so the development server runs
 * without a service worker and with its own relay (and the page does not ask it for one).
 *
 * The chat comes first: its input takes keys while the router starts (the skip link lands in it), its
 * log follows the newest message and its route record, answers are rendered as sanitised Markdown
 * (web/markdown.js). The routing chart is redrawn after every call any panel made.
 */
import { HybridRouter } from "./hybrid-router.js";
import { setUpSearch, setUpTranscription } from "./speech-search.js";
import { setUpModels } from "./models-panel.js";
import { setUpTextTasks } from "./text-tasks.js";
import { $, callEnded, describe, escapeHtml, onCallEnded, routeLine } from "./page-parts.js";
import { watchConnection, watchServiceWorker } from "./app-state.js";
import { watchBuild } from "./build-status.js";
import { markdownRenderer, showMarkdown } from "./markdown.js";

/** @type {Map<string, HTMLLIElement>} */
const downloads = new Map();

/** @param {number} bytes */
const mb = (bytes) => (bytes / 1e6).toFixed(1) + " MB";

/** The app-state pill: boot | download | ready | error. @param {string} state @param {string} text */
function appState(state, text) {
  const pill = $("app-state");
  pill.dataset.state = state;
  pill.textContent = text;
}

/** @param {any} e */
function showProgress(e) {
  if (e.stage === "boot") {
    const bar = /** @type {HTMLProgressElement} */ ($("boot-bar"));
    bar.value = Math.round(e.progress * 100);
    bar.textContent = `${bar.value}%`;
    $("boot-status").textContent = e.step === "ready" ? "Ready." : `Loading ${e.step}${e.detail ? ` (${e.detail})` : ""}…`;
    if (e.step !== "ready") appState("boot", `Starting: ${e.step}`);
    return;
  }
  if (!e.file || e.status === "cache-event") return;
  const key = `${e.model || e.name}/${e.file}`;
  let row = downloads.get(key);
  if (!row) {
    row = document.createElement("li");
    const name = Object.assign(document.createElement("span"), { textContent: key });
    const bar = Object.assign(document.createElement("progress"), { max: 100, value: 0 });
    bar.setAttribute("aria-label", `download of ${key}`);
    row.append(name, bar, document.createElement("span"));
    $("downloads").append(row);
    downloads.set(key, row);
  }
  const pct = e.status === "done" ? 100 : Math.round(e.progress ?? 0);
  /** @type {HTMLProgressElement} */ (row.children[1]).value = pct;
  /** @type {HTMLElement} */ (row.children[2]).textContent = e.total ? `${mb(e.loaded ?? 0)} / ${mb(e.total)}` : `${pct}%`;
  row.dataset.loaded = String(e.status === "done" ? e.total ?? e.loaded ?? 0 : e.loaded ?? 0);
  row.dataset.total = String(e.total ?? 0);
  summarizeDownloads();
}

/** One bar for the files still coming, and the summary line of all of them. */
function summarizeDownloads() {
  const rows = [...downloads.values()];
  const busy = rows.filter((r) => /** @type {HTMLProgressElement} */ (r.children[1]).value < 100);
  const sum = (/** @type {HTMLLIElement[]} */ list, /** @type {"loaded" | "total"} */ key) =>
    list.reduce((n, r) => n + Number(r.dataset[key] || 0), 0);
  $("downloads-summary").textContent = `Model files: ${rows.length - busy.length} of ${rows.length} ready ` +
    `(${mb(sum(rows, "loaded"))})`;
  $("download-total").hidden = busy.length === 0;
  if (busy.length) {
    const total = sum(busy, "total");
    const bar = /** @type {HTMLProgressElement} */ ($("download-bar"));
    bar.value = total ? (100 * sum(busy, "loaded")) / total : 0;
    $("download-label").textContent = `Downloading ${busy.length} model file(s): ${mb(sum(busy, "loaded"))} of ${mb(total)}`;
    appState("download", `Downloading ${busy.length} model file(s)…`);
  } else if ($("app-state").dataset.state === "download") {
    appState("ready", "Ready");
  }
}

/** The site's config.json, or the development server's defaults (it has none: not asked, no 404). The
 * static site is the page whose Content-Security-Policy is a <meta> (builder/site.py writes it there, with
 * config.json next to the page); serve.py sends the policy as a header and leaves the marker empty. */
async function siteConfig() {
  const staticSite = document.querySelector('meta[http-equiv="Content-Security-Policy"]') !== null;
  if (staticSite) try {
    const response = await fetch("config.json", { cache: "no-cache" });
    if (response.ok) return await response.json();
  } catch { /* offline without a service worker: the defaults */ }
  return { version: null, relay: "/api/cloud", mode: "server", service_worker: null };
}

/**
 * What the page's header says about the cloud.
 * @param {any} config @param {any} cloud the router's info.cloud @param {string | null} [note] why none yet
 */
function cloudPill(config, cloud, note) {
  const pill = $("cloud-state");
  if (config.mode === "local-only") {
    pill.dataset.state = "local-only";
    pill.textContent = "local only: this site has no cloud relay";
  } else if (cloud) {
    pill.dataset.state = "relay";
    pill.textContent = `cloud: ${cloud.label || cloud.model} (through the relay)`;
  } else if (note) {
    pill.dataset.state = "boot";
    pill.textContent = `cloud: ${note}`;
  } else {
    pill.dataset.state = "unreachable";
    pill.textContent = config.mode === "cloud-relay" ? `cloud: the relay at ${config.relay} cannot be reached`
      : "cloud: none configured on the server";
  }
}

/** @param {number} v */
const shade = (v) => `hsl(${Math.round(220 - 220 * Math.max(0, v))} 70% ${Math.round(95 - 35 * Math.max(0, v))}%)`;

/** @param {string[]} texts @param {number[][]} vectors */
function drawMatrix(texts, vectors) {
  const dot = (/** @type {number[]} */ a, /** @type {number[]} */ b) => a.reduce((s, x, i) => s + x * b[i], 0);
  const table = document.createElement("table");
  table.className = "sim";
  table.setAttribute("aria-label", "cosine similarity of each pair of sentences");
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

const COLORS = { local: "#12805c", cloud: "#7a3ff2", fallbacks: "#f79009", errors: "#b42318" };

/** Bars of requests by route (local, cloud, fallbacks, errors), drawn as SVG. @param {any} stats */
function drawRouting(stats) {
  const keys = /** @type {const} */ (["local", "cloud", "fallbacks", "errors"]);
  const max = Math.max(1, ...keys.map((k) => stats[k]));
  const bars = keys.map((k, i) => {
    const w = Math.round((stats[k] / max) * 130);
    const y = 10 + i * 32;
    return `<text x="0" y="${y + 15}" font-size="11" fill="#667085">${k}</text>` +
      `<rect x="62" y="${y}" width="${Math.max(w, 1)}" height="22" rx="4" fill="${COLORS[k]}"></rect>` +
      `<text x="${68 + w}" y="${y + 15}" font-size="11">${stats[k]}</text>`;
  }).join("");
  $("routing-chart").innerHTML = bars;
  $("routing-chart").setAttribute("aria-label", `requests by route: ${keys.map((k) => `${stats[k]} ${k}`).join(", ")}`);
  const money = (/** @type {number} */ x) => "$" + x.toFixed(x < 0.01 ? 6 : 4);
  const share = stats.requests ? Math.round((100 * stats.local) / stats.requests) : 0;
  $("routing-stats").innerHTML = `<dt>requests</dt><dd>${stats.requests}</dd><dt>served on device</dt><dd>${share}%</dd>` +
    `<dt>cloud spend</dt><dd>${money(stats.cloud_cost_usd)}</dd><dt>saved</dt><dd>${money(stats.saved_usd)}</dd>`;
}

/** The requests of each task: how many, the share on the device, what the device saved. @param {any} stats */
function drawTasks(stats) {
  const table = /** @type {HTMLTableElement} */ ($("routing-tasks"));
  const rows = Object.entries(stats.by_task ?? {});
  table.replaceChildren();
  if (!rows.length) return;
  const head = table.createTHead().insertRow();
  for (const name of ["task", "requests", "on device", "", "saved"]) head.append(Object.assign(document.createElement("th"), { textContent: name }));
  const body = table.createTBody();
  for (const [task, row] of rows) {
    const r = /** @type {{ requests: number, local: number, saved_usd: number }} */ (row);
    const tr = body.insertRow();
    const share = r.requests ? r.local / r.requests : 0;
    tr.insertCell().textContent = task;
    tr.insertCell().textContent = String(r.requests);
    tr.insertCell().textContent = `${Math.round(100 * share)}%`;
    const bar = Object.assign(document.createElement("meter"), { min: 0, max: 1, value: share });
    bar.setAttribute("aria-label", `${task}: ${Math.round(100 * share)}% on the device`);
    tr.insertCell().append(bar);
    tr.insertCell().textContent = "$" + r.saved_usd.toFixed(r.saved_usd < 0.01 ? 6 : 4);
  }
}

/** A one-line explanation of a route record, as HTML (every value from the worker or the cloud escaped).
 * @param {any} r @param {any} usage */
function explain(r, usage) {
  const e = (/** @type {any} */ v) => escapeHtml(String(v ?? ""));
  const falls = (r.fallbacks || []).map((/** @type {any} */ f) =>
    `<span class="fallback">${e(f.target)} failed (${e(f.error_name)}: ${e(f.message)})</span>`).join(" → ");
  const cost = r.cost_usd ? `, ~$${Number(r.cost_usd).toFixed(6)}` : "";
  const data = r.sensitive ? ` · personal data: ${e(Object.entries(r.sensitive.found ?? {}).map(([k, n]) => `${n} ${k}`).join(", "))} (${e(r.sensitive.action)})` : "";
  const dtype = r.target === "local" && r.dtype ? ` (${e(r.dtype)})` : "";
  return `<span class="badge ${e(r.target)}">${e(r.target)}</span> ${e(r.model)}${dtype} — ${e(r.reason)}: ${e(r.rule)}` +
    `${falls ? ` · ${falls} → served by ${e(r.target)}` : ""}${data} · ${Number(usage?.tokens_in ?? r.tokens_in)} in / ` +
    `${Number(usage?.tokens_out ?? r.tokens_out)} out tokens, ${Math.round(r.ms)} ms${cost}`;
}

/** Where an answer ended, when it did not end by itself: "cut at the length limit (128 tokens)". Read from
 * the last chunk or its route (either may lack it: an older worker, a side that did not say).
 * @param {any} chunk @returns {string} */
function cutNote(chunk) {
  const reason = chunk?.finish_reason ?? chunk?.route?.finish_reason;
  if (reason !== "length") return "";
  const limit = Number(chunk?.route?.max_tokens);
  return `cut at the length limit${Number.isFinite(limit) && limit > 0 ? ` (${limit} tokens): raise Max tokens for more` : ""}`;
}

/** The routing panel: chart, totals and the per-task table, redrawn after every call a panel made (and
 * when the page comes back into view: another tab shares the ledger). @param {any} router */
function setUpRouting(router) {
  let busy = false, again = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const stats = await router.stats();
      drawRouting(stats);
      drawTasks(stats);
    } catch (err) {
      console.warn("the routing stats could not be read", err);
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  };
  onCallEnded(refresh);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  refresh();
}

/** Max tokens as the field says; empty: the router's default for whichever side answers. */
const maxTokensField = () => {
  const n = Number(/** @type {HTMLInputElement} */ ($("max-tokens")).value);
  return Number.isFinite(n) && n > 0 ? n : undefined;
};

/** Where the message being typed would go, and why: the router's dry run (no model runs, nothing is sent).
 * @param {any} d */
function preview(d) {
  const e = (/** @type {any} */ v) => escapeHtml(String(v ?? ""));
  const score = d.router ? ` · router score ${Number(d.router.score).toFixed(2)} (threshold ${Number(d.router.threshold).toFixed(2)})` : "";
  return `would go to <span class="badge ${e(d.target)}">${e(d.target)}</span> — ${e(d.rule)}${score}`;
}

/** @param {any} router */
function setUpChat(router) {
  const input = /** @type {HTMLInputElement} */ ($("chat-input"));
  const send = /** @type {HTMLButtonElement} */ ($("chat-send"));
  const stop = /** @type {HTMLButtonElement} */ ($("chat-stop"));
  const log = $("chat-log");
  /** @type {{ role: string, content: string }[]} */ const history = [];
  /** @type {AbortController | null} */ let running = null;
  input.disabled = send.disabled = false;
  /** the newest message and its whole route record in view: after every append, chunk, record or error */
  const follow = () => { log.scrollTop = log.scrollHeight; };
  const previewLine = $("chat-preview");
  /** @type {ReturnType<typeof setTimeout> | undefined} */ let typing;
  /** @type {AbortController | null} */ let asking = null;
  const ask = () => {
    clearTimeout(typing);
    typing = setTimeout(async () => {
      const text = input.value.trim();
      asking?.abort();
      if (!text) { previewLine.textContent = ""; return; }
      asking = new AbortController();
      try {
        const route = /** @type {HTMLSelectElement} */ ($("route-select")).value;
        const maxTokens = maxTokensField();
        const decision = await router.route({ messages: [...history, { role: "user", content: text }], route, maxTokens,
          signal: asking.signal });
        previewLine.innerHTML = preview(decision);
      } catch (err) {
        if (err.name !== "AbortError") previewLine.textContent = `would fail: ${err.name}: ${err.message}`;
      }
    }, 150);
  };
  input.addEventListener("input", ask);
  /** @type {HTMLSelectElement} */ ($("privacy-select")).onchange = async (e) => {
    await router.configure({ privacy: /** @type {HTMLSelectElement} */ (e.target).value });
    ask();
  };
  /** @type {HTMLSelectElement} */ ($("sensitive-select")).onchange = async (e) => {
    await router.configure({ sensitive: /** @type {HTMLSelectElement} */ (e.target).value });
    ask();
  };
  /** @type {HTMLSelectElement} */ ($("route-select")).onchange = ask;
  stop.onclick = () => running?.abort();
  /** @type {HTMLFormElement} */ ($("chat-form")).onsubmit = async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || running) return;
    input.value = "";
    previewLine.textContent = "";
    history.push({ role: "user", content: text });
    const mine = document.createElement("div");
    mine.className = "msg user"; mine.textContent = text;
    const answer = document.createElement("div");
    answer.className = "msg assistant";
    const body = document.createElement("div");
    body.className = "answer";
    const why = document.createElement("div");
    why.className = "why"; why.textContent = "routing…";
    answer.append(body, why);
    log.append(mine, answer);
    follow();
    running = new AbortController();
    send.disabled = true; stop.disabled = false;
    let said = "";
    /** @type {number | null} */ let frame = null;
    const render = await markdownRenderer();
    const draw = () => { frame = null; showMarkdown(body, said, render); follow(); };
    try {
      const route = /** @type {HTMLSelectElement} */ ($("route-select")).value;
      const maxTokens = maxTokensField();
      for await (const chunk of router.stream({ messages: history, maxTokens, route, signal: running.signal })) {
        if (chunk.delta) { said += chunk.delta; frame ??= requestAnimationFrame(draw); }
        if (chunk.done) {
          why.innerHTML = explain(chunk.route, chunk.usage);
          const cut = cutNote(chunk);
          if (cut) why.append(Object.assign(document.createElement("strong"), { className: "cut", textContent: ` · ${cut}` }));
        }
      }
      history.push({ role: "assistant", content: said });
    } catch (err) {
      why.innerHTML = "";
      why.textContent = `${err.name}: ${err.message}${err.hint ? ` — ${err.hint}` : ""}`;
      why.classList.add("error");
      history.pop();
    } finally {
      if (frame !== null) cancelAnimationFrame(frame);
      draw();
      running = null;
      send.disabled = false; stop.disabled = true;
      callEnded();
    }
  };
}

/**
 * Which chat model this device got and why (the router's info.chat; the policy's chatModel when one is
 * named), below the chat box; returns its name for the cloud label.
 * @param {any} info the router's info
 * @returns {string}
 */
function showChatModel(info) {
  let line = document.getElementById("chat-model");
  if (!line) {
    line = Object.assign(document.createElement("p"), { id: "chat-model", className: "muted" });
    $("chat-preview").after(line);
  }
  const named = info.policy?.chat_model;
  const chat = info.chat ?? { model: null, dtype: null, why: "the router did not say" };
  line.textContent = named
    ? `On-device chat model: ${named}, named by the page's address (?chatModel=).`
    : `On-device chat model: ${chat.model ? `${chat.model} (${chat.dtype})` : "none"}. Why: ${chat.why}.`;
  line.dataset.model = named || chat.model || "";
  return named || chat.model || "none";
}

async function main() {
  // the input takes keys while the router starts; Enter sends nothing until it is ready
  /** @type {HTMLFormElement} */ ($("chat-form")).onsubmit = (event) => {
    event.preventDefault();
    $("chat-preview").textContent = "The router is still starting: Send works once it is ready.";
  };
  markdownRenderer(); // loads while the router starts
  const config = await siteConfig();
  $("version").textContent = config.version ? `Version ${config.version}.` : "";
  const recheckConnection = watchConnection((online) => {
    const pill = $("net-state");
    pill.dataset.state = online ? "online" : "offline";
    pill.textContent = online ? "online" : "offline: local models keep working";
  });
  if (config.service_worker) {
    watchServiceWorker(config.service_worker, {
      onUpdate: (reload) => {
        $("update").hidden = false;
        /** @type {HTMLButtonElement} */ ($("update-reload")).onclick = reload;
      },
    }).catch((err) => console.warn("the service worker could not be registered", err));
  }
  let router;
  try {
    // ?chatModel=<id> names the on-device chat model (else the largest that fits this device);
    // ?deviceMemoryGb=<n> shows what a device with that much memory gets (docs/models.md)
    const query = new URLSearchParams(location.search);
    const chatModel = query.get("chatModel"), memory = Number(query.get("deviceMemoryGb"));
    router = await HybridRouter.create({ onProgress: showProgress, ...(chatModel ? { policy: { chatModel } } : {}),
      ...(memory > 0 ? { capabilities: { device_memory_gb: memory } } : {}) });
  } catch (err) {
    $("boot-status").textContent = describe(err);
    $("boot-status").className = "error";
    appState("error", `Could not start: ${err.name}`);
    return;
  }
  /** @type {any} */ (window).router = router;
  recheckConnection();
  const i = router.info;
  $("boot-info").textContent = `Python ${i.python} (Pyodide ${i.pyodide}), Transformers.js ${i.transformers}, ` +
    `${i.threads} thread(s)${i.crossOriginIsolated ? ", cross-origin isolated" : ", not cross-origin isolated"}; ` +
    `ready in ${(i.timings.ready / 1000).toFixed(1)} s.`;
  let cloudStarting = false; // the server's cloud tier is still being built: its build status is followed
  const showCloud = async () => {
    const info = await router.call("info", {});
    const c = info.cloud;
    cloudStarting = !c && Boolean(info.cloud_note);
    cloudPill(config, c, info.cloud_note);
    const local = showChatModel(info);
    $("cloud-label").textContent = c
      ? `Cloud tier: ${c.label || c.model}. Local model: ${local}.`
      : info.cloud_note
        ? `Cloud tier: ${info.cloud_note}; until then everything runs on this device. Local model: ${local}.`
        : "Cloud tier: none configured — everything runs on this device.";
  };
  try {
    await showCloud();
    setUpChat(router);
  } catch (err) {
    $("cloud-label").textContent = `Chat unavailable: ${err.name}: ${err.message}`;
  }
  setUpRouting(router);
  setUpTranscription(router);
  const tasks = setUpTextTasks(router);
  /** @type {import("./build-status.js").ServerModels | null} */ let latest = null;
  /** @type {{ show: (state: import("./build-status.js").ServerModels) => Promise<void> } | null} */ let models = null;
  // what the server has built, and is building: the text tasks' buttons and the model panel follow it
  const build = watchBuild((state) => {
    latest = state;
    tasks.show(state);
    models?.show(state).catch(() => {});
  }, { alsoWhile: () => cloudStarting });
  setUpModels(router).then((panel) => {
    models = panel;
    if (latest) panel.show(latest).catch(() => {});
  }).catch((err) => { $("caps-report").textContent = `Model manager unavailable: ${err.name}: ${err.message}`; });
  // the server built a model or brought the cloud tier up while this page was open
  router.addEventListener("change", () => {
    showCloud().catch(() => {});
    build.recheck();
  });
  setUpSearch(router).catch((err) => { $("search-count").textContent = `Search unavailable: ${err.name}: ${err.message}`; });
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
      $("route").innerHTML = `${routeLine(r)} · ${Number(result.dims)} dims`;
    } catch (err) {
      $("embed-error").textContent = describe(err);
    } finally {
      button.disabled = false;
      callEnded();
    }
  };
  // ready once the page can be used: its cloud state shown, its buttons set up
  appState("ready", "Ready");
}

main();
