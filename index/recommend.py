"""The recommender: candidates from several sources, ranked in context by the multi-task model, fused into
one score, made into a list whose category mix follows the user's own (diversity.py) with an exploratory
place at the end (exploration.py), and explained.

Sources: neighbours of the user's recent history (the fused CLIP index), the model's retrieval
vectors (a FAISS index of the model's video vectors), the click graph's embeddings (who watched what),
what is popular in this context (device and time of day), and fresh or little-seen videos.
Already-watched videos are left out. A new video with no interactions reaches lists through its content
(retrieval vectors and neighbours come from CLIP) and the exploratory place.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ingest.learning import LoadedModel, ModelError, load_model
from ingest.store import Store
from models.context import Context, daypart

from .catalog_index import CatalogIndex, changed_only
from .diversity import DIVERSITY, calibrated, capped, mix_of, target_mix
from .exploration import EXPLORATION, exploration_picks, little_seen, rng_for
from .search import DEFAULT_K, Searcher

LITTLE_SEEN_SECONDS = 60.0  # how long the list of little-seen videos is reused (every video's count is read for it)
DEVICE_NAMES = {"tv": "TV", "mobile": "mobile", "desktop": "desktop", "tablet": "tablet"}


@dataclass(frozen=True)
class RecommendConfig:
    """How lists are made (data: change it per call or per deployment)."""

    task_weights: dict = field(default_factory=lambda: {"click": 1.0, "like": 0.5, "watch": 0.5})
    history_seeds: int = 10  # recent history videos whose neighbours become candidates
    per_seed: int = 20
    retrieval: int = 200  # from the model's retrieval vectors
    graph: int = 100  # from the click graph's embeddings (0: none)
    popular: int = 100  # popular in this context
    fresh: int = 30
    explore: int = 20  # little-seen videos drawn per (user, day) as candidates
    popular_days: int = 30  # the window popularity is counted over, before the latest interaction
    diversity: str = "calibrated"  # calibrated | cap | none (index/diversity.py)
    mmr_lambda: float = 1.0  # 1: pure score; lower: fewer near-duplicates (cap: 0.8 before calibration)
    calibration: float = 0.6  # calibrated: the KL's weight against relevance
    mix_floor: float = 0.1  # calibrated: share of the target mix spread over every category
    prior_clicks: float = 3.0  # calibrated: everyone's mix counts as this many of the user's clicks
    context_lift: bool = True  # calibrated: shift the user's mix as this context shifts everyone's
    category_share: float = 0.4  # cap: at most this share of a list from one category
    exploration: str = "thompson"  # thompson | random: who gets the exploratory slots (index/exploration.py)
    explore_share: float = 0.1  # of a list's slots go to little-seen videos (rounded down: 1 of 10)
    little_seen: int = 30  # fewer impressions than this: a video to explore
    prior_impressions: float = 20.0  # thompson: what the model's prediction weighs, in impressions

    def __post_init__(self) -> None:
        if self.diversity not in DIVERSITY:
            raise ValueError(f"diversity must be one of {', '.join(DIVERSITY)}, not {self.diversity!r}")
        if self.exploration not in EXPLORATION:
            raise ValueError(f"exploration must be one of {', '.join(EXPLORATION)}, not {self.exploration!r}")


def context_weight(device: str | None, part: str, device_now: str | None, part_now: str) -> float:
    """How much a click counts toward this context: on this device at this part of the day 1, at this part of
    the day on another device 0.3, else 0.1 (popularity and the category lift alike)."""
    return 1.0 if (device, part) == (device_now, part_now) else 0.3 if part == part_now else 0.1


class Recommender:
    def __init__(self, store: Store, searcher: Searcher, config: RecommendConfig = RecommendConfig()):
        self.store = store
        self.searcher = searcher
        self.config = config
        self._model: LoadedModel | None = None
        self._model_key: tuple | None = None  # (newest model id, CLIP version, pin) the loaded model answers to
        self._model_index: CatalogIndex | None = None
        self._model_lock = threading.Lock()
        self._catalog: tuple[tuple, list[str], list[str]] | None = None  # ((restore, revision), newest, all ids)
        # (store revision and log marker, (clicks per (video, device, part of day), ranked lists per context))
        self._popularity: tuple[tuple, tuple[Counter, dict]] | None = None
        # (revision, when, the little-seen video ids as a list and as a set)
        self._little_seen: tuple[tuple, float, list[str], frozenset[str]] | None = None

    # ---- the model and its retrieval index ------------------------------------------------------
    @property
    def model(self) -> LoadedModel:
        """The model that serves (the pinned one, else the newest usable one) over the store's catalog as it is
        now: loaded once per (newest model, CLIP version, pin), so a new model, CLIP or pin is picked up on the
        next request, and following the catalog's revision (new videos scored from their content, removed ones
        gone) without a reload from disk."""
        key = self._model_key_now()
        model = self._model
        if model is not None and self._model_key == key:
            if model.catalog.revision == self.store.revision:
                return model
            if not self._model_lock.acquire(blocking=False):
                return model  # another request is bringing it up to date; this one goes on with the model it has
        else:
            self._model_lock.acquire()
        try:
            with self.store.snapshot():  # the model lock, then the snapshot: never the other way round
                key = self._model_key_now()
                if self._model is None or self._model_key != key:
                    self._model = load_model(self.store)
                    self._model_key = key
                    self._model_index = None
                else:
                    self._model = self._model.following()
                return self._model
        finally:
            self._model_lock.release()

    def _model_key_now(self) -> tuple:
        """(newest model id, CLIP version, pinned model id, restore, users forgotten): what decides which model
        serves and over which catalog, cheap to read. A `forget-user` reloads the model, which leaves the user's
        row out of its click graph (load_model)."""
        newest = self.store.models.newest_id()
        if newest is None:
            raise ModelError("no trained model: run `vidrec train`")
        store = self.store
        return (
            newest,
            store.clip_version,
            store.models.pinned(),
            store.restore_id,
            store.interactions.forgotten_marker(),
        )

    def model_index(self, rebuild: bool = False) -> CatalogIndex:
        model = self.model
        if self._model_index is None:
            self._model_index = self._index_of(model)
        index = self._model_index
        index.ensure(rebuild)
        return index

    def _index_of(self, model: LoadedModel) -> CatalogIndex:
        """The retrieval index of a model's video vectors (its files are `model-<model_id>`)."""

        def source(since: int | None) -> tuple[np.ndarray, np.ndarray]:
            """This model's vectors over the revision being indexed (read in the index's snapshot)."""
            current = self._model
            if current is None or current.model_id != model.model_id:
                current = model
            ids, _, vectors = current.following().video_vectors()
            return changed_only(self.store, ids, vectors, since)

        return CatalogIndex(
            self.store,
            self.store.paths.model_index_name(model.model_id),
            self.searcher.index.config,
            engine=self.searcher.index.engine,
            source=source,
            extra_stamp={"model": model.model_id},
        )

    def one_off(self, model_id: str) -> tuple[LoadedModel, CatalogIndex]:
        """A model asked for by id (`--model`), with its retrieval index: loaded for this call, beside the
        serving model, which stays cached."""
        with self.store.snapshot():
            model = load_model(self.store, model_id)
        index = self._index_of(model)
        index.ensure()
        return model, index

    # ---- context --------------------------------------------------------------------------------
    def context_for(
        self,
        user_id: str,
        hour: int | None = None,
        weekday: int | None = None,
        device: str | None = None,
        region: str | None = None,
    ) -> Context:
        """Missing parts: now in local time, and the user's usual device and region (the catalog's most
        usual ones for a user it has never seen)."""
        now = datetime.now().astimezone()
        usual = self.usual(user_id)
        return Context(
            hour=now.hour if hour is None else hour,
            weekday=now.weekday() if weekday is None else weekday,
            device=device or usual["device"],
            region=region or usual["region"],
        )

    def usual(self, user_id: str) -> dict[str, str | None]:
        """The user's most frequent device and region (the whole log's for a user it does not know)."""
        log = self.store.interactions
        return {column: log.most_common(column, user_id) or log.most_common(column) for column in ("device", "region")}

    # ---- recommending -----------------------------------------------------------------------------
    def recommend(
        self,
        user_id: str,
        context: Context,
        k: int = DEFAULT_K,
        session_history: Sequence[str] = (),
        exclude: Sequence[str] = (),
        model_id: str | None = None,
    ) -> dict:
        """A list of k videos for this user in this context; `session_history` (videos just watched or
        liked in the UI, most recent last) counts as history before any retraining. `model_id`: rank with that
        model instead of the one that serves."""
        if k < 1:
            raise ValueError("k must be at least 1")
        if model_id is None:
            model, index = self.model, self.model_index()
        else:
            model, index = self.one_off(model_id)
        known = self.store.videos.titles(list(session_history))
        history = self.history(user_id) + [v for v in session_history if v in known]
        watched = set(history) | set(exclude)
        cold_start = not history
        rng = rng_for(user_id, datetime.now().date())  # exploration: the same draws all day for this user
        candidates: dict[str, list[str]] = defaultdict(list)  # video_id -> reasons from its sources
        self._from_history(history, candidates)
        self._from_retrieval(model, index, user_id, context, history, candidates)
        self._from_graph(model, user_id, history, candidates)
        self._popular(context, candidates)
        self._fresh_and_explore(rng, candidates)
        # candidates the model's catalog lacks (a write between two reads of this request) wait for the next one
        pool = [v for v in candidates if v not in watched and model.knows(v)]
        served = {"model_id": model.model_id, "warnings": model.warnings}
        if not pool:
            return {"items": [], "cold_start": cold_start, "context": context.__dict__, **served}
        scores = model.score(user_id, pool, context, history=history)
        fused = self.fuse(scores)
        pool_categories = self._categories(model, pool)
        seen_categories = self._categories(model, history[-100:])  # the user's recent videos, once each
        target = self._target(list(seen_categories.values()), context, model)
        ranked = self._diversify(pool, fused, k, model, [pool_categories[v] for v in pool], target)
        slots = int(len(ranked) * self.config.explore_share)
        explored = self._explore(pool, scores["click"], ranked[: len(ranked) - slots], slots, rng)
        chosen = ranked[: len(ranked) - len(explored)] + list(explored)
        interests = self._interests([seen_categories[v] for v in dict.fromkeys(history[-50:])])
        titles = self.store.videos.titles([pool[i] for i in chosen])
        items = []
        for i in chosen:
            video_id = pool[i]
            if video_id not in titles:
                continue  # removed since the candidates were found
            reasons = list(dict.fromkeys(candidates[video_id]))
            if i in explored:
                reasons.insert(
                    0, "exploring: few people have seen this yet" if explored[i] else "exploring: new in the catalog"
                )
            elif pool_categories[video_id] in interests:
                reasons.insert(0, f"matches your interest in {pool_categories[video_id]}")
            items.append(
                {
                    "video_id": video_id,
                    "title": titles[video_id],
                    "score": round(float(fused[i]), 4),
                    "scores": {t: round(float(np.nan_to_num(v[i])), 4) for t, v in scores.items()},
                    "reasons": reasons[:3],
                    "category": pool_categories[video_id],
                }
            )
        return {"items": items, "cold_start": cold_start, "context": context.__dict__, **served}

    def fuse(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """Expected value of an impression: P(click) x (w_click + w_like P(like|click) + w_watch E[watch|click])."""
        w = self.config.task_weights
        value = w.get("click", 1.0) + w.get("like", 0.0) * scores["like"] + w.get("watch", 0.0) * scores["watch"]
        return np.nan_to_num(scores["click"] * value, nan=0.0, posinf=0.0, neginf=0.0)

    def history(self, user_id: str) -> list[str]:
        """The videos the user clicked, oldest first."""
        return self.store.interactions.clicks(user_id)

    # ---- sources ----------------------------------------------------------------------------------
    def _from_history(self, history: list[str], candidates: dict) -> None:
        seeds = list(dict.fromkeys(reversed(history)))[: self.config.history_seeds]
        titles = self.store.videos.titles(seeds)
        for seed, items in self.searcher.similar_to_each(seeds, self.config.per_seed).items():
            for item in items:
                candidates[item["video_id"]].append(f"like “{titles.get(seed, seed)}” you watched")

    def _from_retrieval(
        self,
        model: LoadedModel,
        index: CatalogIndex,
        user_id: str,
        context: Context,
        history: list[str],
        candidates: dict,
    ) -> None:
        query = model.user_vector(user_id, context, history=history).astype(np.float32)[None]
        _, ids = index.search(query, self.config.retrieval)
        found = [int(i) for i in ids[0] if i >= 0]
        for video_id, _ in self.store.videos.names(found).values():
            candidates[video_id].append("picked for you")

    def _from_graph(self, model: LoadedModel, user_id: str, history: list[str], candidates: dict) -> None:
        if model.graph is None or self.config.graph <= 0:
            return
        for video_id, _ in model.graph.candidates(user_id, history, self.config.graph):
            candidates[video_id].append("people who watch what you watch also watch this")

    def popular(self, context: Context, k: int) -> list[tuple[str, float]]:
        """The baseline: videos by recent clicks in this context (same device and part of day counts most)."""
        counts, ranked = self.popularity()
        slot = daypart(context.hour)
        key = (context.device, slot)
        if key not in ranked:  # computed once per context and store revision
            score: dict[str, float] = defaultdict(float)
            for (video_id, device, part), clicks in counts.items():
                score[video_id] += clicks * context_weight(device, part, context.device, slot)
            ranked[key] = sorted(score.items(), key=lambda item: -item[1])
        return ranked[key][:k]

    def _popular(self, context: Context, candidates: dict) -> None:
        slot = daypart(context.hour)
        where = f"on {DEVICE_NAMES.get(context.device, context.device)} {slot}" if context.device else slot
        for video_id, _ in self.popular(context, self.config.popular):
            candidates[video_id].append(f"popular {where}")

    def popularity(self) -> tuple[Counter, dict]:
        """Clicks per (video, device, part of day) over the recent window, and the lists ranked from them so
        far; cached per store revision. The window ends at the newest imported interaction (an imported
        log may be older than today's UI feedback, which counts too)."""
        log = self.store.interactions
        key = (self.store.restore_id, self.store.revision, log.marker())
        if self._popularity is None or self._popularity[0] != key:
            latest = log.latest_ts("import") or log.latest_ts() or 0
            since = latest - self.config.popular_days * 86400
            counts: Counter = Counter()
            for video_id, device, hour, clicks in log.clicks_by_context(since):
                counts[(video_id, device, daypart(hour))] += clicks
            self._popularity = (key, (counts, {}))
        return self._popularity[1]

    def _catalog_lists(self) -> tuple[list[str], list[str]]:
        """The newest videos and every video id, cached per store revision: reading them per request cost
        a 100k catalog 75 ms of a 125 ms request (bench/RESULTS.md)."""
        revision = (self.store.restore_id, self.store.revision)
        if self._catalog is None or self._catalog[0] != revision:
            self._catalog = (revision, self.store.videos.newest(self.config.fresh), self.store.videos.video_ids())
        return self._catalog[1], self._catalog[2]

    def _fresh_and_explore(self, rng: random.Random, candidates: dict) -> None:
        fresh, _ = self._catalog_lists()
        for video_id in fresh:
            candidates[video_id].append("new in the catalog")
        rarely, _ = self._little_seen_ids()
        for video_id in rng.sample(rarely, min(self.config.explore, len(rarely))):  # a different handful each day
            candidates[video_id].append("few people have seen this yet")

    def _little_seen_ids(self) -> tuple[list[str], frozenset[str]]:
        """The catalog's videos with fewer than `little_seen` impressions: every video's count (kept by the store)
        is read at most once a minute (and at each catalog revision), not at every logged impression;
        `_explore` reads the counts of the few it may pick."""
        key = (self.store.restore_id, self.store.revision)
        now = time.monotonic()
        if self._little_seen is None or self._little_seen[0] != key or now - self._little_seen[1] > LITTLE_SEEN_SECONDS:
            impressions = {v: n for v, (n, _) in self.store.interactions.per_video().items()}
            rarely = little_seen(self._catalog_lists()[1], impressions, self.config.little_seen)
            self._little_seen = (key, now, rarely, frozenset(rarely))
        return self._little_seen[2], self._little_seen[3]

    # ---- ranking helpers --------------------------------------------------------------------------
    def _diversify(
        self,
        pool: list[str],
        scores: np.ndarray,
        k: int,
        model: LoadedModel,
        labels: list[str | None],
        target: dict[str, float],
    ) -> list[int]:
        """The list before its exploratory slots (index/diversity.py): calibrated to the user's mix, capped, or
        by score alone."""
        k = min(k, len(pool))
        if self.config.diversity == "none" or k <= 0:
            return [int(i) for i in np.argsort(-scores, kind="stable")[: max(k, 0)]]
        relevance = scores / max(float(scores.max()), 1e-9)
        c = self.config
        # CLIP vectors only where near-duplicates are penalised (zeros: no redundancy term to compute)
        vectors = model.clip_vectors(pool) if c.mmr_lambda < 1 else np.zeros((len(pool), 1), np.float32)
        if c.diversity == "cap":
            return capped(relevance, labels, vectors, k, c.category_share, c.mmr_lambda)
        return calibrated(relevance, labels, vectors, target, k, c.calibration, c.mmr_lambda)

    def _target(self, mine: list[str | None], context: Context, model: LoadedModel) -> dict[str, float]:
        """The category mix this user's list should follow in this context (diversity.target_mix), from the
        categories of their recent videos."""
        everyone, lift = self._context_mix(context, model)
        c = self.config
        return target_mix(mine, everyone, lift if c.context_lift else {}, c.prior_clicks, c.mix_floor, list(everyone))

    def _context_mix(self, context: Context, model: LoadedModel) -> tuple[dict[str, float], dict[str, float]]:
        """Everyone's click mix over the popularity window, and how this context (device, part of day) lifts
        each category against it; cached with the popularity lists (the clicks by category once, each
        context's mix from those)."""
        counts, ranked = self.popularity()
        slot = daypart(context.hour)
        key = ("mix", context.device, slot)
        if key not in ranked:
            if "clicks by category" not in ranked:
                category = self._categories(model, list({v for v, _, _ in counts}))
                by_category: Counter = Counter()
                for (video_id, device, part), clicks in counts.items():
                    by_category[(category.get(video_id), device, part)] += clicks
                ranked["clicks by category"] = by_category
            keys = list(ranked["clicks by category"].items())
            labels = [c for (c, _, _), _ in keys]
            everyone = mix_of(labels, [n for _, n in keys])
            weights = [context_weight(d, p, context.device, slot) for (_, d, p), _ in keys]
            here = mix_of(labels, [n * w for (_, n), w in zip(keys, weights)])
            ranked[key] = (everyone, {c: min(4.0, max(0.25, here.get(c, 0.0) / everyone[c])) for c in everyone})
        return ranked[key]

    def _explore(
        self, pool: list[str], click: np.ndarray, chosen: list[int], slots: int, rng: random.Random
    ) -> dict[int, int]:
        """{pool index: impressions so far} of the exploratory places' videos: little-seen candidates (by their
        counts now), by Thompson sampling (or at random)."""
        if slots <= 0:
            return {}
        (_, rare), taken = self._little_seen_ids(), set(chosen)
        maybe = [i for i, v in enumerate(pool) if v in rare and i not in taken]
        counts = self.store.interactions.per_video([pool[i] for i in maybe])
        seen = {i: counts.get(pool[i], (0, 0)) for i in maybe}
        options = [i for i in maybe if seen[i][0] < self.config.little_seen]
        if not options:
            return {}
        impressions = np.array([seen[i][0] for i in options], np.float64)
        clicks = np.array([seen[i][1] for i in options], np.float64)
        prior = np.nan_to_num(click[options], nan=0.0)
        c = self.config
        picks = exploration_picks(rng, c.exploration, prior, impressions, clicks, c.prior_impressions, slots)
        return {options[j]: int(impressions[j]) for j in picks}

    def _categories(self, model: LoadedModel, video_ids: list[str]) -> dict[str, str | None]:
        """The label, or the model's prediction for an unlabelled video."""
        return {v: c["category"] for v, c in self.categories(video_ids, model).items()}

    def categories(self, video_ids: list[str], model: LoadedModel | None = None) -> dict[str, dict]:
        """{video_id: {category, predicted, confidence}}: the label when there is one (predicted False,
        confidence None), else the model's most likely category and its probability; category None where
        there is neither (no label, and no model that knows the video). One answer for every page."""
        known = self.store.videos.categories(video_ids)
        labels = {v: known.get(v) for v in video_ids}
        out: dict[str, dict] = {v: {"category": c, "predicted": False, "confidence": None} for v, c in labels.items()}
        missing = [v for v, c in labels.items() if not c and model is not None and model.knows(v)]
        if missing:
            assert model is not None
            names, probs = model.category_probabilities(missing)
            for v, p in zip(missing, probs):
                best = int(p.argmax())
                out[v] = {"category": names[best], "predicted": True, "confidence": round(float(p[best]), 4)}
        return out

    @staticmethod
    def _interests(recent: list[str | None]) -> set[str]:
        """The categories that make up most of the user's recent videos (their categories, one per video)."""
        if not recent:
            return set()
        counts = Counter(recent)
        total = sum(counts.values())
        return {c for c, n in counts.most_common(3) if c and n / total >= 0.2}
