"""The ranked lists a model makes of held-out clicks (the `ranking` metrics of every evaluation)."""

from __future__ import annotations

import numpy as np
import torch

from models.data import Impressions
from models.metrics import ranking_metrics
from models.multitask import MultiTaskNet

from .errors import ModelError
from .features import FeatureSet
from .split import Split

RANKED_CLICKS = 1000  # held-out clicks whose ranked lists are measured (a seeded sample)
RANKED_VIDEOS = 5000  # a larger catalog is ranked as a seeded sample of this many videos plus the clicked ones


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


def ranking_eval(
    nets: dict[str, MultiTaskNet],
    features: FeatureSet,
    split: Split,
    max_clicks: int = RANKED_CLICKS,
    seed: int = 0,
    max_videos: int = RANKED_VIDEOS,
) -> dict:
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
    parts = []
    chunk = max(1, 8192 // len(videos))
    for start in range(0, len(clicks), chunk):
        rows = clicks[start : start + chunk]
        parts.append(click_probability(nets, repeat_rows(imp, rows, videos)).view(len(rows), len(videos)).numpy())
    for net in owned:
        net.video_cache = None
    scores = np.concatenate(parts)
    published = catalog.published[None, videos] <= features.ts[clicks][:, None]
    scores = np.where(published, scores, -np.inf)
    relevant = np.zeros_like(scores, dtype=bool)
    relevant[np.arange(len(clicks)), np.searchsorted(videos, clicked)] = True
    return {"ranking": ranking_metrics(scores, relevant, 10)}
