// Where the router is served from: serve.py (started with --embed-origin <this site's origin>) or a
// copy of the static site. The one thing to change, here and in hybrid-router-worker.js.
export const ROUTER = "http://127.0.0.1:8000/";
