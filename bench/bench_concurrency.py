"""Serving under load (python bench/bench_concurrency.py [--seconds 30] [--clients 8]).

Eight client threads share one read-only `Vidrec` (as the web UI's sessions do) and call recommend, search
and similar in turn, as fast as they can:
1. alone, for --seconds;
2. while two jobs run beside them in their own processes on the same catalog: an ingest of new videos
   (which bumps the revision batch by batch and rewrites the indexes) and a training (which saves a new
   model: the readers switch to it). The phase lasts until both jobs are done (at least --seconds).

It prints p50/p99 per call and phase, the ratio of p99 beside the jobs to p99 alone (measured in the
same run), and every error. The catalog is a demo world (built once under bench/.cache/, copied per run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.demo import generate_world  # noqa: E402
from app.demo.command import run_demo  # noqa: E402
from app.demo.world import DEVICES  # noqa: E402
from index.api import Vidrec  # noqa: E402
from ingest.store import Store  # noqa: E402
from models.context import Context  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
QUERIES = ("cooking pasta", "a cat playing", "football goal", "mountain hiking", "city at night", "piano music")
CALLS = ("recommend", "search", "similar")


def catalog(videos: int, users: int) -> Path:
    """A demo catalog (ingested, tuned, trained, indexed), built once and kept."""
    data_dir = CACHE / f"concurrency-{videos}v-{users}u"
    if not (data_dir / "catalog.db").is_file() or not Store(data_dir, read_only=True).models.count():
        run_demo(Store(data_dir), videos=videos, users=users, seed=0, progress=False)
    return data_dir


def new_videos(count: int) -> Path:
    """Another world's videos (other bytes, hash ids): what the ingest beside the clients adds."""
    world_dir = CACHE / f"concurrency-new-{count}v"
    if not (world_dir / "videos").is_dir():
        generate_world(world_dir, videos=count, users=5, impressions=100, seed=1, progress=False)
    return world_dir / "videos"


def client(api: Vidrec, users: list[str], videos: list[str], seed: int, stop: threading.Event, out: dict) -> None:
    rng = random.Random(seed)
    turn = seed
    while not stop.is_set():
        call = CALLS[turn % len(CALLS)]
        turn += 1
        started = time.perf_counter()
        try:
            if call == "recommend":
                user = rng.choice(users) if rng.random() < 0.8 else f"visitor-{rng.randrange(10**6)}"
                context = Context(rng.randrange(24), rng.randrange(7), rng.choice(DEVICES), None)
                api.recommend(user, context, k=10)
            elif call == "search":
                api.search(rng.choice(QUERIES), k=10)
            else:
                api.similar(rng.choice(videos), k=10)
            out[call].append(time.perf_counter() - started)
        except Exception as exc:  # every error is counted and shown: the goal is none
            out["errors"].append(f"{call}: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}")


def phase(api: Vidrec, clients: int, seconds: float, until=None) -> tuple[dict, float]:
    users = api.store.interactions.users()
    videos = api.store.videos.video_ids()
    results: dict = defaultdict(list)
    stop = threading.Event()
    threads = [
        threading.Thread(target=client, args=(api, users, videos, i, stop, results), daemon=True)
        for i in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    while until is not None and not until():
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(60)
    return results, time.perf_counter() - started


def summary(results: dict, seconds: float) -> dict:
    out = {}
    for call in CALLS:
        ms = np.array(results.get(call, [])) * 1000
        out[call] = {
            "n": int(len(ms)),
            "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
        }
    out["calls_per_s"] = round(sum(len(results.get(c, [])) for c in CALLS) / seconds, 1)
    out["errors"] = len(results.get("errors", []))
    out["error_kinds"] = dict(Counter(e.split(":")[0] + ": " + e.split(":")[1] for e in results.get("errors", [])))
    return out


def job(data_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), *args, "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=120, help="Videos in the demo catalog.")
    parser.add_argument("--users", type=int, default=80)
    parser.add_argument("--new-videos", type=int, default=60, help="Videos the ingest beside the clients adds.")
    parser.add_argument("--train-epochs", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="Length of the quiet phase (and at least the other)."
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    source, folder = catalog(args.videos, args.users), new_videos(args.new_videos)
    with tempfile.TemporaryDirectory(prefix="vidrec-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        shutil.copytree(source, data_dir)
        api = Vidrec(data_dir, read_only=True)
        api.recommend(api.store.interactions.users()[0], k=10)  # warm: model and indexes loaded
        api.search(QUERIES[0])

        alone, alone_s = phase(api, args.clients, args.seconds)
        models_before = api.store.models.count()
        jobs = {
            "ingest": job(data_dir, "ingest", str(folder)),
            "train": job(data_dir, "train", "--epochs", str(args.train_epochs)),
        }
        started = time.perf_counter()
        finished: dict = {}

        def jobs_done() -> bool:
            for name, process in jobs.items():
                if name not in finished and process.poll() is not None:
                    finished[name] = round(time.perf_counter() - started, 1)
            return len(finished) == len(jobs)

        beside, beside_s = phase(api, args.clients, args.seconds, until=jobs_done)
        reports = {name: json.loads(process.stdout.read() or "{}") for name, process in jobs.items()}
        status = api.status()

    a, b = summary(alone, alone_s), summary(beside, beside_s)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"Python {platform.python_version()}",
        "catalog": f"demo world, {args.videos} videos, {args.users} users; +{args.new_videos} ingested beside",
        "clients": args.clients,
        "alone": a,
        "beside_jobs": b,
        "p99_ratio": {c: round(b[c]["p99_ms"] / a[c]["p99_ms"], 2) for c in CALLS if a[c]["p99_ms"] and b[c]["p99_ms"]},
        "jobs": {
            "seconds": finished,
            "ingest": {k: reports["ingest"].get(k) for k in ("ingested", "duplicates", "error")},
            "train": {k: reports["train"].get(k) for k in ("model_id", "error")},
            "models_before_after": [models_before, len(status["models"])],
            "videos_after": status["videos"],
        },
        "first_errors": sorted(set(beside.get("errors", []) + alone.get("errors", [])))[:5],
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{result['machine']}; {result['catalog']}; {args.clients} client threads on one read-only Vidrec")
    print(f"{'call':10} {'alone p50/p99 ms':>20} {'beside jobs p50/p99 ms':>24} {'p99 ratio':>10}")
    for call in CALLS:
        print(
            f"{call:10} {a[call]['p50_ms']:>9} / {a[call]['p99_ms']:<8} "
            f"{b[call]['p50_ms']:>11} / {b[call]['p99_ms']:<10} {result['p99_ratio'].get(call, '-'):>9}"
        )
    print(
        f"calls/s: {a['calls_per_s']} alone, {b['calls_per_s']} beside; "
        f"errors: {a['errors']} alone, {b['errors']} beside"
    )
    print(f"jobs: {json.dumps(result['jobs'])}")
    for error in result["first_errors"]:
        print(f"  error: {error}")


if __name__ == "__main__":
    main()
