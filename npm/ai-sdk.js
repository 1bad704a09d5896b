// @ts-check
/**
 * `hybrid-router/ai-sdk`: Hybrid Router as a provider of the Vercel AI SDK (`ai` 7: the LanguageModelV4 and
 * EmbeddingModelV4 specifications of `@ai-sdk/provider`), so an app written against the AI SDK calls the
 * router without rewriting its calls:
 *
 *   import { HybridRouter } from "hybrid-router";
 *   import { createHybridRouter } from "hybrid-router/ai-sdk";
 *   import { generateText, streamText, embed } from "ai";
 *
 *   const hr = createHybridRouter({ router: await HybridRouter.create({ baseUrl }) });
 *   const { text, providerMetadata } = await generateText({ model: hr("auto"), prompt: "Hi!" });
 *   providerMetadata.hybridRouter.route.target;  // "local" | "cloud"
 *   const { embedding } = await embed({ model: hr.embeddingModel(), value: "a sentence" });
 *
 * The language model's id is the route ("auto", "local" or "cloud"); the embedding model's id is the
 * router's embedding model ("default": the manifest's first). Every call goes through the router:
 * `generate`, `stream`, `embed` and, for JSON output (`generateObject`, `Output.object`), `generateObject`
 * where the router has it. The route record is in `providerMetadata.hybridRouter.route`; the AI SDK's
 * `abortSignal` cancels the router's call. Errors: the cloud's failures are `APICallError`s (not
 * retryable: the router has retried and fallen back already), a bad prompt an `InvalidPromptError`, what
 * the router cannot do an `UnsupportedFunctionalityError`; the others are the router's own errors (their
 * `name`, `hint` and `details`: docs/errors.md), an abort stays an `AbortError`.
 */

import {
  APICallError,
  InvalidArgumentError,
  InvalidPromptError,
  NoSuchModelError,
  UnsupportedFunctionalityError,
} from "@ai-sdk/provider";

/**
 * @typedef {import("@ai-sdk/provider").LanguageModelV4} LanguageModelV4
 * @typedef {import("@ai-sdk/provider").LanguageModelV4CallOptions} LanguageModelV4CallOptions
 * @typedef {import("@ai-sdk/provider").LanguageModelV4GenerateResult} LanguageModelV4GenerateResult
 * @typedef {import("@ai-sdk/provider").LanguageModelV4StreamResult} LanguageModelV4StreamResult
 * @typedef {import("@ai-sdk/provider").LanguageModelV4StreamPart} LanguageModelV4StreamPart
 * @typedef {import("@ai-sdk/provider").LanguageModelV4FinishReason} LanguageModelV4FinishReason
 * @typedef {import("@ai-sdk/provider").LanguageModelV4Usage} LanguageModelV4Usage
 * @typedef {import("@ai-sdk/provider").LanguageModelV4Prompt} LanguageModelV4Prompt
 * @typedef {import("@ai-sdk/provider").EmbeddingModelV4} EmbeddingModelV4
 * @typedef {import("@ai-sdk/provider").EmbeddingModelV4CallOptions} EmbeddingModelV4CallOptions
 * @typedef {import("@ai-sdk/provider").EmbeddingModelV4Result} EmbeddingModelV4Result
 * @typedef {import("@ai-sdk/provider").SharedV4Warning} SharedV4Warning
 * @typedef {import("@ai-sdk/provider").SharedV4ProviderMetadata} SharedV4ProviderMetadata
 * @typedef {import("./hybrid-router.js").HybridRouter} HybridRouter
 * @typedef {import("./hybrid-router.js").PolicyOptions} PolicyOptions
 * @typedef {import("./hybrid-router.js").Route} Route
 */

