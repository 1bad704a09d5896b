// Where the router's runtime is served (serve.py, or a copy of the static site): boot.json, Pyodide,
// Transformers.js, ONNX Runtime, the wheels and the models. The client and the worker are in the bundle.
export const ROUTER_BASE_URL = "http://127.0.0.1:8000/";
