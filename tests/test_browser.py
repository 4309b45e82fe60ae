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

from ingest.store import Store

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


@pytest.fixture(scope="module")
def server(trained_catalog, tmp_path_factory):
    """`vidrec serve` on a copy of the trained tiny catalog (one title made hostile), as started from a shell;
    yields (url, data dir, its stderr lines up to the printed address)."""
    folder = tmp_path_factory.mktemp("served")
    data_dir = folder / "data"
    shutil.copytree(trained_catalog[0], data_dir)
    db = sqlite3.connect(data_dir / "catalog.db")
    db.execute("UPDATE videos SET title = ? WHERE video_id = (SELECT MAX(video_id) FROM videos)", (HOSTILE,))
    db.commit()
    db.close()
    port = free_port()
    log_path = folder / "serve.log"
    log = open(log_path, "w")
    child = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), "serve", "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # it loads the model and indexes before it listens
        while "vidrec web UI:" not in log_path.read_text():
            if child.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vidrec serve did not come up: {log_path.read_text()[-2000:]}")
            time.sleep(0.3)
        lines = log_path.read_text().splitlines()
        yield url, data_dir, lines[: next(i for i, line in enumerate(lines) if line.startswith("vidrec web UI:")) + 1]
    finally:
        os.killpg(child.pid, 15)
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, 9)
        log.close()


def test_serve_prints_its_address_once_the_model_and_indexes_are_loaded(server):
    """When the address appears the app has loaded the model and its index (its process said so first) and
    the server answers: the first visitor does not wait for them."""
    from app.ui.server import WARM

    url, data_dir, lines = server
    store = Store(data_dir, read_only=True)
    model_id = store.models.newest_id()
    store.close()
    loaded = [line for line in lines if line.startswith(WARM)]
    assert loaded and f"model {model_id} and its index" in loaded[0] and "CLIP v" in loaded[0], lines
    assert urllib.request.urlopen(f"{url}/_stcore/health", timeout=5).read() == b"ok"


PHONE = dict(
    viewport={"width": 390, "height": 844},
    user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1",
    is_mobile=True,
    has_touch=True,
)


def listed(page, key: str = "rec") -> list[str]:
    """The video ids of a list's cards, in order (each card's title links to its video)."""
    ids = []
    n = 0
    while page.locator(f".st-key-{key}-card-{n}").count():
        href = page.locator(f".st-key-{key}-card-{n} a").first.get_attribute("href") or ""
        ids.append(href.split("video=", 1)[1])
        n += 1
    return ids


