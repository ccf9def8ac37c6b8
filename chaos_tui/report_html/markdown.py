"""Just enough Markdown for a runbook excerpt in a report: headings, paragraphs (their hard
line breaks joined, so the text wraps to the page), lists, tables, code blocks and inline
`code`. Everything is escaped first; nothing else of Markdown is needed by the runbooks."""

from __future__ import annotations

import re
from html import escape

_INLINE_CODE = re.compile(r"`([^`]+)`")
_ITEM = re.compile(r"^\s*(?:[-*]|\d+\.)\s+")


def inline(text: str) -> str:
    """Escaped, with `code` as <code> and **bold** as <b>."""
    html = _INLINE_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", escape(text, quote=False))
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", html)


def _table(rows: list[str]) -> str:
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    body = [r for r in cells[1:] if not all(set(c) <= set("-: ") for c in r)]
    head = "".join(f"<th>{inline(c)}</th>" for c in cells[0])
    rows_html = "".join(
        "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in body
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>"


def to_html(text: str) -> str:
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []
    ordered = False
    lines = text.splitlines()

    def flush() -> None:
        nonlocal items
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()
        if items:
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{inline(i)}</li>" for i in items) + f"</{tag}>")
            items = []

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            code = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            out.append(f"<pre>{escape(chr(10).join(code).strip(chr(10)))}</pre>")
        elif stripped.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out.append(_table(rows))
            continue
        elif stripped.startswith("#"):
            flush()
            level = min(6, len(stripped) - len(stripped.lstrip("#")) + 2)  # # -> h3
            out.append(f"<h{level}>{inline(stripped.lstrip('#').strip())}</h{level}>")
        elif not stripped:
            flush()
        elif _ITEM.match(line):
            if para:
                flush()
            ordered = stripped[0].isdigit()
            items.append(_ITEM.sub("", line))
        elif items:  # a list item's continuation line
            items[-1] += " " + stripped
        else:
            para.append(stripped)
        i += 1
    flush()
    return "".join(out)
