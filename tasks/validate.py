"""Validate a dataset's canonical tables with Great Expectations (one suite per table).

``validate_tables`` runs the suites on pandas copies of the polars tables in an ephemeral GX context and
returns a plain, JSON-serialisable ``ValidationOutcome``; ``raise_on_failure`` turns failures into a
``ValidationFailed`` that names table, expectation and sample offending values. When ``docs_dir`` is
given, the Data Docs static site is (re)built there; the directory belongs to the site and is replaced.

great_expectations is imported inside the functions: its import takes seconds.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tasks.common.errors import ValidationFailed
from tasks.common.io import atomic_dir

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.expectations import Expectation

    from tasks.datasets.base import Dataset, DatasetSpec

SAMPLE = 10
SITE_NAME = "hybridrec"
ID_TABLES = {"user_ids": "user_idx", "item_ids": "item_idx"}
ID_TABLES_BY_IDX = {idx: table for table, idx in ID_TABLES.items()}
SIDE_TABLES = {"users": "user_idx", "items": "item_idx"}
# pandas dtype names (after ``DataFrame.to_pandas()``) of the canonical columns
RATING_TYPES = {"user_idx": "int32", "item_idx": "int32", "rating": "float32", "timestamp": "int64"}


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result on one table."""

    table: str
    expectation: str
    column: str | None
    success: bool
    details: str


@dataclass(frozen=True)
class ValidationOutcome:
    """All expectation results of one dataset."""

    dataset: str
    success: bool
    outcomes: list[ExpectationOutcome]
    data_docs_index: str | None

    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- public functions


def validate_tables(
    tables: dict[str, pl.DataFrame], spec: Dataset | DatasetSpec, docs_dir: Path | None
) -> ValidationOutcome:
    """Run the canonical-table suites; write Data Docs under ``docs_dir`` when given."""
    missing = [name for name in (*ID_TABLES, *SIDE_TABLES, "ratings") if name not in tables]
    if missing:
        raise ValidationFailed(f"dataset {spec.name!r}: canonical tables missing: {missing}")
    with _quiet():
        suites = build_suites(tables, spec)
        context = _make_context(docs_dir)
        source = context.data_sources.add_pandas("pandas")
        outcomes: list[ExpectationOutcome] = []
        for table, expectations in suites.items():
            frame = _to_pandas(tables[table])
            outcomes += _run_suite(context, source, f"{spec.name}.{table}", frame, expectations, table)
        index = _build_docs(context, docs_dir) if docs_dir is not None else None
    return ValidationOutcome(spec.name, all(o.success for o in outcomes), outcomes, index)


def raise_on_failure(outcome: ValidationOutcome) -> None:
    """Raise ``ValidationFailed`` listing every failed expectation with sample offending values."""
    failed = outcome.failures()
    if not failed:
        return
    lines = [f"dataset {outcome.dataset!r}: {len(failed)} expectation(s) failed"]
    for f in failed:
        col = f" column {f.column!r}" if f.column else ""
        lines.append(f"- table {f.table!r}{col}: {f.expectation}: {f.details}")
    if outcome.data_docs_index:
        lines.append(f"Data Docs: {outcome.data_docs_index}")
    raise ValidationFailed("\n".join(lines))


# ---------------------------------------------------------------- suites


def build_suites(tables: dict[str, pl.DataFrame], spec: Dataset | DatasetSpec) -> dict[str, list[Expectation]]:
    """Expectations per table name, in the order they are reported."""
    n_users, n_items = tables["user_ids"].height, tables["item_ids"].height
    return {
        "ratings": ratings_suite(tables, spec, n_users, n_items),
        "users": side_suite(tables["users"], "user_idx", n_users, [f.column for f in spec.user_side]),
        "items": side_suite(tables["items"], "item_idx", n_items, [f.column for f in spec.item_side]),
        "user_ids": ids_suite("user_idx", n_users, spec.expected.users),
        "item_ids": ids_suite("item_idx", n_items, spec.expected.items),
        **({"predefined": predefined_suite(tables, n_users, n_items)} if "predefined" in tables else {}),
        **({"negatives": negatives_suite(tables, n_users, n_items)} if "negatives" in tables else {}),
    }


def predefined_suite(tables: dict[str, pl.DataFrame], n_users: int, n_items: int) -> list[Expectation]:
    """predefined: one row per rating, parts train/test, indices in range."""
    import great_expectations as gx

    gxe = gx.expectations
    n = tables["ratings"].height
    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=["user_idx", "item_idx", "part"], exact_match=True),
        *_not_null(["user_idx", "item_idx", "part"]),
        gxe.ExpectTableRowCountToBeBetween(min_value=n, max_value=n, description=f"one row per rating ({n})"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["user_idx", "item_idx"]),
        gxe.ExpectColumnValuesToBeInSet(column="part", value_set=["train", "test"]),
        _index_range("user_idx", n_users, "user_ids"),
        _index_range("item_idx", n_items, "item_ids"),
    ]


