"""The video card and grid every page draws, and the one way catalog text reaches the screen.

Catalog text (titles, descriptions, tags, categories, reasons that quote titles) is untrusted: it goes
through `md()`, which escapes every Markdown special character, so a title like
`<script>alert(1)</script>` or `[x](javascript:alert(1))` shows as typed. Nothing here uses
`unsafe_allow_html`.
"""

from __future__ import annotations

import re

import streamlit as st

VIDEO_PAGE = "views/video.py"
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$=^&])")
ACTIONS = {
    "like": (":material/thumb_up:", "Like: more like this"),
    "skip": (":material/block:", "Not interested: leave it out"),
}


def md(text, limit: int | None = None) -> str:
    """Untrusted text -> Markdown that renders as exactly that text (on one line; cut to `limit`)."""
    text = " ".join(str(text if text is not None else "").split())
    if limit and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return _SPECIAL.sub(r"\\\1", text)


def plural(n: int, noun: str) -> str:
    """'1 video', '2 videos', '1,234 clicks': a count as people write it."""
    return f"{n:,} {noun if n == 1 else noun + 's'}"


def category_text(info: dict | None) -> str:
    """One category wording for every page (escaped): the label, else the model's guess marked as such,
    e.g. 'football (predicted, 62%)'; 'uncategorised' when there is neither."""
    if not info or not info.get("category"):
        return "uncategorised"
    if info.get("predicted"):
        return f"{md(info['category'])} (predicted, {info['confidence']:.0%})"
    return md(info["category"])


def title_of(item: dict) -> str:
    return item.get("title") or item.get("video_id") or "(untitled)"


def duration(seconds) -> str:
    seconds = int(round(float(seconds or 0)))
    return (
        f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def open_video(video_id: str) -> None:
    """Go to the video's page in this session (keeping the session's feedback and context)."""
    st.switch_page(VIDEO_PAGE, query_params={"video": video_id})


def card(item: dict, thumb: bytes | None, key: str, detail: str = "", why=None, actions=None) -> None:
    """One video: thumbnail, title, a detail line, an optional "why" and buttons.
    actions: {"like" or "skip": callback(video_id)}, drawn as icon buttons after "Watch"."""
    video_id = item["video_id"]
    with st.container(border=True):
        if thumb:
            st.image(thumb, width="stretch")
        else:
            st.caption("no thumbnail")
        st.markdown(f"**{md(title_of(item), 60)}**")
        if detail:
            st.caption(detail)
        if why is not None:
            with st.expander("Why this?"):
                why()
        buttons = st.columns([2] + [1] * len(actions or {}), gap="small")
        if buttons[0].button("Watch", icon=":material/play_arrow:", key=f"{key}-open-{video_id}", width="stretch"):
            open_video(video_id)
        for column, (name, callback) in zip(buttons[1:], (actions or {}).items()):
            icon, tip = ACTIONS[name]
            column.button(
                "",
                icon=icon,
                help=tip,
                key=f"{key}-{name}-{video_id}",
                on_click=callback,
                args=(video_id,),
                width="stretch",
            )


def grid(vidrec, items: list[dict], key: str, columns: int = 5, detail=None, why=None, actions=None) -> None:
    """Cards in rows of `columns`. detail(item) -> caption text (already escaped); why(item) draws the
    inside of the "Why this?" expander."""
    if not items:
        st.info("Nothing to show yet.")
        return
    thumbs = vidrec.store.videos.thumbnails([i["video_id"] for i in items])
    for start in range(0, len(items), columns):
        row = st.columns(columns, gap="small")
        for column, item in zip(row, items[start : start + columns]):
            with column:
                card(
                    item,
                    thumbs.get(item["video_id"]),
                    key,
                    detail(item) if detail else "",
                    (lambda item=item: why(item)) if why else None,
                    actions,
                )


def compact_list(vidrec, items: list[dict], key: str, detail=None) -> None:
    """A narrow column of small cards (thumbnail, title, detail), each opening the video."""
    thumbs = vidrec.store.videos.thumbnails([i["video_id"] for i in items])
    for item in items:
        with st.container(border=True):
            picture, text = st.columns([1, 2], gap="small")
            if thumbs.get(item["video_id"]):
                picture.image(thumbs[item["video_id"]], width="stretch")
            text.markdown(f"**{md(title_of(item), 48)}**")
            if detail:
                text.caption(detail(item))
            if st.button("Watch", icon=":material/play_arrow:", key=f"{key}-open-{item['video_id']}", type="tertiary"):
                open_video(item["video_id"])
