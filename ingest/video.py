"""Probe a video file with PyAV and sample K frames spread over its duration.

Probing is a step of its own (`open_video`) and reads at most `PROBE_BYTES`, so a huge file that is not
a video is refused without reading it, and ingest can hash a file only once it knows it is a video.
Sampling seeks instead of decoding the whole file, so the cost per video barely grows with its length:
targets close together are reached by decoding forward, targets far apart by a seek to the keyframe
before them. Frames come out upright (rotation metadata applied) and no larger than the CLIP input.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
from PIL import Image

from .sources import Unreadable, open_regular

FRAMES_PER_VIDEO = 8  # frames sampled per video unless asked otherwise (`ingest --frames`)
FRAME_SIDE = 224  # kept frames: short side at most this (the usual CLIP input size)
FORWARD_SECONDS = 3.0  # decode forward rather than seek when the next target is this close
STILL_IMAGE_CODECS = {"png", "bmp", "gif", "webp", "tiff", "jpegls", "pam", "ppm", "pgm", "qoi"}
STILL_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "gif", "webp_pipe", "tiff_pipe"}
# The most the probe may read. FFmpeg's probesize does not bound header parsing: an AVI or FLV header
# followed by gigabytes of zeros has the demuxer read them all. Real headers (a long film's index) fit.
PROBE_BYTES = 32 << 20


class VideoError(Exception):
    """A file that cannot be ingested; the message is the one-line reason the user sees."""


@dataclass
class SampledVideo:
    duration: float
    fps: float | None
    width: int  # as stored, before rotation
    height: int
    codec: str
    rotation: int  # degrees clockwise to display upright
    frames: list[tuple[float, Image.Image]] = field(default_factory=list)  # (seconds, upright RGB)


def sample_video(path: Path | str, k: int = FRAMES_PER_VIDEO, side: int = FRAME_SIDE) -> SampledVideo:
    """Probe `path` and return k upright frames (fewer for very short videos); VideoError if it is not a video."""
    try:
        file = open_regular(path)
    except Unreadable as exc:
        raise VideoError(str(exc)) from exc
    with file, open_video(file, str(path)) as video:
        return video.sample(k, side)


@dataclass
class Video:
    """A probed container with a video stream, ready to sample."""

    container: av.container.InputContainer
    stream: av.VideoStream
    codec: str

    def sample(self, k: int = FRAMES_PER_VIDEO, side: int = FRAME_SIDE) -> SampledVideo:
        """k upright frames (fewer for very short videos); VideoError if they cannot be had."""
        if k < 1:
            raise ValueError("k must be at least 1")
        try:
            return _sample(self.container, self.stream, self.codec, k, side)
        except (av.FFmpegError, OSError, ValueError, MemoryError) as exc:
            raise VideoError(_unreadable(exc)) from exc


@contextmanager
def open_video(file: BinaryIO, name: str = "") -> Iterator[Video]:
    """Probe an opened regular file (`name` only hints at the format): its container and video stream,
    reading at most PROBE_BYTES of it. VideoError if it is not a video. The file stays the caller's."""
    if os.fstat(file.fileno()).st_size == 0:
        raise VideoError("empty file")
    reader = _Reader(file, name, PROBE_BYTES)
    try:
        container = av.open(reader, metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, MemoryError) as exc:
        raise VideoError(_too_long_header() if reader.budget == 0 else _unreadable(exc)) from exc
    with container:
        if reader.budget == 0:  # the demuxer stopped at our limit, not at the end of its headers
            raise VideoError(_too_long_header())
        try:
            video = _probe(container)
        except (av.FFmpegError, OSError, ValueError, MemoryError) as exc:
            raise VideoError(_unreadable(exc)) from exc
        reader.budget = None  # a video: sampling reads what it needs
        yield video


