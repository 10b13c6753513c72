"""reports/index.html links every dataset page, its Data Docs and every experiment (run or not); the offline
checker catches a broken link, a broken embedded image and a network asset; a real headless Chromium renders every
image of a generated page (skipped where Chromium is not installed)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tasks.report.browser import browser_check, chromium
from tasks.report.document import Doc
from tasks.report.index import check_page, write_index
from tasks.report.render import render_html

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _page(path: Path, title: str) -> None:
    doc = Doc()
    doc.heading(1, title)
    doc.image("p.png", PNG, "a plot")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(doc, title), encoding="utf-8")


def _project(tmp: Path) -> Path:
    _page(tmp / "reports" / "ml-100k" / "report.html", "ml-100k report")
    _page(tmp / "reports" / "ml-100k" / "data_docs" / "index.html", "docs")
    _page(tmp / "reports" / "experiments" / "nrp-table4" / "index.html", "NRP Table 4")
    (tmp / "reports" / "experiments" / "nrp-table4" / "table.csv").write_text("model\n")
    (tmp / "experiments").mkdir()
    for name in ("nrp-table4", "gf-table2"):
        (tmp / "experiments" / f"{name}.yaml").write_text("{}\n")
    return tmp


def test_index_links_every_page_and_checks_clean(tmp_path: Path) -> None:
    index = write_index(_project(tmp_path))
    text = index.read_text()
    assert 'href="ml-100k/report.html"' in text and 'href="ml-100k/data_docs/index.html"' in text
    assert 'href="experiments/nrp-table4/index.html"' in text and "NRP Table 4" in text
    assert "gf-table2: not run yet" in text and "python -m flows.experiment gf-table2" in text
    assert check_page(index) == []


def test_checker_finds_broken_links_images_and_network_assets(tmp_path: Path) -> None:
    index = write_index(_project(tmp_path))
    (tmp_path / "reports" / "ml-100k" / "report.html").unlink()
    bad = tmp_path / "reports" / "experiments" / "nrp-table4" / "index.html"
    bad.write_text('<html><body><img src="data:image/png;base64,aGVsbG8="><img src="missing.png">'
                   '<script src="https://cdn.example.org/x.js"></script></body></html>')  # fmt: skip
    problems = "\n".join(check_page(index))
    assert "broken link ml-100k/report.html" in problems
    assert "not a PNG" in problems and "broken image missing.png" in problems and "external asset" in problems


@pytest.mark.skipif(chromium() is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_chromium_renders_every_image(tmp_path: Path) -> None:
    root = _project(tmp_path)
    page = root / "reports" / "ml-100k" / "report.html"
    assert browser_check(page) == []
    page.write_text(page.read_text().replace("base64,iVBOR", "base64,AAAAiVBOR"))  # corrupt the PNG
    problems = browser_check(page)
    assert problems and "image not rendered" in problems[0]
