"""The guides in docs/: they exist and link to each other, the errors guide names every error, and each
quote of an example file is in that file (the file is what a test runs)."""

from __future__ import annotations

import re

import pytest
from tests.guides import DOCS, GUIDES, REPO, blocks, runnable_js


def error_names() -> list[str]:
    text = (REPO / "web" / "errors.js").read_text()
    inside = text[text.index("ERROR_NAMES = Object.freeze([") :].split("])", 1)[0]
    return re.findall(r'"(\w+)"', inside)


def test_every_error_name_has_a_row_with_what_to_do() -> None:
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `(\w+)` \|(.*)$", (DOCS / "errors.md").read_text(), re.M)
    }
    names = error_names()
    assert len(names) >= 15
    for name in names:
        assert name in rows, f"docs/errors.md has no row for {name}"
        what, todo = (cell.strip() for cell in rows[name].split("|")[:2])
        assert what and len(todo) > 10, name


@pytest.mark.parametrize("guide", GUIDES)
def test_links_resolve(guide: str) -> None:
    text = (DOCS / f"{guide}.md").read_text()
    for target in re.findall(r"\]\(([^)#]+\.md)\)", text):
        assert (DOCS / target).is_file(), f"{guide}.md links to {target}"


@pytest.mark.parametrize("guide", GUIDES)
def test_quoted_example_files_hold_the_quote(guide: str) -> None:
    def norm(text: str) -> str:
        return "\n".join(line.strip() for line in text.splitlines() if line.strip())

    for block in blocks(guide):
        if block.file:
            path = REPO / block.file
            assert path.is_file(), block.file
            assert norm(block.code) in norm(path.read_text()), f"{guide}.md quotes {block.file} wrongly"


@pytest.mark.parametrize("guide", ["quick-start", "routing", "offline", "errors"])
def test_the_runnable_guides_have_code(guide: str) -> None:
    code = runnable_js(guide)
    assert code.count("import { HybridRouter") == 1 and "await HybridRouter.create(" in code