def wait_for_list(page, before: list[str] | None = None, timeout: float = 60) -> list[str]:
    """The For you list once drawn (and, given `before`, once it differs from it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.wait_for_timeout(300)
        now = listed(page)
        if len(now) == 10 and page.get_by_text("Recommended for you").count() and now != before:
            page.wait_for_timeout(300)
            if listed(page) == now:
                return now
    raise AssertionError(f"the For you list did not {'change' if before else 'show'}")


def click_center(page, locator) -> None:
    """A click where a person would tap: on whatever is on top there (a card's link covers its thumbnail)."""
    box = locator.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def store_rows(data_dir: Path) -> dict:
    db = sqlite3.connect(data_dir / "catalog.db")
    try:
        return {
            "rows": db.execute("SELECT COUNT(*) FROM interactions").fetchone()[0],
            "users": db.execute("SELECT COUNT(DISTINCT user_id) FROM interactions").fetchone()[0],
            "devices": {r[0] for r in db.execute("SELECT DISTINCT device FROM interactions")},
            "regions": {r[0] for r in db.execute("SELECT DISTINCT region FROM interactions")},
        }
    finally:
        db.close()


def test_browse_in_a_real_browser(browser_needed, server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, data_dir, _ = server
    db = sqlite3.connect(data_dir / "catalog.db")
    user, region = db.execute(
        "SELECT user_id, region FROM interactions WHERE region IS NOT NULL "
        "GROUP BY user_id ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()
    hostile_id = db.execute("SELECT video_id FROM videos WHERE title = ?", (HOSTILE,)).fetchone()[0]
    db.close()
    untouched = store_rows(data_dir)
    dialogs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )

        # a phone: videos on the first screen; a link naming an unknown device, region and user writes nothing
        phone = browser.new_page(**PHONE)
        phone.set_default_timeout(60_000)
        phone.goto(f"{url}/?hour=21&device=tv")
        wait_for_list(phone)
        first_screen = [phone.locator(f".st-key-rec-card-{n}").bounding_box() for n in range(4)]
        assert sum(box["y"] + box["height"] <= 844 for box in first_screen) >= 2, first_screen
        phone.screenshot(path=tmp_path / "phone.png")
        phone.goto(f"{url}/?user=nobody-from-a-link&device=toaster&region=mars")
        wait_for_list(phone)
        phone.get_by_text("'toaster' is not one this catalog knows").wait_for()
        phone.get_by_text("'mars' is not one this catalog knows").wait_for()
        phone.get_by_text("'nobody-from-a-link' gets a starting list").wait_for()
        phone.close()
        assert store_rows(data_dir) == untouched

        page = browser.new_page(viewport=LAPTOP)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.set_default_timeout(60_000)

        # For you, opened by a deep link in a morning context on mobile
        page.goto(f"{url}/?user={user}&hour=8&weekday=2&device=mobile&region={region}")
        wait_for_list(page)
        assert page.get_by_text("Popular now").is_visible()
        page.screenshot(path=tmp_path / "for_you.png")

        # change the context: the TV; the address follows, one history entry
        page.get_by_test_id("stSelectbox").filter(has_text="Device").click()
        page.get_by_role("option", name="tv", exact=True).click()
        page.wait_for_url(lambda u: "device=tv" in u)
        page.get_by_text("08:00, on tv in").wait_for()  # the list is for the new context (it may not differ)
        evening = wait_for_list(page)
        page.screenshot(path=tmp_path / "for_you_tv.png")

        # open a video by its thumbnail: playback; Back returns to the same list, Forward to the video
        click_center(page, page.locator(".st-key-rec-card-0 img").first)
        page.wait_for_url(lambda u: "/video?video=" in u)
        opened = page.url
        assert opened.endswith(f"video={evening[0]}")
        page.locator("video").wait_for(state="attached")
        page.go_back()
        page.wait_for_url(lambda u: "device=tv" in u and "/video" not in u)
        assert wait_for_list(page) == evening
        page.go_forward()
        page.wait_for_url(opened)
        page.locator("video").wait_for(state="attached")
        page.get_by_role("button", name="Like").click()
        page.get_by_text("Liked: For you will show more like it.").wait_for()
        page.screenshot(path=tmp_path / "video.png")
        page.go_back()
        back = wait_for_list(page, evening)  # the like counts at once
        assert evening[0] not in back

        # a like on For you is confirmed and the card stays
        liked = back[1]
        page.locator(".st-key-rec-card-1").get_by_role("button", name="Like").click()
        page.locator(".st-key-rec-card-1").get_by_text("Liked: more like it will follow").wait_for()
        page.wait_for_timeout(500)
        assert listed(page)[1] == liked

        # a video's Up next opens the next video, Back returns to the first; Compare writes nothing
        third = listed(page)[2]
        click_center(page, page.locator(".st-key-rec-card-2 img").first)
        page.wait_for_url(lambda u: f"video={third}" in u)
        page.get_by_text("Up next").wait_for()
        click_center(page, page.locator(".st-key-similar-card-0-open").first)
        page.wait_for_url(lambda u: "/video?video=" in u and f"video={third}" not in u)
        page.locator("video").wait_for(state="attached")
        page.go_back()
        page.wait_for_url(lambda u: u.endswith(f"video={third}"))
        before_compare = store_rows(data_dir)
        page.get_by_role("link", name="Compare").click()
        page.get_by_text("In both lists").first.wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=tmp_path / "compare.png")
        assert store_rows(data_dir) == before_compare

        # text search
        page.get_by_role("link", name="Search").click()
        box = page.get_by_label("What are you looking for?")
        box.fill("penalty kick football")
        box.press("Enter")
        page.locator(".st-key-text-card-0").wait_for()
        assert "q=penalty" in page.url
        page.screenshot(path=tmp_path / "search.png")

        # a hostile title shows as typed, runs nothing, links nowhere
        page.goto(f"{url}/?video={hostile_id}")
        page.locator("video").wait_for(state="attached")
        page.get_by_role("heading", name=HOSTILE).wait_for()
        assert page.get_by_role("heading", name=HOSTILE).count() == 1
        assert page.locator('a[href^="javascript"]').count() == 0
        page.screenshot(path=tmp_path / "hostile_title.png")
        browser.close()
    assert dialogs == []
    db = sqlite3.connect(data_dir / "catalog.db")
    sources = dict(db.execute("SELECT source, COUNT(*) FROM interactions GROUP BY source").fetchall())
    likes = {r[0] for r in db.execute("SELECT video_id FROM interactions WHERE source = 'ui' AND liked = 1")}
    db.close()
    assert sources.get("ui", 0) >= 10 and likes == {evening[0], liked}  # impressions of what was shown; the likes
