"""The Compare page through AppTest: one user in two contexts side by side, what moved and the overlaps; its
address holds its choices; it records nothing."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest
from ui_support import app, interaction_count, ok, shown, user_and_region

from index import browse
from ingest.store import Store

COMPARE = "views/compare.py"


def compare(at: AppTest, **query) -> AppTest:
    """Go to Compare with these query parameters only (as its link would)."""
    at.query_params.clear()
    at.query_params.update({k: str(v) for k, v in query.items()})
    return ok(at.switch_page(COMPARE).run())


def test_compare_shows_one_user_in_two_contexts_with_what_moved_and_records_nothing(ui_data):
    user, _ = user_and_region(ui_data)
    at = ok(app(user=user))  # For you, with the user chosen there (it logs what it shows)
    before = interaction_count(ui_data)
    compare(at)
    assert at.selectbox(key="cmp_user").value == user  # the user chosen on For you
    assert (at.slider(key="cmp_a_hour").value, at.selectbox(key="cmp_a_device").value) == (8, "mobile")
    assert (at.slider(key="cmp_b_hour").value, at.selectbox(key="cmp_b_device").value) == (21, "tv")
    a, b = shown(at, "cmp-a"), shown(at, "cmp-b")
    assert len(a) == len(b) == 10 and a != b
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["In both lists"] == f"{len(set(a) & set(b))} of 10"
    for side in "AB":
        assert re.fullmatch(r"\d+ of 10", metrics[f"{side} also popular now"])
    badges = " ".join(m.value for m in at.markdown)
    assert badges.count("new in B") == len(set(b) - set(a))
    assert badges.count("gone from B") == len(set(a) - set(b))
    assert any("nothing on this page is recorded" in c.value for c in at.caption)
    assert not at.query_params  # a visit alone does not rewrite the address
    at.selectbox(key="cmp_b_device").set_value("desktop")
    ok(at.run())
    assert at.query_params["user"] == user  # a choice made: the address holds them all, to share
    assert at.query_params["a"].startswith("8,1,mobile,") and at.query_params["b"].startswith("21,5,desktop,")
    assert len(shown(at, "cmp-b")) == 10
    assert interaction_count(ui_data) == before  # no impressions, nothing


def test_a_link_with_an_unknown_device_and_user_is_refused_with_a_note(ui_data):
    _, region = user_and_region(ui_data)
    store = Store(ui_data)
    devices = browse.context_choices(store)["device"]
    store.close()
    at = ok(app())
    before = interaction_count(ui_data)
    at = compare(at, user="someone-new", a=f"7,sat,toaster,{region}", b="25,5,tv")
    warnings = " ".join(w.value for w in at.warning)
    assert "toaster" in warnings and "25" in warnings  # refused, each with a note
    assert at.selectbox(key="cmp_a_device").value == "mobile" and "mobile" in devices  # the default instead
    assert (at.slider(key="cmp_a_hour").value, at.selectbox(key="cmp_a_weekday").value) == (7, 5)
    assert (at.slider(key="cmp_b_hour").value, at.selectbox(key="cmp_b_device").value) == (21, "tv")
    at.slider(key="cmp_b_hour").set_value(22)
    ok(at.run())
    assert at.query_params["a"] == f"7,5,mobile,{region}" and at.query_params["b"].startswith("22,5,tv,")
    assert any("no history" in i.value for i in at.info)  # a new visitor's starting lists
    assert shown(at, "cmp-a") and shown(at, "cmp-b")
    assert interaction_count(ui_data) == before
