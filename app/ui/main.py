"""The web UI's entry point (`streamlit run app/ui/main.py`, started by `vidrec serve`): page setup and
navigation. `?video=V` on the app's root shows that video's page (docs/cli.md, Web UI deep links)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # streamlit puts only this script's folder on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.ui import state  # noqa: E402
from app.ui.widgets import page_style  # noqa: E402
from ingest.store import StoreError  # noqa: E402

st.set_page_config(page_title="vidrec", page_icon="🎬", layout="wide")

PAGES = {
    "for_you": st.Page(
        "views/for_you.py", title="For you", icon=":material/recommend:", url_path="for-you", default=True
    ),
    "compare": st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    "video": st.Page("views/video.py", title="Video", icon=":material/play_circle:", url_path="video"),
    "search": st.Page("views/search.py", title="Search", icon=":material/search:", url_path="search"),
    "catalog": st.Page("views/catalog.py", title="Catalog", icon=":material/video_library:", url_path="catalog"),
    "model": st.Page("views/model.py", title="Model", icon=":material/insights:", url_path="model"),
}

page = st.navigation(list(PAGES.values()), position="top")
try:
    state.api()
except StoreError as exc:
    st.error(" ".join(str(exc).split()))
    st.stop()
page_style()
showing_video = page is PAGES["for_you"] and bool(st.query_params.get("video"))
state.note_page("video" if showing_video else next(name for name, p in PAGES.items() if p is page))
if showing_video:
    # `/?video=V` shows the video's page in place: a redirect would add a history entry that Back returns to,
    # and that would redirect again (st.navigation runs one page a run, so the page's script runs here)
    runpy.run_path(str(Path(__file__).parent / "views" / "video.py"))
else:
    page.run()
