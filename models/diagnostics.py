"""Diagnostics of a trained multi-task network: which feature groups each task relies on, and how the
tasks use their experts.

- Permutation importance: shuffle one feature group's vectors across validation rows and measure how much
  each task's primary metric drops. Model-agnostic and honest about interactions (a group that only
  matters through another still shows), unlike the learnt gates, which are reported beside it.
- Expert utilisation: each task's mean gate weight per expert. A task that puts nearly all its weight on
  one expert, or an expert no task uses, means the mixture has collapsed into something simpler.
"""

from __future__ import annotations

import numpy as np
import torch

from .data import Impressions
from .multitask import GROUPS, MultiTaskNet
from .trainer import PRIMARY, evaluate, predict

COLLAPSED_SHARE = 0.9  # a task whose mean gate weight on one expert exceeds this has collapsed onto it
DEAD_SHARE = 0.02  # an expert whose mean weight over all tasks is below this is unused


def permutation_importance(
    net: MultiTaskNet, data: Impressions, category_videos: torch.Tensor, seed: int = 0
) -> dict[str, dict[str, float]]:
    """{task: {group: drop of the task's primary metric when the group is shuffled}} (positive: it matters;
    MAE's rise counts as a drop)."""
    owned = net.video_cache is None
    if owned:  # one encoding of the catalog for every pass, not one per pass (a 1M catalog: seconds each)
        net.eval()
        net.cache_videos()
    try:
        base = evaluate(net, data, category_videos, without_retrieval(predict(net, data)), per_user=False)
        out: dict[str, dict[str, float]] = {t: {} for t in base if t in PRIMARY}
        for group in net.config.groups:
            predictions = without_retrieval(predict(net, data, permute=group, seed=seed))
            shuffled = evaluate(net, data, category_videos, predictions, per_user=False)
            for task in out:
                name, sign = PRIMARY[task]
                before, after = base[task].get(name), shuffled.get(task, {}).get(name)
                if before is not None and after is not None:
                    out[task][group] = round(sign * (before - after), 5)
        return out
    finally:
        if owned:
            net.video_cache = None


def without_retrieval(predictions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Predictions without the retrieval queries: importance is not measured for retrieval, and ranking every
    click against the whole catalog, once per group, was most of a 1M catalog's training time."""
    return {k: v for k, v in predictions.items() if k != "user_vector"}


@torch.no_grad()
def expert_utilisation(net: MultiTaskNet, data: Impressions, rows: int = 4096) -> dict | None:
    """{"usage": {task: [mean gate weight per expert]}, "experts": names, "warnings": [...]}; None for a
    shared bottom, which has no gates."""
    if net.config.arch == "shared-bottom":
        return None
    net.eval()
    batch = data.batch(torch.arange(min(rows, len(data))))
    net(batch)
    usage = {t: w.mean(0).tolist() for t, w in net.gate_weights.items()}
    c = net.config
    names = [f"expert {i}" for i in range(c.n_experts)]  # mmoe's
    if c.arch == "mmoe":
        experts = {t: names for t in usage}
    else:  # ple: the last level's task-specific experts, then the shared ones
        experts = {
            t: [f"{t} {i}" for i in range(c.n_task_experts)] + [f"shared {i}" for i in range(c.n_experts)]
            for t in usage
        }
    warnings = []
    for t, weights in usage.items():
        top = int(np.argmax(weights))
        if weights[top] > COLLAPSED_SHARE:
            warnings.append(f"experts collapsed for {t}: {weights[top]:.0%} of its gate goes to {experts[t][top]}")
    if c.arch == "mmoe" and usage:
        overall = np.mean(list(usage.values()), axis=0)
        unused = np.flatnonzero(overall < DEAD_SHARE)
        warnings += [f"{names[i]} is unused (mean gate weight {overall[i]:.3f})" for i in unused]
    return {"usage": {t: [round(w, 4) for w in usage[t]] for t in usage}, "experts": experts, "warnings": warnings}


def gate_report(net: MultiTaskNet) -> dict[str, float]:
    """The learnt feature-group gates (sigmoid, 0-1), for the groups switched on."""
    gates = net.feature_gates().detach().tolist()
    return {g: round(v, 4) for g, v in zip(GROUPS, gates) if g in net.config.groups}


def diagnostics(net: MultiTaskNet, val: Impressions, category_val: torch.Tensor, seed: int = 0) -> dict:
    return {
        "gates": gate_report(net),
        "importance": permutation_importance(net, val, category_val, seed),
        "experts": expert_utilisation(net, val),
    }
