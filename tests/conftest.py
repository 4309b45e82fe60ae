"""Shared fixtures: one tiny demo world and one catalog ingested from it, built once per test session."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests/media.py

from app.cli import main  # noqa: E402
from app.demo import generate_world  # noqa: E402
from ingest.interactions import import_interactions  # noqa: E402
from ingest.pipeline import IngestOptions, ingest  # noqa: E402
from ingest.store import Store  # noqa: E402

TINY_WORLD = dict(videos=36, users=24, impressions=3000, days=30, seed=0)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    return generate_world(tmp_path_factory.mktemp("world"), progress=False, **TINY_WORLD)


@pytest.fixture(scope="session")
def tiny_catalog(tiny_world, tmp_path_factory) -> Path:
    """A data dir holding the tiny world, ingested with the tiny CLIP, with its interaction log. Read only."""
    data_dir = tmp_path_factory.mktemp("catalog")
    store = Store(data_dir)
    report = ingest(store, manifest=tiny_world.manifest, options=IngestOptions(clip="tiny", progress=False))
    assert report.ingested == TINY_WORLD["videos"], report.failed
    import_interactions(store, tiny_world.interactions)
    store.close()
    return data_dir


@pytest.fixture
def catalog_copy(tiny_catalog, tmp_path) -> Path:
    """A private copy of the tiny catalog, for tests that change it."""
    target = tmp_path / "data"
    shutil.copytree(tiny_catalog, target)
    return target


@pytest.fixture
def one_torch_thread():
    """Tiny tensors gain nothing from a second thread, and where other processes share the cores it makes every
    step many times slower (see models/trainer.py's fit)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cli(capsys):
    """Run `vidrec ARGS` in-process; returns (exit status, parsed JSON or raw stdout)."""

    def run(*args) -> tuple[int, object]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main([str(a) for a in args])
        out = capsys.readouterr().out
        try:
            return exited.value.code, json.loads(out)
        except json.JSONDecodeError:
            return exited.value.code, out

    return run


@pytest.fixture(scope="session")
def tuned_catalog(tiny_catalog, tmp_path_factory):
    """The tiny catalog after tune-clip (its CLIP version 2), and tune-clip's report. Read only."""
    from ingest.tune import TuneOptions, tune_catalog_clip

    data_dir = tmp_path_factory.mktemp("tuned") / "data"
    shutil.copytree(tiny_catalog, data_dir)
    store = Store(data_dir)
    report = tune_catalog_clip(store, TuneOptions(epochs=TUNE_EPOCHS, progress=False))
    store.close()
    return data_dir, report


TUNE_EPOCHS = 15


@pytest.fixture(scope="session")
def trained_catalog(tuned_catalog, tmp_path_factory):
    """The tuned tiny catalog with a trained multi-task model and its indexes. Read only."""
    from index.api import Vidrec
    from ingest.learning import TrainOptions, train_and_save

    data_dir = tmp_path_factory.mktemp("trained") / "data"
    shutil.copytree(tuned_catalog[0], data_dir)
    store = Store(data_dir)
    report = train_and_save(store, TrainOptions(epochs=TRAIN_EPOCHS, progress=False))
    store.close()
    Vidrec(data_dir).refresh_indexes()
    return data_dir, report


TRAIN_EPOCHS = 8


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """One local Ray cluster for the whole session (2 CPUs; its temp files under the session's tmp path)."""
    ray = pytest.importorskip("ray")  # the dev extra installs it
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(tmp_path_factory.mktemp("ray")), log_to_driver=False)
    yield ray
    ray.shutdown()


# ---- the web UI's AppTest files (helpers in ui_support.py) ----------------------------------------------------
@pytest.fixture(scope="module")
def ui_base(trained_catalog, tmp_path_factory) -> Path:
    """The trained tiny catalog with one video given a hostile title. Read only: tests that write copy it."""
    from ui_support import EVIL

    data_dir = tmp_path_factory.mktemp("ui") / "data"
    shutil.copytree(trained_catalog[0], data_dir)
    db = sqlite3.connect(data_dir / "catalog.db")
    db.execute("UPDATE videos SET title = ? WHERE video_id = (SELECT MIN(video_id) FROM videos)", (EVIL,))
    db.commit()
    db.close()
    return data_dir


@pytest.fixture
def ui_data(ui_base, tmp_path, monkeypatch) -> Path:
    """A private copy that the app under test opens (as `vidrec serve` would hand it over)."""
    from app import common

    target = tmp_path / "data"
    shutil.copytree(ui_base, target)
    monkeypatch.setitem(common.options, "data_dir", None)  # CLI tests may have left --data-dir behind
    monkeypatch.setenv("VIDREC_DATA_DIR", str(target))
    return target
