"""The device's answers to every item of the sets, from the answer cache or generated (in batches)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from eval.quality.generate import Answer, AnswerCache, ChatModel, Generator
from eval.quality.sets import Item

BATCH = 8
#: answered in blocks of the subset's order
BLOCK = 16


def answers(
    model: ChatModel, items: Sequence[Item], *, batch: int = BATCH, threads: int = 1, log: bool = True
) -> tuple[dict[str, Answer], float, int]:
    """``{item id: answer}`` for ``items``; also the seconds spent generating and how many were new."""
    cache = AnswerCache(model)
    out: dict[str, Answer] = {}
    todo: list[Item] = []
    for item in items:
        got = cache.get(item.prompt, item.max_tokens)
        if got is None:
            todo.append(item)
        else:
            out[item.id] = got
    if not todo:
        return out, 0.0, 0
    generator = Generator(model, threads=threads)
    t0 = time.perf_counter()
    # blocks of the subset's order (a run stopped early leaves a prefix answered), each sorted by length
    for block_start in range(0, len(todo), BLOCK):
        block = sorted(
            todo[block_start : block_start + BLOCK],
            key=lambda i: (i.max_tokens, len(generator.prompt_ids(i.prompt))),
        )
        for start in range(0, len(block), batch):
            for same in _by_budget(block[start : start + batch]).values():
                got = generator.answer_batch([i.prompt for i in same], same[0].max_tokens)
                for item, answer in zip(same, got, strict=True):
                    cache.put(item.prompt, item.max_tokens, answer)
                    out[item.id] = answer
        if log:
            done = min(block_start + BLOCK, len(todo))
            print(
                f"  {model.id}: {done}/{len(todo)} new answers ({time.perf_counter() - t0:.0f} s)", flush=True
            )
    return out, time.perf_counter() - t0, len(todo)


def _by_budget(items: Sequence[Item]) -> Mapping[int, list[Item]]:
    groups: dict[int, list[Item]] = {}
    for item in items:
        groups.setdefault(item.max_tokens, []).append(item)
    return groups
