"""The click graph's candidate source: LightGCN (models/graph.py) learnt on the training period's clicks,
measured on the test period, and served as "people who watch what you watch also watch".

The graph holds the users and videos with a click in the training period (the multi-task nets' training
rows). Users are kept by a hash of their id (`forgotten_hash`, the one the catalog keeps of the forgotten),
never by the id itself: no model file holds a person's id, and a model loaded after `forget-user` drops
the forgotten user's row (until a retrain leaves them out altogether).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

import numpy as np
import torch

from models.graph import GraphConfig, train_graph

from ..store import forgotten_hash
from .features import FeatureSet
from .split import Split

RECALL_AT = (50, 100)
EVALUATED_USERS = 1000  # users whose test clicks are measured (a seeded sample above this many)
FORMAT = "1"  # of graph.safetensors's tensors and metadata


def user_key(user_id: str) -> bytes:
    """[32] the key a user is kept by: the catalog's hash of the forgotten, so forgetting finds the row."""
    return bytes.fromhex(forgotten_hash(user_id))


class GraphEmbeddings:
    """The final (propagated) LightGCN embeddings of the graph's users and videos, for serving."""

    def __init__(
        self,
        user_keys: np.ndarray,
        video_ids: Sequence[str],
        users: np.ndarray,
        videos: np.ndarray,
        config: GraphConfig,
    ):
        self.user_keys = np.ascontiguousarray(user_keys, np.uint8).reshape(-1, 32)  # [U, 32] `user_key`s
        self.video_ids = list(video_ids)
        self.users = np.ascontiguousarray(users, np.float32)  # [U, d]
        self.videos = np.ascontiguousarray(videos, np.float32)  # [V, d]
        self.config = config
        if len(self.user_keys) != len(self.users) or len(self.video_ids) != len(self.videos):
            raise ValueError("the graph's ids and embeddings differ in number")
        if self.users.shape[1:] != self.videos.shape[1:] or self.users.ndim != 2:
            raise ValueError("the graph's user and video embeddings differ in shape")
        self._user_row = {key.tobytes(): i for i, key in enumerate(self.user_keys)}
        self._video_row = {v: i for i, v in enumerate(self.video_ids)}
        if len(self._user_row) != len(self.user_keys) or len(self._video_row) != len(self.video_ids):
            raise ValueError("the graph holds an id twice")

    @classmethod
    def of_users(
        cls,
        user_ids: Sequence[str],
        video_ids: Sequence[str],
        users: np.ndarray,
        videos: np.ndarray,
        config: GraphConfig,
    ) -> GraphEmbeddings:
        keys = np.frombuffer(b"".join(user_key(u) for u in user_ids), np.uint8).reshape(-1, 32)
        return cls(keys, video_ids, users, videos, config)

    def knows_user(self, user_id: str) -> bool:
        return user_key(user_id) in self._user_row

    def knows(self, video_id: str) -> bool:
        return video_id in self._video_row

    def query(self, user_id: str, history: Sequence[str]) -> np.ndarray | None:
        """[d] the user's vector: their own when the graph knows them, else the mean of the `history` videos
        it knows (a new user, or one known only from this session); None when neither."""
        row = self._user_row.get(user_key(user_id))
        if row is not None:
            return self.users[row]
        known = [i for v in history if (i := self._video_row.get(v)) is not None]
        return self.videos[known].mean(0) if known else None

    def candidates(self, user_id: str, history: Sequence[str], k: int) -> list[tuple[str, float]]:
        """Up to k (video id, score) of the graph's videos by dot product with the user's vector (`query`),
        best first, without the videos in `history`; [] when the graph knows neither the user nor any of
        their history."""
        query = self.query(user_id, history)
        if query is None or k <= 0:
            return []
        scores = self.videos @ query
        seen = list({i for v in history if (i := self._video_row.get(v)) is not None})
        scores[seen] = -np.inf
        k = min(k, len(scores) - len(seen))
        if k <= 0:
            return []
        top = np.argpartition(scores, len(scores) - k)[len(scores) - k :]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.video_ids[i], float(scores[i])) for i in top]

    def forgetting(self, forgotten: Collection[str]) -> GraphEmbeddings:
        """The graph without the rows of the forgotten users (their `forgotten_hash`es, as the catalog keeps
        them); self when it holds none of them."""
        drop = [row for h in forgotten if (row := self._user_row.get(bytes.fromhex(h))) is not None]
        if not drop:
            return self
        keep = np.setdiff1d(np.arange(len(self.users)), drop)
        return GraphEmbeddings(self.user_keys[keep], self.video_ids, self.users[keep], self.videos, self.config)

    def within(self, video_ids: Collection[str]) -> GraphEmbeddings:
        """The graph over these videos only (a catalog's: removed videos are never offered); self when it
        holds no others."""
        keep = [i for i, v in enumerate(self.video_ids) if v in video_ids]
        if len(keep) == len(self.video_ids):
            return self
        return GraphEmbeddings(
            self.user_keys, [self.video_ids[i] for i in keep], self.users, self.videos[keep], self.config
        )

    # ---- graph.safetensors: tensors and metadata --------------------------------------------------------------
    def to_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """What graph.safetensors holds: the embeddings, the user keys, the video ids as UTF-8 bytes with
        the end of each (any id, any number of them; the header's metadata is bounded), and the config."""
        encoded = [v.encode("utf-8") for v in self.video_ids]
        tensors = {
            "users": torch.from_numpy(self.users),
            "videos": torch.from_numpy(self.videos),
            "user_keys": torch.from_numpy(self.user_keys.copy()),
            "video_ids_utf8": torch.frombuffer(bytearray(b"".join(encoded) or b"\0"), dtype=torch.uint8),
            "video_id_ends": torch.tensor(np.cumsum([len(e) for e in encoded], dtype=np.int64)),
        }
        return tensors, {"format": FORMAT, "config": json.dumps(self.config.to_dict())}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> GraphEmbeddings:
        """Back from `to_tensors`; ValueError when the file is not one (or holds non-finite numbers)."""
        metadata = metadata or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"graph format {metadata.get('format')!r}, not {FORMAT}")
        try:
            config = GraphConfig(**json.loads(metadata["config"]))
            users, videos = tensors["users"].numpy(), tensors["videos"].numpy()
            data, ends = tensors["video_ids_utf8"].numpy().tobytes(), tensors["video_id_ends"].numpy()
            keys = tensors["user_keys"].numpy()
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a graph file ({type(exc).__name__}: {exc})") from None
        if not (np.isfinite(users).all() and np.isfinite(videos).all()):
            raise ValueError("the graph's embeddings hold non-finite numbers")
        starts = np.r_[0, ends[:-1]]
        if len(ends) and (ends[-1] > len(data) or (starts > ends).any()):
            raise ValueError("the graph's video ids are cut wrong")
        video_ids = [data[s:e].decode("utf-8") for s, e in zip(starts.tolist(), ends.tolist())]
        return cls(keys, video_ids, users, videos, config)


