"""newsrec's related list beside what publishers already run, on the Wikinews corpus, in one sitting.

    python bench/peers.py --shared ../shared [--sets full,subset] [--shapes whole,cut40,headlines] [--model english]

Each peer is started the way its users start it, over the same articles:
- newsrec over HTTP (`newsrec build`, then `newsrec serve`: gunicorn, two workers), and the plain cosine
  top 5 of the same model's vectors (no list machinery);
- MariaDB (Debian's `mariadb-server`, started here on a socket in a temporary directory): the
  Contextual Related Posts query (MATCH(title, content) AGAINST the title and content, natural
  language mode) and YARPP's (its 20 most frequent body words against the content, title words
  against the title), each on MyISAM and InnoDB FULLTEXT indexes;
- tantivy's more_like_this (Lucene's algorithm with Elasticsearch's defaults) over title and body;
- Qdrant (`qdrant-client` in local mode) over the same vectors: recommend by the article's id, and a
  nearest query with maximal marginal relevance (diversity 0.5).

Sets: `full` (every article) and `subset` (1,600: every article the labels name, then a seeded
sample). Shapes: `whole` articles, `cut40`: title and the first 40 words of the body, and `headlines`:
the title alone (a feed without bodies). Each
prints recall@5 of the editors' "Related news" links (44 queries), same-topic precision@5 (61 queries)
and per-query latency (median, p99, ms; newsrec's over HTTP on loopback, the others in process); and beside
each other peer, newsrec's scores less its scores query by query (`newsrec_less_this`: the queries where
newsrec finds more, fewer and the same, and a paired bootstrap's 95% interval of the mean difference).
Missing peers are installed first (pip: the `peers` extra; apt: mariadb-server).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from recommender.evaluation.datasets import read_rows  # noqa: E402
from recommender.evaluation.metrics import paired_difference  # noqa: E402

SUBSET = 1600
CUT_WORDS = 40
K = 5
# MySQL's and MariaDB's built-in full-text stop words are applied by the server; YARPP also drops
# these before counting its keywords (its own English list, abridged to the words that matter here).
YARPP_STOP = frozenset("""a about after all also an and any are as at be been but by can could did do does for from
had has have he her his how i if in into is it its just more most new no not of on one or our out said says
she so some than that the their them then there these they this to two up was we were what when which who will
with would you""".split())


def ensure_peers() -> None:
    """Install what the peers need when it is missing: the `peers` extra, and Debian's mariadb-server."""
    try:
        import pymysql  # noqa: F401
        import qdrant_client  # noqa: F401
        import tantivy  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[peers]"], check=True)
    if not shutil.which("mariadbd"):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "mariadb-server"], check=True, env=env,
                       stdout=subprocess.DEVNULL)


def load(shared: Path) -> tuple[list[dict], list[dict]]:
    rows = read_rows(shared / "corpus" / "wikinews_en.jsonl.gz", None)
    labels = read_rows(shared / "corpus" / "wikinews_en_related.jsonl", None)
    return rows, labels


def subset(rows: list[dict], labels: list[dict], size: int, seed: int = 0) -> list[dict]:
    named = {l["id"] for l in labels} | {x for l in labels for x in l.get("related_news", []) + l.get("same_topic", [])}
    keep = [r for r in rows if r["id"] in named]
    rest = [r for r in rows if r["id"] not in named]
    random.Random(seed).shuffle(rest)
    chosen = {r["id"] for r in keep + rest[: max(0, size - len(keep))]}
    return [r for r in rows if r["id"] in chosen]


SHAPES = ("whole", "cut40", "headlines")


def shaped(rows: list[dict], shape: str) -> list[dict]:
    if shape not in SHAPES:
        raise SystemExit(f"unknown shape {shape!r}: one of {', '.join(SHAPES)}")
    out = []
    for r in rows:
        body = {"whole": r["body"], "cut40": " ".join(r["body"].split()[:CUT_WORDS]), "headlines": ""}[shape]
        out.append({"id": r["id"], "title": r["title"], "body": body, "published": r.get("date", ""),
                    "url": r.get("url", ""), "source": "Wikinews"})
    return out


PER_QUERY = "per_query"  # each query's scores, for the paired comparison with newsrec (not printed)


