"""Floor 3: the online read path, answering requests (search, similar videos, recommendations, the UI's
views and feedback) through one vector-index interface; `api.Vidrec` is its entry point. Imports `ingest/`
and `models/`, never `app/`."""
