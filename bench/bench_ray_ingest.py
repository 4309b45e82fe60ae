"""Ingest on Ray against the local engine, in one run (python bench/bench_ray_ingest.py [--quick]).

The same videos (the demo world's clips, 8 frames each) ingested with ViT-B-32 (random weights: speed does
not depend on them) four ways, each into a new data dir: local (2 decoding threads), Ray with 1 and with 2
CLIP actors on a local 2-CPU cluster, and local again (the machine's drift). Figures are frames/s over the
whole job (prepare, embed, stage, merge); Ray's include starting its actors and loading CLIP in each. A
one-video ingest on each engine measures that fixed cost, and the marginal overhead compares the cost of
the videos past the first (what a large ingest pays). The cluster's own start is reported apart: a real
cluster is started once, not per job. Also: the bare encoder's frames/s at the same batch size, and the CPU seconds a
video's prepare step costs, on the demo's clips and on 720p clips (for the capacity model in the README).
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

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import CACHE, bare_encode_fps, random_vit_b32, synthetic_720p  # noqa: E402

from app.demo import generate_world  # noqa: E402
from ingest.pipeline import IngestOptions, ingest  # noqa: E402
from ingest.prepare import prepare_file  # noqa: E402
from ingest.ray_ingest import RayOptions  # noqa: E402
from ingest.sources import collect  # noqa: E402
from ingest.store import Store  # noqa: E402
from models.clip import load_clip  # noqa: E402

FRAMES = 8


def timed_ingest(spec: str, manifest: Path, engine: str, workers: int | None = None, limit: int | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        if limit is not None:  # the first `limit` rows of the manifest, beside it (its paths are relative)
            lines = manifest.read_text(encoding="utf-8").splitlines()[: limit + 1]
            manifest = manifest.with_name(f"first-{limit}.csv")
            manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
        options = IngestOptions(
            clip=spec, frames=FRAMES, progress=False, engine=engine, ray=RayOptions(workers=workers)
        )
        started = time.perf_counter()
        report = ingest(Store(Path(tmp) / "data"), manifest=manifest, options=options)
        seconds = time.perf_counter() - started
    assert not report.failed, report.failed[:3]
    out = {"videos": report.ingested, "seconds": round(seconds, 2), "fps": round(report.ingested * FRAMES / seconds, 1)}
    if report.shards:  # the one writer's merge, apart: the part a cluster cannot spread
        merge = report.shards["merge_seconds"]
        out.update(stage_seconds=report.shards["stage_seconds"], merge_seconds=merge)
        out["merge_videos_per_second"] = round(report.ingested / max(merge, 1e-9))
    return out


def prepare_cpu_seconds(manifest: Path | None, n: int, paths: list[Path] | None = None) -> float:
    """CPU seconds of the prepare step (hash, probe, sample, JPEGs) per video, in this process."""
    entries = collect(paths or [], manifest).entries[:n]
    started = time.process_time()
    for entry in entries:
        prepare_file(entry, FRAMES)
    return (time.process_time() - started) / len(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="24 videos instead of 96 (a smoke run)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    CACHE.mkdir(parents=True, exist_ok=True)
    spec = random_vit_b32()
    world = CACHE / "world-96"
    if not (world / "manifest.csv").exists():
        generate_world(world, videos=96, users=10, impressions=100, progress=False)
    manifest = world / "manifest.csv"
    limit = 24 if args.quick else None
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU, torch {torch.__version__}",
        "bare_encode_fps": round(bare_encode_fps(load_clip(spec), batches=3 if args.quick else 8), 1),
        "prepare_cpu_seconds_per_video": round(prepare_cpu_seconds(manifest, 16), 4),
    }
    clips_720 = [synthetic_720p(CACHE / f"720p-10s-{i}.mp4", 10, seed=i) for i in range(3)]
    results["prepare_cpu_seconds_per_720p_10s_video"] = round(prepare_cpu_seconds(None, 3, clips_720), 4)
    results["local_one_video"] = timed_ingest(spec, manifest, "local", limit=1)
    results["local"] = timed_ingest(spec, manifest, "local", limit=limit)

    import ray

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ray-") as temp:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _temp_dir=temp, log_to_driver=False)
        results["ray_cluster_start_seconds"] = round(time.perf_counter() - started, 2)
        results["ray_one_video"] = timed_ingest(spec, manifest, "ray", 1, limit=1)
        results["ray_1_worker"] = timed_ingest(spec, manifest, "ray", 1, limit=limit)
        results["ray_2_workers"] = timed_ingest(spec, manifest, "ray", 2, limit=limit)
        ray.shutdown()
    results["local_again"] = timed_ingest(spec, manifest, "local", limit=limit)
    local_seconds = (results["local"]["seconds"] + results["local_again"]["seconds"]) / 2
    local_one = results["local_one_video"]["seconds"]
    results["ray_fixed_cost_seconds"] = round(results["ray_one_video"]["seconds"] - local_one, 2)
    for key in ("ray_1_worker", "ray_2_workers"):
        run = results[key]
        run["overhead_vs_local"] = round(run["seconds"] / local_seconds - 1, 3)
        # the cost of each video past the first: what a large ingest pays, the fixed start-up aside
        marginal = (run["seconds"] - results["ray_one_video"]["seconds"]) / (local_seconds - local_one)
        run["marginal_overhead_vs_local"] = round(marginal - 1, 3)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