/**
 * @typedef {"auto" | "local" | "cloud"} RouteId the language model's id: where the router may answer
 * @typedef {{ policy?: PolicyOptions, maxTokens?: number }} HybridRouterModelSettings a model's defaults
 *   (`policy`: routing policy fields for its calls, as `router.generate({ policy })` takes them)
 * @typedef {{ route?: RouteId, policy?: PolicyOptions }} HybridRouterCallOptions per call, as
 *   `providerOptions: { hybridRouter: { ... } }` (they override the model's)
 * @typedef {{ router: HybridRouter, name?: string, policy?: PolicyOptions }} HybridRouterProviderSettings
 *   `router`: a started `HybridRouter`; `name`: the provider's name in the AI SDK (default "hybrid-router");
 *   `policy`: the default policy of every model of this provider
 * @typedef {((modelId?: RouteId, settings?: HybridRouterModelSettings) => LanguageModelV4) & {
 *   readonly specificationVersion: "v4",
 *   languageModel(modelId?: RouteId, settings?: HybridRouterModelSettings): LanguageModelV4,
 *   embeddingModel(modelId?: string, settings?: { policy?: PolicyOptions }): EmbeddingModelV4,
 *   imageModel(modelId: string): never }} HybridRouterProvider
 */

/** The key of this provider's entries in `providerOptions` and `providerMetadata`. */
export const PROVIDER_KEY = "hybridRouter";

const ROUTES = Object.freeze(["auto", "local", "cloud"]);
/** the call options the router has no counterpart for: each one given is reported as a warning */
const IGNORED = Object.freeze(["topP", "topK", "stopSequences", "presencePenalty", "frequencyPenalty", "seed"]);
/** where an error of the router's cloud side says it happened (the AI SDK's APICallError needs a URL) */
const CLOUD_URL = "hybrid-router:cloud";

/**
 * A provider of the AI SDK that answers through `router`.
 * @param {HybridRouterProviderSettings} settings
 * @returns {HybridRouterProvider}
 */
export function createHybridRouter(settings) {
  const router = settings?.router;
  if (!router || typeof router.generate !== "function" || typeof router.embed !== "function") {
    throw new InvalidArgumentError({ argument: "router",
      message: "createHybridRouter needs { router }: a HybridRouter from `await HybridRouter.create(...)`" });
  }
  const name = settings.name ?? "hybrid-router";
  /** @param {RouteId} [modelId] @param {HybridRouterModelSettings} [model] */
  const languageModel = (modelId = "auto", model = {}) => {
    if (!ROUTES.includes(modelId)) {
      throw new NoSuchModelError({ modelId, modelType: "languageModel",
        message: `${name} has no language model "${modelId}": its ids are the routes ${ROUTES.join(", ")}` });
    }
    return new HybridRouterLanguageModel(router, name, modelId, { ...model, policy: { ...settings.policy, ...model.policy } });
  };
  const provider = /** @type {HybridRouterProvider} */ (Object.assign(languageModel, {
    specificationVersion: /** @type {const} */ ("v4"),
    languageModel,
    /** @param {string} [modelId] @param {{ policy?: PolicyOptions }} [model] */
    embeddingModel: (modelId = "default", model = {}) =>
      new HybridRouterEmbeddingModel(router, name, modelId, { ...settings.policy, ...model.policy }),
    /** @param {string} modelId @returns {never} */
    imageModel: (modelId) => {
      throw new NoSuchModelError({ modelId, modelType: "imageModel", message: `${name} makes no images` });
    },
  }));
  return provider;
}

/**
 * The AI SDK's prompt as the router's messages (text only).
 * @param {LanguageModelV4Prompt} prompt @returns {{ role: string, content: string }[]}
 */
