"""Train and evaluate the multi-task model of a catalog (`vidrec train`; `eval --ablations` trains through
here too).

Data: the store's impressions and catalog (features.py), split by time (split.py). `single-task` trains
one network per task (the baseline); the other architectures one network for all. Beside the networks, the
click graph's LightGCN embeddings (graph.py) learn from the same training rows. Saving and loading a trained
model is checkpoint.py's.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from models.balancing import BALANCERS
from models.data import Impressions
from models.diagnostics import diagnostics
from models.graph import GraphConfig
from models.multitask import ARCHS, GROUPS, TASKS, MultiTaskNet, NetConfig
from models.trainer import FitResult, TrainConfig, evaluate, fit, predict

from ..engine import EngineError, check_engine, cluster_gpus, ray_cluster
from ..store import Store
from .distributed import fit_on_ray
from .errors import ModelError
from .features import META_DIM, FeatureSet, build_features
from .graph import GraphEmbeddings, graph_metrics, learn_graph
from .ranking import ranking_eval
from .split import CATEGORY_HOLDOUT, TEST_FRACTION, VAL_FRACTION, Split, check_learnable, make_split

DEFAULT_ARCH = "mmoe"  # the best on the demo world (README, "The multi-task model")
DEFAULT_BALANCE = "uncertainty"  # likewise: fixed weights let the large context and retrieval losses crowd out click
DEFAULT_EPOCHS = 20  # at most (early stopping usually ends sooner)
ARCH_CHOICES = ("single-task",) + ARCHS
BALANCE_CHOICES = BALANCERS
logger = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    arch: str = DEFAULT_ARCH
    balance: str = DEFAULT_BALANCE  # single-task ignores it: one task per network has nothing to balance
    pcgrad: bool = False
    seed: int = 0
    epochs: int = DEFAULT_EPOCHS
    groups: tuple[str, ...] = GROUPS  # feature groups (ablations switch some off)
    val_fraction: float = VAL_FRACTION
    test_fraction: float = TEST_FRACTION
    category_holdout: float = CATEGORY_HOLDOUT
    progress: bool = True
    diagnostics: bool = True  # permutation importance and expert use on validation data (ablation runs skip it)
    net: dict = field(default_factory=dict)  # NetConfig overrides
    train: dict = field(default_factory=dict)  # TrainConfig overrides
    engine: str = "local"  # where it trains (not what): `ray` runs the loop on Ray Train workers, data-parallel
    workers: int | None = None  # ray: workers (None: one per GPU, else 1)
    graph: bool = True  # also learn the click graph's embeddings (LightGCN; on this machine, whatever the engine)

    def split(self, features: FeatureSet) -> Split:
        return make_split(
            features,
            seed=self.seed,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            category_holdout=self.category_holdout,
        )


@dataclass
class Trained:
    """A trained model before it is saved (or a saved one, loaded for evaluation): its networks (one, or one
    per task), the data it saw and its results."""

    options: TrainOptions
    nets: dict[str, MultiTaskNet]
    features: FeatureSet
    split: Split
    metrics: dict
    curves: dict[str, list]
    fits: dict[str, FitResult]
    seconds: float
    diagnostics: dict = field(default_factory=dict)  # per network: gates, permutation importance, experts
    graph: GraphEmbeddings | None = None  # the click graph's embeddings (None: not asked for)
    graph_seconds: float | None = None


def net_configs(features: FeatureSet, options: TrainOptions) -> dict[str, NetConfig]:
    """{name: config}: "all" for a multi-task architecture, one per task for single-task. Tasks the data
    cannot support (no labelled videos: no category task) are left out."""
    vocab, tensors = features.vocabulary, features.catalog.tensors
    tasks = tuple(t for t in TASKS if t != "category" or len(vocab.categories) >= 2)
    base = dict(
        clip_dim=int(tensors.video_clip.shape[1]),
        meta_dim=META_DIM,
        n_categories=max(1, len(vocab.categories)),
        n_devices=len(vocab.devices) + 1,
        n_regions=len(vocab.regions) + 1,
        user_buckets=vocab.user_buckets,
        video_buckets=vocab.video_buckets,
        groups=tuple(options.groups),
        **options.net,
    )
    if options.arch == "single-task":
        return {t: NetConfig(arch="shared-bottom", tasks=(t,), **base) for t in tasks}
    if options.arch not in ARCHS:
        raise ModelError(f"unknown architecture {options.arch!r}; choose one of {', '.join(ARCH_CHOICES)}")
    return {"all": NetConfig(arch=options.arch, tasks=tasks, **base)}


def train_config(options: TrainOptions) -> TrainConfig:
    single = options.arch == "single-task"
    return TrainConfig(
        epochs=options.epochs,
        balance="fixed" if single else options.balance,
        pcgrad=options.pcgrad and not single,
        seed=options.seed,
        progress=options.progress,
        **options.train,
    )


def train_model(store: Store, options: TrainOptions | None = None, features: FeatureSet | None = None) -> Trained:
    """Read the store, split by time, train (early stopping on validation), evaluate on the test period."""
    options = options or TrainOptions()
    started = time.perf_counter()
    if options.arch not in ARCH_CHOICES:
        raise ModelError(f"unknown architecture {options.arch!r}; choose one of {', '.join(ARCH_CHOICES)}")
    check_engine(options.engine)
    if options.workers is not None and options.engine != "ray":
        raise EngineError("workers go with the ray engine")
    features = features or build_features(store)
    split = options.split(features)
    check_learnable(features, split)
    imp = features.impressions
    train, val = imp.take(split.train), imp.take(split.val)
    nets, fits, curves = {}, {}, {}
    on_ray = options.engine == "ray"
    with ray_cluster() if on_ray else contextlib.nullcontext() as ray:  # one cluster for every network
        run = fit
        if on_ray:  # the count as run, in the result
            workers = options.workers or max(1, cluster_gpus(ray))
            options = replace(options, workers=workers)
            run = functools.partial(fit_on_ray, workers=workers, staging=store.paths.staging)
        for name, config in net_configs(features, options).items():
            torch.manual_seed(options.seed)
            net = MultiTaskNet(config)
            fits[name] = run(
                net,
                train,
                val,
                features.catalog.tensors,
                split.category_train,
                split.category_val,
                train_config(options),
                description=f"training {options.arch}" + ("" if name == "all" else f" ({name})"),
            )
            nets[name], curves[name] = net, fits[name].curves
    trained = Trained(options, nets, features, split, {}, curves, fits, 0.0)
    trained.metrics = test_metrics(trained)
    if options.graph:  # small and full-batch: it trains here, on the driver, also when the nets trained on Ray
        graph_started = time.perf_counter()
        trained.graph = learn_graph(features, split, GraphConfig(seed=options.seed))
        trained.graph_seconds = time.perf_counter() - graph_started
        trained.metrics["graph"] = graph_metrics(trained.graph, features, split, seed=options.seed)
    for name, net in nets.items() if options.diagnostics else ():
        trained.diagnostics[name] = diagnostics(net, val, split.category_val, options.seed)
        for warning in (trained.diagnostics[name]["experts"] or {}).get("warnings", []):
            logger.warning(warning)
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
    split = trained.split
    data = trained.features.impressions.take(split.test if rows is None else rows)
    predictions = predict_all(trained.nets, data)
    any_net = next(iter(trained.nets.values()))
    metrics = evaluate(any_net, data, split.category_test, predictions)
    metrics.update(ranking_eval(trained.nets, trained.features, split))
    return metrics
