"""Load benchmark: concurrent clients against `newsrec serve` (2 gunicorn workers) on loopback.
Reports requests/s and p50/p99 for related-by-id, related-by-text and duplicates. Bounded in
count and time; stops by itself. Prints JSON.

    python bench/load.py --index index/demo [--clients 8] [--seconds 10]
"""
from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from _common import Server, http, machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(fn, clients: int, seconds: float, max_requests: int = 200_000) -> dict:
    times: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.time() + seconds

    def worker(n: int) -> None:
        i = 0
        while time.time() < deadline and len(times) < max_requests:
            t = time.perf_counter()
            try:
                fn(n * 100_003 + i)
                with lock:
                    times.append((time.perf_counter() - t) * 1000)
            except Exception:  # counted, the run goes on
                with lock:
                    errors[0] += 1
            i += 1

    started = time.time()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    a = np.asarray(times) if times else np.zeros(1)
    return {"requests": len(times), "errors": errors[0], "requests_per_s": round(len(times) / elapsed, 1),
            "p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", default="index/demo")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    index = Path(args.index).resolve()
    name = (index / "CURRENT").read_text().strip()
    db = sqlite3.connect(f"file:{index / 'snapshots' / name / 'articles.sqlite'}?mode=ro", uri=True)
    ids = [r[0] for r in db.execute("SELECT id FROM articles ORDER BY key LIMIT 2000")]
    texts = [dict(title=t, body=b[:1500]) for t, b in db.execute("SELECT title, body FROM articles ORDER BY key LIMIT 200")]
    server = Server(index, free_port(), workers=2)
    try:
        for i in range(20):
            http(f"{server.url}/api/related?id={ids[i]}")
        out = {"bench": "load", **machine(), "index": str(args.index), "articles": len(ids), "clients": args.clients,
               "workers": 2, "seconds_each": args.seconds}
        out["related_by_id"] = run(lambda i: http(f"{server.url}/api/related?id={ids[i % len(ids)]}&k=5"), args.clients, args.seconds)
        out["related_by_text"] = run(lambda i: http(f"{server.url}/api/related", texts[i % len(texts)]), args.clients, args.seconds)
        out["duplicates"] = run(lambda i: http(f"{server.url}/api/duplicates", texts[i % len(texts)]), args.clients, args.seconds)
        out["server_pss_mb"] = server.rss_mb()
    finally:
        server.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
