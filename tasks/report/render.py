"""Renderers of the document model: Markdown (figures as files) and self-contained HTML (figures inlined)."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from tasks.report.document import Block, Bullets, Code, Doc, Heading, Inline, Link, Paragraph, Table


def render_markdown(doc: Doc) -> str:
    out: list[str] = []
    for block in doc.blocks:
        out.append(_md_block(block))
    return "\n\n".join(out).rstrip() + "\n"


def _md_inline(parts: Sequence[Inline]) -> str:
    text = []
    for p in parts:
        if isinstance(p, Code):
            text.append(f"`{p.text}`")
        elif isinstance(p, Link):
            text.append(f"[{p.text}]({p.href})")
        else:
            text.append(p)
    return "".join(text)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Paragraph):
        return _md_inline(block.parts)
    if isinstance(block, Bullets):
        return "\n".join(f"- {_md_inline(item)}" for item in block.items)
    if isinstance(block, Table):
        lines = [
            "| " + " | ".join(_md_cell(h) for h in block.header) + " |",
            "|" + "|".join("---" for _ in block.header) + "|",
        ]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    return f"![{block.alt}](figures/{block.name})"


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; }
"""


def render_html(doc: Doc, title: str) -> str:
    body = "\n".join(_html_block(b, doc.figures) for b in doc.blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _html_inline(parts: Sequence[Inline]) -> str:
    text = []
    for p in parts:
        if isinstance(p, Code):
            text.append(f"<code>{html.escape(p.text)}</code>")
        elif isinstance(p, Link):
            text.append(f'<a href="{html.escape(p.href, quote=True)}">{html.escape(p.text)}</a>')
        else:
            text.append(html.escape(p))
    return "".join(text)


def _html_block(block: Block, figures: dict[str, bytes]) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_html_inline(block.parts)}</p>"
    if isinstance(block, Bullets):
        items = "".join(f"<li>{_html_inline(item)}</li>" for item in block.items)
        return f"<ul>{items}</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in block.rows)
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>{rows}</tbody>\n</table>"
    data = base64.b64encode(figures[block.name]).decode("ascii")
    alt = html.escape(block.alt, quote=True)
    return (
        f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(block.alt)}</figcaption></figure>"
    )