export function toMessages(prompt) {
  return prompt.map((message) => {
    if (message.role === "system") return { role: "system", content: message.content };
    if (message.role === "tool") {
      throw new UnsupportedFunctionalityError({ functionality: "tool results in the prompt",
        message: "Hybrid Router's AI SDK provider does not take tools yet: send text messages only" });
    }
    const parts = /** @type {{ type: string, text?: string }[]} */ (message.content);
    const text = [];
    for (const part of parts) {
      if (part.type === "text") text.push(part.text ?? "");
      else if (part.type === "reasoning") continue; // an assistant's earlier reasoning is not sent back
      else {
        throw new UnsupportedFunctionalityError({ functionality: `${part.type} parts in ${message.role} messages`,
          message: `Hybrid Router answers text: a ${message.role} message's ${part.type} part cannot be sent` });
      }
    }
    return { role: message.role, content: text.join("") };
  });
}

/**
 * The router's finish reason as the AI SDK's.
 * @param {string | null | undefined} raw @returns {LanguageModelV4FinishReason}
 */
function finishReason(raw) {
  const unified = raw === "stop" ? "stop" : raw === "length" ? "length"
    : raw === "content_filter" ? "content-filter" : raw == null ? "stop" : "other";
  return { unified, raw: raw ?? undefined };
}

/**
 * The router's usage as the AI SDK's.
 * @param {{ tokens_in?: number, tokens_out?: number } | null | undefined} usage
 * @returns {LanguageModelV4Usage}
 */
function mapUsage(usage) {
  const input = usage?.tokens_in ?? undefined, output = usage?.tokens_out ?? undefined;
  return {
    inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: output, text: output, reasoning: undefined },
    ...(usage ? { raw: { tokens_in: input ?? null, tokens_out: output ?? null } } : {}),
  };
}

/** @param {Route | null | undefined} route @returns {SharedV4ProviderMetadata} */
function metadata(route) {
  return { [PROVIDER_KEY]: { route: /** @type {any} */ (route ?? null) } };
}

/**
 * A router error as the AI SDK's error class where one fits; the others (and an abort) as they are.
 * @param {any} error @param {unknown} [request] what was asked (kept on an APICallError)
 */
export function toAiSdkError(error, request) {
  const name = error?.name;
  if (["CloudError", "RateLimitError", "CloudTimeoutError", "OfflineError"].includes(name)) {
    const details = error.details ?? {};
    return new APICallError({ message: error.message, url: details.url ?? CLOUD_URL, requestBodyValues: request,
      statusCode: typeof details.status === "number" ? details.status : undefined, cause: error,
      isRetryable: false, data: { name, hint: error.hint, details } });
  }
  if (name === "ContextLengthError" || (name === "ValidationError" && ["prompt", "messages"].includes(error.details?.field))) {
    return new InvalidPromptError({ prompt: request, message: error.message, cause: error });
  }
  return error;
}

/** The per-call options of this provider, from `providerOptions.hybridRouter`. @param {LanguageModelV4CallOptions | EmbeddingModelV4CallOptions} options @returns {HybridRouterCallOptions} */
function callOptions(options) {
  const own = options.providerOptions?.[PROVIDER_KEY] ?? {};
  if (own.route !== undefined && !ROUTES.includes(/** @type {any} */ (own.route))) {
    throw new InvalidArgumentError({ argument: `providerOptions.${PROVIDER_KEY}.route`,
      message: `the route must be one of ${ROUTES.join(", ")}, got ${JSON.stringify(own.route)}` });
  }
  return /** @type {HybridRouterCallOptions} */ (own);
}

/** Hybrid Router as a LanguageModelV4: its id is the route. @implements {LanguageModelV4} */
export class HybridRouterLanguageModel {
  specificationVersion = /** @type {const} */ ("v4");
  /** @type {Record<string, RegExp[]>} no URL is passed through: files are not sent */
  supportedUrls = {};
  /** @type {HybridRouter} */ #router;

  /**
   * @param {HybridRouter} router @param {string} provider @param {RouteId} modelId
   * @param {HybridRouterModelSettings} settings
   */
  constructor(router, provider, modelId, settings) {
    this.#router = router;
    this.provider = provider;
    this.modelId = modelId;
    this.settings = settings;
  }

