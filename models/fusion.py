"""Fusing a video's frame and text embeddings into one vector, so one inner-product search ranks by both.

Catalog side: [a * video_emb, b * text_emb]. A text query q becomes [a * q, b * q], so its inner
product is a^2 cos(q, frames) + b^2 cos(q, text); a video's own fused vector as query gives
a^2 cos(frames, frames') + b^2 cos(text, text'). Look-alike categories stay apart through the text
part, and a video whose text says nothing is still found through its frames. Catalog vectors are not
renormalised: an empty text adds nothing rather than inflating the frame part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FusionWeights:
    video: float = 1.0  # a^2
    text: float = 1.0  # b^2


def fuse_catalog(video_emb: np.ndarray, text_emb: np.ndarray, weights: FusionWeights = FusionWeights()) -> np.ndarray:
    """[N, D] frames and [N, D] text -> [N, 2D] float32 catalog vectors."""
    if video_emb.shape != text_emb.shape:
        raise ValueError(f"video {video_emb.shape} and text {text_emb.shape} embeddings differ in shape")
    return np.hstack([np.sqrt(weights.video) * video_emb, np.sqrt(weights.text) * text_emb]).astype(np.float32)


def fuse_text_query(query_emb: np.ndarray, weights: FusionWeights = FusionWeights()) -> np.ndarray:
    """[Q, D] text queries -> [Q, 2D], to search catalog vectors from `fuse_catalog`."""
    return np.hstack([np.sqrt(weights.video) * query_emb, np.sqrt(weights.text) * query_emb]).astype(np.float32)
