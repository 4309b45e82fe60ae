"""What the UI's feedback means, on the read path: which shown items count as impressions, what a watch,
a like or a skip does to an impression's outcome, and how a session's feedback becomes history at once
(before any retraining). The UI keeps layout and session state; the writes are the store's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ingest.store import UI_SOURCE, Interaction, Outcome, Store
from models.context import Context

FEEDBACK = ("watched", "like", "skip")


def check_action(action: str) -> None:
    """ValueError for anything but watched, like or skip."""
    if action not in FEEDBACK:
        raise ValueError(f"feedback must be one of {', '.join(FEEDBACK)}, not {action!r}")


def outcome_after(action: str, previous: Outcome, watch_seconds: float | None = None) -> Outcome:
    """watched: a click; like: a click and a like; skip: the impression stays unclicked (an explicit negative
    for the next training). Watching again keeps an earlier like."""
    check_action(action)
    if action == "skip":
        return previous
    liked = 1 if action == "like" else (previous.liked or 0)
    return Outcome(1, liked, watch_seconds if watch_seconds is not None else previous.watch_seconds)


def impression(user_id: str, video_id: str, context: Context, ts: int) -> Interaction:
    """An impression shown in the UI in the chosen context, not clicked (yet)."""
    return Interaction(
        user_id, video_id, ts, 0, context.hour, context.weekday, context.device, context.region, 0, None, None
    )


def log_impressions(
    store: Store, user_id: str, video_ids: list[str], context: Context, when: float | None = None
) -> int:
    """What the UI showed, as impressions in the chosen context; feedback later marks the outcome. Returns
    the impressions' timestamp."""
    ts = int(when if when is not None else time.time())
    with store.transaction():  # a video removed since it was shown is left out, not an error
        known = store.videos.titles(video_ids)
        store.interactions.add([impression(user_id, v, context, ts) for v in video_ids if v in known], UI_SOURCE)
    return ts


def record_feedback(
    store: Store,
    user_id: str,
    video_id: str,
    action: str,
    context: Context,
    watch_seconds: float | None = None,
    when: float | None = None,
) -> Outcome:
    """Mark the outcome of the user's latest UI impression of this video (logging one if there is none)."""
    check_action(action)
    shown = impression(user_id, video_id, context, int(when if when is not None else time.time()))
    with store.transaction():
        if store.videos.get(video_id) is None:
            raise ValueError(f"unknown video_id {video_id!r}")
        return store.interactions.update_latest(
            shown, UI_SOURCE, lambda previous: outcome_after(action, previous, watch_seconds)
        )


@dataclass
class SessionFeedback:
    """One user's feedback in one browser session: watched and liked videos count as history at once
    (latest last), skipped ones are left out of the lists."""

    history: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    liked: list[str] = field(default_factory=list)

    def apply(self, action: str, video_id: str) -> None:
        check_action(action)
        for seen in (self.history, self.skipped):
            if video_id in seen:
                seen.remove(video_id)
        if action == "skip":
            self.skipped.append(video_id)
            return
        self.history.append(video_id)
        if action == "like" and video_id not in self.liked:
            self.liked.append(video_id)

    def reset(self) -> None:
        """Forget this session's feedback (what was stored stays stored)."""
        self.history.clear()
        self.skipped.clear()
        self.liked.clear()

    @property
    def empty(self) -> bool:
        return not (self.history or self.skipped)


@dataclass
class ShownLists:
    """Which shown lists have been logged as impressions: a list counts once per (user, context, list), not on
    every rerun of the page that shows it."""

    logged: set = field(default_factory=set)

    def first_time(self, user_id: str, context: Context, video_ids: list[str]) -> bool:
        key = (user_id, context, tuple(video_ids))
        if not video_ids or key in self.logged:
            return False
        self.logged.add(key)
        return True
