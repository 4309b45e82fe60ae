"""What finding damage costs (python bench/bench_faults.py [--db-mb 1024] [--weights-mb 600]).

- SQLite's `quick_check`, which every job runs when it takes the writer lock, on catalog databases of growing
  size (frames-like BLOBs in a videos-like table), against `integrity_check` in the same run;
- the SHA-256 that loading compares for CLIP weights, model weights and index files, per MB, against
  reading the same file without hashing it (what loading did before), in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.store import Store, sha256_file  # noqa: E402


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def fill(store: Store, megabytes: int) -> None:
    """Rows of 120 kB (about one video's kept frames, thumbnail and embeddings) until the file holds `megabytes`."""
    blob = os.urandom(120_000)
    db = store.db
    with store.transaction():
        db.execute("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
        for i in range(megabytes * 1_000_000 // len(blob)):
            db.execute("INSERT INTO filler(name, data) VALUES (?, ?)", (f"v{i:07d}", blob))


def drop_cache(path: Path) -> None:
    """Ask the kernel to forget the file's pages, so that a check reads from the disk, as after a reboot."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def check_database(folder: Path, megabytes: int) -> dict:
    store = Store(folder / f"db-{megabytes}")
    fill(store, megabytes)
    database = store.paths.database
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = database.stat().st_size / 1e6
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    drop_cache(database)
    cold = timed(lambda: db.execute("PRAGMA quick_check").fetchall())
    warm = timed(lambda: store.check_integrity())
    full = timed(lambda: db.execute("PRAGMA integrity_check").fetchall())
    db.close()
    store.close()
    return {"mb": size, "cold": cold, "warm": warm, "integrity": full}


def read_only(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


def check_weights(folder: Path, megabytes: int) -> dict:
    path = folder / "weights.safetensors"
    with open(path, "wb") as f:
        for _ in range(megabytes):
            f.write(os.urandom(1 << 20))
    read_only(path)  # warm, as a file just written or loaded before is
    plain = min(timed(lambda: read_only(path)) for _ in range(3))
    hashed = min(timed(lambda: sha256_file(path)) for _ in range(3))
    return {"mb": megabytes * 1.048576, "read": plain, "sha256": hashed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db-mb", type=int, nargs="+", default=[20, 200, 1000])
    parser.add_argument("--weights-mb", type=int, default=600, help="ViT-B-32's weights are about 600 MB")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        folder = Path(tmp)
        print("\ncatalog.db size   quick_check (cold)   quick_check (warm)   integrity_check (warm)   warm ms per MB")
        for megabytes in args.db_mb:
            r = check_database(folder, megabytes)
            print(
                f"{r['mb']:>9.0f} MB   {r['cold']:>14.3f} s   {r['warm']:>14.3f} s   {r['integrity']:>18.3f} s"
                f"   {1000 * r['warm'] / r['mb']:>10.2f}"
            )
        w = check_weights(folder, args.weights_mb)
        print(
            f"\nweights file {w['mb']:.0f} MB (page cache warm): read {w['read']:.3f} s, read + SHA-256 "
            f"{w['sha256']:.3f} s ({w['mb'] / w['sha256']:.0f} MB/s; {w['sha256'] / w['read']:.1f}x a plain read)"
        )


if __name__ == "__main__":
    main()
