"""Query latency over HTTP (2 gunicorn workers) at several index sizes, memory of the serving
processes, and exact FAISS against a plain numpy scan in the same run. Prints JSON.

    python bench/query_latency.py --sizes 10000,100000 [--queries 300] [--model english|multilingual] [--topic-stories]

--topic-stories: every article in one story with its topic (~200 articles), so each related query
must widen its candidate pool past the 64 stored neighbours (the worst case; see pool_stories).
"""
from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import KeptAlive, MemoryCgroup, Server, evict_from_page_cache, http, latencies, machine, synthetic_index


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scan_compare(index: Path, queries: int = 200) -> dict:
    """Exact FAISS search vs a numpy matrix-vector scan on the same vectors (one thread, in process)."""
    import faiss

    from recommender.index.store import IndexDir

    faiss.omp_set_num_threads(1)
    snap = IndexDir(index).open()
    vectors = np.asarray(snap.vectors)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, len(vectors), queries)
    out = {}
    out["faiss"] = latencies(lambda i: snap.search_many(vectors[rows[i]:rows[i] + 1], 60), queries)

    def numpy_scan(i: int) -> None:
        s = vectors @ vectors[rows[i]]
        np.argpartition(-s, 60)[:60]

    out["numpy"] = latencies(numpy_scan, queries)
    out["index_type"] = snap.manifest["index_type"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--memory-limit-mb", type=int, default=0,
                    help="run the server in a memory cgroup with this hard limit (needs root and cgroup v1)")
    ap.add_argument("--model", default="english", help="english (default) or multilingual: the model the server runs")
    ap.add_argument("--topic-stories", action="store_true",
                    help="stories of ~200 articles: every related query widens past its stored neighbours")
    ap.add_argument("--index", default="", help="measure this built index (by id: its own articles) instead of "
                                                "synthetic ones, e.g. a build of the Wikinews corpus")
    ap.add_argument("--editorial", action="store_true",
                    help="with --index: every queried article has two pinned stories and one excluded, and site "
                         "rules (a section never listed, a maximum age) hold for every list")
    args = ap.parse_args()
    if args.index:
        return measure_built(Path(args.index), args)
    from recommender.embed.models import Centres, model_setting, resolve_model

    folder, model_name = resolve_model(args.model, "~/.cache/newsrec")
    # Recorded as a real build of this model records them: the server refuses an index centred or
    # read another way than it embeds queries.
    built_as = {"centring": Centres.of(Path(folder)).fingerprint, "max_tokens": model_setting("max_tokens", args.model)}
    results = {"bench": "query_latency", **machine(), "model": model_name, "topic_stories": args.topic_stories,
               "sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            t0 = time.time()
            index = synthetic_index(Path(tmp) / f"i{n}", n, model=model_name, topic_stories=args.topic_stories,
                                    **built_as)
            built = time.time() - t0
            entry = {"articles": n, "build_seconds": round(built, 1), "in_process": scan_compare(index)}
            cgroup = None
            if args.memory_limit_mb:
                evict_from_page_cache(index)
                cgroup = MemoryCgroup(args.memory_limit_mb)
            server = Server(index, free_port(), workers=2, cgroup=cgroup, env={"NEWSREC_MODEL": args.model})
            try:
                rng = np.random.default_rng(2)
                ids = [f"a{k}" for k in rng.integers(1, n + 1, args.queries)]
                for i in range(10):
                    http(f"{server.url}/api/related?id={ids[i]}&k=5&min_score=-1")
                entry["related_by_id"] = latencies(lambda i: http(f"{server.url}/api/related?id={ids[i]}&k=5&min_score=-1"), args.queries)
                kept, others = KeptAlive(server.url), [f"a{k}" for k in rng.integers(1, n + 1, args.queries)]
                entry["related_by_id_kept_alive"] = latencies(
                    lambda i: kept.get(f"/api/related?id={others[i]}&k=5&min_score=-1"), args.queries)
                kept.close()
                body = {"title": "Council expands bus network",
                        "body": "The city council voted on Tuesday to expand the bus network, adding four routes.", "min_score": -1}
                entry["related_by_text"] = latencies(lambda i: http(f"{server.url}/api/related", body), args.queries)
                entry["duplicates_by_text"] = latencies(lambda i: http(f"{server.url}/api/duplicates", body), args.queries // 2)
                entry["server_pss_mb_2_workers"] = server.rss_mb()
                if cgroup is not None:
                    entry["memory_cgroup"] = cgroup.report()
            finally:
                server.stop()
                if cgroup is not None:
                    cgroup.remove()
            results["sizes"].append(entry)
            print(json.dumps(entry), flush=True)
    print(json.dumps(results, indent=2))


def measure_built(index: Path, args) -> None:
    """Related by id and by text (its own articles pasted whole) over HTTP (2 workers) on a built index,
    for a sample of its own articles; with
    --editorial, under editors' pins and excludes and site rules (written beside the index, removed after)."""
    import sqlite3

    from recommender.index.store import IndexDir
    from recommender.query.editorial import Choices, Editorial

    snap = IndexDir(index).open()
    ids = [r[0] for r in snap._db().execute("SELECT id FROM articles ORDER BY key")]
    rng = np.random.default_rng(2)
    asked = [ids[i] for i in rng.integers(0, len(ids), args.queries)]
    # By text: the index's own articles pasted whole (title and body), as an editor's draft would be.
    pasted = [snap.record(int(k)) for k in rng.choice(np.asarray(snap.keys), min(args.queries, len(ids)))]
    pasted = [{"title": r.title, "body": r.body} for r in pasted]
    snap.close()
    env = {"NEWSREC_MODEL": args.model}
    editorial = Editorial(index)
    made = not editorial.path.exists()
    with tempfile.TemporaryDirectory() as tmp:
        if args.editorial:
            for n, article in enumerate(dict.fromkeys(asked)):
                others = [ids[(n * 7919 + j) % len(ids)] for j in (1, 2, 3)]
                others = [o for o in others if o != article]
                editorial.put(article, Choices(tuple(others[:2]), tuple(others[2:])))
            rules = Path(tmp) / "rules.json"
            rules.write_text(json.dumps({"never": {"sections": ["sponsored"]}, "max_age_days": {"*": 36500}}))
            env["NEWSREC_SITE_RULES"] = str(rules)
        server = Server(index, free_port(), workers=2, env=env)
        try:
            for i in range(10):
                http(f"{server.url}/api/related?id={asked[i]}&k=5")
            entry = {"index": str(index), "articles": len(ids), "editorial": args.editorial,
                     "related_by_id": latencies(lambda i: http(f"{server.url}/api/related?id={asked[i]}&k=5"),
                                                args.queries)}
            kept, others = KeptAlive(server.url), [ids[i] for i in rng.integers(0, len(ids), args.queries)]
            entry["related_by_id_kept_alive"] = latencies(lambda i: kept.get(f"/api/related?id={others[i]}&k=5"),
                                                          args.queries)
            entry["related_by_text_kept_alive"] = latencies(
                lambda i: kept.post("/api/related", pasted[i % len(pasted)]), args.queries)
            entry["pasted_words_median"] = int(np.median([len(p["body"].split()) for p in pasted]))
            kept.close()
        finally:
            server.stop()
            if args.editorial:
                if made:
                    for suffix in ("", "-wal", "-shm"):
                        Path(str(editorial.path) + suffix).unlink(missing_ok=True)
                else:
                    with sqlite3.connect(editorial.path) as db:
                        db.executemany("DELETE FROM choices WHERE article_id = ?", [(a,) for a in set(asked)])
    print(json.dumps({"bench": "query_latency", **machine(), **entry}, indent=2))


if __name__ == "__main__":
    main()
