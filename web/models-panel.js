// @ts-check
/**
 * The page's model manager and capability report: every model of the manifest with what is cached
 * (dtypes, size, last use), download with one overall progress bar (cancellable, resumable), delete,
 * the recommendation for this device, the cache's events; and what this device can take. Models the
 * server has not built yet are listed too, with their build state ("training, ~9 minutes left",
 * "queued", "needs the training data: …"), followed while the server's background build runs.
 */

import { describeJob } from "./build-status.js";
import { $ } from "./page-parts.js";
/** @param {number | null | undefined} bytes */
const mb = (bytes) => (bytes == null ? "?" : `${(bytes / 1e6).toFixed(1)} MB`);
/** @param {string} tag @param {Record<string, any>} [props] @param {(Node | string)[]} [children] */
function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** @param {any} caps */
function renderCapabilities(caps) {
  const gpu = caps.webgpu;
  const gpuText = gpu.real_gpu ? `real GPU${gpu.info.vendor ? ` (${gpu.info.vendor})` : ""}`
    : gpu.adapter ? "software fallback adapter only (counts as no GPU)" : gpu.api ? "no adapter" : "not available";
  const rows = [
    ["WebGPU", `${gpuText}${gpu.adapter ? `; shader-f16 ${gpu.shader_f16 ? "yes" : "no"}; max buffer ${mb(gpu.max_buffer_size)}` : ""}`],
    ["device memory", caps.device_memory_gb == null ? "unknown" : `${caps.device_memory_gb} GB (as the browser reports it)`],
    ["CPU cores", String(caps.hardware_concurrency ?? "unknown")],
    ["cross-origin isolated", caps.cross_origin_isolated ? "yes (multi-threaded WASM)" : "no (one WASM thread)"],
    ["storage", `${mb(caps.storage.usage)} used of ${mb(caps.storage.quota)}; persistent: ${caps.storage.persisted ? "yes" : "no"}`],
    ["online", caps.online ? "yes" : "no (local models keep working)"],
    ["model cache", caps.cache ? "IndexedDB, every file checked against the manifest's sha256" : "none (models run from memory)"],
    ...Object.entries(caps.choices).map(([id, c]) => [id, `${c.dtype} on ${c.device}: ${/** @type {any} */ (c).why}`]),
    ...caps.device_fallbacks.map((/** @type {any} */ f) => [`${f.model}: WebGPU failed`, `${f.error_name}: ${f.message}`]),
  ];
  $("caps-report").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { textContent: k }), el("dd", { textContent: v })]));
}

/**
 * Fill the panel; `show({ manifest, build })` (from build-status.js's watchBuild) updates it with the
 * served manifest and the build's jobs.
 * @param {any} router
 * @returns {Promise<{ show: (state: import("./build-status.js").ServerModels) => Promise<void> }>}
 */
