"""Time to first render of the For you page (python bench/bench_ui.py [--data-dir DIR] [--sessions N]).

Measured in one run, on one catalog:
1. cold: the first session of a fresh process (loads the API object, the model and the indexes);
2. warm: each later new session (st.cache_resource holds the heavy objects), its first full render of
   For you (recommendations, popular baseline, thumbnails, impression logging), through AppTest;
3. a context change in a warm session (one rerun);
4. the share of each warm render spent in `Vidrec.recommend` (the model), the rest being the page;
5. with chromium installed: a real browser's time from navigation to the rendered list, warm server.
The catalog: DIR when given (e.g. the one `vidrec demo` made), else a generated one (120 videos, 60 users,
20,000 impressions, tiny CLIP, a model trained 3 epochs) cached under bench/.cache/ui.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import browse  # noqa: E402
from index.api import Vidrec  # noqa: E402
from ingest.store import Store  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "ui"
MAIN = ROOT / "app" / "ui" / "main.py"


def build_catalog() -> Path:
    """A mid-sized catalog with a trained model, built once."""
    data_dir = CACHE / "data"
    if (data_dir / "catalog.db").is_file() and list((data_dir / "models").glob("*/config.json")):
        return data_dir
    from app.demo import generate_world
    from ingest.interactions import import_interactions
    from ingest.learning import TrainOptions, train_and_save
    from ingest.pipeline import IngestOptions, ingest

    shutil.rmtree(CACHE, ignore_errors=True)
    world = generate_world(CACHE / "world", videos=120, users=60, impressions=20_000, seed=0, progress=False)
    store = Store(data_dir)
    ingest(store, manifest=world.manifest, options=IngestOptions(clip="tiny", progress=False))
    import_interactions(store, world.interactions)
    train_and_save(store, TrainOptions(epochs=3, progress=False))
    store.close()
    Vidrec(data_dir).refresh_indexes()
    return data_dir


def requests(data_dir: Path, n: int) -> list[dict]:
    store = Store(data_dir)
    users = store.interactions.users()[:n]
    regions = browse.context_choices(store)["region"] or [None]
    store.close()
    return [
        {
            "user": u,
            "hour": str((7 + 5 * i) % 24),
            "weekday": str(i % 7),
            "device": ("mobile", "tv", "desktop")[i % 3],
            "region": regions[i % len(regions)],
        }
        for i, u in enumerate(users)
    ]


def render(query: dict):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=300)
    at.query_params.update({k: v for k, v in query.items() if v is not None})
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    assert not at.exception, [e.value for e in at.exception]
    assert sum(1 for b in at.button if b.key and b.key.startswith("rec-open-")) == 10
    return at, seconds


def browser_seconds(data_dir: Path, query: dict, tries: int = 5) -> list[float] | None:
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), "serve", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/?" + "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
    out = []
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            for i in range(tries + 1):  # the first warms the server's caches
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                started = time.perf_counter()
                page.goto(url)
                page.get_by_role("button", name="Watch").nth(13).wait_for(timeout=300_000)  # 10 + 4 popular
                if i:
                    out.append(time.perf_counter() - started)
                page.close()
            browser.close()
    finally:
        os.killpg(child.pid, 15)
        child.wait(30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a catalog with a trained model (default: a generated one)")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    source = args.data_dir.expanduser().resolve() if args.data_dir else build_catalog()
    work = Path(tempfile.mkdtemp(prefix="bench-ui-")) / "data"  # impressions get logged: work on a copy
    shutil.copytree(source, work)
    os.environ["VIDREC_DATA_DIR"] = str(work)
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    status = Store(work).status()
    size = (status["videos"], status["users"], status["interactions"])
    queries = requests(work, args.sessions + 1)

    inside: list[float] = []  # Vidrec.recommend's own time within each render
    original = Vidrec.recommend

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            inside.append(time.perf_counter() - started)

    Vidrec.recommend = timed
    _, cold = render(queries[0])
    warm, reruns, recommend = [], [], []
    for q in queries[1:]:
        inside.clear()
        at, seconds = render(q)
        warm.append(seconds)
        recommend.append(sum(inside))
        at.slider(key="fy_hour").set_value((int(q["hour"]) + 12) % 24)
        started = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - started)
    in_browser = None if args.no_browser else browser_seconds(work, queries[1])

    med = statistics.median
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(
        f"catalog: {size[0]} videos, {size[1]} users, {size[2]} interactions "
        f"({'given' if args.data_dir else 'generated'})"
    )
    print(f"For you, cold first render (fresh process: API, model, indexes load): {cold:.2f} s")
    print(
        f"For you, warm first render of a new session (AppTest, n={len(warm)}): median {med(warm) * 1000:.0f} ms, "
        f"max {max(warm) * 1000:.0f} ms; cold/warm {cold / med(warm):.1f}x"
    )
    print(f"context change in a warm session (one rerun): median {med(reruns) * 1000:.0f} ms")
    print(
        f"of which Vidrec.recommend: median {med(recommend) * 1000:.0f} ms "
        f"({med([r / w for r, w in zip(recommend, warm)]):.0%} of the render)"
    )
    if in_browser:
        print(
            f"real browser, navigation to the rendered list, warm server (n={len(in_browser)}): "
            f"median {med(in_browser) * 1000:.0f} ms"
        )
    else:
        print("real browser: skipped (no chromium or playwright, or --no-browser)")
    shutil.rmtree(work.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
