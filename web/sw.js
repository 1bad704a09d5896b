/* Hybrid Router's service worker (a classic one: Workbox's browser builds load with importScripts).
 *
 * The static-site build (builder/site.py) writes it into the site with `self.__HYBRID_ROUTER_BUILD`
 * first: { version, workbox: [URLs], precache: [{ url, revision }], on_demand: [URLs],
 * relay_config: URL | null }.
 *
 * - Precached (Workbox): the page, the client, the worker, the Pyodide runtime and wheels,
 *   Transformers.js, ONNX Runtime's plain build (the wasm execution provider), boot.json, config.json,
 *   the models manifest. Files under assets/
 *   have content-hashed URLs (revision null); the others carry their sha256 as the revision, so an
 *   update downloads only what changed and drops what is gone.
 * - On demand (`on_demand`): ONNX Runtime's WebGPU builds (asyncify, jspi), which only a device with a
 *   real GPU loads: cached the first time they are fetched (cache first: their URLs are content-hashed),
 *   so a phone never downloads them and a GPU device has them offline after its first start. A wasm
 *   over the hosts' 25 MiB per file (asyncify) is served in parts: `on_demand` lists the parts
 *   (py-bridge.js fetches and joins them).
 * - Not precached: the model files (the router keeps them in IndexedDB, checked by sha256) and the
 *   cloud relay's calls (network only: offline they fail, and the router says OfflineError).
 * - The relay's /config is network-first with a copy kept per version, so an offline start still
 *   knows which cloud it has and fails its calls fast instead of calling the cloud "not configured".
 * - Updates: a new version installs in the background and waits; the page announces it and sends
 *   { type: "SKIP_WAITING" } when the person reloads; activation removes the caches of older versions.
 */
/* global workbox */
"use strict";

const BUILD = self.__HYBRID_ROUTER_BUILD;
importScripts(...BUILD.workbox);

const PREFIX = "hybrid-router";
const RELAY_CACHE = `${PREFIX}-relay-config-${BUILD.version}`;
const ON_DEMAND_CACHE = `${PREFIX}-on-demand-${BUILD.version}`;

workbox.core.setCacheNameDetails({ prefix: PREFIX, precache: "precache", runtime: "runtime" });
workbox.precaching.cleanupOutdatedCaches();
workbox.precaching.precacheAndRoute(BUILD.precache, { directoryIndex: "index.html", cleanURLs: false,
  ignoreURLParametersMatching: [/^v$/] });

if (BUILD.relay_config) {
  const relayConfig = new URL(BUILD.relay_config, self.location.href).href;
  workbox.routing.registerRoute(({ url }) => url.href === relayConfig,
    new workbox.strategies.NetworkFirst({ cacheName: RELAY_CACHE, networkTimeoutSeconds: 5 }));
}

if (BUILD.on_demand && BUILD.on_demand.length) {
  const onDemand = new Set(BUILD.on_demand.map((url) => new URL(url, self.location.href).href));
  workbox.routing.registerRoute(({ url }) => onDemand.has(url.href),
    new workbox.strategies.CacheFirst({ cacheName: ON_DEMAND_CACHE }));
}

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "SKIP_WAITING") self.skipWaiting();
  if (event.data && event.data.type === "VERSION") event.ports[0]?.postMessage({ version: BUILD.version });
});

self.addEventListener("activate", (event) => {
  // Workbox's precache drops the entries of older versions itself; this drops our other caches of theirs
  event.waitUntil(caches.keys().then((names) => Promise.all(names
    .filter((name) => (name.startsWith(`${PREFIX}-relay-config-`) && name !== RELAY_CACHE)
      || (name.startsWith(`${PREFIX}-on-demand-`) && name !== ON_DEMAND_CACHE))
    .map((name) => caches.delete(name)))));
});

workbox.core.clientsClaim();
