"""The demo world's ground truth: the exact click, like and watch model that drew the log.

`world.py` builds a `Truth`, draws the interaction log from its probabilities and saves it as
`truth.json`; evaluation code is handed it (`load_truth(world_dir)`) as an oracle. Nothing in the
product reads it.

The click model, per impression of video v (category c) to user u at local hour h, weekday w, on
device d in region r:

    logit = bias + user_bias[u] + interest_weight * log(interest[u, c] + interest_floor) + quality[v]
            + hour[c, h] + device[c, d] + duration_by_device[d] * duration_norm[v]
            + weekend[c] * (w >= 5) + region[c, r] + chinese_title[v] * chinese_title_by_region[r]

where duration_norm maps 2..20 s to -1..1 (long videos suit the TV, short ones the phone).
P(like | click) and the expected watch fraction given a click are logistic in the same interest
and quality terms (the watch fraction also in duration by device).

Users or videos that are not in the world raise a KeyError naming them: the truth is exact or
silent, it does not guess for strangers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TRUTH_FILE = "truth.json"
MIN_DURATION, MAX_DURATION = 2.0, 20.0


@dataclass
class Truth:
    """Ground truth of one demo world; `params` holds the click/like/watch tables (see the module doc)."""

    categories: list[str]
    devices: list[str]
    regions: list[str]
    user_ids: list[str]
    user_interest: np.ndarray  # (users, categories), rows sum to 1
    user_bias: np.ndarray  # (users,)
    user_region: dict[str, str]
    user_device: dict[str, str]  # the preferred device
    video_ids: list[str]
    video_category: dict[str, str]  # every video, labelled in the manifest or not
    video_duration: dict[str, float]  # seconds
    video_quality: np.ndarray  # (videos,)
    video_chinese_title: np.ndarray  # (videos,) bool
    queries: dict[str, dict[str, list[str]]]  # lang -> category -> descriptive queries
    params: dict[str, dict[str, Any]]
    _user_index: dict[str, int] = field(init=False, repr=False)
    _video_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.user_interest = np.asarray(self.user_interest, np.float64)
        self.user_bias = np.asarray(self.user_bias, np.float64)
        self.video_quality = np.asarray(self.video_quality, np.float64)
        self.video_chinese_title = np.asarray(self.video_chinese_title, bool)
        self._user_index = {u: i for i, u in enumerate(self.user_ids)}
        self._video_index = {v: i for i, v in enumerate(self.video_ids)}
        category_index = {c: i for i, c in enumerate(self.categories)}
        self._video_cat = np.array([category_index[self.video_category[v]] for v in self.video_ids], np.int64)
        durations = np.array([self.video_duration[v] for v in self.video_ids], np.float64)
        self._duration_norm = 2 * (durations - MIN_DURATION) / (MAX_DURATION - MIN_DURATION) - 1

    # ---- the model; every argument is one value or a sequence, broadcast together ----

    def click_probability(self, user_ids, video_ids, hours, weekdays, devices, regions) -> np.ndarray:
        """P(click) of each impression: the probability the log's clicks were drawn with."""
        return _sigmoid(
            self.params["click"]["bias"]
            + self.click_logit_without_bias(user_ids, video_ids, hours, weekdays, devices, regions)
        )

    def like_probability(self, user_ids, video_ids, hours, weekdays, devices, regions) -> np.ndarray:
        """P(like | click); context does not change it."""
        u, v, *_ = self._indices(user_ids, video_ids, hours, weekdays, devices, regions)
        p = self.params["like"]
        return _sigmoid(
            p["bias"] + p["interest_weight"] * self._interest(u, v) + p["quality_weight"] * self.video_quality[v]
        )

    def watch_fraction(self, user_ids, video_ids, hours, weekdays, devices, regions) -> np.ndarray:
        """Expected share of the video watched given a click (0-1); long videos are watched less on small screens."""
        u, v, _, _, d, _ = self._indices(user_ids, video_ids, hours, weekdays, devices, regions)
        p = self.params["watch"]
        logit = (
            p["bias"]
            + p["interest_weight"] * self._interest(u, v)
            + p["quality_weight"] * self.video_quality[v]
            + np.asarray(p["duration_by_device"])[d] * self._duration_norm[v]
        )
        return _sigmoid(logit)

    def click_logit_without_bias(self, user_ids, video_ids, hours, weekdays, devices, regions) -> np.ndarray:
        """The click logit less the global bias (the world calibrates the bias to a target click rate)."""
        u, v, h, w, d, r = self._indices(user_ids, video_ids, hours, weekdays, devices, regions)
        p = {key: np.asarray(value) for key, value in self.params["click"].items()}
        c = self._video_cat[v]
        return (
            self.user_bias[u]
            + p["interest_weight"] * self._interest(u, v)
            + self.video_quality[v]
            + p["hour"][c, h]
            + p["device"][c, d]
            + p["duration_by_device"][d] * self._duration_norm[v]
            + p["weekend"][c] * (w >= 5)
            + p["region"][c, r]
            + self.video_chinese_title[v] * p["chinese_title_by_region"][r]
        )

    def _interest(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.log(self.user_interest[u, self._video_cat[v]] + self.params["click"]["interest_floor"])

    def _indices(self, user_ids, video_ids, hours, weekdays, devices, regions):
        users, videos, hours, weekdays, devices, regions = np.broadcast_arrays(
            np.asarray(user_ids),
            np.asarray(video_ids),
            np.asarray(hours),
            np.asarray(weekdays),
            np.asarray(devices),
            np.asarray(regions),
        )
        hours, weekdays = hours.astype(np.int64), weekdays.astype(np.int64)
        if hours.size and (hours.min() < 0 or hours.max() > 23 or weekdays.min() < 0 or weekdays.max() > 6):
            raise ValueError("hours must be 0-23 and weekdays 0-6 (0 = Monday)")
        return (
            _lookup(self._user_index, users, "user ids (not in this world)"),
            _lookup(self._video_index, videos, "video ids (not in this world)"),
            hours,
            weekdays,
            _lookup({x: i for i, x in enumerate(self.devices)}, devices, "devices"),
            _lookup({x: i for i, x in enumerate(self.regions)}, regions, "regions"),
        )

    # ---- storage ----

    def save(self, world_dir: str | Path) -> Path:
        """Write `truth.json` into `world_dir` and return its path; floats round-trip exactly."""
        path = Path(world_dir) / TRUTH_FILE
        document = {
            "categories": self.categories,
            "devices": self.devices,
            "regions": self.regions,
            "queries": self.queries,
            "users": {
                "id": self.user_ids,
                "interest": self.user_interest.tolist(),
                "bias": self.user_bias.tolist(),
                "region": [self.user_region[u] for u in self.user_ids],
                "device": [self.user_device[u] for u in self.user_ids],
            },
            "videos": {
                "id": self.video_ids,
                "category": [self.video_category[v] for v in self.video_ids],
                "duration": [self.video_duration[v] for v in self.video_ids],
                "quality": self.video_quality.tolist(),
                "chinese_title": self.video_chinese_title.astype(int).tolist(),
            },
            "params": self.params,
        }
        path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
        return path


def load_truth(world_dir: str | Path) -> Truth:
    """The `Truth` saved in a demo world's folder."""
    document = json.loads((Path(world_dir) / TRUTH_FILE).read_text(encoding="utf-8"))
    users, videos = document["users"], document["videos"]
    return Truth(
        categories=document["categories"],
        devices=document["devices"],
        regions=document["regions"],
        user_ids=users["id"],
        user_interest=np.array(users["interest"]),
        user_bias=np.array(users["bias"]),
        user_region=dict(zip(users["id"], users["region"])),
        user_device=dict(zip(users["id"], users["device"])),
        video_ids=videos["id"],
        video_category=dict(zip(videos["id"], videos["category"])),
        video_duration=dict(zip(videos["id"], videos["duration"])),
        video_quality=np.array(videos["quality"]),
        video_chinese_title=np.array(videos["chinese_title"], bool),
        queries=document["queries"],
        params=document["params"],
    )


def truth_in(world_dir: str | Path) -> Truth | None:
    """The truth of the demo world in `world_dir`, or None when there is none (a catalog not made by the demo)."""
    return load_truth(world_dir) if (Path(world_dir) / TRUTH_FILE).is_file() else None


def _lookup(index: dict[str, int], values: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.array([index[x] for x in values.ravel().tolist()], np.int64).reshape(values.shape)
    except KeyError:
        unknown = sorted({str(x) for x in values.ravel().tolist() if x not in index})
        raise KeyError(f"unknown {what}: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}") from None


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))
