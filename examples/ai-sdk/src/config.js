// Where the router's runtime is served (serve.py started with --embed-origin <this page's origin>, or a copy
// of the static site): boot.json, Pyodide, Transformers.js, ONNX Runtime, the wheels, the models and the
// cloud relay. The client, its worker and the AI SDK are in this page's bundle.
export const ROUTER_BASE_URL = "http://127.0.0.1:8000/";
