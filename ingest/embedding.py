"""The CLIP step of ingest: a video's embeddings from its kept frames and its text. One definition,
used by ingest and by re-embedding after `tune-clip`, so both give the same vectors."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from models.clip import ClipModel, normalise


def pixels(clip: ClipModel, jpegs: list[bytes]) -> torch.Tensor:
    """Kept frames (JPEG) -> the CLIP's input tensor [K, 3, S, S] (thread-safe: no model involved)."""
    return torch.stack([clip.preprocess(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs])


def frame_embeddings(clip: ClipModel, frames: list[torch.Tensor]) -> list[dict[str, np.ndarray]]:
    """Per video, preprocessed frames [K, 3, S, S] -> its frame embeddings and their normalised mean."""
    if not frames:
        return []
    flat = clip.encode_images(torch.cat(frames))
    out, offset = [], 0
    for video in frames:
        own = flat[offset : offset + len(video)]
        offset += len(video)
        out.append({"frames_emb": own, "video_emb": normalise(own.mean(0, keepdims=True))[0]})
    return out


def text_embeddings(clip: ClipModel, rows: list[dict]) -> list[dict[str, np.ndarray]]:
    """Title, description and tags encoded apart (each chunked to fit), pooled into one text embedding."""
    if not rows:
        return []
    texts = []
    for row in rows:
        tags = ", ".join(filter(None, (row.get("tags") or "").split("|")))
        texts += [row.get("title") or "", row.get("description") or "", tags]
    emb = clip.encode_texts(texts).reshape(len(rows), 3, -1)
    return [
        {"title_emb": f[0], "desc_emb": f[1], "tags_emb": f[2], "text_emb": normalise(f.sum(0, keepdims=True))[0]}
        for f in emb
    ]


def embed(clip: ClipModel, frames: list[torch.Tensor], rows: list[dict]) -> list[dict[str, np.ndarray]]:
    """Every embedding of each video (the store's fields), from its preprocessed frames and its text row."""
    return [{**image, **text} for image, text in zip(frame_embeddings(clip, frames), text_embeddings(clip, rows))]
