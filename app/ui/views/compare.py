"""Compare: one user's recommendations in two contexts side by side (a weekday morning on a phone against a
Saturday evening on a TV, say): each item's rank and what moved (up, down, new in B, gone from A), how many
items the two lists share, and how many of each are simply what is popular in its context.

An inspection view: it records nothing (no impressions, no feedback), whoever the user is; a user the catalog
does not know gets a new visitor's starting lists.

Its address holds its choices, so that a comparison can be shared (docs/cli.md, Web UI deep links):
`/compare?user=U&a=HOUR,WEEKDAY,DEVICE,REGION&b=HOUR,WEEKDAY,DEVICE,REGION`, e.g.
`/compare?user=u0001&a=8,1,mobile,eu&b=21,5,tv,eu`. HOUR is 0-23; WEEKDAY 0-6 (0 = Monday) or a day's name;
DEVICE and REGION must be ones the catalog's log knows. A part left empty or out (`a=8,1`) takes its default;
a part that does not parse or is unknown is refused with a note and its default applies. Without `user`, the
user chosen on For you. The address is written when a choice is made on the page, whole (user, a and b)."""

import streamlit as st

from app.ui import state
from app.ui.widgets import category_text, duration, md, video_link
from index import browse
from ingest.learning import ModelError
from models.context import Context

K = 10
SIDES = ("a", "b")
DEFAULTS = {"a": (8, 1, "mobile"), "b": (21, 5, "tv")}  # Tuesday 08:00 on a phone; Saturday 21:00 on a TV
SAVED = "compare"  # this page's choices, kept while its widgets are forgotten on other pages
PARTS = ("hour", "weekday", "device", "region")

vidrec = state.api()
choices = browse.context_choices(vidrec.store)


def widget(side: str, part: str) -> str:
    return f"cmp_{side}_{part}"


def user_id(user: str) -> str:
    return state.visitor_id() if user == state.NEW_VISITOR else user


def default_device(side: str) -> str:
    wanted, known = DEFAULTS[side][2], choices["device"]
    if not known:
        return ""
    return wanted if wanted in known else known[min(SIDES.index(side), len(known) - 1)]


def defaults(user: str) -> dict:
    region = vidrec.context(user_id(user)).region or ""
    return {"user": user} | {
        side: {
            "hour": DEFAULTS[side][0],
            "weekday": DEFAULTS[side][1],
            "device": default_device(side),
            "region": region,
        }
        for side in SIDES
    }


def number(raw: str, top: int, names: dict[str, int]) -> int | None:
    value = names.get(raw.lower())
    if value is None:
        try:
            value = int(raw)
        except ValueError:
            return None
    return value if 0 <= value <= top else None


def from_link(params: dict) -> tuple[dict, list[str]]:
    """The page's choices from its query parameters (see the module's doc) -> (choices, problems)."""
    user = str(params.get("user") or "").strip()[:128] or state.choice().get("user") or state.NEW_VISITOR
    chosen = defaults(user)
    problems: list[str] = []
    days = {d.lower(): i for i, d in enumerate(state.WEEKDAYS)} | {
        d[:3].lower(): i for i, d in enumerate(state.WEEKDAYS)
    }
    for side in SIDES:
        raw = str(params.get(side) or "")
        for part, value in zip(PARTS, (p.strip() for p in raw.split(",")[: len(PARTS)])):
            if not value:
                continue
            fallback = chosen[side][part]
            if part in ("hour", "weekday"):
                top = 23 if part == "hour" else 6
                parsed = number(value, top, days if part == "weekday" else {})
                if parsed is None:
                    problems.append(f"{side.upper()}: {part} must be 0-{top}, not {value[:40]!r}; {fallback} instead")
                else:
                    chosen[side][part] = parsed
            elif value in choices[part]:
                chosen[side][part] = value
            else:
                known = ", ".join(choices[part][:8]) or "none yet"
                problems.append(
                    f"{side.upper()}: {part} {value[:40]!r} is not one this catalog knows ({known}); "
                    f"{fallback or 'any'} instead"
                )
    return chosen, problems


