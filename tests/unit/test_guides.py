"""The guides in docs/ and the README that links them: every link (and its #anchor) resolves, the README
links every page, the errors guide names every error, each quote of an example file is in that file (the
file is what a test runs), and only the runnable guides hold code that runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.guides import DOCS, FENCE, GUIDES, README, REPO, RUNNABLE, blocks, runnable_js


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


def anchors(path: Path) -> set[str]:
    """The #anchors GitHub gives the page's headings (code blocks left out)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, re.M)
    }


def relative_links(path: Path) -> list[tuple[Path, str]]:
    """(target file, anchor or "") of each relative link of a Markdown page, code blocks left out."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    found = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        found.append(((path.parent / file).resolve() if file else path, anchor))
    return found


def test_anchors_are_githubs() -> None:
    assert "counting-stats" in anchors(DOCS / "api.md")
    assert "the-seeds-workload" in anchors(DOCS / "measurements.md")


@pytest.mark.parametrize("page", [*GUIDES, "README"])
def test_links_resolve(page: str) -> None:
    path = README if page == "README" else DOCS / f"{page}.md"
    for target, anchor in relative_links(path):
        assert target.exists(), f"{path.name} links to {target}"
        if anchor:
            assert anchor in anchors(target), f"{path.name} links to {target.name}#{anchor}: no such heading"


def test_every_page_of_docs_is_a_guide_and_the_readme_links_it() -> None:
    pages = {path.stem for path in DOCS.glob("*.md")}
    assert pages == set(GUIDES), "tests/guides.py GUIDES must list every page of docs/"
    linked = {target for target, _ in relative_links(README)}
    for page in pages:
        assert (DOCS / f"{page}.md").resolve() in linked, f"the README does not link docs/{page}.md"


def test_the_readme_is_a_readme() -> None:
    """What a newcomer needs first, short: the reference and the measurements live in docs/."""
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[:2] == ["The two commands", "Three ways to use it"], headings
    assert "Where to read on" in headings
    assert "./hr run" in text and "./hr test" in text
    for block in FENCE.finditer(text):  # no run code: the guides' blocks are the ones tests run
        assert block.group(1) != "js" or "shown" in block.group(2).split(), block.group(0)


@pytest.mark.parametrize("guide", [g for g in GUIDES if g not in RUNNABLE])
def test_only_the_runnable_guides_hold_code_that_runs(guide: str) -> None:
    """A ```js block elsewhere would be run by nothing: it says ``shown`` or ``file=PATH``."""
    assert runnable_js(guide).strip() == "", f"{guide}.md has a ```js block that no test runs"


@pytest.mark.parametrize("guide", GUIDES)
def test_quoted_example_files_hold_the_quote(guide: str) -> None:
    def norm(text: str) -> str:
        return "\n".join(line.strip() for line in text.splitlines() if line.strip())

    for block in blocks(guide):
        if block.file:
            path = REPO / block.file
            assert path.is_file(), block.file
            assert norm(block.code) in norm(path.read_text()), f"{guide}.md quotes {block.file} wrongly"


@pytest.mark.parametrize("guide", RUNNABLE)
def test_the_runnable_guides_have_code(guide: str) -> None:
    code = runnable_js(guide)
    assert code.count("import { HybridRouter") == 1 and "await HybridRouter.create(" in code
