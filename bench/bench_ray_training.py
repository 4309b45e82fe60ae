"""Training on Ray Train workers against local training, in one run (python bench/bench_ray_training.py
[--seeds 3] [--epochs 8] [--quick]): training examples/s and click AUC with 1 and 2 data-parallel workers
and locally, over several seeds (the seed spread says whether data parallelism changes the model).

The demo catalog of bench/bench_batch_recommend.py (120 videos, 300 users; built once under bench/.cache),
copied; the default model (mmoe, uncertainty), a fixed number of epochs at most (early stopping as always).
Ray runs on a local cluster with this machine's CPUs, started once (its start reported apart). Examples/s
counts the training steps only (with workers: the sum of their rates, which step together); wall seconds
are the whole training, Ray Train's start of its workers and the staging included, test metrics excluded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from bench_batch_recommend import catalog  # noqa: E402

from ingest.learning.features import bucket_count  # noqa: E402
from ingest.learning.training import TrainOptions, train_model  # noqa: E402
from ingest.store import Store  # noqa: E402
from models.multitask import MultiTaskNet, NetConfig  # noqa: E402

RUNS = {"local": ("local", None), "ray_1_worker": ("ray", 1), "ray_2_workers": ("ray", 2)}


def one(data_dir: Path, engine: str, workers: int | None, seed: int, epochs: int) -> dict:
    options = TrainOptions(seed=seed, epochs=epochs, progress=False, diagnostics=False, engine=engine, workers=workers)
    trained = train_model(Store(data_dir), options)
    fit = trained.fits["all"]
    return {
        "examples_per_second": round(fit.examples_per_second),
        "wall_seconds": round(trained.seconds, 1),
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "click_auc": round(trained.metrics["click"]["auc"], 4),
    }


def embedding_bytes_per_million() -> dict:
    """One hashed id table (user or video) at the default NetConfig, measured: bytes per million buckets, and
    per million ids (4 buckets an id, a power of two: features.bucket_count); with AdamW's two moments, and
    with the gradient a step holds beside them (dense: data-parallel training all-reduces all of it)."""
    buckets = bucket_count(1_000_000)
    net = MultiTaskNet(NetConfig(clip_dim=512, meta_dim=1, n_categories=10, n_devices=4, n_regions=4,
                                 user_buckets=buckets, video_buckets=buckets))  # fmt: skip
    table = net.user_id.weight
    optimizer = torch.optim.AdamW([table])
    table.sum().backward()
    optimizer.step()
    weights = table.numel() * table.element_size()
    moments = sum(v.numel() * v.element_size() for v in optimizer.state[table].values() if v.dim())
    assert table.grad is not None
    grad = table.grad.numel() * table.grad.element_size()
    per_million = 1e6 / table.shape[0]
    return {
        "d": table.shape[1],
        "buckets_per_million_ids": buckets,
        "per_million_buckets_mb": {
            "weights": round(weights * per_million / 1e6, 1),
            "with_adamw": round((weights + moments) * per_million / 1e6, 1),
            "with_adamw_and_gradient": round((weights + moments + grad) * per_million / 1e6, 1),
        },
        "per_million_ids_mb": {
            "weights": round(weights / 1e6, 1),
            "with_adamw": round((weights + moments) / 1e6, 1),
            "with_adamw_and_gradient": round((weights + moments + grad) / 1e6, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="the 48-video, 60-user catalog (a smoke run)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    source = catalog(48, 60) if args.quick else catalog(120, 300)
    store = Store(source, read_only=True)
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU, torch {torch.__version__}",
        "catalog": {"videos": store.videos.count(), "impressions": store.interactions.count()},
        "epochs": args.epochs,
        "seeds": args.seeds,
        "id_table_per_million_buckets": embedding_bytes_per_million(),
    }
    store.close()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        shutil.copytree(source, data_dir)
        started = time.perf_counter()
        ray.init(
            num_cpus=os.cpu_count(), include_dashboard=False, _temp_dir=str(Path(tmp) / "ray"), log_to_driver=False
        )
        results["ray_cluster_start_seconds"] = round(time.perf_counter() - started, 2)
        runs: dict[str, list[dict]] = {name: [] for name in RUNS}
        for seed in range(args.seeds):
            for name, (engine, workers) in RUNS.items():
                runs[name].append(one(data_dir, engine, workers, seed, args.epochs))
                print(name, seed, runs[name][-1], file=sys.stderr)
        ray.shutdown()
    for name, rows in runs.items():
        aucs = [r["click_auc"] for r in rows]
        results[name] = {
            "runs": rows,
            "examples_per_second_median": statistics.median(r["examples_per_second"] for r in rows),
            "wall_seconds_median": statistics.median(r["wall_seconds"] for r in rows),
            "click_auc_mean": round(statistics.mean(aucs), 4),
            "click_auc_std": round(statistics.stdev(aucs), 4) if len(aucs) > 1 else None,
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
