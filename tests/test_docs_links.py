"""Relative Markdown links in README.md and docs/*.md resolve to files; docs/index.md links every page."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.glob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
# [text](target) or [text](target "title"); images too. Nested brackets in the text are not used.
_INLINE = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# [label]: target
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
_EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every link outside fenced code blocks and code spans."""
    text = page.read_text(encoding="utf-8")
    # Blank out code but keep line numbers.
    text = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    text = _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), text)
    found: list[tuple[int, str]] = []
    for pattern in (_INLINE, _REFERENCE):
        for match in pattern.finditer(text):
            found.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return sorted(found)


def relative_file_links(page: Path) -> list[tuple[int, str, Path]]:
    out: list[tuple[int, str, Path]] = []
    for line, target in links(page):
        if _EXTERNAL.match(target) or target.startswith("#"):
            continue  # a URL, mailto:, or an anchor in the same page
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if not path:
            continue
        out.append((line, target, (page.parent / path).resolve()))
    return out


def test_pages_are_found() -> None:
    assert (ROOT / "README.md") in PAGES
    assert (DOCS / "index.md") in PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page: Path) -> None:
    broken = [
        f"{page.relative_to(ROOT)}:{line}: {target}"
        for line, target, resolved in relative_file_links(page)
        if not resolved.exists()
    ]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_docs_page_is_linked_from_the_index() -> None:
    index = DOCS / "index.md"
    linked = {resolved for _, _, resolved in relative_file_links(index)}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p != index and p.resolve() not in linked]
    assert not missing, f"docs pages not linked from docs/index.md: {missing}"


def test_the_link_finder_ignores_code(tmp_path: Path) -> None:
    sample = tmp_path / "sample.md"
    sample.write_text(
        "[a](a.md) `[b](b.md)`\n```\n[c](c.md)\n```\n[d]: d.md\n[e](https://x.example/e.md)\n",
        encoding="utf-8",
    )
    assert [t for _, t in links(sample)] == ["a.md", "d.md", "https://x.example/e.md"]
