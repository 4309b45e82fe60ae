"""What the multi-task model learns from, as tensors: the catalog's per-video features and the impressions.

`ingest/learning/features.py` builds these from the store; the network and the trainer only ever see them, so
`models/` never touches the store. Conventions: catalog index -1 pads a history; bucket 0 is the
"unknown" user or video; device and region 0 are "unknown"; NaN marks a label that is not known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TypeAlias

import numpy as np
import torch

Rows: TypeAlias = torch.Tensor | np.ndarray | Sequence[int]  # row indices (or a boolean mask), as torch indexes


@dataclass
class CatalogTensors:
    """Per catalog video, in catalog index order."""

    video_clip: torch.Tensor  # [V, D] CLIP video embedding (frames pooled)
    text_clip: torch.Tensor  # [V, D] CLIP text embedding (title, description, tags pooled)
    meta: torch.Tensor  # [V, M] numeric metadata (normalised duration, ...)
    bucket: torch.Tensor  # [V] hashed video id; 0 = not seen in training
    category: torch.Tensor  # [V] class index, -1 = no label

    def __len__(self) -> int:
        return len(self.bucket)


@dataclass
class Impressions:
    """One row per impression: features (user, video, history, context) and labels."""

    user: torch.Tensor  # [N] hashed user id; 0 = not seen in training
    video: torch.Tensor  # [N] catalog index
    history: torch.Tensor  # [N, L] catalog indices of the user's earlier clicks, most recent last, -1 = none
    hour: torch.Tensor  # [N] 0-23
    weekday: torch.Tensor  # [N] 0-6
    device: torch.Tensor  # [N] 0 = unknown
    region: torch.Tensor  # [N] 0 = unknown
    click: torch.Tensor  # [N] 0/1
    like: torch.Tensor  # [N] 0/1, NaN where unknown (no click, or not logged)
    watch: torch.Tensor  # [N] watched fraction 0-1, NaN where unknown
    group: torch.Tensor  # [N] user index, for per-user metrics only (not a feature)
    visit: torch.Tensor  # [N] visit (a user's impressions, no gap over 30 min): for the ranking loss, not a feature

    def __len__(self) -> int:
        return len(self.video)

    def take(self, rows: Rows) -> Impressions:
        rows = torch.as_tensor(rows)
        return Impressions(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def batch(self, rows: Rows | None = None) -> dict[str, torch.Tensor]:
        chosen = self if rows is None else self.take(rows)
        return {f.name: getattr(chosen, f.name) for f in fields(chosen)}


def video_batch(videos: torch.Tensor) -> dict[str, torch.Tensor]:
    """A batch of catalog videos alone (for the category task): the other inputs are placeholders that
    the network does not read, since it only looks at the content groups then."""
    n = len(videos)
    zeros = torch.zeros(n, dtype=torch.long)
    return {
        "video": videos,
        "user": zeros,
        "history": torch.full((n, 1), -1, dtype=torch.long),
        "hour": zeros,
        "weekday": zeros,
        "device": zeros,
        "region": zeros,
    }
