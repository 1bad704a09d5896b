// @ts-check
/** What the page's panels share: element lookup, error text, HTML escaping, the route record's line. */

export const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** An error as a person reads it: name, message, and the hint on what to do next. @param {any} err */
export const describe = (err) => `${err.name}: ${err.message}${err.hint ? `\n${err.hint}` : ""}`;

/** @param {string} text */
export const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

/** The route record as one line of HTML: badge, model, dtype/device, time, and the rule that decided. @param {any} r */
export const routeLine = (r) => `<span class="badge ${escapeHtml(String(r.target))}">${escapeHtml(String(r.target))}</span> ` +
  `${escapeHtml(r.model ?? "")} (${escapeHtml(r.dtype ?? "")}${r.device ? ", " + escapeHtml(r.device) : ""}) in ` +
  `${Number(r.ms).toFixed(0)} ms — ${escapeHtml(r.rule ?? r.reason)}`;

/**
 * One row of a score list: the number, a <meter> of the score (0..1), then the text (as text, not HTML).
 * @param {number} score @param {string} text @returns {HTMLLIElement}
 */
export function scoreItem(score, text) {
  const li = document.createElement("li");
  const meter = Object.assign(document.createElement("meter"), { min: 0, max: 1, value: Math.max(0, Math.min(1, score)) });
  meter.setAttribute("aria-hidden", "true");
  const number = Object.assign(document.createElement("span"), { className: "score", textContent: score.toFixed(3) });
  li.append(number, " ", meter, " ", text); // textContent: "<score>  <text>"
  return li;
}

/** Told of every call a panel made to the router once it ended (answered or failed): the routing panel
 * redraws its chart then, whatever the panel. */
const calls = new EventTarget();

/** A panel's call to the router ended. */
export const callEnded = () => { calls.dispatchEvent(new Event("ended")); };

/** @param {() => void} listener called after every call a panel made ended */
export const onCallEnded = (listener) => { calls.addEventListener("ended", listener); };
