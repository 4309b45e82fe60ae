"""Search: text-to-video search, and videos similar to an uploaded image or clip.

The text query lives in the address, `/search?q=...`: a shared or bookmarked link opens the page with its
query run, each new query adds one browser history entry (st.query_params pushes one; a Back or Forward
rerun replaces instead), and Back or Forward puts that entry's query back in the box."""

import streamlit as st

from app.ui import state, uploads
from app.ui.widgets import category_text, grid, md, plural
from index.search import MAX_QUERY_CHARS, SearchError

RESULTS = 15
BOX = "search_text"  # the search box's key
SHOWN = "_search_address"  # the `?q=` the box was last filled from or wrote

vidrec = state.api()
st.title("Search")
by_text, by_file = st.tabs(["By text", "By image or video"])


def follow_address() -> None:
    """Put `?q=` in the box when the address changed under the page (a link opened, Back or Forward), or when
    the box is new (back on the page from a video: Streamlit forgets a widget's value on other pages)."""
    address = st.query_params.get("q", "")
    if address != st.session_state.get(SHOWN) or BOX not in st.session_state:
        st.session_state[SHOWN] = st.session_state[BOX] = address


def keep_address(query: str) -> None:
    """Write the query into the address (one history entry), unless it is there already or too long to run."""
    if len(query) > MAX_QUERY_CHARS or query == st.query_params.get("q", ""):
        return
    if query:
        st.query_params["q"] = query
    else:
        del st.query_params["q"]
    st.session_state[SHOWN] = query


def result_detail(found: list[dict], all_weak: bool = False):
    """The card's caption: category, similarity, and whether the match is weak (unless every one is: the note
    above the results says so once). The duration is on the thumbnail."""
    categories = vidrec.categories([i["video_id"] for i in found])

    def detail(item: dict) -> str:
        parts = [category_text(categories.get(item["video_id"])), f"similarity {item['similarity']:.2f}"]
        if item.get("weak") and not all_weak:
            parts.append("weak match")
        return " · ".join(parts)

    return detail


with by_text:
    follow_address()
    raw = st.text_input(
        "What are you looking for?",
        key=BOX,
        placeholder="e.g. penalty kick, 钢琴, a cosy kitchen",
    )
    query = " ".join((raw or "").split())
    keep_address(query)
    if len(query) > MAX_QUERY_CHARS:
        st.warning(
            f"Your text is {len(query):,} characters long; search reads at most {MAX_QUERY_CHARS:,}: shorten it."
        )
    elif query:
        try:
            found = vidrec.search(query, RESULTS)
        except SearchError as exc:
            st.error(md(exc))
        else:
            all_weak = bool(found) and all(i.get("weak") for i in found)
            if all_weak:
                st.info(
                    f"No close match for “{md(query, 80)}”; these are the nearest videos.",
                    icon=":material/search_off:",
                )
            else:
                st.caption(f"{plural(len(found), 'video')} closest to the text, by CLIP over frames and text")
            grid(vidrec, found, "text", detail=result_detail(found, all_weak))

with by_file:
    upload = st.file_uploader(
        "An image or a short video clip",
        type=uploads.query_types(),
        key="search_file",
        max_upload_size=uploads.UPLOAD_LIMIT_MB,
    )
    if upload is not None:
        done = st.session_state.setdefault("_file_results", {})
        if upload.file_id not in done:
            try:
                path = uploads.save_upload(
                    vidrec.store.paths.uploads,
                    upload.name,
                    upload.getvalue(),
                    uploads.IMAGE_EXTENSIONS | uploads.VIDEO_EXTENSIONS,
                )
                try:
                    done[upload.file_id] = ("ok", vidrec.similar_to_file(path, RESULTS))
                finally:
                    path.unlink(missing_ok=True)  # a query, not a catalog video: nothing to keep
            except (uploads.UploadError, SearchError) as exc:
                done[upload.file_id] = ("error", " ".join(str(exc).split()))
        status, value = done[upload.file_id]
        if status == "error":
            st.error(md(value))
        else:
            st.caption(f"{plural(len(value), 'video')} that look most like {md(upload.name, 80)}")
            grid(vidrec, value, "file", detail=result_detail(value))