def negatives_suite(tables: dict[str, pl.DataFrame], n_users: int, n_items: int) -> list[Expectation]:
    """negatives: indices in range, listed for test users only (quirks such as a listed positive are kept)."""
    import great_expectations as gx

    gxe = gx.expectations
    test_users: list[int] = []
    if "predefined" in tables:
        test_users = tables["predefined"].filter(pl.col("part") == "test")["user_idx"].unique().sort().to_list()
    out: list[Expectation] = [
        *_not_null(["user_idx", "item_idx"]),
        _index_range("user_idx", n_users, "user_ids"),
        _index_range("item_idx", n_items, "item_ids"),
    ]
    if test_users:
        out.append(
            gxe.ExpectColumnDistinctValuesToEqualSet(
                column="user_idx", value_set=test_users, description="negatives listed for exactly the test users"
            )
        )
    return out


def ratings_suite(
    tables: dict[str, pl.DataFrame], spec: Dataset | DatasetSpec, n_users: int, n_items: int
) -> list[Expectation]:
    """ratings: schema, no nulls, scale, unique pairs, index ranges, counts, referential integrity."""
    import great_expectations as gx

    gxe = gx.expectations
    lo, hi = spec.rating_scale
    types = dict(RATING_TYPES)
    if "weight" in tables["ratings"].columns:
        types["weight"] = "float32"
    out: list[Expectation] = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(types), exact_match=True),
        *_type_checks(types),
        *_not_null(list(types)),
        gxe.ExpectTableRowCountToBeBetween(min_value=spec.expected.ratings[0], max_value=spec.expected.ratings[1]),
        gxe.ExpectColumnValuesToBeBetween(
            column="rating",
            min_value=float(lo),
            max_value=float(hi),
            description=f"rating within the dataset's scale [{lo}, {hi}]",
        ),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["user_idx", "item_idx"], description="each (user, item) pair rated at most once"
        ),
        _index_range("user_idx", n_users, "user_ids"),
        _index_range("item_idx", n_items, "item_ids"),
        _every_index_used("user_idx", n_users),
        _every_index_used("item_idx", n_items - _candidate_only_items(tables), "negatives"),
        _present_in(tables["items"], "item_idx", n_items, "items"),
    ]
    if "weight" in types:
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="weight", min_value=0.0, strict_min=True, description="implicit strength (count) > 0"
            )
        )
    if len(tables["users"].columns) > 1:
        out.append(_present_in(tables["users"], "user_idx", n_users, "users"))
    return out


def side_suite(df: pl.DataFrame, idx: str, n: int, side_columns: Sequence[str]) -> list[Expectation]:
    """users / items: the index column plus arbitrary side attributes (every column non-null)."""
    import great_expectations as gx

    gxe = gx.expectations
    required = [idx, *(c for c in side_columns if c != idx)]
    return [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=required,
            exact_match=False,
            description=f"at least {idx} and the dataset's declared side fields",
        ),
        *_type_checks({idx: "int32"}),
        *_not_null(df.columns),
        gxe.ExpectColumnValuesToBeUnique(column=idx, description=f"one row per {idx}"),
        _index_range(idx, n, ID_TABLES_BY_IDX[idx]),
    ]


def ids_suite(idx: str, n: int, bounds: tuple[int, int]) -> list[Expectation]:
    """user_ids / item_ids: idx unique and in [0, n-1] (hence contiguous), raw_id unique."""
    import great_expectations as gx

    gxe = gx.expectations
    entity = idx.split("_")[0]
    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=[idx, "raw_id"], exact_match=True),
        *_type_checks({idx: "int32", "raw_id": "str"}),
        *_not_null([idx, "raw_id"]),
        gxe.ExpectTableRowCountToBeBetween(
            min_value=bounds[0],
            max_value=bounds[1],
            description=f"number of {entity}s within the dataset's expected bounds",
        ),
        gxe.ExpectColumnValuesToBeUnique(column=idx),
        gxe.ExpectColumnValuesToBeBetween(
            column=idx,
            min_value=0,
            max_value=n - 1,
            description=f"{idx} contiguous 0..{n - 1} (unique, in range, {n} rows)",
        ),
        gxe.ExpectColumnValuesToBeUnique(column="raw_id", description=f"one index per raw {entity} id"),
    ]


def _type_checks(types: dict[str, str]) -> list[Expectation]:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeOfType(column=c, type_=t, description=f"dtype {t}")
        for c, t in types.items()
    ]


