"""The code of the guides in docs/: fenced blocks read out of the Markdown, for the tests that run them.

A ```js block of a RUNNABLE guide is code a page runs (tests/browser/test_guides.py); a ```js file=PATH
block quotes a file of the repository that a test runs (tests/unit/test_guides.py checks that the quote
is in it); a ```js shown block (a summary of calls, as in api.md and the README) and other blocks (sh,
text, python) are shown, not run; the ```nginx block is run by tests/browser/test_nginx.py. The README
holds no run code: it links the pages (tests/unit/test_guides.py checks that it links every one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README = REPO / "README.md"
#: every page of docs/ (a new page is added here: tests/unit/test_guides.py checks the list is whole)
GUIDES = (
    "quick-start",
    "embedding",
    "deploying",
    "routing",
    "offline",
    "errors",
    "api",
    "relay",
    "models",
    "learned-router",
    "quality",
    "personal-data",
    "building",
    "testing",
    "measurements",
    "ARCHITECTURE",
)
#: the guides whose ```js blocks run in a page (tests/browser/test_guides.py runs each of them)
RUNNABLE = ("quick-start", "routing", "offline", "errors")
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Block:
    lang: str
    info: str
    code: str

    @property
    def file(self) -> str | None:
        m = re.search(r"file=(\S+)", self.info)
        return m.group(1) if m else None

    @property
    def shown(self) -> bool:
        """A block shown, never run (``shown`` in its info string)."""
        return "shown" in self.info.split()


def blocks(guide: str) -> list[Block]:
    text = (DOCS / f"{guide}.md").read_text(encoding="utf-8")
    return [Block(m.group(1), m.group(2).strip(), m.group(3)) for m in FENCE.finditer(text)]


def runnable_js(guide: str) -> str:
    """The guide's runnable JS blocks as one module (an import repeated by a later block kept once)."""
    seen: set[str] = set()
    lines = []
    for block in blocks(guide):
        if block.lang != "js" or block.file or block.shown:
            continue
        for line in block.code.splitlines():
            if line.startswith("import "):
                if line in seen:
                    continue
                seen.add(line)
            lines.append(line)
    return "\n".join(lines) + "\n"
