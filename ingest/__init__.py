"""Floor 2: the offline write path, inputs -> store -> learnt artifacts. `store/` alone speaks SQL and knows
the data directory; ingest runs as prepare (`prepare.py`) -> embed (`embedding.py`) -> write
(`pipeline.py`); `learning/` trains and evaluates the multi-task model. Imports `models/` only."""
