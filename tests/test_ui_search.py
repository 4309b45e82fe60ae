"""The Search page through AppTest: by text and by an uploaded image or clip."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest
from ui_support import app, ok, shown

from app.ui.widgets import duration, md
from index.search import MAX_QUERY_CHARS
from ingest.store import Store


# ---- Search -------------------------------------------------------------------------------------------------
def search_page() -> AppTest:
    """The app opened on the Search page, as a visitor would reach it from the menu."""
    at = ok(app())
    at.switch_page("views/search.py")
    return ok(at.run())


def test_search_by_text_and_by_upload(ui_data):
    at = search_page()
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
    at = search_page()
    at.file_uploader(key="search_file").set_value(("photo.png", b"this is not an image", "image/png"))
    ok(at.run())
    assert any("neither an image nor a video" in e.value for e in at.error)
    at.text_input(key="search_text").set_value("   ")
    ok(at.run())
    assert not shown(at, "text")


def _cards(at, prefix: str) -> list[list[str]]:
    """The captions of each card of one list, in order."""
    found: list[tuple[int, list[str]]] = []

    def walk(node) -> None:
        key = getattr(node, "key", None) or ""
        if key.startswith(f"{prefix}-card-") and key[len(prefix) + 6 :].isdigit():
            found.append((int(key[len(prefix) + 6 :]), [c.value for c in node.get("caption")]))
            return
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return [captions for _, captions in sorted(found)]


def test_a_long_query_is_searched_and_a_longer_one_is_refused_with_a_message(ui_data):
    at = search_page()
    words = "football goal highlights from the stadium "
    at.text_input(key="search_text").input((words * 60)[:MAX_QUERY_CHARS])  # as pasted: the box takes it
    ok(at.run())
    assert len(shown(at, "text")) > 0
    at.text_input(key="search_text").input(words * 60)
    ok(at.run())
    assert not shown(at, "text")
    assert any(f"at most {MAX_QUERY_CHARS:,}" in w.value for w in at.warning)


def test_a_query_with_no_close_match_says_so_and_a_category_does_not(ui_data):
    at = search_page()
    at.text_input(key="search_text").input("zzzzqqq")
    ok(at.run())
    assert shown(at, "text")  # still the nearest videos
    assert any("No close match for" in i.value for i in at.info)
    at.text_input(key="search_text").input("football")
    ok(at.run())
    assert shown(at, "text") and not any("No close match" in i.value for i in at.info)
    assert any("weak match" not in " ".join(c) for c in _cards(at, "text"))


def test_the_query_is_in_the_address(ui_data):
    at = app(q="football")  # /search?q=football, opened from a link
    at.switch_page("views/search.py")
    ok(at.run())
    assert at.text_input(key="search_text").value == "football"
    first = shown(at, "text")
    assert first
    at.text_input(key="search_text").input("  a cosy   kitchen ")
    ok(at.run())
    assert at.query_params["q"] == "a cosy kitchen"
    assert shown(at, "text") != first
    at.query_params["q"] = "football"  # Back: the address changes under the page
    ok(at.run())
    assert at.text_input(key="search_text").value == "football" and shown(at, "text") == first
    at.text_input(key="search_text").input("")
    ok(at.run())
    assert "q" not in at.query_params and not shown(at, "text")


def test_results_show_category_and_duration(ui_data):
    at = ok(app(q="cooking"))
    at.switch_page("views/search.py")
    ok(at.run())
    ids = shown(at, "text")
    store = Store(ui_data)
    durations = store.videos.durations(ids)
    categories = store.videos.categories(ids)
    store.close()
    cards = _cards(at, "text")
    assert len(cards) == len(ids) > 0
    for video_id, captions in zip(ids, cards):
        text = " ".join(captions)
        assert duration(durations[video_id]) in text
        label = categories[video_id]
        assert (md(label) in text) if label else ("predicted" in text or "uncategorised" in text), text
