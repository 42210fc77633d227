"""Every relative link in README.md and docs/*.md resolves: the file exists, and a `#fragment` names a heading
of the page it points to (GitHub's anchors: lower-cased, punctuation dropped, spaces as hyphens)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from infra import template

ROOT = template.ROOT
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!\\)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def prose(text: str) -> str:
    """The page without its code blocks and code spans, where brackets are code, not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: markup and punctuation dropped (hyphens and underscores stay), spaces to -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = anchor(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text(encoding="utf-8")))


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)  # http:, https:, mailto: are not checked


def broken(page: Path, root: Path = ROOT) -> list[str]:
    wrong = []
    for target in filter(relative, links(page)):
        path, _, fragment = target.partition("#")
        resolved = (page.parent / unquote(path)).resolve() if path else page
        if not resolved.exists():
            wrong.append(f"{target}: no such file")
        elif not resolved.is_relative_to(root):
            wrong.append(f"{target}: outside the repository")
        elif fragment and (resolved.suffix != ".md" or unquote(fragment) not in anchors(resolved)):
            wrong.append(f"{target}: no heading #{fragment} in {resolved.relative_to(root)}")
    return wrong


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken(page) == []


def test_the_readme_links_every_page_of_docs() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in filter(relative, links(ROOT / "README.md"))}
    assert sorted(p.name for p in PAGES[1:] if p.resolve() not in linked) == []


def test_the_anchors_are_githubs() -> None:
    assert anchor("Knowing when a request is done, and why it failed") == (
        "knowing-when-a-request-is-done-and-why-it-failed"
    )
    assert anchor("Deletion (erasure)") == "deletion-erasure"
    assert anchor("Benchmarks: `make bench` and its figures") == "benchmarks-make-bench-and-its-figures"
    assert anchor("Known limits (today)") == "known-limits-today"


def test_a_broken_link_and_a_missing_heading_are_found(tmp_path: Path) -> None:
    """The check on a page that is wrong, beside one that is right: it must tell them apart."""
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A section, with (notes)\n", encoding="utf-8")
    page.write_text(
        "# Page\n[ok](other.md#a-section-with-notes) [self](#page) [web](https://example.com/x)\n"
        "[gone](missing.md) [no heading](other.md#nothing)\n`[code](missing.md)`\n```\n[fenced](missing.md)\n```\n",
        encoding="utf-8",
    )
    assert broken(page, root=tmp_path) == [
        "missing.md: no such file",
        "other.md#nothing: no heading #nothing in other.md",
    ]
    assert broken(page, root=tmp_path / "elsewhere") == [
        "other.md#a-section-with-notes: outside the repository",
        "#page: outside the repository",
        "missing.md: no such file",
        "other.md#nothing: outside the repository",
    ]
