"""Small real media files for tests: the odd-but-valid kinds ingest must take, and the bad kinds it must refuse."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from app.demo import write_video


def moving_frames(n: int, height: int = 64, width: int = 96, seed: int = 0):
    """A bright square sliding over a coloured background: motion, and a marker in the top-left corner."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, 3, dtype=np.uint8)
    for i in range(n):
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = base
        x = (i * 5) % max(1, width - 16)
        frame[height // 2 : height // 2 + 12, x : x + 16] = 255
        frame[:8, :8] = (255, 0, 0)
        yield frame


def write_clip(path: Path, n: int = 24, fps: int = 12, seed: int = 0, **kwargs) -> Path:
    kwargs.setdefault("codec", "libx264")
    shape = kwargs.pop("shape", (64, 96))
    return write_video(path, moving_frames(n, *shape, seed=seed), fps, **kwargs)


def make_odd_files(folder: Path) -> dict[str, Path]:
    """Valid videos in unusual shapes: each must be ingested."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "hevc": write_clip(folder / "hevc.mp4", codec="libx265", seed=1),
        "vp9": write_clip(folder / "vp9.webm", codec="libvpx-vp9", seed=2),
        "av1": write_clip(folder / "av1.mkv", codec="libsvtav1", seed=3),
        "mpeg4": write_clip(folder / "mpeg4.avi", codec="mpeg4", seed=4),
        "mjpeg": write_clip(folder / "mjpeg.mov", codec="mjpeg", pix_fmt="yuvj420p", seed=5),
        "portrait": write_clip(folder / "portrait.mp4", rotation=-90, seed=6),
        "odd_size": write_clip(folder / "odd size.mp4", shape=(38, 250), seed=7),
        "vfr": write_clip(
            folder / "vfr.mp4",
            seed=8,
            pts=[0, 1, 3, 4, 8, 9, 10, 15, 16, 20, 21, 22, 30, 31, 32, 33, 40, 41, 42, 43, 50, 51, 52, 53],
        ),
        "non_ascii": write_clip(folder / "视频 ünïcode clip.mp4", seed=9),
    }


def make_bad_files(folder: Path) -> dict[str, Path]:
    """Files that are not usable videos: each must be refused with a reason."""
    folder.mkdir(parents=True, exist_ok=True)
    good = write_clip(folder / "source.mp4", n=36, seed=10).read_bytes()
    files = {
        "empty": folder / "empty.mp4",
        "truncated": folder / "truncated.mp4",
        "corrupt": folder / "corrupt.mp4",
        "text": folder / "notes.txt",
        "image": folder / "picture.png",
        "audio": folder / "sound.m4a",
        "no_frames": folder / "no_frames.mp4",
        "zero_duration": folder / "zero_duration.mkv",
        "one_frame": folder / "one_frame.mp4",
        "missing": folder / "missing.mp4",
    }
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(good[: len(good) // 2])
    files["corrupt"].write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    files["text"].write_text("not a video\n")
    Image.new("RGB", (64, 64), "red").save(files["image"])
    _write_audio(files["audio"])
    with av.open(str(files["no_frames"]), "w") as container:  # a header, no samples
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    _write_same_timestamp(files["zero_duration"])
    write_video(files["one_frame"], [np.zeros((64, 64, 3), np.uint8)], 12)
    (folder / "source.mp4").unlink()
    return files


def _write_audio(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _write_same_timestamp(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 50, np.uint8), format="rgb24")
            frame.pts, frame.time_base = 0, Fraction(1, 12)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
