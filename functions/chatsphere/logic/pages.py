"""Self-contained HTML pages (the record of processing's `?format=html`, an export's index.html): inline CSS only,
no script, no font, no image, no link to anything outside the page, and every text html-escaped, since tenant and
personal text is in them. A browser opens them offline; CONTENT_SECURITY_POLICY forbids anything else."""

from __future__ import annotations

import html
from collections.abc import Iterable

# A page served with it loads nothing: no script, image, font, frame or connection; its own <style> only.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;"
    "color:#111}h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.3rem .5rem;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}.text{white-space:pre-wrap;overflow-wrap:anywhere}"
    ".flag{color:#8a1c00;font-weight:bold}"
)


def esc(value: object) -> str:
    """Any value as HTML text: quotes escaped too, so it is safe in an attribute as well."""
    return html.escape("" if value is None else str(value), quote=True)


def head(title: str) -> str:
    """The page up to its <body>: the CSP as a meta tag too (a file opened from disk has no header)."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CONTENT_SECURITY_POLICY)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{esc(title)}</h1>\n"
    )


TAIL = "</body>\n</html>\n"


def section(title: str, *parts: str) -> str:
    return f"<section>\n<h2>{esc(title)}</h2>\n{''.join(parts)}</section>\n"


def paragraph(text: str) -> str:
    return f"<p>{esc(text)}</p>\n"


def table(columns: Iterable[str], rows: Iterable[Iterable[object]], css: dict[int, str] | None = None) -> str:
    """A table of escaped cells; `css` gives a column (by its index) a class."""
    classes = css or {}
    header = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="{classes[i]}">{esc(v)}</td>' if i in classes else f"<td>{esc(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>\n")
    return f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{''.join(body)}</tbody>\n</table>\n"


def items(values: Iterable[object]) -> str:
    return "<ul>\n" + "".join(f"<li>{esc(v)}</li>\n" for v in values) + "</ul>\n"
