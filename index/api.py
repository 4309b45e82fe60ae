"""The Python API that the command line and the web UI share: one object per data directory.

Work that spans floors (ingest, then bring the indexes up to date) is orchestrated here, above
`ingest/`, which never imports `index/`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ingest.engine import check_engine
from ingest.learning import ModelError, TrainOptions, train_and_save
from ingest.learning.checkpoint import serving_model_id
from ingest.pipeline import IngestOptions, IngestReport, ingest
from ingest.store import Store
from ingest.tune import TuneOptions, tune_catalog_clip, use_clip_version
from models.context import Context

from .catalog_index import FUSED, CatalogIndex
from .feedback import log_impressions, record_feedback
from .recommend import RecommendConfig, Recommender
from .search import DEFAULT_K, Searcher
from .threads import serve_one_thread_per_query
from .vector_index import IndexConfig, IndexFileError


class Vidrec:
    """`read_only=True` is the serving side (search, similar, recommend, status, the UI): the store is opened
    read-only, the objects follow the store as jobs change it, queries run one thread each, and feedback goes
    through a second, writable connection, one short transaction each. Otherwise it is a job's: ingest,
    remove and index take the data directory's writer lock.

    `engine="ray"`: a job fills sharded indexes' shards with Ray tasks; the serving side searches them through
    one Ray actor per shard (index/ray_shards.py), connected for the life of the process."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        create: bool = False,
        read_only: bool = False,
        index_config: IndexConfig = IndexConfig(),
        recommend_config: RecommendConfig = RecommendConfig(),
        engine: str = "local",
    ):
        check_engine(engine)
        self.store = Store(data_dir, create=create and not read_only, read_only=read_only)
        if read_only:
            serve_one_thread_per_query()
        self.indexes = {FUSED: CatalogIndex(self.store, FUSED, index_config, engine=engine)}
        self.searcher = Searcher(self.store, index=self.indexes[FUSED])
        self.recommender = Recommender(self.store, self.searcher, recommend_config)
        self._feedback_store: Store | None = None
        self._writes = threading.Lock()  # the UI's sessions share the feedback connection: one write at a time

    # ---- catalog ------------------------------------------------------------------------------
    def status(self) -> dict:
        return self.store.status()

    def ingest(
        self, paths: Sequence[Path | str] = (), manifest: Path | str | None = None, options: IngestOptions | None = None
    ) -> IngestReport:
        """Ingest, then bring the indexes up to date so the new videos are searchable at once (one job)."""
        with self.store.writing("ingest"):
            report = ingest(self.store, paths, manifest, options)
            if report.ingested or report.updated:
                self.refresh_indexes()
        return report

    def remove(self, video_ids: list[str]) -> list[str]:
        with self.store.writing("remove"):
            removed = self.store.videos.remove(video_ids)
            if removed and self.store.videos.count():
                self.refresh_indexes()
        return removed

    def tune_clip(self, options: TuneOptions | None = None) -> dict:
        """Tune the catalog's CLIP and, when it replaced the old one, rebuild the indexes with it (one job)."""
        with self.store.writing("tune-clip"):
            result = tune_catalog_clip(self.store, options)
            if result["replaced"]:
                self.refresh_indexes()
        return result

    def use_clip(self, version: int, progress: bool = True) -> dict:
        """Switch the catalog to one of its CLIP versions (embedding what it lacks), then rebuild the indexes with
        it (one job); `model` is the model that serves afterwards (None: none of that version, retrain)."""
        with self.store.writing("clip use"):
            result = use_clip_version(self.store, version, progress=progress)
            if self.store.videos.count():
                self.refresh_indexes()
            result["model"] = serving_model_id(self.store)
        return result

    def train(self, options: TrainOptions | None = None) -> dict:
        """Train and save a model, then build its retrieval index, so the first recommendation need not."""
        result = train_and_save(self.store, options)
        self.refresh_indexes()
        return result

    def refresh_indexes(self, rebuild: bool = False) -> list[dict]:
        """Build or update every index and write it (the model's too, once there is a usable model), under the
        writer lock; returns their descriptions. `rebuild`: from the store, whatever the files hold. A model that
        cannot be loaded (stale after tune-clip, say) is reported, not raised: the catalog's own indexes are
        current either way."""
        with self.store.writing("index"):
            if not self.store.videos.count():
                raise IndexFileError("the catalog is empty: ingest videos first")
            out = [index.ensure(rebuild).info.to_json() | {"action": index.action} for index in self.indexes.values()]
            if self.store.models.count():
                try:
                    model_index = self.recommender.model_index(rebuild)
                    assert model_index.info is not None
                    out.append(model_index.info.to_json() | {"action": model_index.action})
                except ModelError as exc:
                    out.append({"name": "model", "action": "skipped", "reason": " ".join(str(exc).split())})
        return out

    # ---- search -------------------------------------------------------------------------------
    def search(self, text: str, k: int = DEFAULT_K) -> list[dict]:
        return self.searcher.text(text, k)

    def similar(self, video_id: str, k: int = DEFAULT_K) -> list[dict]:
        return self.searcher.similar(video_id, k)

    def similar_to_file(self, path: Path | str, k: int = DEFAULT_K) -> list[dict]:
        return self.searcher.similar_to_file(path, k)

    # ---- recommendations ------------------------------------------------------------------------
    def context(
        self,
        user_id: str,
        hour: int | None = None,
        weekday: int | None = None,
        device: str | None = None,
        region: str | None = None,
    ) -> Context:
        return self.recommender.context_for(user_id, hour, weekday, device, region)

    def recommend(
        self,
        user_id: str,
        context: Context | None = None,
        k: int = DEFAULT_K,
        session_history: Sequence[str] = (),
        exclude: Sequence[str] = (),
        model_id: str | None = None,
    ) -> dict:
        """`model_id`: rank with that model for this call (`--model`) instead of the one that serves."""
        context = context or self.context(user_id)
        return self.recommender.recommend(user_id, context, k, list(session_history), list(exclude), model_id)

    def popular(self, context: Context, k: int = DEFAULT_K) -> list[dict]:
        """The baseline list: `score` ranks it (this device and part of day weigh most), `clicks` is how many
        times each video was clicked in the recent window, in any context (a whole number to show)."""
        top = self.recommender.popular(context, k)
        titles = self.store.videos.titles([v for v, _ in top])
        counts, _ = self.recommender.popularity()
        chosen = {v for v, _ in top}
        clicks: Counter = Counter()
        for (video_id, _, _), n in counts.items():
            if video_id in chosen:
                clicks[video_id] += n
        return [
            {"video_id": v, "title": titles.get(v, ""), "clicks": int(clicks[v]), "score": round(c, 1)} for v, c in top
        ]

    def categories(self, video_ids: Sequence[str]) -> dict[str, dict]:
        """{video_id: {category, predicted, confidence}}: the label, else the serving model's prediction
        (marked predicted, with its probability); labels only while no model serves."""
        try:
            model = self.recommender.model
        except ModelError:
            model = None
        return self.recommender.categories(list(dict.fromkeys(video_ids)), model)

    # ---- feedback from the UI -------------------------------------------------------------------
    def log_impressions(self, user_id: str, video_ids: list[str], context: Context) -> int:
        with self._writes:
            return log_impressions(self._writer(), user_id, video_ids, context)

    def feedback(self, user_id: str, video_id: str, action: str, context: Context) -> None:
        with self._writes:
            record_feedback(self._writer(), user_id, video_id, action, context)

    def _writer(self) -> Store:
        """The connection feedback is written through (no writer lock: a like made during an ingest is kept)."""
        if not self.store.read_only:
            return self.store
        if self._feedback_store is None:
            self._feedback_store = Store(self.store.data_dir, create=False)
        return self._feedback_store
