"""End to end in a real browser: `vidrec serve` on a free port, driven by Playwright's chromium.

Skipped, with the reason, where chromium or Playwright is missing; a failure instead when
VIDREC_REQUIRE_BROWSER=1 (CI sets it after installing Debian's chromium). Screenshots of each page are
saved in the test's temporary folder (a laptop-sized window).
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
HOSTILE = "<script>alert(1)</script> [click](javascript:alert(2))"
LAPTOP = {"width": 1440, "height": 900}


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if CHROMIUM is None:
        return "no chromium installed (apt-get install chromium)"
    return None


@pytest.fixture
def browser_needed():
    reason = _missing()
    if reason:
        if os.environ.get("VIDREC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"VIDREC_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(browser_needed, trained_catalog, tmp_path):
    """`vidrec serve` on a copy of the trained tiny catalog (one title made hostile); yields (url, data dir)."""
    data_dir = tmp_path / "data"
    shutil.copytree(trained_catalog[0], data_dir)
    db = sqlite3.connect(data_dir / "catalog.db")
    db.execute("UPDATE videos SET title = ? WHERE video_id = (SELECT MAX(video_id) FROM videos)", (HOSTILE,))
    db.commit()
    db.close()
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    child = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), "serve", "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if child.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vidrec serve did not come up: {(tmp_path / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url, data_dir
    finally:
        os.killpg(child.pid, 15)
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, 9)
        log.close()


def captions(page) -> list[str]:
    return page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()


def wait_for_change(page, before: list[str], timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.wait_for_timeout(300)
        now = captions(page)
        if now != before and page.get_by_text("Recommended for you").count():
            return now
    raise AssertionError("the For you list did not change")


def test_browse_in_a_real_browser(server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, data_dir = server
    db = sqlite3.connect(data_dir / "catalog.db")
    user, region = db.execute(
        "SELECT user_id, region FROM interactions WHERE region IS NOT NULL "
        "GROUP BY user_id ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()
    hostile_id = db.execute("SELECT video_id FROM videos WHERE title = ?", (HOSTILE,)).fetchone()[0]
    db.close()
    dialogs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport=LAPTOP)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.set_default_timeout(60_000)

        # For you, opened by a deep link in a morning context on mobile
        page.goto(f"{url}/?user={user}&hour=8&weekday=2&device=mobile&region={region}")
        page.get_by_text("Recommended for you").wait_for()
        page.get_by_role("button", name="Watch").first.wait_for()
        page.wait_for_timeout(500)
        assert page.get_by_text("Popular now").is_visible()
        page.screenshot(path=tmp_path / "for_you.png")
        before = captions(page)

        # change the context: the TV in the evening
        page.get_by_test_id("stSelectbox").filter(has_text="Device").click()
        page.get_by_role("option", name="tv", exact=True).click()
        wait_for_change(page, before)
        assert "device=tv" in page.url
        page.wait_for_timeout(500)
        page.screenshot(path=tmp_path / "for_you_tv.png")

        # open a video from the list: playback and similar videos
        page.get_by_role("button", name="Watch").first.click()
        page.get_by_text("Similar videos").wait_for()
        page.get_by_text("similarity").first.wait_for()
        page.locator("video").wait_for(state="attached")
        assert "video=" in page.url
        page.get_by_role("button", name="Like").click()
        page.get_by_text("Liked: For you will show more like it.").wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=tmp_path / "video.png")

        # text search
        page.get_by_role("link", name="Search").click()
        box = page.get_by_label("What are you looking for?")
        box.fill("penalty kick football")
        box.press("Enter")
        page.get_by_text("videos closest to the text").wait_for()
        page.get_by_role("button", name="Watch").first.wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=tmp_path / "search.png")

        # a hostile title shows as typed, runs nothing, links nowhere
        page.goto(f"{url}/?video={hostile_id}")
        page.get_by_text("Similar videos").wait_for()
        page.wait_for_timeout(500)
        assert page.get_by_role("heading", name=HOSTILE).count() == 1
        assert page.locator('a[href^="javascript"]').count() == 0
        page.screenshot(path=tmp_path / "hostile_title.png")
        browser.close()
    assert dialogs == []
    db = sqlite3.connect(data_dir / "catalog.db")
    sources = dict(db.execute("SELECT source, COUNT(*) FROM interactions GROUP BY source").fetchall())
    liked = db.execute("SELECT COUNT(*) FROM interactions WHERE source = 'ui' AND liked = 1").fetchone()[0]
    db.close()
    assert sources.get("ui", 0) >= 10 and liked == 1  # impressions of what was shown, and the like
