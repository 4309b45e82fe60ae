"""Exploration, measured on a simulated day (python bench/bench_exploration.py [--users N] [--new N]).

The default demo world with `--new` videos made new: their impressions are taken out of the log and the model
is trained again without them (built once under bench/.cache). Then a day is simulated for each policy, each on
its own copy: `--users` users in a fixed random order each ask for 10 videos at a random hour on their usual
device; every listed video is an impression, clicked with the world's true probability, and written to the store
every 20 users (so the next lists see the day's impressions so far). Figures per policy:

- the share of new videos with at least 1 (and 3) impressions by the end of the day;
- expected clicks (sums of true click probabilities: no noise from the draws) per list and per exploratory slot;
- how well impressions of new videos went to good ones: the mean true click probability of the new videos,
  weighted by the impressions each got, against their plain mean.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.demo import load_truth  # noqa: E402
from bench.bench_recommend import CACHE, demo_catalog  # noqa: E402
from index.api import Vidrec  # noqa: E402
from index.recommend import RecommendConfig  # noqa: E402
from ingest.learning import TrainOptions, train_and_save  # noqa: E402
from ingest.store import UI_SOURCE, Interaction, Store  # noqa: E402
from models.context import Context  # noqa: E402

POLICIES = {
    "thompson sampling slot": {"exploration": "thompson"},
    "random slot": {"exploration": "random"},
    "no exploratory slot": {"explore_share": 0.0},
}
FLUSH_EVERY = 20  # users between writes of the day's impressions


def world_with_new_videos(source: Path, new: int) -> tuple[Path, list[str]]:
    """A copy of `source` in which `new` videos have no impressions, with a model trained without them."""
    data_dir = CACHE / f"explore-{new}"
    marker = data_dir / "new-videos.json"
    if marker.exists():
        return data_dir, json.loads(marker.read_text())
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(source, data_dir, ignore=shutil.ignore_patterns("indexes", "models", "*.lock"))
    store = Store(data_dir)
    videos = sorted(store.interactions.per_video())
    chosen = sorted(np.random.default_rng(0).choice(videos, new, replace=False).tolist())
    with store.transaction():  # a benchmark's setup: their impressions never happened
        store.db.execute("DELETE FROM models")
        store.db.executemany("DELETE FROM interactions WHERE video_id = ?", [(v,) for v in chosen])
        store.db.executemany("DELETE FROM video_counts WHERE video_id = ?", [(v,) for v in chosen])
    train_and_save(store, TrainOptions(progress=False))
    store.close()
    marker.write_text(json.dumps(chosen))
    return data_dir, chosen


def simulate(data_dir: Path, policy: dict, new: list[str], users: int) -> dict:
    api = Vidrec(data_dir, recommend_config=RecommendConfig(**policy))
    truth = load_truth(api.store.paths.demo_world)
    rng = np.random.default_rng(1)
    order = [truth.user_ids[i] for i in rng.permutation(len(truth.user_ids))[:users]]
    day = (api.store.interactions.latest_ts() or 0) // 86400 * 86400 + 86400
    weekday = datetime.fromtimestamp(day, timezone.utc).weekday()
    fresh = set(new)
    shown: dict[str, int] = {v: 0 for v in new}
    expected, explored, lists = 0.0, [], 0
    pending: list[Interaction] = []
    started = time.perf_counter()
    for n, user in enumerate(order, 1):
        hour = int(rng.integers(7, 24))
        device, region = truth.user_device[user], truth.user_region[user]
        items = api.recommend(user, Context(hour=hour, weekday=weekday, device=device, region=region), k=10)["items"]
        ids = [i["video_id"] for i in items]
        p = truth.click_probability([user] * len(ids), ids, hour, weekday, device, region)
        clicks = rng.random(len(ids)) < p
        ts = day + hour * 3600 + n
        for item, prob, clicked in zip(items, p, clicks):
            video_id = item["video_id"]
            if video_id in fresh:
                shown[video_id] += 1
            if item["reasons"] and item["reasons"][0].startswith("exploring"):
                explored.append(float(prob))
            pending.append(Interaction(user, video_id, ts, 0, hour, weekday, device, region, int(clicked), 0, None))
        expected += float(p.sum())
        lists += 1
        if n % FLUSH_EVERY == 0 or n == len(order):
            api.store.interactions.add(pending, UI_SOURCE)
            pending = []
    quality = {v: _mean_click(truth, v) for v in new}
    weights = np.array([shown[v] for v in new], dtype=np.float64)
    values = np.array([quality[v] for v in new])
    return {
        "lists": lists,
        "new_videos_shown_share": round(float(np.mean(weights >= 1)), 3),
        "new_videos_shown_3_share": round(float(np.mean(weights >= 3)), 3),
        "impressions_of_new_videos": int(weights.sum()),
        "expected_clicks_per_list": round(expected / max(lists, 1), 4),
        "exploratory_impressions": len(explored),
        "expected_clicks_per_exploratory_impression": round(float(np.mean(explored)), 4) if explored else None,
        "new_videos_mean_click_weighted_by_impressions": round(float((weights * values).sum() / weights.sum()), 4)
        if weights.sum()
        else None,
        "new_videos_mean_click": round(float(values.mean()), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _mean_click(truth, video_id: str) -> float:
    """The video's true click probability averaged over every user, at 8 pm on each user's device."""
    users = truth.user_ids
    return float(
        np.mean(
            truth.click_probability(
                users,
                [video_id] * len(users),
                20,
                2,
                [truth.user_device[u] for u in users],
                [truth.user_region[u] for u in users],
            )
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--new", type=int, default=40)
    parser.add_argument("--data-dir", type=Path, help="a demo data dir to start from (default: bench/.cache's)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    CACHE.mkdir(parents=True, exist_ok=True)
    start, new = world_with_new_videos(args.data_dir or demo_catalog(), args.new)
    results: dict = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "new_videos": len(new),
        "users": args.users,
    }
    for name, policy in POLICIES.items():
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "data"
            shutil.copytree(start, copy)
            results[name] = simulate(copy, policy, new, args.users)
        print(name, results[name], file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
