"""The recommender, measured (python bench/bench_recommend.py [--quality-only | --latency-only]).

1. Quality on the default demo world, per context and per variant of `RecommendConfig` (the default, then
   each change of issue 19 undone in turn: the calibrated mix, the context's lift, the graph source, the
   exploratory place): NDCG@10 of the recommended lists with the world's true click probabilities as gains
   (the oracle's own top 10 has NDCG 1), distinct categories per list, and the calibration KL between each
   user's click mix and their list's mix (true categories), for narrow and for broad users (3 or more
   categories with 15% or more of their clicks each). The default row also gives popularity in context and
   the model ranking every unwatched video (what candidate generation and the list's shaping cost).
   `--config NAME=JSON` adds a row of other RecommendConfig fields.
2. Latency of `recommend` at a 100k-video catalog of synthetic embeddings (clustered, 128-d, with a
   synthetic log and a model trained on it): p50 and p99 over many requests, warm caches.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.demo import load_truth  # noqa: E402
from app.demo.command import run_demo  # noqa: E402
from index.api import Vidrec  # noqa: E402
from index.diversity import calibration_kl, mix_of  # noqa: E402
from index.recommend import RecommendConfig  # noqa: E402
from ingest.learning import TrainOptions, train_and_save  # noqa: E402
from ingest.store import Interaction, Store  # noqa: E402
from models.context import Context  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
CONTEXTS = {
    "weekday morning, mobile": (8, 0, "mobile"),
    "weekday lunch, desktop": (13, 2, "desktop"),
    "saturday evening, TV": (21, 5, "tv"),
    "friday late night, tablet": (23, 4, "tablet"),
}


def ndcg(gains_of_list: np.ndarray, ideal: np.ndarray) -> float:
    discounts = 1 / np.log2(np.arange(2, 12))
    return float(
        (gains_of_list[:10] * discounts[: len(gains_of_list[:10])]).sum()
        / (ideal[:10] * discounts[: len(ideal[:10])]).sum()
    )


# every source held to about 30 candidates, so that a source that finds other videos shows in the lists
SMALL = {"history_seeds": 10, "per_seed": 3, "retrieval": 30, "graph": 30, "popular": 30, "fresh": 5, "explore": 5}
VARIANTS = {  # RecommendConfig changes, each against the default (the first row)
    "default": {},
    "diversity: one 40% category cap (before)": {"diversity": "cap", "mmr_lambda": 0.8},
    "diversity: none (score order)": {"diversity": "none"},
    "calibrated, KL weight 0.7": {"calibration": 0.7},
    "calibrated, without the context's lift": {"context_lift": False},
    "without the graph source": {"graph": 0},
    "exploratory slot: random": {"exploration": "random"},
    "no exploratory slot": {"explore_share": 0.0},
    "small candidate budgets (as at a large catalog)": SMALL,
    "small candidate budgets, without the graph source": {**SMALL, "graph": 0},
}
BROAD_SHARE, BROAD_CATEGORIES = 0.15, 3  # broad users: at least 3 categories with 15% or more of their clicks each


def quality(data_dir: Path, users: int, variants: list[str]) -> dict:
    """Per variant and context: NDCG@10 against the oracle, distinct categories per list and the calibration KL
    between the user's click mix and the list's (true categories), for every user, broad ones and narrow ones."""
    truth = load_truth(Vidrec(data_dir).store.paths.demo_world)
    base = Vidrec(data_dir)
    everyone = sorted(truth.user_ids)
    rng = np.random.default_rng(0)
    sample = [everyone[i] for i in rng.choice(len(everyone), min(users, len(everyone)), replace=False)]
    videos = base.store.videos.video_ids()
    mixes = {u: mix_of([truth.video_category[v] for v in base.recommender.history(u)]) for u in sample}
    broad = {u for u, mix in mixes.items() if sum(share >= BROAD_SHARE for share in mix.values()) >= BROAD_CATEGORIES}
    out: dict = {"users": len(sample), "broad_users": len(broad), "variants": {}}
    for variant in variants:
        api = Vidrec(data_dir, recommend_config=RecommendConfig(**VARIANTS[variant]))
        model = api.recommender.model
        rows = {}
        for name, (hour, weekday, device) in CONTEXTS.items():
            per_user: dict[str, dict] = {}
            pop, full = [], []
            for user in sample:
                region = truth.user_region[user]
                context = Context(hour=hour, weekday=weekday, device=device, region=region)
                watched = set(api.recommender.history(user))
                pool = [v for v in videos if v not in watched]
                true = dict(zip(pool, truth.click_probability([user] * len(pool), pool, hour, weekday, device, region)))
                ideal = np.sort(np.array(list(true.values())))[::-1]
                listed = [i["video_id"] for i in api.recommend(user, context, k=10)["items"]]
                categories = [truth.video_category[v] for v in listed]
                per_user[user] = {
                    "ndcg": ndcg(np.array([true[v] for v in listed]), ideal),
                    "distinct": len(set(categories)),
                    "kl": calibration_kl(mixes[user], categories),
                }
                if variant == variants[0]:
                    popular = [v for v, _ in api.recommender.popular(context, 10 + len(watched)) if v not in watched]
                    pop.append(ndcg(np.array([true[v] for v in popular[:10]]), ideal))
                    scores = api.recommender.fuse(model.score(user, pool, context))
                    ranked = [pool[i] for i in np.argsort(-scores)[:10]]
                    full.append(ndcg(np.array([true[v] for v in ranked]), ideal))
            rows[name] = _summary(per_user, broad)
            if pop:
                rows[name]["popularity_ndcg10"] = round(float(np.mean(pop)), 4)
                rows[name]["model_over_all_videos_ndcg10"] = round(float(np.mean(full)), 4)
            print(variant, "|", name, rows[name], file=sys.stderr, flush=True)
        out["variants"][variant] = rows
    return out


def _summary(per_user: dict[str, dict], broad: set[str]) -> dict:
    def mean(key: str, users) -> float:
        values = [per_user[u][key] for u in users]
        return round(float(np.mean(values)), 4) if values else float("nan")

    narrow = [u for u in per_user if u not in broad]
    wide = [u for u in per_user if u in broad]
    return {
        "recommend_ndcg10": mean("ndcg", per_user),
        "distinct_categories": mean("distinct", per_user),
        "distinct_categories_broad": mean("distinct", wide),
        "calibration_kl_narrow": mean("kl", narrow),
        "calibration_kl_broad": mean("kl", wide),
    }


def demo_catalog() -> Path:
    data_dir = CACHE / "demo-default"
    if not Store(data_dir).models.count():
        run_demo(Store(data_dir), videos=400, users=300, seed=0, progress=False)
    return data_dir


def synthetic_store(n: int, dim: int = 128, users: int = 2000, impressions: int = 60_000, chunk: int = 20_000) -> Path:
    """A store of n videos with clustered synthetic embeddings and a synthetic log (no video files), built once
    under bench/.cache. Rows go straight into the store a chunk at a time, one transaction each, so memory stays
    flat whatever n; the revision is written last, so a store without it is an interrupted build, built again."""
    data_dir = CACHE / f"synthetic-{n}"
    if (data_dir / "catalog.db").exists() and Store(data_dir).revision == n + 1:
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    rng = np.random.default_rng(0)
    store = Store(data_dir)
    centres = rng.standard_normal((50, dim)).astype(np.float32)
    video_category = rng.integers(0, 50, n)
    with store.transaction():
        store.clips.add(1, "tiny", None, None, {"synthetic": True})
        store.clips.make_current(1)
    for start in range(0, n, chunk):  # bulk SQL: a benchmark's setup of synthetic videos, not a product path
        ids = range(start, min(n, start + chunk))
        category = video_category[start : start + len(ids)]
        video = _unit(centres[category] + 0.7 * rng.standard_normal((len(ids), dim), np.float32))
        text = _unit(centres[category] + 0.9 * rng.standard_normal((len(ids), dim), np.float32))
        duration = rng.uniform(5, 600, len(ids))
        with store.transaction():
            store.db.executemany(
                "INSERT INTO videos(id, video_id, content_hash, path, title, category, duration, width, "
                "height, codec, size_bytes, added_at, changed) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    (i + 1, f"s{i:06d}", f"h{i}", f"/synthetic/{i}.mp4", f"video {i} of c{c}", f"c{c}", float(d))
                    + (640, 360, "h264", 1000, "2026-01-01", i + 1)
                    for i, c, d in zip(ids, category.tolist(), duration)
                ),
            )
            store.db.executemany(
                "INSERT INTO embeddings(video, version, video_emb, frames_emb, title_emb, desc_emb, "
                "tags_emb, text_emb) VALUES (?,?,?,?,?,?,?,?)",
                (
                    (i + 1, 1, v.tobytes(), v.tobytes(), t.tobytes(), t.tobytes(), t.tobytes(), t.tobytes())
                    for i, v, t in zip(ids, video, text)
                ),
            )
    taste = rng.integers(0, 50, (users, 3))
    by_category = [np.flatnonzero(video_category == c) for c in range(50)]
    log = []
    for j in range(impressions):
        u = int(rng.integers(0, users))
        liked = rng.random() < 0.6
        c = int(taste[u, rng.integers(0, 3)]) if liked else int(rng.integers(0, 50))
        v = int(rng.choice(by_category[c]))
        ts = 1_790_000_000 + j * 40
        clicked = int(rng.random() < (0.3 if liked else 0.03))
        log.append(
            Interaction(
                f"u{u}",
                f"s{v:06d}",
                ts,
                0,
                (ts // 3600) % 24,
                (ts // 86400 + 3) % 7,
                ["mobile", "tv", "desktop"][u % 3],
                "us",
                clicked,
                int(clicked and rng.random() < 0.3),
                60.0 * clicked,
            )
        )
    with store.transaction():
        store.interactions.add(log)
        store.db.execute("UPDATE meta SET value = ? WHERE key = 'revision'", (str(n + 1),))
    return data_dir


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def synthetic_catalog(n: int = 100_000) -> Path:
    """`synthetic_store` with a model trained on it (MMoE, 2 epochs)."""
    data_dir = synthetic_store(n)
    store = Store(data_dir)
    if not store.models.count():
        train_and_save(store, TrainOptions(epochs=2, progress=False))
    return data_dir


def latency(requests: int) -> dict:
    data_dir = synthetic_catalog()
    api = Vidrec(data_dir)
    started = time.perf_counter()
    indexes = api.refresh_indexes()
    build = time.perf_counter() - started
    users = [f"u{i}" for i in range(200)] + ["someone-new"]
    rng = np.random.default_rng(1)
    for user in users[:5]:  # warm the caches (model, indexes, popularity)
        api.recommend(user, Context(hour=20, weekday=1, device="tv", region="us"), k=10)
    times = []
    for i in range(requests):
        user = users[int(rng.integers(0, len(users)))]
        context = Context(
            hour=int(rng.integers(0, 24)),
            weekday=int(rng.integers(0, 7)),
            device=["mobile", "tv", "desktop"][i % 3],
            region="us",
        )
        started = time.perf_counter()
        api.recommend(user, context, k=10)
        times.append(time.perf_counter() - started)
    ms = np.array(times) * 1000
    return {
        "videos": api.store.videos.count(),
        "requests": requests,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "mean_ms": round(float(ms.mean()), 1),
        "index_refresh_seconds": round(build, 1),
        "indexes": [{k: i[k] for k in ("name", "type", "size", "recall")} for i in indexes],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quality-only", action="store_true")
    parser.add_argument("--latency-only", action="store_true")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--variant", action="append", choices=list(VARIANTS), help="rows to run (default: all)")
    parser.add_argument(
        "--config", action="append", default=[], help="another row: NAME=JSON of RecommendConfig fields"
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--data-dir", type=Path, help="a demo data dir to judge (default: one built in bench/.cache)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    CACHE.mkdir(parents=True, exist_ok=True)
    for row in args.config:
        name, _, fields = row.partition("=")
        VARIANTS[name] = json.loads(fields)
        args.variant = (args.variant or []) + [name]
    results = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"}
    if not args.latency_only:
        results["quality_default_world"] = quality(
            args.data_dir or demo_catalog(), args.users, args.variant or list(VARIANTS)
        )
    if not args.quality_only:
        results["latency_100k"] = latency(args.requests)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
