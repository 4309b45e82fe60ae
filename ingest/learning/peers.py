"""A peer for the evaluation table: gradient-boosted trees (LightGBM) on the features a practitioner
would build in an afternoon, trained on the multi-task model's own split (same training, validation and
test rows) so that its AUCs stand beside the model's. LightGBM is optional (`pip install vidrec[peers]`,
in the dev extra); without it `available()` is False and the table simply has no such row.

The features, per impression, and why each is there:

- **user click rate**: some people click much more than others (the user bias);
- **video click rate**: some videos are better than others (the video's quality and appeal);
- **user-by-category click rate**: what this person likes (interest); the category is the catalog's
  label, "unlabelled" being a category of its own;
- **user-by-device click rate**: what this person does on a phone is not what they do on a TV;
- **category, hour, weekday, device, region**, as they are: the trees find the context-by-content
  interactions (cooking at lunch on a phone) by splitting on them together with the rates;
- **the video's duration** (log seconds), a catalog column the multi-task model sees too: a long video
  is not watched on a phone as on a TV. (Not in issue 18's list of the peer's features; it added 0.009
  to the click AUC on the demo world's validation days, and the peer should be as strong as is honest.)

- **the user's and the video's like rate and mean watched fraction** among their clicks: what people do
  once they clicked says something about the video (and the person) that the click rate does not. (Not
  in issue 18's list either: +0.003 on the validation days' click AUC.)

The click, like and watch models (one each) all have these features.

How the rates avoid target leakage (a row's own label must never feed its own feature, else the trees
learn to read the answer off it): every rate is a smoothed mean over the *training* rows only,
``(sum + PRIOR * base) / (count + PRIOR)``, where the base is the global rate (for user and video) or
the user's own rate (for user-by-category and user-by-device), computed the same way. On the training
rows the rates are **out of fold**: the training days are dealt at random (seeded) into `FOLDS` folds of
whole days, and a row's rates come from the training rows of the other folds only (its own click, and
those of its own day, never count). On the validation and test rows they come from the whole training
period, so nothing of the validation or test labels is ever used. Whole days rather than single rows go
into a fold (UTC days) so that, like a test row, a training row mostly does not see the clicks of its
own visit.

Training: binary log loss for click and like, cross-entropy on the watched fraction for watch (the
multi-task model's losses); early stopping on the validation days; one thread, deterministic, seeded.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from models.metrics import binary_metrics, regression_metrics

from .features import FeatureSet
from .split import Split

logger = logging.getLogger(__name__)

PEER = "lightgbm"  # the row's name in the evaluation table
FOLDS = 5
PRIOR = 20.0  # pseudo-impressions of the base rate in every smoothed rate
ROUNDS = 2000  # at most; early stopping on the validation days ends far sooner
PATIENCE = 50
DAY = 86_400
PARAMS = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 1,  # the cores are shared; a fit takes seconds anyway
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
RATE_FEATURES = [
    "user_click",
    "video_click",
    "user_category_click",
    "user_device_click",
    "user_like",
    "video_like",
    "user_watch",
    "video_watch",
]
CONTEXT_FEATURES = ["category", "duration", "hour", "weekday", "device", "region"]
CATEGORICAL = ["category", "device", "region"]


def available() -> bool:
    """Whether LightGBM can be imported (the optional `peers` extra)."""
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        return False
    return True


# ---- out-of-fold rates ----------------------------------------------------------------------------------------
def training_folds(ts: np.ndarray, train: np.ndarray, seed: int, folds: int) -> np.ndarray:
    """The fold (0..folds-1) of each training row: whole days dealt at random into folds (rows at random
    when the training period has fewer days than folds)."""
    rng = np.random.default_rng(seed)
    day = ts[train] // DAY
    days = np.unique(day)
    if len(days) < folds:
        return rng.integers(folds, size=len(train))
    fold_of_day = np.empty(len(days), np.int64)
    fold_of_day[rng.permutation(len(days))] = np.arange(len(days)) % folds
    return fold_of_day[np.searchsorted(days, day)]


class RateEncoder:
    """Smoothed rates of a target per key, out of fold on the training rows and from the whole training
    period elsewhere. row_fold: per impression, its fold if it is a training row, else `folds` (meaning
    "all the training rows"); source: the training rows whose target is known."""

    def __init__(self, row_fold: np.ndarray, folds: int, target: np.ndarray, source: np.ndarray):
        self.row_fold, self.folds, self.target, self.source = row_fold, folds, target, source

    def sums(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[N] sum of the target and count of source rows sharing each row's key, over what the row may see."""
        size = int(codes.max()) + 1 if len(codes) else 1
        per_fold = np.zeros((2, self.folds, size))
        fold = self.row_fold[self.source]
        for f in range(self.folds):
            rows = self.source[fold == f]
            per_fold[0, f] = np.bincount(codes[rows], self.target[rows], size)
            per_fold[1, f] = np.bincount(codes[rows], minlength=size)
        # [2, folds + 1, size]: for each fold, the sum over the other folds (added up, not subtracted from the
        # total, so that nothing of the fold's own rows can reach it, not even through rounding); then all
        seen = np.stack([per_fold[:, np.arange(self.folds) != f].sum(1) for f in range(self.folds)], 1)
        seen = np.concatenate([seen, per_fold.sum(1, keepdims=True)], 1)
        return seen[0, self.row_fold, codes], seen[1, self.row_fold, codes]

    def rate(self, codes: np.ndarray, base: np.ndarray) -> np.ndarray:
        s, n = self.sums(codes)
        return (s + PRIOR * base) / (n + PRIOR)

    def global_rate(self) -> np.ndarray:
        s, n = self.sums(np.zeros(len(self.row_fold), np.int64))
        return np.where(n > 0, s / np.maximum(n, 1), 0.0)


