"""`recommend` at a million videos on one machine: time and peak memory of each phase, then latency quiet and
under concurrent requests (python bench/bench_recommend_scale.py [--videos N] [--requests N] [--threads N]).

The catalog is bench_recommend's synthetic one at N videos (default 1,000,000): clustered 128-d CLIP-like
embeddings written straight into the store a chunk at a time (no video files), 2,000 users and 60,000
impressions, an MMoE trained on them (2 epochs), built once under bench/.cache. Each phase runs in a process
of its own, so its peak RSS (`ru_maxrss`) is its own and not what an earlier phase left behind:

1. build: the synthetic store (reported as cached when it is already there);
2. train: `train_and_save`, as `vidrec train` (skipped when a model exists);
3. index: `Vidrec(data_dir).refresh_indexes()`, as `vidrec index`: the fused index and the model's retrieval
   index, built and written (loaded when current);
4. serve: the serving side, `Vidrec(data_dir, read_only=True)` (one thread per query), loading the model, both
   indexes, popularity and the catalog lists (each step timed); then `recommend` (k = 10) for a seeded mix of
   known users (80%) and never-seen ones (20%) in random contexts (hour, weekday, one of four devices), after 5
   warm-up calls: once one request at a time (quiet), once from --threads threads sharing the one API object.

Every phase process has a guard: past --max-rss-gb of RSS it ends itself (exit status 3), so that a runaway
phase cannot take the machine. Run it with `nice -n 5` beside other work.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_recommend import CACHE, synthetic_store  # noqa: E402

from index.api import Vidrec  # noqa: E402
from ingest.learning import TrainOptions, train_and_save  # noqa: E402
from ingest.store import Store  # noqa: E402
from models.context import Context  # noqa: E402

PHASES = ("build", "train", "index", "serve")
DEVICES = ("mobile", "tv", "desktop", "tablet")
USERS = 2000  # the synthetic log's users: u0 .. u1999


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # Linux: KiB


def gb(n: int) -> float:
    return round(n / 2**30, 2)


def guard(limit_gb: float) -> None:
    """End this process past `limit_gb` of RSS (checked every 50 ms), rather than let it take the machine."""

    def watch() -> None:
        while True:
            if rss_bytes() > limit_gb * 2**30:
                print(json.dumps({"error": f"RSS passed {limit_gb} GB: stopped"}), flush=True)
                os._exit(3)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()


def timed(steps: dict, name: str, call: Callable):
    started = time.perf_counter()
    out = call()
    steps[name] = {"seconds": round(time.perf_counter() - started, 2), "rss_gb_after": gb(rss_bytes())}
    return out


# ---- the phases, each in its own process ---------------------------------------------------------------
def build(n: int) -> dict:
    cached = (CACHE / f"synthetic-{n}" / "catalog.db").exists()
    data_dir = synthetic_store(n)
    return {"cached": cached and Store(data_dir).revision == n + 1}


def train(n: int) -> dict:
    store = Store(CACHE / f"synthetic-{n}")
    if store.models.count():
        return {"cached": True}
    result = train_and_save(store, TrainOptions(epochs=2, progress=False))
    return {"cached": False, "model_id": result["model_id"], "ranking": result["metrics"].get("ranking")}


def index(n: int) -> dict:
    described = Vidrec(CACHE / f"synthetic-{n}").refresh_indexes()
    keys = ("name", "type", "size", "dim", "params", "search", "recall", "build_seconds", "action")
    return {"indexes": [{k: i.get(k) for k in keys} for i in described]}


def request_plan(requests: int, seed: int) -> list[tuple[str, Context]]:
    """(user, context) per request: 80% users of the log, 20% users never seen, random contexts."""
    rng = np.random.default_rng(seed)
    plan = []
    for i in range(requests):
        new = rng.random() < 0.2
        user = f"new-{seed}-{i}" if new else f"u{int(rng.integers(0, USERS))}"
        hour, weekday, device = int(rng.integers(0, 24)), int(rng.integers(0, 7)), DEVICES[int(rng.integers(0, 4))]
        plan.append((user, Context(hour=hour, weekday=weekday, device=device, region="us")))
    return plan


def latencies(ms: list[float]) -> dict:
    a = np.array(ms)
    return {
        "requests": len(a),
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p99_ms": round(float(np.percentile(a, 99)), 1),
        "mean_ms": round(float(a.mean()), 1),
    }


def run_requests(api: Vidrec, plan: list[tuple[str, Context]], threads: int) -> dict:
    """Each request's latency (all, known users, new users) and the throughput, `threads` at a time."""

    def one(request: tuple[str, Context]) -> tuple[bool, float]:
        user, context = request
        started = time.perf_counter()
        api.recommend(user, context, k=10)
        return user.startswith("new-"), (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        done = list(pool.map(one, plan))
    wall = time.perf_counter() - started
    return {
        "threads": threads,
        "all": latencies([t for _, t in done]),
        "known_users": latencies([t for new, t in done if not new]),
        "new_users": latencies([t for new, t in done if new]),
        "requests_per_second": round(len(plan) / wall, 1),
    }


def serve(n: int, requests: int, threads: int) -> dict:
    steps: dict = {}
    api = timed(steps, "open (read-only)", lambda: Vidrec(CACHE / f"synthetic-{n}", read_only=True))
    recommender = api.recommender
    timed(steps, "model", lambda: recommender.model)
    timed(steps, "model index", recommender.model_index)
    timed(steps, "fused index", api.indexes["fused"].ensure)
    timed(steps, "popularity", recommender.popularity)
    timed(steps, "catalog lists", recommender._catalog_lists)
    context = Context(hour=20, weekday=1, device="tv", region="us")
    timed(steps, "first request", lambda: api.recommend("u1", context, k=10))
    for user, context in request_plan(5, seed=99):  # warm-up
        api.recommend(user, context, k=10)
    rss_loaded = gb(rss_bytes())
    quiet = run_requests(api, request_plan(requests, seed=1), 1)
    concurrent = run_requests(api, request_plan(requests, seed=2), threads)
    return {
        "load": steps,
        "rss_gb_loaded": rss_loaded,
        "quiet": quiet,
        "concurrent": concurrent,
        "torch_threads": torch.get_num_threads(),
    }


def run_phase(args: argparse.Namespace) -> None:
    """One phase in this process: its result, seconds and peak RSS as one JSON line."""
    guard(args.max_rss_gb)
    logging.disable(logging.WARNING)
    CACHE.mkdir(parents=True, exist_ok=True)
    rss_start = gb(rss_bytes())
    started = time.perf_counter()
    if args.phase == "build":
        out = build(args.videos)
    elif args.phase == "train":
        out = train(args.videos)
    elif args.phase == "index":
        out = index(args.videos)
    else:
        out = serve(args.videos, args.requests, args.threads)
    seconds = round(time.perf_counter() - started, 1)
    one, five, _ = os.getloadavg()  # the machine may be shared: how busy it was, for every figure
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rss_gb_start": rss_start,
                "peak_rss_gb": peak_rss_gb(),
                "load_average_at_end": {"1 min": round(one, 1), "5 min": round(five, 1)},
                **out,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--threads", type=int, default=4, help="concurrent requests in the second run")
    parser.add_argument("--max-rss-gb", type=float, default=11.0, help="a phase past this much RSS is stopped")
    parser.add_argument("--phase", choices=PHASES, help="run only this phase, in this process")
    args = parser.parse_args()
    if args.phase:
        run_phase(args)
        return
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU, torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.1f} at the start",
        "videos": args.videos,
    }
    for phase in PHASES:
        command = [sys.executable, __file__, "--phase", phase, "--videos", str(args.videos)]
        command += [
            "--requests",
            str(args.requests),
            "--threads",
            str(args.threads),
            "--max-rss-gb",
            str(args.max_rss_gb),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        lines = done.stdout.strip().splitlines()
        results[phase] = json.loads(lines[-1]) if lines else {"error": done.stderr.strip()[-2000:]}
        print(phase, json.dumps(results[phase]), file=sys.stderr, flush=True)
        if done.returncode:
            results[phase]["exit_status"] = done.returncode
            break
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
