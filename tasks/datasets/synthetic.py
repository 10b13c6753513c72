"""Synthetic recommender data: seeded, with power-law popularity, a low-rank signal and correlated side features.

Nothing is downloaded. ``acquire`` writes ``SPEC.json`` (every generation parameter, see ``SyntheticSpec``) into
the raw directory, so ``data.dvc`` versions the recipe; ``parse`` regenerates the same tables from it, bit for
bit. Overrides: put a (partial) ``SPEC.json`` into the directory named by ``acquire.source_dir`` (or name the
JSON file itself); keys not given keep their defaults, unknown keys are an error.

Generation (vectorised numpy, never a dense users × items matrix; ML-20M size in well under a minute):

* latent factors P (users × rank), Q (items × rank) with p·q of unit variance, user and item biases;
* item popularity ∝ k^-item_zipf and user activity ∝ k^-user_zipf over random ranks, capped so that no item
  (user) expects more than ``max_fill`` of all users (items);
* every user and every item first gets one interaction (so the counts are exact), then pairs are drawn by
  activity × popularity and kept with probability sigmoid(affinity · p·q) (users pick what they like), deduped
  on ``u * n_items + i`` and topped up until exactly ``n_ratings`` pairs exist;
* explicit ratings: bu + bi + p·q + noise, cut into 1–5 stars at the quantiles of ``rating_histogram``;
  implicit (``synthetic-implicit``): every observed pair has rating 1;
* timestamps: each user is active in a random window of [t_start, t_end);
* user side: age group, gender, occupation; item side: title words, genres, tags — all functions of the latent
  factors plus noise (e.g. the primary genre is the argmax of a projection of the item factor), so side
  information carries part of the signal.

``synthetic`` is explicit (1–5 stars); ``synthetic-implicit`` is the same generator with ``implicit: true``
(rating 1 for each observed pair, scale [0, 1]).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from tasks.acquire import staged_dir
from tasks.common.errors import DataError
from tasks.datasets import register
from tasks.datasets.base import AcquireResult, CanonicalTables, Dataset, ExpectedCounts, SideField
from tasks.datasets.ml1m import AGE_GROUPS, OCCUPATIONS
from tasks.datasets.ml100k import GENRES as ML100K_GENRES

log = logging.getLogger(__name__)

SPEC_FILE = "SPEC.json"
GENRES = ML100K_GENRES[1:]  # the MovieLens genres without "unknown"
AGE_SHARES = (0.04, 0.18, 0.35, 0.20, 0.09, 0.08, 0.06)  # ML-1M's age-group shares, roughly
SYLLABLES = ("ka", "lo", "mi", "ra", "te", "zu", "ne", "shi", "po", "va", "do", "ri", "su", "be", "ga", "no")
CHUNK = 1 << 21  # candidate pairs handled at once (bounds memory at ML-20M size)


@dataclass(frozen=True)
class SyntheticSpec:
    """Every generation parameter. Defaults give a quick ML-100K-like dataset."""

    seed: int = 0
    n_users: int = 1000
    n_items: int = 1000
    n_ratings: int = 50_000
    implicit: bool = False
    rank: int = 8  # rank of the latent signal
    noise: float = 0.5  # std of the Gaussian noise added to the latent score (signal std is about 1)
    item_zipf: float = 1.0  # popularity of the k-th most popular item ∝ k ** -item_zipf
    user_zipf: float = 0.8  # activity of the k-th most active user ∝ k ** -user_zipf
    max_fill: float = 0.5  # no item (user) expects more than this share of all users (items)
    affinity: float = 1.5  # how strongly p·q drives which items a user picks (0: popularity only)
    rating_histogram: tuple[float, ...] = (0.06, 0.11, 0.27, 0.34, 0.22)  # shares of 1..5 stars
    t_start: int = 946_684_800  # 2000-01-01
    t_end: int = 1_420_070_400  # 2015-01-01
    side_noise: float = 0.5  # noise (in units of the projection's std) on the side features
    n_tags: int = 500  # tag vocabulary
    max_tags_per_item: int = 8
    title_vocab: int = 2000  # words for titles; the first word of a title comes from its genre's share

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str | Path, base: SyntheticSpec | None = None) -> SyntheticSpec:
        """``base`` (defaults) updated with ``raw``; bad keys or values raise ``DataError`` naming ``source``."""
        if not isinstance(raw, dict):
            raise DataError(source, "synthetic spec must be a JSON object", expected="{...}", found=type(raw).__name__)
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise DataError(source, f"unknown synthetic spec keys {unknown}", expected=f"keys among {sorted(known)}")
        base = base or cls()
        values: dict[str, Any] = {}
        for key, value in raw.items():
            default = getattr(base, key)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                value = float(value) if ok else value
            else:  # rating_histogram
                ok = isinstance(value, list | tuple) and all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value
                )
                value = tuple(float(v) for v in value) if ok else value
            if not ok:
                raise DataError(source, f"synthetic spec key {key!r}", expected=type(default).__name__, found=value)
            values[key] = value
        spec = replace(base, **values)
        spec.check(source)
        return spec

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rating_histogram"] = list(self.rating_histogram)
        return d

    def check(self, source: str | Path) -> None:
        def need(ok: bool, what: str, found: object) -> None:
            if not ok:
                raise DataError(source, "invalid synthetic spec", expected=what, found=found)

        need(self.n_users >= 1 and self.n_items >= 1, "n_users >= 1 and n_items >= 1", (self.n_users, self.n_items))
        need(
            self.n_ratings >= max(self.n_users, self.n_items),
            "n_ratings >= max(n_users, n_items) (every user and item is rated)",
            self.n_ratings,
        )
        need(0 < self.max_fill <= 1, "0 < max_fill <= 1", self.max_fill)
        need(
            self.n_ratings <= 0.9 * self.max_fill * self.n_users * self.n_items,
            "n_ratings <= 0.9 * max_fill * n_users * n_items (room to sample without replacement)",
            self.n_ratings,
        )
        need(self.rank >= 1, "rank >= 1", self.rank)
        need(self.noise >= 0 and self.side_noise >= 0, "noise >= 0 and side_noise >= 0", (self.noise, self.side_noise))
        need(self.item_zipf >= 0 and self.user_zipf >= 0, "zipf exponents >= 0", (self.item_zipf, self.user_zipf))
        need(self.affinity >= 0, "affinity >= 0", self.affinity)
        h = self.rating_histogram
        need(len(h) == 5 and all(v > 0 for v in h), "rating_histogram: 5 positive shares (1..5 stars)", list(h))
        need(self.t_end > self.t_start, "t_end > t_start", (self.t_start, self.t_end))
        need(self.n_tags >= 1 and self.max_tags_per_item >= 0, "n_tags >= 1, max_tags_per_item >= 0", self.n_tags)
        need(self.title_vocab >= len(GENRES), f"title_vocab >= {len(GENRES)}", self.title_vocab)


@dataclass(frozen=True)
class Latent:
    """The hidden truth behind a generated dataset (for tests and diagnostics)."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    item_popularity: np.ndarray  # sampling probabilities
    user_activity: np.ndarray


