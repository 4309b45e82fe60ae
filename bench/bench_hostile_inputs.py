"""What refusing hostile inputs costs, against ingesting one small real video, in one run
(python bench/bench_hostile_inputs.py [--no-hash]).

Each case is timed and its bytes read counted (/proc/self/io `rchar`, so Linux only):
1. A 20 GB sparse `big.mp4` (as `truncate -s 20G` makes it): the per-file step (`prepare_file`), and
   the whole `ingest` named directly and in a folder walk.
2. A RIFF/AVI header claiming gigabytes of header, then 2 GB of zeros: the probe's byte budget.
3. One small real video (2 s, 96x64): the per-file step and the whole `ingest`.
4. For reference, hashing the 20 GB file in full, which ingest used to do before refusing it (skip
   with --no-hash).
The whole `ingest` uses the tiny CLIP; a warm-up ingest loads it first, so its cost is not counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.demo import write_video  # noqa: E402
from ingest.pipeline import IngestOptions, ingest  # noqa: E402
from ingest.prepare import hash_file, prepare_file  # noqa: E402
from ingest.sources import Entry  # noqa: E402
from ingest.store import Store  # noqa: E402

GB = 1 << 30


def bytes_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def measure(what: Callable[[], object]) -> tuple[dict, object]:
    before, started = bytes_read(), time.perf_counter()
    result = what()
    figures = {"seconds": round(time.perf_counter() - started, 3), "mb_read": round((bytes_read() - before) / 1e6, 1)}
    return figures, result


def small_video(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    frames = (rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in range(24))
    return write_video(path, frames, 12)


def sparse(path: Path, size: int, head: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head)
    os.truncate(path, size)
    return path


def run_ingest(data: Path, paths: list[Path]) -> str:
    report = ingest(Store(data), paths, options=IngestOptions(clip="tiny", progress=False))
    return f"ingested {report.ingested}, failed {len(report.failed)}" + "".join(
        f" ({f['reason'][:60]})" for f in report.failed[:1]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-hash", action="store_true", help="skip hashing the 20 GB file in full")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # open_clip's "no pretrained weights" is expected here
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big = sparse(root / "walk" / "big.mp4", 20 * GB)
        avi = sparse(
            root / "header.avi",
            2 * GB,
            b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"AVI LIST" + struct.pack("<I", 0xFFFFFF00) + b"hdrl",
        )
        (root / "small").mkdir()
        small = small_video(root / "small" / "small.mp4")
        run_ingest(root / "warm-up", [small_video(root / "warm-up.mp4", seed=1)])  # loads the tiny CLIP

        cases: list[tuple[str, Callable[[], object]]] = [
            ("20 GB sparse: prepare_file", lambda: prepare_file(Entry(big)).reason),  # type: ignore[union-attr]
            ("20 GB sparse: ingest, named", lambda: run_ingest(root / "d1", [big])),
            ("20 GB sparse: ingest, folder walk", lambda: run_ingest(root / "d2", [big.parent])),
            ("2 GB AVI header: prepare_file", lambda: prepare_file(Entry(avi)).reason),  # type: ignore[union-attr]
            ("small video: prepare_file", lambda: type(prepare_file(Entry(small))).__name__),
            ("small video: ingest", lambda: run_ingest(root / "d3", [small])),
        ]
        if not args.no_hash:
            cases.append(("20 GB sparse: hash in full (before)", lambda: hash_file(open(big, "rb"))[1]))
        for name, what in cases:
            figures, outcome = measure(what)
            results[name] = {**figures, "outcome": str(outcome)}
            print(f"{name:40} {figures['seconds']:8.3f} s {figures['mb_read']:10.1f} MB  {outcome}", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
