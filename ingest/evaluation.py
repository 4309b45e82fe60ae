"""Evaluation of the multi-task model: ranked lists of held-out clicks, a popularity-in-context baseline,
the ablation table (`vidrec eval --ablations`) and, on the demo world, the oracle.

This is the only product module that may read a demo world's ground truth (DESIGN.md, Quality bars):
`truth_of(store)` finds it in `DATA_DIR/demo-world` and everything that uses it says so in its name.
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from models.data import Impressions
from models.metrics import auc, binary_metrics, ranking_metrics
from models.multitask import GROUPS, MultiTaskNet

from .demo import WORLD_DIR, load_truth
from .features import FeatureSet, build_features
from .store import Store, now_iso
from .training import (DEFAULT_ARCH, DEFAULT_BALANCE, ModelError, Split, TrainOptions, Trained, make_split,
                       test_metrics, train_model)

ABLATIONS_FILE = "ablations.json"
RANKED_CLICKS = 1000  # held-out clicks whose ranked lists are measured (a seeded sample)
RANKED_VIDEOS = 5000  # a larger catalog is ranked as a seeded sample of this many videos plus the clicked ones
TABLE = [("click", "auc"), ("click", "gauc"), ("click", "logloss"), ("like", "auc"), ("like", "gauc"),
         ("watch", "mae"), ("category", "accuracy"), ("category", "macro_f1"), ("category", "unlabelled_accuracy"),
         ("context", "accuracy"), ("context", "hour_effect_corr"), ("context", "device_effect_corr"),
         ("retrieval", "recall_at_10"), ("ranking", "ndcg_at_10"), ("ranking", "recall_at_10")]


# ---- scoring helpers ----------------------------------------------------------------------------------------
@torch.no_grad()
def click_probability(nets: dict[str, MultiTaskNet], batch: dict) -> torch.Tensor:
    for net in nets.values():
        if "click" in net.config.tasks:
            net.eval()
            return net.probabilities({"click": net(batch)["click"]})["click"]
    raise ModelError("the model has no click head")


def repeat_rows(data: Impressions, rows: np.ndarray, videos: np.ndarray) -> dict:
    """Each of the rows repeated for every one of `videos` (catalog indices): [len(rows) * len(videos)] rows."""
    batch = data.batch(torch.from_numpy(np.repeat(rows, len(videos))))
    batch["video"] = torch.from_numpy(videos).repeat(len(rows))
    return batch


def ranking_eval(nets: dict[str, MultiTaskNet], features: FeatureSet, split: Split, max_clicks: int = RANKED_CLICKS,
                 seed: int = 0, max_videos: int = RANKED_VIDEOS) -> dict:
    """NDCG@10 and recall@10 of held-out clicks: for each sampled test click, the catalog (videos published
    by then) ranked by P(click) for that user, history and context; the clicked video is relevant. A catalog
    above `max_videos` is ranked as a seeded sample of that many videos plus the clicked ones, so that the
    cost stays bounded (1000 clicks by 100k videos would be 10^8 forward rows)."""
    imp, catalog = features.impressions, features.catalog
    clicks = split.test[imp.click[torch.from_numpy(split.test)].numpy() > 0.5]
    if len(clicks) == 0:
        return {}
    rng = np.random.default_rng(seed)
    clicks = np.sort(rng.choice(clicks, min(max_clicks, len(clicks)), replace=False))
    clicked = imp.video[torch.from_numpy(clicks)].numpy()
    V = len(catalog.video_ids)
    videos = np.arange(V) if V <= max_videos else np.union1d(rng.choice(V, max_videos, replace=False), clicked)
    owned = [net for net in nets.values() if net.video_cache is None]
    for net in owned:
        net.eval()
        net.cache_videos()
    scores = []
    chunk = max(1, 8192 // len(videos))
    for start in range(0, len(clicks), chunk):
        rows = clicks[start:start + chunk]
        scores.append(click_probability(nets, repeat_rows(imp, rows, videos)).view(len(rows), len(videos)).numpy())
    for net in owned:
        net.video_cache = None
    scores = np.concatenate(scores)
    published = catalog.published[None, videos] <= features.ts[clicks][:, None]
    scores = np.where(published, scores, -np.inf)
    relevant = np.zeros_like(scores, dtype=bool)
    relevant[np.arange(len(clicks)), np.searchsorted(videos, clicked)] = True
    return {"ranking": ranking_metrics(scores, relevant, 10)}


# ---- baselines ---------------------------------------------------------------------------------------------
def popularity_in_context(features: FeatureSet, split: Split, rows: np.ndarray, prior: float = 20.0) -> np.ndarray:
    """P(click) from training click rates per (video, hour slot, device), shrunk toward the video's rate,
    itself shrunk toward the global rate: the baseline any learnt model must beat."""
    imp = features.impressions
    slots, devices = 8, len(features.vocabulary.devices) + 1

    def key(r):
        return ((imp.video[r] * slots + imp.hour[r] // 3) * devices + imp.device[r]).numpy()

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


# ---- the demo world's truth ----------------------------------------------------------------------------------
def truth_of(store: Store):
    """The demo world's ground truth when this data dir holds one (made by `vidrec demo`), else None."""
    world = store.data_dir / WORLD_DIR
    return load_truth(world) if (world / "truth.json").is_file() else None


