"""Generate the demo world: videos, users, a logged interaction history and the truth behind it.

    world_dir/
        videos/v0001.mp4 ...   H.264 clips, 128x128, 12 fps, 2-20 s
        manifest.csv           the catalog manifest (docs/formats.md)
        interactions.csv       the interaction log (docs/formats.md), sorted by time
        truth.json             ground truth for evaluation only (see truth.py)

Everything but the video bytes follows from `seed` alone (the bytes do too: encoders run
single-threaded). About 5% of videos get a title like "clip 123" with an empty description and no
tags, so that only their frames say what they are.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .render import FPS, render_video
from .truth import MAX_DURATION, MIN_DURATION, Truth
from .video_writer import write_video
from .vocab import CATEGORIES, QUERIES, make_text, uninformative_title

logger = logging.getLogger(__name__)
DEFAULT_VIDEOS, DEFAULT_USERS = 400, 300  # the default world (`vidrec demo`)
MANIFEST_COLUMNS = ("path", "video_id", "title", "description", "tags", "category", "published_at")
INTERACTIONS_FILE = "interactions.csv"
INTERACTION_COLUMNS = ("user_id", "video_id", "timestamp", "device", "region", "clicked", "liked", "watch_seconds")
DEVICES = ("mobile", "desktop", "tv", "tablet")
REGION_UTC_OFFSET_MINUTES = {"us": -300, "eu": 60, "cn": 480, "in": 330, "br": -180}
REGIONS = tuple(REGION_UTC_OFFSET_MINUTES)
LOG_START = np.datetime64("2026-09-07T00:00")  # a Monday; local midnight of day 0 in every region

SHARE_CHINESE, SHARE_UNLABELLED, SHARE_UNINFORMATIVE, SHARE_PUBLISHED_BEFORE = 0.20, 0.15, 0.05, 0.30
REGION_SHARES = (0.30, 0.25, 0.20, 0.15, 0.10)
DEVICE_SHARES = (0.45, 0.25, 0.15, 0.15)
SESSION_LENGTH = (3, 8)  # impressions per session, inclusive
SESSION_GAP_MINUTES = 10  # a user's sessions start at least this far apart
POLICY_SHARES = {"popular": 0.35, "random": 0.25, "personal": 0.40}  # how the logging policy picks
TARGET_CLICK_RATE = 0.09
WATCH_CONCENTRATION = 4.0  # Beta concentration of the watched fraction around its expectation

# Context effects on the click logit, per category (see truth.py for the formula).
HOUR_PEAK_AND_AMPLITUDE = {
    "cooking": (18, 0.6),
    "football": (16, 0.4),
    "golf": (10, 0.4),
    "travel": (21, 0.4),
    "nature": (13, 0.3),
    "news": (8, 1.0),
    "music": (23, 0.9),
    "kids": (16, 1.0),
    "gaming": (22, 0.7),
    "tech": (13, 0.4),
    "fitness": (7, 0.7),
    "space": (22, 0.5),
}
DEVICE_EFFECT = {  # mobile, desktop, tv, tablet
    "cooking": (0.0, -0.2, 0.1, 0.6),
    "football": (0.0, -0.2, 0.8, -0.2),
    "golf": (-0.2, 0.0, 0.6, 0.0),
    "travel": (0.2, 0.0, 0.4, 0.2),
    "nature": (-0.3, 0.0, 0.8, 0.2),
    "news": (0.4, 0.2, 0.3, -0.2),
    "music": (0.6, 0.0, -0.2, -0.2),
    "kids": (-0.2, -0.6, 0.4, 0.9),
    "gaming": (-0.2, 0.8, 0.2, -0.3),
    "tech": (0.1, 0.7, -0.5, 0.1),
    "fitness": (0.5, -0.2, 0.4, 0.0),
    "space": (-0.2, 0.3, 0.6, 0.0),
}
CLICK_DURATION_BY_DEVICE = (-0.8, 0.0, 0.8, 0.0)  # long videos on the TV, short ones on the phone
WATCH_DURATION_BY_DEVICE = (-0.8, 0.0, 0.4, -0.2)
WEEKEND_EFFECT = {
    "cooking": 0.3,
    "football": 0.9,
    "golf": 0.9,
    "travel": 0.4,
    "nature": 0.3,
    "news": -0.6,
    "music": 0.2,
    "kids": 0.5,
    "gaming": 0.4,
    "tech": -0.3,
    "fitness": -0.2,
    "space": 0.0,
}
REGION_EFFECT = {
    "football": {"eu": 0.4, "br": 0.5, "us": -0.4},
    "golf": {"us": 0.4},
    "cooking": {"in": 0.3, "cn": 0.2},
    "news": {"us": 0.2},
    "gaming": {"cn": 0.3},
}
CHINESE_TITLE_BY_REGION = {"us": -0.5, "eu": -0.5, "cn": 1.0, "in": -0.3, "br": -0.5}
ACTIVE_HOUR_PEAKS = (7.5, 12.5, 17.0, 20.5, 22.5)  # users favour two of these local hours


@dataclass
class WorldSummary:
    """What `generate_world` wrote, and how long it took."""

    videos: int
    users: int
    impressions: int
    world_dir: Path
    manifest: Path
    interactions: Path
    truth: Path
    seconds: float


def generate_world(
    out_dir: str | Path,
    *,
    videos: int = DEFAULT_VIDEOS,
    users: int = DEFAULT_USERS,
    days: int = 30,
    impressions: int = 120_000,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
) -> WorldSummary:
    """Write a demo world into `out_dir` (created if needed; earlier world files are overwritten)."""
    if videos < 2 * len(CATEGORIES) or users < 1 or days < 1 or impressions < 1:
        raise ValueError(f"need videos >= {2 * len(CATEGORIES)} (two per category) and users, days, impressions >= 1")
    started = time.perf_counter()
    world_dir = Path(out_dir)
    (world_dir / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    catalog = _make_catalog(rng, videos, days)
    population = _make_users(rng, users)
    truth = _make_truth(catalog, population)
    log = _draw_log(rng, catalog, population, truth, days, impressions)

    manifest = _write_manifest(world_dir, catalog)
    interactions = _write_log(world_dir, log)
    truth_path = truth.save(world_dir)
    _write_videos(world_dir, catalog, workers, progress)
    seconds = time.perf_counter() - started
    logger.info(
        "demo world: %d videos, %d users, %d impressions in %.1f s -> %s",
        videos,
        users,
        impressions,
        seconds,
        world_dir,
    )
    return WorldSummary(videos, users, impressions, world_dir, manifest, interactions, truth_path, seconds)


# ---- the catalog ----


def _make_catalog(rng: np.random.Generator, n: int, days: int) -> dict[str, np.ndarray | list]:
    """Per video: id, category, frames, quality, title language and kind, label, publication time, text."""
    width = max(4, len(str(n)))
    category = rng.permutation(np.arange(n) % len(CATEGORIES))  # balanced: every category at least twice
    n_frames = rng.integers(int(MIN_DURATION * FPS), int(MAX_DURATION * FPS) + 1, n)
    chinese = _exact_share(rng, n, SHARE_CHINESE)
    uninformative = _exact_share(rng, n, SHARE_UNINFORMATIVE, among=~chinese)
    labelled = ~_exact_share(rng, n, SHARE_UNLABELLED)
    before = _exact_share(rng, n, SHARE_PUBLISHED_BEFORE)
    published_days = np.where(before, rng.uniform(-60, 0, n), rng.uniform(0, days, n))
    texts: list[tuple[str, str, list[str]]] = []
    for i in range(n):
        if uninformative[i]:
            texts.append((uninformative_title(rng), "", []))
        else:
            texts.append(make_text(CATEGORIES[category[i]], "zh" if chinese[i] else "en", rng))
    return {
        "id": [f"v{i + 1:0{width}d}" for i in range(n)],
        "category": category,
        "n_frames": n_frames,
        "quality": rng.normal(0, 0.5, n),
        "chinese": chinese,
        "labelled": labelled,
        "texts": texts,
        "published_minute": np.round(published_days * 1440).astype(np.int64),  # UTC minutes since LOG_START
        "render_seed": rng.integers(0, 2**31, n),
    }


def _exact_share(rng: np.random.Generator, n: int, share: float, among: np.ndarray | None = None) -> np.ndarray:
    """A mask with round(share * n) (at least one) randomly chosen True entries, all within `among`."""
    candidates = np.flatnonzero(np.ones(n, bool) if among is None else among)
    mask = np.zeros(n, bool)
    mask[rng.choice(candidates, size=min(len(candidates), max(1, round(share * n))), replace=False)] = True
    return mask


# ---- the users ----


def _make_users(rng: np.random.Generator, n: int) -> dict[str, np.ndarray | list]:
    """Per user: sparse interests (1-3 dominant categories), region, preferred device, active hours, activity."""
    k = len(CATEGORIES)
    interest = 0.15 * rng.dirichlet(np.full(k, 0.5), n)
    for row in interest:
        dominant = rng.choice(k, size=rng.choice([1, 2, 3], p=[0.35, 0.45, 0.2]), replace=False)
        row[dominant] += 0.85 * rng.dirichlet(np.full(len(dominant), 2.0))
    hours = np.arange(24)
    hour_weights = np.full((n, 24), 0.04)
    for row in hour_weights:
        for peak, weight in zip(rng.choice(ACTIVE_HOUR_PEAKS, 2, replace=False), (0.65, 0.35)):
            distance = np.minimum(np.abs(hours - peak), 24 - np.abs(hours - peak))
            row += weight * np.exp(-0.5 * (distance / 1.5) ** 2)
    return {
        "id": [f"u{i + 1:0{max(4, len(str(n)))}d}" for i in range(n)],
        "interest": interest,
        "region": rng.choice(len(REGIONS), n, p=REGION_SHARES),
        "device": rng.choice(len(DEVICES), n, p=DEVICE_SHARES),
        "hour_weights": hour_weights / hour_weights.sum(1, keepdims=True),
        "activity": rng.lognormal(0, 0.7, n),
        "bias": rng.normal(0, 0.4, n),
    }


# ---- the truth ----


def _make_truth(catalog: dict, population: dict) -> Truth:
    """The click/like/watch model of this world, with the click bias still 0 (calibrated on the log)."""
    hours = np.arange(24)
    hour_table = [
        (amp * np.cos(2 * np.pi * (hours - peak) / 24)).tolist()
        for peak, amp in (HOUR_PEAK_AND_AMPLITUDE[c] for c in CATEGORIES)
    ]
    params: dict[str, dict[str, Any]] = {
        "click": {
            "bias": 0.0,
            "interest_weight": 1.0,
            "interest_floor": 0.03,
            "hour": hour_table,
            "device": [list(DEVICE_EFFECT[c]) for c in CATEGORIES],
            "duration_by_device": list(CLICK_DURATION_BY_DEVICE),
            "weekend": [WEEKEND_EFFECT[c] for c in CATEGORIES],
            "region": [[REGION_EFFECT.get(c, {}).get(r, 0.0) for r in REGIONS] for c in CATEGORIES],
            "chinese_title_by_region": [CHINESE_TITLE_BY_REGION[r] for r in REGIONS],
        },
        "like": {"bias": -0.4, "interest_weight": 0.8, "quality_weight": 0.8},
        "watch": {
            "bias": 0.6,
            "interest_weight": 0.5,
            "quality_weight": 0.6,
            "duration_by_device": list(WATCH_DURATION_BY_DEVICE),
        },
    }
    video_ids, user_ids = catalog["id"], population["id"]
    return Truth(
        categories=list(CATEGORIES),
        devices=list(DEVICES),
        regions=list(REGIONS),
        user_ids=user_ids,
        user_interest=population["interest"],
        user_bias=population["bias"],
        user_region={u: REGIONS[r] for u, r in zip(user_ids, population["region"])},
        user_device={u: DEVICES[d] for u, d in zip(user_ids, population["device"])},
        video_ids=video_ids,
        video_category={v: CATEGORIES[c] for v, c in zip(video_ids, catalog["category"])},
        video_duration={v: int(f) / FPS for v, f in zip(video_ids, catalog["n_frames"])},
        video_quality=catalog["quality"],
        video_chinese_title=catalog["chinese"],
        queries={lang: {c: list(q) for c, q in by_cat.items()} for lang, by_cat in QUERIES.items()},
        params=params,
    )


# ---- the log ----


def _draw_log(rng: np.random.Generator, catalog: dict, population: dict, truth: Truth, days: int, n: int) -> dict:
    """Impressions from the logging policy, with clicks, likes and watch time drawn from the truth.

    Calibrates the truth's click bias on these impressions first, so the log's click rate is about
    TARGET_CLICK_RATE whatever the world's size.
    """
    sessions = _draw_sessions(rng, population, days, n)
    lengths = sessions["length"]
    session = np.repeat(np.arange(len(lengths)), lengths)[:n]
    position = np.arange(n) - np.repeat(np.cumsum(lengths) - lengths, lengths)[:n]  # within the session
    user = sessions["user"][session]
    local_minute = sessions["local_minute"][session]
    second = local_minute * 60 + 30 * position  # local seconds since LOG_START, 30 s per impression
    offset = np.array([REGION_UTC_OFFSET_MINUTES[r] for r in REGIONS])[population["region"][user]]
    utc_second = second - 60 * offset
    utc_minute = utc_second // 60
    video = _pick_videos(rng, catalog, population, user, utc_minute)

    ids = np.array(catalog["id"])[video]
    users = np.array(population["id"])[user]
    hour, weekday = (second // 3600) % 24, (second // 86400) % 7
    device, region = np.array(DEVICES)[sessions["device"][session]], np.array(REGIONS)[population["region"][user]]
    context = (users, ids, hour, weekday, device, region)
    rest = truth.click_logit_without_bias(*context)
    truth.params["click"]["bias"] = _calibrate_bias(rest, TARGET_CLICK_RATE)
    clicked = rng.random(n) < truth.click_probability(*context)
    liked = clicked & (rng.random(n) < truth.like_probability(*context))
    mean = np.clip(truth.watch_fraction(*context), 1e-3, 1 - 1e-3)
    fraction = rng.beta(mean * WATCH_CONCENTRATION, (1 - mean) * WATCH_CONCENTRATION)
    duration = catalog["n_frames"][video] / FPS
    watch = np.where(clicked, np.floor(fraction * duration * 10) / 10, 0.0)
    order = np.lexsort((position, user, utc_second))
    offsets = np.array([_format_offset(REGION_UTC_OFFSET_MINUTES[r]) for r in REGIONS])[population["region"][user]]
    local_time = np.datetime_as_string(LOG_START + second.astype("timedelta64[s]"), unit="s")
    return {
        "user_id": users[order],
        "video_id": ids[order],
        "timestamp": np.char.add(local_time, offsets)[order],
        "device": device[order],
        "region": region[order],
        "clicked": clicked[order].astype(int),
        "liked": liked[order].astype(int),
        "watch_seconds": watch[order],
    }


def _draw_sessions(rng: np.random.Generator, population: dict, days: int, n: int) -> dict[str, np.ndarray]:
    """Sessions (user, device, local start minute, length) that together hold n impressions."""
    lengths = rng.integers(SESSION_LENGTH[0], SESSION_LENGTH[1] + 1, n // SESSION_LENGTH[0] + 1)
    lengths = lengths[: np.searchsorted(np.cumsum(lengths), n) + 1]
    count = len(lengths)
    user = rng.choice(len(population["id"]), count, p=population["activity"] / population["activity"].sum())
    cumulative_hours = np.cumsum(population["hour_weights"][user], axis=1)
    hour = (cumulative_hours < rng.random((count, 1))).sum(1)
    start = rng.integers(0, days, count) * 1440 + hour * 60 + rng.integers(0, 60, count)
    start = _space_out(user, start, SESSION_GAP_MINUTES)
    preferred = population["device"][user]
    other = (preferred + rng.integers(1, len(DEVICES), count)) % len(DEVICES)
    device = np.where(rng.random(count) < 0.75, preferred, other)
    return {"user": user, "device": device, "local_minute": start, "length": lengths}


def _space_out(user: np.ndarray, start: np.ndarray, gap: int) -> np.ndarray:
    """Starts moved later where needed so that each user's sessions begin at least `gap` minutes apart."""
    order = np.lexsort((start, user))
    u, s = user[order], start[order]
    rank = np.arange(len(u)) - np.searchsorted(u, u)  # position within the user's sessions
    span = int(s.max() + gap * len(s) + 1)
    spaced = np.maximum.accumulate(u * span + s - gap * rank) - u * span + gap * rank
    result = np.empty_like(start)
    result[order] = spaced
    return result


