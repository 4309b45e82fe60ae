"""What every page shares: the API object (cached per catalog version), the chosen user and context,
and this browser session's feedback state (what it means is `index/feedback.py`'s)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import streamlit as st

from app.common import SANDBOX_VARIABLE, data_dir
from index import browse
from index.api import Vidrec
from index.feedback import SessionFeedback, ShownLists
from ingest.store import DataDir
from models.context import Context

NEW_VISITOR = "new visitor"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LINK_KEYS = ("user", "hour", "weekday", "device", "region")
NEW_USER_NOTE = "new here"


# ---- the API ----------------------------------------------------------------------------------------------
def data_path() -> Path:
    """`vidrec serve` hands the data directory over in VIDREC_DATA_DIR, as the CLI reads it."""
    return data_dir().expanduser().resolve()


@st.cache_resource(max_entries=2, show_spinner="Loading the catalog, its model and indexes…")
def _api(path: str, database_file: int) -> Vidrec:
    """One read-only API object per catalog, shared by every session: it follows the store as jobs change
    it (new videos, a new CLIP, a new model), so an ingest does not make the pages load everything again. A
    catalog file replaced under the same path (a restore, a new demo) makes a new one. `vidrec serve --engine
    ray` hands its engine over in VIDREC_ENGINE."""
    return Vidrec(path, read_only=True, engine=os.environ.get("VIDREC_ENGINE", "local"))


def api() -> Vidrec:
    path = data_path()
    try:
        database_file = DataDir(path).database.stat().st_ino
    except OSError:
        database_file = 0  # no catalog yet: Vidrec says so
    return _api(str(path), database_file)


# ---- who and when -----------------------------------------------------------------------------------------
def visitor_id() -> str:
    """A new visitor's id, fixed for the browser session, so their feedback forms one history."""
    if "visitor_id" not in st.session_state:
        st.session_state.visitor_id = f"visitor-{uuid.uuid4().hex[:8]}"
    return st.session_state.visitor_id


def choice() -> dict:
    """The chosen {user, hour, weekday, device, region}. Kept apart from the For you widgets' own keys,
    which Streamlit forgets on pages that do not draw those widgets."""
    return st.session_state.setdefault("choice", {"user": NEW_VISITOR})


def widget_key(name: str) -> str:
    return f"fy_{name}"


def current_user() -> str:
    chosen = choice().get("user") or NEW_VISITOR
    return visitor_id() if chosen == NEW_VISITOR else chosen


def current_context(vidrec: Vidrec) -> Context:
    """The context chosen on For you (the user's defaults for the parts not chosen yet)."""
    c = choice()
    return vidrec.context(
        current_user(), c.get("hour"), c.get("weekday"), c.get("device") or None, c.get("region") or None
    )


def parse_link(params) -> tuple[dict, list[str]]:
    """Deep-link query parameters (docs/cli.md, Web UI deep links) -> ({key: value}, problems). Values that
    do not parse are left out (their defaults apply) and reported, never fatal."""
    out: dict[str, int | str] = {}
    problems: list[str] = []
    names = {d.lower(): i for i, d in enumerate(WEEKDAYS)} | {d[:3].lower(): i for i, d in enumerate(WEEKDAYS)}
    for key in LINK_KEYS:
        raw = params.get(key)
        if raw is None or str(raw).strip() == "":
            continue
        raw = str(raw).strip()
        if key in ("hour", "weekday"):
            top = 23 if key == "hour" else 6
            value = names.get(raw.lower()) if key == "weekday" else None
            if value is None:
                try:
                    value = int(raw)
                except ValueError:
                    value = -1
            if not 0 <= value <= top:
                problems.append(f"{key} must be 0-{top}, not {raw[:40]!r}")
                continue
            out[key] = value
        else:
            out[key] = raw[:128]
    return out, problems


def _set(values: dict) -> None:
    """Set the choice and the For you widgets to the same values (call before the widgets are drawn)."""
    choice().update(values)
    for name, value in values.items():
        st.session_state[widget_key(name)] = value


def _refuse_unknown(vidrec: Vidrec, values: dict) -> list[str]:
    """A link may name anything: a device or region the catalog has never seen is refused (logged with an
    impression it would become everyone's choice for good), and falls back to the user's usual one. A user the
    catalog does not know gets a note (not a refusal: a link may welcome someone new)."""
    problems = []
    known = browse.context_choices(vidrec.store)
    for key in ("device", "region"):
        if key in values and values[key] not in known[key]:
            choices = ", ".join(known[key][:8]) or "none yet"
            problems.append(
                f"{key} {values.pop(key)!r} is not one this catalog knows ({choices}): the usual one applies"
            )
    user = values.get("user")
    if user and user != NEW_VISITOR and not vidrec.store.interactions.has_user(user):
        problems.append(
            f"{NEW_USER_NOTE}: {user!r} gets a starting list, and nothing is kept until they like, skip or "
            "watch something"
        )
    return problems


def note_page(name: str) -> None:
    """Which page this run draws, and which the run before drew (main.py calls it before every page)."""
    st.session_state["_came_from"] = st.session_state.get("_page")
    st.session_state["_page"] = name


