"""``reports/index.html``: the one page that links every dataset report, its Great Expectations Data Docs and every
experiment table (run or not yet run), self-contained like the pages it links (no CDN, nothing fetched).

Written by the report flow and by the experiment flow (each after its own pages), from what is on disk, so it is a
derived listing rather than a DVC output. ``check_page`` verifies a written page offline: every image decodes as a
PNG and every relative link resolves to a file; ``tasks.report.browser`` repeats the image check in a real
headless Chromium where one is installed.
"""

from __future__ import annotations

import base64
import html
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

from tasks.common.io import write_text
from tasks.report.document import Code, Doc, Link
from tasks.report.render import render_html, render_markdown

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _title(page: Path) -> str:
    m = re.search(r"<title>(.*?)</title>", page.read_text(encoding="utf-8", errors="replace"), re.S)
    return html.unescape(m.group(1)).strip() if m else page.parent.name


def build_index(root: Path) -> Doc:
    root = Path(root)
    reports = root / "reports"
    doc = Doc()
    doc.heading(1, "hybridrec — reports")
    doc.para("Every page below is self-contained (plots embedded, no external assets) and readable offline.")
    doc.heading(2, "Datasets")
    pages = sorted(p for p in reports.glob("*/report.html") if p.parent.name != "experiments")
    if not pages:
        doc.note("no dataset report yet: run `make run` (or `python -m flows.report` after training)")
    rows = []
    for page in pages:
        ds = page.parent.name
        items: list[str | Link] = [Link(ds, f"{ds}/report.html")]
        if (page.parent / "data_docs" / "index.html").exists():
            items += [" — ", Link("data validation (Great Expectations Data Docs)", f"{ds}/data_docs/index.html")]
        rows.append(tuple(items))
    if rows:
        doc.bullets(rows)
    if (reports / "summary.csv").exists():
        doc.para("Every run's metrics, mean ± std over seeds next to the published figure: ",
                 Link("summary.csv", "summary.csv"))  # fmt: skip
    doc.heading(2, "Experiments (the papers' tables)")
    ran = {p.parent.name: p for p in sorted((reports / "experiments").glob("*/index.html"))}
    names = sorted({p.stem for p in (root / "experiments").glob("*.yaml")} | set(ran))
    rows = []
    for name in names:
        if name in ran:
            rows.append((Link(_title(ran[name]), f"experiments/{name}/index.html"), " (",
                         Link("CSV", f"experiments/{name}/table.csv"), ")"))  # fmt: skip
        else:
            rows.append((f"{name}: not run yet — ", Code(f"python -m flows.experiment {name}")))
    if rows:
        doc.bullets(rows)
    else:
        doc.note("no experiment files in experiments/")
    return doc


def write_index(root: Path) -> Path:
    """Write ``reports/index.html`` (and ``index.md``) for what is on disk now."""
    doc = build_index(root)
    out = Path(root) / "reports"
    write_text(out / "index.md", render_markdown(doc))
    return write_text(out / "index.html", render_html(doc, "hybridrec — reports"))


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img" and a.get("src"):
            self.images.append(a["src"] or "")
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")
        for key in ("src", "href"):
            value = a.get(key) or ""
            if tag in ("script", "link", "img", "iframe") and urlparse(value).scheme in ("http", "https"):
                self.external.append(value)


def check_page(page: Path, follow: bool = True, _seen: set[Path] | None = None) -> list[str]:
    """Problems of a report page (and, with ``follow``, of the local HTML pages it links): an image that is not an
    embedded PNG that decodes, a relative link to a missing file, an asset fetched from the network."""
    seen = _seen if _seen is not None else set()
    page = page.resolve()
    if page in seen:
        return []
    seen.add(page)
    refs = _Refs()
    refs.feed(page.read_text(encoding="utf-8", errors="replace"))
    problems = [f"{page}: external asset {u}" for u in refs.external]
    for src in refs.images:
        if src.startswith("data:image/png;base64,"):
            try:
                data = base64.b64decode(src.split(",", 1)[1], validate=True)
            except ValueError:
                problems.append(f"{page}: an embedded image is not valid base64")
                continue
            if not data.startswith(PNG_MAGIC):
                problems.append(f"{page}: an embedded image is not a PNG")
        elif urlparse(src).scheme in ("", "file") and not (page.parent / unquote(urlparse(src).path)).is_file():
            problems.append(f"{page}: broken image {src}")
    for href in refs.links:
        url = urlparse(href)
        if url.scheme or href.startswith("#"):
            continue  # external links are the reader's to follow; anchors stay on the page
        target = (page.parent / unquote(url.path)).resolve()
        if not target.is_file():
            problems.append(f"{page}: broken link {href}")
        elif follow and target.suffix == ".html" and "data_docs" not in target.parts:
            problems += check_page(target, follow, seen)
    return problems