  /**
   * The router's options of one call and the warnings for what it does not take.
   * @param {LanguageModelV4CallOptions} options
   */
  #request(options) {
    if (options.tools?.length) {
      throw new UnsupportedFunctionalityError({ functionality: "tools",
        message: "Hybrid Router's AI SDK provider does not take tools yet: call without tools" });
    }
    /** @type {SharedV4Warning[]} */ const warnings = [];
    for (const key of IGNORED) {
      const value = /** @type {any} */ (options)[key];
      if (value !== undefined && !(Array.isArray(value) && !value.length)) warnings.push({ type: "unsupported", feature: key });
    }
    const own = callOptions(options);
    const policy = { ...this.settings.policy, ...own.policy };
    const request = {
      messages: toMessages(options.prompt),
      route: own.route ?? this.modelId,
      maxTokens: options.maxOutputTokens ?? this.settings.maxTokens,
      temperature: options.temperature,
      ...(Object.keys(policy).length ? { policy } : {}),
    };
    return { request, warnings };
  }

  /**
   * JSON output (`responseFormat: { type: "json", schema }`): `router.generateObject`, where the router has it.
   * @param {LanguageModelV4CallOptions} options @param {Record<string, any>} request
   * @returns {Promise<{ text: string, route: Route, usage: any, finish_reason: string | null }>}
   */
  async #object(options, request) {
    const format = /** @type {{ type: "json", schema?: any, name?: string, description?: string }} */ (options.responseFormat);
    const router = /** @type {any} */ (this.#router);
    if (typeof router.generateObject !== "function") {
      throw new UnsupportedFunctionalityError({ functionality: "responseFormat json (generateObject, Output.object)",
        message: "this HybridRouter has no generateObject: structured output needs a router version that has it" });
    }
    if (!format.schema) {
      throw new UnsupportedFunctionalityError({ functionality: "responseFormat json without a schema",
        message: "Hybrid Router's structured output needs a JSON Schema (pass a schema to generateObject / Output.object)" });
    }
    const { maxTokens, temperature, ...rest } = request;
    const { $schema, ...schema } = format.schema; // the dialect's URI (zod writes one): not a constraint
    const out = await router.generateObject({ ...rest, schema, signal: options.abortSignal,
      ...(maxTokens !== undefined ? { maxTokens } : {}), ...(temperature !== undefined ? { temperature } : {}) });
    return { text: JSON.stringify(out.object), route: out.route, usage: out.usage,
      finish_reason: out.finish_reason ?? out.route?.finish_reason ?? null };
  }

  /** @param {LanguageModelV4CallOptions} options @returns {Promise<LanguageModelV4GenerateResult>} */
  async doGenerate(options) {
    const { request, warnings } = this.#request(options);
    let out;
    try {
      out = options.responseFormat?.type === "json"
        ? await this.#object(options, request)
        : await this.#router.generate({ ...request, signal: options.abortSignal });
    } catch (error) {
      throw toAiSdkError(error, request);
    }
    return {
      content: [{ type: "text", text: out.text }],
      finishReason: finishReason(out.finish_reason ?? out.route?.finish_reason),
      usage: mapUsage(out.usage),
      providerMetadata: metadata(out.route),
      request: { body: request },
      response: { modelId: out.route?.model, timestamp: new Date() },
      warnings,
    };
  }

  /** @param {LanguageModelV4CallOptions} options @returns {Promise<LanguageModelV4StreamResult>} */
  async doStream(options) {
    const { request, warnings } = this.#request(options);
    if (options.responseFormat?.type === "json") {
      // the router's object comes whole: one text delta with its JSON
      let out;
      try {
        out = await this.#object(options, request);
      } catch (error) {
        throw toAiSdkError(error, request);
      }
      const parts = /** @type {LanguageModelV4StreamPart[]} */ ([
        { type: "stream-start", warnings },
        { type: "response-metadata", modelId: out.route?.model },
        { type: "text-start", id: "0" }, { type: "text-delta", id: "0", delta: out.text }, { type: "text-end", id: "0" },
        { type: "finish", finishReason: finishReason(out.finish_reason), usage: mapUsage(out.usage), providerMetadata: metadata(out.route) },
      ]);
      return { stream: new ReadableStream({ start(c) { for (const p of parts) c.enqueue(p); c.close(); } }), request: { body: request } };
    }
    const items = this.#router.stream({ ...request, signal: options.abortSignal })[Symbol.asyncIterator]();
    // the first item before answering, so that a call refused at once (a policy, the cloud down) rejects here
    /** @type {IteratorResult<import("./hybrid-router.js").StreamItem>} */ let first;
    try {
      first = await items.next();
    } catch (error) {
      throw toAiSdkError(error, request);
    }
    let ended = false;
    /** @type {ReadableStream<LanguageModelV4StreamPart>} */
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue({ type: "stream-start", warnings });
        controller.enqueue({ type: "text-start", id: "0" });
      },
      async pull(controller) {
        try {
          const { value, done } = first ?? await items.next();
          first = /** @type {any} */ (null);
          if (done || !value) {
            if (!ended) {
              controller.enqueue({ type: "text-end", id: "0" });
              controller.enqueue({ type: "finish", finishReason: { unified: "other", raw: undefined }, usage: mapUsage(null) });
            }
            controller.close();
            return;
          }
          if (value.delta) controller.enqueue({ type: "text-delta", id: "0", delta: value.delta });
          if (value.done) {
            ended = true;
            controller.enqueue({ type: "response-metadata", modelId: value.route?.model });
            controller.enqueue({ type: "text-end", id: "0" });
            controller.enqueue({ type: "finish", finishReason: finishReason(value.finish_reason ?? value.route?.finish_reason),
              usage: mapUsage(value.usage), providerMetadata: metadata(value.route) });
          }
        } catch (error) {
          controller.error(toAiSdkError(error, request));
        }
      },
      async cancel() {
        await items.return?.(); // stops the router's call
      },
    });
    return { stream, request: { body: request } };
  }
}

