"""Evaluation of the multi-task model: the saved model on its test period beside a popularity-in-context
baseline (`vidrec eval`), the ablation table (`vidrec eval --ablations`, with a LightGBM peer where
LightGBM is installed: see peers.py) and, where the caller has one, an oracle.

An oracle is a world's ground truth (the demo world has one): it is passed in by whoever has it (the
command layer, tests, benchmarks), never looked up here, so that the product learns and evaluates from
the store alone. Everything that uses it says so in its name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from models.context import HOUR_SLOTS, hour_slot
from models.data import Impressions
from models.metrics import auc, binary_metrics
from models.multitask import GROUPS, MultiTaskNet

from ..store import Store, now_iso, write_text_atomically
from . import peers
from .checkpoint import options_of
from .features import FeatureSet, build_features
from .ranking import click_probability
from .scoring import LoadedModel
from .split import Split
from .training import DEFAULT_ARCH, DEFAULT_BALANCE, DEFAULT_EPOCHS, Trained, TrainOptions, test_metrics, train_model

logger = logging.getLogger(__name__)


class Oracle(Protocol):
    """A world's true probabilities, per impression (arrays of user, video, hour, weekday, device, region)."""

    video_category: dict[str, str]

    def click_probability(self, users, videos, hour, weekday, device, region) -> np.ndarray: ...

    def like_probability(self, users, videos, hour, weekday, device, region) -> np.ndarray: ...

    def watch_fraction(self, users, videos, hour, weekday, device, region) -> np.ndarray: ...

    def click_logit_without_bias(self, users, videos, hour, weekday, device, region) -> np.ndarray: ...


TABLE = [
    ("click", "auc"),
    ("click", "gauc"),
    ("click", "logloss"),
    ("like", "auc"),
    ("like", "gauc"),
    ("watch", "mae"),
    ("category", "accuracy"),
    ("category", "macro_f1"),
    ("category", "unlabelled_accuracy"),
    ("context", "accuracy"),
    ("context", "hour_effect_corr"),
    ("context", "device_effect_corr"),
    ("retrieval", "recall_at_10"),
    ("ranking", "ndcg_at_10"),
    ("ranking", "recall_at_10"),
]


# ---- baselines ---------------------------------------------------------------------------------------------
def popularity_in_context(features: FeatureSet, split: Split, rows: np.ndarray, prior: float = 20.0) -> np.ndarray:
    """P(click) from training click rates per (video, hour slot, device), shrunk toward the video's rate,
    itself shrunk toward the global rate: the baseline any learnt model must beat."""
    imp = features.impressions
    slots, devices = HOUR_SLOTS, len(features.vocabulary.devices) + 1

    def key(r):
        return ((imp.video[r] * slots + hour_slot(imp.hour[r])) * devices + imp.device[r]).numpy()

    train = torch.from_numpy(split.train)
    y = imp.click[train].numpy().astype(np.float64)
    size = len(features.catalog.video_ids) * slots * devices
    global_rate = y.mean() if len(y) else 0.0
    v = imp.video[train].numpy()
    n_video = np.bincount(v, minlength=len(features.catalog.video_ids))
    video_rate = (np.bincount(v, y, len(n_video)) + prior * global_rate) / (n_video + prior)
    n_key = np.bincount(key(train), minlength=size)
    c_key = np.bincount(key(train), y, size)
    target = torch.from_numpy(rows)
    k, vt = key(target), imp.video[target].numpy()
    return (c_key[k] + prior * video_rate[vt]) / (n_key[k] + prior)


# ---- an oracle, where the caller has one ---------------------------------------------------------------------
def _truth_columns(features: FeatureSet, data: Impressions) -> tuple:
    vocab = features.vocabulary
    names = [None] + vocab.devices
    regions = [None] + vocab.regions
    return (
        np.array(features.user_ids, dtype=object)[data.group.numpy()],
        np.array(features.catalog.video_ids, dtype=object)[data.video.numpy()],
        data.hour.numpy(),
        data.weekday.numpy(),
        np.array([names[i] for i in data.device.tolist()], dtype=object),
        np.array([regions[i] for i in data.region.tolist()], dtype=object),
    )


