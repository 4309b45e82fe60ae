"""The web UI through streamlit's AppTest (no browser): every page draws, the context and feedback act on
For you and on the store, catalog text stays text, bad uploads are refused with a message."""

from __future__ import annotations

import re
import shutil
import time

from ui_support import app, interaction_count, ok, shown, ui_rows, user_and_region

from app import common
from app.ui import state
from app.ui.widgets import md
from index import browse
from index.api import Vidrec
from ingest.learning.evaluation import save_ablations
from ingest.store import Store


# ---- For you ----------------------------------------------------------------------------------------------
def test_for_you_follows_the_link_and_the_context_and_logs_impressions(ui_data):
    user, region = user_and_region(ui_data)
    at = ok(app(user=user, hour=8, weekday=2, device="mobile", region=region))
    assert [s.label for s in at.selectbox] == ["User", "Weekday", "Device", "Region"]
    assert at.selectbox(key="fy_user").value == user and at.slider(key="fy_hour").value == 8
    assert at.selectbox(key="fy_weekday").value == 2 and at.selectbox(key="fy_device").value == "mobile"
    morning = shown(at)
    assert len(morning) == 10 and len(shown(at, "pop")) > 0
    morning_text = [c.value for c in at.caption]
    counts = [c for c in morning_text if re.search(r" · [\d,]+ clicks?$", c)]  # popular: whole clicks, plurals right
    assert len(counts) == len(shown(at, "pop")) and not any(re.search(r"\b1 clicks|\.\d+ clicks", c) for c in counts)

    time.sleep(1.1)  # an impression is keyed by (user, video, second): a person takes longer than that to change
    at.selectbox(key="fy_device").set_value("tv")
    at.slider(key="fy_hour").set_value(21)
    ok(at.run())
    assert at.query_params["device"] == "tv" and at.query_params["hour"] == "21"  # the URL follows, to share
    assert (shown(at), [c.value for c in at.caption]) != (morning, morning_text)
    rows = ui_rows(ui_data, user)
    assert {(r["hour"], r["weekday"], r["device"], r["region"]) for r in rows} >= {
        (8, 2, "mobile", region),
        (21, 2, "tv", region),
    }
    assert {r["video_id"] for r in rows if r["device"] == "mobile"} >= set(morning)
    assert not any(r["clicked"] for r in rows)

    usual = Vidrec(ui_data, read_only=True).context  # someone who usually watches on another device than tv
    other = next(u for u in at.selectbox(key="fy_user").options[1:] if u != user and usual(u).device != "tv")
    at.selectbox(key="fy_user").set_value(other)
    ok(at.run())
    assert at.selectbox(key="fy_device").value == "tv" and at.slider(key="fy_hour").value == 21  # kept as chosen


def test_likes_and_skips_count_at_once_and_are_stored(ui_data):
    user, region = user_and_region(ui_data)
    at = ok(app(user=user, hour=20, weekday=5, device="tv", region=region))
    before = shown(at)
    liked, skipped = before[0], before[1]
    at.button(key=f"rec-like-{liked}").click()
    ok(at.run())
    at.button(key=f"rec-skip-{skipped}").click()
    ok(at.run())
    after = shown(at)
    assert skipped not in after and len(after) == 10  # the session's exclusions apply at once
    assert after[0] == liked  # the liked card stays in its place, confirmed instead of its buttons
    assert any("Liked" in s.value for s in at.success) and not [b for b in at.button if b.key == f"rec-like-{liked}"]
    store = Store(ui_data)
    title = store.videos.get(liked).title
    store.close()
    assert any(f"like “{md(title)}” you watched" in m.value for m in at.markdown)  # re-ranked on the new history
    rows = {r["video_id"]: r for r in ui_rows(ui_data, user)}
    assert (rows[liked]["clicked"], rows[liked]["liked"]) == (1, 1)
    assert rows[skipped]["clicked"] == 0
    assert (rows[liked]["hour"], rows[liked]["weekday"], rows[liked]["device"]) == (20, 5, "tv")
    assert at.session_state["sessions"][user].skipped == [skipped]


