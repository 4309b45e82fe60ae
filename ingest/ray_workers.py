"""What runs on the Ray cluster's workers for `ingest --engine ray` (`ray_ingest.py` is the driver's side):
the prepare task and the CLIP actor. Both call what the local engine calls (`prepare_file`, `embed`).

This module imports neither torch nor open_clip at import time: a prepare task's worker process only
decodes, so it starts in a fraction of a second instead of loading the model libraries.
"""

from __future__ import annotations

import io
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from .prepare import PreparedVideo, prepare_file
from .staging import Staging, entry_from_json, shard_results, shard_table


@dataclass(frozen=True)
class ClipSource:
    """How an actor builds the catalog's CLIP: its spec, and the weights file (with its checksum) where the
    catalog keeps its own weights; pretrained weights are read from the node's cache, never downloaded."""

    spec: str
    weights: str | None
    sha256: str | None

    def load(self, device: str | None) -> Any:
        import huggingface_hub.constants as hub

        from models.clip import ClipError

        from .catalog_clip import load_checked

        hub.HF_HUB_OFFLINE = True  # a worker reads caches only
        weights = None if self.weights is None else Path(self.weights)
        try:
            return load_checked(self.spec, weights, self.sha256, device=device)
        except ClipError as exc:
            where = (
                "keep the data dir (or its clip/ folder) on storage every node reads at the same path"
                if weights is not None
                else "workers read pretrained CLIP weights from the Hugging Face cache only: put it on storage "
                "every node reads (HF_HOME), or ingest with --clip NAME:PATH"
            )
            raise ClipError(f"on Ray node {socket.gethostname()}: {exc} ({where})") from exc


def table_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    return sink.getvalue()


def table_from_bytes(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


_known_cache: dict[str, frozenset[str]] = {}


def prepare_shard(row: dict, *, frames: int, known: Any, clip_version: int) -> dict:
    """A Ray Data task: the prepare step for each input of one shard (the same `prepare_file` as the local
    engine); the results travel as the shard's table without embeddings."""
    import ray

    key = known.hex()
    if key not in _known_cache:  # the catalog's content hashes: fetched once per worker process
        _known_cache.clear()
        _known_cache[key] = ray.get(known)
    entries = [entry_from_json(e) for e in row["entries"]]
    results = [prepare_file(entry, frames, _known_cache[key]) for entry in entries]
    table = shard_table(results, [None] * len(results), clip_version)
    return {"shard": row["shard"], "prepared": table_bytes(table)}


class ShardEmbedder:
    """A Ray Data actor: CLIP built once, then for each shard the embeddings of its prepared videos (the same
    `embed` as the local engine), written with them to the staging location."""

    def __init__(self, source: ClipSource, staging: Staging, clip_version: int, batch_frames: int, threads: int):
        import torch

        torch.set_num_threads(threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.clip = source.load(device)
        self.staging = staging
        self.clip_version, self.batch_frames = clip_version, batch_frames

    def __call__(self, row: dict) -> dict:
        from .embedding import embed, pixels

        results = [result for result, _ in shard_results(table_from_bytes(row["prepared"]))]
        videos = [r for r in results if isinstance(r, PreparedVideo)]
        vectors = []
        for group in _by_frames(videos, self.batch_frames):
            frames = [pixels(self.clip, [j for _, j in video.frames]) for video in group]
            vectors += embed(self.clip, frames, [video.row() for video in group])
        made = iter(vectors)
        own = [next(made) if isinstance(r, PreparedVideo) else None for r in results]
        self.staging.write(row["shard"], shard_table(results, own, self.clip_version))
        return {"shard": row["shard"], "inputs": len(results)}


def _by_frames(videos: list[PreparedVideo], batch_frames: int) -> list[list[PreparedVideo]]:
    groups: list[list[PreparedVideo]] = [[]]
    count = 0
    for video in videos:
        if groups[-1] and count + len(video.frames) > batch_frames:
            groups.append([])
            count = 0
        groups[-1].append(video)
        count += len(video.frames)
    return [g for g in groups if g]
