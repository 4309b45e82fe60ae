"""Feature assembly for the multi-task model, from the store alone (never from a demo world's truth).

Per video: the CLIP video and text embeddings of the catalog's current CLIP version, the duration, the
hashed id and the category label. Per impression: the hashed user id, the video, the user's clicks
strictly before the impression's time (the history: no leakage), the local hour and weekday, the
device and region, and the labels (click; like and watched fraction where known).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from models.data import CatalogTensors, Impressions

from ..interactions import parse_timestamp
from ..store import Store
from .errors import FeatureError

HISTORY_LENGTH = 32  # most recent clicks a row sees
META_DIM = 1  # normalised log duration
VISIT_GAP_SECONDS = 30 * 60  # a longer pause between a user's impressions starts a new visit


def hash_bucket(key: str, buckets: int) -> int:
    """A stable bucket in 1..buckets-1 (crc32, not Python's salted hash); 0 is kept for "unknown"."""
    return 1 + zlib.crc32(key.encode("utf-8")) % (buckets - 1)


def bucket_count(n: int) -> int:
    """Four buckets per id seen, as a power of two, at least 1024: few collisions, room to grow."""
    return max(1024, 1 << math.ceil(math.log2(4 * max(n, 1))))


def duration_feature(duration: np.ndarray) -> np.ndarray:
    """log(duration / 10 s) / 2, clipped to [-2, 2]: 10 s is 0, a minute about 0.9, a second -1.2."""
    return np.clip(np.log(np.maximum(np.asarray(duration, np.float64), 0.1) / 10.0) / 2, -2, 2)


@dataclass
class Vocabulary:
    """The discrete values a model knows, fixed at training time (index 0 of devices/regions: unknown)."""

    categories: list[str]
    devices: list[str]
    regions: list[str]
    user_buckets: int
    video_buckets: int

    def device_index(self, device: str | None) -> int:
        return self.devices.index(device) + 1 if device in self.devices else 0

    def region_index(self, region: str | None) -> int:
        return self.regions.index(region) + 1 if region in self.regions else 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CatalogFeatures:
    clip_version: int
    video_ids: list[str]  # catalog index -> video id (store id order)
    store_ids: np.ndarray  # int64 store ids, the ids FAISS indexes use
    tensors: CatalogTensors
    published: np.ndarray  # Unix seconds, -inf where unknown (always available)
    duration: np.ndarray  # seconds
    revision: int = 0  # the store revision these features were read at

    def index(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.video_ids)}


@dataclass
class FeatureSet:
    catalog: CatalogFeatures
    impressions: Impressions
    ts: np.ndarray  # [N] Unix seconds, ascending
    user_ids: list[str]  # group index -> user id
    vocabulary: Vocabulary


def read_catalog(store: Store, vocabulary: Vocabulary | None = None) -> tuple[CatalogFeatures, list[str]]:
    """The catalog's per-video features for the current CLIP version, and its category names (the
    vocabulary's when given, so a trained model keeps its classes; else the labels in the store)."""
    with store.snapshot():
        return _read_catalog(store, vocabulary)


def _read_catalog(store: Store, vocabulary: Vocabulary | None) -> tuple[CatalogFeatures, list[str]]:
    clip = store.clips.current()
    if clip is None or store.videos.count() == 0:
        raise FeatureError("the catalog is empty: ingest videos first (`vidrec ingest` or `vidrec demo`)")
    ids, video_ids, video_emb = store.embeddings.matrix("video_emb")
    _, text_ids, text_emb = store.embeddings.matrix("text_emb")
    if not video_ids or text_ids != video_ids:
        raise FeatureError(f"the catalog has no complete embeddings for CLIP version {clip.version}")
    all_ids, durations, all_labels, all_published = store.videos.model_columns()
    at = np.searchsorted(all_ids, ids)  # both in store id order; every embedded video is a video
    duration = durations[at]
    labels = [all_labels[i] or None for i in at.tolist()]
    categories = vocabulary.categories if vocabulary else sorted({c for c in labels if c})
    position = {c: i for i, c in enumerate(categories)}
    buckets = vocabulary.video_buckets if vocabulary else bucket_count(len(video_ids))
    tensors = CatalogTensors(
        video_clip=torch.from_numpy(np.ascontiguousarray(video_emb, np.float32)),
        text_clip=torch.from_numpy(np.ascontiguousarray(text_emb, np.float32)),
        meta=torch.from_numpy(duration_feature(duration)[:, None].astype(np.float32)),
        bucket=torch.tensor([hash_bucket(v, buckets) for v in video_ids], dtype=torch.long),
        category=torch.tensor([position.get(c, -1) if c else -1 for c in labels], dtype=torch.long),
    )
    seconds = {text: _unix_seconds(text) for text in set(all_published)}  # parsed once per distinct time
    published = np.array([seconds[all_published[i]] for i in at.tolist()], np.float64)
    return CatalogFeatures(clip.version, video_ids, ids, tensors, published, duration, store.revision), categories


def _unix_seconds(text: str | None) -> float:
    if not text:
        return -np.inf
    try:
        return float(parse_timestamp(text)[0])
    except ValueError:
        return -np.inf


