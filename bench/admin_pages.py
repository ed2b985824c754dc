"""Admin pages' latency at scale: a synthetic index of N articles and a click log holding M clicks
(daily totals over 90 days, as the widget's beacons leave them), served by `newsrec serve`.
Prints JSON.

    python bench/admin_pages.py [--articles 100000] [--clicks 1000000] [--requests 30]
"""
from __future__ import annotations

import argparse
import base64
import json
import socket
import sqlite3
import tempfile
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from _common import Server, latencies, machine, synthetic_index

TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill_clicks(path: Path, articles: int, clicks: int, days: int = 90, seed: int = 0) -> int:
    """Daily rows (day, kind, from, to, position, count) adding up to `clicks` clicks and 20x as many views."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from web.clicks import SCHEMA

    rng = np.random.default_rng(seed)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    today = date.today()
    rows = []
    per_day = clicks // days
    for d in range(days):
        day = (today - timedelta(days=d)).isoformat()
        # Popular pages get most clicks: a Zipf-like draw of source pages, positions weighted to the top.
        sources = rng.zipf(1.3, per_day) % articles + 1
        positions = rng.choice([1, 2, 3, 4, 5], per_day, p=[0.4, 0.25, 0.15, 0.12, 0.08])
        targets = (sources * 7919 + positions * 104729) % articles + 1
        keys, counts = np.unique(np.stack([sources, targets, positions], axis=1), axis=0, return_counts=True)
        rows += [(day, "click", f"a{s}", f"a{t}", int(p), int(c)) for (s, t, p), c in zip(keys, counts)]
        seen, seen_counts = np.unique(np.stack([sources, positions], axis=1), axis=0, return_counts=True)
        rows += [(day, "view", f"a{s}", f"a{(s * 7919 + p * 104729) % articles + 1}", int(p), int(c) * 20)
                 for (s, p), c in zip(seen, seen_counts)]
    with db:
        db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
    total = db.execute("SELECT SUM(count) FROM events WHERE kind = 'click'").fetchone()[0]
    db.close()
    return int(total)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--clicks", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=30)
    args = ap.parse_args()
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode()}
    with tempfile.TemporaryDirectory() as tmp:
        index = synthetic_index(Path(tmp) / "idx", args.articles, grouped=True)
        stored = fill_clicks(index / "clicks.sqlite", args.articles, args.clicks)
        server = Server(index, free_port(), workers=2, env={"NEWSREC_TOKEN": TOKEN})
        out = {"bench": "admin_pages", **machine(), "articles": args.articles, "clicks_stored": stored}
        try:
            def get(path):
                def one(_i):
                    req = urllib.request.Request(server.url + path, headers=auth)
                    with urllib.request.urlopen(req, timeout=60) as r:
                        r.read()
                return one

            for path in ("/admin", "/admin?kind=story&sort=title", "/admin?kind=duplicate&sort=newest&page=3",
                         "/admin/readers?days=30", "/admin/readers?days=90", "/admin/check"):
                get(path)(0)  # warm: the first call per worker fills caches
                get(path)(0)
                out[path] = latencies(get(path), args.requests)
        finally:
            server.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
