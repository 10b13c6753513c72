"""Shared fixtures: small raw data in the official MovieLens-100K format, real-data location, Prefect, and
the network seams (no test reaches beyond this machine: downloads are stand-ins serving local files)."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import tasks.acquire as acquire_mod
from tasks.acquire import verify
from tasks.common.errors import AcquisitionError

os.environ.setdefault("HYBRIDREC_THREADS", "1")  # tests may run beside other processes on 2 cores
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "datasets"
GENRES = 19


def write_ml100k(dest: Path, n_users: int = 60, n_items: int = 80, per_user: int = 25, seed: int = 0) -> Path:
    """Write u.data / u.item (latin-1) / u.user / u.genre in the exact GroupLens format.

    Ratings follow a low-rank signal plus noise so that models have something to learn.
    """
    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    pu, qi = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    lines = []
    for u in range(n_users):
        items = rng.choice(n_items, size=min(per_user, n_items), replace=False)
        for i in items:
            score = 3.2 + 0.8 * pu[u] @ qi[i] / np.sqrt(3) + rng.normal(scale=0.5)
            r = int(np.clip(np.rint(score), 1, 5))
            ts = 880000000 + int(rng.integers(0, 10_000_000))
            lines.append(f"{u + 1}\t{i + 1}\t{r}\t{ts}")
    (dest / "u.data").write_text("\n".join(lines) + "\n", encoding="ascii")
    occupations = ["writer", "engineer", "student", "other"]
    users = [f"{u + 1}|{18 + u % 50}|{'MF'[u % 2]}|{occupations[u % 4]}|{10000 + u * 37}" for u in range(n_users)]
    (dest / "u.user").write_text("\n".join(users) + "\n", encoding="ascii")
    items = []
    for i in range(n_items):
        flags = ["0"] * GENRES
        flags[1 + i % (GENRES - 1)] = "1"
        title = f"Café Movie {i + 1} (199{i % 10})" if i % 7 == 0 else f"Movie number {i + 1} (19{80 + i % 20})"
        items.append(f"{i + 1}|{title}|01-Jan-1995||http://us.imdb.com/M/title-exact?x{i}|" + "|".join(flags))
    (dest / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (dest / "u.genre").write_text("\n".join(f"g{k}|{k}" for k in range(GENRES)) + "\n", encoding="ascii")
    return dest


@pytest.fixture
def ml100k_small(tmp_path: Path) -> Path:
    return write_ml100k(tmp_path / "raw-ml-100k")


@pytest.fixture(scope="session")
def shared_ml100k() -> Path:
    path = SHARED / "ml-100k"
    if not (path / "u.data").is_file():
        pytest.skip("../shared/datasets/ml-100k not present")
    return path


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the session (about 15 s once)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


SMALL_MODELS = {
    "biased-mf": {"factors": 8, "lr": 0.01, "l2": 0.05, "batch_size": 256},
    "autorec-i": {"hidden": [32], "l2": 1.0, "lr": 0.003, "batch_size": 16},
    "nrp-direct": {"encoder": [32, 16], "predictor": [32, 16], "lr": 0.001, "batch_size": 128},
    "bpr": {"factors": 8, "lr": 0.01, "batch_size": 256},
}
RATING_MODELS = ["biased-mf", "autorec-i", "nrp-direct"]


def small_params(
    source_dir: Path, *, max_epochs: int = 3, instances: list[str] | None = None, models: list[str] | None = None
) -> dict:
    """params.yaml content for fast end-to-end runs on the small synthetic data."""
    import yaml

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["acquire"]["source_dir"] = str(source_dir)
    raw["validate"]["expected_counts"] = False
    raw["features"]["svd_k"] = 8
    raw["split"]["instances"] = instances or ["random-80-10-10-s0", "leave-one-out-s0"]
    raw["split"]["loo_negatives"] = 20
    raw["train"].update({"max_epochs": max_epochs, "patience": 2, "threads": 1, "models": models or RATING_MODELS})
    for name, cfg in SMALL_MODELS.items():
        raw["models"][name] = {**raw["models"].get(name, {}), **cfg}
    raw["evaluate"]["full_k"] = [5, 10]
    return raw


def write_params(root: Path, params: dict) -> Path:
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


@pytest.fixture
def prepared_root(tmp_path: Path, ml100k_small: Path) -> Path:
    """A project root with ingested, featurised and split small data (no training yet)."""
    from tasks.acquire import acquire_dataset
    from tasks.common.config import load_params
    from tasks.common.paths import Layout
    from tasks.datasets import get_dataset
    from tasks.features import build_features
    from tasks.ingest import ingest_dataset, load_tables
    from tasks.splits.stage import make_splits

    root = write_params(tmp_path / "proj", small_params(ml100k_small))
    layout, params = Layout(root), load_params(root / "params.yaml")
    acquire_dataset(layout, "ml-100k", params.acquire.source_dir, 5)
    ingest_dataset(layout, "ml-100k")
    t = load_tables(layout, "ml-100k")
    build_features(
        get_dataset("ml-100k"),
        t["users"],
        t["items"],
        t["user_ids"].height,
        t["item_ids"].height,
        layout.features("ml-100k"),
        age_encoding="raw",
        min_df=1,
        svd_k=8,
        seed=0,
    )
    make_splits(layout, params, "ml-100k")
    return root


# ---------------------------------------------------------------------------------------------- network seams
LOOPBACK = ("127.0.0.1", "::1", "localhost")
_connect = socket.socket.connect


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never use the network: a connection beyond loopback (Prefect's local server is fine) fails."""

    def guarded(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in LOOPBACK:
            raise OSError(f"tests do not use the network (tried {address})")
        _connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


def no_network(url: str, dest: Path, checksum: object, timeout_s: float = 30.0) -> Path:
    """A stand-in for ``tasks.acquire.download`` on a machine without network."""
    raise AcquisitionError(f"could not download {url}: <urlopen error [Errno -3] no network>")


def fake_download(source: Path | Callable[[str], Path], calls: list[str]):  # type: ignore[no-untyped-def]
    """A stand-in for ``tasks.acquire.download`` serving a local file (``source``, or ``source(url)``) and
    verifying it like the real one; every URL asked for is appended to ``calls``."""

    def fake(url: str, dest: Path, checksum, timeout_s: float = 30.0) -> Path:  # type: ignore[no-untyped-def]
        calls.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source(url) if callable(source) else source, dest)
        try:
            verify(dest, checksum)
        except AcquisitionError:
            dest.unlink()
            raise
        return dest

    return fake


def go_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: ModuleType) -> Path:
    """``module.download`` fails as without network; the download cache is a fresh temporary directory."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(module, "download", no_network)
    monkeypatch.setattr(acquire_mod, "DEFAULT_CACHE", cache)
    return cache
