"""The report stage, split by what each part does: ``inputs`` (metrics + training records), ``summary`` (mean ±
std over seeds beside the published figures, ``summary.csv``), ``document`` (the document model), ``render``
(Markdown and self-contained HTML), ``figures`` (plots), ``sections`` (what the report says), ``build`` (one
dataset's report, written atomically), ``published`` (the papers' figures). The CLI is ``flows/report.py``."""

from tasks.report.build import build_report
from tasks.report.inputs import collect_runs
from tasks.report.summary import metric_sort_key, summarize, verdict, write_summary_csv

__all__ = ["build_report", "collect_runs", "metric_sort_key", "summarize", "verdict", "write_summary_csv"]
