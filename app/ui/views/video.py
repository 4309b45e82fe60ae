"""Video: the page video sites have taught everyone. The player (at most a 16:9 box, not the whole width of a
wide screen) with the title, metadata and actions under it, the description and more from the category
below; on the right, "Up next": similar videos, each with how alike it is in its frames and in its text.
Watched, Like and Skip are recorded as the user chosen on For you, in the context chosen there.

`?video=V` opens it (docs/cli.md, Web UI deep links); the page reads its address and never writes it (Back
and Forward belong to the browser); Up next opens another video through `open_video`."""

import mimetypes
from pathlib import Path

import streamlit as st

from app.ui import state
from app.ui.widgets import category_text, compact_list, duration, grid, md, open_video, plural
from index import browse

UP_NEXT = 10
BOX = (960, 540)  # the player's box in pixels, 16:9: a tall video is narrowed to fit its height
CONFIRMATIONS = {
    "watched": "Marked as watched.",
    "like": "Liked: For you will show more like it.",
    "skip": "Skipped: For you will leave it out.",
}

vidrec = state.api()
video_id: str = st.query_params.get("video") or ""
if not video_id:
    st.title("Video")
    st.info("Open a video from For you, Search or the Catalog, or enter its id.")
    typed = st.text_input("Video id", key="video_id_input").strip()
    if typed:
        open_video(typed)
    st.stop()
video = browse.video_details(vidrec.store, video_id)
if video is None:
    st.title("Video")
    st.error(f"There is no video {md(video_id, 80)} in this catalog.")
    st.stop()

user = state.current_user()
context = state.current_context(vidrec)


def act(action: str) -> None:
    state.record(vidrec, user, video_id, action, context)


def player_width(details: dict) -> int:
    """The widest the player can be and stay inside BOX (as the video is shown: turned when it is rotated)."""
    width, height = details["width"] or 16, details["height"] or 9
    if details["rotation"] % 180 == 90:
        width, height = height, width
    return max(160, min(BOX[0], round(BOX[1] * width / height)))


def up_next(items: list[dict]) -> None:
    """Small cards: thumbnail, title, length and category, and how alike each is to this video in frames and
    in text. They open by button, as every card on this page does (widgets.video_link says why)."""
    if not items:
        st.info("No similar videos yet.")
        return
    ids = [i["video_id"] for i in items]
    categories = vidrec.categories(ids)
    split = browse.similarity_split(vidrec.store, video_id, ids)

    def alike(item: dict) -> str:
        parts = split.get(item["video_id"])
        return f"alike in frames {parts['frames']:.2f} · text {parts['text']:.2f}" if parts else ""

    compact_list(
        vidrec, items, "similar", detail=lambda i: category_text(categories.get(i["video_id"])), extra=alike, here=True
    )


main, side = st.columns([2.3, 1], gap="large")
with main:
    if video["file_exists"]:
        st.video(video["path"], format=mimetypes.guess_type(video["path"])[0] or "video/mp4", width=player_width(video))
    else:
        thumb = vidrec.store.videos.thumbnails([video_id]).get(video_id)
        if thumb:
            st.image(thumb, width=player_width(video))
        st.warning(f"The file is no longer at {md(video['path'], 200)}; showing its thumbnail.")
    st.markdown(f"## {md(video['title'] or video_id, 200)}")
    st.caption(
        " · ".join(
            part
            for part in (
                category_text(vidrec.categories([video_id]).get(video_id)),
                duration(video["duration"]),
                f"published {md(video['published_at'][:10])}" if video["published_at"] else "",
                f"{video['width']}×{video['height']} {md(video['codec'])}",
            )
            if part
        )
    )
    audience, watched, liked, skipped = st.columns([3, 1, 1, 1], vertical_alignment="center")
    audience.caption(
        f"{plural(video['clicks'], 'click')} and {plural(video['likes'], 'like')} from "
        f"{plural(video['impressions'], 'impression')}"
    )
    watched.button(
        "Watched", icon=":material/check:", on_click=act, args=("watched",), width="stretch", key="act-watch"
    )
    liked.button("Like", icon=":material/thumb_up:", on_click=act, args=("like",), width="stretch", key="act-like")
    skipped.button("Skip", icon=":material/block:", on_click=act, args=("skip",), width="stretch", key="act-skip")
    last = st.session_state.get("last_action")
    if last and last[1] == video_id:
        st.success(CONFIRMATIONS[last[0]])
    st.caption(f"As **{md(user)}** on {md(state.describe(context))} (change on For you)")
    if video["description"] or video["tags"]:
        with st.container(border=True):
            if video["description"]:
                st.markdown(md(video["description"], 1200))
            if video["tags"]:
                st.caption("Tags: " + ", ".join(md(t, 40) for t in video["tags"][:20]))
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
    if video["category"]:
        st.subheader(f"More {md(video['category'])}")
        grid(
            vidrec,
            browse.more_from_category(vidrec.store, video_id, 5),
            "more",
            columns=5,
            detail=lambda i: plural(i["clicks"], "click"),
            here=True,
        )
with side:
    st.subheader("Up next")
    st.caption(
        "Similar videos. Alike in frames, in text: the cosine similarity of their frame embeddings and of their "
        "text embeddings (title, description, tags); the index mixes the two."
    )
    up_next(vidrec.similar(video_id, UP_NEXT))