def apply_link(vidrec: Vidrec) -> list[str]:
    """Set the choice from the URL's query parameters when they are new to this session (a deep link, Back or
    Forward, or the first visit); the parts the URL does not name take `recommend`'s defaults for that user.
    The URL the app left itself keeps the session's choice, and so does a bare URL reached from another page
    (the navigation menu's link carries no parameters): the address then stays bare until a choice changes,
    so that arriving adds no history entry of its own. Returns the problems to show."""
    params = {k: st.query_params.get(k) for k in LINK_KEYS if k in st.query_params}
    signature = tuple(sorted(params.items()))
    c = choice()
    from_menu = not params and st.session_state.get("_came_from") not in (None, "for_you")
    if "hour" in c and (c.get("_link") == signature or from_menu):
        for name in LINK_KEYS:  # the widgets were forgotten on another page: restore them
            st.session_state.setdefault(widget_key(name), c[name])
        if from_menu and c.get("_link") != signature:
            c["_link"], c["_bare"] = signature, True
        return []
    values, problems = parse_link(params)
    problems += _refuse_unknown(vidrec, values)
    user = values.get("user") or NEW_VISITOR
    default = vidrec.context(
        visitor_id() if user == NEW_VISITOR else user,
        values.get("hour"),
        values.get("weekday"),
        values.get("device"),
        values.get("region"),
    )
    _set(
        {
            "user": user,
            "hour": default.hour,
            "weekday": default.weekday,
            "device": default.device or "",
            "region": default.region or "",
        }
    )
    c["_explicit"] = set(values)
    c["_link"], c["_bare"] = signature, False
    return problems


def take_widgets() -> None:
    """Copy the For you widgets' values into the choice (after they are drawn); a value changed there is
    chosen, and goes into the address."""
    c = choice()
    explicit = c.setdefault("_explicit", set())
    for name in LINK_KEYS:
        if widget_key(name) in st.session_state:
            value = st.session_state[widget_key(name)]
            if value != c.get(name):
                explicit.add(name)
                c["_bare"] = False
            c[name] = value


def user_changed(vidrec: Vidrec) -> None:
    """A new user brings their region (where they are) and, unless one was chosen, their usual device; the
    hour and the day stay as they were."""
    take_widgets()
    c = choice()
    explicit = c["_explicit"]
    explicit.discard("region")
    device = c.get("device") if "device" in explicit else None
    default = vidrec.context(current_user(), c.get("hour"), c.get("weekday"), device or None)
    _set({"device": default.device or "", "region": default.region or ""})


def write_link() -> None:
    """Keep the URL in step with what was chosen (from a link or on the page), so that it can be shared or
    bookmarked: one history entry per change; the parts left to their defaults stay out of it."""
    c = choice()
    if c.get("_bare"):
        return  # arrived bare from another page: nothing chosen here yet
    explicit = c.setdefault("_explicit", set())
    wanted = {k: str(c.get(k)) for k in LINK_KEYS if k in explicit and c.get(k) not in (None, "")}
    if wanted.get("user") == NEW_VISITOR:
        del wanted["user"]
    if {k: st.query_params.get(k) for k in LINK_KEYS if k in st.query_params} != wanted:
        st.query_params.from_dict(wanted)  # one change, one history entry
    c["_link"] = tuple(sorted(wanted.items()))


# ---- this session's feedback ----------------------------------------------------------------------------------
def sandbox() -> bool:
    """`vidrec serve --sandbox`: every action stays in the browser session; nothing is written to the catalog."""
    return os.environ.get(SANDBOX_VARIABLE) == "1"


def session_of(user_id: str) -> SessionFeedback:
    """This browser session's feedback of one user."""
    sessions = st.session_state.setdefault("sessions", {})
    return sessions.setdefault(user_id, SessionFeedback())


def record(vidrec: Vidrec, user_id: str, video_id: str, action: str, context: Context) -> None:
    """Store the feedback as an interaction of this user in this context (not in a sandbox), and let it count
    at once."""
    if not sandbox():
        vidrec.feedback(user_id, video_id, action, context)
    session_of(user_id).apply(action, video_id)
    st.session_state["last_action"] = (action, video_id)


def log_shown(vidrec: Vidrec, user_id: str, video_ids: list[str], context: Context) -> None:
    """Log a shown list as impressions, once per view (user, context, list). Nothing is logged in a sandbox,
    nor for someone the catalog does not know yet (a new visitor, a link's new user) until they act: a
    visit alone leaves no trace in the data that popularity and training read."""
    if sandbox() or not vidrec.store.interactions.has_user(user_id):
        return
    shown = st.session_state.setdefault("_shown", ShownLists())
    if shown.first_time(user_id, context, video_ids):
        vidrec.log_impressions(user_id, video_ids, context)


def describe(context: Context) -> str:
    return (
        f"{WEEKDAYS[context.weekday]} {context.hour:02d}:00, on {context.device or 'any device'}"
        f" in {context.region or 'any region'}"
    )
