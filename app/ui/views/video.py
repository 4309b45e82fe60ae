"""Video: playback, metadata, feedback (watched, like, skip) as the user chosen on For you, similar
videos and more from the category. `?video=V` opens it (docs/cli.md, Web UI deep links)."""

import mimetypes
from pathlib import Path

import streamlit as st

from app.ui import state
from app.ui.widgets import duration, grid, md, plural
from index import browse

vidrec = state.api()
video_id: str = st.query_params.get("video") or st.session_state.get("video") or ""
if not video_id:
    st.title("Video")
    st.info("Open a video from For you, Search or the Catalog, or enter its id.")
    typed = st.text_input("Video id", key="video_id_input").strip()
    if not typed:
        st.stop()
    video_id = typed
video = browse.video_details(vidrec.store, video_id)
if video is None:
    st.title("Video")
    st.error(f"There is no video {md(video_id, 80)} in this catalog.")
    st.stop()
st.session_state["video"] = video_id
if st.query_params.get("video") != video_id:
    st.query_params["video"] = video_id

user = state.current_user()
context = state.current_context(vidrec)


def act(action: str) -> None:
    state.record(vidrec, user, video_id, action, context)


st.markdown(f"## {md(video['title'] or video_id, 200)}")
player, about = st.columns([5, 4], gap="large")
with player:
    if video["file_exists"]:
        st.video(video["path"], format=mimetypes.guess_type(video["path"])[0] or "video/mp4")
    else:
        thumb = vidrec.store.videos.thumbnails([video_id]).get(video_id)
        if thumb:
            st.image(thumb, width="stretch")
        st.warning(f"The file is no longer at {md(video['path'], 200)}; showing its thumbnail.")
with about:
    st.caption(
        f"{md(video['category'] or 'uncategorised')} · {duration(video['duration'])} · "
        f"{video['width']}×{video['height']} {md(video['codec'])} · "
        f"{plural(video['clicks'], 'click')}, {plural(video['likes'], 'like')} from "
        f"{plural(video['impressions'], 'impression')}"
    )
    if video["description"]:
        st.markdown(md(video["description"], 1200))
    if video["tags"]:
        st.caption("Tags: " + ", ".join(md(t, 40) for t in video["tags"][:20]))
    with st.container(border=True):
        st.caption(f"As **{md(user)}** on {md(state.describe(context))} (change on For you)")
        watched, liked, skipped = st.columns(3)
        watched.button(
            "Watched", icon=":material/check:", on_click=act, args=("watched",), width="stretch", key="act-watch"
        )
        liked.button("Like", icon=":material/thumb_up:", on_click=act, args=("like",), width="stretch", key="act-like")
        skipped.button("Skip", icon=":material/block:", on_click=act, args=("skip",), width="stretch", key="act-skip")
        last = st.session_state.get("last_action")
        if last and last[1] == video_id:
            st.success(
                {
                    "watched": "Marked as watched.",
                    "like": "Liked: For you will show more like it.",
                    "skip": "Skipped: For you will leave it out.",
                }[last[0]]
            )
    with st.expander("Details"):
        st.dataframe(
            {
                "field": ["video id", "published", "added", "file", "size", "fps", "rotation"],
                "value": [
                    video_id,
                    video["published_at"] or "",
                    video["added_at"],
                    Path(video["path"]).name,
                    f"{video['size_bytes'] / 2**20:.1f} MB",
                    f"{video['fps'] or 0:g}",
                    f"{video['rotation']}°",
                ],
            },
            hide_index=True,
        )

st.subheader("Similar videos")
grid(vidrec, vidrec.similar(video_id, 10), "similar", detail=lambda i: f"similarity {i['similarity']:.2f}")
if video["category"]:
    st.subheader(f"More {md(video['category'])}")
    grid(
        vidrec,
        browse.more_from_category(vidrec.store, video_id, 5),
        "more",
        detail=lambda i: plural(i["clicks"], "click"),
    )
