"""The demo world at tiny size: files that decode, the documented formats, a log consistent with its truth."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from app.demo import Truth, generate_world, load_truth, write_video
from app.demo.vocab import CATEGORIES, LANGUAGES
from app.demo.world import DEVICES, INTERACTION_COLUMNS, MANIFEST_COLUMNS, REGIONS

TINY = dict(videos=36, users=24, impressions=3000, days=30, seed=7)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return generate_world(tmp_path_factory.mktemp("world"), **TINY, workers=2, progress=False).world_dir


@pytest.fixture(scope="module")
def truth(world) -> Truth:
    return load_truth(world)


@pytest.fixture(scope="module")
def manifest(world) -> list[dict[str, str]]:
    return _read_csv(world / "manifest.csv")


@pytest.fixture(scope="module")
def log(world) -> list[dict[str, str]]:
    return _read_csv(world / "interactions.csv")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return next(csv.reader(f))


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


# ---- the world as a whole ----


def test_same_seed_same_world_whatever_the_workers(world, tmp_path):
    again = generate_world(tmp_path / "again", **TINY, workers=1, progress=False).world_dir
    for name in ("manifest.csv", "interactions.csv", "truth.json", "videos/v0001.mp4", "videos/v0036.mp4"):
        assert (world / name).read_bytes() == (again / name).read_bytes(), name


def test_another_seed_another_world(world, tmp_path):
    other = generate_world(tmp_path / "other", videos=24, users=5, impressions=200, seed=8, workers=1, progress=False)
    assert other.interactions.read_bytes() != (world / "interactions.csv").read_bytes()


def test_too_small_a_world_is_refused(tmp_path):
    with pytest.raises(ValueError, match="two per category"):
        generate_world(tmp_path, videos=len(CATEGORIES), progress=False)


# ---- videos and manifest ----


def test_videos_are_h264_128px_12fps_2_to_20_seconds(world, manifest, truth):
    for row in manifest:
        with av.open(str(world / row["path"])) as container:
            stream = container.streams.video[0]
            frames = list(container.decode(stream))
            assert stream.codec_context.name == "h264"
            assert (frames[0].width, frames[0].height) == (128, 128)
            assert stream.average_rate == 12
            assert len(frames) / 12 == pytest.approx(truth.video_duration[row["video_id"]])
            assert 2 <= len(frames) / 12 <= 20
            assert np.ptp(frames[0].to_ndarray(format="rgb24").astype(int)) > 50  # a picture, not a flat colour
            assert not np.array_equal(frames[0].to_ndarray(), frames[-1].to_ndarray())  # it moves


def test_manifest_follows_design(world, manifest, truth):
    assert _header(world / "manifest.csv") == list(MANIFEST_COLUMNS)
    assert [row["video_id"] for row in manifest] == truth.video_ids
    for row in manifest:
        assert row["path"] == f"videos/{row['video_id']}.mp4" and (world / row["path"]).is_file()
        assert row["category"] in ("", truth.video_category[row["video_id"]])
        assert datetime.fromisoformat(row["published_at"]).utcoffset() == timedelta(0)
        assert all(tag and "|" not in tag for tag in row["tags"].split("|")) or row["tags"] == ""


def test_catalog_mix(manifest, truth):
    counts = {c: sum(truth.video_category[v] == c for v in truth.video_ids) for c in CATEGORIES}
    assert min(counts.values()) >= 2 and truth.categories == list(CATEGORIES)
    labelled = [row["category"] != "" for row in manifest]
    assert 0.75 <= np.mean(labelled) <= 0.95 and not all(labelled)
    chinese = [_has_chinese(row["title"]) for row in manifest]
    assert 0.1 <= np.mean(chinese) <= 0.3
    assert all(_has_chinese(row["description"]) for row, zh in zip(manifest, chinese) if zh)
    uninformative = [row for row in manifest if row["description"] == ""]
    assert uninformative and all(row["tags"] == "" and len(row["title"].split()) <= 2 for row in uninformative)
    titles = [row["title"] for row in manifest]
    assert len(set(titles)) > 0.8 * len(titles)


def test_queries_for_every_language_and_category(truth):
    for lang in LANGUAGES:
        for category in CATEGORIES:
            assert len(truth.queries[lang][category]) >= 3
    assert any(_has_chinese(q) for q in truth.queries["zh"]["news"])


# ---- the interaction log ----


def test_log_follows_design(world, log, manifest, truth):
    assert _header(world / "interactions.csv") == list(INTERACTION_COLUMNS)
    assert len(log) == TINY["impressions"]
    published = {row["video_id"]: datetime.fromisoformat(row["published_at"]) for row in manifest}
    times = [datetime.fromisoformat(row["timestamp"]) for row in log]
    assert (max(times) - min(times)).days >= TINY["days"] - 2
    assert times == sorted(times)
    keys = {(row["user_id"], row["video_id"], row["timestamp"]) for row in log}
    assert len(keys) == len(log)  # a row is identified by user, video and timestamp
    for row, when in zip(log, times):
        assert row["device"] in DEVICES and row["region"] == truth.user_region[row["user_id"]]
        assert when > published[row["video_id"]]
        clicked, liked, watched = int(row["clicked"]), int(row["liked"]), float(row["watch_seconds"])
        assert liked <= clicked
        assert 0 <= watched <= truth.video_duration[row["video_id"]] and (watched == 0 or clicked)


def test_timestamps_carry_the_regions_offset(log):
    offsets = {}
    for row in log:
        offsets.setdefault(row["region"], set()).add(datetime.fromisoformat(row["timestamp"]).utcoffset())
    assert set(offsets) <= set(REGIONS) and all(len(o) == 1 for o in offsets.values())
    assert offsets.get("in", {timedelta(hours=5, minutes=30)}) == {timedelta(hours=5, minutes=30)}


def _context(log):
    times = [datetime.fromisoformat(row["timestamp"]) for row in log]
    return (
        [r["user_id"] for r in log],
        [r["video_id"] for r in log],
        [t.hour for t in times],
        [t.weekday() for t in times],
        [r["device"] for r in log],
        [r["region"] for r in log],
    )


def test_clicks_follow_the_truth(log, truth):
    p = truth.click_probability(*_context(log))
    clicked = np.array([int(r["clicked"]) for r in log], bool)
    assert 0.04 <= clicked.mean() <= 0.2 and p.mean() == pytest.approx(clicked.mean(), abs=0.03)
    assert p[clicked].mean() > 1.5 * p[~clicked].mean()
    like = truth.like_probability(*_context(log))
    watch = truth.watch_fraction(*_context(log))
    assert ((0 < like) & (like < 1) & (0 < watch) & (watch < 1)).all()


def test_context_shifts_click_probability(truth):
    user, region = truth.user_ids[0], truth.user_region[truth.user_ids[0]]

    def first(category, chinese=None):
        return next(
            v
            for i, v in enumerate(truth.video_ids)
            if truth.video_category[v] == category and (chinese is None or truth.video_chinese_title[i] == chinese)
        )

    news, music, football = first("news"), first("music"), first("football")
    p = truth.click_probability(user, news, [8, 23], 2, "mobile", region)
    assert p[0] > 1.5 * p[1]
    p = truth.click_probability(user, music, [8, 23], 2, "mobile", region)
    assert p[1] > 1.5 * p[0]
    p = truth.click_probability(user, football, 15, [2, 6], "desktop", region)
    assert p[1] > 1.5 * p[0]
    longest = max(truth.video_ids, key=truth.video_duration.get)
    p = truth.click_probability(user, longest, 20, 2, ["mobile", "tv"], region)
    assert p[1] > p[0]
    zh_video = truth.video_ids[int(np.flatnonzero(truth.video_chinese_title)[0])]
    p = truth.click_probability(user, zh_video, 20, 2, "mobile", ["us", "cn"])
    assert p[1] > 1.5 * p[0]


def test_truth_refuses_strangers(truth):
    with pytest.raises(KeyError, match="u9999"):
        truth.click_probability(["u9999"], [truth.video_ids[0]], [8], [0], ["tv"], ["us"])
    with pytest.raises(KeyError, match="phone"):
        truth.click_probability(truth.user_ids[0], truth.video_ids[0], 8, 0, "phone", "us")


# ---- write_video ----


def _frames(n=24, height=48, width=64):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return [np.roll(base, 2 * i, axis=1) for i in range(n)]


@pytest.mark.parametrize(
    ("name", "options", "decoders"),
    [
        ("h264.mp4", {}, {"h264"}),
        ("hevc.mp4", {"codec": "libx265"}, {"hevc"}),
        ("vp9.webm", {"codec": "libvpx-vp9"}, {"vp9", "libvpx-vp9"}),
        ("av1.mp4", {"codec": "libsvtav1"}, {"av1", "libdav1d", "libaom-av1"}),
        ("av1.mkv", {"codec": "libsvtav1"}, {"av1", "libdav1d", "libaom-av1"}),
        ("mpeg4.avi", {"codec": "mpeg4"}, {"mpeg4"}),
        ("mjpeg.mov", {"codec": "mjpeg", "pix_fmt": "yuvj420p"}, {"mjpeg"}),
    ],
)
def test_write_video_round_trips(tmp_path, name, options, decoders):
    path = write_video(tmp_path / name, _frames(), 12, **options)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert stream.codec_context.name in decoders
        assert len(frames) == 24 and (frames[0].width, frames[0].height) == (64, 48)


def test_write_video_rotation(tmp_path):
    path = write_video(tmp_path / "portrait.mp4", _frames(), 12, rotation=90)
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).rotation == 90


def test_write_video_variable_frame_rate(tmp_path):
    steps = [40, 120] * 11 + [40]
    path = write_video(
        tmp_path / "vfr.mkv", _frames(), 12, time_base=Fraction(1, 1000), pts=np.cumsum([0] + steps).tolist()
    )
    with av.open(str(path)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    durations = np.round(np.diff(times), 3)
    assert len(times) == 24 and set(durations) == {0.04, 0.12}


def test_write_video_refuses_nothing_and_non_rgb(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [], 12)
    with pytest.raises(ValueError, match="HxWx3"):
        write_video(tmp_path / "gray.mp4", [np.zeros((16, 16), np.uint8)], 12)
