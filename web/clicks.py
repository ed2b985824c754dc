"""First-party click counts per article and position, in a small SQLite file beside the snapshots."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

__all__ = ["ClickLog"]


class ClickLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS clicks (from_id TEXT NOT NULL, to_id TEXT NOT NULL, position INTEGER NOT NULL,"
                " count INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (from_id, to_id, position))"
            )
            self._local.conn = conn
        return conn

    def record(self, from_id: str, to_id: str, position: int) -> None:
        db = self._db()
        with db:
            db.execute(
                "INSERT INTO clicks (from_id, to_id, position, count) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (from_id, to_id, position) DO UPDATE SET count = count + 1",
                (from_id, to_id, position),
            )

    def stats(self, limit: int = 50) -> dict:
        db = self._db()
        total = db.execute("SELECT COALESCE(SUM(count), 0) FROM clicks").fetchone()[0]
        by_position = {int(p): int(c) for p, c in db.execute("SELECT position, SUM(count) FROM clicks GROUP BY position ORDER BY position")}
        top = [
            {"id": to_id, "clicks": int(c)}
            for to_id, c in db.execute("SELECT to_id, SUM(count) AS c FROM clicks GROUP BY to_id ORDER BY c DESC LIMIT ?", (limit,))
        ]
        by_article = [
            {"from": f, "to": t, "position": int(p), "clicks": int(c)}
            for f, t, p, c in db.execute("SELECT from_id, to_id, position, count FROM clicks ORDER BY count DESC LIMIT ?", (limit,))
        ]
        return {"total": int(total), "by_position": by_position, "top_articles": top, "pairs": by_article}
