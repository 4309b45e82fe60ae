"""A saved multi-task model, loaded for use: what the recommender, the UI and `vidrec score` call. Its click
graph's embeddings (`graph`, where it has them) give the recommender "also watched" candidates.

Scoring is per request (one user, one context, a few hundred candidates): the catalog's video-side
vectors are computed once at load, and a user's history (their clicks from the store) is cached for a
short while, so a request is one small forward pass.
"""

from __future__ import annotations

import csv
import functools
import math
import threading
import time
from pathlib import Path

import numpy as np
import torch

from models.context import Context
from models.multitask import INTEREST_TASKS, MultiTaskNet, in_chunks

from ..interactions import parse_timestamp
from ..store import Store
from .errors import ModelError
from .features import CatalogFeatures, Vocabulary, click_histories, hash_bucket, read_catalog
from .graph import GraphEmbeddings

HISTORY_SECONDS = 30.0  # how long a user's history read from the store is reused
SCORE_COLUMNS = ("pred_click", "pred_like", "pred_watch", "pred_category")


def one_thread(method):
    """Run a scoring call on one torch thread: its matrices are a few hundred rows, where a second
    thread costs more than it gives, and on a busy machine (the UI, an ingest beside it) two threads
    made a 500-candidate request 30x slower (bench/RESULTS.md)."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        previous = torch.get_num_threads()
        if previous == 1:
            return method(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return method(*args, **kwargs)
        finally:
            torch.set_num_threads(previous)

    return wrapper


class LoadedModel:
    def __init__(
        self,
        store: Store,
        model_id: str,
        clip_version: int,
        config: dict,
        metrics: dict,
        nets: dict[str, MultiTaskNet],
        vocabulary: Vocabulary,
        catalog: CatalogFeatures,
        history_length: int,
        graph: GraphEmbeddings | None = None,
    ):
        self.store, self.model_id, self.clip_version = store, model_id, clip_version
        self.config, self.metrics, self.nets, self.vocabulary, self.catalog = config, metrics, nets, vocabulary, catalog
        self.history_length = history_length
        self.warnings: list[str] = []  # what a reader should know: a damaged newer model this one stands in for
        self._position = catalog.index()
        # the click graph's candidates (None: a model saved without one), over this catalog's videos only
        self.graph = None if graph is None else graph.within(self._position)
        self._saved_graph = graph  # as saved, for `following` (a video removed now may be back then)
        self._histories: dict[str, tuple[float, list[int]]] = {}
        self._lock = threading.Lock()
        self._category: np.ndarray | None = None
        self._video_vectors: np.ndarray | None = None
        for net in nets.values():
            net.eval()
            net.cache_videos()

    @property
    def arch(self) -> str:
        return self.config["arch"]

    def following(self) -> LoadedModel:
        """This model over the store's catalog as it is now (self when nothing changed): videos added since the
        model was trained or loaded are scored from their content, as unseen videos are (their id buckets
        were not trained: the learnt "unknown" one stands in), and removed videos are gone. A new object, so
        requests still running on this one finish undisturbed."""
        if self.store.revision == self.catalog.revision:
            return self
        catalog, _ = read_catalog(self.store, self.vocabulary)
        if catalog.clip_version != self.clip_version:
            raise ModelError(
                f"model {self.model_id} was trained on CLIP version {self.clip_version}, the catalog is now on "
                f"version {catalog.clip_version}: retrain with `vidrec train`"
            )
        nets = {}
        for name, net in self.nets.items():
            twin = MultiTaskNet(net.config)
            twin.load_state_dict(net.state_dict())
            twin.set_catalog(catalog.tensors)
            nets[name] = twin
        follower = LoadedModel(
            self.store,
            self.model_id,
            self.clip_version,
            self.config,
            self.metrics,
            nets,
            self.vocabulary,
            catalog,
            self.history_length,
            graph=self._saved_graph,
        )
        follower.warnings = self.warnings
        return follower

    def knows(self, video_id: str) -> bool:
        """Whether the video is in the catalog this model was loaded over."""
        return video_id in self._position

    def _net_for(self, task: str) -> MultiTaskNet:
        for net in self.nets.values():
            if task in net.config.tasks:
                return net
        raise ModelError(f"model {self.model_id} has no {task} head")

    def _indices(self, video_ids: list[str]) -> torch.Tensor:
        unknown = [v for v in video_ids if v not in self._position]
        if unknown:
            raise ModelError(
                f"unknown video id(s) for model {self.model_id}: {', '.join(map(str, unknown[:5]))}"
                + (" ..." if len(unknown) > 5 else "")
            )
        return torch.tensor([self._position[v] for v in video_ids], dtype=torch.long)

    # ---- the user's side ------------------------------------------------------------------------------------
    def history(self, user_id: str) -> list[str]:
        """The user's clicked videos in the store (the latest `history_length`), most recent last."""
        return [self.catalog.video_ids[i] for i in self._stored_history(user_id)]

    def _stored_history(self, user_id: str) -> list[int]:
        now = time.monotonic()
        with self._lock:
            hit = self._histories.get(user_id)
            if hit and now - hit[0] < HISTORY_SECONDS:
                return hit[1]
        clicked = self.store.interactions.clicks(user_id, self.history_length)
        history = [self._position[v] for v in clicked if v in self._position]
        with self._lock:
            if len(self._histories) > 10_000:
                self._histories.clear()
            self._histories[user_id] = (now, history)
        return history

    def _history_row(self, user_id: str, history: list[str] | None) -> torch.Tensor:
        """[L] catalog indices, -1 padded at the front. A given history's ids unknown to the catalog (a
        removed video) are skipped: a session's trail should not break a recommendation."""
        if history is None:
            index = self._stored_history(user_id)
        else:
            index = [self._position[v] for v in history if v in self._position]
        index = index[-self.history_length :]
        return torch.tensor([-1] * (self.history_length - len(index)) + index, dtype=torch.long)

    def _request(self, user_id: str, video: torch.Tensor, context: Context, history: list[str] | None) -> dict:
        n = len(video)

        def same(value: int) -> torch.Tensor:
            return torch.full((n,), value, dtype=torch.long)

        return {
            "user": same(hash_bucket(str(user_id), self.vocabulary.user_buckets)),
            "video": video,
            "history": self._history_row(user_id, history).unsqueeze(0).expand(n, -1),
            "hour": same(context.hour),
            "weekday": same(context.weekday),
            "device": same(self.vocabulary.device_index(context.device)),
            "region": same(self.vocabulary.region_index(context.region)),
        }

    def is_known_user(self, user_id: str) -> bool:
        """Whether training saw this user (others are scored from context, content and any history)."""
        net = next(iter(self.nets.values()))
        return bool(net.user_seen[hash_bucket(str(user_id), self.vocabulary.user_buckets)])

    # ---- the API the recommender calls ----------------------------------------------------------------------
    @one_thread
    @torch.no_grad()
    def score(
        self, user_id: str, video_ids: list[str], context: Context, history: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """P(click), P(like | click) and the expected watched fraction given a click, per candidate."""
        video = self._indices(list(video_ids))
        if len(video) == 0:
            return {t: np.zeros(0, np.float32) for t in INTEREST_TASKS}
        batch = self._request(user_id, video, context, history)
        out: dict[str, np.ndarray] = {}
        for net in self.nets.values():
            interest = [t for t in INTEREST_TASKS if t in net.config.tasks]
            if interest:
                logits = net(batch)
                out.update({t: v.numpy() for t, v in net.probabilities({t: logits[t] for t in interest}).items()})
        return out

    @one_thread
    @torch.no_grad()
    def user_vector(self, user_id: str, context: Context, history: list[str] | None = None) -> np.ndarray:
        """[r] unit query vector for the retrieval index (inner product with `video_vectors`)."""
        batch = self._request(user_id, torch.zeros(1, dtype=torch.long), context, history)
        return self._net_for("retrieval").user_vectors(batch)[0].numpy()

    @one_thread
    @torch.no_grad()
    def video_vectors(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(int64 store ids, video ids, float32 [N, r] unit vectors) of every catalog video."""
        if self._video_vectors is None:
            net = self._net_for("retrieval")
            self._video_vectors = in_chunks(net.video_vectors, len(self.catalog.video_ids)).numpy().astype(np.float32)
        return self.catalog.store_ids.copy(), list(self.catalog.video_ids), self._video_vectors.copy()

    def clip_vectors(self, video_ids: list[str]) -> np.ndarray:
        """[N, D] the videos' CLIP video embeddings, as the model reads them: from memory, where reading the
        candidates' from the store cost every recommendation 4 ms (bench/bench_recommend_scale.py)."""
        return self.catalog.tensors.video_clip[self._indices(list(video_ids))].numpy()

    @one_thread
    @torch.no_grad()
    def category_probabilities(self, video_ids: list[str]) -> tuple[list[str], np.ndarray]:
        """(class names, [N, C]) predicted from each video's content alone (labelled or not)."""
        index = self._indices(list(video_ids))
        if self._category is None:
            self._category = self._net_for("category").category_probabilities().numpy()
        return list(self.vocabulary.categories), self._category[index.numpy()]


# ---- `vidrec score` ----------------------------------------------------------------------------------------
def read_rows(path: Path) -> list[dict]:
    """An interaction-shaped file (CSV or Parquet) as dicts, in order; needs user_id, video_id, timestamp."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no such file: {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
            columns = rows[0].keys() if rows else pq.read_schema(path).names
        else:
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                rows, columns = list(reader), reader.fieldnames or []
    except Exception as exc:  # any reader failure is the file's problem, said in one line
        raise ModelError(f"cannot read {path.name}: {' '.join(str(exc).split())[:200]}") from None
    missing = [c for c in ("user_id", "video_id", "timestamp") if c not in columns]
    if missing:
        raise ModelError(f"{path.name} lacks required column(s): {', '.join(missing)}")
    return rows


@torch.no_grad()
def score_file(model: LoadedModel, path: Path, out: Path, batch_size: int = 4096) -> dict:
    """Score every row of an interaction-shaped file into a CSV (docs/formats.md, `score` output). A row whose
    video is not in the catalog, or whose timestamp cannot be read, keeps its place with empty predictions.
    Each row's history is the user's clicks in the store strictly before the row's time."""
    rows = read_rows(path)
    n = len(rows)
    ok = np.zeros(n, bool)
    ts, hour, weekday, video = (np.zeros(n, np.int64) for _ in range(4))
    for i, row in enumerate(rows):
        video_id = "" if row.get("video_id") is None else str(row["video_id"]).strip()
        try:
            ts[i], _, local = parse_timestamp(row.get("timestamp"))
        except ValueError:
            continue
        if video_id in model._position and str(row.get("user_id") or "").strip():
            ok[i], hour[i], weekday[i], video[i] = True, local.hour, local.weekday(), model._position[video_id]
    users = [str(r.get("user_id") or "").strip() for r in rows]
    history = _histories_at(model, users, ts, ok)
    predictions = {c: np.full(n, np.nan) for c in SCORE_COLUMNS[:3]}
    category = [""] * n
    vocab = model.vocabulary
    good = np.flatnonzero(ok)
    for start in range(0, len(good), batch_size):
        rows_now = good[start : start + batch_size]
        batch = {
            "user": torch.tensor([hash_bucket(users[i], vocab.user_buckets) for i in rows_now]),
            "video": torch.from_numpy(video[rows_now]),
            "history": torch.from_numpy(history[rows_now]),
            "hour": torch.from_numpy(hour[rows_now]),
            "weekday": torch.from_numpy(weekday[rows_now]),
            "device": torch.tensor([vocab.device_index(_text(rows[i].get("device"))) for i in rows_now]),
            "region": torch.tensor([vocab.region_index(_text(rows[i].get("region"))) for i in rows_now]),
        }
        for net in model.nets.values():
            interest = [t for t in INTEREST_TASKS if t in net.config.tasks]
            if interest:
                logits = net(batch)
                for t, p in net.probabilities({t: logits[t] for t in interest}).items():
                    predictions[f"pred_{t}"][rows_now] = p.numpy()
    if model.vocabulary.categories and any(t == "category" for net in model.nets.values() for t in net.config.tasks):
        names, probabilities = model.category_probabilities(list(model.catalog.video_ids))
        for j in good:
            category[j] = names[int(probabilities[video[j]].argmax())]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("user_id", "video_id", "timestamp") + SCORE_COLUMNS)
        for i, row in enumerate(rows):
            values = [_cell(predictions[c][i]) for c in SCORE_COLUMNS[:3]] + [category[i]]
            writer.writerow(
                [_text(row.get("user_id")) or "", _text(row.get("video_id")) or "", _text(row.get("timestamp")) or ""]
                + values
            )
    cold = sum(1 for i in good if not model.is_known_user(users[i]))
    return {
        "scored": int(ok.sum()),
        "unknown": int(n - ok.sum()),
        "cold_start": cold,
        "rows": n,
        "out": str(out),
        "model_id": model.model_id,
        "warnings": model.warnings,
    }


def _histories_at(model: LoadedModel, users: list[str], ts: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """[N, L] each row's user's clicks in the store strictly before the row's time."""
    wanted = sorted({users[i] for i in np.flatnonzero(ok)})
    clicks = [c for c in model.store.interactions.clicks_of(wanted) if c[1] in model._position]
    code = {u: i for i, u in enumerate(wanted)}
    all_users = np.array([code[c[0]] for c in clicks] + [code.get(u, -1) for u in users], np.int64)
    all_ts = np.array([c[2] for c in clicks] + ts.tolist(), np.int64)
    all_videos = np.array([model._position[c[1]] for c in clicks] + [0] * len(users), np.int64)
    clicked = np.r_[np.ones(len(clicks), np.int64), np.zeros(len(users), np.int64)]
    all_users = np.where(all_users < 0, len(wanted), all_users)  # rows not scored: a user of their own
    return click_histories(all_users, all_ts, all_videos, clicked, model.history_length)[len(clicks) :]


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


def _cell(value: float) -> str:
    return f"{value:.6f}" if np.isfinite(value) else ""  # no prediction, never a NaN or an infinity
