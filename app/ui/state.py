"""What every page shares: the API object (cached per catalog version), the chosen user and context,
and this browser session's feedback state (what it means is `index/feedback.py`'s)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import streamlit as st

from app.common import data_dir
from index.api import Vidrec
from index.feedback import SessionFeedback, ShownLists
from ingest.store import DataDir
from models.context import Context

NEW_VISITOR = "new visitor"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LINK_KEYS = ("user", "hour", "weekday", "device", "region")


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


def apply_link(vidrec: Vidrec) -> list[str]:
    """Set the choice from the URL's query parameters when they are new to this session (a deep link, or
    the first visit); the missing parts take `recommend`'s defaults for that user. A URL without them
    (the navigation menu's) keeps the session's choice. Returns the problems to show."""
    params = {k: st.query_params.get(k) for k in LINK_KEYS if k in st.query_params}
    signature = tuple(sorted(params.items()))
    c = choice()
    if "hour" in c and (not params or c.get("_link") == signature):
        for name in LINK_KEYS:  # the widgets were forgotten on another page: restore them
            st.session_state.setdefault(widget_key(name), c[name])
        return []
    values, problems = parse_link(params)
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
    c["_link"] = signature
    return problems


def take_widgets() -> None:
    """Copy the For you widgets' values into the choice (after they are drawn)."""
    c = choice()
    for name in LINK_KEYS:
        if widget_key(name) in st.session_state:
            c[name] = st.session_state[widget_key(name)]


def user_changed(vidrec: Vidrec) -> None:
    """A new user brings their region (where they are); the hour, the day and a device chosen stay as chosen
    (a device left empty becomes the user's usual one)."""
    take_widgets()
    c = choice()
    default = vidrec.context(current_user(), c.get("hour"), c.get("weekday"), c.get("device") or None)
    _set({"device": default.device or "", "region": default.region or ""})


def write_link() -> None:
    """Keep the URL in step with the chosen user and context, so that it can be shared or bookmarked."""
    c = choice()
    wanted = {
        "user": c.get("user") or NEW_VISITOR,
        "hour": str(c.get("hour")),
        "weekday": str(c.get("weekday")),
        "device": c.get("device") or "",
        "region": c.get("region") or "",
    }
    wanted = {k: v for k, v in wanted.items() if v not in ("", "None") and not (k == "user" and v == NEW_VISITOR)}
    if {k: st.query_params.get(k) for k in LINK_KEYS if k in st.query_params} != wanted:
        st.query_params.from_dict(wanted)
    c["_link"] = tuple(sorted(wanted.items()))


# ---- this session's feedback ----------------------------------------------------------------------------------
def session_of(user_id: str) -> SessionFeedback:
    """This browser session's feedback of one user."""
    sessions = st.session_state.setdefault("sessions", {})
    return sessions.setdefault(user_id, SessionFeedback())


def record(vidrec: Vidrec, user_id: str, video_id: str, action: str, context: Context) -> None:
    """Store the feedback as an interaction of this user in this context, and let it count at once."""
    vidrec.feedback(user_id, video_id, action, context)
    session_of(user_id).apply(action, video_id)
    st.session_state["last_action"] = (action, video_id)


def log_shown(vidrec: Vidrec, user_id: str, video_ids: list[str], context: Context) -> None:
    """Log a shown list as impressions, the first time this session shows it in this context."""
    shown = st.session_state.setdefault("_shown", ShownLists())
    if shown.first_time(user_id, context, video_ids):
        vidrec.log_impressions(user_id, video_ids, context)


def describe(context: Context) -> str:
    return (
        f"{WEEKDAYS[context.weekday]} {context.hour:02d}:00, on {context.device or 'any device'}"
        f" in {context.region or 'any region'}"
    )