def _codes(*columns: np.ndarray) -> np.ndarray:
    """Dense int codes of the combination of int columns (one code per distinct tuple)."""
    return np.unique(np.stack(columns, 1), axis=0, return_inverse=True)[1].reshape(-1)


def peer_features(features: FeatureSet, split: Split, seed: int = 0) -> dict[str, np.ndarray]:
    """{feature name: [N] values} for every impression (see the module's docstring); the rates of training
    rows out of fold, those of the other rows from the training period."""
    imp = features.impressions
    n = len(imp)
    user, video = imp.group.numpy(), imp.video.numpy()
    device, region = imp.device.numpy(), imp.region.numpy()
    labels = features.catalog.tensors.category.numpy()
    category = np.where(labels[video] >= 0, labels[video], len(features.vocabulary.categories))  # last: unlabelled
    row_fold = np.full(n, FOLDS, np.int64)
    row_fold[split.train] = training_folds(features.ts, split.train, seed, FOLDS)
    click, like, watch = imp.click.numpy().astype(np.float64), imp.like.numpy(), imp.watch.numpy()
    out: dict[str, np.ndarray] = {}

    clicks = RateEncoder(row_fold, FOLDS, click, split.train)
    overall = clicks.global_rate()
    out["user_click"] = clicks.rate(user, overall)
    out["video_click"] = clicks.rate(video, overall)
    out["user_category_click"] = clicks.rate(_codes(user, category), out["user_click"])
    out["user_device_click"] = clicks.rate(_codes(user, device), out["user_click"])

    train_clicked = split.train[click[split.train] > 0.5]
    for name, target in (("like", like), ("watch", watch)):
        known = train_clicked[~np.isnan(target[train_clicked])]
        encoder = RateEncoder(row_fold, FOLDS, np.nan_to_num(target.astype(np.float64)), known)
        base = encoder.global_rate()
        out[f"user_{name}"] = encoder.rate(user, base)
        out[f"video_{name}"] = encoder.rate(video, base)

    out.update(
        category=category,
        duration=np.log1p(features.catalog.duration[video]),
        hour=imp.hour.numpy(),
        weekday=imp.weekday.numpy(),
        device=device,
        region=region,
    )
    return out


# ---- fit and predict ------------------------------------------------------------------------------------------
def fit_predict(
    columns: dict[str, np.ndarray],
    names: list[str],
    target: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    predict: np.ndarray,
    objective: str,
    seed: int,
) -> tuple[np.ndarray, int]:
    """Boosted trees on the train rows, stopped early on the val rows; predictions on `predict` rows and the
    number of trees kept."""
    import lightgbm as lgb

    x = np.stack([columns[c] for c in names], 1).astype(np.float64)
    categorical = [c for c in names if c in CATEGORICAL]
    params = {**PARAMS, "objective": objective, "seed": seed}
    train_set = lgb.Dataset(x[train], target[train], feature_name=names, categorical_feature=categorical)
    val_set = lgb.Dataset(x[val], target[val], reference=train_set)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=ROUNDS,
        valid_sets=[val_set],
        callbacks=[lgb.early_stopping(PATIENCE, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    return np.asarray(booster.predict(x[predict], num_iteration=best)), best


def lightgbm_metrics(features: FeatureSet, split: Split, seed: int = 0) -> dict:
    """{task: metrics} of the LightGBM peer on the split's test rows, computed like the multi-task model's
    (click on every test row; like and watch on clicked test rows where they are known); empty when the
    split leaves nothing to learn."""
    started = time.perf_counter()
    imp = features.impressions
    click, like, watch, group = imp.click.numpy(), imp.like.numpy(), imp.watch.numpy(), imp.group.numpy()
    test = split.test
    if min(len(split.train), len(split.val), len(test)) == 0 or len(np.unique(click[split.train])) < 2:
        return {}  # nothing to learn or to stop on (the multi-task model refuses such a log too)
    columns = peer_features(features, split, seed)
    out: dict = {}
    names = RATE_FEATURES + CONTEXT_FEATURES
    p, trees = fit_predict(columns, names, click, split.train, split.val, test, "binary", seed)
    out["click"] = binary_metrics(click[test], p, group[test])
    for task, target in (("like", like), ("watch", watch)):  # on clicked rows whose label is known
        train, val, rows = (r[(click[r] > 0.5) & ~np.isnan(target[r])] for r in (split.train, split.val, test))
        if min(len(train), len(val), len(rows)) == 0 or (task == "like" and len(np.unique(target[train])) < 2):
            continue
        objective = "binary" if task == "like" else "xentropy"  # watch: cross-entropy on the fraction
        q, _ = fit_predict(columns, names, target, train, val, rows, objective, seed)
        out[task] = (
            binary_metrics(target[rows], q, group[rows]) if task == "like" else regression_metrics(target[rows], q)
        )
    logger.info(
        "%s seed %d: click AUC %s (%d trees) in %.1f s",
        PEER,
        seed,
        "n/a" if out["click"]["auc"] is None else f"{out['click']['auc']:.4f}",
        trees,
        time.perf_counter() - started,
    )
    return out
