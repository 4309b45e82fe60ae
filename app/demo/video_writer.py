"""Write numpy RGB frames to a real video file with PyAV.

The demo world uses it for its H.264 clips; tests use it to make odd files (other codecs and
containers, rotated, variable frame rate) that ingest must cope with.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Options that make each encoder fast on tiny frames and seekable (a keyframe about every second).
# Caller options override them key by key.
_DEFAULT_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "veryfast", "tune": "zerolatency"},
    "libx265": {"preset": "ultrafast", "x265-params": "log-level=error"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"},
    "libsvtav1": {"preset": "10"},
    "mpeg4": {"qscale": "3"},
    "mjpeg": {"qscale": "3"},
}
_GOP_CODECS = {"libx264", "libx265", "libvpx-vp9", "libsvtav1", "mpeg4"}


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: int | float | Fraction,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: Mapping[str, str] | None = None,
    rotation: int | None = None,
    container_format: str | None = None,
    time_base: Fraction | None = None,
    pts: Sequence[int] | None = None,
) -> Path:
    """Encode HxWx3 uint8 RGB frames into `path` and return the path.

    - `fps`: the nominal frame rate (also the encoder's GOP: one keyframe per second by default).
    - `codec`/`pix_fmt`: any PyAV encoder, e.g. libx264 (default, mp4), libx265 (mp4), libvpx-vp9
      (webm), libsvtav1 (mp4/mkv), mpeg4 (avi), mjpeg (mov; use pix_fmt "yuvj420p").
    - `options`: encoder options, merged over fast defaults for the known codecs.
    - `rotation`: display rotation in degrees, counter-clockwise, written as the stream's display
      matrix; a reader gets it back as `VideoFrame.rotation` (e.g. 90 or -90 shows a landscape
      frame as portrait).
    - `container_format`: forces the muxer (default: guessed from the file extension).
    - `pts`/`time_base`: explicit presentation timestamps, one per frame, in `time_base` units
      (default 1/fps), e.g. uneven steps for a variable-frame-rate file.
    Frame width and height must be even for the 4:2:0 formats. Encoders run single-threaded so
    the same frames give the same bytes. SVT-AV1's banner is silenced unless SVT_LOG is set.
    """
    if codec == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")
    path = Path(path)
    fps = Fraction(fps).limit_denominator(1001)
    time_base = Fraction(time_base) if time_base is not None else 1 / fps
    pts_iter = iter(pts) if pts is not None else None
    merged = {**_DEFAULT_OPTIONS.get(codec, {}), **({"g": str(round(fps))} if codec in _GOP_CODECS else {})}
    merged.update(options or {})

    with av.open(str(path), mode="w", format=container_format) as container:
        stream = None
        for index, frame_rgb in enumerate(frames):
            frame_rgb = np.ascontiguousarray(frame_rgb, dtype=np.uint8)
            if stream is None:
                stream = _add_stream(container, codec, fps, time_base, pix_fmt, merged, frame_rgb.shape)
                if rotation:
                    stream.set_display_rotation(rotation)
            frame = av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")
            frame.pts = next(pts_iter) if pts_iter is not None else index
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        if stream is None:
            raise ValueError(f"no frames to write to {path}")
        container.mux(stream.encode(None))
    return path


def _add_stream(container, codec, fps, time_base, pix_fmt, options, shape):
    """A video stream sized after the first frame."""
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"frames must be HxWx3 RGB, got shape {shape}")
    stream = container.add_stream(codec, rate=fps, options=dict(options))
    stream.height, stream.width = shape[0], shape[1]
    stream.pix_fmt = pix_fmt
    stream.codec_context.time_base = time_base
    stream.thread_count = 1
    return stream
