"""How the data is split for training and evaluation: impressions by time (validation and test are the
latest stretches of the log, the rest trains), labelled videos at random per category."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .errors import ModelError
from .features import FeatureSet

VAL_FRACTION = 0.1
TEST_FRACTION = 0.2
CATEGORY_HOLDOUT = 0.15  # of each category's labelled videos, for validation and again for test
MIN_CLICKS = 2


@dataclass
class Split:
    train: np.ndarray  # impression rows
    val: np.ndarray
    test: np.ndarray
    val_start: int  # Unix seconds: validation rows are at or after this, test rows at or after test_start
    test_start: int
    category_train: torch.Tensor  # catalog indices of labelled videos
    category_val: torch.Tensor
    category_test: torch.Tensor

    def summary(self) -> dict:
        return {
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
            "val_start": self.val_start,
            "test_start": self.test_start,
            "category_train": len(self.category_train),
            "category_val": len(self.category_val),
            "category_test": len(self.category_test),
        }

    def cut_at(self, ts: np.ndarray, val_start: int, test_start: int) -> Split:
        """The same split with the impressions cut at given times (a saved model's own, as the log grows)."""
        rows = np.arange(len(ts))
        return replace(
            self,
            train=rows[ts < val_start],
            val=rows[(ts >= val_start) & (ts < test_start)],
            test=rows[ts >= test_start],
            val_start=val_start,
            test_start=test_start,
        )


def split_by_time(
    ts: np.ndarray, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Rows before / in / after the validation stretch, cut at time quantiles (rows of one second stay together)."""
    if len(ts) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), 0, 0
    test_start = int(np.quantile(ts, 1 - test_fraction, method="higher"))
    val_start = int(np.quantile(ts, 1 - test_fraction - val_fraction, method="higher"))
    rows = np.arange(len(ts))
    return (
        rows[ts < val_start],
        rows[(ts >= val_start) & (ts < test_start)],
        rows[ts >= test_start],
        val_start,
        test_start,
    )


def split_categories(category: torch.Tensor, holdout: float, seed: int) -> tuple[torch.Tensor, ...]:
    """Labelled videos into train / validation / test, per category; a category with fewer than three
    labelled videos keeps them all for training (it can still be learnt, not measured)."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    labels = category.numpy()
    for c in np.unique(labels[labels >= 0]):
        members = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(members) * holdout)) if len(members) >= 3 else 0
        k = min(k, (len(members) - 1) // 2)
        val += members[:k].tolist()
        test += members[k : 2 * k].tolist()
        train += members[2 * k :].tolist()
    return tuple(torch.tensor(sorted(x), dtype=torch.long) for x in (train, val, test))


def make_split(
    features: FeatureSet,
    *,
    seed: int = 0,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
    category_holdout: float = CATEGORY_HOLDOUT,
) -> Split:
    train, val, test, val_start, test_start = split_by_time(features.ts, val_fraction, test_fraction)
    cat_train, cat_val, cat_test = split_categories(features.catalog.tensors.category, category_holdout, seed)
    return Split(train, val, test, val_start, test_start, cat_train, cat_val, cat_test)


def check_learnable(features: FeatureSet, split: Split) -> None:
    """Refuse clearly when there is nothing to learn rather than fail deep inside torch."""
    imp = features.impressions
    if len(imp) == 0:
        raise ModelError(
            "nothing to learn: the store has no interactions (import a log with `vidrec import-interactions`)"
        )
    clicks = int(imp.click.sum())
    if clicks < MIN_CLICKS:
        raise ModelError(f"nothing to learn: the interaction log has {clicks} click(s); the model needs clicks")
    if len(split.train) == 0 or imp.click[torch.from_numpy(split.train)].sum() == 0:
        raise ModelError(
            "nothing to learn: no clicks in the training period (the log before its validation and test stretches)"
        )
    if len(split.val) == 0:
        raise ModelError("the interaction log is too short in time to hold out a validation period")
