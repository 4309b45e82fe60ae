"""The Catalog page and `vidrec serve` through AppTest: counts, browsing, ingest from uploads, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_support import app, ok, shown

from app.ui import uploads
from ingest.store import Store


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