def link_of(saved: dict) -> dict[str, str]:
    out = {side: ",".join(str(saved[side][part] or "") for part in PARTS) for side in SIDES}
    return ({"user": saved["user"]} if saved["user"] != state.NEW_VISITOR else {}) | out


def user_changed() -> None:
    """Another user brings their region (where they are); the hours, days and devices stay."""
    region = vidrec.context(user_id(st.session_state["cmp_user"])).region
    if region in choices["region"]:
        for side in SIDES:
            st.session_state[widget(side, "region")] = region


def options(known: list[str], current) -> list[str]:
    return list(dict.fromkeys([*known, *([current] if current else [])])) or [""]


# ---- the choices: from the address when it is new to this session, else as they were left ------------------------
params = {k: st.query_params[k] for k in ("user", *SIDES) if k in st.query_params}
signature = tuple(sorted(params.items()))
saved = st.session_state.get(SAVED)
problems: list[str] = []
if saved is None or (params and saved["_link"] != signature):
    saved, problems = from_link(params)
    st.session_state[SAVED] = saved
    st.session_state["cmp_user"] = saved["user"]
    for side in SIDES:
        for part in PARTS:
            st.session_state[widget(side, part)] = saved[side][part]
else:
    st.session_state.setdefault("cmp_user", saved["user"])
    for side in SIDES:
        for part in PARTS:
            st.session_state.setdefault(widget(side, part), saved[side][part])

st.title("Compare contexts")
st.caption(
    "The same user's recommendations in two contexts, side by side: what the time, the day, the device and the "
    "place change. An inspection view: nothing on this page is recorded (no impressions, no feedback)."
)
for problem in problems:
    st.warning(f"Link parameter refused: {md(problem)}")
with st.container(border=True):
    st.selectbox(
        "User",
        options([state.NEW_VISITOR, *vidrec.store.interactions.users()], saved["user"]),
        key="cmp_user",
        on_change=user_changed,
        width=360,
    )
    for side, column in zip(SIDES, st.columns(2, gap="medium")):
        with column:
            st.markdown(f"**Context {side.upper()}**")
            hour, day, device, region = st.columns([3, 2, 2, 2])
            hour.slider("Hour", 0, 23, key=widget(side, "hour"), format="%d:00")
            day.selectbox("Weekday", range(7), format_func=lambda d: state.WEEKDAYS[d], key=widget(side, "weekday"))
            device.selectbox(
                "Device",
                options(choices["device"], saved[side]["device"]),
                key=widget(side, "device"),
                format_func=lambda v: v or "any",
            )
            region.selectbox(
                "Region",
                options(choices["region"], saved[side]["region"]),
                key=widget(side, "region"),
                format_func=lambda v: v or "any",
            )
# A choice made here goes into the address, whole (one history entry each); a visit alone writes nothing, so that
# Back is never caught by a page that rewrites its address on arrival.
chosen = {"user": st.session_state["cmp_user"]} | {
    side: {part: st.session_state[widget(side, part)] for part in PARTS} for side in SIDES
}
if any(chosen[k] != saved[k] for k in chosen):
    saved.update(chosen)
    wanted = link_of(saved)
    st.query_params.from_dict(wanted)
    signature = tuple(sorted(wanted.items()))
saved["_link"] = signature

# ---- the two lists -----------------------------------------------------------------------------------------------
user = user_id(saved["user"])
if saved["user"] != state.NEW_VISITOR and not vidrec.store.interactions.has_user(user):
    st.info(
        f"{md(user)} has no history in this catalog: both lists are a new visitor's starting lists (cold start). "
        "Nothing is kept.",
        icon=":material/person_add:",
    )
session = st.session_state.get("sessions", {}).get(user)  # this session's likes and skips, read, never added to
contexts: dict[str, Context] = {
    side: vidrec.context(
        user,
        saved[side]["hour"],
        saved[side]["weekday"],
        saved[side]["device"] or None,
        saved[side]["region"] or None,
    )
    for side in SIDES
}
try:
    results = {
        side: vidrec.recommend(
            user,
            contexts[side],
            k=K,
            session_history=session.history if session else (),
            exclude=session.skipped if session else (),
        )
        for side in SIDES
    }
