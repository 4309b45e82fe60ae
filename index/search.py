"""Similar videos, text-to-video and image/video-to-video search over the fused index.

The queries go through the same fusion as the catalog (models/fusion.py): a video's own frames and
text, a text through CLIP's text tower on both halves, an image or uploaded clip through the image
tower on the frames half only.

A text search marks each result `weak` when nothing says it matches (docs/cli.md, `vidrec search`): its
similarity is no higher than what nonsense reaches (random letter strings, embedded once per CLIP version:
their best matches in this catalog give the threshold a result must pass), and its text (title, description,
tags, category) has no word of the query that is rarer than one video in two. A query whose results are all
weak has no close match: they are only the nearest videos. Neither half alone tells a real query from
nonsense with a small catalog-tuned CLIP, whose single-word queries score as high as noise does; the words
do (search engines are hybrid for that reason), and the similarity covers the queries that share no word with
the catalog.
"""

from __future__ import annotations

import random
import re
import string
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
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

from .catalog_index import FUSED, CatalogIndex, catalog_stamp

MAX_QUERY_CHARS = 2000
DEFAULT_K = 10  # results a search, a similar-videos query or a list returns unless asked otherwise
NULL_QUERIES = 256  # nonsense queries that calibrate what a weak match is
NULL_QUANTILE = 0.99  # a match must beat the best match of this share of them

# Words that say nothing about a video (Lucene's English stop words): a query's "the" or "with" found in a title
# is no evidence. Words in half the catalog or more are left out too, whatever their language (their IDF is not
# positive).
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with".split()
)
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"  # kana, ideographs, hangul
_TERM = re.compile(f"[{_CJK}]+|[^\\W_{_CJK}]+")
_CJK_CHAR = re.compile(f"[{_CJK}]")
_NULL_EMBEDDINGS: dict[tuple, np.ndarray] = {}  # a CLIP's (spec, weights checksum) -> its nonsense queries' embeddings
_NULL_LOCK = threading.Lock()


class SearchError(Exception):
    """A query that cannot be answered (unknown id, empty text, unreadable upload); one line for the user."""


def terms(text: str) -> set[str]:
    """The words of a text as the weak-match rule compares them: NFKC, case-folded; a run of CJK characters
    (written without spaces) as its overlapping pairs of characters, as Lucene's CJK analyser does; one-letter
    words and STOP_WORDS left out."""
    found: set[str] = set()
    for run in _TERM.findall(unicodedata.normalize("NFKC", text or "").casefold()):
        if _CJK_CHAR.fullmatch(run[0]):
            found.update([run] if len(run) == 1 else (run[i : i + 2] for i in range(len(run) - 1)))
        elif len(run) > 1 and run not in STOP_WORDS:
            found.add(run)
    return found


def video_terms(title: str, description: str, tags: str, category: str | None) -> set[str]:
    return terms(" ".join((title or "", description or "", (tags or "").replace("|", " "), category or "")))


def nonsense_queries(n: int = NULL_QUERIES, seed: int = 0) -> list[str]:
    """`n` random strings of letters, one to three words of 3 to 12 letters (the same on every machine):
    what a query that means nothing looks like."""
    rng = random.Random(seed)
    return [
        " ".join(
            "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 12))) for _ in range(rng.choice((1, 1, 2, 3)))
        )
        for _ in range(n)
    ]


@dataclass(frozen=True)
class Calibration:
    """What makes a text search's result weak in this catalog, with its current CLIP (see the module's doc)."""

    stamp: dict  # the catalog (revision, CLIP version) it was measured on
    threshold: float  # the similarity that NULL_QUANTILE of nonsense queries' best matches do not pass
    document_frequency: Counter  # word -> how many videos' text has it
    videos: int

    def informative(self, query: str) -> set[str]:
        """The query's words found in the catalog's text, in fewer than half its videos."""
        return {t for t in terms(query) if 0 < 2 * self.document_frequency[t] < self.videos}


class Searcher:
    def __init__(self, store: Store, weights: FusionWeights = FusionWeights(), index: CatalogIndex | None = None):
        self.store = store
        self.weights = weights
        self.index = index or CatalogIndex(store, FUSED, weights=weights)
        self._clip: ClipModel | None = None
        self._clip_version: int | None = None
        self._calibration: Calibration | None = None
        self._calibrating = threading.Lock()

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
        items = self._results(vector, k)
        self._mark_weak(query, items)
        return items

    def calibration(self) -> Calibration:
        """The weak-match calibration of the catalog as it is now: measured again after the catalog or its CLIP
        changed (nonsense queries embedded once per CLIP version, searched once per catalog revision)."""
        calibration = self._calibration
        if calibration is not None and calibration.stamp == catalog_stamp(self.store):
            return calibration
        with self._calibrating:
            stamp = catalog_stamp(self.store)
            if self._calibration is not None and self._calibration.stamp == stamp:
                return self._calibration
            null = fuse_text_query(self._null_embeddings(), self.weights)
            scores, ids = self.index.search(null, 1)
            best = scores[:, 0][ids[:, 0] >= 0] / (self.weights.video + self.weights.text)
            threshold = float(np.quantile(best, NULL_QUANTILE)) if len(best) else float("inf")
            frequency: Counter = Counter()
            count = 0
            for title, description, tags, category in self.store.videos.texts():
                frequency.update(video_terms(title, description, tags, category))
                count += 1
            self._calibration = Calibration(stamp, threshold, frequency, count)
            return self._calibration

    def _null_embeddings(self) -> np.ndarray:
        """The current CLIP's embeddings of `nonsense_queries()`, made once per CLIP (its weights) in this
        process, whichever searcher asks."""
        clip, version = self.clip, self._clip_version
        record = self.store.clips.get(version) if version is not None else None
        if record is None:
            identity: tuple = (id(clip),)
        elif record.weights is None:  # the spec's own weights (a pretrained CLIP; the tiny one starts seeded)
            identity = (record.spec,)
        else:  # tuned weights, known by their checksum
            identity = (record.spec, record.info.get("sha256") or (str(record.weights), version))
        with _NULL_LOCK:
            found = _NULL_EMBEDDINGS.get(identity)
        if found is None:
            found = clip.encode_texts(nonsense_queries())
            with _NULL_LOCK:
                while len(_NULL_EMBEDDINGS) >= 4:
                    _NULL_EMBEDDINGS.pop(next(iter(_NULL_EMBEDDINGS)))
                _NULL_EMBEDDINGS[identity] = found
        return found

    def _mark_weak(self, query: str, items: list[dict]) -> None:
        """Set each result's `weak` (see the module's doc)."""
        calibration = self.calibration()
        words = calibration.informative(query)
        for item in items:
            shares = False
            if words and item["similarity"] <= calibration.threshold:
                video = self.store.videos.get(item["video_id"])
                shares = video is not None and bool(
                    words & video_terms(video.title, video.description, video.tags, video.category)
                )
            item["weak"] = not (item["similarity"] > calibration.threshold or shares)

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