def _not_null(columns: Sequence[str]) -> list[Expectation]:
    import great_expectations as gx

    return [gx.expectations.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def _index_range(idx: str, n: int, ids_table: str) -> Expectation:
    import great_expectations as gx

    return gx.expectations.ExpectColumnValuesToBeBetween(
        column=idx,
        min_value=0,
        max_value=max(n - 1, 0),
        description=f"{idx} in [0, {n - 1}] ({n} rows in {ids_table})",
    )


def _every_index_used(idx: str, n: int, unless: str | None = None) -> Expectation:
    import great_expectations as gx

    exempt = f" (those listed only in {unless} excepted)" if unless else ""
    return gx.expectations.ExpectColumnUniqueValueCountToBeBetween(
        column=idx,
        min_value=n,
        max_value=n,
        description=f"every indexed {idx.split('_')[0]} has at least one rating{exempt} ({n} distinct)",
    )


def _candidate_only_items(tables: dict[str, pl.DataFrame]) -> int:
    """Items indexed only because a published negative list names them (DeepCF sizes items over all files)."""
    if "negatives" not in tables:
        return 0
    rated = tables["ratings"].select("item_idx").unique()
    return tables["negatives"].select("item_idx").unique().join(rated, on="item_idx", how="anti").height


def _present_in(side: pl.DataFrame, idx: str, n: int, table: str) -> Expectation:
    """Every rated id is present in ``side``, expressed with the smaller value_set.

    Usually as NOT-in-set of the ids in [0, n-1] absent from ``side`` (empty when valid): GX
    re-serialises a value_set many times per run, seconds per 10k values, so a full in-set list of
    every present id would not scale. When most ids are absent, the in-set list of present ids is shorter.
    """
    import great_expectations as gx

    ids = pl.Series(idx, range(n), dtype=pl.Int64)
    present = side[idx].cast(pl.Int64, strict=False) if idx in side.columns else ids.clear()
    present = present.drop_nulls().unique().sort()
    absent = ids.filter(~ids.is_in(present.implode()))
    what = f"every rated {idx.split('_')[0]} is present in {table}"
    if len(absent) <= len(present):
        return gx.expectations.ExpectColumnValuesToNotBeInSet(
            column=idx, value_set=absent.to_list(), description=f"{what} (value_set: ids absent from it)"
        )
    return gx.expectations.ExpectColumnValuesToBeInSet(
        column=idx, value_set=present.to_list(), description=f"{what} (value_set: ids it holds)"
    )


# ---------------------------------------------------------------- running


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence GX's logging and warnings for the duration; analytics off."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logger = logging.getLogger("great_expectations")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _make_context(docs_dir: Path | None) -> Any:
    """An ephemeral (in-memory) context, progress bars off, with a docs site when asked for."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites[SITE_NAME] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": "."},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _run_suite(
    context: Any, source: Any, name: str, df: pd.DataFrame, expectations: list[Expectation], table: str
) -> list[ExpectationOutcome]:
    """Run one table's suite on ``df`` (results land in the context's store for Data Docs)."""
    import great_expectations as gx

    batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for e in expectations:
        suite.add_expectation(e)
    vd = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    result = vd.run(
        batch_parameters={"dataframe": df},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE},
    )
    order = {e.id: i for i, e in enumerate(suite.expectations)}
    rows = sorted(result.results, key=lambda r: order.get(r.expectation_config.id, len(order)))
    return [_outcome(table, r, set(df.columns)) for r in rows]


def _build_docs(context: Any, docs_dir: Path) -> str:
    """Build the site in a temp dir next to ``docs_dir`` and swap it in; return index.html's path."""
    with atomic_dir(docs_dir) as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it private; the site is meant to be read
        site = context.variables.data_docs_sites[SITE_NAME]
        site["store_backend"]["base_directory"] = str(tmp)
        context.update_data_docs_site(SITE_NAME, site)
        context.build_data_docs(site_names=[SITE_NAME])
        if not (tmp / "index.html").is_file():
            raise ValidationFailed(f"Great Expectations wrote no Data Docs index under {docs_dir}")
        make_docs_offline(tmp)
    return str(docs_dir / "index.html")


