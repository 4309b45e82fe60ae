"""Similar videos, text-to-video and image/video-to-video search over the fused index.

The queries go through the same fusion as the catalog (models/fusion.py): a video's own frames and
text, a text through CLIP's text tower on both halves, an image or uploaded clip through the image
tower on the frames half only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ingest.catalog_clip import load_catalog_version
from ingest.embedding import frame_embeddings
from ingest.store import Store
from ingest.video import VideoError, sample_video
from models.clip import ClipModel
from models.fusion import FusionWeights, fuse_catalog, fuse_text_query

from .catalog_index import FUSED, CatalogIndex

MAX_QUERY_CHARS = 2000
DEFAULT_K = 10  # results a search, a similar-videos query or a list returns unless asked otherwise


class SearchError(Exception):
    """A query that cannot be answered (unknown id, empty text, unreadable upload); one line for the user."""


class Searcher:
    def __init__(self, store: Store, weights: FusionWeights = FusionWeights(), index: CatalogIndex | None = None):
        self.store = store
        self.weights = weights
        self.index = index or CatalogIndex(store, FUSED, weights=weights)
        self._clip: ClipModel | None = None
        self._clip_version: int | None = None

    @property
    def clip(self) -> ClipModel:
        """The catalog's current CLIP, reloaded when tune-clip has made a new version."""
        current = self.store.clips.current()
        if current is None:
            raise SearchError("the catalog is empty: ingest videos first")
        version = current.version
        if self._clip is None or self._clip_version != version:
            self._clip, self._clip_version = load_catalog_version(self.store, version), version
        return self._clip

    def text(self, query: str, k: int = DEFAULT_K) -> list[dict]:
        query = " ".join((query or "").split())
        if not query:
            raise SearchError("empty query: say what to look for")
        if len(query) > MAX_QUERY_CHARS:
            raise SearchError(f"query too long ({len(query)} characters; at most {MAX_QUERY_CHARS})")
        vector = fuse_text_query(self.clip.encode_texts([query]), self.weights)
        return self._results(vector, k)

    def similar(self, video_id: str, k: int = DEFAULT_K) -> list[dict]:
        video = self.store.videos.get(video_id)
        if video is None:
            raise SearchError(f"unknown video id {video_id!r}")
        found = self.store.embeddings.of_video(video.id, ("video_emb", "text_emb"))
        if found is None:
            raise SearchError(f"video {video_id!r} has no embeddings of the catalog's current CLIP yet")
        vector = fuse_catalog(found["video_emb"][None], found["text_emb"][None], self.weights)
        return self._results(vector, k, exclude=video.id)

    def similar_to_each(self, video_ids: list[str], k: int = DEFAULT_K) -> dict[str, list[dict]]:
        """`similar` for several catalog videos in one index search (a user's recent history); videos that are
        unknown or not embedded yet are left out."""
        videos = {v.video_id: v for v in map(self.store.videos.get, dict.fromkeys(video_ids)) if v is not None}
        found = {}
        for video_id, video in videos.items():
            own = self.store.embeddings.of_video(video.id, ("video_emb", "text_emb"))
            if own is not None:
                found[video_id] = fuse_catalog(own["video_emb"][None], own["text_emb"][None], self.weights)
        seeds = list(found)
        if not seeds:
            return {}
        vectors = np.vstack([found[v] for v in seeds])
        lists = self._result_lists(vectors, k, [videos[v].id for v in seeds])
        return dict(zip(seeds, lists))

    def similar_to_file(self, path: Path | str, k: int = DEFAULT_K) -> list[dict]:
        """Videos like an uploaded image or video file (its frames only: an upload has no text)."""
        path = Path(path)
        try:
            image = Image.open(path)
            image.load()
            frames = [image.convert("RGB")]
        except (UnidentifiedImageError, OSError):
            try:
                frames = [img for _, img in sample_video(path).frames]
            except VideoError as exc:
                raise SearchError(f"{path.name}: neither an image nor a video ({exc})") from exc
        pixels = torch.stack([self.clip.preprocess(f) for f in frames])
        video = frame_embeddings(self.clip, [pixels])[0]["video_emb"][None]
        return self._results(fuse_catalog(video, np.zeros_like(video), self.weights), k)

    def _results(self, vector: np.ndarray, k: int, exclude: int | None = None) -> list[dict]:
        return self._result_lists(vector.reshape(1, -1), k, [exclude])[0]

    def _result_lists(self, vectors: np.ndarray, k: int, exclude: list[int | None]) -> list[list[dict]]:
        """One list per query row, each without its own `exclude` id; ids the store no longer holds (removed
        since the index was brought up to date) are left out."""
        if k < 1:
            raise SearchError("k must be at least 1")
        scores, ids = self.index.search(vectors, k + any(e is not None for e in exclude))
        scale = self.weights.video + self.weights.text  # a weighted mean of the two cosines, in [-1, 1]
        pairs = [
            [(int(i), float(s) / scale) for s, i in zip(row_scores, row_ids) if i >= 0 and i != skip][:k]
            for row_scores, row_ids, skip in zip(scores, ids, exclude)
        ]
        names = self.store.videos.names(list({i for row in pairs for i, _ in row}))
        return [
            [{"video_id": names[i][0], "title": names[i][1], "similarity": round(s, 4)} for i, s in row if i in names]
            for row in pairs
        ]
