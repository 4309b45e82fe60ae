"""Search: text-to-video search, and videos similar to an uploaded image or clip."""

import streamlit as st

from app.ui import state, uploads
from app.ui.widgets import grid, md, plural
from index.search import SearchError

vidrec = state.api()
st.title("Search")
by_text, by_file = st.tabs(["By text", "By image or video"])

with by_text:
    query = st.text_input(
        "What are you looking for?",
        key="search_text",
        max_chars=500,
        placeholder="e.g. penalty kick, 钢琴, a cosy kitchen",
    )
    if query.strip():
        try:
            found = vidrec.search(query, 15)
        except SearchError as exc:
            st.error(md(exc))
        else:
            st.caption(f"{plural(len(found), 'video')} closest to the text, by CLIP over frames and text")
            grid(vidrec, found, "text", detail=lambda i: f"similarity {i['similarity']:.2f}")

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
                    done[upload.file_id] = ("ok", vidrec.similar_to_file(path, 15))
                finally:
                    path.unlink(missing_ok=True)  # a query, not a catalog video: nothing to keep
            except (uploads.UploadError, SearchError) as exc:
                done[upload.file_id] = ("error", " ".join(str(exc).split()))
        status, value = done[upload.file_id]
        if status == "error":
            st.error(md(value))
        else:
            st.caption(f"{plural(len(value), 'video')} that look most like {md(upload.name, 80)}")
            grid(vidrec, value, "file", detail=lambda i: f"similarity {i['similarity']:.2f}")
