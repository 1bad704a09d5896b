// The router's worker, served from this site's own origin (a module worker must be same-origin with
// the page that starts it); all it does is import the real one from the router's server by URL.
import "http://127.0.0.1:8000/worker.js";
