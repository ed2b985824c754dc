"""Editors' choices for an article's related list: stories pinned to its top, in order, and stories
never listed on it.

Kept in `editorial.sqlite` beside the snapshots (as the readers' numbers are), keyed by article id,
so they survive rebuilds, `add`, `delete` and snapshot swaps. A pinned or excluded article that is
later deleted stays recorded: lists skip it and the admin page reports it as gone. Every list of the
article reads them (the API, the widget, the fragment).
"""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Choices", "Editorial"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS choices (
    article_id TEXT NOT NULL,
    chosen_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('pin', 'exclude')),
    position INTEGER NOT NULL,
    PRIMARY KEY (article_id, chosen_id)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Choices:
    """An article's pinned stories (in list order) and excluded ones."""

    pins: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.pins or self.excludes)

    def to_dict(self) -> dict:
        return {"pins": list(self.pins), "excludes": list(self.excludes)}


class Editorial:
    """The choices store of one index directory (thread-safe: a connection per thread)."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / "editorial.sqlite"
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection | None:
        """The store's connection, or None while nothing was ever chosen (reads need no file)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if not self.path.exists():
                return None
            conn = self._open()
        return conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        self._local.conn = conn
        return conn

    def get(self, article_id: str) -> Choices:
        conn = self._db()
        if conn is None:
            return Choices()
        rows = conn.execute("SELECT kind, chosen_id FROM choices WHERE article_id = ? ORDER BY kind, position",
                            (article_id,)).fetchall()
        return Choices(tuple(c for k, c in rows if k == "pin"), tuple(c for k, c in rows if k == "exclude"))

    def put(self, article_id: str, choices: Choices) -> None:
        """Replace the article's choices with these, in one transaction (checked by the caller)."""
        conn = self._db() or self._open()
        with conn:
            conn.execute("DELETE FROM choices WHERE article_id = ?", (article_id,))
            conn.executemany("INSERT INTO choices (article_id, chosen_id, kind, position) VALUES (?, ?, ?, ?)",
                             [(article_id, c, "pin", n) for n, c in enumerate(choices.pins)]
                             + [(article_id, c, "exclude", n) for n, c in enumerate(choices.excludes)])

    def articles(self, limit: int = 200) -> list[tuple[str, int, int]]:
        """(article id, pins, excludes) of the articles with choices, most pins first."""
        conn = self._db()
        if conn is None:
            return []
        return [tuple(r) for r in conn.execute(
            "SELECT article_id, SUM(kind = 'pin'), SUM(kind = 'exclude') FROM choices GROUP BY article_id "
            "ORDER BY 2 DESC, article_id LIMIT ?", (limit,))]
