"""The default cloud tier as a row of the harness, stated as a stand-in.

Where no cloud provider is configured, ``./hr run`` starts llama-server with Qwen2.5-Coder-0.5B-Instruct
(the pinned Q4_K_M GGUF, ``builder/pins_llama.py``) as the cloud side. Its answers to the sets' prompts are
asked here the way the relay asks: ``POST /v1/chat/completions`` with the prompt as the one user message,
the set's token budget and temperature 0 (greedy), the model's own chat template (``--jinja``). They are
scored by the same verdicts as the device's answers and kept in the same answer cache, keyed by the GGUF
file's pinned sha256. It is not a frontier model: the row says what the default tier gives, not what a
paid API would.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from eval.quality.generate import Answer, AnswerCache, ChatModel
from eval.quality.sets import Item

#: the row's name in the tables (its answer-cache folder too)
ROW_ID = "cloud-tier"
#: how the tables describe it
LABEL = "cloud tier, a stand-in: Qwen2.5-Coder-0.5B-Instruct on llama-server"


def model() -> ChatModel:
    """The default cloud tier as a :class:`ChatModel` (its file the pinned GGUF, which keys the cache)."""
    from builder.llama import gguf_path
    from builder.pins_llama import DEFAULT_GGUF, GGUFS

    pin = GGUFS[DEFAULT_GGUF]
    path = gguf_path(pin.name)
    return ChatModel(ROW_ID, path.parent, "Q4_K_M", path, pin.sha256)


def ask(url: str, alias: str, prompt: str, max_tokens: int, timeout_s: float = 600) -> Answer:
    """One greedy chat completion from an OpenAI-compatible server at ``url`` (ending in ``/v1``)."""
    body = {
        "model": alias,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    req = urllib.request.Request(
        url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        reply = json.load(resp)
    choice = reply["choices"][0]
    finish = "length" if choice.get("finish_reason") == "length" else "stop"
    tokens = int(reply.get("usage", {}).get("completion_tokens", 0))
    return Answer(choice["message"]["content"] or "", tokens, finish, time.perf_counter() - t0)


def answers(
    items: Sequence[Item], *, threads: int = 2, log: bool = True
) -> tuple[dict[str, Answer], float, int]:
    """``{item id: answer}`` from the cache or, for the rest, a llama-server started for them (the binary
    and the GGUF are built first where they are not); also the seconds spent and how many were new."""
    cache = AnswerCache(model())
    out = {i.id: a for i in items if (a := cache.get(i.prompt, i.max_tokens)) is not None}
    todo = [i for i in items if i.id not in out]
    if not todo:
        return out, 0.0, 0
    from builder.llama import LlamaServer, ensure_gguf, ensure_llama_server
    from builder.pins_llama import DEFAULT_GGUF, GGUFS

    ensure_llama_server()
    alias = GGUFS[DEFAULT_GGUF].alias
    t0 = time.perf_counter()
    with LlamaServer(
        Path(ensure_gguf(DEFAULT_GGUF)), alias=alias, threads=threads, extra_args=("--jinja",)
    ) as srv:
        srv.start()
        for n, item in enumerate(todo, 1):
            answer = ask(srv.url, alias, item.prompt, item.max_tokens)
            cache.put(item.prompt, item.max_tokens, answer)
            out[item.id] = answer
            if log and (n % 16 == 0 or n == len(todo)):
                print(
                    f"  {ROW_ID}: {n}/{len(todo)} new answers ({time.perf_counter() - t0:.0f} s)", flush=True
                )
    return out, time.perf_counter() - t0, len(todo)
