// @ts-check
/**
 * The errors the router rejects with: an `Error` whose `name` says what happened, with a `hint` a person
 * can act on and `details`. ERROR_NAMES is checked against py_src/hybrid_router/errors.py by a test
 * (tests/unit/test_js_client.py), plus the names only the client or the worker edge raises.
 */

/** The error names the router can reject with (see py_src/hybrid_router/errors.py). */
export const ERROR_NAMES = Object.freeze([
  "ValidationError", "PolicyError", "LocalError", "ModelLoadError", "ModelNotReadyError", "InferenceError", "ContextLengthError",
  "StorageError", "CloudError", "RateLimitError", "CloudTimeoutError", "OfflineError", "ToolCallError", "BusyError", "ProtocolError",
  "AbortError", "WorkerError", "InternalError",
]);

export class HybridRouterError extends Error {
  /** @param {{ name: string, message: string, hint?: string, details?: any }} wire */
  constructor(wire) {
    super(wire.message);
    this.name = wire.name;
    /** @type {string} */ this.hint = wire.hint || "";
    /** @type {Record<string, any>} */ this.details = wire.details || {};
  }
}

/** @param {string} message @param {any} [details] */
export const abortError = (message, details = {}) => new HybridRouterError({
  name: "AbortError", message, hint: "The call was cancelled; call again if you still need the result.", details,
});

/** @param {string} message @param {string} hint @param {any} [details] */
export const workerError = (message, hint, details = {}) =>
  new HybridRouterError({ name: "WorkerError", message, hint, details });
