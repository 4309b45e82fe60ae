"""The web UI through streamlit's AppTest (no browser): every page draws, the context and feedback act on
For you and on the store, catalog text stays text, bad uploads are refused with a message."""

from __future__ import annotations

import re
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import common
from app.ui import state, uploads
from app.ui.widgets import md
from index import browse
from index.api import Vidrec
from ingest.learning.evaluation import save_ablations
from ingest.store import Store

MAIN = Path(__file__).resolve().parent.parent / "app" / "ui" / "main.py"
EVIL = "<script>alert(1)</script> [x](javascript:alert(1)) **bold** :red[red]"


@pytest.fixture(scope="module")
def ui_base(trained_catalog, tmp_path_factory) -> Path:
    """The trained tiny catalog with one video given a hostile title. Read only: tests that write copy it."""
    data_dir = tmp_path_factory.mktemp("ui") / "data"
    shutil.copytree(trained_catalog[0], data_dir)
    db = sqlite3.connect(data_dir / "catalog.db")
    db.execute("UPDATE videos SET title = ? WHERE video_id = (SELECT MIN(video_id) FROM videos)", (EVIL,))
    db.commit()
    db.close()
    return data_dir


@pytest.fixture
def ui_data(ui_base, tmp_path, monkeypatch) -> Path:
    """A private copy that the app under test opens (as `vidrec serve` would hand it over)."""
    target = tmp_path / "data"
    shutil.copytree(ui_base, target)
    monkeypatch.setitem(common.options, "data_dir", None)  # CLI tests may have left --data-dir behind
    monkeypatch.setenv("VIDREC_DATA_DIR", str(target))
    return target


def app(**query) -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=90)
    at.query_params.update({k: str(v) for k, v in query.items()})
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at: AppTest, prefix: str = "rec") -> list[str]:
    """The video ids of one grid, in order (each card's Watch button is keyed by its video id)."""
    return [b.key.split(f"{prefix}-open-", 1)[1] for b in at.button if b.key and b.key.startswith(f"{prefix}-open-")]


def user_and_region(data_dir: Path) -> tuple[str, str]:
    store = Store(data_dir)
    user = store.interactions.users()[0]
    region = browse.context_choices(store)["region"][0]
    store.close()
    return user, region


