"""What an HTML page would load or run, read by a parser (not by searching the text, in which an escaped tenant
text may well say "https://"): the tags it has, and every attribute or style that names a resource."""

from __future__ import annotations

import re
from html.parser import HTMLParser

LOADING_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background", "ping"}
CSS_URL = re.compile(r"url\(|@import", re.IGNORECASE)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.references: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in LOADING_ATTRIBUTES or name.startswith("on"):
                self.references.append(f"{tag}[{name}]={value}")
            if name == "style" and value and CSS_URL.search(value):
                self.references.append(f"{tag}[style]={value}")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and CSS_URL.search(data):
            self.references.append(f"style: {data}")


def read(page: str) -> tuple[list[str], list[str]]:
    """The page's tags in order, and whatever in it would load a resource or run code."""
    reader = _Reader()
    reader.feed(page)
    reader.close()
    return reader.tags, reader.references


def assert_self_contained(page: str) -> None:
    tags, references = read(page)
    assert references == [], references
    assert not {"script", "link", "img", "iframe", "object", "embed", "base", "form"} & set(tags), sorted(set(tags))
