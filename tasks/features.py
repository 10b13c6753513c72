"""Side information as NRP builds it (bag of words) and as CFN reduces it (truncated SVD, Y = U_k Σ_k^{1/2}).

Each side (user, item) gets one binary bag-of-words matrix over all its declared fields, rows aligned with
``user_idx`` / ``item_idx``; tokens are prefixed by their field (``occupation=writer``, ``title=story``) so
fields never collide. Stored sparse (CSR ``.npz``) with the vocabulary as JSON; the SVD version is dense.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import scipy.sparse as sp

from tasks.common.io import atomic_dir, read_json, read_npy, read_npz, write_json, write_npy, write_npz
from tasks.datasets.base import Dataset, DatasetSpec, SideField

if TYPE_CHECKING:
    from tasks.common.config import FeatureParams
    from tasks.common.paths import Layout

TOKEN = re.compile(r"(?u)\b\w+\b")
# GroupLens ML-1M age groups, reused for the "bucket" encoding.
AGE_BUCKETS = (
    (0, 17, "under-18"),
    (18, 24, "18-24"),
    (25, 34, "25-34"),
    (35, 44, "35-44"),
    (45, 49, "45-49"),
    (50, 55, "50-55"),
    (56, 200, "56+"),
)
PAPER_DIMS = {
    "ml-100k": {"user_bow": 879, "item_bow": 2479},
    "ml-1m": {"user_bow": 92, "item_bow": 4606},
    "amazon": {"item_bow": 36258},
}


def age_bucket(age: int) -> str:
    for lo, hi, label in AGE_BUCKETS:
        if lo <= age <= hi:
            return label
    return "unknown"


def field_tokens(values: Sequence[object], f: SideField, age_encoding: str) -> list[list[str]]:
    """Tokens of one field for every entity, prefixed with the field name."""
    out: list[list[str]] = []
    for v in values:
        if v is None:
            out.append([])
        elif f.kind in ("multilabel", "bag"):
            out.append([f"{f.column}={x}" for x in v if x not in (None, "")])  # type: ignore[union-attr]
        elif f.kind == "text":
            out.append([f"{f.column}={t}" for t in TOKEN.findall(str(v).lower())])
        elif f.kind == "age" and int(v) < 0:  # type: ignore[call-overload]
            out.append([])  # unknown age
        elif f.kind == "age":
            label = age_bucket(int(v)) if age_encoding == "bucket" else str(v)  # type: ignore[call-overload]
            out.append([f"{f.column}={label}"])
        else:
            s = str(v).strip()
            out.append([f"{f.column}={s}"] if s else [])
    return out


def bag_of_words(
    table: pl.DataFrame,
    idx_col: str,
    n: int,
    fields: Sequence[SideField],
    age_encoding: str = "raw",
    min_df: int = 1,
) -> tuple[sp.csr_matrix, list[str]]:
    """BoW matrix (n × vocabulary) over ``fields``: binary, except ``bag`` fields, which count occurrences.
    Rows of entities absent from ``table`` stay 0; columns follow the sorted (field-prefixed) vocabulary."""
    blocks = [field_matrix(table, idx_col, n, f, age_encoding, min_df) for f in fields]
    vocab = [t for _, v in blocks for t in v]
    if not vocab:
        return sp.csr_matrix((n, 0), dtype=np.float32), []
    order = np.argsort(np.asarray(vocab, dtype=object), kind="stable")  # one sorted vocabulary over all fields
    mat = sp.csr_matrix(sp.hstack([m for m, _ in blocks], format="csr", dtype=np.float32)[:, order])
    return mat, [vocab[j] for j in order]


def field_matrix(
    table: pl.DataFrame, idx_col: str, n: int, f: SideField, age_encoding: str = "raw", min_df: int = 1
) -> tuple[sp.csr_matrix, list[str]]:
    """One field's matrix (n × its vocabulary), rows placed at their entity index."""
    if f.kind == "numeric":
        return numeric_column(table, idx_col, n, f.column)
    tokens = field_tokens(table[f.column].to_list(), f, age_encoding)
    if not any(tokens):
        return sp.csr_matrix((n, 0), dtype=np.float32), []
    from sklearn.feature_extraction.text import CountVectorizer  # imported here: the training stages that load
    # side information through this module never pay scikit-learn's ~1-3 s import

    vec = CountVectorizer(analyzer=lambda x: x, binary=f.kind != "bag", min_df=min_df, dtype=np.float32)
    try:
        rows = vec.fit_transform(tokens)
    except ValueError:  # min_df pruned every token
        return sp.csr_matrix((n, 0), dtype=np.float32), []
    order = table[idx_col].to_numpy()
    perm = sp.csr_matrix((np.ones(len(order), dtype=np.float32), (order, np.arange(len(order)))), shape=(n, len(order)))
    return sp.csr_matrix(perm @ rows), list(vec.get_feature_names_out())


def numeric_column(table: pl.DataFrame, idx_col: str, n: int, column: str) -> tuple[sp.csr_matrix, list[str]]:
    """A numeric field as one standardized column (z-score over the listed entities; missing or constant → 0)."""
    v = table[column].cast(pl.Float64).to_numpy()
    ok = np.isfinite(v)
    z = np.zeros(len(v))
    if ok.any():
        std = v[ok].std()
        z[ok] = (v[ok] - v[ok].mean()) / std if std > 0 else 0.0
    col = np.zeros(n, dtype=np.float32)
    col[table[idx_col].to_numpy()] = z
    return sp.csr_matrix(col[:, None]), [f"{column}=value"]