def ui_rows(data_dir: Path, user: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(data_dir / "catalog.db")
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM interactions WHERE user_id = ? AND source = 'ui'", (user,)).fetchall()
    finally:
        db.close()


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
    assert liked not in after and skipped not in after  # the session's history and exclusions apply at once
    store = Store(ui_data)
    title = store.videos.get(liked).title
    store.close()
    assert any(f"like “{md(title)}” you watched" in m.value for m in at.markdown)  # re-ranked on the new history
    rows = {r["video_id"]: r for r in ui_rows(ui_data, user)}
    assert (rows[liked]["clicked"], rows[liked]["liked"]) == (1, 1)
    assert rows[skipped]["clicked"] == 0
    assert (rows[liked]["hour"], rows[liked]["weekday"], rows[liked]["device"]) == (20, 5, "tv")
    assert at.session_state["sessions"][user].skipped == [skipped]


def test_bad_link_values_are_reported_and_defaults_apply(ui_data):
    at = ok(app(user="someone-new", hour=99, weekday="Sat"))
    assert any("hour must be 0" in w.value for w in at.warning)
    assert at.selectbox(key="fy_weekday").value == 5
    assert len(shown(at)) == 10  # an unknown user gets a cold-start list


def test_for_you_without_a_model_says_what_to_do(tuned_catalog, tmp_path, monkeypatch):
    target = tmp_path / "data"
    shutil.copytree(tuned_catalog[0], target)
    monkeypatch.setitem(common.options, "data_dir", None)
    monkeypatch.setenv("VIDREC_DATA_DIR", str(target))
    at = ok(app())
    assert any("no trained model: run `vidrec train`" in w.value for w in at.warning)
    assert shown(at, "pop") or any("Nothing to show" in i.value for i in at.info)


# ---- Video ------------------------------------------------------------------------------------------------
def test_video_link_opens_the_video_and_its_actions_record_interactions(ui_data):
    store = Store(ui_data)
    video_id = [r.video_id for r in store.videos.all() if r.category][3]
    category = store.videos.get(video_id).category
    store.close()
    at = ok(app(video=video_id))
    assert [h.value for h in at.subheader][:2] == ["Similar videos", f"More {md(category)}"]
    assert len(at.get("video")) == 1  # playback of the file
    assert 0 < len(shown(at, "similar")) <= 10 and video_id not in shown(at, "similar")
    assert shown(at, "more")
    at.button(key="act-like").click()
    ok(at.run())
    visitor = at.session_state["visitor_id"]  # no user chosen: a new visitor of this session
    rows = {r["video_id"]: r for r in ui_rows(ui_data, visitor)}
    assert (rows[video_id]["clicked"], rows[video_id]["liked"]) == (1, 1)
    assert any("Liked" in s.value for s in at.success)


def test_hostile_titles_render_as_text(ui_data):
    store = Store(ui_data)
    video_id = store.db.execute("SELECT video_id FROM videos WHERE title = ?", (EVIL,)).fetchone()[0]
    store.close()
    at = ok(app(video=video_id))
    heading = next(m.value for m in at.markdown if m.value.startswith("## "))
    assert heading == "## " + md(EVIL)
    assert not re.search(r"(?<!\\)[<>\[\]()*:]", heading[3:])  # every special character escaped
    assert all(not getattr(m.proto, "allow_html", False) for m in at.markdown)


def test_md_escapes_every_markdown_and_html_special():
    assert md("<b>x</b>") == r"\<b\>x\</b\>"
    assert md("[a](javascript:alert(1))") == r"\[a\]\(javascript\:alert\(1\)\)"
    assert md("a\n\n# b", 4) == "a \\#…"
    assert md(None) == ""


def test_unknown_video_shows_an_error(ui_data):
    at = ok(app(video="no-such-video"))
    assert any("There is no video" in e.value for e in at.error)


# ---- Search -------------------------------------------------------------------------------------------------
def test_search_by_text_and_by_upload(ui_data):
    at = ok(app())
    at.switch_page("views/search.py")
    ok(at.run())
    at.text_input(key="search_text").set_value("football goal")
    ok(at.run())
    assert len(shown(at, "text")) > 0
    store = Store(ui_data)
    first = store.videos.video_ids()[0]
    thumb = store.videos.thumbnails([first])[first]
    store.close()
    at.file_uploader(key="search_file").set_value(("frame.jpg", thumb, "image/jpeg"))
    ok(at.run())
    assert len(shown(at, "file")) > 0
    assert not list((ui_data / "uploads").glob("*"))  # a query upload is not kept


def test_search_refuses_a_bad_upload_with_a_message(ui_data):
    at = ok(app())
    at.switch_page("views/search.py")
    ok(at.run())
    at.file_uploader(key="search_file").set_value(("photo.png", b"this is not an image", "image/png"))
    ok(at.run())
    assert any("neither an image nor a video" in e.value for e in at.error)
    at.text_input(key="search_text").set_value("   ")
    ok(at.run())
    assert not shown(at, "text")


# ---- Catalog ------------------------------------------------------------------------------------------------
def test_catalog_counts_browses_and_ingests_uploads(ui_data, tmp_path):
    from media import write_clip

    at = ok(app())
    at.switch_page("views/catalog.py")
    ok(at.run())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Videos"] == "36" and metrics["Failed files"] == "0"
    assert len(shown(at, "catalog")) == 18  # one page
    clip = write_clip(tmp_path / "clip.mp4", n=24, seed=7).read_bytes()
    at.file_uploader(key="ingest_files").set_value(
        [("My holiday <b>clip</b>.mp4", clip, "video/mp4"), ("broken.mp4", b"\x00" * 4096, "video/mp4")]
    )
    ok(at.run())
    at.button(key="ingest_upload").click()
    ok(at.run())
    assert {m.label: m.value for m in at.metric}["Videos"] == "37"  # no restart needed
    assert any("1 new" in s.value and "1 refused" in s.value for s in at.success)
    refused = at.dataframe[0].value
    assert list(refused["file"]) == ["broken.mp4"] and refused["reason"][0]
    store = Store(ui_data)
    new = store.db.execute("SELECT video_id, title, path FROM videos WHERE title = 'My holiday <b>clip</b>'").fetchone()
    assert new is not None and Path(new["path"]).parent == (ui_data / "uploads").resolve()
    assert len(Path(new["path"]).stem) == 32  # saved under a generated name
    assert store.failures.count() == 1
    store.close()
    assert at.tabs[2].label == "Failed files (1)" and at.dataframe[1].value["reason"][0] == refused["reason"][0]
    assert new["video_id"] in shown(at, "catalog")  # newest first
    at.text_input(key="ingest_folder").set_value(str(tmp_path / "nowhere"))
    ok(at.run())
    at.button(key="ingest_path").click()
    ok(at.run())
    assert any("There is no" in e.value for e in at.error)


def test_uploads_are_named_by_the_app_and_limited(tmp_path):
    path = uploads.save_upload(tmp_path / "uploads", "../../etc/passwd.mp4", b"x" * 10, uploads.VIDEO_EXTENSIONS)
    assert path.parent == tmp_path / "uploads" and path.suffix == ".mp4" and len(path.stem) == 32
    with pytest.raises(uploads.UploadError, match="over the"):
        uploads.save_upload(tmp_path / "uploads", "big.mp4", b"x" * 2048, uploads.VIDEO_EXTENSIONS, limit_mb=0.001)
    with pytest.raises(uploads.UploadError, match="not a supported"):
        uploads.save_upload(tmp_path / "uploads", "run.sh", b"echo", uploads.VIDEO_EXTENSIONS)
    with pytest.raises(uploads.UploadError, match="empty"):
        uploads.save_upload(tmp_path / "uploads", "a.mp4", b"", uploads.VIDEO_EXTENSIONS)


# ---- Model ----------------------------------------------------------------------------------------------------
def test_model_page_shows_the_report_and_the_map(ui_data):
    at = ok(app())
    at.switch_page("views/model.py")
    ok(at.run())
    assert [t.label for t in at.tabs] == [
        "Test metrics",
        "Ablations",
        "Training curves",
        "Experts and features",
        "Embedding map",
    ]
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


# ---- vidrec serve -------------------------------------------------------------------------------------------
def test_serve_is_safe_by_default_and_refuses_clearly(tmp_path, ui_base):
    import socket

    from app.common import Failure
    from app.serve import serve, streamlit_command

    command = " ".join(streamlit_command(8600))
    for option in (
        "--server.address 127.0.0.1",
        "--server.port 8600",
        "--server.headless true",
        "--server.enableXsrfProtection true",
        "--server.enableCORS true",
        f"--server.maxUploadSize {uploads.UPLOAD_LIMIT_MB}",
        "--browser.gatherUsageStats false",
    ):
        assert option in command
    with pytest.raises(Failure, match="no catalog"):
        serve(tmp_path / "empty")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(Failure, match="in use"):
            serve(ui_base, busy.getsockname()[1])
