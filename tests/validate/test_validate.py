"""Great Expectations suites on canonical tables: a valid set passes, each defect is named."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from tasks.common.errors import ValidationFailed
from tasks.datasets.base import AcquireResult, CanonicalTables, Dataset, ExpectedCounts, SideField
from tasks.validate import ValidationOutcome, raise_on_failure, validate_tables

Tables = dict[str, pl.DataFrame]


class Tiny(Dataset):
    name = "tiny"
    rating_scale = (1.0, 5.0)
    expected = ExpectedCounts(users=(2, 10), items=(2, 10), ratings=(4, 100))
    user_side = (SideField("gender", "categorical"),)
    item_side = (SideField("title", "text"), SideField("genres", "multilabel"))

    def acquire(self, dest: Path, source_dir: Path | None, timeout_s: float) -> AcquireResult:
        raise NotImplementedError

    def parse(self, raw_dir: Path) -> CanonicalTables:
        raise NotImplementedError


class TinyManyRatings(Tiny):
    expected = ExpectedCounts(users=(2, 10), items=(2, 10), ratings=(100, 200))


def i32(values: list[int | None]) -> pl.Series:
    return pl.Series(values, dtype=pl.Int32)


def valid_tables() -> Tables:
    """3 users, 4 items, 6 ratings in the canonical schema."""
    ratings = pl.DataFrame(
        {
            "user_idx": i32([0, 0, 1, 1, 2, 2]),
            "item_idx": i32([0, 1, 1, 2, 2, 3]),
            "rating": pl.Series([4.0, 3.0, 5.0, 1.0, 2.5, 4.0], dtype=pl.Float32),
            "timestamp": pl.Series([10, 11, 12, 13, 14, 15], dtype=pl.Int64),
        }
    )
    users = pl.DataFrame({"user_idx": i32([0, 1, 2]), "gender": ["F", "M", "F"]})
    items = pl.DataFrame(
        {
            "item_idx": i32([0, 1, 2, 3]),
            "title": ["A", "B", "C", "D"],
            "genres": [["Drama"], ["Comedy", "Drama"], [], ["Horror"]],
        }
    )
    user_ids = pl.DataFrame({"user_idx": i32([0, 1, 2]), "raw_id": ["u1", "u2", "u3"]})
    item_ids = pl.DataFrame({"item_idx": i32([0, 1, 2, 3]), "raw_id": ["10", "20", "30", "40"]})
    return {"ratings": ratings, "users": users, "items": items, "user_ids": user_ids, "item_ids": item_ids}


def set_value(tables: Tables, table: str, column: str, row: int, value: object) -> Tables:
    df = tables[table]
    dtype = df.schema[column]
    at_row = pl.int_range(pl.len()) == row
    new = pl.when(at_row).then(pl.lit(value, dtype=dtype)).otherwise(pl.col(column)).alias(column)
    return {**tables, table: df.with_columns(new)}


@pytest.fixture(scope="module")
def valid_outcome() -> ValidationOutcome:
    return validate_tables(valid_tables(), Tiny(), None)


def test_valid_tables_pass(valid_outcome: ValidationOutcome) -> None:
    assert valid_outcome.success, valid_outcome.failures()
    assert valid_outcome.failures() == []
    assert valid_outcome.data_docs_index is None
    raise_on_failure(valid_outcome)
    tables = {o.table for o in valid_outcome.outcomes}
    assert tables == {"ratings", "users", "items", "user_ids", "item_ids"}
    kinds = {(o.table, o.expectation, o.column) for o in valid_outcome.outcomes}
    assert ("ratings", "expect_compound_columns_to_be_unique", "user_idx, item_idx") in kinds
    assert ("items", "expect_column_values_to_not_be_null", "genres") in kinds
    assert ("item_ids", "expect_table_row_count_to_be_between", None) in kinds


def test_to_dict_is_json(valid_outcome: ValidationOutcome) -> None:
    data = json.loads(json.dumps(valid_outcome.to_dict()))
    assert data["dataset"] == "tiny"
    assert data["success"] is True
    assert {"table", "expectation", "column", "success", "details"} <= set(data["outcomes"][0])


def _drop_item(tables: Tables) -> Tables:
    return {**tables, "items": tables["items"].filter(pl.col("item_idx") != 2)}


def _duplicate_pair(tables: Tables) -> Tables:
    return {**tables, "ratings": pl.concat([tables["ratings"], tables["ratings"].slice(1, 1)])}


Defect = Callable[[Tables], Tables]
DEFECTS: list[tuple[str, Defect, type[Dataset], str, str, str | None, str]] = [
    (
        "null rating",
        lambda t: set_value(t, "ratings", "rating", 2, None),
        Tiny,
        "ratings",
        "expect_column_values_to_not_be_null",
        "rating",
        "at row indices [2]",
    ),
    (
        "rating above scale",
        lambda t: set_value(t, "ratings", "rating", 4, 7.5),
        Tiny,
        "ratings",
        "expect_column_values_to_be_between",
        "rating",
        "sample values [7.5]",
    ),
    (
        "duplicate pair",
        _duplicate_pair,
        Tiny,
        "ratings",
        "expect_compound_columns_to_be_unique",
        "user_idx, item_idx",
        "{'user_idx': 0, 'item_idx': 1}",
    ),
    (
        "item_idx out of range",
        lambda t: set_value(t, "ratings", "item_idx", 1, 9),
        Tiny,
        "ratings",
        "expect_column_values_to_be_between",
        "item_idx",
        "sample values [9]",
    ),
    (
        "rated item missing from items",
        _drop_item,
        Tiny,
        "ratings",
        "expect_column_values_to_not_be_in_set",
        "item_idx",
        "sample values [2, 2]",
    ),
    (
        "most rated items missing from items",
        lambda t: {**t, "items": t["items"].head(1)},
        Tiny,
        "ratings",
        "expect_column_values_to_be_in_set",
        "item_idx",
        "sample values [1, 1, 2, 2, 3]",
    ),
    (
        "row count outside bounds",
        lambda t: t,
        TinyManyRatings,
        "ratings",
        "expect_table_row_count_to_be_between",
        None,
        "observed 6",
    ),
    (
        "duplicate raw_id",
        lambda t: set_value(t, "item_ids", "raw_id", 3, "10"),
        Tiny,
        "item_ids",
        "expect_column_values_to_be_unique",
        "raw_id",
        "sample values ['10', '10']",
    ),
    (
        "null in list column",
        lambda t: set_value(t, "items", "genres", 1, None),
        Tiny,
        "items",
        "expect_column_values_to_not_be_null",
        "genres",
        "at row indices [1]",
    ),
]


@pytest.mark.parametrize(
    ("defect", "spec", "table", "expectation", "column", "offending"),
    [d[1:] for d in DEFECTS],
    ids=[d[0] for d in DEFECTS],
)
def test_defect_is_named(
    defect: Defect, spec: type[Dataset], table: str, expectation: str, column: str | None, offending: str
) -> None:
    outcome = validate_tables(defect(valid_tables()), spec(), None)
    assert not outcome.success
    failed = [(f.table, f.expectation, f.column) for f in outcome.failures()]
    assert (table, expectation, column) in failed
    assert {f[0] for f in failed} == {table}
    with pytest.raises(ValidationFailed) as err:
        raise_on_failure(outcome)
    message = str(err.value)
    assert f"table {table!r}" in message
    assert expectation in message
    assert offending in message


def test_non_contiguous_ids_fail() -> None:
    tables = valid_tables()
    tables = set_value(tables, "user_ids", "user_idx", 2, 5)
    outcome = validate_tables(tables, Tiny(), None)
    failed = {(f.table, f.expectation, f.column) for f in outcome.failures()}
    assert ("user_ids", "expect_column_values_to_be_between", "user_idx") in failed


def test_missing_column_is_named() -> None:
    tables = valid_tables()
    tables["ratings"] = tables["ratings"].drop("timestamp")
    outcome = validate_tables(tables, Tiny(), None)
    failed = {(f.table, f.expectation, f.column) for f in outcome.failures()}
    assert ("ratings", "expect_table_columns_to_match_set", None) in failed
    with pytest.raises(ValidationFailed, match=r"'missing': \['timestamp'\]"):
        raise_on_failure(outcome)


def test_data_docs_written(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "stale.html").write_text("old run")
    outcome = validate_tables(valid_tables(), Tiny(), docs)
    assert outcome.data_docs_index == str(docs / "index.html")
    index = Path(outcome.data_docs_index).read_text(encoding="utf-8")
    assert "ratings" in index
    assert not (docs / "stale.html").exists()
    assert list(docs.glob("validations/**/*.html"))
    # readable offline: no page loads a stylesheet or script from the network; GX's own styles are inlined
    from tasks.report.index import check_page

    for page in docs.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "cdn." not in text.split("<body", 1)[0] and "unpkg.com" not in text and "<style>" in text, page
    assert [p for p in check_page(docs / "index.html", follow=False) if "external asset" in p] == []


def published_split_tables() -> Tables:
    """The valid tables plus a weight column, a published split (user 2's item 3 is its test row) and listed
    negatives, one of which (item 4) nobody rated: it is indexed only because the list names it."""
    t = valid_tables()
    ratings = t["ratings"].with_columns(pl.Series("weight", [1.0, 2.0, 3.0, 1.0, 5.0, 1.0], dtype=pl.Float32))
    item_ids = pl.DataFrame({"item_idx": i32([0, 1, 2, 3, 4]), "raw_id": ["10", "20", "30", "40", "50"]})
    items = pl.DataFrame({"item_idx": i32([0, 1, 2, 3, 4]), "title": list("ABCDE"), "genres": [[]] * 5})
    predefined = ratings.select("user_idx", "item_idx").with_columns(
        pl.Series("part", ["train", "train", "train", "train", "train", "test"])
    )
    negatives = pl.DataFrame({"user_idx": i32([2, 2]), "item_idx": i32([0, 4]), "line": [1, 1]})
    return {
        **t,
        "ratings": ratings,
        "items": items,
        "item_ids": item_ids,
        "predefined": predefined,
        "negatives": negatives,
    }


def test_weights_published_split_and_candidate_only_items_pass() -> None:
    outcome = validate_tables(published_split_tables(), Tiny(), None)
    assert outcome.success, outcome.failures()
    tables = {o.table for o in outcome.outcomes}
    assert {"predefined", "negatives"} <= tables
    assert any("listed only in negatives" in o.details or o.column == "item_idx" for o in outcome.outcomes)


def test_bad_weight_part_and_negatives_for_a_non_test_user_are_named() -> None:
    t = published_split_tables()
    t = set_value(t, "ratings", "weight", 0, 0.0)
    t = set_value(t, "predefined", "part", 0, "valid")
    t = set_value(t, "negatives", "user_idx", 0, 0)
    outcome = validate_tables(t, Tiny(), None)
    failed = {(f.table, f.column) for f in outcome.failures()}
    assert ("ratings", "weight") in failed and ("predefined", "part") in failed and ("negatives", "user_idx") in failed