def read_interactions(store: Store) -> dict[str, np.ndarray]:
    """Every logged impression of a catalog video, ordered by time (ties by user, video)."""
    out = store.interactions.log()
    arrays = {c: np.array(out[c], dtype=object) for c in ("user_id", "video_id", "device", "region")}
    arrays.update({c: np.array(out[c], dtype=np.int64) for c in ("ts", "hour", "weekday", "clicked")})
    arrays["liked"] = np.array([np.nan if v is None else v for v in out["liked"]], np.float64)
    arrays["watch_seconds"] = np.array([np.nan if v is None else v for v in out["watch_seconds"]], np.float64)
    return arrays


def click_histories(
    users: np.ndarray, ts: np.ndarray, videos: np.ndarray, clicked: np.ndarray, length: int = HISTORY_LENGTH
) -> np.ndarray:
    """[N, length] catalog indices of each row's user's clicks strictly before the row's time, most
    recent last, -1 where there are fewer. users: int codes; ts: seconds; videos: catalog indices."""
    n = len(users)
    if n == 0:
        return np.full((0, length), -1, np.int64)
    span = np.int64(ts.max() - ts.min() + 1)
    key = users.astype(np.int64) * span + (ts - ts.min())  # orders by user, then time
    click_rows = np.flatnonzero(clicked > 0)
    order = click_rows[np.argsort(key[click_rows], kind="stable")]
    click_key, click_video = key[order], videos[order]
    before = np.searchsorted(click_key, key, side="left")  # clicks sorted before this row: strictly earlier
    user_start = np.searchsorted(click_key, users.astype(np.int64) * span, side="left")
    positions = before[:, None] - length + np.arange(length)[None, :]  # [N, length]
    valid = positions >= user_start[:, None]
    return (
        np.where(valid, click_video[np.clip(positions, 0, max(len(click_video) - 1, 0))], -1)
        if len(click_video)
        else np.full((n, length), -1, np.int64)
    )


def visits(users: np.ndarray, ts: np.ndarray, gap: int = VISIT_GAP_SECONDS) -> np.ndarray:
    """[N] visit index of each row, 0..n_visits-1: a user's impressions with no pause over `gap` seconds
    between consecutive ones (what the ranking loss compares clicks within). users: int codes; ts: seconds."""
    if len(users) == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((ts, users))  # by user, then time
    u, t = users[order], ts[order]
    starts = np.ones(len(order), bool)
    starts[1:] = (u[1:] != u[:-1]) | (t[1:] - t[:-1] > gap)
    out = np.empty(len(order), np.int64)
    out[order] = np.cumsum(starts) - 1
    return out


def build_features(
    store: Store, vocabulary: Vocabulary | None = None, history_length: int = HISTORY_LENGTH
) -> FeatureSet:
    """Everything the model trains and evaluates on. A vocabulary (a trained model's) keeps the model's
    classes and buckets; without one they are read from the store (one snapshot: an ingest meanwhile is not
    seen half-way)."""
    with store.snapshot():
        catalog, categories = read_catalog(store, vocabulary)
        log = read_interactions(store)
    position = catalog.index()
    keep = np.array([v in position for v in log["video_id"]], bool)
    log = {k: v[keep] for k, v in log.items()}
    users, group = (
        np.unique(log["user_id"], return_inverse=True)
        if len(log["user_id"])
        else (np.array([]), np.array([], np.int64))
    )
    if vocabulary is None:
        vocabulary = Vocabulary(
            categories=categories,
            devices=sorted({d for d in log["device"] if d}),
            regions=sorted({r for r in log["region"] if r}),
            user_buckets=bucket_count(len(users)),
            video_buckets=bucket_count(len(catalog.video_ids)),
        )
    video = np.array([position[v] for v in log["video_id"]], np.int64)
    duration = catalog.duration[video]
    clicked = log["clicked"]
    with np.errstate(invalid="ignore", divide="ignore"):
        watch = np.where((clicked > 0) & (duration > 0), np.clip(log["watch_seconds"] / duration, 0, 1), np.nan)
    like = np.where(clicked > 0, log["liked"], np.nan)
    history = click_histories(group, log["ts"], video, clicked, history_length)
    user_bucket = {u: hash_bucket(u, vocabulary.user_buckets) for u in users.tolist()}
    impressions = Impressions(
        user=torch.tensor([user_bucket[u] for u in log["user_id"]], dtype=torch.long),
        video=torch.from_numpy(video),
        history=torch.from_numpy(history.astype(np.int64)),
        hour=torch.from_numpy(log["hour"]),
        weekday=torch.from_numpy(log["weekday"]),
        device=torch.tensor([vocabulary.device_index(d) for d in log["device"]], dtype=torch.long),
        region=torch.tensor([vocabulary.region_index(r) for r in log["region"]], dtype=torch.long),
        click=torch.from_numpy(clicked.astype(np.float32)),
        like=torch.from_numpy(like.astype(np.float32)),
        watch=torch.from_numpy(watch.astype(np.float32)),
        group=torch.from_numpy(group.astype(np.int64)),
        visit=torch.from_numpy(visits(group, log["ts"])),
    )
    return FeatureSet(catalog, impressions, log["ts"], users.tolist(), vocabulary)
