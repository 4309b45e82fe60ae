"""Train, evaluate, save and load the multi-task model of a catalog (the `train`, `eval` and `score`
commands and the recommender all come through here).

Data: the store's impressions, split by time (validation and test are the latest stretches of the log;
the rest trains); the catalog's labelled videos, split at random per category for the category task.
`single-task` trains one network per task (the baseline); the other architectures one network for all.
A model is a folder `DATA_DIR/models/<model_id>/` (weights.safetensors, config.json, metrics.json,
curves.json) plus a row of the store's `models` table.
"""
from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from models.data import Impressions
from models.diagnostics import diagnostics
from models.multitask import ARCHS, GROUPS, TASKS, MultiTaskNet, NetConfig
from models.trainer import FitResult, TrainConfig, evaluate, fit, predict

from .features import META_DIM, FeatureError, FeatureSet, Vocabulary, build_features, read_catalog
from .store import Store, now_iso

DEFAULT_ARCH = "mmoe"  # the best on the demo world (README, "The multi-task model")
DEFAULT_BALANCE = "uncertainty"  # likewise: fixed weights let the large context and retrieval losses crowd out click
ARCH_CHOICES = ("single-task",) + ARCHS
FORMAT = 1  # of config.json and the weights' names
WEIGHTS, CONFIG, METRICS, CURVES, DIAGNOSTICS = ("weights.safetensors", "config.json", "metrics.json", "curves.json",
                                                 "diagnostics.json")
MIN_CLICKS = 2


class ModelError(Exception):
    """No usable model, a stale one, or nothing to learn from; one line for the user."""


@dataclass
class TrainOptions:
    arch: str = DEFAULT_ARCH
    balance: str = DEFAULT_BALANCE  # single-task ignores it: one task per network has nothing to balance
    pcgrad: bool = False
    seed: int = 0
    epochs: int = 20
    groups: tuple[str, ...] = GROUPS  # feature groups (ablations switch some off)
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    category_holdout: float = 0.15  # of each category's labelled videos, for validation and again for test
    progress: bool = True
    diagnostics: bool = True  # permutation importance and expert use on validation data (ablation runs skip it)
    net: dict = field(default_factory=dict)  # NetConfig overrides
    train: dict = field(default_factory=dict)  # TrainConfig overrides


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
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test),
                "val_start": self.val_start, "test_start": self.test_start,
                "category_train": len(self.category_train), "category_val": len(self.category_val),
                "category_test": len(self.category_test)}


@dataclass
class Trained:
    """A trained model before it is saved: its networks (one, or one per task), data and results."""

    options: TrainOptions
    nets: dict[str, MultiTaskNet]
    features: FeatureSet
    split: Split
    metrics: dict
    curves: dict[str, list]
    fits: dict[str, FitResult]
    seconds: float
    diagnostics: dict = field(default_factory=dict)  # per network: gates, permutation importance, experts


# ---- splitting --------------------------------------------------------------------------------------------
def split_by_time(ts: np.ndarray, val_fraction: float, test_fraction: float) -> tuple[np.ndarray, ...]:
    """Rows before / in / after the validation stretch, cut at time quantiles (rows of one second stay together)."""
    if len(ts) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), 0, 0
    test_start = int(np.quantile(ts, 1 - test_fraction, method="higher"))
    val_start = int(np.quantile(ts, 1 - test_fraction - val_fraction, method="higher"))
    rows = np.arange(len(ts))
    return rows[ts < val_start], rows[(ts >= val_start) & (ts < test_start)], rows[ts >= test_start], val_start, test_start


