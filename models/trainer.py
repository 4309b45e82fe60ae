"""Training and evaluating one multi-task network: per-task losses on each task's own sample space, task
balancing, early stopping on the validation metrics of every task, the best checkpoint kept.

Sample spaces: click on every impression; like and watch on clicked impressions whose label is known;
context (hour slot, device) on clicked impressions, predicted without the impression's own context;
category on labelled catalog videos, from their content alone; retrieval on clicked impressions, each
click against the other clicks of the batch (in-batch negatives). With `TrainConfig.ranking`, click also
learns a listwise loss over the impressions of each visit (models/ranking_loss.py), and batches are whole
visits.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .balancing import make_balancer, pcgrad_backward
from .context import HOUR_SLOTS, hour_slot
from .data import CatalogTensors, Impressions
from .metrics import binary_metrics, dot_ranking_metrics, multiclass_metrics, regression_metrics
from .multitask import GROUPS, INTEREST_TASKS, TOWER_TASKS, MultiTaskNet, in_chunks
from .ranking_loss import listwise_loss

if TYPE_CHECKING:
    from .parallel import DataParallel

# The metric each task is judged by on validation data, and whether higher is better.
PRIMARY = {
    "click": ("auc", 1),
    "like": ("auc", 1),
    "watch": ("mae", -1),
    "category": ("accuracy", 1),
    "context": ("accuracy", 1),
    "retrieval": ("recall_at_10", 1),
}
NO_CONTEXT = tuple(g for g in GROUPS if g != "context")


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 1024
    lr: float = 2e-3
    weight_decay: float = 1e-2  # the ids overfit first: decoupled decay (AdamW) on everything helps click AUC
    patience: int = 3  # epochs without a better validation score before stopping
    balance: str = "fixed"
    task_weights: dict = field(default_factory=dict)  # fixed weights (and the base of the other methods)
    pcgrad: bool = False
    gate_l1: float = 1e-3  # sparsity penalty on the feature-group gates
    ranking: float = 0.0  # weight of the listwise loss within visits, added to click's (0: off, batches as before)
    class_weighting: bool = True  # click/like positives up-weighted (prior undone at prediction); categories balanced
    category_batch: int = 64  # labelled videos per step for the category task
    threads: int | None = 1  # torch threads while training (None: torch's default); see `fit`
    seed: int = 0
    progress: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClassWeights:
    pos_weight: dict[str, float]  # binary tasks
    category: torch.Tensor | None  # [C]


def class_weights(
    train: Impressions, catalog: CatalogTensors, category_videos: torch.Tensor, n_categories: int, enabled: bool
) -> ClassWeights:
    """sqrt(negatives / positives) for click and like: enough to lift the rare class, mild enough not to
    swamp the gradients; categories inversely to their frequency among labelled training videos."""
    if not enabled:
        return ClassWeights({}, None)
    pos = {}
    for task, y in (("click", train.click), ("like", train.like)):
        y = y[~torch.isnan(y)]
        p = float(y.mean()) if len(y) else 0.5
        pos[task] = math.sqrt((1 - p) / p) if 0 < p < 1 else 1.0
    counts = torch.bincount(catalog.category[category_videos], minlength=n_categories).float()
    category = torch.where(counts > 0, counts.sum() / (n_categories * counts.clamp(min=1)), torch.zeros_like(counts))
    return ClassWeights(pos, category)


def task_losses(
    net: MultiTaskNet,
    batch: dict,
    videos: torch.Tensor | None,
    weights: ClassWeights | None = None,
    ranking: float = 0.0,
) -> dict[str, torch.Tensor]:
    """{task: mean loss over the task's own sample space in this batch}; a task with no rows is absent.

    ranking > 0: click's loss is its BCE plus `ranking` times the listwise loss over the batch's visits
    (`batch["visit"]`). Added to click rather than made a task of its own, so that the task balancers weigh
    click as one task and need no change; the weight is the one knob. Retrieval then also takes no other click
    of the same user for a negative: visit batches put a user's clicks together, and they are no negatives."""
    weights = weights or ClassWeights({}, None)
    tasks = net.config.tasks
    losses: dict[str, torch.Tensor] = {}
    clicked = batch["click"] > 0.5
    interest = [t for t in INTEREST_TASKS if t in tasks]
    if interest:
        rows = batch if "click" in tasks else {k: v[clicked] for k, v in batch.items()}
        mask = clicked if "click" in tasks else torch.ones(int(clicked.sum()), dtype=torch.bool)
        if len(rows["video"]):
            logits = net(rows)
            if "click" in tasks:
                pw = weights.pos_weight.get("click")
                losses["click"] = F.binary_cross_entropy_with_logits(
                    logits["click"], rows["click"], pos_weight=None if pw is None else torch.tensor(pw)
                )
                if ranking > 0:
                    losses["click"] = losses["click"] + ranking * listwise_loss(
                        logits["click"], rows["click"], rows["visit"]
                    )
            for task in ("like", "watch"):
                if task not in tasks:
                    continue
                target = rows[task]
                known = mask & ~torch.isnan(target)  # like/watch: clicked rows with a known label, nothing else
                if known.any():
                    pw = weights.pos_weight.get(task)
                    losses[task] = F.binary_cross_entropy_with_logits(  # soft targets for the watch fraction
                        logits[task][known], target[known], pos_weight=None if pw is None else torch.tensor(pw)
                    )
    if "context" in tasks and clicked.any():
        rows = {k: v[clicked] for k, v in batch.items()}
        logits = net(rows, keep=NO_CONTEXT)["context"]  # the engagement's own context stays hidden
        slot_loss = F.cross_entropy(logits[:, :HOUR_SLOTS], hour_slot(rows["hour"]))
        device = rows["device"]
        known = device > 0
        device_loss = F.cross_entropy(logits[known][:, HOUR_SLOTS:], device[known]) if known.any() else 0 * slot_loss
        losses["context"] = slot_loss + device_loss
    if "category" in tasks and videos is not None and len(videos):
        logits = net.category_logits(videos)
        losses["category"] = F.cross_entropy(logits, net.catalog["category"][videos], weight=weights.category)
    if "retrieval" in tasks and int(clicked.sum()) >= 2:
        rows = {k: v[clicked] for k, v in batch.items()}
        logits = net.retrieval_logits(rows)  # [n, n]
        same = rows["video"].unsqueeze(0) == rows["video"].unsqueeze(1)
        if ranking > 0:  # visit batches: the user's other clicks are no negatives either
            same |= rows["group"].unsqueeze(0) == rows["group"].unsqueeze(1)
        logits = logits.masked_fill(same & ~torch.eye(len(same), dtype=torch.bool), -1e9)  # a duplicate is no negative
        losses["retrieval"] = F.cross_entropy(logits, torch.arange(len(logits)))
    return losses


@torch.no_grad()
def predict(
    net: MultiTaskNet, data: Impressions, batch_size: int = 4096, permute: str | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Per impression: click, like, watch probabilities; hour slot and device distributions (context head,
    without the row's context); retrieval query vectors. Per catalog video: category distribution, retrieval
    vectors. permute: a feature group whose vectors are shuffled across rows (permutation importance)."""
    generator = torch.Generator().manual_seed(seed)

    def shuffled(n: int) -> dict | None:
        return None if permute is None else {permute: torch.randperm(n, generator=generator)}

    net.eval()
    owns_cache = net.video_cache is None
    if owns_cache:
        net.cache_videos()
    tasks = net.config.tasks
    parts: dict[str, list] = {}
    for start in range(0, len(data), batch_size):
        batch = data.batch(torch.arange(start, min(start + batch_size, len(data))))
        out = {}
        if set(tasks) & {"click", "like", "watch"}:
            logits = net(batch, permute=shuffled(len(batch["video"])))
            out.update(net.probabilities({t: v for t, v in logits.items() if t in INTEREST_TASKS}))
        if "context" in tasks:
            logits = net(batch, keep=NO_CONTEXT, permute=shuffled(len(batch["video"])))["context"]
            out.update(net.probabilities({"context": logits}))
        if "retrieval" in tasks:
            out["user_vector"] = net.user_vectors(batch)
        for k, v in out.items():
            parts.setdefault(k, []).append(v.numpy())
    result = {k: np.concatenate(v) for k, v in parts.items()}
    videos = len(net.catalog["bucket"])
    if "category" in tasks:
        result["category"] = net.category_probabilities(permute=shuffled(videos)).numpy()
    if "retrieval" in tasks:
        result["video_vector"] = in_chunks(net.video_vectors, videos).numpy()
    if owns_cache:
        net.video_cache = None
    return result


def evaluate(
    net: MultiTaskNet,
    data: Impressions,
    category_videos: torch.Tensor,
    predictions: dict[str, np.ndarray] | None = None,
    per_user: bool = True,
) -> dict[str, dict]:
    """{task: {metric: value}} on the impressions (and, for category, on the given catalog videos).
    per_user=False skips the per-user AUC (validation during training does not need it)."""
    p = predictions if predictions is not None else predict(net, data)
    y = {k: v.numpy() for k, v in data.batch().items()}
    clicked = y["click"] > 0.5
    out: dict[str, dict] = {}
    if "click" in p:
        out["click"] = binary_metrics(y["click"], p["click"], y["group"] if per_user else None)
    if "like" in p:
        known = clicked & ~np.isnan(y["like"])
        out["like"] = binary_metrics(y["like"][known], p["like"][known], y["group"][known] if per_user else None)
    if "watch" in p:
        known = clicked & ~np.isnan(y["watch"])
        out["watch"] = regression_metrics(y["watch"][known], p["watch"][known])
    if "category" in p:
        index = category_videos.numpy()
        out["category"] = multiclass_metrics(net.catalog["category"][category_videos].numpy(), p["category"][index])
    if "hour_slot" in p:
        slot = p["hour_slot"][clicked].argmax(1) == hour_slot(y["hour"][clicked])
        device_known = clicked & (y["device"] > 0)
        device = p["device"][device_known].argmax(1) == y["device"][device_known]
        out["context"] = {
            "hour_slot_accuracy": float(slot.mean()) if slot.size else None,
            "device_accuracy": float(device.mean()) if device.size else None,
            "n": int(clicked.sum()),
        }
        parts = [v for v in (out["context"]["hour_slot_accuracy"], out["context"]["device_accuracy"]) if v is not None]
        out["context"]["accuracy"] = float(np.mean(parts)) if parts else None
    if "user_vector" in p and clicked.any():  # each click against the whole catalog
        out["retrieval"] = dot_ranking_metrics(p["user_vector"][clicked], p["video_vector"], y["video"][clicked], 10)
    return out


def validation_score(metrics: dict[str, dict]) -> float:
    """One number for early stopping: the sum over tasks of each task's primary metric (MAE counted
    negatively), so that no task may get worse unnoticed while another improves."""
    score = 0.0
    for task, values in metrics.items():
        name, sign = PRIMARY[task]
        if values.get(name) is not None:
            score += sign * values[name]
    return score


def effective_batch_size(batch_size: int, rows: int, min_steps: int = 32) -> int:
    """The configured batch, made smaller for a small log so that an epoch still has `min_steps` steps
    (a few thousand impressions in batches of 1024 would give the optimiser three steps an epoch)."""
    return max(32, min(batch_size, rows // min_steps))


def epoch_order(train: Impressions, rng: np.random.Generator, by_visit: bool) -> torch.Tensor:
    """The rows in this epoch's order: a random permutation; by_visit, the visits in a random order, each
    visit's rows together (in their own order), so that a batch cut from it holds whole visits (one that
    crosses a batch boundary is split in two). A data-parallel shard is cut by user, so its visits are whole."""
    if not by_visit:
        return torch.from_numpy(rng.permutation(len(train)))
    _, index = np.unique(train.visit.numpy(), return_inverse=True)
    rank = rng.permutation(int(index.max()) + 1 if len(index) else 0)
    return torch.from_numpy(np.argsort(rank[index.reshape(-1)], kind="stable"))


def mark_seen(net: MultiTaskNet, train: Impressions, catalog: CatalogTensors) -> None:
    """Record which user and video buckets training saw: the others are new, and get the unknown id."""
    net.user_seen.zero_()
    net.video_seen.zero_()
    net.user_seen[train.user.unique()] = True
    net.video_seen[catalog.bucket[train.video.unique()]] = True
    net.user_seen[0] = net.video_seen[0] = False


@dataclass
class FitResult:
    best_epoch: int
    epochs_run: int
    curves: list[dict]  # per epoch: mean training losses, task weights, gates, validation metrics
    seconds: float
    examples_per_second: float  # training impressions per second of training steps (validation not counted)


def fit(
    net: MultiTaskNet,
    train: Impressions,
    val: Impressions,
    catalog: CatalogTensors,
    category_train: torch.Tensor,
    category_val: torch.Tensor,
    config: TrainConfig,
    description: str = "training",
    parallel: DataParallel | None = None,
) -> FitResult:
    """Train in place; on return the network holds the weights of its best validation epoch. `parallel`: this
    process is one worker of data-parallel training, and `train` its shard (models/parallel.py).

    One torch thread by default: the matrices are small (a batch of 512 by a few hundred features), so a
    second thread gains little, and where another process shares the cores it makes every step many
    times slower (measured: 10x with two busy processes on two cores)."""
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _fit(net, train, val, catalog, category_train, category_val, config, description, parallel)
    finally:
        torch.set_num_threads(threads)


def _fit(
    net: MultiTaskNet,
    train: Impressions,
    val: Impressions,
    catalog: CatalogTensors,
    category_train: torch.Tensor,
    category_val: torch.Tensor,
    config: TrainConfig,
    description: str,
    parallel: DataParallel | None,
) -> FitResult:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net.set_catalog(catalog)
    if parallel is None:
        mark_seen(net, train, catalog)
        cw = class_weights(train, catalog, category_train, net.config.n_categories, config.class_weighting)
    else:  # the whole training set's, not this worker's shard
        parallel.mark_seen(net)
        cw = parallel.class_weights
    for task, pw in cw.pos_weight.items():
        if task in TOWER_TASKS:
            net.logit_shift[TOWER_TASKS.index(task)] = -math.log(pw)
    balancer = make_balancer(config.balance, net.config.tasks, config.task_weights)
    params = [p for p in list(net.parameters()) + list(balancer.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    batch_size = effective_batch_size(config.batch_size, len(train))
    steps = math.ceil(len(train) / batch_size)
    training_rows = len(train)  # the priors' scale (net.prior_penalty): the whole training set's rows
    if parallel is not None:
        batch_size, steps = parallel.batch_size, parallel.steps
        parallel.start(params)
        training_rows = int(parallel.total(len(train)))
    bar = tqdm(
        total=config.epochs * steps,
        desc=description,
        unit="step",
        disable=not config.progress,
        file=sys.stderr,
        leave=False,
    )
    best_score, best_state, best_epoch, stale = -math.inf, None, 0, 0
    curves: list[dict] = []
    started, seen, train_seconds = time.perf_counter(), 0, 0.0
    for epoch in range(1, config.epochs + 1):
        net.train()
        epoch_started = time.perf_counter()
        order = epoch_order(train, rng, config.ranking > 0)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for step in range(steps):
            rows = order[step * batch_size : (step + 1) * batch_size]
            batch = train.batch(rows)
            videos = (
                category_train[torch.from_numpy(rng.integers(0, len(category_train), config.category_batch))]
                if len(category_train)
                else None
            )
            losses = task_losses(net, batch, videos, cw, config.ranking)
            if not losses and parallel is None:
                continue  # a data-parallel worker still takes its part in the step's collectives
            balancer.update(losses, net.shared_parameters())
            if parallel is not None:
                parallel.balancer(balancer)
            penalty = config.gate_l1 * net.feature_gates().sum() + net.prior_penalty(training_rows)
            optimizer.zero_grad(set_to_none=True)
            if config.pcgrad and len(losses) > 1:
                extra = balancer.extra_loss(losses)
                pcgrad_backward(
                    balancer.weighted(losses),
                    params,
                    penalty if extra is None else penalty + extra,
                    seed=config.seed * 100003 + epoch * 1009 + step,
                )
            else:
                (balancer.combine(losses) + penalty).backward()
            if parallel is not None:
                parallel.gradients(params)
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
            seen += len(rows)
            for task, loss in losses.items():
                sums[task] = sums.get(task, 0.0) + loss.item()
                counts[task] = counts.get(task, 0) + 1
            bar.update()
        train_seconds += time.perf_counter() - epoch_started
        if parallel is not None:
            sums, counts = parallel.epoch_losses(sums, counts, net.config.tasks)
        mean_losses = {t: sums[t] / counts[t] for t in sums}
        balancer.end_epoch(mean_losses)
        metrics = evaluate(net, val, category_val, per_user=False)
        score = validation_score(metrics)
        if parallel is not None:
            score = parallel.decide(score)
        curves.append(
            {
                "epoch": epoch,
                "train_loss": mean_losses,
                "task_weights": balancer.weights(),
                "gates": dict(zip(GROUPS, net.feature_gates().detach().tolist())),
                "validation": metrics,
                "validation_score": score,
            }
        )
        bar.set_postfix(val=f"{score:.4f}")
        if score > best_score + 1e-4:
            best_score, best_state, best_epoch, stale = score, copy.deepcopy(net.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    bar.close()
    seconds = time.perf_counter() - started
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return FitResult(best_epoch, len(curves), curves, seconds, seen / max(train_seconds, 1e-9))
