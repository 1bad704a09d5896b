"""A static file server for the tests: a folder as it is, with only the headers a test asks for.

    python -m tests.static_server DIR --port N [--header 'Name: value' ...] [--fake-cloud]

Unlike serve.py it adds nothing of its own (no CSP, no COOP/COEP, no CORS) unless told, so a test can
stand for a host that sends no special headers, one that sends COOP/COEP, or an embedding site with its
own policy. ``--fake-cloud`` answers at ``/api/cloud`` as a relay in front of a stand-in provider would (its
``/config``, and an OpenAI-compatible ``/chat/completions`` with a fixed reply, streamed or whole): a site
whose relay sits on the same origin, as behind a reverse proxy. The tests of the real relay and real
providers are elsewhere (tests/browser/test_cloud.py).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import re
import sys
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

REPO = Path(__file__).resolve().parents[1]
#: what the stand-in provider answers
FAKE_REPLY = "The relay answered: Paris."
FAKE_MODEL = "stand-in-cloud-model"

MIME = {
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
    ".whl": "application/zip",
}
for ext, mime in MIME.items():
    mimetypes.add_type(mime, ext)


async def complete(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    usage = {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}
    if not body.get("stream"):
        return web.json_response(
            {
                "id": "fake",
                "object": "chat.completion",
                "model": FAKE_MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": FAKE_REPLY},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for piece in re.findall(r"\S+\s*", FAKE_REPLY):
        chunk = {
            "id": "fake",
            "object": "chat.completion.chunk",
            "model": FAKE_MODEL,
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
    final = {
        "id": "fake",
        "object": "chat.completion.chunk",
        "model": FAKE_MODEL,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": usage,
    }
    await resp.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
    return resp


def read_headers_file(text: str) -> list[tuple[str, dict[str, str]]]:
    """A ``_headers`` file (Netlify / Cloudflare Pages): path patterns (``*`` matches anything), each with
    its indented ``Name: value`` lines."""
    rules: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            rules.append((line.strip(), {}))
        else:
            name, value = line.strip().split(":", 1)
            rules[-1][1][name.strip()] = value.strip()
    return rules


def headers_for(rules: list[tuple[str, dict[str, str]]], path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pattern, headers in rules:
        if re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), path):
            out.update(headers)  # later rules override earlier ones, as on those hosts
    return out


def make_app(
    root: Path,
    headers: dict[str, str],
    *,
    fake_cloud: bool = False,
    rules: list[tuple[str, dict[str, str]]] | None = None,
) -> web.Application:
    root = root.resolve()

    @web.middleware
    async def add_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        extra = {**headers_for(rules or [], request.path), **headers}
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(extra)
            raise
        resp.headers.update(extra)
        return resp

    async def static(request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        path = (root / rel).resolve()
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file() or not path.is_relative_to(root):
            raise web.HTTPNotFound()
        resp = web.FileResponse(path)
        ctype, _ = mimetypes.guess_type(path.name)
        if ctype:
            resp.content_type = ctype
        return resp

    app = web.Application(middlewares=[add_headers])
    if fake_cloud:

        async def config(_: web.Request) -> web.Response:
            return web.json_response(
                {
                    "available": True,
                    "kind": "openai",
                    "model": FAKE_MODEL,
                    "label": "a stand-in provider behind the relay",
                    "base_url": "/api/cloud",
                    "has_key": False,
                }
            )

        app.router.add_get("/api/cloud/config", config)
        app.router.add_post("/api/cloud/chat/completions", complete)
    app.router.add_get("/{path:.*}", static)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--header", action="append", default=[], help="'Name: value', added to every response"
    )
    parser.add_argument("--fake-cloud", action="store_true")
    parser.add_argument(
        "--headers-file", type=Path, default=None, help="apply a _headers file (Netlify syntax)"
    )
    args = parser.parse_args(argv)
    headers = dict(h.split(": ", 1) for h in args.header)
    rules = read_headers_file(args.headers_file.read_text()) if args.headers_file else None
    print(f"serving {args.dir} on http://127.0.0.1:{args.port}/", file=sys.stderr, flush=True)
    web.run_app(
        make_app(args.dir, headers, fake_cloud=args.fake_cloud, rules=rules),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
