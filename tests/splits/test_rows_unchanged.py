"""Splits keep their exact rows across versions: adding validation negatives (their own seeded generator) must not
move a train/valid/test row or a test negative. The digests below were produced identically by the code before
validation negatives existed (commit 949e376) and after, on the real MovieLens-100K and DeepCF lastfm files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tasks.datasets import get_dataset
from tasks.splits import get_protocol

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
pytestmark = pytest.mark.realdata


def _digest(frame) -> str:  # type: ignore[no-untyped-def]
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()[:12]


@pytest.mark.skipif(not (SHARED / "ml-100k" / "u.data").exists(), reason="needs ../shared/datasets/ml-100k")
def test_leave_one_out_rows_and_test_negatives_unchanged() -> None:
    t = get_dataset("ml-100k").parse(SHARED / "ml-100k")
    res = get_protocol("leave-one-out", 99).split(t.ratings, t.n_items, 0)
    got = {p: _digest(res.part(p)) for p in ("train", "valid", "test")} | {"neg": _digest(res.negatives)}
    assert got == {"train": "fe9e2efcab6f", "valid": "7deda7a55b78", "test": "de3ee1ae455d", "neg": "1b0982242797"}
    assert res.valid_negatives is not None and res.valid_negatives.height == 99 * res.valid.height


@pytest.mark.skipif(not (SHARED / "deepcf" / "lastfm.train.rating").exists(), reason="needs ../shared/datasets/deepcf")
def test_published_split_rows_and_negatives_unchanged() -> None:
    t = get_dataset("deepcf-lastfm").parse(SHARED / "deepcf")
    extras = {"predefined": t.predefined, "negatives": t.negatives}
    res = get_protocol("predefined", 99).split(t.ratings, t.n_items, 0, extras=extras)
    got = {p: _digest(res.part(p)) for p in ("train", "valid", "test")} | {"neg": _digest(res.negatives)}
    assert got == {"train": "db7e34cbafb5", "valid": "eb9eaf51003c", "test": "c27ced30b72f", "neg": "a06439c3858b"}