def oracle_metrics(truth: Oracle, features: FeatureSet, rows: np.ndarray) -> dict | None:
    """The truth's own probabilities scored like a model on the same rows: the best any model can do."""
    data = features.impressions.take(rows)
    try:
        columns = _truth_columns(features, data)
        p_click = truth.click_probability(*columns)
        p_like, p_watch = truth.like_probability(*columns), truth.watch_fraction(*columns)
    except (KeyError, ValueError):
        return None  # the log holds users, videos or contexts the world does not know
    y = {k: v.numpy() for k, v in data.batch().items()}
    clicked = y["click"] > 0.5
    like_known, watch_known = clicked & ~np.isnan(y["like"]), clicked & ~np.isnan(y["watch"])
    return {
        "click": binary_metrics(y["click"], p_click, y["group"]),
        "like": binary_metrics(y["like"][like_known], p_like[like_known], y["group"][like_known]),
        "watch": {
            "mae": float(np.abs(y["watch"][watch_known] - p_watch[watch_known]).mean()) if watch_known.any() else None
        },
    }


@torch.no_grad()
def context_direction(
    truth: Oracle,
    nets: dict[str, MultiTaskNet],
    features: FeatureSet,
    rows: np.ndarray,
    sample: int = 3000,
    seed: int = 0,
) -> dict | None:
    """Does the model move with context the way the world does? For sampled test rows, the change of the
    model's click logit when the hour moves by 12 (or the device changes) against the truth's change:
    their Pearson correlation (1: same direction and proportion; 0: the model ignores the context)."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(rows, min(sample, len(rows)), replace=False))
    data = features.impressions.take(rows)
    known = (data.device > 0).numpy()
    n_devices = len(features.vocabulary.devices)
    out = {}
    for name, change in (
        ("hour_effect_corr", lambda d: setattr(d, "hour", (d.hour + 12) % 24)),
        ("device_effect_corr", lambda d: setattr(d, "device", (d.device % n_devices) + 1)),
    ):
        moved = data.take(torch.arange(len(data)))
        change(moved)
        try:
            before = truth.click_logit_without_bias(*_truth_columns(features, data))
            after = truth.click_logit_without_bias(*_truth_columns(features, moved))
        except (KeyError, ValueError):
            return None
        p0 = click_probability(nets, data.batch()).double().clamp(1e-6, 1 - 1e-6)
        p1 = click_probability(nets, moved.batch()).double().clamp(1e-6, 1 - 1e-6)
        model_change = (torch.logit(p1) - torch.logit(p0)).numpy()
        mask = known if name == "device_effect_corr" else np.ones(len(rows), bool)
        if mask.sum() > 2 and np.std(model_change[mask]) > 0:
            out[name] = float(np.corrcoef(model_change[mask], (after - before)[mask])[0, 1])
    return out


def add_oracle_share(metrics: dict, oracle: dict | None) -> dict:
    """Adds (in place) the oracle's click AUC and the model's share of it to a model's metrics."""
    if oracle and metrics.get("click", {}).get("auc") and oracle["click"]["auc"]:
        metrics["click"]["oracle_auc"] = oracle["click"]["auc"]
        metrics["click"]["auc_vs_oracle"] = metrics["click"]["auc"] / oracle["click"]["auc"]
    return metrics


def unlabelled_category_accuracy(truth: Oracle, trained: Trained, predictions: np.ndarray) -> float | None:
    """Accuracy of predicted categories on the videos that carry no label in the catalog (the product's
    use of the category head), judged by the world's truth."""
    catalog = trained.features.catalog
    names = trained.features.vocabulary.categories
    unlabelled = np.flatnonzero(catalog.tensors.category.numpy() < 0)
    pairs = [(names[predictions[i].argmax()], truth.video_category.get(catalog.video_ids[i])) for i in unlabelled]
    pairs = [(p, t) for p, t in pairs if t is not None]
    return float(np.mean([p == t for p, t in pairs])) if pairs else None


