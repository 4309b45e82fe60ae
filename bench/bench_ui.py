"""Time to first render of the For you page (python bench/bench_ui.py [--data-dir DIR] [--sessions N]
[--tries N] [--rounds N] [--before COMMIT] [--no-browser]).

Measured in one run, on one catalog:
1. cold: the first AppTest session of this process (the API object, the model and the indexes load; the
   libraries are imported already);
2. warm: each later new session (st.cache_resource holds the heavy objects), its first full render of
   For you (recommendations, popular baseline, thumbnails, impression logging), through AppTest;
3. a context change in a warm session (one rerun);
4. the share of each warm render spent in `Vidrec.recommend` (the model), the rest being the page;
5. with chromium and Playwright: the real `vidrec serve`, started afresh, in a browser launched beforehand:
   the seconds from starting the command to its printed address, from the address to the first rendered For
   you list (what the first visitor waits), and the later renders (each a new tab, a new session) on the
   warm server, with the first/warm ratio. With --before COMMIT (default: the last commit before `vidrec
   serve` loaded the catalog ahead of its first visitor) the same for that commit's `app/serve.py` over this
   tree's other code, alternating, before first.
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import browse  # noqa: E402
from index.api import Vidrec  # noqa: E402
from ingest.store import Store  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "ui"
# the For you page is drawn: the 10th recommendation's title link, and the popular list's first card
LIST_DRAWN = ('.st-key-rec-card-9 [data-testid="stPageLink"]', ".st-key-pop-card-0")
BEFORE = "e0c564f"  # `vidrec serve` printed its address at once; the first visitor's session loaded everything
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
    assert cards(at, "rec") == 10, cards(at, "rec")
    return at, seconds


def cards(at, prefix: str) -> int:
    """How many cards one list drew (containers keyed `<prefix>-card-<n>`; older pages: `<prefix>-open-<id>`
    buttons)."""
    found = set()

    def walk(node) -> None:
        key = getattr(node, "key", None) or ""
        if key.startswith(f"{prefix}-card-") and key[len(prefix) + 6 :].isdigit():
            found.add(key)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return len(found) or sum(1 for b in at.button if b.key and b.key.startswith(f"{prefix}-open-"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def before_tree(commit: str) -> Path | None:
    """A copy of this tree's product packages with `app/serve.py` as it was at `commit` and no
    `app/ui/server.py`: `vidrec serve` as it was before it loaded the catalog ahead of the first visitor, the
    rest of the code unchanged. None where git cannot show that file."""
    old = subprocess.run(["git", "show", f"{commit}:app/serve.py"], cwd=ROOT, capture_output=True, text=True)
    if old.returncode or "app.ui.server" in old.stdout:
        return None
    out = Path(tempfile.mkdtemp(prefix="bench-ui-before-"))
    for package in ("app", "index", "ingest", "models"):
        shutil.copytree(ROOT / package, out / package, ignore=shutil.ignore_patterns("__pycache__"))
    (out / "app" / "serve.py").write_text(old.stdout, encoding="utf-8")
    (out / "app" / "ui" / "server.py").unlink(missing_ok=True)
    return out


def serve_in_browser(browser, tree: Path, data_dir: Path, query: dict, tries: int) -> dict:
    """`vidrec serve` from `tree` on a free port: the seconds from starting the command to its printed
    address, then from the address to the first rendered For you list in the (already running) browser,
    navigating at once and again while the server does not answer yet; then `tries` later renders, each a new
    tab (a new session) on the warm server."""
    from playwright.sync_api import Error as PlaywrightError

    port = free_port()
    url = f"http://127.0.0.1:{port}/?" + "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
    lines: list[tuple[float, str]] = []
    address = threading.Event()
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), "serve", "--port", str(port)],
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )

    def read() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            lines.append((time.perf_counter(), line.rstrip()))
            if "vidrec web UI:" in line:
                address.set()

    threading.Thread(target=read, daemon=True).start()

    def render(page) -> float:
        begun = time.perf_counter()
        while True:
            try:
                page.goto(url, timeout=60_000)
                break
            except PlaywrightError:  # not listening yet
                if time.perf_counter() - begun > 300:
                    raise
                time.sleep(0.2)
        for drawn in LIST_DRAWN:
            page.locator(drawn).first.wait_for(timeout=300_000)
        return time.perf_counter() - begun

    try:
        if not address.wait(600):
            raise RuntimeError("no address: " + " | ".join(text for _, text in lines[-20:]))
        printed = next(at for at, text in lines if "vidrec web UI:" in text)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        first = render(page)
        page.close()
        warm = []
        for _ in range(tries):
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            warm.append(render(page))
            page.close()
    finally:
        os.killpg(child.pid, 15)
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, 9)
    loaded = [text for _, text in lines if text.startswith("vidrec: loaded")]
    return {"address": printed - started, "first": first, "warm": warm, "loaded": loaded[0] if loaded else None}


def browser_runs(data_dir: Path, query: dict, tries: int, rounds: int, before: str | None) -> list[tuple[str, dict]]:
    """[(which, serve_in_browser's figures)]: the current `vidrec serve` and, with `before`, the one of that
    commit, alternating (before first), `rounds` times each; [] without chromium or Playwright."""
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return []
    if chromium is None:
        return []
    trees = [("now", ROOT)]
    old = before_tree(before) if before else None
    if before and old is None:
        print(f"before: skipped (git cannot show app/serve.py at {before} without the preload)")
    if old is not None:
        trees.insert(0, (f"before ({before})", old))
    # the libraries' files into the page cache first, so neither side pays the disk's cold reads
    subprocess.run([sys.executable, "-c", "import app.ui.state, streamlit.web.cli"], cwd=ROOT, check=True)
    out = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            browser.new_page().close()
            for _ in range(rounds):
                for which, tree in trees:
                    out.append((which, serve_in_browser(browser, tree, data_dir, query, tries)))
            browser.close()
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a catalog with a trained model (default: a generated one)")
    parser.add_argument("--sessions", type=int, default=10, help="warm AppTest sessions")
    parser.add_argument("--tries", type=int, default=5, help="warm browser renders after the first, per server")
    parser.add_argument("--rounds", type=int, default=1, help="servers started, of each version")
    parser.add_argument("--before", default=BEFORE, help="the commit to compare with ('' for none)")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    source = args.data_dir.expanduser().resolve() if args.data_dir else build_catalog()
    work = Path(tempfile.mkdtemp(prefix="bench-ui-")) / "data"  # impressions get logged: work on a copy
    shutil.copytree(source, work)
    os.environ["VIDREC_DATA_DIR"] = str(work)
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    load_before = os.getloadavg()[0]
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
    Vidrec.recommend = original
    runs = [] if args.no_browser else browser_runs(work, queries[1], args.tries, args.rounds, args.before or None)

    med = statistics.median
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print(
        f"catalog: {size[0]} videos, {size[1]} users, {size[2]} interactions "
        f"({'given' if args.data_dir else 'generated'})"
    )
    print(f"For you, cold first AppTest render (API, model, indexes load; libraries imported): {cold:.2f} s")
    print(
        f"For you, warm first render of a new session (AppTest, n={len(warm)}): median {med(warm) * 1000:.0f} ms, "
        f"max {max(warm) * 1000:.0f} ms; cold/warm {cold / med(warm):.1f}x"
    )
    print(f"context change in a warm session (one rerun): median {med(reruns) * 1000:.0f} ms")
    print(
        f"of which Vidrec.recommend: median {med(recommend) * 1000:.0f} ms "
        f"({med([r / w for r, w in zip(recommend, warm)]):.0%} of the render)"
    )
    if not runs:
        print("real browser: skipped (no chromium or playwright, or --no-browser)")
    for which, r in runs:
        print(
            f"vidrec serve, {which}: command to address {r['address']:.1f} s; address to first For you list "
            f"{r['first']:.1f} s (command to list {r['address'] + r['first']:.1f} s); later sessions "
            f"(n={len(r['warm'])}) median {med(r['warm']):.2f} s; first/warm {r['first'] / med(r['warm']):.1f}x"
            + (f"; {r['loaded']}" if r["loaded"] else "")
        )
    shutil.rmtree(work.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