# ---------------------------------------------------------------------------------------------- generation
def _capped(weights: np.ndarray, cap: float) -> np.ndarray:
    """Normalise ``weights`` to probabilities none of which exceeds ``cap`` (mass moved to the others)."""
    p = weights / weights.sum()
    fixed = np.zeros(len(p), dtype=bool)
    for _ in range(200):
        over = (p > cap) & ~fixed
        if not over.any():
            break
        fixed |= over
        free = ~fixed
        p[fixed] = cap
        p[free] = weights[free] / weights[free].sum() * (1.0 - cap * fixed.sum())
    return p


class _Sampler:
    """Draws indices with probabilities ``p`` by inversion through a guide table (Chen & Asau): exact, and
    several times faster than a binary search per draw."""

    def __init__(self, p: np.ndarray) -> None:
        cum = np.cumsum(p, dtype=np.float64)
        self.cum = cum / cum[-1]
        self.cum[-1] = np.inf  # every uniform in [0, 1) falls at or before the last index
        self.size = 4 * len(p)
        self.guide = np.searchsorted(self.cum, np.arange(self.size) / self.size, side="right")

    def __call__(self, rng: np.random.Generator, n: int) -> np.ndarray:
        r = rng.random(n)
        idx = self.guide[(r * self.size).astype(np.int64)]
        todo = np.flatnonzero(self.cum[idx] <= r)
        while todo.size:
            idx[todo] += 1
            todo = todo[self.cum[idx[todo]] <= r[todo]]
        return idx