def test_coming_back_to_for_you_from_the_menu_keeps_the_choice(ui_data):
    user, region = user_and_region(ui_data)
    at = ok(app(user=user, hour=21, weekday=4, device="tv", region=region))
    before = shown(at)
    at.switch_page("views/search.py")
    ok(at.run())
    at.query_params.clear()  # the navigation menu's link carries no parameters
    at.switch_page("views/for_you.py")
    ok(at.run())
    assert at.selectbox(key="fy_user").value == user and at.selectbox(key="fy_device").value == "tv"
    assert shown(at) == before and not at.query_params  # the same view, and no history entry of its own
    at.slider(key="fy_hour").set_value(8)
    ok(at.run())
    assert at.query_params["device"] == "tv" and at.query_params["hour"] == "8"  # a change writes it all


def test_bad_link_values_are_reported_and_defaults_apply(ui_data):
    before = interaction_count(ui_data)
    at = ok(app(user="someone-new", hour=99, weekday="Sat", device="toaster", region="mars"))
    warnings = [w.value for w in at.warning]
    assert any("hour must be 0" in w for w in warnings)
    assert any("toaster" in w and "not one this catalog knows" in w for w in warnings)
    assert any("mars" in w and "not one this catalog knows" in w for w in warnings)
    assert any("someone\\-new" in i.value and "nothing is kept" in i.value for i in at.info)
    assert at.selectbox(key="fy_weekday").value == 5
    assert "toaster" not in at.selectbox(key="fy_device").options  # not offered to anyone
    assert "mars" not in at.selectbox(key="fy_region").options
    assert len(shown(at)) == 10  # an unknown user gets a cold-start list
    assert interaction_count(ui_data) == before  # a link alone writes nothing
    at.button(key=f"rec-like-{shown(at)[0]}").click()
    ok(at.run())
    rows = ui_rows(ui_data, "someone-new")  # acting is what makes them someone the catalog keeps
    assert [r["video_id"] for r in rows if r["liked"]] == [shown(at)[0]] and all(r["device"] != "toaster" for r in rows)


def test_a_visitor_leaves_no_trace_until_they_act_and_a_sandbox_never(ui_data, monkeypatch):
    before = interaction_count(ui_data)
    at = ok(app(hour=3))
    visitor = at.session_state["visitor_id"]
    time.sleep(1.1)
    at.slider(key="fy_hour").set_value(7)
    ok(at.run())
    assert interaction_count(ui_data) == before  # two views, no impressions: a visit is not data
    first = shown(at)[0]
    at.button(key=f"rec-like-{first}").click()
    ok(at.run())
    rows = ui_rows(ui_data, visitor)
    assert [r["video_id"] for r in rows if r["liked"]] == [first]
    assert len(rows) > 1 and {r["hour"] for r in rows} == {7}  # what they are shown counts from now on, not before

    monkeypatch.setenv(state.SANDBOX_VARIABLE, "1")
    user, region = user_and_region(ui_data)
    before = interaction_count(ui_data)
    at = ok(app(user=user, hour=20, weekday=5, device="tv", region=region))
    liked = shown(at)[0]
    at.button(key=f"rec-like-{liked}").click()
    ok(at.run())
    assert any("Sandbox" in c.value for c in at.caption)
    assert at.session_state["sessions"][user].liked == [liked]  # it counts in the session
    assert interaction_count(ui_data) == before  # and nowhere else


def test_for_you_without_a_model_says_what_to_do(tuned_catalog, tmp_path, monkeypatch):
    target = tmp_path / "data"
    shutil.copytree(tuned_catalog[0], target)
    monkeypatch.setitem(common.options, "data_dir", None)
    monkeypatch.setenv("VIDREC_DATA_DIR", str(target))
    at = ok(app())
    assert any("no trained model: run `vidrec train`" in w.value for w in at.warning)
    assert shown(at, "pop") or any("Nothing to show" in i.value for i in at.info)


