"""The index on disk: a directory of immutable snapshots and a CURRENT pointer.

    INDEX_DIR/
      CURRENT                  name of the live snapshot (replaced by rename: atomic)
      snapshots/<name>/        one complete, immutable snapshot
        manifest.json          model, backend, dimension, count, build time, versions
        articles.sqlite        metadata, cleaned body, also_read, removed, groups, duplicate links
        vectors.npy            raw float32 vectors, row order = keys.npy (for retraining without re-embedding)
        keys.npy               stable int64 article keys, ascending (the FAISS IDMap ids)
        minhash.npy            uint32 MinHash signatures (near-duplicate LSH)
        faiss.index            exact inner product (IDMap) up to ~200k articles, IVF-SQ8 above
      .tmp-*/                  a snapshot being written; never opened, removed at start-up

A writer builds a complete snapshot in a temporary directory, fsyncs it, renames it into
snapshots/, then replaces CURRENT. A process killed at any moment leaves the previous CURRENT
pointing at a complete snapshot. Readers load a snapshot once and never see it change.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .errors import ArticleNotFound, IndexMismatch, IndexNotReady
from .stories import group_centroids

__all__ = ["IndexDir", "Snapshot", "SnapshotWriter", "FORMAT_VERSION"]

FORMAT_VERSION = 2
EXACT_LIMIT = 200_000  # above this many articles the FAISS index is IVF
# Share of IVF lists probed per query. bench/ann_recall.py, real MiniLM embeddings (29k texts):
# recall@10 vs exact 0.952 probing 4.7% of lists, 0.976 at 9.4%, 0.991 at 18.8%; synthetic 1M: 0.945 at 10%
# (4.5 ms a query, one thread). A tenth keeps real recall above 0.95 with room to spare.
PROBE_SHARE = 0.1
KEEP_SNAPSHOTS = 3  # the live one and two before it, so a server mid-swap never loses its files

_SCHEMA = """
CREATE TABLE articles (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    published TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    section TEXT NOT NULL DEFAULT '',
    lang TEXT NOT NULL DEFAULT '',
    image TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    also_read TEXT NOT NULL DEFAULT '[]',
    removed TEXT NOT NULL DEFAULT '[]',
    dup_group INTEGER,
    story_group INTEGER
);
CREATE INDEX articles_url ON articles(url);
CREATE INDEX articles_hash ON articles(body_hash);
CREATE TABLE links (
    a INTEGER NOT NULL,
    b INTEGER NOT NULL,
    level TEXT NOT NULL,
    cosine REAL,
    jaccard REAL,
    containment REAL,
    PRIMARY KEY (a, b)
);
CREATE INDEX links_b ON links(b);
"""

ARTICLE_COLUMNS = (
    "key", "id", "title", "url", "published", "source", "section", "lang", "image", "body",
    "body_hash", "also_read", "removed", "dup_group", "story_group",
)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for file in path.iterdir():
        if file.is_file():
            with open(file, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(path)


def _date_days(value: str) -> int:
    if not value:
        return -1
    try:
        return dt.date.fromisoformat(value[:10]).toordinal()
    except ValueError:
        return -1


@functools.lru_cache(maxsize=65536)
def _time_days(value: str) -> float:
    """Publication time in fractional days (ordinal), NaN when unknown."""
    if not value:
        return float("nan")
    try:
        if len(value) > 10:
            moment = dt.datetime.fromisoformat(value)
            return moment.toordinal() + (moment.hour * 3600 + moment.minute * 60 + moment.second) / 86400
        return float(dt.date.fromisoformat(value[:10]).toordinal())
    except ValueError:
        return float("nan")


class IndexDir:
    """An index directory: finds, opens and replaces snapshots."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def snapshots(self) -> Path:
        return self.path / "snapshots"

    def current_name(self) -> str | None:
        try:
            name = (self.path / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def exists(self) -> bool:
        name = self.current_name()
        return bool(name) and (self.snapshots / name / "manifest.json").exists()

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """One writer at a time per index directory (readers never take it)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def clean_leftovers(self) -> list[str]:
        """Remove half-written snapshots left by a killed writer. Safe only under the write lock."""
        removed = []
        if not self.path.exists():
            return removed
        for entry in self.path.iterdir():
            if entry.name.startswith(".tmp-") and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        with contextlib.suppress(FileNotFoundError):
            (self.path / "CURRENT.tmp").unlink()
        return removed

    def new_temp(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".tmp-{secrets.token_hex(6)}"
        tmp.mkdir()
        return tmp

    def publish(self, tmp: Path) -> str:
        """Move a complete snapshot into place and point CURRENT at it (the commit point)."""
        _fsync_tree(tmp)
        name = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)
        self.snapshots.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, self.snapshots / name)
        _fsync_dir(self.snapshots)
        pointer = self.path / "CURRENT.tmp"
        with open(pointer, "w", encoding="utf-8") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(pointer, self.path / "CURRENT")
        _fsync_dir(self.path)
        self._prune(keep=name)
        return name

    def _prune(self, keep: str) -> None:
        names = sorted(p.name for p in self.snapshots.iterdir() if p.is_dir())
        old = [n for n in names if n != keep][: max(0, len(names) - KEEP_SNAPSHOTS)]
        for n in old:
            shutil.rmtree(self.snapshots / n, ignore_errors=True)

    def open(self, *, model: str | None = None, dim: int | None = None, mmap: bool = True) -> "Snapshot":
        name = self.current_name()
        if not name:
            raise IndexNotReady(
                f"no index at {str(self.path)!r}: build one with `newsrec build --input FILE --index {self.path}`"
            )
        snap = Snapshot(self.snapshots / name, mmap=mmap)
        snap.check(model=model, dim=dim, index_path=str(self.path))
        return snap


@dataclass(frozen=True)
class Hit:
    row: int
    key: int
    score: float


class Snapshot:
    """One loaded, immutable snapshot. Thread-safe for reads: each thread gets its own SQLite connection."""

    def __init__(self, path: Path, *, mmap: bool = True):
        import faiss

        self.path = Path(path)
        self.name = self.path.name
        manifest_file = self.path / "manifest.json"
        if not manifest_file.exists():
            raise IndexNotReady(f"snapshot {self.name} is incomplete (no manifest.json); rebuild the index")
        self.manifest: dict[str, Any] = json.loads(manifest_file.read_text(encoding="utf-8"))
        mode = self._mode = "r" if mmap else None
        self.keys: np.ndarray = np.load(self.path / "keys.npy", mmap_mode=mode)
        self.vectors: np.ndarray = np.load(self.path / "vectors.npy", mmap_mode=mode)
        self.minhash: np.ndarray = np.load(self.path / "minhash.npy", mmap_mode=mode)
        arrays = np.load(self.path / "rows.npz")
        self.published_days: np.ndarray = arrays["published_days"]
        self.dup_group: np.ndarray = arrays["dup_group"]
        self.story_group: np.ndarray = arrays["story_group"]
        self.body_len: np.ndarray = arrays["body_len"]
        self.time_days: np.ndarray = arrays["time_days"]  # fractional days, NaN unknown
        has_nb = (self.path / "neighbours.npy").exists()
        self.neighbours = np.load(self.path / "neighbours.npy", mmap_mode=mode) if has_nb else None
        self.neighbour_scores = np.load(self.path / "neighbour_scores.npy", mmap_mode=mode) if has_nb else None
        self.precise_time: np.ndarray = arrays["precise_time"]  # a time of day is known
        has_stories = (self.path / "story_ids.npy").exists()
        self.story_ids = np.load(self.path / "story_ids.npy") if has_stories else np.zeros(0, dtype=np.int64)
        self.story_centroids = (np.load(self.path / "story_centroids.npy", mmap_mode=mode) if has_stories
                                else np.zeros((0, int(self.manifest.get("dim", 1))), dtype=np.float32))
        # Memory-mapped (exact and IVF alike): gunicorn workers share one copy through the page cache.
        flags = faiss.IO_FLAG_MMAP if mmap else 0
        self.index = faiss.read_index(str(self.path / "faiss.index"), flags)
        if hasattr(self.index, "nprobe") or hasattr(faiss, "extract_index_ivf"):
            with contextlib.suppress(Exception):
                faiss.extract_index_ivf(self.index).nprobe = int(self.manifest.get("nprobe", 16))
        self.approximate = self.manifest.get("index_type", "flat") != "flat"
        self._local = threading.local()
        self._bands = None
        self._lock = threading.Lock()
        self.loaded_at = time.time()

    # --- checks -----------------------------------------------------------------------------

    def check(self, *, model: str | None, dim: int | None, index_path: str) -> None:
        if self.manifest.get("format") != FORMAT_VERSION:
            raise IndexMismatch(
                f"index format {self.manifest.get('format')} is not {FORMAT_VERSION}: "
                f"rebuild with `newsrec build --input FILE --index {index_path}`"
            )
        if dim is not None and int(self.manifest["dim"]) != dim:
            raise IndexMismatch(
                f"index {index_path!r} has dimension {self.manifest['dim']} but the embedder gives {dim}: "
                f"rebuild with `newsrec build --input FILE --index {index_path}` or configure the model it was built with "
                f"({self.manifest.get('model')!r}, backend {self.manifest.get('backend')!r})"
            )
        if model is not None and self.manifest.get("model") != model:
            raise IndexMismatch(
                f"index {index_path!r} was built with model {self.manifest.get('model')!r}, not {model!r}: "
                f"rebuild with `newsrec build --input FILE --index {index_path}` or set NEWSREC_MODEL to match"
            )

    # --- metadata ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return int(self.keys.shape[0])

    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            uri = f"file:{self.path / 'articles.sqlite'}?mode=ro&immutable=1"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def row_of_key(self, key: int) -> int:
        row = int(np.searchsorted(self.keys, key))
        if row >= self.count or int(self.keys[row]) != key:
            raise ArticleNotFound(f"no article with key {key}")
        return row

    def key_of_id(self, article_id: str) -> int:
        found = self.db().execute("SELECT key FROM articles WHERE id = ?", (article_id,)).fetchone()
        if found is None:
            raise ArticleNotFound(f"no article with id {article_id!r} in the index", field="id")
        return int(found[0])

    def key_of_url(self, url: str) -> int:
        found = self.db().execute("SELECT key FROM articles WHERE url = ?", (url,)).fetchone()
        if found is None:
            raise ArticleNotFound(f"no article with url {url!r} in the index", field="url")
        return int(found[0])

    def articles(self, keys: Sequence[int], columns: Sequence[str] = ARTICLE_COLUMNS) -> dict[int, dict]:
        if not len(keys):
            return {}
        cols = ", ".join(c for c in columns if c in ARTICLE_COLUMNS)
        out: dict[int, dict] = {}
        keys = [int(k) for k in keys]
        for i in range(0, len(keys), 900):
            chunk = keys[i : i + 900]
            marks = ",".join("?" * len(chunk))
            for row in self.db().execute(f"SELECT {cols} FROM articles WHERE key IN ({marks})", chunk):
                out[int(row["key"])] = dict(row)
        return out

    def article(self, key: int) -> dict:
        found = self.articles([key])
        if key not in found:
            raise ArticleNotFound(f"no article with key {key}")
        record = found[key]
        record["also_read"] = json.loads(record["also_read"])
        record["removed"] = json.loads(record["removed"])
        return record

    def links_of(self, key: int) -> list[dict]:
        rows = self.db().execute(
            "SELECT a, b, level, cosine, jaccard, containment FROM links WHERE a = ? OR b = ?", (key, key)
        ).fetchall()
        return [dict(r) for r in rows]

    def group_members(self, column: str, group: int) -> list[int]:
        assert column in ("dup_group", "story_group")
        return [int(r[0]) for r in self.db().execute(f"SELECT key FROM articles WHERE {column} = ? ORDER BY key", (group,))]

    def iter_groups(self, column: str, min_size: int = 2) -> list[tuple[int, list[int]]]:
        assert column in ("dup_group", "story_group")
        rows = self.db().execute(
            f"SELECT {column} AS g, GROUP_CONCAT(key) AS members, COUNT(*) AS n FROM articles "
            f"GROUP BY {column} HAVING n >= ? ORDER BY n DESC, g", (min_size,)
        ).fetchall()
        return [(int(r["g"]), sorted(int(k) for k in r["members"].split(","))) for r in rows]

    # --- search -----------------------------------------------------------------------------

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        """The k nearest articles by inner product (cosine: vectors are normalised)."""
        if self.count == 0 or k <= 0:
            return []
        q = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        scores, keys = self.index.search(q, min(k, self.count))
        valid = keys[0] >= 0
        found_keys = keys[0][valid]
        rows = np.searchsorted(self.keys, found_keys)
        found_scores = scores[0][valid]
        if self.approximate and len(rows):
            # Quantised codes give approximate scores: re-score the hits with the raw vectors.
            rows = np.sort(rows)
            exact = np.asarray(self.vectors[rows], dtype=np.float32) @ q[0]
            order = np.argsort(-exact, kind="stable")
            rows, found_scores = rows[order], exact[order]
            found_keys = self.keys[rows]
        return [Hit(int(r), int(key), float(score)) for r, key, score in zip(rows, found_keys, found_scores)]

    def story_centroid(self, group: int) -> np.ndarray | None:
        """The centroid of a story group told more than once, or None."""
        found, centroids = self._centroids_of(np.asarray([group], dtype=np.int64))
        return centroids[0] if found[0] else None

    def story_vectors(self, rows: np.ndarray, own: np.ndarray | None = None) -> np.ndarray:
        """For each row, its story group's centroid (normalised mean vector), or its own vector when it
        is alone in its story. `own`: the rows' vectors when the caller has already read them."""
        rows = np.asarray(rows, dtype=np.int64)
        own = self.vectors[rows] if own is None else own
        out = np.asarray(own, dtype=np.float32).reshape(len(rows), -1).copy()
        found, centroids = self._centroids_of(self.story_group[rows])
        out[found] = centroids[found]
        return out

    def _centroids_of(self, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, centroids) for story group ids; rows not found hold zeros."""
        groups = np.asarray(groups, dtype=np.int64)
        out = np.zeros((len(groups), self.story_centroids.shape[1]), dtype=np.float32)
        if not len(self.story_ids) or not len(groups):
            return np.zeros(len(groups), dtype=bool), out
        at = np.minimum(np.searchsorted(self.story_ids, groups), len(self.story_ids) - 1)
        found = self.story_ids[at] == groups
        out[found] = self.story_centroids[at[found]]
        return found, out

    def stored_neighbours(self, row: int, k: int) -> list[Hit] | None:
        """The row's precomputed nearest articles (up to k), or None when not stored or too few."""
        if self.neighbours is None or k > self.neighbours.shape[1]:
            return None
        keys = np.asarray(self.neighbours[row][:k])
        sims = np.asarray(self.neighbour_scores[row][:k])
        keys, sims = keys[keys >= 0], sims[keys >= 0]
        rows = np.searchsorted(self.keys, keys)
        rows = np.minimum(rows, self.count - 1)
        present = self.keys[rows] == keys  # articles deleted since are skipped
        return [Hit(int(r), int(key), float(s)) for r, key, s in zip(rows[present], keys[present], sims[present])]

    def bands(self, threshold: float):
        """The LSH band table over this snapshot's MinHash signatures: the one written with the snapshot
        (memory-mapped, shared by workers) when its threshold matches, else built once on first use."""
        from .duplicates import BandTable

        with self._lock:
            if self._bands is None or self._bands[0] != threshold:
                if self.manifest.get("band_threshold") == threshold and (self.path / "band_keys.npy").exists():
                    table = BandTable(np.load(self.path / "band_keys.npy", mmap_mode=self._mode),
                                      np.load(self.path / "band_rows.npy", mmap_mode=self._mode),
                                      int(self.manifest["bands"]), int(self.manifest["band_rows"]))
                else:
                    table = BandTable.build(np.asarray(self.minhash), threshold)
                self._bands = (threshold, table)
            return self._bands[1]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class SnapshotWriter:
    """Writes the files of one snapshot into a temporary directory."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.conn = sqlite3.connect(tmp / "articles.sqlite")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(_SCHEMA)

    def write_articles(self, records: Iterable[dict]) -> None:
        cols = ARTICLE_COLUMNS
        sql = f"INSERT INTO articles ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        self.conn.executemany(sql, ([r.get(c) for c in cols] for r in records))

    def write_links(self, links: Iterable[tuple]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO links (a, b, level, cosine, jaccard, containment) VALUES (?, ?, ?, ?, ?, ?)", links
        )

    def finish(
        self,
        *,
        keys: np.ndarray,
        vectors: np.ndarray,
        minhash: np.ndarray,
        published: Sequence[str],
        body_len: np.ndarray,
        dup_group: np.ndarray,
        story_group: np.ndarray,
        manifest: dict,
        neighbours: np.ndarray | None = None,
        neighbour_scores: np.ndarray | None = None,
        band_threshold: float | None = None,
    ) -> None:
        import faiss

        from .duplicates import BandTable

        self.conn.commit()
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("PRAGMA journal_mode=DELETE")
        self.conn.close()
        np.save(self.tmp / "keys.npy", np.asarray(keys, dtype=np.int64))
        np.save(self.tmp / "vectors.npy", np.asarray(vectors, dtype=np.float32))
        np.save(self.tmp / "minhash.npy", np.asarray(minhash, dtype=np.uint32))
        if neighbours is not None and len(neighbours) == len(keys):
            np.save(self.tmp / "neighbours.npy", np.asarray(neighbours, dtype=np.int64))
            np.save(self.tmp / "neighbour_scores.npy", np.asarray(neighbour_scores, dtype=np.float32))
        np.savez(
            self.tmp / "rows.npz",
            published_days=np.asarray([_date_days(p) for p in published], dtype=np.int32),
            dup_group=np.asarray(dup_group, dtype=np.int64),
            story_group=np.asarray(story_group, dtype=np.int64),
            body_len=np.asarray(body_len, dtype=np.int32),
            time_days=np.asarray([_time_days(p) for p in published], dtype=np.float64),
            precise_time=np.asarray([len(p or "") > 10 for p in published], dtype=bool),
        )
        extra_manifest: dict[str, Any] = {}
        if band_threshold is not None:
            # The LSH band table, sorted once here and memory-mapped by every server worker.
            bands = BandTable.build(np.asarray(minhash, dtype=np.uint32), band_threshold)
            np.save(self.tmp / "band_keys.npy", bands.keys)
            np.save(self.tmp / "band_rows.npy", bands.rows_of)
            extra_manifest = {"band_threshold": band_threshold, "bands": bands.bands, "band_rows": bands.rows}
        # Centroids of the stories told more than once (a story of one is its own vector).
        ids, centroids, _ = group_centroids(np.asarray(vectors, dtype=np.float32), story_group, min_size=2)
        np.save(self.tmp / "story_ids.npy", ids)
        np.save(self.tmp / "story_centroids.npy", centroids)
        index, index_type, extra = build_faiss(np.asarray(vectors, dtype=np.float32), np.asarray(keys, dtype=np.int64))
        faiss.write_index(index, str(self.tmp / "faiss.index"))
        manifest = {**manifest, "index_type": index_type, **extra, **extra_manifest, "format": FORMAT_VERSION}
        (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")


def build_faiss(vectors: np.ndarray, keys: np.ndarray, *, exact_limit: int | None = None):
    """Exact inner product up to `exact_limit` (default EXACT_LIMIT) articles, IVF above; both behind an
    IDMap of stable keys."""
    import faiss

    exact_limit = EXACT_LIMIT if exact_limit is None else exact_limit
    n, dim = vectors.shape if vectors.ndim == 2 else (0, 0)
    dim = dim or 1
    if n <= exact_limit:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if n:
            index.add_with_ids(vectors, keys)
        return index, "flat", {}
    nlist = int(min(65536, max(256, 4 * np.sqrt(n))))
    quantizer = faiss.IndexFlatIP(dim)
    # 8-bit scalar-quantised residuals: a quarter of float32's memory (1M articles: ~390 MB instead of
    # 1.5 GB); Snapshot.search re-scores the hits with the raw vectors, so callers see exact cosines.
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                        faiss.METRIC_INNER_PRODUCT)
    sample = vectors[np.random.default_rng(0).choice(n, size=min(n, nlist * 40), replace=False)]
    ivf.train(sample)
    index = faiss.IndexIDMap2(ivf)
    for start in range(0, n, 100_000):
        index.add_with_ids(vectors[start:start + 100_000], keys[start:start + 100_000])
    return index, "ivf-sq8", {"nlist": nlist, "nprobe": max(32, int(np.ceil(nlist * PROBE_SHARE)))}
