"""For you: a user's recommendations in a chosen context, each with its why, beside the popular baseline.
What it shows is logged as impressions (once per view, for users the catalog knows); likes and skips count at
once through the session's history, and a liked card stays in place, marked."""

import streamlit as st

from app.ui import state
from app.ui.widgets import category_text, compact_list, grid, md, plural
from index import browse
from ingest.learning import ModelError

K = 10
vidrec = state.api()
for problem in state.apply_link(vidrec):
    if problem.startswith(state.NEW_USER_NOTE):
        st.info(md(problem), icon=":material/person_add:")
    else:
        st.warning(f"Link parameter ignored: {md(problem)}")
choices = browse.context_choices(vidrec.store)
chosen = state.choice()


def options(known: list[str], current) -> list[str]:
    return list(dict.fromkeys([*known, *([current] if current else [])]))


def summary() -> str:
    """The context as the widgets hold it now, for the folded filters' label."""
    get = st.session_state.get
    user = get(state.widget_key("user")) or state.NEW_VISITOR
    return (
        f"{state.WEEKDAYS[get(state.widget_key('weekday'), 0)][:3]} {get(state.widget_key('hour'), 0):02d}:00 · "
        f"{get(state.widget_key('device')) or 'any device'} · {get(state.widget_key('region')) or 'any region'} · "
        f"{user}"
    )


def on_phone() -> bool:
    """Phones fold the filters away so that the first screen shows videos."""
    agent = st.context.headers.get("User-Agent") or ""
    return "Mobi" in agent or "Android" in agent


st.title("For you")
with st.expander(md(summary(), 120), expanded=not on_phone(), icon=":material/tune:"):
    c_user, c_hour, c_day, c_device, c_region = st.columns([3, 3, 2, 2, 2])
    c_user.selectbox(
        "User",
        options([state.NEW_VISITOR, *vidrec.store.interactions.users()], chosen.get("user")),
        key=state.widget_key("user"),
        on_change=state.user_changed,
        args=(vidrec,),
    )
    c_hour.slider("Hour", 0, 23, key=state.widget_key("hour"), format="%d:00")
    c_day.selectbox("Weekday", range(7), format_func=lambda d: state.WEEKDAYS[d], key=state.widget_key("weekday"))
    c_device.selectbox("Device", options(choices["device"], chosen.get("device")), key=state.widget_key("device"))
    c_region.selectbox("Region", options(choices["region"], chosen.get("region")), key=state.widget_key("region"))
state.take_widgets()
state.write_link()

user = state.current_user()
context = state.current_context(vidrec)
session = state.session_of(user)
view = (user, context)
pinned: dict = st.session_state.setdefault("_pinned", {}).setdefault(view, {})  # liked here: {video_id: (slot, item)}
last_lists: dict = st.session_state.setdefault("_last_list", {})


def like(video_id):
    state.record(vidrec, user, video_id, "like", context)
    shown_before = last_lists.get(view, [])
    for slot, item in enumerate(shown_before):
        if item["video_id"] == video_id:
            pinned[video_id] = (slot, item)


def skip(video_id):
    state.record(vidrec, user, video_id, "skip", context)
    pinned.pop(video_id, None)


def why(item):
    for reason in item.get("reasons") or ["ranked by the model"]:
        st.markdown(f"- {md(reason)}")
    s = item.get("scores", {})
    st.caption(
        f"P(click) {s.get('click', 0):.1%} · P(like | click) {s.get('like', 0):.1%} · "
        f"expected watch {s.get('watch', 0):.0%} · fused score {item['score']:.4f}"
    )


def with_pins(items: list[dict]) -> list[dict]:
    """The new list with this view's liked cards back in their places (a like re-ranks the list, and the liked
    video, now in the history, would leave it: the card stays, marked, instead)."""
    out = [i for i in items if i["video_id"] not in pinned]
    for slot, item in sorted(pinned.values(), key=lambda p: p[0]):
        out.insert(min(slot, len(out)), item)
    return out[: max(K, len(pinned))]


def note(item) -> str:
    """Why it is here, in a few words; a video that arrived after this session's likes or watches says so."""
    reasons = item.get("reasons") or []
    for reason in reasons:
        for video_id, title in acted.items():
            if reason == f"like “{title}” you watched":
                verb = "liked" if video_id in session.liked else "watched"
                return md(f"New, because you {verb} “{title}”", 70)
    return md((reasons[0] if reasons else "picked by the model").capitalize(), 70)


top, reset = st.columns([6, 1], vertical_alignment="bottom")
top.caption(
    f"For **{md(user)}** on {md(state.describe(context))}. This session: {len(session.liked)} liked, "
    f"{len(session.history)} watched, {len(session.skipped)} skipped."
    + (" Sandbox: nothing you do here is kept after this session." if state.sandbox() else "")
)
if not session.empty and reset.button(
    "Start over", help="Forget this session's likes and skips (they stay in the store)"
):
    session.reset()
    pinned.clear()
    st.rerun()

result: dict | None
try:
    result = vidrec.recommend(user, context, k=K, session_history=session.history, exclude=session.skipped)
except ModelError as exc:
    st.warning(f"Recommendations need a trained model: {' '.join(str(exc).split())}")
    result = None

items = with_pins(result["items"]) if result else []
acted = vidrec.store.videos.titles(session.history)  # this session's likes and watches: {video_id: title}
popular = vidrec.popular(context, 5)
categories = vidrec.categories([i["video_id"] for i in items + popular])
shown = [i["video_id"] for i in items if i["video_id"] not in pinned] + [i["video_id"] for i in popular]
state.log_shown(vidrec, user, list(dict.fromkeys(shown)), context)
last_lists[view] = items
main, side = st.columns([5, 1.2], gap="medium")
with main:
    if result is not None:
        st.subheader("Recommended for you")
        for warning in result.get("warnings", []):
            st.warning(warning)
        if result["cold_start"]:
            st.caption("New here: what suits this moment, and a spread of content; like or skip to steer it.")
        grid(
            vidrec,
            items,
            "rec",
            columns=4,
            detail=lambda i: f"{category_text(categories.get(i['video_id']))} · score {i['score']:.3f}",
            why=why,
            actions={"like": like, "skip": skip},
            note=note,
            marked=lambda i: "Liked: more like it will follow" if i["video_id"] in pinned else "",
        )
        st.caption(
            "The order: by the model's value of a view (the score), with the list's mix of categories kept close "
            "to your own (what you watch, as this time and device shift it), so a lower score can come first; "
            'the last place tries a video few people have seen yet (marked "exploring").'
        )
with side:
    st.subheader("Popular now")
    st.caption(
        "The baseline: most clicked lately, clicks on this device at this time of day counting most; "
        "each shows all its recent clicks."
    )
    compact_list(
        vidrec,
        popular,
        "pop",
        detail=lambda i: f"{category_text(categories.get(i['video_id']))} · {plural(i['clicks'], 'click')}",
    )