class _Reader:
    """The file as PyAV reads it, with a byte budget while probing (None: no budget). It has no close(),
    so PyAV leaves the file open for the caller; `name` hints at the format, as a path would."""

    def __init__(self, file: BinaryIO, name: str, budget: int | None):
        self.file, self.name, self.budget = file, name, budget

    def read(self, n: int = -1) -> bytes:
        if self.budget is not None:
            n = self.budget if n < 0 else min(n, self.budget)
        data = self.file.read(n)
        if self.budget is not None:
            self.budget -= len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


def _probe(container) -> Video:
    """The checks that need no decoding: a video stream, not a still image, more than one frame."""
    if not container.streams.video:
        raise VideoError("no video stream (audio only)" if container.streams.audio else "no video stream")
    if container.format.name in STILL_IMAGE_FORMATS:
        raise VideoError(f"a still image ({container.format.name}), not a video")
    stream = container.streams.video[0]
    codec = stream.codec_context.codec.canonical_name  # "av1", not the decoder "libdav1d"
    if codec in STILL_IMAGE_CODECS:
        raise VideoError(f"a still image ({codec}), not a video")
    if stream.frames == 1:
        raise VideoError("a single frame, not a video")
    return Video(container, stream, codec)


def _too_long_header() -> str:
    return f"not a readable video (no usable header in its first {PROBE_BYTES >> 20} MB)"


def _unreadable(exc: Exception) -> str:
    return f"not a readable video (corrupt, truncated or another kind of file): {_one_line(exc)}"


def _sample(container, stream, codec: str, k: int, side: int) -> SampledVideo:
    stream.thread_type = "SLICE"
    tb = stream.time_base or Fraction(1, av.time_base)
    start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
    duration = _duration(container, stream)
    if duration is None:  # no duration in the headers: one pass to find it
        times = [f.time for f in container.decode(stream) if f.time is not None]
        if len(times) < 2:
            raise VideoError("a single frame, not a video" if times else "no decodable frames")
        duration = max(times) - min(times)
        container.seek(0)
    if duration <= 0:
        raise VideoError("zero duration")

    spacing = duration / k
    targets = [start + (i + 0.5) * spacing for i in range(k)]
    frames: list[tuple[float, Image.Image]] = []
    rotation = 0
    decoded = None
    last_time = -math.inf
    for target in targets:
        if decoded is None or target - last_time > FORWARD_SECONDS:
            container.seek(int(target / tb), stream=stream, backward=True)
            decoded = container.decode(stream)
            tolerance = spacing / 4  # after a seek, a keyframe this close before the target will do
        else:
            tolerance = 0.0
        frame = _first_frame_at(decoded, target - tolerance, last_time)
        if frame is None:
            break  # ran out of data (a truncated file): keep what we have
        last_time = frame.time
        rotation = int(round(-(frame.rotation or 0))) % 360
        frames.append((round(frame.time - start, 3), _upright_image(frame, rotation, side)))
    if not frames:
        raise VideoError("no decodable frames (corrupt or truncated)")
    if len(frames) < min(2, k):
        raise VideoError("only one decodable frame, not a video")
    ctx = stream.codec_context
    return SampledVideo(
        duration=round(duration, 3),
        fps=float(stream.average_rate) if stream.average_rate else None,
        width=int(ctx.width),
        height=int(ctx.height),
        codec=codec,
        rotation=rotation,
        frames=frames,
    )


def _duration(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _first_frame_at(decoded, earliest: float, after: float):
    """The next decoded frame at or after `earliest` and strictly after `after`, or None at the end."""
    try:
        for frame in decoded:
            if frame.time is None:
                continue
            if frame.time >= earliest and frame.time > after:
                return frame
    except av.FFmpegError:
        return None  # damaged data past this point
    return None


def _upright_image(frame, rotation_cw: int, side: int) -> Image.Image:
    image = frame.to_image()  # RGB
    if rotation_cw:
        image = image.rotate(-rotation_cw, expand=True)  # PIL rotates counter-clockwise
    scale = side / min(image.size)
    if scale < 1:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BICUBIC
        )
    return image


def _one_line(exc: Exception) -> str:
    text = " ".join((getattr(exc, "strerror", None) or str(exc)).split()) or type(exc).__name__
    return text[:200]
