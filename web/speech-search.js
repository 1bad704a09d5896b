// @ts-check
/**
 * The page's transcription panel (record with the microphone, or pick a WAV file) and search panel (a
 * vector index persisted in this browser). Wired by app.js once the router is ready.
 */

import { $, callEnded, describe, routeLine, scoreItem } from "./page-parts.js";

/** @param {import("./hybrid-router.js").HybridRouter} router */
export function setUpTranscription(router) {
  const record = /** @type {HTMLButtonElement} */ ($("asr-record"));
  const cancel = /** @type {HTMLButtonElement} */ ($("asr-cancel"));
  const file = /** @type {HTMLInputElement} */ ($("asr-file"));
  /** @type {AbortController | null} */ let running = null;
  /** @type {MediaRecorder | null} */ let recorder = null;

  /** @param {Blob | File} audio @param {string} what */
  async function run(audio, what) {
    running?.abort();
    const controller = (running = new AbortController());
    $("asr-error").textContent = "";
    $("asr-text").textContent = `Transcribing ${what}…`;
    $("asr-route").textContent = "";
    cancel.disabled = false;
    try {
      const result = await router.transcribe(audio, { signal: controller.signal });
      $("asr-text").textContent = result.text || "(no speech recognised)";
      $("asr-route").innerHTML = `${result.seconds.toFixed(1)} s of audio — ${routeLine(result.route)}`;
    } catch (err) {
      $("asr-text").textContent = "";
      $("asr-error").textContent = describe(err);
    } finally {
      if (running === controller) { running = null; cancel.disabled = true; }
      callEnded();
    }
  }

  file.disabled = false;
  file.onchange = () => { const f = file.files?.[0]; if (f) run(f, f.name); };
  cancel.onclick = () => running?.abort();

  const canRecord = Boolean(navigator.mediaDevices?.getUserMedia) && typeof MediaRecorder !== "undefined";
  if (!canRecord) {
    record.title = "This browser cannot record here (no microphone API, or the page is not served securely).";
    return;
  }
  record.disabled = false;
  record.onclick = async () => {
    if (recorder) { recorder.stop(); return; }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    } catch (err) {
      $("asr-error").textContent = describe(err);
      return;
    }
    /** @type {Blob[]} */ const parts = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => parts.push(e.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      record.textContent = "● Record";
      // webm/ogg: the client decodes it with the page's AudioContext (workers have none), then Whisper runs
      run(new Blob(parts, { type: parts[0]?.type || "audio/webm" }), "the recording");
    };
    recorder.start();
    record.textContent = "■ Stop";
    $("asr-text").textContent = "Recording… press Stop when done.";
  };
}

/** @param {import("./hybrid-router.js").HybridRouter} router */
export async function setUpSearch(router) {
  const NAME = "notes";
  const add = /** @type {HTMLButtonElement} */ ($("search-add"));
  const go = /** @type {HTMLButtonElement} */ ($("search-go"));
  const clear = /** @type {HTMLButtonElement} */ ($("search-clear"));
  let index = await router.openIndex(NAME);
  const showCount = () => {
    $("search-count").textContent = `${index.count} item(s) in the index "${NAME}"` +
      (index.persistent ? ", kept in this browser (IndexedDB) across reloads." : ", in memory only (IndexedDB unavailable).");
  };
  /** @param {() => Promise<void>} body */
  const guarded = async (body) => {
    $("search-error").textContent = "";
    for (const b of [add, go, clear]) b.disabled = true;
    try { await body(); } catch (err) { $("search-error").textContent = describe(err); }
    finally { for (const b of [add, go, clear]) b.disabled = false; showCount(); callEnded(); }
  };

  async function search() {
    const query = /** @type {HTMLInputElement} */ ($("search-query")).value.trim();
    if (!query) return;
    const hits = await index.search(query, { topK: 5 });
    const list = $("search-results");
    list.replaceChildren(...hits.map((h) => {
      const li = scoreItem(h.score, h.text);
      const remove = Object.assign(document.createElement("button"), { type: "button", className: "link",
        textContent: "remove" });
      remove.setAttribute("aria-label", `remove “${h.text}” from the index`);
      li.append(" ", remove);
      remove.onclick = () => guarded(async () => {
        await index.remove([h.id]);
        await search();
      });
      return li;
    }));
    $("search-route").innerHTML = hits.route ? routeLine(hits.route) : "";
  }

  add.onclick = () => guarded(async () => {
    const area = /** @type {HTMLTextAreaElement} */ ($("search-docs"));
    const lines = [...new Set(area.value.split("\n").map((s) => s.trim()).filter(Boolean))];
    if (!lines.length) return;
    const out = await index.add(lines, lines); // the text is its own id: adding it again replaces it
    $("search-route").innerHTML = `added ${out.added}, replaced ${out.replaced} — ${routeLine(out.route)}`;
  });
  go.onclick = () => guarded(search);
  /** @type {HTMLFormElement} */ ($("search-form")).onsubmit = (e) => { e.preventDefault(); guarded(search); };
  clear.onclick = () => guarded(async () => {
    await index.drop();
    index = await router.openIndex(NAME);
    $("search-results").replaceChildren();
  });
  for (const b of [add, go, clear]) b.disabled = false;
  showCount();
}
