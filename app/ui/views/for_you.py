"""For you: a user's recommendations in a chosen context, each with its why, beside the popular baseline.
What it shows is logged as impressions; likes and skips count at once through the session's history."""

import streamlit as st

from app.ui import state
from app.ui.widgets import compact_list, grid, md, plural
from index import browse
from ingest.learning import ModelError

vidrec = state.api()
for problem in state.apply_link(vidrec):
    st.warning(f"Link parameter ignored: {md(problem)}")
choices = browse.context_choices(vidrec.store)
chosen = state.choice()


def options(known: list[str], current) -> list[str]:
    return list(dict.fromkeys([*known, *([current] if current else [])]))


st.title("For you")
with st.container(border=True):
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


def like(video_id):
    state.record(vidrec, user, video_id, "like", context)


def skip(video_id):
    state.record(vidrec, user, video_id, "skip", context)


def why(item):
    for reason in item.get("reasons") or ["ranked by the model"]:
        st.markdown(f"- {md(reason)}")
    s = item.get("scores", {})
    st.caption(
        f"P(click) {s.get('click', 0):.1%} · P(like | click) {s.get('like', 0):.1%} · "
        f"expected watch {s.get('watch', 0):.0%} · fused score {item['score']:.4f}"
    )


top, reset = st.columns([6, 1], vertical_alignment="bottom")
top.caption(
    f"For **{md(user)}** on {md(state.describe(context))}. This session: {len(session.liked)} liked, "
    f"{len(session.history)} watched, {len(session.skipped)} skipped."
)
if reset.button(
    "Start over", help="Forget this session's likes and skips (they stay in the store)", disabled=session.empty
):
    session.reset()
    st.rerun()

result: dict | None
try:
    result = vidrec.recommend(user, context, k=10, session_history=session.history, exclude=session.skipped)
except ModelError as exc:
    st.warning(f"Recommendations need a trained model: {' '.join(str(exc).split())}")
    result = None

popular = vidrec.popular(context, 5)
shown = ([i["video_id"] for i in result["items"]] if result else []) + [i["video_id"] for i in popular]
state.log_shown(vidrec, user, list(dict.fromkeys(shown)), context)
main, side = st.columns([5, 1.2], gap="medium")
with main:
    if result is not None:
        st.subheader("Recommended for you")
        for warning in result.get("warnings", []):
            st.warning(warning)
        if result["cold_start"]:
            st.caption(
                "New here: a starting list from what suits this moment and a spread of content; like or skip "
                "to steer it."
            )
        grid(
            vidrec,
            result["items"],
            "rec",
            columns=4,
            detail=lambda i: f"{md(i.get('category') or 'uncategorised')} · score {i['score']:.3f}",
            why=why,
            actions={"like": like, "skip": skip},
        )
with side:
    st.subheader("Popular now")
    st.caption(
        "The baseline: most clicked lately, clicks on this device at this time of day counting most; "
        "each shows all its recent clicks."
    )
    categories = vidrec.store.videos.categories([i["video_id"] for i in popular])
    compact_list(
        vidrec,
        popular,
        "pop",
        detail=lambda i: f"{md(categories.get(i['video_id']) or 'uncategorised')} · {plural(i['clicks'], 'click')}",
    )