def _pick_videos(
    rng: np.random.Generator, catalog: dict, population: dict, user: np.ndarray, utc_minute: np.ndarray
) -> np.ndarray:
    """The logging policy: popular, random or personal picks among videos published before each impression."""
    n = len(user)
    published = catalog["published_minute"]
    by_time = np.argsort(published, kind="stable")
    available = np.searchsorted(published[by_time], utc_minute, side="left")  # strictly earlier
    if available.min() == 0:
        raise ValueError("an impression falls before any video is published")
    popularity = np.cumsum(np.exp(2 * catalog["quality"][by_time]))
    pick_random = by_time[(rng.random(n) * available).astype(np.int64)]
    pick_popular = by_time[np.searchsorted(popularity, rng.random(n) * popularity[available - 1], side="right")]
    chosen_category = (np.cumsum(population["interest"][user], axis=1) < rng.random((n, 1))).sum(1)
    chosen_category = np.minimum(chosen_category, len(CATEGORIES) - 1)
    pick_personal = pick_random.copy()
    draw = rng.random(n)
    for c in range(len(CATEGORIES)):
        members = by_time[catalog["category"][by_time] == c]
        rows = np.flatnonzero(chosen_category == c)
        in_category = np.searchsorted(published[members], utc_minute[rows], side="left")
        ok = in_category > 0
        pick_personal[rows[ok]] = members[(draw[rows[ok]] * in_category[ok]).astype(np.int64)]
    source = rng.choice(3, n, p=list(POLICY_SHARES.values()))
    return np.choose(source, [pick_popular, pick_random, pick_personal])


