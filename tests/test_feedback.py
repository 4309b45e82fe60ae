"""The UI's feedback policy (index/feedback.py): what a watch, a like or a skip does to an impression, how a
session's feedback becomes history at once, and which shown lists count as impressions."""

from __future__ import annotations

import pytest

from index.feedback import FEEDBACK, SessionFeedback, ShownLists, outcome_after
from ingest.store import Outcome
from models.context import Context

pytestmark = pytest.mark.unit

SHOWN = Outcome(clicked=0, liked=None, watch_seconds=None)


def test_watch_and_like_are_clicks_and_a_skip_leaves_the_impression_unclicked():
    assert outcome_after("watched", SHOWN) == Outcome(1, 0, None)
    assert outcome_after("like", SHOWN, watch_seconds=12.0) == Outcome(1, 1, 12.0)
    assert outcome_after("skip", SHOWN) == SHOWN  # an explicit negative for the next training
    assert outcome_after("watched", Outcome(1, 1, 30.0)) == Outcome(1, 1, 30.0)  # watching again keeps the like
    with pytest.raises(ValueError, match="feedback must be one of"):
        outcome_after("love", SHOWN)


def test_a_session_counts_watches_and_likes_as_history_and_leaves_skips_out():
    session = SessionFeedback()
    for action, video in (("watched", "a"), ("like", "b"), ("skip", "c"), ("like", "b")):
        session.apply(action, video)
    assert session.history == ["a", "b"] and session.liked == ["b"] and session.skipped == ["c"]
    session.apply("watched", "c")  # changed their mind: no longer skipped, now history
    assert session.skipped == [] and session.history == ["a", "b", "c"]
    session.apply("skip", "a")
    assert session.history == ["b", "c"] and session.skipped == ["a"] and not session.empty
    session.reset()
    assert session.empty and session.liked == []
    assert set(FEEDBACK) == {"watched", "like", "skip"}


def test_a_shown_list_counts_once_per_user_and_context():
    shown = ShownLists()
    evening = Context(hour=20, weekday=4, device="tv", region="eu")
    assert shown.first_time("u1", evening, ["v1", "v2"])
    assert not shown.first_time("u1", evening, ["v1", "v2"])  # the page ran again: not new impressions
    assert shown.first_time("u1", Context(hour=8, weekday=4, device="tv", region="eu"), ["v1", "v2"])
    assert shown.first_time("u2", evening, ["v1", "v2"]) and shown.first_time("u1", evening, ["v2", "v1"])
    assert not shown.first_time("u1", evening, [])  # nothing shown, nothing logged
