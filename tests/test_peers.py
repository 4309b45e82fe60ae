"""The LightGBM peer of the evaluation table (ingest/learning/peers.py): its rates never see a row's own
label, it beats popularity where personal taste matters, and without LightGBM the table simply lacks it."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

from app.demo import load_truth
from ingest.learning import TrainOptions, peers
from ingest.learning.evaluation import ablation_table
from ingest.learning.features import build_features
from ingest.store import Store

RATES = peers.RATE_FEATURES


@pytest.fixture(scope="module")
def features(tiny_catalog):
    return build_features(Store(tiny_catalog, read_only=True))


def flipped(features, row: int):
    """A copy of the features with one impression's click flipped (nothing else changed)."""
    impressions = features.impressions.take(np.arange(len(features.impressions)))  # copies every tensor
    impressions.click[row] = 1 - impressions.click[row]
    return replace(features, impressions=impressions)


def test_a_rows_own_click_never_feeds_its_own_rates(features):
    split = TrainOptions().split(features)
    before = peers.peer_features(features, split, seed=0)
    click, watch = features.impressions.click.numpy(), features.impressions.watch.numpy()
    clicked = split.train[(click[split.train] > 0.5) & ~np.isnan(watch[split.train])]  # its like/watch count too
    for row in (clicked[len(clicked) // 2], split.train[click[split.train] < 0.5][-1]):
        after = peers.peer_features(flipped(features, row), split, seed=0)
        for name in RATES:
            assert after[name][row] == before[name][row], name
        changed = np.flatnonzero(after["user_click"] != before["user_click"])
        assert len(changed) and row not in changed  # the click does count, for the user's rows in other folds
    after = peers.peer_features(flipped(features, split.test[0]), split, seed=0)
    assert all(np.array_equal(after[name], before[name]) for name in RATES)  # test labels feed nothing


def test_training_folds_keep_whole_days_together(features):
    split = TrainOptions().split(features)
    fold = peers.training_folds(features.ts, split.train, seed=3, folds=peers.FOLDS)
    day = features.ts[split.train] // peers.DAY
    assert set(fold.tolist()) == set(range(peers.FOLDS))
    assert all(len(set(fold[day == d].tolist())) == 1 for d in np.unique(day))


def test_lightgbm_row_beats_popularity_beside_the_oracle(tiny_catalog, tiny_world):
    pytest.importorskip("lightgbm")  # the dev extra installs it
    store = Store(tiny_catalog, read_only=True)
    truth = load_truth(tiny_world.world_dir)
    rows = ablation_table(store, only=[peers.PEER], truth=truth, progress=False)
    value = {(r["name"], r["task"], r["metric"]): r["value"] for r in rows}
    lightgbm = value[(peers.PEER, "click", "auc")]
    assert lightgbm > value[("popularity in context", "click", "auc")] + 0.03
    assert value[(peers.PEER, "click", "auc_vs_oracle")] == pytest.approx(
        lightgbm / value[("oracle (demo truth)", "click", "auc")]
    )
    assert {(peers.PEER, "like", "auc"), (peers.PEER, "watch", "mae")} <= set(value)
    again = ablation_table(store, only=[peers.PEER], progress=False)  # seeded and single-threaded: the same
    assert next(r["value"] for r in again if r["name"] == peers.PEER and r["metric"] == "auc") == lightgbm


def test_without_lightgbm_the_table_has_no_such_row(tiny_catalog, monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # `import lightgbm` now fails as if not installed
    assert not peers.available()
    rows = ablation_table(Store(tiny_catalog, read_only=True), only=[peers.PEER], progress=False)
    names = {r["name"] for r in rows}
    assert peers.PEER not in names and "popularity in context" in names
