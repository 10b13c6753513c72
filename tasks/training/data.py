"""What one run reads (``RunData``): the model's context from the split's training part, the ingest manifest and the
feature matrices; for a ranking model on explicit ratings only the ratings >= ``train.positive_threshold``. Building a
model from a registered name or a named variant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from models.common.base import Recommender
from models.common.context import TrainContext, UnbuiltSideInfo
from models.common.registry import ModelSpec, resolve_model
from tasks.common.config import parse_split_id
from tasks.common.errors import ConfigError
from tasks.common.io import read_json
from tasks.common.manifest import DatasetManifest, read_manifest
from tasks.common.paths import Layout
from tasks.features import load_side_info
from tasks.splits import SplitResult, get_protocol, load_split


@dataclass(frozen=True)
class RunId:
    dataset: str
    model: str
    split_id: str

    @property
    def protocol(self) -> str:
        return parse_split_id(self.split_id)[0]

    @property
    def seed(self) -> int:
        return parse_split_id(self.split_id)[1]

    def __str__(self) -> str:
        return f"{self.dataset}/{self.model}/{self.split_id}"


@dataclass
class RunData:
    """Everything one run reads: the model's context (training part only), the split as written, and the
    validation / test rows its task evaluates (positives only for a ranking model on explicit ratings)."""

    ctx: TrainContext
    split: SplitResult
    manifest: DatasetManifest
    task: str
    valid: pl.DataFrame
    test: pl.DataFrame
    positives: str | None = None  # how positives were chosen, when they were (ranking on explicit data)
    threshold: float | None = None  # the rating threshold of those positives
    ranking_protocol: bool = False  # the protocol holds out one positive per user with listed negatives

    def known(self, *parts: str) -> pl.DataFrame:
        """The (user, item) pairs of the named parts as written (every rating, below threshold too)."""
        return pl.concat([self.split.part(p).select("user_idx", "item_idx") for p in parts])


def check_threshold(threshold: float, scale: tuple[float, float]) -> None:
    lo, hi = scale
    if not lo <= threshold <= hi:
        raise ConfigError("train.positive_threshold", f"a rating within the dataset's scale [{lo:g}, {hi:g}]",
                          threshold)  # fmt: skip


def multilabel_sources(bow: sp.csr_matrix, vocab: list[str], fields: tuple[str, ...]) -> dict[str, sp.csr_matrix]:
    """For every ``multilabel`` side field (``column:kind`` as the manifest lists them), a binary source named after
    the column (e.g. MovieLens item ``genres``, CFN's binary genre vector): the BoW columns whose token starts with
    ``<column>=``, in vocabulary order, CSR with 1 for each label present."""
    out: dict[str, sp.csr_matrix] = {}
    for entry in fields:
        column, _, kind = entry.partition(":")
        if kind != "multilabel":
            continue
        cols = [j for j, t in enumerate(vocab) if t.startswith(f"{column}=")]
        mat = sp.csr_matrix(bow[:, cols], dtype=np.float32)
        mat.eliminate_zeros()
        mat.data[:] = 1.0
        mat.sort_indices()
        out[column] = mat
    return out


def unbuilt_features(layout: Layout, dataset: str, manifest: DatasetManifest) -> str | None:
    """Why the dataset's side matrices are missing (the features stage never finished for it), or None."""
    if not (manifest.user_side or manifest.item_side):
        return None
    done = layout.features(dataset) / "dims.json"  # written last, with every matrix, in one rename
    if done.exists():
        return None
    return (f"{done} is missing (the dataset declares side fields {[*manifest.user_side, *manifest.item_side]}); "
            f"run `python -m flows.features --dataset {dataset}` (or `dvc repro features`) first")


def build_run_data(
    layout: Layout, dataset: str, split_id: str, device: torch.device, task: str = "rating",
    positive_threshold: float = 4.0, loo_negatives: int = 99,
) -> RunData:  # fmt: skip
    """The run's inputs from the split's TRAIN part, the ingest manifest and the feature matrices."""
    manifest = read_manifest(layout.ingested(dataset))
    split = load_split(layout.split(dataset, split_id))
    side = load_side_info(layout.features(dataset))
    train, valid, test = split.train, split.valid, split.test
    note = None
    if task == "ranking" and not manifest.implicit:
        check_threshold(positive_threshold, manifest.rating_scale)
        kept = [f.filter(pl.col("rating") >= positive_threshold) for f in (train, valid, test)]
        note = (
            f"ratings >= {positive_threshold:g} are positives, the rest dropped "
            f"(train {kept[0].height:,} of {train.height:,}, valid {kept[1].height:,} of {valid.height:,}, "
            f"test {kept[2].height:,} of {test.height:,})"
        )
        train, valid, test = kept
    weights = train["weight"].to_numpy().astype(np.float32) if "weight" in train.columns else None
    ratings = np.ones(train.height, np.float32) if task == "ranking" else train["rating"].to_numpy()
    user_side = {"bow": side.user_bow, "svd": side.user_svd, **{f"{k}_svd": v for k, v in side.user_relations.items()}}
    item_side = {"bow": side.item_bow, "svd": side.item_svd, **{f"{k}_svd": v for k, v in side.item_relations.items()}}
    features = layout.features(dataset)
    for name, src, bow, fields in (("user", user_side, side.user_bow, manifest.user_side),
                                   ("item", item_side, side.item_bow, manifest.item_side)):  # fmt: skip
        vocab_path = features / f"{name}_bow_vocab.json"
        if bow is not None and vocab_path.exists():
            for key, mat in multilabel_sources(bow, read_json(vocab_path), fields).items():
                src.setdefault(key, mat)  # appended after the existing sources, never replacing one
    unbuilt = unbuilt_features(layout, dataset, manifest)
    ctx = TrainContext(
        n_users=manifest.n_users,
        n_items=manifest.n_items,
        users=train["user_idx"].to_numpy().astype(np.int64),
        items=train["item_idx"].to_numpy().astype(np.int64),
        ratings=np.asarray(ratings, dtype=np.float32),
        rating_scale=manifest.rating_scale,
        device=device,
        user_side=UnbuiltSideInfo("user", unbuilt) if unbuilt and manifest.user_side
        else {k: v for k, v in user_side.items() if v is not None},
        item_side=UnbuiltSideInfo("item", unbuilt) if unbuilt and manifest.item_side
        else {k: v for k, v in item_side.items() if v is not None},
        implicit=manifest.implicit,
        weights=weights,
    )
    protocol = get_protocol(parse_split_id(split_id)[0], loo_negatives)
    return RunData(ctx, split, manifest, task, valid, test, note, positive_threshold if note else None,
                   ranking_protocol=protocol.implicit_eval)  # fmt: skip


def build_model(name: str, raw_cfg: dict[str, Any], ctx: TrainContext, entries: dict[str, dict] | None = None
                ) -> Recommender:  # fmt: skip
    """Build the model ``name`` (registered, or a variant declared in ``entries``) with ``raw_cfg`` on top."""
    spec = resolve_model(name, entries or {})
    return build_from_spec(spec, {**spec.raw, **raw_cfg}, ctx)


def build_from_spec(spec: ModelSpec, raw_cfg: dict[str, Any], ctx: TrainContext) -> Recommender:
    cfg = spec.cls.config_cls.from_dict(raw_cfg, spec.name)
    try:
        model = spec.cls(cfg, ctx)
    except ConfigError as exc:  # a model checks its config against the data at build time, under its class name
        own = f"models.{spec.cls.name}."
        if spec.name == spec.cls.name or not exc.param.startswith(own):
            raise
        raise ConfigError(f"models.{spec.name}." + exc.param[len(own) :], exc.expected, exc.found) from exc
    model.run_name = spec.name  # type: ignore[assignment]
    return model.to(ctx.device)
