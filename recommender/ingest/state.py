"""Ingest state in `ingest.sqlite` beside the snapshots: what was seen, what is staged, each source's
and each run's report, and the lock that keeps one run at a time per index."""
from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import sqlite3
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path

from recommender.errors import NewsrecError
from recommender.ingest.fetch import LASTING_SKIPS, Entry, Failure, Response, Skip, Source
from recommender.text.articles import Article



SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    url TEXT PRIMARY KEY, id TEXT NOT NULL, source TEXT NOT NULL, etag TEXT, last_modified TEXT,
    listed TEXT, content_hash TEXT, first_seen REAL, last_fetched REAL, last_changed REAL
);
CREATE TABLE IF NOT EXISTS staged (
    id TEXT PRIMARY KEY, url TEXT NOT NULL, source TEXT NOT NULL, article TEXT NOT NULL, content_hash TEXT,
    etag TEXT, last_modified TEXT, listed TEXT, change TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS skips (url TEXT PRIMARY KEY, reason TEXT NOT NULL, listed TEXT, at REAL);
CREATE TABLE IF NOT EXISTS removals (id TEXT PRIMARY KEY, url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, url TEXT NOT NULL, last_run REAL, last_ok REAL, last_report TEXT
);
CREATE TABLE IF NOT EXISTS runs (started REAL PRIMARY KEY, finished REAL, report TEXT);
"""


class IngestState:
    """`ingest.sqlite` beside the snapshots: what was seen, what is staged, what each run did."""

    def __init__(self, index_path: str | os.PathLike):
        self.path = Path(index_path) / "ingest.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def seen(self, url: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM seen WHERE url = ?", (url,)).fetchone()

    def seen_of_source(self, source: str) -> dict[str, str]:
        return {r["url"]: r["id"] for r in self.db.execute("SELECT url, id FROM seen WHERE source = ?", (source,))}

    def staged_urls(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT url FROM staged")}

    def stage(self, article: Article, entry: Entry, content_hash: str, resp: Response | None, change: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO staged VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (article.id, entry.url, entry.source, json.dumps(article.to_dict(), ensure_ascii=False), content_hash,
             resp.etag if resp else "", resp.last_modified if resp else "", entry.listed, change))
        self.db.commit()  # each fetched article survives a crash

    def touch(self, entry: Entry, resp: Response | None) -> None:
        """An unchanged URL: keep its new validators and listing date."""
        self.db.execute("UPDATE seen SET last_fetched = ?, listed = COALESCE(NULLIF(?, ''), listed), "
                        "etag = COALESCE(NULLIF(?, ''), etag), last_modified = COALESCE(NULLIF(?, ''), last_modified) "
                        "WHERE url = ?", (time.time(), entry.listed, resp.etag if resp else "",
                                          resp.last_modified if resp else "", entry.url))
        self.db.commit()

    def skip(self, entry: Entry, reason: str) -> None:
        """A URL skipped for a lasting reason; asked again only when its listing date changes."""
        if reason in LASTING_SKIPS:
            self.db.execute("INSERT OR REPLACE INTO skips VALUES (?, ?, ?, ?)", (entry.url, reason, entry.listed, time.time()))
            self.db.commit()

    def skipped_before(self, entry: Entry) -> str | None:
        row = self.db.execute("SELECT reason, listed FROM skips WHERE url = ?", (entry.url,)).fetchone()
        if row is None or (row["listed"] or "") != (entry.listed or "") or not entry.listed:
            return None
        return row["reason"]

    def stage_removal(self, article_id: str, url: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO removals VALUES (?, ?)", (article_id, url))
        self.db.commit()

    def pending(self) -> tuple[list[Article], list[str]]:
        """Staged articles (in id order: the same snapshot whatever order they were fetched in) and removals."""
        arts = []
        for (raw,) in self.db.execute("SELECT article FROM staged ORDER BY id"):
            data = json.loads(raw)
            arts.append(Article(**data))
        removals = [r[0] for r in self.db.execute("SELECT id FROM removals ORDER BY id")]
        return arts, removals

    def applied(self) -> None:
        """The staged articles are in the live snapshot: record them as seen, in one transaction."""
        now = time.time()
        with self.db:
            self.db.execute(
                "INSERT INTO seen (url, id, source, etag, last_modified, listed, content_hash, first_seen, last_fetched, last_changed) "
                "SELECT url, id, source, etag, last_modified, listed, content_hash, ?, ?, ? FROM staged WHERE true "
                "ON CONFLICT(url) DO UPDATE SET id = excluded.id, etag = excluded.etag, last_modified = excluded.last_modified, "
                "listed = excluded.listed, content_hash = excluded.content_hash, last_fetched = excluded.last_fetched, "
                "last_changed = excluded.last_changed", (now, now, now))
            self.db.execute("DELETE FROM seen WHERE url IN (SELECT url FROM removals)")
            self.db.execute("DELETE FROM staged")
            self.db.execute("DELETE FROM removals")

    def record_run(self, report: "IngestReport", sources: list[Source]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)",
                            (report.started, report.started + report.seconds, json.dumps(report.to_dict())))
            for s in sources:
                ok = not any(f.startswith(s.key + " ") for f in report.source_errors)
                self.db.execute(
                    "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET last_run = excluded.last_run, "
                    "last_ok = COALESCE(excluded.last_ok, sources.last_ok), last_report = excluded.last_report",
                    (s.key, s.kind, s.url, report.started, report.started if ok else None,
                     json.dumps(report.per_source.get(s.key, {}))))

    def last_ok(self, source: Source) -> float | None:
        row = self.db.execute("SELECT last_ok FROM sources WHERE key = ?", (source.key,)).fetchone()
        return row[0] if row else None

    def summary(self) -> dict:
        """What `newsrec info` shows: sources, their last run, and the counts of seen and staged URLs."""
        sources = [
            {"source": key, "kind": kind, "url": url, "last_run": utc_text(last_run), "last_ok": utc_text(last_ok),
             "last_report": json.loads(rep) if rep else {}}
            for key, kind, url, last_run, last_ok, rep in self.db.execute("SELECT * FROM sources ORDER BY key")]
        last = self.db.execute("SELECT report FROM runs ORDER BY started DESC LIMIT 1").fetchone()
        return {"sources": sources, "seen_urls": self.db.execute("SELECT COUNT(*) FROM seen").fetchone()[0],
                "staged": self.db.execute("SELECT COUNT(*) FROM staged").fetchone()[0],
                "last_run": json.loads(last[0]) if last else None}


def ingest_runs(index_path: str | os.PathLike, limit: int = 20) -> list[dict]:
    """The last `limit` ingest runs of an index, newest first (empty when it was never ingested into);
    read-only, so a server can show them while an ingest runs."""
    path = Path(index_path) / "ingest.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT started, finished, report FROM runs ORDER BY started DESC LIMIT ?", (limit,)).fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()
    return [{"started": utc_text(started), "finished": utc_text(finished), **json.loads(report or "{}")}
            for started, finished, report in rows]


def utc_text(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


class IngestLock:
    """One ingest at a time per index: an exclusive, non-blocking lock on `ingest.lock`."""

    def __init__(self, index_path: str | os.PathLike):
        self.path = Path(index_path) / "ingest.lock"

    def __enter__(self) -> "IngestLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another process"
            self.fh.close()
            raise NewsrecError(f"another ingest is running on this index (pid {holder}); one at a time") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
        self.fh.close()


@dataclass
class IngestReport:
    started: float
    listed: int = 0
    fetched: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    resumed: int = 0  # staged by an earlier run that did not finish, added now
    skipped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    source_errors: list[str] = field(default_factory=list)
    per_source: dict[str, dict] = field(default_factory=dict)
    requests: int = 0
    snapshot: str | None = None
    seconds: float = 0.0

    def count(self, table: dict[str, int], reason: str) -> None:
        table[reason] = table.get(reason, 0) + 1

    def source_failed(self, source: Source, exc: Skip | Failure) -> None:
        """A source that could not be listed: named in source_errors, counted as failed."""
        self.source_errors.append(f"{source.key} {exc}")
        self.count(self.failed, f"source-{exc.reason}")

    def to_dict(self) -> dict:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "started"}
        out["started"] = utc_text(self.started)
        out["seconds"] = round(self.seconds, 2)
        return out

    def line(self) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        failed = ", ".join(f"{k} {v}" for k, v in sorted(self.failed.items())) or "none"
        return (f"ingest: {self.listed} listed, {self.fetched} fetched, {self.new} new, {self.changed} changed, "
                f"{self.unchanged} unchanged, {self.removed} removed; skipped: {skipped}; failed: {failed}; "
                f"{self.requests} requests in {self.seconds:.1f}s" + (f"; snapshot {self.snapshot}" if self.snapshot else ""))
