"""How a video's embeddings are made from its frames and text: one place, used by ingest and re-embedding."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from models.clip import ClipModel, normalise

TEXT_FIELDS = ("title", "description", "tags")


def text_embeddings(clip: ClipModel, rows: list[dict]) -> list[dict[str, np.ndarray]]:
    """Title, description and tags encoded apart (each chunked to fit), pooled into one text embedding."""
    texts = []
    for row in rows:
        tags = ", ".join(filter(None, (row.get("tags") or "").split("|")))
        texts += [row.get("title") or "", row.get("description") or "", tags]
    if not rows:
        return []
    emb = clip.encode_texts(texts).reshape(len(rows), 3, -1)
    return [{"title_emb": f[0], "desc_emb": f[1], "tags_emb": f[2], "text_emb": normalise(f.sum(0, keepdims=True))[0]}
            for f in emb]


def frame_embeddings(clip: ClipModel, pixels: list[torch.Tensor]) -> list[dict[str, np.ndarray]]:
    """Per video, preprocessed frames [K, 3, S, S] -> its frame embeddings and their normalised mean."""
    if not pixels:
        return []
    flat = clip.encode_images(torch.cat(pixels))
    out, offset = [], 0
    for frames in pixels:
        own = flat[offset:offset + len(frames)]
        offset += len(frames)
        out.append({"frames_emb": own, "video_emb": normalise(own.mean(0, keepdims=True))[0]})
    return out


def preprocess_jpegs(clip: ClipModel, jpegs: list[bytes]) -> torch.Tensor:
    """Kept frames (JPEG) -> the CLIP's input tensor [K, 3, S, S]."""
    return torch.stack([clip.preprocess(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs])
