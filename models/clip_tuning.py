"""Contrastive tuning of CLIP on a catalog's own (frame, text) pairs, CLIP4Clip-style, and the retrieval
metrics that tell whether the tuned model is better.

Pure tensors in, weights updated in place: the store and the choice of pairs live in `ingest/`.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from open_clip.loss import ClipLoss
from tqdm import tqdm

from .clip import OpenClipModel


@dataclass
class TuneConfig:
    epochs: int = 12
    batch_size: int = 64  # distinct videos per step: in-batch negatives are other videos
    lr: float = 1e-3  # from scratch (tiny); pretrained towers want ~1e-5
    weight_decay: float = 0.05
    warmup_steps: int = 20
    views_per_epoch: int = 4  # times each video is drawn per epoch
    frames_per_video: int = 1  # frames averaged per video and draw
    text_pair_weight: float = 0.5  # also pull two text fields of one video together (e.g. a Chinese title
    # and an English label): the text tower learns which words mean the same thing
    seed: int = 0


@dataclass
class PairSet:
    """Per video: preprocessed frames [K, 3, S, S] (float16), its non-empty text fields, and how often to
    draw it relative to the others (e.g. more for a language few videos are described in)."""

    frames: list[torch.Tensor]
    texts: list[list[str]]
    weights: list[float] | None = None

    def __post_init__(self) -> None:
        if len(self.frames) != len(self.texts):
            raise ValueError("one list of texts per video")


def tune_clip(
    model: OpenClipModel,
    tokenizer,
    pairs: PairSet,
    config: TuneConfig,
    *,
    encode_text: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> list[dict]:
    """Train `model` (an open_clip CLIP) in place; returns the loss per epoch. `encode_text` maps tokens to
    unnormalised features (default: the model's own encode_text)."""
    encode_text = encode_text or model.encode_text
    usable = [i for i, t in enumerate(pairs.texts) if t]
    if len(usable) < 2:
        raise ValueError("contrastive tuning needs at least two videos with text")
    rng = random.Random(config.seed)
    draw = np.random.default_rng(config.seed)
    p = np.array([pairs.weights[i] for i in usable] if pairs.weights else [1.0] * len(usable), np.float64)
    p /= p.sum()
    torch.manual_seed(config.seed)
    batch = min(config.batch_size, len(usable))
    steps_per_epoch = max(1, math.ceil(len(usable) * config.views_per_epoch / batch))
    total = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _warmup_cosine(s, config.warmup_steps, total))
    loss_fn = ClipLoss()
    model.train()
    history = []
    bar = tqdm(total=total, desc="tune-clip", unit="step", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        for epoch in range(config.epochs):
            losses = []
            epoch_started = time.perf_counter()
            for _ in range(steps_per_epoch):
                chosen = [usable[j] for j in draw.choice(len(usable), size=batch, replace=False, p=p)]
                images = torch.stack([_frame_mix(pairs.frames[i], config.frames_per_video, rng) for i in chosen])
                texts, others = zip(*(_two_texts(pairs.texts[i], rng) for i in chosen))
                images = images.to(device, torch.float32).flatten(0, 1)  # [B * F, 3, S, S]
                image_features = model.encode_image(images, normalize=True)
                image_features = image_features.view(batch, -1, image_features.shape[-1]).mean(1)
                image_features = _normalised(image_features)
                text_features = _normalised(encode_text(tokenizer(list(texts)).to(device)))
                loss = loss_fn(image_features, text_features, model.logit_scale.exp())
                if config.text_pair_weight:
                    other_features = _normalised(encode_text(tokenizer(list(others)).to(device)))
                    loss = loss + config.text_pair_weight * loss_fn(
                        text_features, other_features, model.logit_scale.exp()
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                with torch.no_grad():
                    model.logit_scale.clamp_(0, math.log(100))
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}")
            history.append(
                {
                    "epoch": epoch + 1,
                    "loss": round(float(np.mean(losses)), 4),
                    "pairs": batch * steps_per_epoch,
                    "seconds": round(time.perf_counter() - epoch_started, 3),
                }
            )
    finally:
        bar.close()
        model.eval()
    return history


def _normalised(features: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(features, dim=-1)


def _two_texts(texts: list[str], rng: random.Random) -> tuple[str, str]:
    """Two different text fields of one video (the same one twice if it has only one)."""
    if len(texts) < 2:
        return texts[0], texts[0]
    first, second = rng.sample(texts, 2)
    return first, second


def _frame_mix(frames: torch.Tensor, count: int, rng: random.Random) -> torch.Tensor:
    """`count` distinct frames of one video (with repeats only when it has fewer)."""
    picks = (
        rng.sample(range(len(frames)), count)
        if len(frames) >= count
        else [rng.randrange(len(frames)) for _ in range(count)]
    )
    return frames[picks]


def _warmup_cosine(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# ---- retrieval metrics (embeddings are L2-normalised numpy) ----------------------------------------


def recall_at_k(
    queries: np.ndarray, targets: np.ndarray, truth: np.ndarray, ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """Query i's own target is targets[truth[i]]; the share of queries that find it in their top k."""
    sims = queries @ targets.T
    own = sims[np.arange(len(queries)), truth]
    rank = (sims > own[:, None]).sum(1)  # 0 = first
    return {f"recall_at_{k}": round(float((rank < k).mean()), 4) for k in ks}


def precision_at_k(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    """scores [Q, N], relevant [Q, N] bool: mean share of relevant items in each query's top min(k, #relevant)."""
    out = []
    for row, rel in zip(scores, relevant):
        kk = min(k, int(rel.sum()))
        if kk == 0:
            continue
        top = np.argpartition(-row, kk - 1)[:kk]
        out.append(rel[top].mean())
    return round(float(np.mean(out)), 4) if out else 0.0