def split_categories(category: torch.Tensor, holdout: float, seed: int) -> tuple[torch.Tensor, ...]:
    """Labelled videos into train / validation / test, per category; a category with fewer than three
    labelled videos keeps them all for training (it can still be learnt, not measured)."""
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    labels = category.numpy()
    for c in np.unique(labels[labels >= 0]):
        members = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(members) * holdout)) if len(members) >= 3 else 0
        k = min(k, (len(members) - 1) // 2)
        val += members[:k].tolist()
        test += members[k:2 * k].tolist()
        train += members[2 * k:].tolist()
    return tuple(torch.tensor(sorted(x), dtype=torch.long) for x in (train, val, test))


def make_split(features: FeatureSet, options: TrainOptions) -> Split:
    train, val, test, val_start, test_start = split_by_time(features.ts, options.val_fraction, options.test_fraction)
    cat_train, cat_val, cat_test = split_categories(features.catalog.tensors.category, options.category_holdout,
                                                    options.seed)
    return Split(train, val, test, val_start, test_start, cat_train, cat_val, cat_test)


def check_learnable(features: FeatureSet, split: Split) -> None:
    """Refuse clearly when there is nothing to learn rather than fail deep inside torch."""
    imp = features.impressions
    if len(imp) == 0:
        raise ModelError("nothing to learn: the store has no interactions (import a log with `vidrec import-interactions`)")
    clicks = int(imp.click.sum())
    if clicks < MIN_CLICKS:
        raise ModelError(f"nothing to learn: the interaction log has {clicks} click(s); the model needs clicks")
    if len(split.train) == 0 or imp.click[torch.from_numpy(split.train)].sum() == 0:
        raise ModelError("nothing to learn: no clicks in the training period (the log before its validation and test stretches)")
    if len(split.val) == 0:
        raise ModelError("the interaction log is too short in time to hold out a validation period")


# ---- training ---------------------------------------------------------------------------------------------
def net_configs(features: FeatureSet, options: TrainOptions) -> dict[str, NetConfig]:
    """{name: config}: "all" for a multi-task architecture, one per task for single-task. Tasks the data
    cannot support (no labelled videos: no category task) are left out."""
    vocab, tensors = features.vocabulary, features.catalog.tensors
    tasks = tuple(t for t in TASKS if t != "category" or len(vocab.categories) >= 2)
    base = dict(clip_dim=int(tensors.video_clip.shape[1]), meta_dim=META_DIM, n_categories=max(1, len(vocab.categories)),
                n_devices=len(vocab.devices) + 1, n_regions=len(vocab.regions) + 1, user_buckets=vocab.user_buckets,
                video_buckets=vocab.video_buckets, groups=tuple(options.groups), **options.net)
    if options.arch == "single-task":
        return {t: NetConfig(arch="shared-bottom", tasks=(t,), **base) for t in tasks}
    if options.arch not in ARCHS:
        raise ModelError(f"unknown architecture {options.arch!r}; choose one of {', '.join(ARCH_CHOICES)}")
    return {"all": NetConfig(arch=options.arch, tasks=tasks, **base)}


def train_config(options: TrainOptions) -> TrainConfig:
    single = options.arch == "single-task"
    return TrainConfig(epochs=options.epochs, balance="fixed" if single else options.balance,
                       pcgrad=options.pcgrad and not single, seed=options.seed, progress=options.progress, **options.train)


def train_model(store: Store, options: TrainOptions | None = None, features: FeatureSet | None = None) -> Trained:
    """Read the store, split by time, train (early stopping on validation), evaluate on the test period."""
    options = options or TrainOptions()
    started = time.perf_counter()
    if options.arch not in ARCH_CHOICES:
        raise ModelError(f"unknown architecture {options.arch!r}; choose one of {', '.join(ARCH_CHOICES)}")
    try:
        features = features or build_features(store)
    except FeatureError as exc:
        raise ModelError(str(exc)) from None
    split = make_split(features, options)
    check_learnable(features, split)
    imp = features.impressions
    train, val = imp.take(split.train), imp.take(split.val)
    nets, fits, curves = {}, {}, {}
    for name, config in net_configs(features, options).items():
        torch.manual_seed(options.seed)
        net = MultiTaskNet(config)
        fits[name] = fit(net, train, val, features.catalog.tensors, split.category_train, split.category_val,
                         train_config(options), description=f"training {options.arch}" + ("" if name == "all" else f" ({name})"))
        nets[name], curves[name] = net, fits[name].curves
    trained = Trained(options, nets, features, split, {}, curves, fits, 0.0)
    trained.metrics = test_metrics(trained)
    for name, net in nets.items() if options.diagnostics else ():
        trained.diagnostics[name] = diagnostics(net, val, split.category_val, options.seed)
        for warning in (trained.diagnostics[name]["experts"] or {}).get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
    trained.seconds = time.perf_counter() - started
    return trained


def predict_all(nets: dict[str, MultiTaskNet], data: Impressions) -> dict[str, np.ndarray]:
    """Predictions of every network, merged (single-task networks each answer their own task)."""
    out: dict[str, np.ndarray] = {}
    for net in nets.values():
        out.update(predict(net, data))
    return out


def test_metrics(trained: Trained, rows: np.ndarray | None = None) -> dict:
    """{task: {metric: value}} on the test period (and the test videos for category), plus the ranked
    lists of held-out clicks."""
    from .evaluation import ranking_eval  # evaluation imports this module

    split = trained.split
    data = trained.features.impressions.take(split.test if rows is None else rows)
    predictions = predict_all(trained.nets, data)
    any_net = next(iter(trained.nets.values()))
    metrics = evaluate(any_net, data, split.category_test, predictions)
    metrics.update(ranking_eval(trained.nets, trained.features, split))
    return metrics


# ---- saving and loading -----------------------------------------------------------------------------------
def save_model(store: Store, trained: Trained) -> str:
    """Write the model's folder and record it in the store; returns its model_id."""
    model_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{trained.options.arch}-{uuid.uuid4().hex[:6]}"
    folder = store.path("models", model_id, WEIGHTS).parent
    weights = {f"{name}.{key}": value.contiguous() for name, net in trained.nets.items()
               for key, value in net.state_dict().items()}
    save_file(weights, str(folder / WEIGHTS))
    options = asdict(trained.options)
    options["groups"] = list(options["groups"])
    config = {"format": FORMAT, "model_id": model_id, "arch": trained.options.arch,
              "clip_version": trained.features.catalog.clip_version,
              "nets": {name: net.config.to_dict() for name, net in trained.nets.items()},
              "vocabulary": trained.features.vocabulary.to_dict(), "options": options,
              "history_length": int(trained.features.impressions.history.shape[1]),
              "train": train_config(trained.options).to_dict(), "split": trained.split.summary(),
              "best_epochs": {n: f.best_epoch for n, f in trained.fits.items()},
              "seconds": round(trained.seconds, 1),
              "examples_per_second": {n: round(f.examples_per_second) for n, f in trained.fits.items()}}
    (folder / CONFIG).write_text(json.dumps(config, indent=1), encoding="utf-8")
    (folder / METRICS).write_text(json.dumps(trained.metrics, indent=1), encoding="utf-8")
    (folder / CURVES).write_text(json.dumps(trained.curves), encoding="utf-8")
    (folder / DIAGNOSTICS).write_text(json.dumps(trained.diagnostics, indent=1), encoding="utf-8")
    with store.transaction():
        store.db.execute("INSERT INTO models(model_id, clip_version, arch, path, config, metrics, created_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (model_id, config["clip_version"], config["arch"], f"models/{model_id}",
                          json.dumps(config), json.dumps(trained.metrics), now_iso()))
    return model_id


