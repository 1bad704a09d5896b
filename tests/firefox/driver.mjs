// @ts-check
// The test suite's Firefox driver: puppeteer-core over WebDriver BiDi to Debian's firefox-esr, driven by
// tests/firefox_harness.py through JSON lines (one command per stdin line, one answer per stdout line).
// Data only: a command names an operation and its arguments; the page's own code runs as the string the
// Python side sends (what Playwright's page.evaluate does for the Chromium tests).
//
//   {"id": 1, "op": "newPage"}                          -> {"id": 1, "ok": true, "value": "p1"}
//   {"id": 2, "op": "goto", "page": "p1", "url": "..."} -> {"id": 2, "ok": true, "value": null}
//   {"id": 3, "op": "evaluate", "page": "p1", "fn": "async (arg) => ...", "arg": {...}}
//
// puppeteer-core is installed outside the repo (its folder in HR_FIREFOX_DRIVER_MODULES).
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const modules = process.env.HR_FIREFOX_DRIVER_MODULES;
if (!modules) throw new Error("HR_FIREFOX_DRIVER_MODULES is not set (tests/firefox_harness.py sets it)");
const puppeteer = createRequire(modules + "/")("puppeteer-core");

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: process.env.HR_FIREFOX || "/usr/bin/firefox-esr",
  headless: true,
  protocol: "webDriverBiDi",
  extraPrefsFirefox: {
    // the tests drive many pages at once in one profile: no throttling of background tabs
    "dom.min_background_timeout_value": 4,
  },
});

/** @type {Map<string, any>} */
const contexts = new Map();
/** @type {Map<string, {page: any, urls: string[], console: string[]}>} */
const pages = new Map();
let next = 0;

/** @param {any} msg */
async function run(msg) {
  switch (msg.op) {
    case "version":
      return await browser.version();
    case "newContext": {
      const id = `c${++next}`;
      contexts.set(id, await browser.createBrowserContext());
      return id;
    }
    case "closeContext": {
      await contexts.get(msg.context)?.close();
      contexts.delete(msg.context);
      return null;
    }
    case "newPage": {
      const owner = msg.context ? contexts.get(msg.context) : browser;
      const page = await owner.newPage();
      const id = `p${++next}`;
      /** @type {string[]} */
      const urls = [];
      /** @type {string[]} */
      const lines = [];
      page.on("request", (/** @type {any} */ r) => urls.push(r.url()));
      page.on("console", (/** @type {any} */ m) => {
        const line = `[firefox ${m.type()}] ${m.text()}`;
        lines.push(line);
        if (m.type() === "error" || m.type() === "warn") process.stderr.write(line + "\n");
      });
      page.on("pageerror", (/** @type {any} */ e) => process.stderr.write(`[firefox pageerror] ${e}\n`));
      pages.set(id, { page, urls, console: lines });
      return id;
    }
    case "goto":
      await pageOf(msg).goto(msg.url, { timeout: msg.ms ?? 60_000 });
      return null;
    case "reload":
      await pageOf(msg).reload({ timeout: msg.ms ?? 60_000 });
      return null;
    case "waitForSelector":
      await pageOf(msg).waitForSelector(msg.selector, { timeout: msg.ms ?? 180_000 });
      return null;
    case "evaluate": {
      // the function's text applied to its argument (JSON): the CSP of the page does not apply to it
      const source = `(${msg.fn})(${JSON.stringify(msg.arg ?? null)})`;
      return await pageOf(msg).evaluate(source);
    }
    case "requests":
      return pages.get(msg.page)?.urls ?? [];
    case "console":
      return pages.get(msg.page)?.console ?? [];
    case "closePage": {
      await pageOf(msg).close();
      pages.delete(msg.page);
      return null;
    }
    case "close":
      await browser.close();
      setTimeout(() => process.exit(0), 10);
      return null;
    default:
      throw new Error(`unknown op ${msg.op}`);
  }
}

/** @param {any} msg */
function pageOf(msg) {
  const entry = pages.get(msg.page);
  if (!entry) throw new Error(`no page ${msg.page}`);
  return entry.page;
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const msg = JSON.parse(line);
  let answer;
  try {
    const value = await run(msg);
    answer = { id: msg.id, ok: true, value: value === undefined ? null : value };
  } catch (e) {
    const err = /** @type {any} */ (e);
    answer = { id: msg.id, ok: false, error: `${err?.name ?? "Error"}: ${err?.message ?? err}` };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser.close().catch(() => {});
