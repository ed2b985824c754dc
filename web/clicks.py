"""What readers do with the widget: views of a related list (one per position shown) and clicks, per
day, in `clicks.sqlite` beside the snapshots (so they survive restarts and snapshot swaps).

Writes are batched: each worker process counts in memory and adds its counts to SQLite at most once
a second (and when it exits), in one transaction; a crash loses at most that second. Rows are daily
totals per (list, item, position), so a million clicks over a year take a few thousand rows a day at
most. Days older than the retention setting are deleted.
"""
from __future__ import annotations

import atexit
import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

__all__ = ["ClickLog", "Tickets"]

log = logging.getLogger("newsrec.web")

FLUSH_SECONDS = 1.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    day TEXT NOT NULL, kind TEXT NOT NULL, from_id TEXT NOT NULL, to_id TEXT NOT NULL, position INTEGER NOT NULL,
    count INTEGER NOT NULL, PRIMARY KEY (day, kind, from_id, to_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_kind_day ON events (kind, day);
CREATE TABLE IF NOT EXISTS daily_positions (
    day TEXT NOT NULL, kind TEXT NOT NULL, position INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (day, kind, position)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS daily_targets (
    day TEXT NOT NULL, to_id TEXT NOT NULL, clicks INTEGER NOT NULL, PRIMARY KEY (day, to_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS daily_lists (
    day TEXT NOT NULL, from_id TEXT NOT NULL, views INTEGER NOT NULL, clicks INTEGER NOT NULL,
    PRIMARY KEY (day, from_id)) WITHOUT ROWID;
"""
# The readers' page reads only the daily summaries (kept with the events, in the same transaction):
# a period's numbers sum a few rows a day instead of every (list, item, position) row.
SUMMARIES_VERSION = 1
_SUMMARISE = (
    "INSERT INTO daily_positions SELECT day, kind, position, SUM(count) FROM events GROUP BY day, kind, position",
    "INSERT INTO daily_targets SELECT day, to_id, SUM(count) FROM events WHERE kind = 'click' GROUP BY day, to_id",
    "INSERT INTO daily_lists SELECT day, from_id, SUM(CASE WHEN kind = 'view' AND position = 1 THEN count ELSE 0 END), "
    "SUM(CASE WHEN kind = 'click' THEN count ELSE 0 END) FROM events GROUP BY day, from_id",
)
_TABLES = ("events", "daily_positions", "daily_targets", "daily_lists")


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
            if conn.execute("PRAGMA user_version").fetchone()[0] < SUMMARIES_VERSION:
                # Events stored before the summaries existed (or by another tool): summarise them once.
                with conn:
                    for table in _TABLES[1:]:
                        conn.execute(f"DELETE FROM {table}")
                    for sql in _SUMMARISE:
                        conn.execute(sql)
                    conn.execute(f"PRAGMA user_version = {SUMMARIES_VERSION}")
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
        positions: Counter = Counter()
        targets: Counter = Counter()
        list_views: Counter = Counter()
        list_clicks: Counter = Counter()
        for (day, kind, from_id, to_id, position), n in pending.items():
            positions[(day, kind, position)] += n
            if kind == "click":
                targets[(day, to_id)] += n
                list_clicks[(day, from_id)] += n
            elif position == 1:  # a list seen counts its first position once
                list_views[(day, from_id)] += n
        db = self._db()
        with db:
            db.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (day, kind, from_id, to_id, position) "
                "DO UPDATE SET count = count + excluded.count",
                [(*key, n) for key, n in pending.items()])
            db.executemany("INSERT INTO daily_positions VALUES (?, ?, ?, ?) ON CONFLICT (day, kind, position) "
                           "DO UPDATE SET count = count + excluded.count", [(*k, n) for k, n in positions.items()])
            db.executemany("INSERT INTO daily_targets VALUES (?, ?, ?) ON CONFLICT (day, to_id) "
                           "DO UPDATE SET clicks = clicks + excluded.clicks", [(*k, n) for k, n in targets.items()])
            db.executemany("INSERT INTO daily_lists VALUES (?, ?, ?, ?) ON CONFLICT (day, from_id) "
                           "DO UPDATE SET views = views + excluded.views, clicks = clicks + excluded.clicks",
                           [(*k, list_views[k], list_clicks[k]) for k in set(list_views) | set(list_clicks)])
            if self.retention_days and time.time() - self._last_prune > 3600:
                cutoff = (date.fromisoformat(today()) - timedelta(days=self.retention_days)).isoformat()
                for table in _TABLES:
                    db.execute(f"DELETE FROM {table} WHERE day < ?", (cutoff,))
                self._last_prune = time.time()

    def stats(self, *, days: int = 30, limit: int = 20) -> dict:
        """Readers' numbers over the last `days` days (today included)."""
        self.flush()
        db = self._db()
        since = (date.fromisoformat(today()) - timedelta(days=days - 1)).isoformat()
        q = lambda sql, *args: db.execute(sql, (since, *args)).fetchall()  # noqa: E731
        totals = dict(q("SELECT kind, SUM(count) FROM daily_positions WHERE day >= ? GROUP BY kind"))
        views_at = dict(q("SELECT position, SUM(count) FROM daily_positions WHERE day >= ? AND kind = 'view' GROUP BY position"))
        clicks_at = dict(q("SELECT position, SUM(count) FROM daily_positions WHERE day >= ? AND kind = 'click' GROUP BY position"))
        by_position = [{"position": p, "views": int(views_at.get(p, 0)), "clicks": int(clicks_at.get(p, 0)),
                        "ctr": round(clicks_at.get(p, 0) / views_at[p], 4) if views_at.get(p) else None}
                       for p in sorted(set(views_at) | set(clicks_at)) if p > 0]
        per_day: dict[str, dict] = {}
        for day, kind, n in q("SELECT day, kind, SUM(count) FROM daily_positions WHERE day >= ? GROUP BY day, kind"):
            per_day.setdefault(day, {"day": day, "views": 0, "clicks": 0})[kind + "s"] = int(n)
        by_day = [{**d, "ctr": round(d["clicks"] / d["views"], 4) if d["views"] else None} for _, d in sorted(per_day.items())]
        top = [{"id": t, "clicks": int(n)} for t, n in q(
            "SELECT to_id, SUM(clicks) AS n FROM daily_targets WHERE day >= ? GROUP BY to_id ORDER BY n DESC, to_id LIMIT ?",
            limit)]
        never = [{"id": f, "views": int(v)} for f, v in q(
            "SELECT from_id, SUM(views) AS v FROM daily_lists WHERE day >= ? GROUP BY from_id "
            "HAVING SUM(clicks) = 0 AND v > 0 ORDER BY v DESC, from_id LIMIT ?", limit)]
        return {"days": days, "since": since, "views": int(totals.get("view", 0)), "clicks": int(totals.get("click", 0)),
                "total": int(totals.get("click", 0)), "by_position": by_position, "by_day": by_day,
                "top_articles": top, "shown_never_clicked": never}


class Tickets:
    """Which items a served list held: each related item carries a ticket, an HMAC of (the list's
    article, the item) under a key kept beside the index (`reader.key`, made once and shared by every
    worker), and a click or a view counts only with the tickets of the items it names. So the readers'
    numbers hold only items the server listed on that page, whatever is posted to the beacon."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / "reader.key"
        self._key: bytes | None = None

    def _load(self) -> bytes:
        if self._key is None:
            try:
                if not self.path.exists():
                    # Written whole under a temporary name and linked in: a worker never reads half a key,
                    # and of two workers starting at once the first link wins and both read it.
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = self.path.with_name(f".reader.key.{os.getpid()}")
                    tmp.write_bytes(secrets.token_bytes(32))
                    os.chmod(tmp, 0o600)
                    try:
                        os.link(tmp, self.path)
                    except FileExistsError:
                        pass
                    finally:
                        tmp.unlink(missing_ok=True)
                self._key = self.path.read_bytes()
            except OSError as exc:  # a read-only index folder: tickets hold within this worker only
                log.warning("cannot keep %s (%s): clicks are counted only by the worker that served the list",
                            self.path, exc)
                self._key = secrets.token_bytes(32)
        return self._key

    def of(self, from_id: str, to_id: str) -> str:
        return hmac.new(self._load(), f"{from_id}\x00{to_id}".encode(), hashlib.sha256).hexdigest()[:20]

    def valid(self, from_id: str, to_id: str, ticket: object) -> bool:
        return isinstance(ticket, str) and hmac.compare_digest(ticket.encode(), self.of(from_id, to_id).encode())