EXTERNAL_TAG = re.compile(
    r"<link\b[^>]*\bhref=[\"']https?://[^>]*>|<script\b[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>"
    r"|<img\b[^>]*\bsrc=[\"']https?://[^>]*>",
    re.I,
)
# what the CDN stylesheets (Bootstrap 4, bootstrap-table, Font Awesome) did for the pages' layout, in a few rules
OFFLINE_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0; }
.container, .container-fluid { max-width: 1200px; margin: 0 auto; padding: 0 1em; }
.row { display: flex; flex-wrap: wrap; } .col, [class*="col-"] { flex: 1 1 0; padding: 0 .75em; min-width: 0; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
.table-striped tbody tr:nth-child(odd) td { background: #fafafa; }
.card { border: 1px solid #ddd; border-radius: 4px; margin: .8em 0; padding: .5em 1em; }
.badge { display: inline-block; padding: 0 .4em; border-radius: 3px; background: #eee; font-size: .85em; }
.text-success, .fa-check-circle { color: #1a7f37; } .text-danger, .fa-times { color: #c62828; }
.navbar { background: #263238; color: #fff; padding: .5em 1em; } .navbar a { color: #fff; }
.collapse:not(.show) { display: block; } .d-none { display: none; } .sr-only { display: none; }
.list-group { list-style: none; padding-left: 0; } a { color: #1565c0; }
"""


def make_docs_offline(site_dir: Path) -> int:
    """Drop every stylesheet / script / image the Data Docs pages load from a CDN (Bootstrap, jQuery, Vega, the GX
    logo ...: unreachable
    offline, and a page waiting on them renders unstyled) and inline GX's own default stylesheet plus a few layout
    rules instead, so the pages read the same with no network. Returns the number of pages rewritten."""
    from great_expectations.render.view import __file__ as view_file

    gx_css = (Path(view_file).parent / "static" / "styles" / "data_docs_default_styles.css").read_text(encoding="utf-8")
    style = f"<style>{OFFLINE_CSS}\n{gx_css}</style>"
    n = 0
    for page in site_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        cleaned = EXTERNAL_TAG.sub("", text)
        cleaned = cleaned.replace("</head>", style + "</head>", 1)
        page.write_text(cleaned, encoding="utf-8")
        n += 1
    return n


def _to_pandas(df: pl.DataFrame) -> pd.DataFrame:
    """pandas copy for GX; nested columns (e.g. list[str] genres) become text, nulls kept."""
    nested = [c for c, t in df.schema.items() if t.is_nested()]
    if nested:
        df = df.with_columns(_nested_as_text(c, df.schema[c]) for c in nested)
    return df.to_pandas()


def _nested_as_text(column: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(column)
    if isinstance(dtype, pl.Array):
        col, dtype = col.arr.to_list(), pl.List(dtype.inner)
    if isinstance(dtype, pl.List) and dtype.inner is not None and not dtype.inner.is_nested():
        return col.list.eval(pl.element().cast(pl.String)).list.join("|").alias(column)
    if isinstance(dtype, pl.Struct):
        return col.struct.json_encode().alias(column)
    return pl.when(col.is_null()).then(pl.lit(None, pl.String)).otherwise(pl.lit("<nested>")).alias(column)


# ---------------------------------------------------------------- result → outcome


def _outcome(table: str, r: Any, columns: set[str]) -> ExpectationOutcome:
    cfg = r.expectation_config
    kwargs = cfg.kwargs
    names = [kwargs["column"]] if "column" in kwargs else list(kwargs.get("column_list") or [])
    parts = [cfg.description] if cfg.description else []
    absent = [c for c in names if c not in columns]
    if absent:
        parts.append(f"column(s) {absent} not in the table")
    else:
        parts += [f"error: {m}" for m in _errors(r.exception_info)]
    parts += _details(r)
    return ExpectationOutcome(table, cfg.type, ", ".join(names) or None, bool(r.success), "; ".join(parts))


def _errors(info: Any) -> list[str]:
    """Exception messages from a result's exception_info (flat, or keyed by metric in GX 1.x)."""
    if not info or not hasattr(info, "get"):
        return []
    if info.get("raised_exception"):
        return [str(info.get("exception_message"))]
    nested = [v for v in info.values() if hasattr(v, "get") and v.get("raised_exception")]
    return [str(v.get("exception_message")) for v in nested]


def _details(r: Any) -> list[str]:
    """Observed value, or unexpected count with sample values and row indices."""
    res: dict[str, Any] = dict(r.result or {})
    parts: list[str] = []
    if "observed_value" in res:
        parts.append(f"observed {_fmt(res['observed_value'])}")
        mismatch = (res.get("details") or {}).get("mismatched")
        if mismatch and not r.success:
            parts.append(f"mismatched {_fmt(mismatch)}")
    if "unexpected_count" in res:
        n, total = res["unexpected_count"], res.get("element_count")
        parts.append(f"{n} unexpected of {total} rows")
        if n:
            parts.append(f"sample values {_fmt(res.get('partial_unexpected_list', [])[:SAMPLE])}")
            rows = res.get("partial_unexpected_index_list")
            if rows:
                parts.append(f"at row indices {_fmt(rows[:SAMPLE])}")
    return parts


def _fmt(value: Any) -> str:
    return repr(_plain(value))


def _plain(value: Any) -> Any:
    """numpy / NaN → plain Python so repr reads cleanly (NaN shown as None: a null)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        with contextlib.suppress(ValueError, TypeError):
            value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
