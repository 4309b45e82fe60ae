"""The store's errors: each message is one line for the user."""

import sqlite3

DatabaseError = sqlite3.Error  # what SQLite itself raises (a malformed file, a full disk, an I/O error)


class StoreError(Exception):
    """A store that cannot be used as asked."""


class LockTimeout(StoreError):
    """Another job held the data directory's writer lock past the timeout."""