except ModelError as exc:
    st.warning(f"Recommendations need a trained model: {' '.join(str(exc).split())}")
    st.stop()
lists = {side: [i["video_id"] for i in results[side]["items"]] for side in SIDES}
popular = {side: {i["video_id"] for i in vidrec.popular(contexts[side], K)} for side in SIDES}
diff = browse.compare_lists(lists["a"], lists["b"])
longest = max(len(lists["a"]), len(lists["b"]))
also_popular = {side: len(popular[side] & set(lists[side])) for side in SIDES}
same_rank = sum(1 for moved in diff["moved"].values() if moved == 0)

both, pop_a, pop_b, same = st.columns(4)
both.metric(
    "In both lists",
    f"{len(diff['both'])} of {longest}",
    border=True,
    help="Videos that A and B both recommend, whatever their rank.",
)
same.metric("At the same rank", f"{same_rank} of {longest}", border=True)
for side, column in (("a", pop_a), ("b", pop_b)):
    column.metric(
        f"{side.upper()} also popular now",
        f"{also_popular[side]} of {len(lists[side])}",
        border=True,
        help=f"Of list {side.upper()}, how many are among the {K} most popular in its own context (the baseline).",
    )
st.caption(
    f"{len(diff['both'])} of {longest} in both · {sum(m is None for m in diff['moved'].values())} new in B · "
    f"{len(diff['left'])} of A gone from B · A: {also_popular['a']} of {len(lists['a'])} also popular now · "
    f"B: {also_popular['b']} of {len(lists['b'])} also popular now"
)

items = {i["video_id"]: i for side in SIDES for i in results[side]["items"]}
ids = list(items)
thumbs = vidrec.store.videos.thumbnails(ids)
seconds = vidrec.store.videos.durations(ids)
categories = vidrec.categories(ids)
rank_b = {v: n for n, v in enumerate(lists["b"])}


def marks(side: str, n: int, video_id: str) -> list[str]:
    """What moved, as badges (our own words only: no catalog text)."""
    out = []
    if side == "a":
        if video_id in rank_b:
            out.append(f":gray-badge[#{rank_b[video_id] + 1} in B]")
        else:
            out.append(":red-badge[:material/logout: gone from B]")
    else:
        moved = diff["moved"][video_id]
        if moved is None:
            out.append(":blue-badge[:material/fiber_new: new in B]")
        elif moved > 0:
            out.append(f":green-badge[:material/arrow_upward: {moved} (was #{n + 1 + moved})]")
        elif moved < 0:
            out.append(f":orange-badge[:material/arrow_downward: {-moved} (was #{n + 1 + moved})]")
        else:
            out.append(":gray-badge[= same rank]")
    if video_id in popular[side]:
        out.append(":violet-badge[:material/trending_up: popular now]")
    return out


def ranked(side: str) -> None:
    if not lists[side]:
        st.info("Nothing to recommend in this context.")
    for n, video_id in enumerate(lists[side]):
        # the whole row opens the video: the page's style stretches the title's link over a "-open" container
        with st.container(border=True, key=f"cmp-{side}-card-{n}"), st.container(key=f"cmp-{side}-card-{n}-open"):
            rank, picture, text = st.columns([0.3, 1, 4.5], gap="small", vertical_alignment="center")
            rank.markdown(f"**{n + 1}**")
            if thumbs.get(video_id):
                picture.image(thumbs[video_id], width="stretch")
            else:
                picture.caption("no thumbnail")
            with text:
                video_link(items[video_id], 48)
                st.caption(f"{duration(seconds.get(video_id))} · {category_text(categories.get(video_id))}")
                st.markdown(" ".join(marks(side, n, video_id)))


for side, column in zip(SIDES, st.columns(2, gap="medium")):
    with column:
        st.subheader(f"{side.upper()}: {md(state.describe(contexts[side]))}")
        if results[side]["cold_start"]:
            st.caption("A starting list: the user has no history yet.")
        ranked(side)
        if side == "b" and diff["left"]:
            st.caption(
                "Gone from B: "
                + ", ".join(f"#{lists['a'].index(v) + 1} {md(items[v]['title'] or v, 40)}" for v in diff["left"])
            )
