"""tune-clip on the default demo world: tuning pairs/s on this machine, held-out recall before and after,
and the search quality it buys over the whole catalog (python bench/bench_tune.py [--seeds 0 1 2]).

Search quality is judged against the demo world's truth (categories of every video, labelled or not):
precision@10 of descriptive category queries in English and Chinese, precision@10 by category of
similar videos, and how untitled videos ("clip 123", no description) rank for their category.
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

from app.demo import generate_world, load_truth  # noqa: E402
from index.api import Vidrec  # noqa: E402
from ingest.interactions import import_interactions  # noqa: E402
from ingest.pipeline import IngestOptions, ingest  # noqa: E402
from ingest.store import Store  # noqa: E402
from ingest.tune import TuneOptions, tune_catalog_clip  # noqa: E402

CACHE = ROOT / "bench" / ".cache"


def untuned_catalog() -> Path:
    """The default demo world ingested with the untrained tiny CLIP (cached)."""
    catalog = CACHE / "catalog-default-untuned"
    if not (catalog / "catalog.db").exists():
        world = catalog / "demo-world"
        generate_world(world, progress=False)
        store = Store(catalog)
        ingest(store, manifest=world / "manifest.csv", options=IngestOptions(clip="tiny", progress=False))
        import_interactions(store, world / "interactions.csv")
        store.close()
    return catalog


def search_quality(data_dir: Path) -> dict:
    truth = load_truth(Store(data_dir, create=False).paths.demo_world)
    api = Vidrec(data_dir)
    api.refresh_indexes()
    out = {}
    for lang in ("en", "zh"):
        precision = [
            np.mean([truth.video_category[i["video_id"]] == category for i in api.search(query, 10)])
            for category, queries in truth.queries[lang].items()
            for query in queries
        ]
        out[f"search_p10_{lang}"] = round(float(np.mean(precision)), 4)
    similar = [
        np.mean([truth.video_category[i["video_id"]] == category for i in api.similar(video_id, 10)])
        for video_id, category in truth.video_category.items()
    ]
    out["similar_p10"] = round(float(np.mean(similar)), 4)
    store = Store(data_dir, create=False)
    untitled = [r.video_id for r in store.videos.all() if not r.description and not r.tags]
    ranks = []
    for video_id in untitled:
        category = truth.video_category[video_id]
        for query in truth.queries["en"][category]:
            found = [i["video_id"] for i in api.search(query, 400)]
            ranks.append(found.index(video_id))
    out["untitled_videos"] = len(untitled)
    out["untitled_found_in_top50"] = round(float(np.mean(np.array(ranks) < 50)), 4) if ranks else None
    out["untitled_median_rank"] = float(np.median(ranks)) if ranks else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=TuneOptions.epochs)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    CACHE.mkdir(parents=True, exist_ok=True)
    source = untuned_catalog()
    results = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "runs": [],
    }
    for seed in args.seeds:
        work = CACHE / f"catalog-default-tuned-{seed}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(source, work)
        started = time.perf_counter()
        report = tune_catalog_clip(Store(work), TuneOptions(epochs=args.epochs, seed=seed, progress=False))
        seconds = time.perf_counter() - started
        history = report["history"]
        pairs = sum(h["pairs"] for h in history)
        run = {
            "seed": seed,
            "seconds_total": round(seconds, 1),
            "pairs": pairs,
            "pairs_per_second": round(pairs / sum(h["seconds"] for h in history), 1),
            "before": report["before"],
            "after": report["after"],
            "replaced": report["replaced"],
        }
        run.update(search_quality(work))
        results["runs"].append(run)
        print(json.dumps(run), file=sys.stderr)
    if len(results["runs"]) > 1:
        keys = [k for k, v in results["runs"][0].items() if isinstance(v, float) and k != "seconds_total"]
        results["mean"] = {k: round(float(np.mean([r[k] for r in results["runs"]])), 4) for k in keys}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
