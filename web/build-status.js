// @ts-check
/**
 * The server's background build as the page shows it: `GET /api/build/status` (see serve.py), polled
 * while jobs are pending, and one sentence per job ("training, ~9 minutes left", "queued",
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

/** @returns {Promise<BuildStatus>} */
export async function fetchBuildStatus() {
  const resp = await fetch("/api/build/status", { cache: "no-store" });
  if (!resp.ok) return { pending: false, version: 0, jobs: [] };
  return resp.json();
}

/**
 * Call `onChange(status)` now and whenever the build status changes (its `version`); poll every
 * `intervalMs` while jobs are pending, then stop.
 * @param {(status: BuildStatus) => void} onChange
 * @param {{ intervalMs?: number }} [options]
 * @returns {{ stop: () => void }}
 */
export function watchBuild(onChange, { intervalMs = 3000 } = {}) {
  let version = -1;
  let timer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);
  let stopped = false;
  const tick = async () => {
    try {
      const status = await fetchBuildStatus();
      if (status.version !== version) {
        version = status.version;
        onChange(status);
      }
      if (!status.pending) return;
    } catch {
      // the server restarting: try again later
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  };
  tick();
  return { stop: () => { stopped = true; clearTimeout(timer); } };
}