def _truth_columns(features: FeatureSet, data: Impressions) -> tuple:
    vocab = features.vocabulary
    names = [None] + vocab.devices
    regions = [None] + vocab.regions
    return (np.array(features.user_ids, dtype=object)[data.group.numpy()],
            np.array(features.catalog.video_ids, dtype=object)[data.video.numpy()],
            data.hour.numpy(), data.weekday.numpy(),
            np.array([names[i] for i in data.device.tolist()], dtype=object),
            np.array([regions[i] for i in data.region.tolist()], dtype=object))


def oracle_metrics(truth, features: FeatureSet, rows: np.ndarray) -> dict | None:
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
    return {"click": binary_metrics(y["click"], p_click, y["group"]),
            "like": binary_metrics(y["like"][like_known], p_like[like_known], y["group"][like_known]),
            "watch": {"mae": float(np.abs(y["watch"][watch_known] - p_watch[watch_known]).mean()) if watch_known.any() else None}}


@torch.no_grad()
def context_direction(truth, nets: dict[str, MultiTaskNet], features: FeatureSet, rows: np.ndarray,
                      sample: int = 3000, seed: int = 0) -> dict | None:
    """Does the model move with context the way the world does? For sampled test rows, the change of the
    model's click logit when the hour moves by 12 (or the device changes) against the truth's change:
    their Pearson correlation (1: same direction and proportion; 0: the model ignores the context)."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(rows, min(sample, len(rows)), replace=False))
    data = features.impressions.take(rows)
    known = (data.device > 0).numpy()
    n_devices = len(features.vocabulary.devices)
    out = {}
    for name, change in (("hour_effect_corr", lambda d: setattr(d, "hour", (d.hour + 12) % 24)),
                         ("device_effect_corr", lambda d: setattr(d, "device", (d.device % n_devices) + 1))):
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


def unlabelled_category_accuracy(truth, trained: Trained, predictions: np.ndarray) -> float | None:
    """Accuracy of predicted categories on the videos that carry no label in the catalog (the product's
    use of the category head), judged by the world's truth."""
    catalog = trained.features.catalog
    names = trained.features.vocabulary.categories
    unlabelled = np.flatnonzero(catalog.tensors.category.numpy() < 0)
    pairs = [(names[predictions[i].argmax()], truth.video_category.get(catalog.video_ids[i])) for i in unlabelled]
    pairs = [(p, t) for p, t in pairs if t is not None]
    return float(np.mean([p == t for p, t in pairs])) if pairs else None


def with_truth(store: Store, trained: Trained, metrics: dict) -> dict:
    """Adds, when the store holds a demo world, the oracle ratio, unlabelled-category accuracy and the
    context-direction check to a model's test metrics (a copy); returns (metrics, oracle metrics or None)."""
    truth = truth_of(store)
    metrics = {t: dict(v) for t, v in metrics.items()}
    if truth is None:
        return metrics, None
    oracle = oracle_metrics(truth, trained.features, trained.split.test)
    if oracle and metrics.get("click", {}).get("auc") and oracle["click"]["auc"]:
        metrics["click"]["oracle_auc"] = oracle["click"]["auc"]
        metrics["click"]["auc_vs_oracle"] = metrics["click"]["auc"] / oracle["click"]["auc"]
    for net in trained.nets.values():
        if "category" in net.config.tasks:
            with torch.no_grad():
                net.eval()
                everything = torch.arange(len(trained.features.catalog.video_ids))
                probabilities = net.probabilities({"category": net.category_logits(everything)})["category"].numpy()
            metrics.setdefault("category", {})["unlabelled_accuracy"] = unlabelled_category_accuracy(truth, trained, probabilities)
    direction = context_direction(truth, trained.nets, trained.features, trained.split.test)
    if direction:
        metrics.setdefault("context", {}).update(direction)
    return metrics, oracle


# ---- the table -------------------------------------------------------------------------------------------------
def variants(default_arch: str = DEFAULT_ARCH) -> list[tuple[str, dict]]:
    """(row name, TrainOptions changes): the architectures, then the default one without context and
    with one CLIP modality only."""
    without = lambda *gone: tuple(g for g in GROUPS if g not in gone)  # noqa: E731
    return [("single-task", {"arch": "single-task"}), ("shared-bottom", {"arch": "shared-bottom"}),
            ("mmoe", {"arch": "mmoe"}), ("ple", {"arch": "ple"}),
            (f"{default_arch} without context", {"arch": default_arch, "groups": without("context")}),
            (f"{default_arch} video only", {"arch": default_arch, "groups": without("text_clip")}),
            (f"{default_arch} text only", {"arch": default_arch, "groups": without("video_clip")})]