/** Hybrid Router's embeddings (on the device) as an EmbeddingModelV4. @implements {EmbeddingModelV4} */
export class HybridRouterEmbeddingModel {
  specificationVersion = /** @type {const} */ ("v4");
  /** the router batches by length itself: embedMany's values go in one call */
  maxEmbeddingsPerCall = undefined;
  /** one worker runs the model: parallel calls would only queue */
  supportsParallelCalls = false;
  /** @type {HybridRouter} */ #router;

  /**
   * @param {HybridRouter} router @param {string} provider @param {string} modelId "default": the router's
   * @param {PolicyOptions} policy
   */
  constructor(router, provider, modelId, policy) {
    this.#router = router;
    this.provider = provider;
    this.modelId = modelId;
    this.policy = policy;
  }

  /** @param {EmbeddingModelV4CallOptions} options @returns {Promise<EmbeddingModelV4Result>} */
  async doEmbed(options) {
    /** @type {SharedV4Warning[]} */ const warnings = [];
    if (options.dimensions !== undefined) warnings.push({ type: "unsupported", feature: "dimensions" });
    const policy = { ...this.policy, ...callOptions(options).policy };
    let out;
    try {
      out = await this.#router.embed(options.values, { signal: options.abortSignal,
        ...(this.modelId !== "default" ? { model: this.modelId } : {}), ...(Object.keys(policy).length ? { policy } : {}) });
    } catch (error) {
      throw toAiSdkError(error, { values: options.values });
    }
    const tokens = out.route?.tokens_in;
    return {
      embeddings: out.vectors,
      ...(typeof tokens === "number" ? { usage: { tokens } } : {}),
      providerMetadata: { [PROVIDER_KEY]: { route: /** @type {any} */ (out.route), model: out.model, dims: out.dims } },
      warnings,
    };
  }
}
