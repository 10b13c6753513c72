"""Build one dataset's report (``reports/<dataset>/report.{md,html}`` + figures), written atomically."""

from __future__ import annotations

from pathlib import Path

from tasks.common.io import atomic_dir, write_text
from tasks.common.paths import Layout
from tasks.report.document import Doc
from tasks.report.inputs import _collect
from tasks.report.render import render_html, render_markdown
from tasks.report.sections import (
    _features_section,
    _problems_section,
    _results_section,
    _splits_section,
    _stats_section,
    _title_section,
    _unmatched_published_section,
    _validation_section,
)
from tasks.report.summary import summarize


def build_report(root: Path, dataset: str) -> dict[str, Path]:
    """Write reports/<dataset>/report.md, report.html and figures/*.png, keyed by path relative to the
    report directory (``report.md``, ``report.html``, ``figures/<name>.png``)."""
    root = Path(root)
    layout = Layout(root)
    runs, problems = _collect(root, dataset)
    summary = summarize(runs)
    doc = Doc()
    _title_section(doc, dataset)
    _stats_section(doc, root, layout, dataset)
    _validation_section(doc, root, layout, dataset)
    _features_section(doc, root, layout, dataset)
    _splits_section(doc, root, layout, dataset)
    _results_section(doc, root, runs, summary)
    _unmatched_published_section(doc, dataset, summary)
    _problems_section(doc, problems)
    return _write(doc, layout.report_dir(dataset), f"hybridrec report — {dataset}")


def _write(doc: Doc, out_dir: Path, title: str) -> dict[str, Path]:
    written: dict[str, Path] = {}
    with atomic_dir(out_dir / "figures") as tmp:
        for name, png in sorted(doc.figures.items()):
            (tmp / name).write_bytes(png)
    for name in sorted(doc.figures):
        written[f"figures/{name}"] = out_dir / "figures" / name
    written["report.md"] = write_text(out_dir / "report.md", render_markdown(doc))
    written["report.html"] = write_text(out_dir / "report.html", render_html(doc, title))
    return written