export async function setUpModels(router) {
  let info = await router.call("info", {});
  /** @type {Map<string, AbortController>} */ const running = new Map();

  /** @type {import("./build-status.js").BuildStatus} */ let build = { pending: false, version: 0, jobs: [] };
  /** @type {{ models?: any[], not_built?: any[] }} */ let served = {};

  async function refresh() {
    const [caps, cached, events] = await Promise.all([router.capabilities(), router.cachedModels(),
      router.cacheEvents()]);
    const notBuilt = served.not_built ?? [];
    renderCapabilities(caps);
    const byId = new Map(cached.map((/** @type {any} */ m) => [m.id, m]));
    const recs = new Map();
    for (const r of await router.recommendModels()) if (!recs.has(r.model)) recs.set(r.model, r);
    const rows = info.models.map((/** @type {any} */ m) => modelRow(m, byId.get(m.id), recs.get(m.id)));
    for (const m of cached) if (!m.known) rows.push(modelRow({ id: m.id, tasks: [], dtypes: [], default_dtype: "" }, m, null));
    const known = new Set(info.models.map((/** @type {any} */ m) => m.id));
    for (const m of notBuilt) if (!known.has(m.id)) rows.push(pendingRow(m));
    // built meanwhile on the server, not yet known to this page's router
    for (const job of build.jobs) {
      if (job.kind === "model" && job.state === "done" && !known.has(job.id) && served.models?.some((/** @type {any} */ m) => m.id === job.id)) {
        rows.push(pendingRow({ id: job.id, tasks: [], state: "done", message: "built on the server: reload the page to use it" }));
      }
    }
    $("models-table").replaceChildren(...rows);
    renderBuild();
    $("cache-events").replaceChildren(...events.slice(-8).reverse().map((/** @type {any} */ e) =>
      el("li", { className: e.kind === "integrity" || e.kind === "storage" ? "error" : "" },
        [`${new Date(e.at * 1000).toLocaleTimeString()} ${e.kind}: ${e.message}`])));
  }

  /** A model the server has not built (yet): its build state instead of the download controls. @param {any} m */
  function pendingRow(m) {
    const job = build.jobs.find((j) => j.id === m.id);  // its detail ("epoch 1/1, step 340/1894")
    const text = m.state === "done" ? (m.message ?? "built") : describeJob(m);
    const bar = el("progress", { max: 100, value: Math.round((m.progress ?? 0) * 100), ariaLabel: `build of ${m.id}` });
    const row = el("tr", { className: "not-built" }, [
      el("th", { scope: "row" }, [el("strong", { textContent: m.id }), el("div", { className: "muted", textContent: (m.tasks ?? []).join(", ") })]),
      el("td", { textContent: "not on the server yet" }),
      el("td", { className: m.state === "failed" ? "error" : "" }, [el("span", { className: "build-state", textContent: text }),
        ...(m.state === "running" ? [bar] : [])]),
      el("td", { className: "muted", textContent: (m.state === "running" && job?.detail) || "" }),
    ]);
    Object.assign(row.dataset, { model: m.id, state: m.state });
    return row;
  }

  /** The cloud tier's job and a one-line summary of the background build. */
  function renderBuild() {
    const items = build.jobs.filter((j) => j.kind === "cloud" && j.state !== "skipped")
      .map((j) => {
        const item = el("li", { className: j.state === "failed" ? "error" : "" }, [`${j.title}: ${describeJob(j)}`]);
        Object.assign(item.dataset, { job: j.id, state: j.state });
        return item;
      });
    const left = build.jobs.filter((j) => j.state === "queued" || j.state === "running").length;
    if (left) items.unshift(el("li", { textContent: `The server is building ${left} more in the background, one at a time.` }));
    $("build-jobs").replaceChildren(...items);
  }

  /** @param {any} m @param {any} cached @param {any} rec */
  function modelRow(m, cached, rec) {
    const select = el("select", { ariaLabel: `precision of ${m.id}` }, m.dtypes.map((/** @type {string} */ d) =>
      el("option", { value: d, textContent: d, selected: d === (cached?.dtypes?.[0] ?? rec?.dtype ?? m.default_dtype) })));
    const bar = /** @type {HTMLProgressElement} */ (el("progress", { max: 100, value: 0 }));
    bar.setAttribute("aria-label", `download of ${m.id}`);
    const status = el("span", { className: "muted" });
    // each button names its model: three rows of "Download" read the same to a screen reader otherwise
    const download = el("button", { textContent: "Download", ariaLabel: `Download ${m.id}` });
    const cancel = el("button", { textContent: "Cancel", disabled: true, ariaLabel: `Cancel the download of ${m.id}` });
    const remove = el("button", { textContent: "Delete", disabled: !cached, ariaLabel: `Delete ${m.id} from this device` });
    download.onclick = async () => {
      const controller = new AbortController();
      running.set(m.id, controller);
      download.disabled = true; cancel.disabled = false;
      try {
        await router.preload([{ id: m.id, dtype: /** @type {HTMLSelectElement} */ (select).value }], {
          signal: controller.signal,
          onProgress: (/** @type {any} */ e) => {
            if (e.status !== "progress_total") return;
            bar.value = e.progress;
            status.textContent = `${mb(e.loaded)} / ${mb(e.total)} (${e.progress.toFixed(1)}%)`;
          },
        });
      } catch (err) {
        status.textContent = err.name === "AbortError" ? "cancelled: the next download resumes where it stopped"
          : `${err.name}: ${err.message} — ${err.hint ?? ""}`;
      } finally {
        running.delete(m.id);
        await refresh();
      }
    };
    cancel.onclick = () => running.get(m.id)?.abort();
    remove.onclick = async () => { await router.deleteModel(m.id); await refresh(); };
    const have = cached
      ? `${cached.dtypes.join(", ") || "partial"} · ${mb(cached.bytes)} · ${cached.files} files` +
        `${cached.partial_files ? ` (+${cached.partial_files} partial)` : ""} · used ${new Date(cached.last_used * 1000).toLocaleString()}`
      : "not cached";
    const advice = rec ? `${rec.usable ? "fits this device" : "does not fit"}: ${rec.reasons.join("; ")}` : "not in the manifest";
    return el("tr", {}, [
      el("th", { scope: "row" }, [el("strong", { textContent: m.id }), el("div", { className: "muted", textContent: m.tasks.join(", ") })]),
      el("td", { textContent: have }),
      el("td", {}, [select, download, cancel, remove, bar, status]),
      el("td", { className: "muted", textContent: advice }),
    ]);
  }

  $("budget-form").onsubmit = async (event) => {
    event.preventDefault();
    const value = /** @type {HTMLInputElement} */ ($("budget-mb")).value;
    const result = await router.configureCache({ budgetBytes: value ? Number(value) * 1e6 : null });
    $("budget-status").textContent = result.budget_bytes == null ? "no budget" :
      `budget ${mb(result.budget_bytes)}${result.evicted.length ? `; evicted ${result.evicted.join(", ")}` : ""}`;
    await refresh();
  };
  await refresh();
  return {
    show: async (state) => {
      build = state.build;
      served = state.manifest;
      info = await router.call("info", {}); // a model built meanwhile: the router knows it now
      await refresh();
    },
  };
}