def _calibrate_bias(logit_rest: np.ndarray, target: float) -> float:
    """The global bias that makes the mean click probability over the logged impressions `target`."""
    low, high = -15.0, 15.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if np.mean(1 / (1 + np.exp(-(mid + logit_rest)))) < target else (low, mid)
    return round((low + high) / 2, 6)


def _format_offset(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# ---- files ----


def _write_manifest(world_dir: Path, catalog: dict) -> Path:
    path = world_dir / "manifest.csv"
    published = np.datetime_as_string(LOG_START + catalog["published_minute"].astype("timedelta64[m]"), unit="s")
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_COLUMNS)
        for i, video_id in enumerate(catalog["id"]):
            title, description, tags = catalog["texts"][i]
            category = CATEGORIES[catalog["category"][i]] if catalog["labelled"][i] else ""
            writer.writerow(
                (
                    f"videos/{video_id}.mp4",
                    video_id,
                    title,
                    description,
                    "|".join(tags),
                    category,
                    published[i] + "+00:00",
                )
            )
    return path


def _write_log(world_dir: Path, log: dict) -> Path:
    path = world_dir / INTERACTIONS_FILE
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(INTERACTION_COLUMNS)
        watch = [f"{w:.1f}" for w in log["watch_seconds"].tolist()]
        writer.writerows(zip(*(log[c].tolist() for c in INTERACTION_COLUMNS[:-1]), watch))
    return path


def _write_videos(world_dir: Path, catalog: dict, workers: int, progress: bool) -> None:
    """Render and encode every clip, longest first, on `workers` processes (in this one if workers <= 1)."""
    jobs = [
        (str(world_dir / "videos" / f"{video_id}.mp4"), CATEGORIES[c], int(f), int(s))
        for video_id, c, f, s in zip(catalog["id"], catalog["category"], catalog["n_frames"], catalog["render_seed"])
    ]
    jobs.sort(key=lambda job: -job[2])
    bar = tqdm(total=len(jobs), desc="rendering videos", unit="video", disable=not progress, file=sys.stderr)
    if workers <= 1:
        for job in jobs:
            _render_and_write(job)
            bar.update()
    else:
        # forkserver: safe when the caller holds threads (a UI, torch), cheaper than spawn
        context = multiprocessing.get_context("forkserver" if sys.platform != "win32" else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for _ in pool.map(_render_and_write, jobs, chunksize=4):
                bar.update()
    bar.close()


def _render_and_write(job: tuple[str, str, int, int]) -> None:
    path, category, n_frames, seed = job
    write_video(path, render_video(category, n_frames, seed), FPS, options={"crf": "28"})
