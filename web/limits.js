// @ts-check
/**
 * How big and deep a call's params may be. Checked by the client before a call is posted (Chromium's
 * structured clone gives up on very deep values with no event the caller can see) and by the worker again
 * for messages posted to it directly.
 */

/** What a call's params may be: how deep, how many values (texts, numbers, keys) in all. */
export const LIMITS = Object.freeze({ depth: 16, values: 200_000 });

/**
 * Why `message` (`{ id, type, method, params }`) cannot be handed on, or null. Iterative, so a hostile
 * nesting cannot exhaust the stack; typed arrays and ArrayBuffers (audio) count as one value.
 * @param {any} message
 */
export function refusal(message) {
  if (!message || typeof message !== "object" || Array.isArray(message)) return "a message must be an object";
  /** @type {[any, number][]} */ const stack = [[message.params, 1]];
  let values = 0;
  while (stack.length) {
    const [value, depth] = /** @type {[any, number]} */ (stack.pop());
    if (++values > LIMITS.values) return `the call's arguments hold more than ${LIMITS.values} values`;
    if (value === null || typeof value !== "object" || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) continue;
    if (depth > LIMITS.depth) return `the call's arguments are nested more than ${LIMITS.depth} levels deep`;
    for (const item of Array.isArray(value) ? value : Object.values(value)) stack.push([item, depth + 1]);
  }
  return null;
}

/** The hint of a refused call. */
export const REFUSAL_HINT = "Pass plain data of a sensible size and depth: strings, numbers, arrays and objects "
  + "as the API documents them.";
