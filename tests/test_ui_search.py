"""The Search page through AppTest: by text and by an uploaded image or clip."""

from __future__ import annotations

from ui_support import app, ok, shown

from ingest.store import Store


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
