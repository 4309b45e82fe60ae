"""The Video page through AppTest: a link opens it, its actions are stored, catalog text stays text."""

from __future__ import annotations

import re

from ui_support import EVIL, app, ok, shown, ui_rows

from app.ui.widgets import category_text, md
from index import browse
from index.api import Vidrec
from ingest.store import Store


# ---- Video ------------------------------------------------------------------------------------------------
def test_video_link_opens_the_video_and_its_actions_record_interactions(ui_data):
    store = Store(ui_data)
    video_id = [r.video_id for r in store.videos.all() if r.category][3]
    category = store.videos.get(video_id).category
    store.close()
    at = ok(app(video=video_id))
    assert {h.value for h in at.subheader} == {"Up next", f"More {md(category)}"}
    assert len(at.get("video")) == 1  # playback of the file
    assert 0 < len(shown(at, "similar")) <= 10 and video_id not in shown(at, "similar")
    assert shown(at, "more")
    at.button(key="act-like").click()
    ok(at.run())
    visitor = at.session_state["visitor_id"]  # no user chosen: a new visitor of this session
    rows = {r["video_id"]: r for r in ui_rows(ui_data, visitor)}
    assert (rows[video_id]["clicked"], rows[video_id]["liked"]) == (1, 1)
    assert any("Liked" in s.value for s in at.success)


def test_video_page_shows_up_next_split_into_frames_and_text_and_the_category_every_page_shows(ui_data):
    store = Store(ui_data)
    video_id = next(r.video_id for r in store.videos.all() if not r.category)  # unlabelled: the model's guess
    store.close()
    at = ok(app(video=video_id))
    assert "Up next" in [h.value for h in at.subheader]
    similar = shown(at, "similar")
    assert 0 < len(similar) <= 10 and video_id not in similar
    splits = [c.value for c in at.caption if c.value.startswith("alike in frames ")]
    assert len(splits) == len(similar)  # each with its frames and text similarity, in the list's order
    store = Store(ui_data)
    first = browse.similarity_split(store, video_id, similar[:1])[similar[0]]
    store.close()
    assert splits[0] == f"alike in frames {first['frames']:.2f} · text {first['text']:.2f}"
    vidrec = Vidrec(ui_data, read_only=True)
    wording = category_text(vidrec.categories([video_id])[video_id])
    vidrec.store.close()
    assert re.fullmatch(r".+ \(predicted, \d+%\)", wording)
    assert any(c.value.startswith(wording + " · ") for c in at.caption)  # under the player, as every page words it
    assert at.query_params == {"video": video_id}  # the page reads its address, never writes it
    at.button(key=f"similar-open-{similar[1]}").click()
    ok(at.run())
    assert at.query_params == {"video": similar[1]}  # Up next opens the video, the address with it
    assert similar[1] not in shown(at, "similar")  # its own page now


def test_hostile_titles_render_as_text(ui_data):
    store = Store(ui_data)
    video_id = store.db.execute("SELECT video_id FROM videos WHERE title = ?", (EVIL,)).fetchone()[0]
    store.close()
    at = ok(app(video=video_id))
    heading = next(m.value for m in at.markdown if m.value.startswith("## "))
    assert heading == "## " + md(EVIL)
    assert not re.search(r"(?<!\\)[<>\[\]()*:]", heading[3:])  # every special character escaped
    assert all(not getattr(m.proto, "allow_html", False) for m in at.markdown)


def test_unknown_video_shows_an_error(ui_data):
    at = ok(app(video="no-such-video"))
    assert any("There is no video" in e.value for e in at.error)