class Scorer:
    def __init__(self, records: list[dict], labels: list[dict]):
        known = {r["id"] for r in records}
        self.links = {l["id"]: [x for x in l["related_news"] if x in known] for l in labels
                      if l["id"] in known and any(x in known for x in l.get("related_news", []))}
        self.topic = {l["id"]: set(l["same_topic"]) for l in labels if l["id"] in known and l.get("same_topic")}
        self.queries = sorted(set(self.links) | set(self.topic))

    def score(self, lists: dict[str, list[str]], times: list[float]) -> dict:
        recall = [len(set(lists[q][:K]) & set(w)) / len(w) for q, w in self.links.items()]
        precision = [sum(x in t for x in lists[q][:K]) / K for q, t in self.topic.items()]
        ms = np.asarray(times) * 1000
        return {"recall_at_5": round(float(np.mean(recall)), 3), "same_topic_p_at_5": round(float(np.mean(precision)), 3),
                "p50_ms": round(float(np.median(ms)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
                PER_QUERY: {"recall_at_5": recall, "same_topic_p_at_5": precision}}


def against_newsrec(results: dict[str, dict]) -> dict[str, dict]:
    """For every peer, newsrec's per-query scores less the peer's (metrics.paired_difference): the
    queries where newsrec finds more and fewer, and a 95% interval of the mean difference."""
    ours = next((r[PER_QUERY] for peer, r in results.items() if peer.startswith("newsrec")), None)
    if ours is None:
        return {}
    return {peer: {m: paired_difference(ours[m], r[PER_QUERY][m]) for m in ours}
            for peer, r in results.items() if not peer.startswith("newsrec")}


def timed(queries, run) -> tuple[dict[str, list[str]], list[float]]:
    lists, times = {}, []
    for q in queries:
        start = time.perf_counter()
        lists[q] = run(q)
        times.append(time.perf_counter() - start)
    return lists, times


# --- newsrec over HTTP, and the plain cosine of its vectors ------------------------------------------------


def newsrec_peers(records, scorer, tmp: Path, model: str) -> tuple[dict, np.ndarray, list[str]]:
    from _common import Server, free_port
    from recommender.index.store import IndexDir

    data = tmp / "articles.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    index = tmp / "idx"
    env = {**os.environ, "NEWSREC_MODEL": model}
    started = time.time()
    subprocess.run([sys.executable, "-m", "web.cli", "build", "--input", str(data), "--index", str(index), "--quiet"],
                   check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    build_s = time.time() - started
    server = Server(index, free_port(), workers=2, env=env)
    try:
        url = server.url
        for q in scorer.queries[:4]:  # each worker loads the model on its first request
            urllib.request.urlopen(f"{url}/api/related?id={q}&k={K}").read()

        def ask(q: str) -> list[str]:
            with urllib.request.urlopen(f"{url}/api/related?id={q}&k={K}", timeout=30) as r:
                return [i["id"] for i in json.loads(r.read())["items"]]

        out = {"newsrec (HTTP)": scorer.score(*timed(scorer.queries, ask))}
    finally:
        server.stop()
    snap = IndexDir(index).open()
    try:
        ids = [snap.record(int(k)).id for k in snap.keys]
        vectors = np.asarray(snap.vectors, dtype=np.float32)
        size = sum(p.stat().st_size for p in (IndexDir(index).snapshots / snap.name).iterdir())
        lexical_mb = _lexical_bytes(IndexDir(index).snapshots / snap.name / "articles.sqlite") / 1e6
    finally:
        snap.close()
    row = {i: n for n, i in enumerate(ids)}

    def cosine(q: str) -> list[str]:
        sims = vectors @ vectors[row[q]]
        sims[row[q]] = -np.inf
        return [ids[j] for j in np.argsort(-sims)[:K]]

    out["plain cosine, same model"] = scorer.score(*timed(scorer.queries, cosine))
    out["newsrec (HTTP)"].update(build_s=round(build_s, 1), index_mb=round(size / 1e6, 1), lexical_mb=round(lexical_mb, 1))
    return out, vectors, ids


def _lexical_bytes(db: Path) -> int:
    """Bytes the lexical part takes in the snapshot's SQLite file (dbstat when compiled in, else 0)."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'lexical%'").fetchone()[0] or 0)
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


# --- Qdrant, local mode --------------------------------------------------------------------------------------


def qdrant_peers(vectors: np.ndarray, ids: list[str], scorer) -> dict:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection("news", vectors_config=models.VectorParams(size=vectors.shape[1], distance=models.Distance.COSINE))
    client.upload_points("news", [models.PointStruct(id=n, vector=v.tolist()) for n, v in enumerate(vectors)])
    row = {i: n for n, i in enumerate(ids)}
    out = {}

    def recommend(q: str) -> list[str]:
        hits = client.query_points("news", query=models.RecommendQuery(recommend=models.RecommendInput(positive=[row[q]])),
                                   limit=K).points
        return [ids[h.id] for h in hits]

    out["Qdrant recommend (positive id)"] = scorer.score(*timed(scorer.queries, recommend))

    def mmr(q: str) -> list[str]:
        hits = client.query_points("news", query=models.NearestQuery(nearest=vectors[row[q]].tolist(),
                                                                     mmr=models.Mmr(diversity=0.5)),
                                   limit=K + 1).points
        return [ids[h.id] for h in hits if h.id != row[q]][:K]

    try:
        out["Qdrant nearest + MMR 0.5"] = scorer.score(*timed(scorer.queries, mmr))
    except Exception as exc:  # an older client's local mode may lack MMR: say so rather than stop
        out["Qdrant nearest + MMR 0.5"] = {"error": f"{type(exc).__name__}: {exc}"[:120]}
    client.close()
    return out


# --- tantivy's more_like_this ---------------------------------------------------------------------------------


def tantivy_peer(records: list[dict], scorer, tmp: Path) -> dict:
    import tantivy

    schema = (tantivy.SchemaBuilder().add_integer_field("row", stored=True, indexed=True)
              .add_text_field("title", stored=True).add_text_field("body", stored=True).build())
    folder = tmp / "tantivy"
    folder.mkdir()
    index = tantivy.Index(schema, path=str(folder))
    writer = index.writer()
    for n, r in enumerate(records):
        writer.add_document(tantivy.Document(row=n, title=r["title"], body=r["body"]))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    searcher = index.searcher()
    address = {}
    for n in range(len(records)):
        hits = searcher.search(tantivy.Query.term_query(schema, "row", n), 1).hits
        address[records[n]["id"]] = hits[0][1]
    ids = [r["id"] for r in records]

    def mlt(q: str) -> list[str]:
        query = tantivy.Query.more_like_this_query(address[q])
        found = []
        for _, addr in searcher.search(query, K + 1).hits:
            rid = ids[searcher.doc(addr)["row"][0]]
            if rid != q:
                found.append(rid)
        return found[:K]

    return {"tantivy more_like_this (ES defaults)": scorer.score(*timed(scorer.queries, mlt))}


# --- MariaDB: the WordPress plugins' queries ------------------------------------------------------------------


class MariaDB:
    """A throwaway MariaDB server on a socket in a temporary directory (no network)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.sock = folder / "mysqld.sock"
        data = folder / "data"
        subprocess.run(["mariadb-install-db", f"--datadir={data}", "--user=root", "--auth-root-authentication-method=normal",
                        "--skip-test-db"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc = subprocess.Popen(["mariadbd", f"--datadir={data}", f"--socket={self.sock}", "--skip-networking",
                                      "--user=root", f"--pid-file={folder / 'mysqld.pid'}", "--innodb-buffer-pool-size=512M",
                                      "--ft-min-word-len=3", "--innodb-ft-min-token-size=3"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not self.sock.exists():
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("MariaDB did not start")
            time.sleep(0.1)

    def connect(self):
        import pymysql

        deadline = time.time() + 30
        while True:
            try:
                conn = pymysql.connect(unix_socket=str(self.sock), user="root", charset="utf8mb4", autocommit=True)
                conn.cursor().execute("CREATE DATABASE IF NOT EXISTS bench")
                conn.select_db("bench")
                return conn
            except pymysql.err.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def mariadb_peers(records: list[dict], scorer, db: MariaDB, tag: str) -> dict:
    conn = db.connect()
    cur = conn.cursor()
    out = {}
    row = {r["id"]: n for n, r in enumerate(records)}
    for engine in ("MyISAM", "InnoDB"):
        table = f"posts_{tag}_{engine.lower()}"
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} (ID INT PRIMARY KEY, post_title TEXT, post_content MEDIUMTEXT) "
                    f"ENGINE={engine} DEFAULT CHARSET=utf8mb4")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)", [(n, r["title"], r["body"]) for n, r in enumerate(records)])
        cur.execute(f"ALTER TABLE {table} ADD FULLTEXT crp (post_title, post_content)")
        cur.execute(f"ALTER TABLE {table} ADD FULLTEXT yarpp_title (post_title)")
        cur.execute(f"ALTER TABLE {table} ADD FULLTEXT yarpp_content (post_content)")

        def crp(q: str) -> list[str]:
            r = records[row[q]]
            text = _plain(f"{r['title']} {r['body']}")
            cur.execute(f"SELECT ID FROM {table} WHERE MATCH(post_title, post_content) AGAINST (%s) AND ID != %s "
                        f"ORDER BY MATCH(post_title, post_content) AGAINST (%s) DESC LIMIT {K}", (text, row[q], text))
            return [records[i]["id"] for (i,) in cur.fetchall()]

        def yarpp(q: str) -> list[str]:
            r = records[row[q]]
            body_words = _keywords(r["body"], 20)
            title_words = _keywords(r["title"], 20)
            cur.execute(f"SELECT ID, MATCH(post_content) AGAINST (%s) + MATCH(post_title) AGAINST (%s) AS score "
                        f"FROM {table} WHERE ID != %s HAVING score > 0 ORDER BY score DESC LIMIT {K}",
                        (body_words, title_words, row[q]))
            return [records[i]["id"] for i, _ in cur.fetchall()]

        out[f"CRP query, MariaDB {engine}"] = scorer.score(*timed(scorer.queries, crp))
        out[f"YARPP query, MariaDB {engine}"] = scorer.score(*timed(scorer.queries, yarpp))
        cur.execute(f"DROP TABLE {table}")
    conn.close()
    return out


def _plain(text: str) -> str:
    """Words and spaces only, as the plugins pass text to MATCH ... AGAINST (InnoDB's parser refuses a
    stray operator such as a trailing '-' even in natural language mode)."""
    return re.sub(r"[^\w\s]+", " ", text)


def _keywords(text: str, n: int) -> str:
    """YARPP's keywords: the text's n most frequent words of three letters or more, stop words left out."""
    words = [w for w in re.findall(r"[^\W_]+", text.lower()) if len(w) > 2 and w not in YARPP_STOP]
    return " ".join(w for w, _ in collections.Counter(words).most_common(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--sets", default="full,subset")
    ap.add_argument("--shapes", default="whole,cut40")
    ap.add_argument("--model", default="english")
    ap.add_argument("--no-install", action="store_true", help="fail instead of installing missing peers")
    args = ap.parse_args()
    if not args.no_install:
        ensure_peers()
    rows, labels = load(Path(args.shared))
    sets = {"full": rows, "subset": subset(rows, labels, SUBSET)}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = MariaDB(tmp / "mariadb")
        try:
            for set_name in args.sets.split(","):
                for shape in args.shapes.split(","):
                    records = shaped(sets[set_name], shape)
                    scorer = Scorer(records, labels)
                    work = tmp / f"{set_name}-{shape}"
                    work.mkdir()
                    results, vectors, ids = newsrec_peers(records, scorer, work, args.model)
                    results.update(qdrant_peers(vectors, ids, scorer))
                    results.update(tantivy_peer(records, scorer, work))
                    results.update(mariadb_peers(records, scorer, db, f"{set_name}_{shape}".replace("-", "_")))
                    paired = against_newsrec(results)
                    for peer, numbers in results.items():
                        numbers = {k: v for k, v in numbers.items() if k != PER_QUERY}
                        if peer in paired:
                            numbers["newsrec_less_this"] = paired[peer]
                        print(json.dumps({"set": set_name, "articles": len(records), "shape": shape, "model": args.model,
                                          "peer": peer, **numbers}), flush=True)
        finally:
            db.stop()


if __name__ == "__main__":
    main()