def with_truth(truth: Oracle | None, trained: Trained, metrics: dict) -> tuple[dict, dict | None]:
    """Adds, given an oracle, the oracle ratio, unlabelled-category accuracy and the context-direction
    check to a model's test metrics (a copy); returns (metrics, oracle metrics or None)."""
    metrics = {t: dict(v) for t, v in metrics.items()}
    if truth is None:
        return metrics, None
    oracle = oracle_metrics(truth, trained.features, trained.split.test)
    add_oracle_share(metrics, oracle)
    for net in trained.nets.values():
        if "category" in net.config.tasks:
            with torch.no_grad():
                net.eval()
                probabilities = net.category_probabilities().numpy()
            metrics.setdefault("category", {})["unlabelled_accuracy"] = unlabelled_category_accuracy(
                truth, trained, probabilities
            )
    direction = context_direction(truth, trained.nets, trained.features, trained.split.test)
    if direction:
        metrics.setdefault("context", {}).update(direction)
    return metrics, oracle


# ---- the table -------------------------------------------------------------------------------------------------
def variants(default_arch: str = DEFAULT_ARCH) -> list[tuple[str, dict]]:
    """(row name, TrainOptions changes): the architectures; the default one without the per-user and per-video
    biases and their priors (on by default: NetConfig.biases), with DCN-v2 cross layers (two, rank 32:
    models/multitask.py's CrossNet), with factorised context-by-content terms (NetConfig.context_terms) and with
    the listwise ranking loss over each visit's impressions (weight 0.1, chosen on validation click AUC:
    models/ranking_loss.py); then the default one without context and with one CLIP modality only."""
    without = lambda *gone: tuple(g for g in GROUPS if g not in gone)  # noqa: E731
    return [
        ("single-task", {"arch": "single-task"}),
        ("shared-bottom", {"arch": "shared-bottom"}),
        ("mmoe", {"arch": "mmoe"}),
        ("ple", {"arch": "ple"}),
        (f"{default_arch} without biases", {"arch": default_arch, "net": {"biases": False}}),
        (f"{default_arch} + cross", {"arch": default_arch, "net": {"cross_layers": 2, "cross_rank": 32}}),
        (f"{default_arch} + context terms", {"arch": default_arch, "net": {"context_terms": True}}),
        (f"{default_arch} + ranking", {"arch": default_arch, "train": {"ranking": 0.1}}),
        (f"{default_arch} without context", {"arch": default_arch, "groups": without("context")}),
        (f"{default_arch} video only", {"arch": default_arch, "groups": without("text_clip")}),
        (f"{default_arch} text only", {"arch": default_arch, "groups": without("video_clip")}),
    ]


def rows_of(name: str, runs: list[dict]) -> list[dict]:
    """Table rows for one variant: the mean over seeds of each metric, with its standard deviation."""
    out = []
    for task, metric in TABLE:
        values = [r.get(task, {}).get(metric) for r in runs]
        values = [v for v in values if v is not None]
        if values:
            out.append(
                {
                    "name": name,
                    "task": task,
                    "metric": metric,
                    "value": float(np.mean(values)),
                    "std": float(np.std(values)) if len(values) > 1 else None,
                    "seeds": len(values),
                }
            )
        if task == "click" and metric == "auc":
            ratios = [r["click"].get("auc_vs_oracle") for r in runs if r.get("click", {}).get("auc_vs_oracle")]
            if ratios:
                out.append(
                    {
                        "name": name,
                        "task": "click",
                        "metric": "auc_vs_oracle",
                        "value": float(np.mean(ratios)),
                        "std": float(np.std(ratios)) if len(ratios) > 1 else None,
                        "seeds": len(ratios),
                    }
                )
    return out


def add_deltas(rows: list[dict], baseline: str = "single-task") -> list[dict]:
    base = {(r["task"], r["metric"]): r["value"] for r in rows if r["name"] == baseline}
    for r in rows:
        b = base.get((r["task"], r["metric"]))
        r["delta_vs_single_task"] = None if b is None or r["name"] == baseline else r["value"] - b
    return rows


def baseline_rows(features: FeatureSet, split: Split, truth: Oracle | None = None) -> list[dict]:
    """Popularity in context and, given one, the oracle, on the same test rows."""
    y = features.impressions.click[torch.from_numpy(split.test)].numpy()
    rows = [
        {
            "name": "popularity in context",
            "task": "click",
            "metric": "auc",
            "value": auc(y, popularity_in_context(features, split, split.test)),
            "std": None,
            "seeds": 1,
        }
    ]
    oracle = oracle_metrics(truth, features, split.test) if truth is not None else None
    if oracle:
        rows += [
            {"name": "oracle (demo truth)", "task": t, "metric": m, "value": oracle[t][m], "std": None, "seeds": 1}
            for t, m in (("click", "auc"), ("click", "gauc"), ("click", "logloss"), ("like", "auc"), ("watch", "mae"))
            if oracle[t].get(m) is not None
        ]
    return rows