def svd_reduce(x: sp.csr_matrix, k: int, seed: int) -> np.ndarray:
    """Y = U_k Σ_k^{1/2} (CFN's low-rank side information); k is capped below min(x.shape)."""
    k_eff = max(1, min(k, min(x.shape) - 1))
    if x.shape[1] == 0:
        return np.zeros((x.shape[0], 0), dtype=np.float32)
    from sklearn.utils.extmath import randomized_svd

    u, s, _ = randomized_svd(x.astype(np.float64), n_components=k_eff, random_state=seed, n_iter=7)
    return (u * np.sqrt(s)).astype(np.float32)


@dataclass(frozen=True)
class SideInfo:
    """Loaded side information of one dataset: per side, the BoW (sparse) and SVD (dense) versions."""

    user_bow: sp.csr_matrix | None
    item_bow: sp.csr_matrix | None
    user_svd: np.ndarray | None
    item_svd: np.ndarray | None
    # per ``bag`` field (tags, friends): its own truncated SVD, keyed by column name (CFN's side vectors)
    user_relations: dict[str, np.ndarray] = field(default_factory=dict)
    item_relations: dict[str, np.ndarray] = field(default_factory=dict)


def build_features(
    dataset: Dataset | DatasetSpec,
    users: pl.DataFrame,
    items: pl.DataFrame,
    n_users: int,
    n_items: int,
    out_dir: Path,
    *,
    age_encoding: str,
    min_df: int,
    svd_k: int,
    seed: int,
) -> dict[str, object]:
    """Write ``{user,item}_bow.npz``, ``*_vocab.json``, ``{user,item}_svd.npy`` and ``dims.json`` (all at once)."""
    with atomic_dir(out_dir) as tmp:
        dims: dict[str, object] = {}
        for side, table, idx, n, fields in (
            ("user", users, "user_idx", n_users, dataset.user_side),
            ("item", items, "item_idx", n_items, dataset.item_side),
        ):
            if not fields:
                continue
            bow, vocab = bag_of_words(table, idx, n, fields, age_encoding, min_df)
            write_npz(tmp / f"{side}_bow.npz", bow)
            write_json(tmp / f"{side}_bow_vocab.json", vocab)
            svd = svd_reduce(bow, svd_k, seed)
            write_npy(tmp / f"{side}_svd.npy", svd)
            dims[f"{side}_bow"] = bow.shape[1]
            dims[f"{side}_svd"] = svd.shape[1]
            dims[f"{side}_bow_nnz_per_row"] = round(bow.nnz / max(n, 1), 2)
            dims[f"{side}_fields"] = {f.column: sum(1 for t in vocab if t.startswith(f"{f.column}=")) for f in fields}
            for f in fields:  # CFN: each tag-like relation matrix T gets its own Y = P_K' D_K'^{1/2}
                if f.kind != "bag":
                    continue
                cols = [j for j, t in enumerate(vocab) if t.startswith(f"{f.column}=")]
                rel = svd_reduce(sp.csr_matrix(bow[:, cols]), svd_k, seed)
                write_npy(tmp / f"{side}_{f.column}_svd.npy", rel)
                dims[f"{side}_{f.column}_svd"] = rel.shape[1]
        dims["paper"] = PAPER_DIMS.get(dataset.name, {})
        write_json(tmp / "dims.json", dims)
        return dims


def build_dataset_features(layout: Layout, dataset: str, params: FeatureParams) -> dict[str, object]:
    """The features stage on an ingested dataset: its manifest's side fields (the raw folder is not read after
    ingest), its canonical tables, ``features.*`` from params; writes ``layout.features(dataset)``."""
    from tasks.common.manifest import read_manifest
    from tasks.datasets.base import spec_from_manifest

    d = layout.ingested(dataset)  # the canonical tables the features read (train stages never import the ingest)
    t = {name: pl.read_parquet(d / f"{name}.parquet") for name in ("users", "items", "user_ids", "item_ids")}
    return build_features(spec_from_manifest(read_manifest(layout.ingested(dataset))), t["users"], t["items"],
                          t["user_ids"].height, t["item_ids"].height, layout.features(dataset),
                          age_encoding=params.age_encoding, min_df=params.min_df, svd_k=params.svd_k,
                          seed=params.seed)  # fmt: skip


def load_side_info(feature_dir: Path) -> SideInfo:
    def opt(name: str, loader):  # type: ignore[no-untyped-def]
        p = feature_dir / name
        return loader(p) if p.exists() else None

    return SideInfo(
        user_bow=opt("user_bow.npz", read_npz),
        item_bow=opt("item_bow.npz", read_npz),
        user_svd=opt("user_svd.npy", read_npy),
        item_svd=opt("item_svd.npy", read_npy),
        user_relations=_relations(feature_dir, "user"),
        item_relations=_relations(feature_dir, "item"),
    )


def _relations(feature_dir: Path, side: str) -> dict[str, np.ndarray]:
    prefix = f"{side}_"
    out: dict[str, np.ndarray] = {}
    for p in sorted(feature_dir.glob(f"{side}_*_svd.npy")):
        out[p.name[len(prefix) : -len("_svd.npy")]] = read_npy(p)
    return out


def load_dims(feature_dir: Path) -> dict[str, object]:
    p = feature_dir / "dims.json"
    return read_json(p) if p.exists() else {}