def rows_of(name: str, runs: list[dict]) -> list[dict]:
    """Table rows for one variant: the mean over seeds of each metric, with its standard deviation."""
    out = []
    for task, metric in TABLE:
        values = [r.get(task, {}).get(metric) for r in runs]
        values = [v for v in values if v is not None]
        if values:
            out.append({"name": name, "task": task, "metric": metric, "value": float(np.mean(values)),
                        "std": float(np.std(values)) if len(values) > 1 else None, "seeds": len(values)})
        if task == "click" and metric == "auc":
            ratios = [r["click"].get("auc_vs_oracle") for r in runs if r.get("click", {}).get("auc_vs_oracle")]
            if ratios:
                out.append({"name": name, "task": "click", "metric": "auc_vs_oracle", "value": float(np.mean(ratios)),
                            "std": float(np.std(ratios)) if len(ratios) > 1 else None, "seeds": len(ratios)})
    return out


def add_deltas(rows: list[dict], baseline: str = "single-task") -> list[dict]:
    base = {(r["task"], r["metric"]): r["value"] for r in rows if r["name"] == baseline}
    for r in rows:
        b = base.get((r["task"], r["metric"]))
        r["delta_vs_single_task"] = None if b is None or r["name"] == baseline else r["value"] - b
    return rows


def baseline_rows(store: Store, features: FeatureSet, split: Split) -> list[dict]:
    """Popularity in context and, on the demo world, the oracle, on the same test rows."""
    y = features.impressions.click[torch.from_numpy(split.test)].numpy()
    rows = [{"name": "popularity in context", "task": "click", "metric": "auc",
             "value": auc(y, popularity_in_context(features, split, split.test)), "std": None, "seeds": 1}]
    truth = truth_of(store)
    oracle = oracle_metrics(truth, features, split.test) if truth is not None else None
    if oracle:
        rows += [{"name": "oracle (demo truth)", "task": t, "metric": m, "value": oracle[t][m], "std": None, "seeds": 1}
                 for t, m in (("click", "auc"), ("click", "gauc"), ("click", "logloss"), ("like", "auc"), ("watch", "mae"))
                 if oracle[t].get(m) is not None]
    return rows


def ablation_table(store: Store, *, seeds: int = 1, epochs: int = 20, balance: str = DEFAULT_BALANCE,
                   default_arch: str = DEFAULT_ARCH, only: list[str] | None = None,
                   extra: list[tuple[str, dict]] | None = None, progress: bool = True, on_run=None) -> list[dict]:
    """Train every variant (`seeds` seeds each) on the same data and split; one row per (variant, task,
    metric), with the mean over seeds, its standard deviation and the change against single-task.
    only: the variant names to run; extra: more (name, TrainOptions changes) variants."""
    features = build_features(store)
    rows: list[dict] = []
    split = None
    for name, changes in variants(default_arch) + list(extra or []):
        if only and name not in only:
            continue
        runs = []
        for seed in range(seeds):
            options = TrainOptions(**{"seed": seed, "epochs": epochs, "balance": balance, "progress": progress,
                                      "diagnostics": False, **changes})  # a variant may change the balancing too
            trained = train_model(store, options, features=features)
            split = trained.split
            metrics, _ = with_truth(store, trained, trained.metrics)
            runs.append(metrics)
            if on_run:
                on_run(name, seed, trained, metrics)
            if progress:
                click = metrics.get("click", {}).get("auc")
                print(f"[eval] {name} seed {seed}: click AUC {click:.4f} in {trained.seconds:.0f} s", file=sys.stderr)
        rows += rows_of(name, runs)
    if split is None:
        split = make_split(features, TrainOptions())
    return add_deltas(rows + baseline_rows(store, features, split))


def save_ablations(store: Store, rows: list[dict]) -> Path:
    """Keep the latest ablation table beside the models (`DATA_DIR/models/ablations.json`) for the UI."""
    path = store.path("models", ABLATIONS_FILE)
    path.write_text(json.dumps({"rows": rows, "created_at": now_iso()}, indent=1), encoding="utf-8")
    return path


def model_table(store: Store, model) -> list[dict]:
    """`vidrec eval` without ablations: the saved model on its own test period, beside the baselines."""
    features = build_features(store, model.vocabulary)
    options = TrainOptions(**{k: (tuple(v) if k == "groups" else v) for k, v in model.config["options"].items()})
    split = make_split(features, options)
    stored = model.config.get("split", {})
    if stored.get("test_start") is not None:  # the model's own cut-offs, even if the log has grown since
        ts = features.ts
        rows = np.arange(len(ts))
        split = replace(split, train=rows[ts < stored["val_start"]],
                        val=rows[(ts >= stored["val_start"]) & (ts < stored["test_start"])],
                        test=rows[ts >= stored["test_start"]])
    trained = Trained(options, model.nets, features, split, {}, {}, {}, 0.0)
    metrics, _ = with_truth(store, trained, test_metrics(trained))
    return add_deltas(rows_of(f"{model.config['arch']} ({model.model_id})", [metrics]) + baseline_rows(store, features, split))
