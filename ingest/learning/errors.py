"""Why a model cannot be trained, loaded or used; each message is one line for the user."""


class ModelError(Exception):
    """No usable model, a stale one, or nothing to learn from."""


class FeatureError(ModelError):
    """Features that cannot be assembled (an empty catalog, no embeddings)."""
