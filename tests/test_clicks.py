"""The readers' numbers: daily summaries kept with the raw events give the same numbers as the events."""
from __future__ import annotations

import sqlite3
from datetime import date, timedelta

from web.clicks import SCHEMA, ClickLog, today


def _naive(path, since: str) -> dict:
    db = sqlite3.connect(path)
    q = lambda sql: db.execute(sql, (since,)).fetchall()  # noqa: E731
    return {
        "by_position": dict(q("SELECT position, SUM(count) FROM events WHERE day >= ? AND kind = 'click' GROUP BY position")),
        "top": q("SELECT to_id, SUM(count) AS n FROM events WHERE day >= ? AND kind = 'click' "
                 "GROUP BY to_id ORDER BY n DESC, to_id"),
        "never": {f for (f,) in q("SELECT DISTINCT from_id FROM events WHERE day >= ? AND kind = 'view' AND from_id NOT IN "
                                  "(SELECT from_id FROM events WHERE kind = 'click')")},
    }


def test_summaries_match_the_events_and_old_files_are_summarised(tmp_path):
    path = tmp_path / "clicks.sqlite"
    old_day = (date.fromisoformat(today()) - timedelta(days=3)).isoformat()
    db = sqlite3.connect(path)  # a file written before the summaries existed
    db.executescript(SCHEMA.split("CREATE TABLE IF NOT EXISTS daily_positions")[0])
    with db:
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", [
            (old_day, "view", "p1", "x", 1, 10), (old_day, "view", "p1", "y", 2, 10), (old_day, "click", "p1", "y", 2, 3),
            (old_day, "view", "p2", "z", 1, 7)])
    db.close()
    log = ClickLog(path)
    for _ in range(4):
        log.viewed("p3", ["a", "b", "c"])
    log.viewed("p1", ["x", "y"])
    log.record("p3", "b", 2)
    log.record("p3", "b", 2)
    log.record("p1", "x", 1)
    stats = log.stats(days=30)
    naive = _naive(path, (date.fromisoformat(today()) - timedelta(days=29)).isoformat())
    assert {p["position"]: p["clicks"] for p in stats["by_position"] if p["clicks"]} == naive["by_position"]
    assert [(t["id"], t["clicks"]) for t in stats["top_articles"]] == naive["top"]
    assert {a["id"] for a in stats["shown_never_clicked"]} == naive["never"] == {"p2"}
    assert stats["views"] == 10 + 10 + 7 + 4 * 3 + 2 and stats["clicks"] == 3 + 3
    p1 = [p for p in stats["by_position"] if p["position"] == 2][0]
    assert p1 == {"position": 2, "views": 10 + 4 + 1, "clicks": 3 + 2, "ctr": round(5 / 15, 4)}
    # a second handle on the same file (another worker) sees the same numbers
    assert ClickLog(path).stats(days=30) == stats
