// @ts-check
/**
 * Answers as Markdown: marked (GitHub-flavoured) turns the text into HTML and DOMPurify sanitises that
 * HTML before it enters the page, so an answer can format (code blocks, lists, tables, emphasis) but never
 * run script or bring its own styles; HTML written in an answer shows as text. Both are npm packages vendored and integrity-checked by the build
 * (builder/pins.py, builder/assets.py); the page finds them through boot.json's `markdown` URLs (relative
 * to boot.json on the static site) and imports them as ES modules: no inline script, no eval, so the
 * page's Content-Security-Policy stays as strict as it was. Where they cannot be loaded (an older build),
 * answers stay plain text.
 */

/** @typedef {(text: string) => DocumentFragment} Render */

/** @param {string} text */
const escapeText = (text) => String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

/** @type {Promise<Render | null> | null} */
let loading = null;

/** What DOMPurify keeps: no style (the policy allows style.css only), no images (img-src is 'self'). */
const PURIFY = { FORBID_TAGS: ["style", "img", "form", "input", "button"], FORBID_ATTR: ["style"], RETURN_DOM_FRAGMENT: true };

/** @returns {Promise<Render | null>} a renderer of Markdown into sanitised nodes, or null where none loads */
export function markdownRenderer() {
  loading ??= (async () => {
    const bootUrl = new URL("boot.json", location.href);
    const response = await fetch(bootUrl);
    const urls = response.ok ? (await response.json()).markdown : null;
    if (!urls?.marked || !urls?.dompurify) return null;
    const [{ Marked }, { default: DOMPurify }] = await Promise.all([
      import(new URL(urls.marked, bootUrl).href),
      import(new URL(urls.dompurify, bootUrl).href),
    ]);
    // raw HTML in an answer is shown as text (never parsed: an inline handler would be a CSP violation even
    // where it cannot run), an image as a link to it (img-src is 'self')
    const marked = new Marked({ gfm: true, breaks: false, async: false, renderer: {
      html: (/** @type {{ text: string }} */ token) => escapeText(token.text),
      image: (/** @type {{ href: string, text: string }} */ token) =>
        `<a href="${escapeText(token.href)}">${escapeText(token.text || token.href)}</a>`,
    } });
    // links in an answer open elsewhere, without handing this page to the other site
    DOMPurify.addHook("afterSanitizeAttributes", (/** @type {Element} */ node) => {
      if (node.tagName === "A" && node.getAttribute("href")) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer");
      }
    });
    return (/** @type {string} */ text) => DOMPurify.sanitize(String(marked.parse(text)), PURIFY);
  })().catch((err) => {
    console.warn("Markdown rendering is unavailable: answers are shown as plain text", err);
    return null;
  });
  return loading;
}

/**
 * Show `text` in `element` as Markdown (as plain text until the renderer has loaded, or without one).
 * @param {HTMLElement} element @param {string} text @param {Render | null} render
 */
export function showMarkdown(element, text, render) {
  if (!render) {
    element.textContent = text;
    element.classList.add("plain");
    return;
  }
  element.classList.remove("plain");
  element.replaceChildren(render(text));
}
