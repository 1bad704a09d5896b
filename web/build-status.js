// @ts-check
/**
 * The server's models and background build as the page shows them: the served `models_manifest.json`
 * (its `not_built` models with their state) and `GET /api/build/status` (see serve.py), polled while
 * jobs are pending, and one sentence per job ("training, ~9 minutes left", "queued",
 * "needs the training data: …").
 */

/**
 * @typedef {{ id: string, kind: "model" | "cloud", title: string,
 *   state: "queued" | "running" | "done" | "failed" | "blocked" | "skipped",
 *   step: string | null, detail: string | null, progress: number | null, eta_s: number | null,
 *   message: string | null, hint: string | null }} BuildJob
 * @typedef {{ pending: boolean, version: number, jobs: BuildJob[] }} BuildStatus
 */

/** `~9 minutes`, `~40 seconds`, `~1 h 20 min`. @param {number} seconds */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `~${Math.max(5, 5 * Math.round(s / 5))} seconds`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `~${minutes} minute${minutes === 1 ? "" : "s"}`;
  return `~${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/**
 * What a job (or a `not_built` entry of the served manifest, same fields) is doing, as a person says it.
 * @param {{ state: string, step?: string | null, detail?: string | null, progress?: number | null,
 *   eta_s?: number | null, message?: string | null, hint?: string | null }} job
 */
export function describeJob(job) {
  const left = job.eta_s == null ? "" : `, ${duration(job.eta_s)} left`;
  switch (job.state) {
    case "running": {
      const pct = job.progress == null ? "" : ` (${Math.round(job.progress * 100)}%)`;
      return `${job.step ?? "starting"}${pct}${left}`;
    }
    case "queued":
      return `queued${job.eta_s == null ? "" : `, ready in ${duration(job.eta_s)}`}`;
    case "blocked":
      return job.step === "downloading data"
        ? `needs the training data: ${job.hint ?? job.message ?? ""}`
        : `waiting: ${job.message ?? ""}${job.hint ? ` — ${job.hint}` : ""}`;
    case "failed":
      return `failed: ${job.message ?? ""}${job.hint ? ` — ${job.hint}` : ""}`;
    case "skipped":
      return `not built here${job.message ? `: ${job.message}` : ""}${job.hint ? ` — ${job.hint}` : ""}`;
    case "done":
      return "built";
    default:
      return job.state;
  }
}

/** The states of a job that change by themselves (as py_src/hybrid_router/build_watch.py's PENDING_STATES). */
export const PENDING = Object.freeze(["queued", "running"]);

/**
 * The served models manifest (`models_manifest.json`, next to the page on both the development server
 * and the static site): its `models` and, for a server still building, `not_built` with each one's state.
 * @returns {Promise<{ models?: any[], not_built?: any[] }>}
 */
export async function fetchServedManifest() {
  const resp = await fetch("models_manifest.json", { cache: "no-store" });
  return resp.ok ? resp.json() : {};
}

/** @param {string} url @returns {Promise<BuildStatus>} */
export async function fetchBuildStatus(url = "/api/build/status") {
  const resp = await fetch(url, { cache: "no-store" });
  if (!resp.ok) return { pending: false, version: 0, jobs: [] };
  return resp.json();
}

/**
 * What the page knows of the server's models: the served manifest, and the background build's status
 * (`GET /api/build/status`, which only the development server has). The status is asked only while the
 * manifest lists a model still queued or running (or `alsoWhile()` says so: the cloud tier starting), so
 * a static site, or a server with everything built, gets no request it cannot answer.
 * @typedef {{ manifest: { models?: any[], not_built?: any[] }, build: BuildStatus }} ServerModels
 */

/**
 * Call `onChange({ manifest, build })` now and whenever either changes; poll every `intervalMs` while
 * something is pending, then stop. `recheck()` asks again at once (a model built: the worker said so).
 * @param {(state: ServerModels) => void} onChange
 * @param {{ intervalMs?: number, alsoWhile?: () => boolean }} [options]
 * @returns {{ stop: () => void, recheck: () => void }}
 */
export function watchBuild(onChange, { intervalMs = 3000, alsoWhile = () => false } = {}) {
  let seen = "";
  let timer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);
  let stopped = false;
  /** @type {BuildStatus} */ let build = { pending: false, version: 0, jobs: [] };
  const tick = async () => {
    clearTimeout(timer);
    let busy = false;
    try {
      const manifest = await fetchServedManifest();
      busy = (manifest.not_built ?? []).some((m) => PENDING.includes(m.state)) || alsoWhile();
      if (busy || build.pending) build = await fetchBuildStatus();
      const now = JSON.stringify([manifest, build]);
      if (now !== seen) {
        seen = now;
        onChange({ manifest, build });
      }
      busy ||= build.pending;
    } catch {
      busy = true; // the server restarting: try again later
    }
    if (busy && !stopped) timer = setTimeout(tick, intervalMs);
  };
  tick();
  return { stop: () => { stopped = true; clearTimeout(timer); }, recheck: () => { if (!stopped) tick(); } };
}
