// @ts-check
/**
 * Audio for `transcribe`: what the client sends to the worker. A WAV file goes as its bytes (decoded in the
 * worker, where one decoder tested in CPython serves every page); samples go as a Float32Array; other
 * formats (a MediaRecorder's webm/Opus, mp3, ogg) are decoded here with the page's OfflineAudioContext,
 * because a worker has no AudioContext.
 */

import { HybridRouterError } from "./errors.js";

/** @param {string} message @param {string} hint @param {any} [details] */
const validationError = (message, hint, details = {}) =>
  new HybridRouterError({ name: "ValidationError", message, hint, details: { field: "audio", ...details } });

/** @param {Uint8Array} head */
const isWav = (head) => {
  const tag = (/** @type {number} */ at) => String.fromCharCode(...head.subarray(at, at + 4));
  return head.length >= 12 && (tag(0) === "RIFF" || tag(0) === "RF64") && tag(8) === "WAVE";
};

/**
 * Decode a compressed recording (webm/ogg/mp3...) to 16 kHz mono with the page's audio stack.
 * @param {ArrayBuffer} bytes
 */
async function decodeWithAudioContext(bytes) {
  const Offline = /** @type {any} */ (globalThis).OfflineAudioContext;
  if (!Offline) {
    throw validationError("audio is not a WAV file, and there is no AudioContext here to decode it",
      "Pass a WAV file or a Float32Array of 16 kHz mono samples (workers have no AudioContext).");
  }
  let buffer;
  try {
    buffer = await new Offline({ numberOfChannels: 1, length: 1, sampleRate: 16000 }).decodeAudioData(bytes);
  } catch (err) {
    throw validationError(`audio could not be decoded: ${err}`,
      "Pass a WAV file, a Float32Array of 16 kHz mono samples, or a format this browser can play.");
  }
  const out = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const channel = buffer.getChannelData(c);
    for (let i = 0; i < out.length; i++) out[i] += channel[i] / buffer.numberOfChannels;
  }
  return out;
}

/**
 * The wire params of `transcribe`: `{ audio, sampling_rate }` for samples, `{ wav }` for a WAV file.
 * @param {unknown} audio @param {number | undefined} samplingRate
 * @returns {Promise<Record<string, any>>}
 */
export async function audioParams(audio, samplingRate) {
  if (audio instanceof Float32Array) return { audio, sampling_rate: samplingRate ?? 16000 };
  if (Array.isArray(audio) || audio instanceof Float64Array) {
    return { audio: Float32Array.from(/** @type {ArrayLike<number>} */ (audio)), sampling_rate: samplingRate ?? 16000 };
  }
  /** @type {ArrayBuffer} */ let bytes;
  if (typeof Blob !== "undefined" && audio instanceof Blob) bytes = await audio.arrayBuffer();
  else if (audio instanceof ArrayBuffer) bytes = audio;
  else if (audio instanceof Uint8Array) bytes = audio.slice().buffer;
  else {
    const got = audio === null ? "null" : ArrayBuffer.isView(audio) ? audio.constructor.name : typeof audio;
    throw validationError(`audio must be a Float32Array, a Blob/File or an ArrayBuffer, got ${got}`,
      "Pass a Float32Array of 16 kHz mono samples, or a WAV Blob/File (e.g. from an <input type=file>).",
      { got });
  }
  if (bytes.byteLength === 0) {
    throw validationError("audio is empty", "Record or pick some audio first.");
  }
  if (isWav(new Uint8Array(bytes, 0, Math.min(12, bytes.byteLength)))) return { wav: bytes };
  return { audio: await decodeWithAudioContext(bytes), sampling_rate: 16000 };
}
