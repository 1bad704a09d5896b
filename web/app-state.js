// @ts-check
/**
 * The page's view of the outside: online or offline, and the service worker of the static site
 * (web/sw.js, built by builder/site.py) with its update flow.
 *
 * The update flow: the browser checks sw.js on every load; a changed one installs in the background
 * (precaching only what changed) and waits. `onUpdate(reload)` announces it; `reload()` tells the
 * waiting worker to take over, and the page reloads once it controls the page. The first install
 * takes over at once (there is nothing older to replace) and does not reload the page.
 */

/**
 * Call `onChange(online)` now and on every change. Returns a function that reports again: a page
 * reloaded while offline can read a stale `navigator.onLine` in its first moments (seen with
 * emulated network conditions), so the page asks once more when the router is ready.
 * @param {(online: boolean) => void} onChange
 * @returns {() => void}
 */
export function watchConnection(onChange) {
  const report = () => onChange(navigator.onLine);
  addEventListener("online", report);
  addEventListener("offline", report);
  report();
  return report;
}

/**
 * Register the service worker at `url` and watch for a new version of the site.
 * @param {string} url
 * @param {{ onUpdate: (reload: () => void) => void }} handlers
 * @returns {Promise<ServiceWorkerRegistration | null>} null where the browser has no service workers
 */
export async function watchServiceWorker(url, { onUpdate }) {
  if (!("serviceWorker" in navigator)) return null;
  const sw = navigator.serviceWorker;
  const hadController = Boolean(sw.controller);
  let reloading = false;
  sw.addEventListener("controllerchange", () => {
    if (hadController && !reloading) {
      reloading = true;
      location.reload();
    }
  });
  const registration = await sw.register(url, { scope: "./" });
  /** A worker that finished installing while an older one controls the page: announce it. @param {ServiceWorker | null} worker */
  const track = (worker) => {
    if (!worker) return;
    const check = () => {
      if (worker.state === "installed" && sw.controller) onUpdate(() => worker.postMessage({ type: "SKIP_WAITING" }));
    };
    if (worker.state === "installed") check();
    else worker.addEventListener("statechange", check);
  };
  track(registration.waiting);
  track(registration.installing); // an update found while the page was loading
  registration.addEventListener("updatefound", () => track(registration.installing));
  return registration;
}
