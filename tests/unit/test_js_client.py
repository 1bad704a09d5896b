"""The JS client against the Python side: the error names it knows are exactly the ones the router raises."""

from __future__ import annotations

import re

from tests.harness import REPO

from hybrid_router import errors

#: names that only the client (a dead worker, a cancelled call) or the worker edge (a bug) produce
CLIENT_ONLY = {errors.ABORT_ERROR, "WorkerError", "InternalError"}


def js_error_names() -> list[str]:
    source = (REPO / "web" / "errors.js").read_text(encoding="utf-8")
    block = re.search(r"ERROR_NAMES = Object\.freeze\(\[(.*?)\]\)", source, re.S)
    assert block, "web/errors.js must define ERROR_NAMES = Object.freeze([...])"
    return re.findall(r'"([A-Za-z]+)"', block.group(1))


def python_error_names() -> set[str]:
    found: set[str] = set()
    todo = [errors.HybridRouterError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__ == errors.__name__:
                found.add(sub.__name__)
                todo.append(sub)
    return found


def test_error_names_match_the_python_error_tree() -> None:
    names = js_error_names()
    assert len(names) == len(set(names)), "a name is listed twice"
    assert set(names) == python_error_names() | CLIENT_ONLY


def test_every_python_error_is_in_the_documented_tree() -> None:
    doc = errors.__doc__ or ""
    assert all(name in doc for name in python_error_names())