def click_edges(features: FeatureSet, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """(group index, catalog index) of every click in the training period (repeats kept)."""
    imp = features.impressions
    rows = split.train[imp.click.numpy()[split.train] > 0.5]
    return imp.group.numpy()[rows], imp.video.numpy()[rows]


def learn_graph(features: FeatureSet, split: Split, config: GraphConfig | None = None) -> GraphEmbeddings:
    """LightGCN on the training period's clicks (the rows the multi-task nets learn from)."""
    groups, videos = click_edges(features, split)
    users, user_index = np.unique(groups, return_inverse=True)
    known_videos, video_index = np.unique(videos, return_inverse=True)
    user_vectors, video_vectors = train_graph(user_index, video_index, len(users), len(known_videos), config)
    return GraphEmbeddings.of_users(
        [features.user_ids[g] for g in users.tolist()],
        [features.catalog.video_ids[v] for v in known_videos.tolist()],
        user_vectors,
        video_vectors,
        config or GraphConfig(),
    )


def graph_metrics(
    graph: GraphEmbeddings, features: FeatureSet, split: Split, max_users: int = EVALUATED_USERS, seed: int = 0
) -> dict:
    """recall@50 and @100 of the test period's clicks on videos a user had not clicked in training, for the
    users the graph knows (a seeded sample of `max_users`), each user's list being what `candidates` serves
    with their training clicks as history. A clicked video the graph does not know counts as missed.
    `users`: how many users were measured; `clicks`: their (user, video) pairs."""
    imp = features.impressions
    groups, videos = click_edges(features, split)
    seen: dict[int, set[int]] = {}
    for g, v in zip(groups.tolist(), videos.tolist()):
        seen.setdefault(g, set()).add(v)
    test = split.test[imp.click.numpy()[split.test] > 0.5]
    wanted: dict[int, set[int]] = {}
    for g, v in zip(imp.group.numpy()[test].tolist(), imp.video.numpy()[test].tolist()):
        if g in seen and v not in seen[g]:  # in the graph: every user with a training click is
            wanted.setdefault(g, set()).add(v)
    users = sorted(wanted)
    if len(users) > max_users:
        users = sorted(np.random.default_rng(seed).choice(users, max_users, replace=False).tolist())
    if not users:
        return {**{f"recall_at_{k}": None for k in RECALL_AT}, "users": 0, "clicks": 0}
    ids = features.catalog.video_ids
    recalls: dict[int, list[float]] = {k: [] for k in RECALL_AT}
    for g in users:
        history = [ids[v] for v in seen[g]]
        ranked = [video for video, _ in graph.candidates(features.user_ids[g], history, max(RECALL_AT))]
        relevant = {ids[v] for v in wanted[g]}
        for k in RECALL_AT:
            recalls[k].append(len(relevant.intersection(ranked[:k])) / len(relevant))
    return {
        **{f"recall_at_{k}": round(float(np.mean(recalls[k])), 4) for k in RECALL_AT},
        "users": len(users),
        "clicks": int(sum(len(wanted[g]) for g in users)),
    }
