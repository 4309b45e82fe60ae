"""Importing a large interaction log, and `vidrec status` on it (python bench/bench_interactions.py [--sizes ...]).

For each size, a generated CSV log (5,000 users x the catalog's videos, one impression a second, one row in
10,000 malformed) is imported with `vidrec import-interactions` into a fresh copy of a small catalog (24 demo
videos, ingested with the tiny CLIP, built once under bench/.cache/), in a fresh process: its seconds and peak
RSS. The import is then run again on the same catalog (every row a duplicate), and once more into a fresh copy
by a process that imports only the store (without the command line's ~1 GB of torch, open_clip and faiss, so
what the import itself holds shows). Last, `vidrec status` (and `Store.status()` alone) on the empty catalog
and on the largest one, and the impressions and clicks per video that exploration reads (median of five). Peak
RSS is each process's own ru_maxrss, as /usr/bin/time -v reports it."""

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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.demo import generate_world  # noqa: E402
from ingest.pipeline import IngestOptions, ingest  # noqa: E402
from ingest.store import Store  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
DEVICES = ("tv", "mobile", "desktop", "tablet")
VIDREC = "from app.cli import main; main()"
# The store alone, without the command line's imports (torch, open_clip, faiss: about 1 GB): what the work costs.
STATUS_ONLY = "import sys; from ingest.store import Store; Store(sys.argv[1], read_only=True).status()"
IMPORT_ONLY = (
    "import sys; from ingest.store import Store; from ingest.interactions import import_interactions; "
    "import_interactions(Store(sys.argv[1]), sys.argv[2])"
)
# A small launcher runs each measured process and reports its ru_maxrss (what /usr/bin/time -v shows): measured
# from here, a forked child's ru_maxrss would start from this process's RSS (torch imported) and keep it across exec.
LAUNCH = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


def catalog() -> Path:
    """A small catalog without interactions: 24 demo videos, built once."""
    data_dir = CACHE / "interactions-catalog"
    if not (data_dir / "catalog.db").is_file():
        world = generate_world(CACHE / "interactions-world", videos=24, users=2, impressions=10, progress=False)
        store = Store(data_dir)
        ingest(store, manifest=world.manifest, options=IngestOptions(clip="tiny", progress=False))
        store.close()
    return data_dir


def log(rows: int, videos: list[str]) -> Path:
    """A CSV log of `rows` impressions; one row in 10,000 is malformed (a bad click flag)."""
    path = CACHE / f"interactions-{rows}.csv"
    if path.is_file():
        return path
    rng = random.Random(rows)
    start = 1_700_000_000
    with open(path, "w", encoding="utf-8") as f:
        f.write("user_id,video_id,timestamp,device,region,clicked,liked,watch_seconds\n")
        for i in range(rows):
            clicked = rng.random() < 0.3
            f.write(
                f"u{i % 5000:05d},{videos[i % len(videos)]},{start + i},{DEVICES[i % 4]},eu,"
                f"{'x' if i % 10_000 == 9_999 else int(clicked)},{int(clicked and rng.random() < 0.3)},"
                f"{round(rng.random() * 300, 1) if clicked else ''}\n"
            )
    return path


def measured(args: list[str], code: str = VIDREC) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of one fresh `vidrec ARGS` process (or of `python -c CODE ARGS`)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {(done.stdout + done.stderr).strip()[-500:]}")
    return seconds, int(done.stderr.split()[-1]) / 1024, done.stdout  # ru_maxrss: kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    base = catalog()
    videos = Store(base, read_only=True).videos.video_ids()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    _, idle, _ = measured(["--help"])
    print(f"`vidrec --help` alone: peak {idle:.0f} MB (the imports)")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        peaks: dict[int, float] = {}
        bare_peaks: dict[int, float] = {}
        largest = base
        for rows in args.sizes:
            path = log(rows, videos)
            data_dir = Path(tmp) / f"data-{rows}"
            shutil.copytree(base, data_dir)
            command = ["--data-dir", str(data_dir), "import-interactions", str(path), "--json"]
            seconds, peak, out = measured(command)
            again, again_peak, out_again = measured(command)
            first, second = json.loads(out), json.loads(out_again)
            shutil.rmtree(data_dir)
            shutil.copytree(base, data_dir)
            _, bare, _ = measured([str(data_dir), str(path)], IMPORT_ONLY)
            peaks[rows] = peak
            bare_peaks[rows] = bare
            largest = data_dir
            print(
                f"import {rows:>9,} rows: {seconds:5.1f} s (the import itself {first['seconds']:.1f} s), peak "
                f"{peak:5.0f} MB ({bare:.0f} MB without the CLI's imports); imported {first['imported']:,}, "
                f"skipped {first['skipped_count']:,}"
            )
            print(
                f"  again: {again:5.1f} s (itself {second['seconds']:.1f} s), peak {again_peak:5.0f} MB; "
                f"duplicates {second['duplicates']:,}, imported {second['imported']}, "
                f"conflicts {second['conflicts_count']}"
            )
        if len(peaks) > 1:
            small, big = min(peaks), max(peaks)
            print(
                f"peak RSS {big:,} rows - {small:,} rows: {peaks[big] - peaks[small]:+.0f} MB "
                f"(without the CLI's imports {bare_peaks[big] - bare_peaks[small]:+.0f} MB)"
            )
        per_video = []
        for _ in range(5):  # what exploration reads for its little-seen list (the store's counts per video)
            started = time.perf_counter()
            Store(largest, read_only=True).interactions.per_video()
            per_video.append(time.perf_counter() - started)
        print(f"impressions and clicks per video, {max(peaks):,} rows: median {sorted(per_video)[2] * 1000:.1f} ms")
        for name, data_dir in (("empty catalog", base), (f"{max(peaks):,} rows", largest)):
            seconds, peak, _ = measured(["--data-dir", str(data_dir), "status", "--json"])
            _, bare, _ = measured([str(data_dir)], STATUS_ONLY)
            print(f"status, {name}: {seconds:.1f} s, peak {peak:.0f} MB; Store.status() alone {bare:.0f} MB")


if __name__ == "__main__":
    main()
