"""Ingest opens only what it should: no FIFO or device is read, a huge non-video is refused without
reading it, a manifest cannot reach outside its folder unless allowed, and a file name cannot forge a
line of the text report."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest
from media import write_clip

from ingest.prepare import AlreadyHeld, PreparedVideo, Refused, hash_file, prepare_file
from ingest.sources import Entry
from ingest.store import Store
from ingest.video import PROBE_BYTES

HUGE = 8 << 30  # a sparse file: no disk used, but reading it all would take many seconds
needs_proc_io = pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts bytes read with /proc/self/io")


def bytes_read() -> int:
    """Bytes this process has read so far (all threads, page cache included)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def sparse(path: Path, size: int, head: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head)
    os.truncate(path, size)
    return path


@pytest.mark.timeout(30, method="thread")  # a hang here is the bug: fail, whatever thread is stuck
def test_fifos_sockets_and_devices_are_refused_and_never_read(tmp_path, cli):
    folder = tmp_path / "in"
    folder.mkdir()
    fifo = folder / "x.mp4"
    os.mkfifo(fifo)
    (folder / "zero.mp4").symlink_to("/dev/zero")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "s.mp4"))
        write_clip(folder / "good.mp4", seed=3)
        named = [fifo, folder / "zero.mp4", folder / "s.mp4"]
        code, out = cli("--data-dir", tmp_path / "data", "ingest", *named, "--clip", "tiny", "--json")
        assert code == 1 and out["ingested"] == 0
        assert sorted(f["reason"] for f in out["failed"]) == [
            "not a regular file (a FIFO)",
            "not a regular file (a character device)",
            "not a regular file (a socket)",
        ]
        code, out = cli("--data-dir", tmp_path / "data", "ingest", folder, "--json")  # a walk skips them
        assert code == 0 and out["ingested"] == 1 and out["failed"] == []


@needs_proc_io
def test_a_huge_file_that_is_no_video_is_refused_without_reading_it(tmp_path, cli):
    big = sparse(tmp_path / "in" / "big.mp4", HUGE)  # made the way `truncate -s 8G` makes it
    write_clip(tmp_path / "in" / "good.mp4", seed=4)
    before = bytes_read()
    code, out = cli("--data-dir", tmp_path / "data", "ingest", big, "--clip", "tiny", "--json")
    direct = bytes_read() - before
    assert code == 1 and "not a readable video" in out["failed"][0]["reason"]
    before = bytes_read()
    code, out = cli("--data-dir", tmp_path / "data", "ingest", tmp_path / "in", "--json")
    walked = bytes_read() - before
    assert code == 0 and out["ingested"] == 1 and [Path(f["path"]).name for f in out["failed"]] == ["big.mp4"]
    assert direct < 64 << 20 and walked < 64 << 20, (direct, walked)  # of 8 GB


@pytest.mark.unit
@needs_proc_io
def test_the_probe_reads_a_bounded_part_of_a_hostile_header(tmp_path):
    # a RIFF/AVI header claiming gigabytes of header, then zeros: FFmpeg alone would read it all
    head = b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"AVI LIST" + struct.pack("<I", 0xFFFFFF00) + b"hdrl"
    avi = sparse(tmp_path / "header.avi", 4 * PROBE_BYTES, head)
    before = bytes_read()
    result = prepare_file(Entry(avi))
    assert bytes_read() - before < 2 * PROBE_BYTES
    assert isinstance(result, Refused) and "no usable header in its first 32 MB" in result.reason


@pytest.mark.unit
def test_a_held_video_is_probed_and_hashed_not_decoded(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", seed=5)
    with open(clip, "rb") as f:
        content_hash, size = hash_file(f)
    assert size == clip.stat().st_size
    assert prepare_file(Entry(clip), known_hashes={content_hash}) == AlreadyHeld(Entry(clip), content_hash)
    prepared = prepare_file(Entry(clip))
    assert isinstance(prepared, PreparedVideo) and prepared.content_hash == content_hash


def test_manifest_paths_outside_its_folder_need_allow_outside(tmp_path, cli):
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    write_clip(real / "sub" / "ok.mp4", seed=6)
    write_clip(tmp_path / "outside" / "secret.mp4", seed=7)
    link = tmp_path / "link"  # the manifest's folder is a link: its own paths still work
    link.symlink_to(real)
    manifest = link / "manifest.csv"
    manifest.write_text("path\nsub/ok.mp4\nsub/../sub/ok.mp4\nsub/../../outside/secret.mp4\n", encoding="utf-8")
    data = tmp_path / "data"
    code, out = cli("--data-dir", data, "ingest", "--manifest", manifest, "--clip", "tiny", "--json")
    assert code == 0 and out["ingested"] == 1 and out["duplicates"] == 1
    assert out["failed"] == [
        {
            "path": f"{manifest}:4",
            "reason": "manifest.csv line 4: path escapes the manifest's folder (use --allow-outside)",
        }
    ]
    assert all("secret" not in f["path"] for f in Store(data, create=False).failures.all())
    code, out = cli("--data-dir", data, "ingest", "--manifest", manifest, "--allow-outside", "--json")
    assert code == 0 and out["ingested"] == 1 and out["duplicates"] == 2 and out["failed"] == []
    assert Store(data, create=False).videos.count() == 2


def test_a_newline_in_a_file_name_cannot_forge_a_report_line(tmp_path, cli):
    folder = tmp_path / "in"
    folder.mkdir()
    write_clip(folder / "good\nclip.mp4", seed=8)
    (folder / "bad\n  refused passwd: forged.mp4").write_text("not a video\n")
    code, out = cli("--data-dir", tmp_path / "data", "ingest", folder, "--clip", "tiny")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("ingested 1,"), out
    assert lines[1].startswith("  refused ") and "/bad\\n  refused passwd: forged.mp4: not a readable" in lines[1]
    assert Store(tmp_path / "data", create=False).videos.all()[0].title == "good\nclip"