# ---- Model ----------------------------------------------------------------------------------------------------
def test_model_page_shows_the_report_and_the_map(ui_data):
    at = ok(app())
    at.switch_page("views/model.py")
    ok(at.run())
    assert [t.label for t in at.tabs] == ["Metrics", "Ablations", "Curves", "Experts", "Map"]
    assert "click AUC" in [m.label for m in at.metric]
    assert any(re.fullmatch(r"Best \(kept\) epoch: \d+", c.value) for c in at.caption)  # a number, not "all 8"
    assert not any(t.label == "Ablations" and t.dataframe for t in at.tabs)  # none saved yet: a hint instead
    charts = at.get("vega_lite_chart")
    assert len(charts) >= 4  # curves (loss, validation), experts, gates, importance, map
    report = browse.model_report(Store(ui_data))
    assert report["metrics"] and report["curves"] and report["gates"] and report["importance"]
    points = browse.embedding_map(Store(ui_data))
    assert len(points) == 36 and {"x", "y", "category", "title"} <= set(points[0])
    table = [{"name": "mmoe", "task": "click", "metric": "auc", "value": 0.8, "delta_vs_single_task": 0.01}]
    save_ablations(Store(ui_data), table)  # what `vidrec eval --ablations` leaves
    at.switch_page("views/model.py")
    ok(at.run())
    ablation_tab = next(t for t in at.tabs if t.label == "Ablations")
    assert ablation_tab.dataframe and ablation_tab.dataframe[0].value["name"].tolist() == ["mmoe"]


# ---- the link parser --------------------------------------------------------------------------------------
def test_parse_link():
    values, problems = state.parse_link({"user": " u1 ", "hour": "7", "weekday": "sun", "device": "tv", "region": ""})
    assert values == {"user": "u1", "hour": 7, "weekday": 6, "device": "tv"} and not problems
    values, problems = state.parse_link({"hour": "24", "weekday": "x"})
    assert values == {} and len(problems) == 2


# ---- escaping ----
def test_md_escapes_every_markdown_and_html_special():
    assert md("<b>x</b>") == r"\<b\>x\</b\>"
    assert md("[a](javascript:alert(1))") == r"\[a\]\(javascript\:alert\(1\)\)"
    assert md("a\n\n# b", 4) == "a \\#…"
    assert md(None) == ""


# ---- one category wording --------------------------------------------------------------------------------------
def test_a_predicted_category_reads_the_same_on_every_page(ui_data):
    from app.ui.widgets import category_text
    from ingest.store import UNLABELLED

    vidrec = Vidrec(ui_data, read_only=True)
    unlabelled = [v.video_id for v in vidrec.store.videos.all() if not v.category]
    info = vidrec.categories(unlabelled)
    video_id = next(v for v in unlabelled if info[v]["predicted"])
    title = vidrec.store.videos.get(video_id).title
    expected = category_text(info[video_id])
    assert "(predicted, " in expected

    def texts(at) -> list[str]:
        return [c.value for c in at.caption] + [m.value for m in at.markdown]

    at = ok(app(video=video_id))
    assert any(expected in t for t in texts(at)), texts(at)  # the video page
    at.switch_page("views/catalog.py")
    ok(at.run())
    at.selectbox(key="browse_category").set_value(UNLABELLED)
    ok(at.run())
    assert video_id in shown(at, "catalog") and expected in [c.value for c in at.caption]  # its card
    at.switch_page("views/search.py")
    ok(at.run())
    at.text_input(key="search_text").set_value(title)
    ok(at.run())
    assert video_id in shown(at, "text") and any(t.startswith(expected) for t in texts(at))  # a search result
