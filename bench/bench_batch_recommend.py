"""Every user's list in one context (`vidrec recommend --all-users`), local against Ray with 1 and 2 model
replicas, in one run (python bench/bench_batch_recommend.py [--quick]).

A demo catalog (120 videos, 300 users: ingested, tuned, trained, indexed; built once under bench/.cache),
k = 10, Friday 20h, each user's usual device and region. Ray runs on a local 2-CPU cluster started once
(its start reported apart); each Ray figure includes starting the replicas (each loads the model and its
indexes). The local run is repeated at the end (the machine's drift). Every run's file must be the same.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.demo.command import run_demo  # noqa: E402
from index.batch_recommend import BatchContext, recommend_all_users  # noqa: E402
from ingest.store import Store  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
CONTEXT = BatchContext(hour=20, weekday=4)


def catalog(videos: int, users: int) -> Path:
    data_dir = CACHE / f"batch-{videos}v-{users}u"
    if not (data_dir / "catalog.db").is_file() or not Store(data_dir, read_only=True).models.count():
        run_demo(Store(data_dir), videos=videos, users=users, seed=0, progress=False)
    return data_dir


def timed(data_dir: Path, out: Path, engine: str, workers: int | None = None) -> dict:
    report = recommend_all_users(data_dir, CONTEXT, out, 10, engine=engine, workers=workers, progress=False)
    return {
        **{k: report[k] for k in ("users", "rows", "seconds")},
        "users_per_second": round(report["users"] / report["seconds"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a 48-video, 60-user catalog (a smoke run)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    data_dir = catalog(48, 60) if args.quick else catalog(120, 300)
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU, torch {torch.__version__}"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        results["local"] = timed(data_dir, out / "local.parquet", "local")
        import ray

        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="ray-") as temp:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _temp_dir=temp, log_to_driver=False)
            results["ray_cluster_start_seconds"] = round(time.perf_counter() - started, 2)
            results["ray_1_replica"] = timed(data_dir, out / "ray1.parquet", "ray", 1)
            results["ray_2_replicas"] = timed(data_dir, out / "ray2.parquet", "ray", 2)
            ray.shutdown()
        results["local_again"] = timed(data_dir, out / "local2.parquet", "local")
        local = pq.read_table(out / "local.parquet")
        results["same_file"] = all(pq.read_table(out / f).equals(local) for f in ("ray1.parquet", "ray2.parquet"))
    local_seconds = (results["local"]["seconds"] + results["local_again"]["seconds"]) / 2
    for key in ("ray_1_replica", "ray_2_replicas"):
        results[key]["seconds_vs_local"] = round(results[key]["seconds"] / local_seconds, 3)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
