"""The process `vidrec serve` starts: `python -m app.ui.server run app/ui/main.py --server.address ...` (the
arguments of `streamlit run`). It loads the catalog's API object first (the model, the indexes, CLIP) and warms
it with one recommendation and one search, then runs Streamlit's own command line in this same process, so
the first visitor finds everything loaded.

Why this shares the pages' object: `state.api()` keeps one API object per catalog in `st.cache_resource`,
whose global entries live in one process-wide cache keyed by the function (its module, name and source) and
its arguments, shared by every session's script runs. Calling it here, before the server starts, fills the
very entry the pages read (the pages import `app.ui.state` from `sys.modules`: the same module). The server
listens only after the warm-up, so its health endpoint answering means everything is loaded; `vidrec serve`
waits for that before it prints the address. A catalog the warm-up cannot load (no model, no videos, a damaged
file) is served as it is: the pages say why, as they always did.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback

WARM = "vidrec: loaded"  # the start of the line written to stderr once warm (tests and bench/bench_ui.py read it)


def warm() -> str:
    """Load the app's API object into its cache and run one of each request on it; returns what was loaded,
    one line. The catalog's own problems are reported in the line, not raised."""
    from app.common import USER_ERRORS
    from app.ui import state, widgets  # noqa: F401  (the pages' imports, loaded once here)
    from index import browse

    # the cache's spinner has no page to draw on here; Streamlit says so once, harmlessly: not on the console
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    started = time.perf_counter()
    parts: list[str] = []
    try:
        vidrec = state.api()
    except USER_ERRORS as exc:
        return f"{WARM} nothing: {' '.join(str(exc).split())}"
    try:
        vidrec.searcher.index.ensure()
        clip = vidrec.store.clips.current()
        vidrec.search("a video", k=1)  # CLIP's text tower and the fused index
        parts.append(f"CLIP v{clip.version if clip else '?'} and the catalog index")
    except USER_ERRORS as exc:
        parts.append(f"no search ({' '.join(str(exc).split())})")
    try:
        model = vidrec.recommender.model
        vidrec.recommender.model_index()
        users = vidrec.store.interactions.users()[:1]
        for user in [*users, "vidrec-warm-up"]:  # a known user, and a new visitor (cold start)
            context = vidrec.context(user)
            vidrec.recommend(user, context, k=10)
        parts.append(f"model {model.model_id} and its index")
    except USER_ERRORS as exc:
        parts.append(f"no model ({' '.join(str(exc).split())})")
    try:
        context = vidrec.context("vidrec-warm-up")
        vidrec.popular(context, 5)
        browse.context_choices(vidrec.store)
    except USER_ERRORS as exc:
        parts.append(f"no popular list ({' '.join(str(exc).split())})")
    return f"{WARM} {'; '.join(parts)} in {time.perf_counter() - started:.1f} s"


def main(argv: list[str]) -> int:
    print("vidrec: loading the catalog, its model and indexes…", file=sys.stderr, flush=True)
    try:
        line = warm()
    except KeyboardInterrupt:
        return 130
    except Exception:  # a bug shows here and again on the page; the server still starts
        traceback.print_exc()
        line = f"{WARM} nothing (the error above)"
    print(line, file=sys.stderr, flush=True)

    from streamlit.web import cli

    try:
        cli.main(args=argv, prog_name="streamlit")  # `streamlit run ...`: the same options, the same server
    except SystemExit as exited:
        code = exited.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