def _sorted_unique(a: np.ndarray, presorted: bool = False) -> np.ndarray:
    """``np.unique`` for int64 keys via a sort (numpy's hash-based unique is far slower on 10^7 keys);
    ``presorted``: ``a`` is a concatenation of sorted runs, which a stable sort merges quickly."""
    a = np.sort(a, kind="stable" if presorted else "quicksort")
    if a.size == 0:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _rowdot(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    out = np.empty(len(ia), dtype=np.float32)
    for s in range(0, len(ia), CHUNK):
        e = s + CHUNK
        out[s:e] = np.einsum("ij,ij->i", a[ia[s:e]], b[ib[s:e]])
    return out


def _sample_pairs(spec: SyntheticSpec, rng: np.random.Generator, lat: Latent) -> np.ndarray:
    """Sorted unique keys u * n_items + i, exactly ``n_ratings`` of them, every user and item present."""
    nu, ni = spec.n_users, spec.n_items
    draw_u, draw_i = _Sampler(lat.user_activity), _Sampler(lat.item_popularity)
    # coverage: one item per user (by popularity), one user per item (by activity)
    base = _sorted_unique(
        np.concatenate(
            [
                np.arange(nu, dtype=np.int64) * ni + draw_i(rng, nu),
                draw_u(rng, ni).astype(np.int64) * ni + np.arange(ni, dtype=np.int64),
            ]
        )
    )
    if base.size > spec.n_ratings:  # only when n_ratings is close to max(n_users, n_items)
        raise DataError(
            SPEC_FILE,
            "invalid synthetic spec",
            expected=f"n_ratings >= {base.size} (one rating per user and per item, as drawn)",
            found=spec.n_ratings,
        )
    keys, yield_rate = base, 0.5
    for _ in range(60):
        need = spec.n_ratings - keys.size
        if need <= 0:
            break
        m = int(need * 1.15 / max(yield_rate, 0.02)) + 256
        new = []
        for s in range(0, m, CHUNK):
            c = min(CHUNK, m - s)
            u, i = draw_u(rng, c), draw_i(rng, c)
            if spec.affinity > 0:
                z = np.einsum("ij,ij->i", lat.user_factors[u], lat.item_factors[i])
                keep = rng.random(c) < 1.0 / (1.0 + np.exp(-spec.affinity * z))
                u, i = u[keep], i[keep]
            new.append(u.astype(np.int64) * ni + i)
        before = keys.size
        keys = _sorted_unique(np.concatenate([keys, _sorted_unique(np.concatenate(new))]), presorted=True)
        yield_rate = (keys.size - before) / m
    else:
        raise DataError(
            SPEC_FILE,
            "could not draw enough distinct pairs",
            expected=f"{spec.n_ratings} pairs (lower n_ratings or item_zipf/user_zipf, or raise max_fill)",
            found=int(keys.size),
        )
    excess = keys.size - spec.n_ratings
    if excess > 0:  # drop random extra pairs, never a coverage pair
        is_base = np.zeros(keys.size, dtype=bool)
        is_base[np.searchsorted(keys, base)] = True
        extra = np.flatnonzero(~is_base)
        keys = np.delete(keys, rng.choice(extra, size=excess, replace=False))
    return keys


def _side_projection(x: np.ndarray, k: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """x @ W for a random W (rank × k), standardised, plus Gaussian noise of std ``noise``."""
    w = rng.standard_normal((x.shape[1], k)).astype(np.float32)
    proj = x @ w
    proj = (proj - proj.mean(axis=0)) / (proj.std(axis=0) + 1e-9)
    return proj + noise * rng.standard_normal(proj.shape).astype(np.float32)


def _quantile_bins(score: np.ndarray, shares: tuple[float, ...]) -> np.ndarray:
    cuts = np.quantile(score, np.cumsum(shares)[:-1] / np.sum(shares))
    return np.searchsorted(cuts, score, side="right")


def _words(n: int) -> np.ndarray:
    s = len(SYLLABLES)
    k = np.arange(n)
    syl = np.array(SYLLABLES)
    return np.char.add(np.char.add(syl[k % s], syl[(k // s) % s]), syl[(k // (s * s)) % s])


def _list_column(n_rows: int, rows: np.ndarray, values: np.ndarray, idx: str, name: str) -> pl.DataFrame:
    """Rows (sorted) with their values → one list[str] per row index 0..n_rows-1 (empty lists kept)."""
    flat = pl.DataFrame({idx: rows.astype(np.int32), name: values})
    agg = flat.group_by(idx, maintain_order=True).agg(pl.col(name))
    full = pl.DataFrame({idx: np.arange(n_rows, dtype=np.int32)}).join(agg, on=idx, how="left")
    return full.with_columns(pl.col(name).fill_null(pl.lit([], dtype=pl.List(pl.Utf8))))


def generate(spec: SyntheticSpec) -> tuple[CanonicalTables, Latent]:
    """The canonical tables of ``spec`` (deterministic for its seed) and the latent truth behind them."""
    rng = np.random.default_rng(spec.seed)
    nu, ni, k = spec.n_users, spec.n_items, spec.rank
    scale = k**-0.25  # p·q then has unit variance
    p_f = (rng.standard_normal((nu, k)) * scale).astype(np.float32)
    q_f = (rng.standard_normal((ni, k)) * scale).astype(np.float32)
    bu = (0.3 * rng.standard_normal(nu)).astype(np.float32)
    bi = (0.4 * rng.standard_normal(ni)).astype(np.float32)
    pop = _capped((rng.permutation(ni) + 1.0) ** -spec.item_zipf, spec.max_fill * nu / spec.n_ratings)
    act = _capped((rng.permutation(nu) + 1.0) ** -spec.user_zipf, spec.max_fill * ni / spec.n_ratings)
    lat = Latent(p_f, q_f, bu, bi, pop, act)

    keys = _sample_pairs(spec, rng, lat)
    u = (keys // ni).astype(np.int32)
    i = (keys % ni).astype(np.int32)
    del keys
    n = len(u)
    if spec.implicit:
        rating = np.ones(n, dtype=np.float32)
    else:
        z = _rowdot(p_f, q_f, u, i)
        z += bu[u] + bi[i]
        z += (spec.noise * rng.standard_normal(n)).astype(np.float32)
        rating = (1 + _quantile_bins(z, spec.rating_histogram)).astype(np.float32)
        del z
    span = spec.t_end - spec.t_start
    start = rng.integers(spec.t_start, spec.t_end, size=nu)
    length = np.minimum(spec.t_end - start, (span * rng.beta(0.7, 2.0, size=nu)).astype(np.int64) + 86_400)
    ts = start[u] + (rng.random(n) * length[u]).astype(np.int64)

    ratings = pl.DataFrame(
        {
            "user_idx": pl.Series(u, dtype=pl.Int32),
            "item_idx": pl.Series(i, dtype=pl.Int32),
            "rating": pl.Series(rating, dtype=pl.Float32),
            "timestamp": pl.Series(ts, dtype=pl.Int64),
        }
    )
    item_counts = np.bincount(i, minlength=ni)
    del u, i, rating, ts

    users = _users(spec, p_f, rng)
    items = _items(spec, q_f, item_counts, rng)
    ids = pl.int_range(0, nu, dtype=pl.Int32, eager=True)
    user_ids = pl.DataFrame({"user_idx": ids, "raw_id": (ids + 1).cast(pl.Utf8)})
    ids = pl.int_range(0, ni, dtype=pl.Int32, eager=True)
    item_ids = pl.DataFrame({"item_idx": ids, "raw_id": (ids + 1).cast(pl.Utf8)})
    notes: dict[str, object] = {
        "raw_layout": "synthetic",
        "spec": spec.to_dict(),
        "users_listed": nu,
        "users_listed_unrated": 0,
        "items_listed": ni,
        "items_listed_unrated": 0,
    }
    return CanonicalTables(ratings, users, items, user_ids, item_ids, notes), lat


def _users(spec: SyntheticSpec, p_f: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    nu = spec.n_users
    age = np.asarray(AGE_GROUPS)[_quantile_bins(_side_projection(p_f, 1, spec.side_noise, rng)[:, 0], AGE_SHARES)]
    gender = np.where(_quantile_bins(_side_projection(p_f, 1, spec.side_noise, rng)[:, 0], (0.28, 0.72)) == 0, "F", "M")
    occ = np.argmax(_side_projection(p_f, len(OCCUPATIONS), spec.side_noise, rng), axis=1)
    return pl.DataFrame(
        {
            "user_idx": np.arange(nu, dtype=np.int32),
            "age": pl.Series(age, dtype=pl.Int32),
            "gender": gender,
            "occupation": np.asarray(OCCUPATIONS)[occ],
        }
    )


def _items(spec: SyntheticSpec, q_f: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    ni, ng = spec.n_items, len(GENRES)
    # genres: the primary is the argmax of a projection of the item factor; others when clearly high too
    g = _side_projection(q_f, ng, spec.side_noise, rng)
    primary = np.argmax(g, axis=1)
    second = np.argsort(-g, axis=1)[:, 1:3]
    extra = np.take_along_axis(g, second, axis=1) > 1.5
    g_rows = np.concatenate([np.arange(ni), np.repeat(np.arange(ni), 2)[extra.ravel()]])
    g_cols = np.concatenate([primary, second.ravel()[extra.ravel()]])
    order = np.lexsort((g_cols, g_rows))
    genres = _list_column(ni, g_rows[order], np.asarray(GENRES)[g_cols[order]], "item_idx", "genres")
    # tags: the item's best-matching tags (more for popular items), from a tag-direction projection
    n_t = np.clip(np.floor(np.log2(counts + 1)).astype(np.int64) - 1, 0, min(spec.max_tags_per_item, spec.n_tags))
    t_score = _side_projection(q_f, spec.n_tags, spec.side_noise, rng)
    top = np.argsort(-t_score, axis=1)[:, : max(int(n_t.max()), 0)] if n_t.max() > 0 else np.zeros((ni, 0), int)
    take = np.arange(top.shape[1])[None, :] < n_t[:, None]
    t_rows = np.broadcast_to(np.arange(ni)[:, None], top.shape)[take]
    tag_names = np.char.add("tag-", _words(spec.n_tags))
    tags = _list_column(ni, t_rows, tag_names[top[take]], "item_idx", "tags")
    # titles: a genre-flavoured first word, a free second word, a year
    vocab = _words(spec.title_vocab)
    per_genre = spec.title_vocab // ng
    first = primary * per_genre + rng.integers(0, per_genre, size=ni)
    second_w = rng.integers(0, spec.title_vocab, size=ni)
    year = rng.integers(1930, 2015, size=ni)
    title = np.char.add(
        np.char.add(np.char.add(np.char.add(vocab[first], " "), vocab[second_w]), " ("), year.astype(str)
    )
    return pl.DataFrame({"item_idx": np.arange(ni, dtype=np.int32), "title": np.char.add(title, ")")}).with_columns(
        genres["genres"], tags["tags"]
    )


# ---------------------------------------------------------------------------------------------- datasets
def read_spec(path: Path, base: SyntheticSpec) -> SyntheticSpec:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(path, "synthetic spec missing (run the acquire stage)", expected="a SPEC.json") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise DataError(path, f"not valid JSON: {exc}", line=line) from exc
    return SyntheticSpec.from_dict(raw, path, base)


@register
class Synthetic(Dataset):
    name = "synthetic"
    rating_scale = (1.0, 5.0)
    implicit = False
    spec: ClassVar[SyntheticSpec] = SyntheticSpec()
    expected = ExpectedCounts(users=(1000, 1000), items=(1000, 1000), ratings=(50_000, 50_000))
    user_side = (SideField("age", "age"), SideField("gender", "categorical"), SideField("occupation", "categorical"))
    item_side = (SideField("title", "text"), SideField("genres", "multilabel"), SideField("tags", "bag"))

    def acquire(self, dest: Path, source_dir: Path | None, timeout_s: float) -> AcquireResult:
        spec, origin = self.spec, "class defaults"
        if source_dir is not None:
            src = Path(source_dir)
            path = src if src.is_file() else src / SPEC_FILE
            if path.is_file():
                spec, origin = read_spec(path, self.spec), str(path)
            else:
                log.info("%s: no %s in %s; using the default spec", self.name, SPEC_FILE, src)
        self._check_kind(spec, origin)
        with staged_dir(dest, (SPEC_FILE,)) as tmp:
            (tmp / SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=2) + "\n", encoding="utf-8")
        return AcquireResult(dest, "generated", "synthetic-spec", detail=f"spec from {origin}")

    def is_acquired(self, raw_dir: Path) -> bool:
        return (raw_dir / SPEC_FILE).is_file()

    def load_spec(self, raw_dir: Path) -> SyntheticSpec:
        spec = read_spec(raw_dir / SPEC_FILE, self.spec)
        self._check_kind(spec, raw_dir / SPEC_FILE)
        return spec

    def configure(self, raw_dir: Path) -> Synthetic:
        self.expected = self.expected_for(raw_dir)  # type: ignore[misc]
        return self

    def expected_for(self, raw_dir: Path) -> ExpectedCounts:
        """The exact counts of the spec in ``raw_dir`` (the class attribute holds those of the defaults)."""
        s = self.load_spec(raw_dir)
        return ExpectedCounts((s.n_users, s.n_users), (s.n_items, s.n_items), (s.n_ratings, s.n_ratings))

    def parse(self, raw_dir: Path) -> CanonicalTables:
        spec = self.load_spec(raw_dir)
        self.expected = self.expected_for(raw_dir)  # type: ignore[misc]
        tables, _ = generate(spec)
        return tables

    def _check_kind(self, spec: SyntheticSpec, source: str | Path) -> None:
        if spec.implicit != self.implicit:
            other = "synthetic-implicit" if spec.implicit else "synthetic"
            raise DataError(
                source,
                f"spec says implicit={str(spec.implicit).lower()}, which is the dataset {other!r}, not {self.name!r}",
                expected=f"implicit: {str(self.implicit).lower()}",
                found=spec.implicit,
            )


@register
class SyntheticImplicit(Synthetic):
    name = "synthetic-implicit"
    rating_scale = (0.0, 1.0)
    implicit = True
    spec = SyntheticSpec(implicit=True)
