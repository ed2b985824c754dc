"""What readers do with the widget: views of a related list (one per position shown) and clicks, per
day, in `clicks.sqlite` beside the snapshots (so they survive restarts and snapshot swaps).

Writes are batched: each worker process counts in memory and adds its counts to SQLite at most once
a second (and when it exits), in one transaction; a crash loses at most that second. Rows are daily
totals per (list, item, position), so a million clicks over a year take a few thousand rows a day at
most. Days older than the retention setting are deleted.
"""
from __future__ import annotations

import atexit
import sqlite3
import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

__all__ = ["ClickLog"]

FLUSH_SECONDS = 1.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    day TEXT NOT NULL, kind TEXT NOT NULL, from_id TEXT NOT NULL, to_id TEXT NOT NULL, position INTEGER NOT NULL,
    count INTEGER NOT NULL, PRIMARY KEY (day, kind, from_id, to_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_kind_day ON events (kind, day);
"""


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


class ClickLog:
    def __init__(self, path: str | Path, *, retention_days: int = 400):
        self.path = Path(path)
        self.retention_days = retention_days
        self._local = threading.local()
        self._pending: Counter = Counter()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._last_prune = 0.0
        atexit.register(self.flush)

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            if conn.execute("SELECT name FROM sqlite_master WHERE name = 'clicks'").fetchone():
                # The old all-time click table: its counts carry over as today's.
                with conn:
                    conn.execute("INSERT OR IGNORE INTO events SELECT ?, 'click', from_id, to_id, position, count FROM clicks",
                                 (today(),))
                    conn.execute("DROP TABLE clicks")
            self._local.conn = conn
        return conn

    def _add(self, key: tuple, n: int = 1) -> None:
        with self._lock:
            self._pending[key] += n
            if self._timer is None:  # the first count of a batch: write the batch in a second
                self._timer = threading.Timer(FLUSH_SECONDS, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def record(self, from_id: str, to_id: str, position: int, *, day: str | None = None) -> None:
        """A reader clicked the item at `position` (1-based) of the list shown on `from_id`."""
        self._add((day or today(), "click", from_id, to_id, position))

    def viewed(self, from_id: str, items: list[str], *, day: str | None = None) -> None:
        """A reader saw the list on `from_id` holding these items, in this order."""
        for position, to_id in enumerate(items, start=1):
            self._add((day or today(), "view", from_id, to_id, position))

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._timer = None
        if not pending:
            return
        db = self._db()
        with db:
            db.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (day, kind, from_id, to_id, position) "
                "DO UPDATE SET count = count + excluded.count",
                [(*key, n) for key, n in pending.items()])
            if self.retention_days and time.time() - self._last_prune > 3600:
                cutoff = (date.fromisoformat(today()) - timedelta(days=self.retention_days)).isoformat()
                db.execute("DELETE FROM events WHERE day < ?", (cutoff,))
                self._last_prune = time.time()

    def stats(self, *, days: int = 30, limit: int = 20) -> dict:
        """Readers' numbers over the last `days` days (today included)."""
        self.flush()
        db = self._db()
        since = (date.fromisoformat(today()) - timedelta(days=days - 1)).isoformat()
        q = lambda sql, *args: db.execute(sql, (since, *args)).fetchall()  # noqa: E731
        totals = dict(q("SELECT kind, SUM(count) FROM events WHERE day >= ? GROUP BY kind"))
        views_at = dict(q("SELECT position, SUM(count) FROM events WHERE day >= ? AND kind = 'view' GROUP BY position"))
        clicks_at = dict(q("SELECT position, SUM(count) FROM events WHERE day >= ? AND kind = 'click' GROUP BY position"))
        by_position = [{"position": p, "views": int(views_at.get(p, 0)), "clicks": int(clicks_at.get(p, 0)),
                        "ctr": round(clicks_at.get(p, 0) / views_at[p], 4) if views_at.get(p) else None}
                       for p in sorted(set(views_at) | set(clicks_at)) if p > 0]
        per_day: dict[str, dict] = {}
        for day, kind, n in q("SELECT day, kind, SUM(count) FROM events WHERE day >= ? GROUP BY day, kind"):
            per_day.setdefault(day, {"day": day, "views": 0, "clicks": 0})[kind + "s"] = int(n)
        by_day = [{**d, "ctr": round(d["clicks"] / d["views"], 4) if d["views"] else None} for _, d in sorted(per_day.items())]
        top = [{"id": t, "clicks": int(n)} for t, n in q(
            "SELECT to_id, SUM(count) AS n FROM events WHERE day >= ? AND kind = 'click' GROUP BY to_id ORDER BY n DESC, to_id LIMIT ?", limit)]
        never = [{"id": f, "views": int(n)} for f, n in q(
            "SELECT from_id, SUM(count) / COUNT(DISTINCT position) AS n FROM events WHERE day >= ? AND kind = 'view' AND from_id NOT IN "
            "(SELECT from_id FROM events WHERE day >= ? AND kind = 'click') GROUP BY from_id ORDER BY n DESC, from_id LIMIT ?", since, limit)]
        return {"days": days, "since": since, "views": int(totals.get("view", 0)), "clicks": int(totals.get("click", 0)),
                "total": int(totals.get("click", 0)), "by_position": by_position, "by_day": by_day,
                "top_articles": top, "shown_never_clicked": never}