def peer_rows(features: FeatureSet, split: Split, truth: Oracle | None = None, seeds: int = 1) -> list[dict]:
    """The LightGBM peer (peers.py) on the same test rows, `seeds` seeds (mean and std, like a variant),
    with its share of the oracle's click AUC given one; no rows when LightGBM is not installed."""
    if not peers.available():
        logger.info("LightGBM is not installed: no %s row (pip install 'vidrec[peers]')", peers.PEER)
        return []
    oracle = oracle_metrics(truth, features, split.test) if truth is not None else None
    runs = [add_oracle_share(peers.lightgbm_metrics(features, split, seed), oracle) for seed in range(seeds)]
    return rows_of(peers.PEER, runs)


def ablation_table(
    store: Store,
    *,
    seeds: int = 1,
    epochs: int = DEFAULT_EPOCHS,
    balance: str = DEFAULT_BALANCE,
    default_arch: str = DEFAULT_ARCH,
    only: list[str] | None = None,
    extra: list[tuple[str, dict]] | None = None,
    progress: bool = True,
    on_run: Callable | None = None,
    truth: Oracle | None = None,
) -> list[dict]:
    """Train every variant (`seeds` seeds each) on the same data and split; one row per (variant, task,
    metric), with the mean over seeds, its standard deviation and the change against single-task (and the
    oracle's rows and ratios, given one). only: the variant names to run; extra: more (name, TrainOptions
    changes) variants. The LightGBM peer's rows come after the variants' (where it is installed; with `only`,
    when "lightgbm" is one of its names)."""
    features = build_features(store)
    rows: list[dict] = []
    split = None
    for name, changes in variants(default_arch) + list(extra or []):
        if only and name not in only:
            continue
        runs = []
        for seed in range(seeds):
            options = TrainOptions(
                **{
                    "seed": seed,
                    "epochs": epochs,
                    "balance": balance,
                    "progress": progress,
                    "diagnostics": False,
                    "graph": False,  # the table compares the networks; the click graph is measured by `train`
                    **changes,
                }
            )  # a variant may change the balancing too
            trained = train_model(store, options, features=features)
            split = trained.split
            metrics, _ = with_truth(truth, trained, trained.metrics)
            runs.append(metrics)
            if on_run:
                on_run(name, seed, trained, metrics)
            click = metrics.get("click", {}).get("auc")
            logger.info(
                "%s seed %d: click AUC %s in %.0f s",
                name,
                seed,
                "n/a" if click is None else f"{click:.4f}",
                trained.seconds,
            )
        rows += rows_of(name, runs)
    if split is None:
        split = TrainOptions().split(features)
    if not only or peers.PEER in only:
        rows += peer_rows(features, split, truth, seeds)
    return add_deltas(rows + baseline_rows(features, split, truth))


def save_ablations(store: Store, rows: list[dict]) -> Path:
    """Keep the latest ablation table beside the models for the UI's Model page."""
    with store.writing("eval --ablations"):
        return write_text_atomically(
            store.paths.ablations, json.dumps({"rows": rows, "created_at": now_iso()}, indent=1)
        )


def model_table(store: Store, model: LoadedModel, truth: Oracle | None = None) -> list[dict]:
    """`vidrec eval` without ablations: the saved model on its own test period, beside the baselines."""
    features = build_features(store, model.vocabulary)
    options = options_of(model)
    split = options.split(features)
    stored = model.config.get("split", {})
    if stored.get("test_start") is not None:  # the model's own cut-offs, even if the log has grown since
        split = split.cut_at(features.ts, stored["val_start"], stored["test_start"])
    trained = Trained(options, model.nets, features, split, {}, {}, {}, 0.0)
    metrics, _ = with_truth(truth, trained, test_metrics(trained))
    name = f"{model.config['arch']} ({model.model_id})"
    return add_deltas(rows_of(name, [metrics]) + baseline_rows(features, split, truth))
