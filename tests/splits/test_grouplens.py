"""``grouplens-<fold>``: the published ml-100k folds parsed at ingest (checked against u.data), their test parts
reproduced row for row (byte for byte on the real files), validation seeded out of ``.base``, and clear errors for
incomplete or inconsistent folds and for datasets without them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks.common.errors import ConfigError, DataError
from tasks.datasets import get_dataset
from tasks.datasets.ml100k import FOLDS, FOLDS_TABLE
from tasks.splits import check_split, get_protocol

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "ml-100k"


def write_folds(raw: Path, folds: tuple[str, ...] = ("u1", "u2", "ua")) -> None:
    """GroupLens-style folds of ``raw/u.data``: u<k> holds every 5th line (offset k-1) out as test, ua/ub the first
    three ratings of each user; files sorted by (user, item) as the published ones are."""
    lines = (raw / "u.data").read_text().splitlines()
    key = [(int(x.split("\t")[0]), int(x.split("\t")[1])) for x in lines]
    order = sorted(range(len(lines)), key=lambda n: key[n])
    first_of_user: dict[int, int] = {}
    for fold in folds:
        if fold.startswith("u") and fold[1:].isdigit():
            k = int(fold[1:]) - 1
            test = {n for n in range(len(lines)) if n % 5 == k}
        else:
            first_of_user.clear()
            test = set()
            for n in range(len(lines)):
                u = key[n][0]
                first_of_user[u] = first_of_user.get(u, 0) + 1
                if first_of_user[u] <= 3:
                    test.add(n)
        for part, members in (("test", test), ("base", set(range(len(lines))) - test)):
            text = "".join(lines[n] + "\n" for n in order if n in members)
            (raw / f"{fold}.{part}").write_text(text, encoding="ascii")


@pytest.fixture
def with_folds(ml100k_small: Path):  # type: ignore[no-untyped-def]
    write_folds(ml100k_small)
    return get_dataset("ml-100k").parse(ml100k_small), ml100k_small


def _raw_rows(frame: pl.DataFrame, t) -> str:  # type: ignore[no-untyped-def]
    """A split part written back in the GroupLens format (raw ids, integer ratings, tab separated)."""
    u = t.user_ids["raw_id"].to_numpy()[frame["user_idx"].to_numpy()]
    i = t.item_ids["raw_id"].to_numpy()[frame["item_idx"].to_numpy()]
    r = frame["rating"].to_numpy().astype(int)
    ts = frame["timestamp"].to_numpy()
    return "".join(f"{a}\t{b}\t{c}\t{d}\n" for a, b, c, d in zip(u, i, r, ts, strict=True))


def test_ingest_parses_the_folds_and_the_protocol_reproduces_them(with_folds) -> None:  # type: ignore[no-untyped-def]
    t, raw = with_folds
    assert FOLDS_TABLE in t.as_dict() and set(t.grouplens_folds["fold"]) == {"u1", "u2", "ua"}
    assert t.notes[FOLDS_TABLE]["ua"] == 3 * t.n_users
    extras = {FOLDS_TABLE: t.grouplens_folds}
    for fold in ("u1", "u2", "ua"):
        proto = get_protocol(f"grouplens-{fold}")
        res = proto.split(t.ratings, t.n_items, 0, extras=extras)
        check_split(f"grouplens-{fold}-s0", t.ratings, res, proto)
        assert _raw_rows(res.test, t) == (raw / f"{fold}.test").read_text()
        base = pl.concat([res.train, res.valid]).sort("user_idx", "item_idx")
        assert _raw_rows(base, t) == (raw / f"{fold}.base").read_text()
        assert res.valid.height == round(0.1 * base.height)


def test_validation_is_seeded_and_only_it_moves(with_folds) -> None:  # type: ignore[no-untyped-def]
    t, _ = with_folds
    extras = {FOLDS_TABLE: t.grouplens_folds}
    proto = get_protocol("grouplens-u1")
    a, b, c = (proto.split(t.ratings, t.n_items, s, extras=extras) for s in (0, 0, 1))
    assert a.valid.equals(b.valid) and a.train.equals(b.train)
    assert a.test.equals(c.test) and not a.valid.equals(c.valid)


def test_the_five_u_folds_have_disjoint_test_parts(ml100k_small: Path) -> None:
    write_folds(ml100k_small, ("u1", "u2", "u3", "u4", "u5"))
    t = get_dataset("ml-100k").parse(ml100k_small)
    extras = {FOLDS_TABLE: t.grouplens_folds}
    tests = [get_protocol(f"grouplens-u{k}").split(t.ratings, t.n_items, 0, extras=extras).test for k in range(1, 6)]
    both = pl.concat(tests).select("user_idx", "item_idx")
    assert both.height == t.ratings.height and not both.is_duplicated().any()


def test_training_fraction_of_a_fold_keeps_its_test_part(with_folds) -> None:  # type: ignore[no-untyped-def]
    t, _ = with_folds
    extras = {FOLDS_TABLE: t.grouplens_folds}
    full = get_protocol("grouplens-u1").split(t.ratings, t.n_items, 0, extras=extras)
    half = get_protocol("grouplens-u1-d50").split(t.ratings, t.n_items, 0, extras=extras)
    assert half.test.equals(full.test) and half.valid.equals(full.valid)
    assert half.train.height == (2 * 50 * full.train.height + 100) // 200


def test_without_folds_the_protocol_is_a_config_error(ml100k_small: Path) -> None:
    t = get_dataset("ml-100k").parse(ml100k_small)  # no fold files: no table
    assert FOLDS_TABLE not in t.as_dict()
    with pytest.raises(ConfigError, match="ml-100k ingested from the GroupLens files"):
        get_protocol("grouplens-u1").split(t.ratings, t.n_items, 0, extras={})


def test_a_fold_missing_from_the_copy_is_a_config_error(with_folds) -> None:  # type: ignore[no-untyped-def]
    t, _ = with_folds
    with pytest.raises(ConfigError, match="fold present"):
        get_protocol("grouplens-u5").split(t.ratings, t.n_items, 0, extras={FOLDS_TABLE: t.grouplens_folds})


def test_incomplete_or_inconsistent_folds_are_data_errors(ml100k_small: Path) -> None:
    write_folds(ml100k_small, ("u1",))
    (ml100k_small / "u1.base").unlink()
    with pytest.raises(DataError, match=r"u1\.base"):
        get_dataset("ml-100k").parse(ml100k_small)
    write_folds(ml100k_small, ("u1",))
    lines = (ml100k_small / "u1.test").read_text().splitlines()
    u, i, r, ts = lines[1].split("\t")
    lines[1] = "\t".join((u, i, str(1 + int(r) % 5), ts))  # a rating that is not the one in u.data
    (ml100k_small / "u1.test").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"u1.test, line 2: rating not as in u.data"):
        get_dataset("ml-100k").parse(ml100k_small)
    write_folds(ml100k_small, ("u1",))
    base = (ml100k_small / "u1.base").read_text().splitlines()
    (ml100k_small / "u1.base").write_text("\n".join(base[1:]) + "\n")  # one rating in neither part
    with pytest.raises(DataError, match=r"not a partition of u\.data"):
        get_dataset("ml-100k").parse(ml100k_small)


def test_split_stage_refuses_grouplens_on_a_dataset_without_folds(tmp_path: Path, ml100k_small: Path) -> None:
    from tasks.acquire import acquire_dataset
    from tasks.common.config import load_params
    from tasks.common.paths import Layout
    from tasks.ingest import ingest_dataset
    from tasks.splits.stage import make_splits
    from tests.conftest import small_params, write_params

    root = write_params(tmp_path / "proj", small_params(ml100k_small, instances=["grouplens-u1-s0"]))
    layout, params = Layout(root), load_params(root / "params.yaml")
    acquire_dataset(layout, "ml-100k", params.acquire.source_dir, 5)
    ingest_dataset(layout, "ml-100k")
    with pytest.raises(ConfigError, match="ml-100k lacks"):
        make_splits(layout, params, "ml-100k")
    write_folds(ml100k_small, ("u1",))  # the same source with the folds: acquired, ingested and split
    acquire_dataset(layout, "ml-100k", params.acquire.source_dir, 5, force=True)
    ingest_dataset(layout, "ml-100k")
    (report,) = make_splits(layout, params, "ml-100k")
    assert report["counts"]["test"] == len((ml100k_small / "u1.test").read_text().splitlines())
    assert (layout.ingested("ml-100k") / f"{FOLDS_TABLE}.parquet").exists()


@pytest.mark.realdata
@pytest.mark.skipif(not (SHARED / "u1.test").exists(), reason="needs ../shared/datasets/ml-100k with the folds")
def test_published_folds_reproduced_byte_for_byte() -> None:
    t = get_dataset("ml-100k").parse(SHARED)
    extras = {FOLDS_TABLE: t.grouplens_folds}
    for fold in FOLDS:
        res = get_protocol(f"grouplens-{fold}").split(t.ratings, t.n_items, 0, extras=extras)
        assert _raw_rows(res.test, t).encode() == (SHARED / f"{fold}.test").read_bytes(), fold
        base = pl.concat([res.train, res.valid]).sort("user_idx", "item_idx")
        assert _raw_rows(base, t).encode() == (SHARED / f"{fold}.base").read_bytes(), fold
        assert res.valid.height == round(0.1 * base.height)
    ua = get_protocol("grouplens-ua").split(t.ratings, t.n_items, 0, extras=extras).test
    assert np.all(ua.group_by("user_idx").len()["len"].to_numpy() == 10)
