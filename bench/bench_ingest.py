"""Ingest throughput and cost, measured in one run (python bench/bench_ingest.py [--quick]).

1. Pipeline frames/s (decode + sample + preprocess + CLIP image and text towers + store) against the
   bare `encode_image` frames/s at the same batch size, with ViT-B-32 (random weights), on the demo
   world's 128x128 clips and on 720p clips.
2. Seconds per video for a 10 s and a 10 min 720p video, sampling by seeking, and against a naive
   sampler that decodes every frame in order.
3. Peak memory of an ingest of the default demo world with the tiny CLIP (a subprocess).
Generated inputs are cached under bench/.cache.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import open_clip
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.demo import generate_world, write_video  # noqa: E402
from ingest.pipeline import IngestOptions, ingest  # noqa: E402
from ingest.store import Store  # noqa: E402
from ingest.video import sample_video  # noqa: E402
from models.clip import load_clip  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
BATCH = 64


def random_vit_b32() -> str:
    """ViT-B-32 with random weights, as a local checkpoint spec (speed does not depend on the weights)."""
    path = CACHE / "vit-b-32-random.safetensors"
    if not path.exists():
        torch.manual_seed(0)
        model = open_clip.create_model("ViT-B-32")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return f"ViT-B-32:{path}"


def bare_encode_fps(clip, batches: int) -> float:
    pixels = torch.randn(BATCH, 3, clip.image_size, clip.image_size)
    clip.encode_images(pixels)  # warm-up
    started = time.perf_counter()
    for _ in range(batches):
        clip.encode_images(pixels)
    return BATCH * batches / (time.perf_counter() - started)


def pipeline_fps(spec: str, manifest: Path | None, paths: list[Path], frames: int = 8) -> tuple[float, int]:
    load_started = time.perf_counter()
    load_clip(spec)
    load_seconds = time.perf_counter() - load_started
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        report = ingest(
            store, paths, manifest, IngestOptions(clip=spec, frames=frames, batch_size=BATCH, progress=False)
        )
        assert not report.failed, report.failed[:3]
        n_frames = sum(len(store.videos.kept_frames(v.id)) for v in store.videos.all())
    return n_frames / max(report.seconds - load_seconds, 1e-9), report.ingested


def synthetic_720p(path: Path, seconds: int, fps: int = 30, seed: int = 0) -> Path:
    """A moving pattern at 1280x720, encoded fast (x264 ultrafast, its default GOP of 250 frames)."""
    if path.exists():
        return path
    y, x = np.mgrid[0:720, 0 : 1280 + 256]
    base = np.stack(
        [(np.sin(x / (40 + seed)) * 100 + 128), (np.cos(y / 30) * 100 + 128), (x + y + 17 * seed) % 256], -1
    ).astype(np.uint8)

    def frames():
        for i in range(seconds * fps):
            yield base[:, i % 256 : i % 256 + 1280]

    tmp = path.with_suffix(".tmp.mp4")
    write_video(tmp, frames(), fps, options={"preset": "ultrafast", "g": "250", "crf": "30"})
    tmp.rename(path)
    return path


def naive_sample(path: Path, k: int = 8):
    """Decode every frame in order and keep k evenly spaced ones."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        wanted = {int((i + 0.5) * stream.frames / k) for i in range(k)}
        return [f.to_image() for n, f in enumerate(container.decode(stream)) if n in wanted]


def per_video_seconds(clip, path: Path, repeats: int = 3) -> tuple[float, float]:
    """(seek-based sample + encode, naive decode-all + encode), best of `repeats`."""

    def timed(sampler):
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            images = sampler(path)
            clip.encode_images(torch.stack([clip.preprocess(img) for img in images]))
            best = min(best, time.perf_counter() - started)
        return best

    return timed(lambda p: [img for _, img in sample_video(p).frames]), timed(naive_sample)


def peak_memory_of_default_world_ingest() -> dict:
    world = CACHE / "world-default"
    if not (world / "manifest.csv").exists():
        generate_world(world, progress=False)
    code = (
        "import tempfile\n"
        "from ingest.store import Store\nfrom ingest.pipeline import IngestOptions, ingest\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        f"    r = ingest(Store(d), manifest='{world / 'manifest.csv'}',\n"
        "               options=IngestOptions(clip='tiny', progress=False))\n"
        "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "    print(r.ingested, r.seconds, hwm)\n"
    )  # VmHWM: this process's peak, unlike ru_maxrss after a fork
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    ingested, seconds, max_rss_kb = out.split()
    return {"videos": int(ingested), "seconds": float(seconds), "peak_rss_mb": round(int(max_rss_kb) / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer videos (a smoke run)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # open_clip's "no pretrained weights" is expected here
    CACHE.mkdir(parents=True, exist_ok=True)
    spec = random_vit_b32()
    clip = load_clip(spec)
    results: dict = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}, torch {torch.__version__}"
    }

    world = CACHE / ("world-small" if args.quick else "world-96")
    if not (world / "manifest.csv").exists():
        generate_world(world, videos=24 if args.quick else 96, users=10, impressions=100, progress=False)
    bare = bare_encode_fps(clip, batches=3 if args.quick else 10)
    fps_demo, n_demo = pipeline_fps(spec, world / "manifest.csv", [])
    results["demo_clips"] = {
        "videos": n_demo,
        "bare_encode_fps": round(bare, 1),
        "pipeline_fps": round(fps_demo, 1),
        "ratio": round(fps_demo / bare, 3),
    }

    clips_720 = [synthetic_720p(CACHE / f"720p-10s-{i}.mp4", 10, seed=i) for i in range(3 if args.quick else 8)]
    bare = bare_encode_fps(clip, batches=3 if args.quick else 10)
    fps_720, n_720 = pipeline_fps(spec, None, clips_720)
    results["720p_clips"] = {
        "videos": n_720,
        "bare_encode_fps": round(bare, 1),
        "pipeline_fps": round(fps_720, 1),
        "ratio": round(fps_720 / bare, 3),
    }

    short = synthetic_720p(CACHE / "720p-10s-0.mp4", 10)
    long = synthetic_720p(CACHE / "720p-10min.mp4", 600)
    seek_short, naive_short = per_video_seconds(clip, short)
    seek_long, naive_long = per_video_seconds(clip, long, repeats=1 if args.quick else 2)
    results["per_video_720p"] = {
        "seek_10s": round(seek_short, 3),
        "seek_10min": round(seek_long, 3),
        "long_over_short": round(seek_long / seek_short, 2),
        "naive_10s": round(naive_short, 3),
        "naive_10min": round(naive_long, 3),
        "naive_over_seek_10s": round(naive_short / seek_short, 2),
        "naive_over_seek_10min": round(naive_long / seek_long, 2),
    }
    results["default_world_ingest_tiny_clip"] = peak_memory_of_default_world_ingest()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