def model_rows(store: Store) -> list[dict]:
    """The store's models, newest first."""
    rows = store.db.execute("SELECT * FROM models ORDER BY created_at DESC, rowid DESC").fetchall()
    return [dict(r) for r in rows]


def load_model(store: Store, model_id: str | None = None):
    """The newest model trained on the catalog's current CLIP version (or the one named), ready to score.
    Raises ModelError: no model yet, only stale ones (another CLIP: retrain), or files that do not match."""
    from .scoring import LoadedModel

    rows = model_rows(store)
    if model_id is not None:
        rows = [r for r in rows if r["model_id"] == model_id]
        if not rows:
            raise ModelError(f"no model {model_id!r} in this catalog")
    if not rows:
        raise ModelError("no trained model: run `vidrec train`")
    clip = store.clip_version()
    current = None if clip is None else clip.version
    usable = [r for r in rows if r["clip_version"] == current]
    if not usable:
        raise ModelError(f"the model {rows[0]['model_id']} was trained on CLIP version {rows[0]['clip_version']}, "
                         f"but the catalog's embeddings are now CLIP version {current}: retrain with `vidrec train`")
    row = usable[0]
    folder = store.data_dir / row["path"]
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
        weights = load_file(str(folder / WEIGHTS))
    except (OSError, ValueError, SafetensorError) as exc:
        raise ModelError(f"model {row['model_id']} cannot be read ({type(exc).__name__}: {exc}); retrain with `vidrec train`") from None
    if config.get("format") != FORMAT or config.get("clip_version") != current:
        raise ModelError(f"model {row['model_id']} was saved in another format or for another CLIP version; "
                         "retrain with `vidrec train`")
    vocabulary = Vocabulary(**config["vocabulary"])
    try:
        catalog, _ = read_catalog(store, vocabulary)
    except FeatureError as exc:
        raise ModelError(str(exc)) from None
    nets = {}
    for name, net_config in config["nets"].items():
        try:
            net = MultiTaskNet(NetConfig(**net_config))
            state = {key[len(name) + 1:]: value for key, value in weights.items() if key.startswith(name + ".")}
            net.load_state_dict(state, strict=True)
            net.set_catalog(catalog.tensors)
        except (TypeError, ValueError, RuntimeError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ModelError(f"model {row['model_id']}'s weights do not match its configuration ({reason}); "
                             "retrain with `vidrec train`") from None
        net.eval()
        nets[name] = net
    return LoadedModel(store, row["model_id"], current, config, json.loads(row["metrics"]), nets, vocabulary, catalog)


def train_and_save(store: Store, options: TrainOptions | None = None) -> dict:
    """`vidrec train`: train, evaluate, save; the command's JSON."""
    trained = train_model(store, options)
    model_id = save_model(store, trained)
    return {"model_id": model_id, "clip": trained.features.catalog.clip_version, "arch": trained.options.arch,
            "balance": trained.options.balance, "pcgrad": trained.options.pcgrad, "metrics": trained.metrics,
            "split": trained.split.summary(), "best_epochs": {n: f.best_epoch for n, f in trained.fits.items()},
            "diagnostics": trained.diagnostics, "seconds": round(trained.seconds, 1),
            "examples_per_second": {n: round(f.examples_per_second) for n, f in trained.fits.items()}}
