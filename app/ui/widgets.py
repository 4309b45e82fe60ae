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
ACTIONS = {  # labelled: a tooltip does not exist on touch
    "like": (":material/thumb_up:", "Like"),
    "skip": (":material/block:", "Skip"),
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


def video_link(item: dict, limit: int = 60, key: str | None = None) -> None:
    """The title as a link to the video's page: one history entry, the session kept (a page link navigates
    inside the app; a button that switches page from Python adds two entries, and Back then stays put). On
    the video page itself (`key` given) a button instead: a page link to the page it is on changes what is
    shown but leaves the address on the old video, while `open_video` moves both, in one entry."""
    label = f"**{md(title_of(item), limit)}**"
    if key is None:
        st.page_link(VIDEO_PAGE, label=label, query_params={"video": item["video_id"]})
    elif st.button(label, key=f"{key}-open-{item['video_id']}", type="tertiary"):
        open_video(item["video_id"])


def opening(key: str, item: dict, thumb: bytes | None, seconds, limit: int = 60, button: str | None = None) -> None:
    """Thumbnail and title, both opening the video (the page's CSS stretches the title's link over the
    thumbnail, see STYLE), with the duration on the thumbnail. `button`: the list's key, on the video page."""
    with st.container(key=f"{key}-open", gap=None):
        if thumb:
            st.image(thumb, width="stretch")
        else:
            st.caption("no thumbnail")
        if seconds:
            with st.container(key=f"{key}-badge", width="content"):
                st.caption(duration(seconds))
        video_link(item, limit, button)


def card(
    item: dict,
    thumb: bytes | None,
    key: str,
    slot: int,
    detail: str = "",
    why=None,
    actions=None,
    seconds=None,
    note: str = "",
    marked: str = "",
    here: bool = False,
) -> None:
    """One video, the `slot`th of list `key`: thumbnail and title (both open it), a detail line, a reason in
    a few words (`note`), an optional "why" and labelled buttons. actions: {"like" or "skip":
    callback(video_id)}; `marked`: a confirmation shown instead of the buttons (e.g. "Liked"); `here`: drawn
    on the video page (see `video_link`)."""
    video_id = item["video_id"]
    with st.container(border=True, key=f"{key}-card-{slot}"):
        opening(f"{key}-card-{slot}", item, thumb, seconds, button=key if here else None)
        if detail:
            st.caption(detail)
        if note:
            st.caption(f":material/lightbulb: {note}")
        if why is not None:
            with st.expander("Why this?"):
                why()
        if marked:
            st.success(marked, icon=":material/check:")
        elif actions:
            buttons = st.columns(len(actions), gap="small")
            for column, (name, callback) in zip(buttons, actions.items()):
                icon, label = ACTIONS[name]
                column.button(
                    label,
                    icon=icon,
                    key=f"{key}-{name}-{video_id}",
                    on_click=callback,
                    args=(video_id,),
                    width="stretch",
                )


def grid(
    vidrec,
    items: list[dict],
    key: str,
    columns: int = 5,
    detail=None,
    why=None,
    actions=None,
    note=None,
    marked=None,
    here: bool = False,
) -> None:
    """Cards in rows of `columns` (two a row on a phone). detail(item) -> caption text (already escaped);
    why(item) draws the inside of the "Why this?" expander; note(item) -> a few words on why it is here;
    marked(item) -> a confirmation instead of the buttons, or ""; `here`: drawn on the video page."""
    if not items:
        st.info("Nothing to show yet.")
        return
    ids = [i["video_id"] for i in items]
    thumbs = vidrec.store.videos.thumbnails(ids)
    seconds = vidrec.store.videos.durations(ids)
    with st.container(key=f"grid-{key}"):
        for start in range(0, len(items), columns):
            row = st.columns(columns, gap="small")
            for n, (column, item) in enumerate(zip(row, items[start : start + columns]), start):
                with column:
                    card(
                        item,
                        thumbs.get(item["video_id"]),
                        key,
                        n,
                        detail(item) if detail else "",
                        (lambda item=item: why(item)) if why else None,
                        actions,
                        seconds.get(item["video_id"]),
                        note(item) if note else "",
                        marked(item) if marked else "",
                        here,
                    )


def compact_list(vidrec, items: list[dict], key: str, detail=None, extra=None, here: bool = False) -> None:
    """A narrow column of small cards (thumbnail, title, duration, detail), each opening the video from
    anywhere on it. detail(item) -> text after the duration; extra(item) -> a second line, or ""; `here`: drawn
    on the video page (see `video_link`)."""
    ids = [i["video_id"] for i in items]
    thumbs = vidrec.store.videos.thumbnails(ids)
    seconds = vidrec.store.videos.durations(ids)
    with st.container(key=f"list-{key}"):
        for n, item in enumerate(items):
            with st.container(border=True, key=f"{key}-card-{n}"), st.container(key=f"{key}-card-{n}-open"):
                picture, text = st.columns([1, 2], gap="small")
                if thumbs.get(item["video_id"]):
                    picture.image(thumbs[item["video_id"]], width="stretch")
                with text:
                    video_link(item, 48, key if here else None)
                    st.caption(
                        " · ".join([duration(seconds.get(item["video_id"])), *([detail(item)] if detail else [])])
                    )
                    if extra and extra(item):
                        st.caption(extra(item))


# Page styles (constant CSS, no catalog text): a card's title link is stretched over its thumbnail; the
# duration sits on the thumbnail's corner; on a phone, grids keep two cards a row, cards stay compact and a
# compact list keeps its thumbnails beside the titles.
STYLE = """
<style>
.stVerticalBlock[class*="-open"][class*="st-key-"] { position: relative; }
.stVerticalBlock[class*="-open"][class*="st-key-"] * { position: static; }
.stVerticalBlock[class*="-open"][class*="st-key-"] [data-testid="stPageLink"] a::after,
.stVerticalBlock[class*="-open"][class*="st-key-"] [data-testid="stButton"] button::after {
  content: ""; position: absolute; inset: 0; z-index: 1;
}
.stVerticalBlock[class*="-open"][class*="st-key-"] [data-testid="stElementToolbar"] { display: none; }
.stVerticalBlock[class*="-open"][class*="st-key-"] .stVerticalBlock[class*="-badge"] {
  position: absolute; top: 0.35rem; right: 0.35rem; z-index: 2; width: auto; background: rgba(0, 0, 0, 0.72);
  padding: 0 0.35rem; border-radius: 0.25rem;
}
.stVerticalBlock[class*="-badge"] p { color: #fff; font-size: 0.75rem; white-space: nowrap; }
@media (max-width: 640px) {
  [class*="st-key-grid-"] [data-testid="stHorizontalBlock"] { flex-wrap: wrap !important; gap: 0.5rem !important; }
  [class*="st-key-grid-"] [data-testid="stColumn"] {
    min-width: calc(50% - 0.25rem) !important; max-width: calc(50% - 0.25rem) !important;
    flex: 1 1 calc(50% - 0.25rem) !important; width: calc(50% - 0.25rem) !important;
  }
  [class*="st-key-grid-"] [data-testid="stVerticalBlockBorderWrapper"] { padding: 0.4rem !important; }
  [class*="st-key-grid-"] button { padding: 0.1rem 0.3rem !important; min-height: 2rem !important; }
  [class*="st-key-grid-"] [data-testid="stExpander"] { display: none; }
  [class*="st-key-list-"] [data-testid="stHorizontalBlock"] { flex-wrap: nowrap !important; }
  [class*="st-key-list-"] [data-testid="stColumn"] { min-width: 0 !important; }
}
</style>
"""


def page_style() -> None:
    st.html(STYLE)
