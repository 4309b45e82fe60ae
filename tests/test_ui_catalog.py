"""The Catalog page and `vidrec serve` through AppTest: counts, browsing, ingest from uploads, refusals."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from ui_support import app, ok, shown

from app.ui import uploads
from ingest.store import DataDir, Store

ROOT = Path(__file__).resolve().parent.parent
GENERATED = re.compile(r"[0-9a-f]{32}")  # an upload's generated file name


def unescaped(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


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
        [
            ("My holiday <b>clip</b>.mp4", clip, "video/mp4"),
            ("broken.mp4", b"\x00" * 4096, "video/mp4"),
            ("Empty one.MP4", b"", "video/mp4"),  # refused before the catalog: it must not vanish in the rerun
        ]
    )
    ok(at.run())
    at.button(key="ingest_upload").click()
    ok(at.run())
    assert {m.label: m.value for m in at.metric}["Videos"] == "37"  # no restart needed
    # some in, some refused: a warning (not a success), naming the refused files as they were uploaded
    assert not at.success and not at.error
    (warning,) = [unescaped(w.value) for w in at.warning if "Last ingest" in w.value]
    assert "1 new" in warning and "2 refused" in warning and "broken.mp4" in warning and "Empty one.MP4" in warning
    refused = at.dataframe[0].value
    assert list(refused["file"]) == ["Empty one.MP4", "broken.mp4"] and all(refused["reason"])
    assert "empty" in refused["reason"][0]
    store = Store(ui_data)
    new = store.db.execute("SELECT video_id, title, path FROM videos WHERE title = 'My holiday <b>clip</b>'").fetchone()
    assert new is not None and Path(new["path"]).parent == (ui_data / "uploads").resolve()
    assert len(Path(new["path"]).stem) == 32  # saved under a generated name
    (failure,) = store.failures.all()  # in the store under its generated path
    store.close()
    assert Path(failure["path"]).parent == (ui_data / "uploads").resolve()
    # the Failed files tab names the upload as uploaded: never the server's generated path
    assert at.tabs[2].label == "Failed files (1)"
    failed_tab = at.dataframe[1].value
    assert list(failed_tab["file"]) == ["broken.mp4"] and failed_tab["reason"][0] == refused["reason"][1]
    assert not GENERATED.search(warning + refused.to_string() + failed_tab.to_string())
    assert new["video_id"] in shown(at, "catalog")  # newest first
    at.text_input(key="ingest_folder").set_value(str(tmp_path / "nowhere"))
    ok(at.run())
    at.button(key="ingest_path").click()
    ok(at.run())
    assert any("There is no" in e.value for e in at.error)


def test_an_ingest_that_refuses_everything_is_an_error_and_one_that_refuses_nothing_a_success(ui_data, tmp_path):
    from media import write_clip

    at = ok(app())
    at.switch_page("views/catalog.py")
    ok(at.run())
    at.file_uploader(key="ingest_files").set_value([("junk.mp4", b"\x00" * 4096, "video/mp4")])
    ok(at.run())
    at.button(key="ingest_upload").click()
    ok(at.run())
    assert not at.success and any("0 new" in e.value and "junk" in e.value for e in at.error)
    at.file_uploader(key="ingest_files").set_value(
        [("fine.mp4", write_clip(tmp_path / "fine.mp4", n=24, seed=11).read_bytes(), "video/mp4")]
    )
    ok(at.run())
    at.button(key="ingest_upload").click()
    ok(at.run())
    assert any("1 new" in s.value and "0 refused" in s.value for s in at.success) and not at.warning


def test_refusals_name_uploads_as_uploaded(tmp_path):
    folder = tmp_path / "uploads"
    saved = uploads.save_upload(folder, "Cat video.MOV", b"x" * 10, uploads.VIDEO_EXTENSIONS)
    manifest = uploads.write_manifest(folder, [(saved, "Cat video.MOV")])
    names = uploads.original_names(folder)
    assert names == {saved.name: "Cat video.MOV"}
    assert uploads.for_the_user(str(saved), f"cannot decode {saved}", folder, names) == (
        "Cat video.MOV",
        "cannot decode Cat video.MOV",
    )
    line = uploads.for_the_user(f"{manifest}:2", f"{manifest.name} line 2: bad", folder, names)
    assert not GENERATED.search(" ".join(line))
    assert uploads.for_the_user("/srv/videos/a.mp4", "why", folder, names) == ("/srv/videos/a.mp4", "why")
    old = folder / "0123456789abcdef0123456789abcdef.csv"  # written before the name column: title + extension
    old.write_text("path,title\nfedcba9876543210fedcba9876543210.mp4,Old one\n", encoding="utf-8")
    assert uploads.original_names(folder)["fedcba9876543210fedcba9876543210.mp4"] == "Old one.mp4"
    with pytest.raises(uploads.UploadError) as refused:
        uploads.save_upload(folder, "C:\\Users\\me\\notes.txt", b"x", uploads.VIDEO_EXTENSIONS)
    assert refused.value.name == "notes.txt" and "not a supported" in refused.value.reason


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


def test_serve_sandbox_reaches_the_app_and_only_with_the_flag(ui_base, cli, monkeypatch):
    from app import serve as serve_module

    seen = []
    monkeypatch.setattr(serve_module, "_run_app", lambda port, env, address=None: seen.append(env) or 0)
    monkeypatch.setenv(serve_module.SANDBOX_VARIABLE, "1")  # one left in the shell does not count
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert cli("--data-dir", ui_base, "serve", "--port", port, "--sandbox")[0] == 0
    assert cli("--data-dir", ui_base, "serve", "--port", port)[0] == 0
    assert seen[0][serve_module.SANDBOX_VARIABLE] == "1" and serve_module.SANDBOX_VARIABLE not in seen[1]
    assert seen[0]["VIDREC_DATA_DIR"] == str(DataDir(ui_base).root) and seen[0]["VIDREC_ENGINE"] == "local"
    env = serve_module.app_environment(ui_base, "ray", sandbox=True)
    assert env["VIDREC_SANDBOX"] == "1" and env["VIDREC_ENGINE"] == "ray"


def test_the_warm_up_serves_a_catalog_without_a_model(catalog_copy, monkeypatch):
    from app import common
    from app.ui import server, state

    monkeypatch.setitem(common.options, "data_dir", None)
    monkeypatch.setenv("VIDREC_DATA_DIR", str(catalog_copy))
    line = server.warm()
    assert line.startswith(server.WARM) and "no model (no trained model" in line and "CLIP v" in line, line
    assert state.api().searcher._clip is not None  # the pages get the very object the warm-up loaded
