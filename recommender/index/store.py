"""The index on disk: a directory of immutable snapshots and a CURRENT pointer.

    INDEX_DIR/
      CURRENT                  name of the live snapshot (replaced by rename: atomic)
      snapshots/<name>/        one complete, immutable snapshot
        manifest.json          model, backend, dimension, count, build time, versions
        articles.sqlite        metadata, cleaned body, also_read, removed, groups, duplicate links; the
                               full-text index of title and body (FTS5, BM25) and each term's article count
        vectors.npy            raw float32 vectors, row order = keys.npy (for retraining without re-embedding)
        keys.npy               stable int64 article keys, ascending (the FAISS IDMap ids)
        minhash.npy            uint32 text signatures: shingle MinHash (near-duplicate LSH), content words (pairs)
        faiss.index            exact inner product (IDMap) up to 200k articles, IVF-SQ8 up to 10M, IVF-PQ above
      .tmp-*/                  a snapshot being written; never opened, removed at start-up
      .rows-<pid>-*/           rows prepared on a Ray cluster for the build of process <pid>, read from
                               disk by its assembly; removed when it ends (or, killed, by the next writer)

A writer builds a complete snapshot in a temporary directory, fsyncs it, renames it into
snapshots/, then replaces CURRENT. A process killed at any moment leaves the previous CURRENT
pointing at a complete snapshot. Readers load a snapshot once and never see it change.
"""
from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import fcntl
import itertools
import json
import mmap
import os
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from recommender.text.dates import Published, published_arrays
from recommender.text.lexical import TOKENIZER, is_word
from recommender.errors import ArticleNotFound, IndexMismatch, IndexNotReady

__all__ = ["IndexDir", "Snapshot", "write_snapshot", "SnapshotParts", "Record", "Link", "Meta", "StoredBands", "Hit",
           "FORMAT_VERSION", "STORED_NEIGHBOURS", "build_faiss", "load_file", "mapped_file", "release", "save_array", "trim"]

FORMAT_VERSION = 3
EXACT_LIMIT = 200_000  # above this many articles the FAISS index is IVF
# Share of IVF lists probed per query. bench/ann_recall.py, real MiniLM embeddings (29k texts):
# recall@10 vs exact 0.952 probing 4.7% of lists, 0.976 at 9.4%, 0.991 at 18.8%; synthetic 1M: 0.945 at 10%
# (4.5 ms a query, one thread). A tenth keeps real recall above 0.95 with room to spare.
PROBE_SHARE = 0.1
PQ_LIMIT = 10_000_000  # above this many articles the IVF lists hold product-quantised codes
PQ_DIMS_PER_BYTE = 4  # PQ code size: a byte per 4 dimensions (384 -> 96 bytes a vector)
RESCORE_PQ = 4  # an IVF-PQ search takes 4x the hits asked for and re-scores them exactly
STORED_NEIGHBOURS = 64  # nearest articles kept per article: related-by-id reads them instead of searching
HISTORY_FIELDS = ("built_at", "count", "build_seconds", "model", "index_type")
META_CACHE = 50_000  # listing metadata kept per open snapshot (~25 MB), see Snapshot.meta
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

# The lexical part: an FTS5 index over the articles table's title and body (no second copy of the
# text), how many articles each term is in (what a lexical query's terms are chosen by) and the term's
# column in the postings arrays (lexical_postings below).
_LEXICAL_SCHEMA = f"""
CREATE VIRTUAL TABLE lexical USING fts5(title, body, content='articles', content_rowid='key',
                                         tokenize='{TOKENIZER}');
INSERT INTO lexical(lexical) VALUES ('rebuild');
CREATE VIRTUAL TABLE temp.lexical_instances USING fts5vocab(main, lexical, instance);
CREATE VIRTUAL TABLE temp.lexical_vocab USING fts5vocab(main, lexical, row);
CREATE TABLE lexical_terms (term TEXT PRIMARY KEY, docs INTEGER NOT NULL, col INTEGER NOT NULL) WITHOUT ROWID;
"""
POSTINGS_CHUNK = 1 << 18  # term instances read from FTS5 at a time when its postings are written
QUERY_TERMS_ROWS = 1 << 14  # articles whose stored query terms are chosen at a time (~100 MB of sorting)
# FTS5's bm25() constants (fts5_aux.c), so the arrays rank as `ORDER BY rank` would.
BM25_K1, BM25_B = 1.2, 0.75

ARTICLE_COLUMNS = (
    "key", "id", "title", "url", "published", "source", "section", "lang", "image", "body",
    "body_hash", "also_read", "removed", "dup_group", "story_group",
)
META_COLUMNS = ("key", "id", "title", "url", "published", "source", "section", "lang", "image")
LISTING_FIELDS = ("source", "section", "lang")  # stored as arrays too (Snapshot.listing)


@dataclass(frozen=True, slots=True)
class Record:
    """One stored article: what the articles table holds for it. `dup_group` / `story_group` are the
    keys of the groups' canonical members (0 until the indexer assigns them)."""

    key: int
    id: str
    title: str
    body: str
    body_hash: str  # identity of the normalised body (duplicates.body_hash; the title's for a title-only article)
    url: str = ""
    published: str = ""  # ISO text (dates.parse_published)
    source: str = ""
    section: str = ""
    lang: str = ""
    image: str = ""
    also_read: tuple[dict, ...] = ()  # the ALSO READ links cleaning cut (title, url)
    removed: tuple[dict, ...] = ()  # the furniture cleaning cut (text, reason)
    dup_group: int = 0
    story_group: int = 0

    @property
    def when(self) -> Published:
        return Published.of(self.published)

    def _row(self) -> tuple:
        return (self.key, self.id, self.title, self.url, self.published, self.source, self.section, self.lang,
                self.image, self.body, self.body_hash, json.dumps(list(self.also_read), ensure_ascii=False),
                json.dumps(list(self.removed), ensure_ascii=False), self.dup_group, self.story_group)

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> "Record":
        values = dict(row)
        values["also_read"] = tuple(json.loads(values["also_read"] or "[]"))
        values["removed"] = tuple(json.loads(values["removed"] or "[]"))
        return cls(**values)


class Meta(NamedTuple):
    """What a listing shows of a stored article (no body, no furniture)."""

    key: int
    id: str
    title: str
    url: str
    published: str
    source: str
    section: str
    lang: str
    image: str


class Link(NamedTuple):
    """Duplicate evidence between two stored articles (a < b): level exact / near / same-story / story."""

    a: int
    b: int
    level: str
    cosine: float
    jaccard: float | None = None
    containment: float | None = None


@dataclass(frozen=True)
class StoredBands:
    """The MinHash LSH band table as written with a snapshot (duplicates.BandTable's arrays)."""

    keys: np.ndarray
    rows: np.ndarray
    bands: int
    rows_per_band: int
    threshold: float


@dataclass
class SnapshotParts:
    """Everything one snapshot holds, as the indexer computed it; the writer only stores it."""

    records: Sequence[Record]  # in ascending key order, groups assigned
    vectors: np.ndarray
    minhash: np.ndarray
    links: Iterable[Link]
    manifest: dict
    story_ids: np.ndarray  # stories told more than once, ascending
    story_centroids: np.ndarray  # their normalised mean vectors, row-aligned with story_ids
    bands: StoredBands | None = None
    neighbours: np.ndarray | None = None  # each row's nearest keys (-1 padded)
    neighbour_scores: np.ndarray | None = None
    text_words: np.ndarray | None = None  # words of each article the model read (story bars follow them)
    extra: dict = field(default_factory=dict)


def _orphan_rows(name: str) -> bool:
    """Whether a folder name is a prepared-rows folder (IndexDir.new_rows_folder) whose process has ended."""
    if not name.startswith(".rows-"):
        return False
    pid = name.split("-")[1]
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release(*arrays) -> None:
    """Drop the pages of file-backed arrays (np.memmap, or a view of one) from this process's resident
    memory: they stay in the page cache and are read again when touched (a build reads a million rows'
    vectors from disk a block at a time). Arrays in memory: nothing."""
    for a in arrays:
        m = _mapping(a)
        if m is not None and not m.closed:
            m.madvise(mmap.MADV_DONTNEED)


def trim() -> None:
    """Give back to the system the memory this process has freed (glibc keeps freed heap memory for
    reuse, and a build's stages free hundreds of megabytes each); nothing where there is no glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _mapping(a):
    """The mmap behind a file-backed array or a view of one, else None."""
    while a is not None and getattr(a, "_mmap", None) is None and isinstance(getattr(a, "base", None), np.ndarray):
        a = a.base
    return getattr(a, "_mmap", None)


def mapped_file(array) -> tuple[str, tuple[int, ...], str] | None:
    """(path, shape, dtype) of an array that is a whole raw file mapped into memory (indexing.Prepared.open's
    rows), else None: what load_file reads again elsewhere on this machine."""
    name = getattr(array, "filename", None)
    if not name or getattr(array, "offset", 0) != 0 or not array.flags.c_contiguous:
        return None
    try:
        if os.path.getsize(name) != array.nbytes:
            return None
    except OSError:
        return None
    return str(name), tuple(array.shape), array.dtype.str


def load_file(found: tuple[str, tuple[int, ...], str]) -> np.ndarray:
    """The array a mapped_file names, read whole into memory (a Ray task's copy of rows read from disk)."""
    path, shape, dtype = found
    return np.fromfile(path, dtype=dtype).reshape(shape)


SAVE_ROWS = 1 << 16  # rows of a file-backed array written at a time by save_array


def save_array(path: Path, array: np.ndarray) -> None:
    """np.save; a file-backed array (np.memmap) a block of rows at a time, its pages released after each,
    so that writing a million rows' vectors holds one block in memory, not all of them."""
    if _mapping(array) is None or array.ndim == 0:
        np.save(path, array)
        return
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(array))
        for at in range(0, len(array), SAVE_ROWS):
            fh.write(np.ascontiguousarray(array[at:at + SAVE_ROWS]).tobytes())
            release(array)


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
            if entry.is_dir() and (entry.name.startswith(".tmp-") or _orphan_rows(entry.name)):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        with contextlib.suppress(FileNotFoundError):
            (self.path / "CURRENT.tmp").unlink()
        return removed

    def new_rows_folder(self) -> Path:
        """A folder for the rows a build of this process prepares elsewhere (distributed.prepare_on_ray):
        read by its assembly, removed when it ends; a killed build's is removed by the next writer."""
        self.path.mkdir(parents=True, exist_ok=True)
        folder = self.path / f".rows-{os.getpid()}-{secrets.token_hex(4)}"
        folder.mkdir()
        return folder

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
        self._record_history(name)
        self._prune(keep=name)
        return name

    def manifest(self, name: str | None = None) -> dict:
        """A snapshot's manifest (the current one by default); empty when there is none to read."""
        name = name or self.current_name()
        if not name:
            return {}
        try:
            manifest = json.loads((self.snapshots / name / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return manifest if isinstance(manifest, dict) else {}

    def _record_history(self, name: str) -> None:
        """One line per published snapshot in history.jsonl (snapshots themselves are pruned)."""
        manifest = self.manifest(name)
        line = {"snapshot": name, **{k: manifest.get(k) for k in HISTORY_FIELDS}}
        with open(self.path / "history.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def history(self, limit: int = 20) -> list[dict]:
        """The last `limit` published snapshots, newest first (what each build or update left)."""
        try:
            lines = (self.path / "history.jsonl").read_text(encoding="utf-8").splitlines()[-limit:]
        except FileNotFoundError:
            return []
        out = []
        for line in reversed(lines):
            try:
                out.append(json.loads(line))
            except ValueError:  # a line cut by a crash mid-write
                continue
        return out

    def _prune(self, keep: str) -> None:
        names = sorted(p.name for p in self.snapshots.iterdir() if p.is_dir())
        old = [n for n in names if n != keep][: max(0, len(names) - KEEP_SNAPSHOTS)]
        for n in old:
            shutil.rmtree(self.snapshots / n, ignore_errors=True)

    def open(self, *, model: str | None = None, dim: int | None = None, vectors: str | None = None,
             max_tokens: int | None = None, mmap: bool = True) -> "Snapshot":
        name = self.current_name()
        if not name:
            raise IndexNotReady(
                f"no index at {str(self.path)!r}: build one with `newsrec build --input FILE --index {self.path}`"
            )
        snap = Snapshot(self.snapshots / name, mmap=mmap)
        try:
            snap.check(model=model, dim=dim, index_path=str(self.path), vectors=vectors, max_tokens=max_tokens)
        except IndexMismatch:
            snap.close()
            raise
        return snap

    def open_for(self, embedder, max_tokens: int | None = None, *, mmap: bool = True) -> "Snapshot":
        """The current snapshot, refused (IndexMismatch) unless it was built as this embedder, reading
        `max_tokens` of each article, embeds: its vectors and the queries' must be comparable."""
        return self.open(model=embedder.name, dim=embedder.dim, vectors=getattr(embedder, "vectors", ""),
                         max_tokens=max_tokens or None, mmap=mmap)


class Hit(NamedTuple):
    """One search result (a tuple: a query makes up to a thousand)."""

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
        # Bodies read as a site's notice, not a story (duplicates.notice_bodies): a page with one is read as its headline.
        self.notices: frozenset[str] = frozenset(self.manifest.get("notices", ()))
        self._mode = "r" if mmap else None
        self.keys: np.ndarray = self._array("keys.npy")
        self.vectors: np.ndarray = self._array("vectors.npy")
        self.minhash: np.ndarray = self._array("minhash.npy")
        arrays = np.load(self.path / "rows.npz")
        self.published_days: np.ndarray = arrays["published_days"]
        self.dup_group: np.ndarray = arrays["dup_group"]
        self.story_group: np.ndarray = arrays["story_group"]
        self.body_len: np.ndarray = arrays["body_len"]
        # Words of each article the model read; -1 (or absent, in snapshots written before) when not counted.
        self.text_words: np.ndarray = (arrays["text_words"] if "text_words" in arrays.files
                                       else np.full(self.count, -1, dtype=np.int32))
        self.has_text_words = bool(len(self.text_words)) and bool((self.text_words >= 0).all())
        self.time_days: np.ndarray = arrays["time_days"]  # fractional days, NaN unknown
        # Each row's outlet, section and language as codes into names of the snapshot's own (a related
        # list filters and judges its candidates by them without reading the metadata table); None in a
        # snapshot written before they were stored, which reads them with `meta`.
        self._listing = ({field: (arrays[f"{field}_code"], arrays[f"{field}_names"].tolist()) for field in LISTING_FIELDS}
                         if all(f"{field}_code" in arrays.files for field in LISTING_FIELDS) else None)
        has_nb = (self.path / "neighbours.npy").exists()
        self.neighbours = self._array("neighbours.npy") if has_nb else None
        self.neighbour_scores = self._array("neighbour_scores.npy") if has_nb else None
        self.precise_time: np.ndarray = arrays["precise_time"]  # a time of day is known
        has_stories = (self.path / "story_ids.npy").exists()
        self.story_ids = np.load(self.path / "story_ids.npy") if has_stories else np.zeros(0, dtype=np.int64)
        self.story_centroids = (self._array("story_centroids.npy") if has_stories
                                else np.zeros((0, int(self.manifest.get("dim", 1))), dtype=np.float32))
        # Memory-mapped (exact and IVF alike): gunicorn workers share one copy through the page cache.
        flags = faiss.IO_FLAG_MMAP if mmap else 0
        self._faiss = faiss.read_index(str(self.path / "faiss.index"), flags)
        if self.manifest.get("index_type", "flat") != "flat":
            faiss.extract_index_ivf(self._faiss).nprobe = int(self.manifest.get("nprobe", 16))
        self.approximate = self.manifest.get("index_type", "flat") != "flat"
        self.rescore = int(self.manifest.get("rescore", 1))  # hits fetched per hit asked (IVF-PQ)
        self._local = threading.local()
        self._memo: dict[Any, Any] = {}
        self._meta_cache: dict[int, Meta] = {}
        self._meta_lock = threading.Lock()
        self._lock = threading.Lock()
        self.loaded_at = time.time()

    def _array(self, name: str) -> np.ndarray:
        """A snapshot array, memory-mapped when opened so (gunicorn workers share it through the page
        cache) and seen as a plain ndarray: numpy's memmap subclass costs microseconds on every slice."""
        array = np.load(self.path / name, mmap_mode=self._mode)
        return array.view(np.ndarray) if isinstance(array, np.memmap) else array

    # --- checks -----------------------------------------------------------------------------

    def check(self, *, model: str | None, dim: int | None, index_path: str, vectors: str | None = None,
              max_tokens: int | None = None) -> None:
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
        if vectors is not None and self.manifest.get("vectors", "") != vectors:
            raise IndexMismatch(
                f"index {index_path!r} was built with model {self.manifest.get('model')!r} centred another way "
                f"(an older newsrec): its vectors and the queries' would not match; rebuild with "
                f"`newsrec build --input FILE --index {index_path}`"
            )
        built = self.manifest.get("max_tokens")
        if max_tokens is not None and built is not None and int(built) != max_tokens:
            raise IndexMismatch(
                f"index {index_path!r} was built reading {built} tokens of each article, but this setting "
                f"reads {max_tokens}: a query would be embedded unlike the articles; set NEWSREC_MAX_TOKENS="
                f"{built} (or --max-tokens) or rebuild with `newsrec build --input FILE --index {index_path}`"
            )

    # --- metadata ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return int(self.keys.shape[0])

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            uri = f"file:{self.path / 'articles.sqlite'}?mode=ro&immutable=1"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def words_read(self, rows) -> np.ndarray:
        """Words of these rows' articles the model read. A snapshot written before they were counted
        answers by whether a body was stored: none (a headline) or all (an article)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.has_text_words:
            return np.asarray(self.text_words[rows], dtype=np.int64)
        return np.where(self.body_len[rows] > 0, 1 << 20, 0)

    def listing(self, rows) -> dict[str, list[str]] | None:
        """These rows' outlets, sections and languages (LISTING_FIELDS, each a list row-aligned), from the
        stored arrays; None for a snapshot written before they were stored (read `meta` instead)."""
        if self._listing is None:
            return None
        rows = np.asarray(rows, dtype=np.int64)
        return {field: [names[c] for c in codes[rows].tolist()] for field, (codes, names) in self._listing.items()}

    def published(self, row: int) -> Published:
        """A row's publication time, from the stored arrays (no text: `Published.text` is empty)."""
        return self.published_rows([row])[0]

    def published_rows(self, rows) -> list[Published]:
        """Several rows' publication times (as `published`), in one read of the arrays."""
        rows = np.asarray(rows, dtype=np.int64)
        return [Published("", day, days, precise) for day, days, precise in
                zip(self.published_days[rows].tolist(), self.time_days[rows].tolist(), self.precise_time[rows].tolist())]

    def row_of_key(self, key: int) -> int:
        row = int(np.searchsorted(self.keys, key))
        if row >= self.count or int(self.keys[row]) != key:
            raise ArticleNotFound(f"no article with key {key}")
        return row

    def rows_of_keys(self, keys: Sequence[int]) -> np.ndarray:
        """row_of_key for many keys at once."""
        keys = np.asarray(keys, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self.keys, keys), max(self.count - 1, 0))
        missing = keys[self.keys[rows] != keys] if self.count else keys
        if len(missing):
            raise ArticleNotFound(f"no article with key {int(missing[0])}")
        return rows.astype(np.int64)

    def key_of_id(self, article_id: str) -> int:
        found = self._db().execute("SELECT key FROM articles WHERE id = ?", (article_id,)).fetchone()
        if found is None:
            raise ArticleNotFound(f"no article with id {article_id!r} in the index", field="id")
        return int(found[0])

    def keys_of_ids(self, article_ids: Sequence[str]) -> dict[str, int]:
        """The keys of those ids that are in the index, in one query per 500 (the rest are left out)."""
        ids = list(dict.fromkeys(article_ids))
        found: dict[str, int] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found.update((str(i), int(k)) for i, k in self._db().execute(
                f"SELECT id, key FROM articles WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
        return found

    def key_of_url(self, url: str) -> int:
        found = self._db().execute("SELECT key FROM articles WHERE url = ?", (url,)).fetchone()
        if found is None:
            raise ArticleNotFound(f"no article with url {url!r} in the index", field="url")
        return int(found[0])

    def keys_by_hash(self, body_hash: str, limit: int) -> list[int]:
        """Keys of the first `limit` articles whose normalised body has this hash (exact copies)."""
        return [int(r[0]) for r in self._db().execute(
            "SELECT key FROM articles WHERE body_hash = ? ORDER BY key LIMIT ?", (body_hash, limit))]

    def _select(self, columns: Sequence[str], keys: Sequence[int]) -> Iterator[sqlite3.Row]:
        cols = ", ".join(columns)
        keys = [int(k) for k in keys]
        for i in range(0, len(keys), 900):
            chunk = keys[i : i + 900]
            marks = ",".join("?" * len(chunk))
            yield from self._db().execute(f"SELECT {cols} FROM articles WHERE key IN ({marks})", chunk)

    def meta(self, keys: Sequence[int]) -> dict[int, Meta]:
        """What a listing shows of these articles, by key in key order (absent keys are left out).
        A snapshot never changes, so what was read is kept (up to META_CACHE articles, the longest
        kept making room): related queries read the same neighbourhoods again and again."""
        cache = self._meta_cache
        wanted = sorted({int(k) for k in keys})
        found: dict[int, Meta] = {}
        missing = []
        for k in wanted:
            m = cache.get(k)
            if m is None:
                missing.append(k)
            else:
                found[k] = m
        if missing:
            fresh = {int(r[0]): Meta(*r) for r in self._select(META_COLUMNS, missing)}
            found.update(fresh)
            with self._meta_lock:  # threads read the cache while one of them makes room in it
                over = len(cache) + len(fresh) - META_CACHE
                if over > 0:  # the longest-kept go first: the older half, or what the new ones need
                    for k in list(itertools.islice(cache, max(over, len(cache) // 2))):
                        del cache[k]
                cache.update(fresh)
        return {k: found[k] for k in wanted if k in found}

    def warm(self, limit: int = META_CACHE // 2) -> int:
        """Read the listing metadata of the newest `limit` articles (the highest keys) into the cache and
        parse their publication times once, so a served worker's first related lists cost what its later
        ones do (see meta). Half the cache by default: the rest is left for the older articles lists
        reach. Returns how many were read."""
        found = self.meta(np.asarray(self.keys[-limit:]).tolist()) if limit > 0 else {}
        for m in found.values():
            Published.of(m.published)
        return len(found)

    def ids(self, keys: Sequence[int]) -> dict[int, str]:
        """Article ids by key (absent keys are left out)."""
        return {int(r[0]): r[1] for r in self._select(("key", "id"), keys)}

    def records(self, keys: Sequence[int] | None = None) -> dict[int, Record]:
        """Whole stored records by key; every article's when `keys` is None."""
        keys = [int(k) for k in self.keys] if keys is None else keys
        return {int(r["key"]): Record._from_row(r) for r in self._select(ARTICLE_COLUMNS, keys)}

    def record(self, key: int) -> Record:
        found = self.records([key])
        if key not in found:
            raise ArticleNotFound(f"no article with key {key}")
        return found[key]

    def title_search(self, words: str, limit: int) -> list[Meta]:
        """Articles whose title contains these words (as typed), newest first."""
        like = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._db().execute(
            f"SELECT {', '.join(META_COLUMNS)} FROM articles WHERE title LIKE ? ESCAPE '\\' "
            "ORDER BY published DESC LIMIT ?", (like, limit)
        ).fetchall()
        return [Meta(*r) for r in rows]

    @property
    def has_lexical(self) -> bool:
        """Whether this snapshot has the lexical part (an index built before it has none: rebuild it)."""
        return self.memo("has_lexical", lambda: self._db().execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'lexical_terms'").fetchone() is not None)

    def term_docs(self, terms: Sequence[str]) -> dict[str, int]:
        """How many articles each term is in (terms in no article are left out)."""
        if not terms or not self.has_lexical:
            return {}
        found: dict[str, int] = {}
        for start in range(0, len(terms), 500):
            chunk = list(terms[start:start + 500])
            found.update(self._db().execute(
                f"SELECT term, docs FROM lexical_terms WHERE term IN ({', '.join('?' * len(chunk))})", chunk).fetchall())
        return found

    def _postings(self) -> tuple[np.ndarray, ...] | None:
        """(indptr, rows, tf, lengths) written by write_postings (memory-mapped), or None in a snapshot
        written before them (FTS5 answers alone)."""
        def load():
            if not (self.path / "lexical_indptr.npy").exists():
                return None
            return tuple(self._array(f"lexical_{name}.npy")
                         for name in ("indptr", "rows", "tf", "lengths"))
        return self.memo("postings", load)

    def query_terms(self, row: int) -> np.ndarray | None:
        """The terms (postings columns) a related query for this indexed row asks for, best first
        (article_query_terms), or None in a snapshot written before they were stored."""
        stored = self.memo("query_terms", lambda: (self._array("lexical_query_indptr.npy"), self._array("lexical_query_cols.npy"))
                           if (self.path / "lexical_query_cols.npy").exists() else None)
        if stored is None or self._postings() is None:
            return None
        indptr, cols = stored
        return np.asarray(cols[indptr[row]:indptr[row + 1]], dtype=np.int64)

    def term_names(self, cols: Sequence[int]) -> list[str]:
        """The terms of postings columns, in the columns' order."""
        cols = [int(c) for c in cols]
        if not cols:
            return []
        found = dict((c, t) for t, c in self._db().execute(
            f"SELECT term, col FROM lexical_terms WHERE col IN ({', '.join('?' * len(cols))})", cols))
        return [found[c] for c in cols if c in found]

    def lexical_search_columns(self, cols: np.ndarray, limit: int) -> list[tuple[int, float]]:
        """lexical_search for terms given as postings columns (query_terms)."""
        postings = self._postings()
        if postings is None:
            return []
        return self._bm25(postings, np.sort(np.asarray(cols, dtype=np.int64)), limit)  # in term order, as lexical_search's

    def lexical_search(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """(key, BM25 score, higher is better) of the articles best matching any of the terms (as
        lexical.index_terms splits text), best first; empty without terms or the lexical part.
        Scored as FTS5's bm25() with its defaults, from the postings arrays where the snapshot has them."""
        if not terms or not self.has_lexical:
            return []
        postings = self._postings()
        if postings is not None:
            terms = list(dict.fromkeys(terms))
            cols = [c for (c,) in self._db().execute(
                f"SELECT col FROM lexical_terms WHERE term IN ({', '.join('?' * len(terms))})", terms)]
            return self._bm25(postings, np.asarray(cols, dtype=np.int64), limit)
        match = " OR ".join(f'"{t}"' for t in terms)
        rows = self._db().execute("SELECT rowid, bm25(lexical) FROM lexical WHERE lexical MATCH ? ORDER BY rank LIMIT ?",
                                  (match, int(limit))).fetchall()
        return [(int(key), -float(score)) for key, score in rows]

    def _bm25(self, postings: tuple[np.ndarray, ...], cols: np.ndarray, limit: int) -> list[tuple[int, float]]:
        """BM25 over the postings of the terms in columns `cols` (a term is in as many articles as its
        postings hold)."""
        indptr, rows, tf, lengths = postings
        if not len(cols) or self.count == 0:
            return []
        n = self.count
        avgdl = self.memo("avg_length", lambda: float(np.mean(lengths)) or 1.0)
        starts, sizes = indptr[cols], indptr[cols + 1] - indptr[cols]
        idf = np.log((n - sizes + 0.5) / (sizes + 0.5))
        idf = np.where(idf > 0, idf, 1e-6)
        # Every term's postings in one gather: position p of term t is starts[t] + p.
        at = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
        r = np.asarray(rows[at], dtype=np.int64)
        f = tf[at].astype(np.float64)
        norm = BM25_K1 * (1.0 - BM25_B + BM25_B * lengths[r] / avgdl)
        weights = np.repeat(idf, sizes) * f * (BM25_K1 + 1.0) / (f + norm)
        if len(r) * 8 < n:
            # Few postings: sum over the articles they name alone (an array of every article, written
            # and scanned per query, cost more than the search and pushed the rest of it out of cache).
            matched, inverse = np.unique(r, return_inverse=True)
            scores = np.bincount(inverse, weights=weights)
        else:
            every = np.bincount(r, weights=weights, minlength=n)
            matched = np.flatnonzero(every)  # every posting adds a positive amount (idf is at least 1e-6)
            scores = every[matched]
        if len(matched) > limit:
            top = np.argpartition(-scores, limit - 1)[:limit]
            matched, scores = matched[top], scores[top]
        order = np.lexsort((self.keys[matched], -scores))
        return [(int(k), float(s)) for k, s in zip(self.keys[matched[order]].tolist(), scores[order].tolist())]

    def links_of(self, key: int) -> list[Link]:
        rows = self._db().execute(
            "SELECT a, b, level, cosine, jaccard, containment FROM links WHERE a = ? OR b = ?", (key, key)
        ).fetchall()
        return [Link(*r) for r in rows]

    def links(self) -> list[Link]:
        """Every stored link."""
        return [Link(*r) for r in self._db().execute("SELECT a, b, level, cosine, jaccard, containment FROM links")]

    def group_members(self, column: str, group: int) -> list[int]:
        assert column in ("dup_group", "story_group")
        return [int(r[0]) for r in self._db().execute(f"SELECT key FROM articles WHERE {column} = ? ORDER BY key", (group,))]

    def iter_groups(self, column: str, min_size: int = 2) -> list[tuple[int, list[int]]]:
        assert column in ("dup_group", "story_group")
        rows = self._db().execute(
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
        if not self.approximate and len(self.vectors) == len(self.keys) == self.count:
            # Exact: one matrix-vector product over the stored vectors and a partial sort. For a single
            # query it beats FAISS's flat search here (100k articles: 5 against 12 ms on one thread,
            # bench/query_latency.py's in-process comparison), with the same hits.
            sims = np.asarray(self.vectors) @ q[0]
            n = min(k, self.count)
            top = np.argpartition(-sims, n - 1)[:n] if n < len(sims) else np.arange(len(sims))
            top = top[np.argsort(-sims[top], kind="stable")]
            return [Hit(r, key, score) for r, key, score in
                    zip(top.tolist(), self.keys[top].tolist(), sims[top].astype(np.float64).tolist())]
        scores, keys = self._faiss.search(q, min(k * self.rescore, self.count))
        valid = keys[0] >= 0
        found_keys = keys[0][valid]
        rows = np.searchsorted(self.keys, found_keys)
        found_scores = scores[0][valid]
        if self.approximate and len(rows):
            # Quantised codes give approximate scores: re-score the hits with the raw vectors.
            rows = np.sort(rows)
            exact = np.asarray(self.vectors[rows], dtype=np.float32) @ q[0]
            order = np.argsort(-exact, kind="stable")
            rows, found_scores = rows[order][:k], exact[order][:k]
            found_keys = self.keys[rows]
        return [Hit(r, key, score) for r, key, score in
                zip(np.asarray(rows).tolist(), np.asarray(found_keys).tolist(), np.asarray(found_scores, dtype=np.float64).tolist())]

    def search_many(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, keys) of the k nearest articles for each row of `vectors`, as the index gives them
        (approximate scores on IVF indexes; keys -1 where fewer were found)."""
        q = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1))
        return self._faiss.search(q, min(k, max(self.count, 1)))

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

    def stored_bands(self) -> StoredBands | None:
        """The LSH band table written with the snapshot (memory-mapped, shared by workers), if any."""
        if "band_threshold" not in self.manifest or not (self.path / "band_keys.npy").exists():
            return None
        return StoredBands(self._array("band_keys.npy"),
                           self._array("band_rows.npy"),
                           int(self.manifest["bands"]), int(self.manifest["band_rows"]),
                           float(self.manifest["band_threshold"]))

    def memo(self, name: Any, make) -> Any:
        """A value derived from this snapshot, made once (under a lock) and kept as long as the snapshot."""
        with self._lock:
            if name not in self._memo:
                self._memo[name] = make()
            return self._memo[name]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def write_snapshot(tmp: Path, parts: SnapshotParts) -> None:
    """Write every file of one snapshot into the temporary directory `tmp` (not yet published)."""
    import faiss

    conn = sqlite3.connect(tmp / "articles.sqlite")
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        conn.executemany(f"INSERT INTO articles ({', '.join(ARTICLE_COLUMNS)}) VALUES ({', '.join('?' * len(ARTICLE_COLUMNS))})",
                         (r._row() for r in parts.records))
        conn.executemany("INSERT OR REPLACE INTO links (a, b, level, cosine, jaccard, containment) VALUES (?, ?, ?, ?, ?, ?)",
                         (tuple(link) for link in parts.links))
        conn.executescript(_LEXICAL_SCHEMA)
        # The records without their bodies where a pass reads other fields: a table of records whose
        # bodies are read from disk (indexing.RecordTable) has them as `heads`, and its bodies' lengths.
        heads = getattr(parts.records, "heads", parts.records)
        keys = np.asarray([r.key for r in heads], dtype=np.int64)
        write_postings(conn, tmp, keys)
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
    vectors = np.asarray(parts.vectors, dtype=np.float32).reshape(len(keys), -1)
    np.save(tmp / "keys.npy", keys)
    save_array(tmp / "vectors.npy", vectors)
    save_array(tmp / "minhash.npy", np.asarray(parts.minhash, dtype=np.uint32))
    if parts.neighbours is not None and len(parts.neighbours) == len(keys):
        save_array(tmp / "neighbours.npy", np.asarray(parts.neighbours, dtype=np.int64))
        save_array(tmp / "neighbour_scores.npy", np.asarray(parts.neighbour_scores, dtype=np.float32))
    day, days, precise = published_arrays(r.when for r in heads)
    lengths = getattr(parts.records, "lengths", None)
    np.savez(
        tmp / "rows.npz",
        published_days=day,
        dup_group=np.asarray([r.dup_group for r in heads], dtype=np.int64),
        story_group=np.asarray([r.story_group for r in heads], dtype=np.int64),
        body_len=(np.asarray(lengths, dtype=np.int32) if lengths is not None
                  else np.asarray([len(r.body) for r in parts.records], dtype=np.int32)),
        text_words=(np.asarray(parts.text_words, dtype=np.int32) if parts.text_words is not None
                    else np.full(len(keys), -1, dtype=np.int32)),
        time_days=days,
        precise_time=precise,
        **{f"{field}_{part}": array for field in LISTING_FIELDS
           for part, array in zip(("code", "names"), _codes([getattr(r, field) for r in heads]))},
    )
    extra_manifest: dict[str, Any] = dict(parts.extra)
    if parts.bands is not None:
        # The LSH band table, sorted once by the indexer and memory-mapped by every server worker.
        np.save(tmp / "band_keys.npy", parts.bands.keys)
        np.save(tmp / "band_rows.npy", parts.bands.rows)
        extra_manifest.update(band_threshold=parts.bands.threshold, bands=parts.bands.bands,
                              band_rows=parts.bands.rows_per_band)
    np.save(tmp / "story_ids.npy", np.asarray(parts.story_ids, dtype=np.int64))
    np.save(tmp / "story_centroids.npy", np.asarray(parts.story_centroids, dtype=np.float32))
    index, index_type, extra = build_faiss(vectors, keys)
    faiss.write_index(index, str(tmp / "faiss.index"))
    manifest = {**parts.manifest, "index_type": index_type, **extra, **extra_manifest, "format": FORMAT_VERSION}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")


def _codes(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(each value's code, the distinct values in code order) for a column of short texts."""
    names, codes = np.unique(np.asarray(list(values) or [""], dtype=str), return_inverse=True)
    return codes.astype(np.int32)[:len(values)], names


def write_postings(conn: sqlite3.Connection, tmp: Path, keys: np.ndarray) -> None:
    """The FTS5 index's postings as arrays a query sums in numpy (lexical_search): for each term (a
    column, in lexical_terms), the rows it is in and how often; and each row's length in tokens. One
    pass over FTS5's own instances, so both rank alike; a query then costs its terms' postings, not
    FTS5's per-match work (about 4 us a matching article)."""
    vocab = conn.execute("SELECT term, doc, cnt FROM temp.lexical_vocab ORDER BY term").fetchall()
    names = [t for t, _, _ in vocab]
    docs = np.asarray([d for _, d, _ in vocab], dtype=np.int64)
    ends = np.cumsum(np.asarray([c for _, _, c in vocab], dtype=np.int64))
    indptr_a = np.r_[0, np.cumsum(docs)].astype(np.int64)
    # Every instance's article, by term and article (FTS5 walks its index in that order, so no sort is
    # made), read in chunks and counted into runs as it comes: a term's instances are its `cnt` of the
    # vocabulary, its runs its `doc`.
    runs = int(indptr_a[-1])
    rows_a = np.empty(runs, dtype=np.int32)
    # Each run's count as stored (at most 65,535), and each row's length in tokens counted unclipped as
    # the runs come: no 32-bit count of every posting beside them.
    tf16 = np.empty(runs, dtype=np.uint16)
    lengths = np.zeros(len(keys), dtype=np.int64)
    by_key = np.argsort(keys, kind="stable")
    cursor = conn.execute("SELECT doc FROM temp.lexical_instances ORDER BY term")
    seen = filled = 0
    last = (-1, -1)
    while chunk := cursor.fetchmany(POSTINGS_CHUNK):
        doc = np.asarray(chunk, dtype=np.int64).reshape(-1)
        term = np.searchsorted(ends, np.arange(seen, seen + len(doc)), side="right")
        seen += len(doc)
        first = np.flatnonzero(np.r_[True, (term[1:] != term[:-1]) | (doc[1:] != doc[:-1])])
        run_term, run_doc, run_tf = term[first], doc[first], np.diff(np.r_[first, len(doc)])
        if (int(run_term[0]), int(run_doc[0])) == last:  # the run the last chunk ended in goes on
            tf16[filled - 1] = min(int(tf16[filled - 1]) + int(run_tf[0]), 65535)
            lengths[rows_a[filled - 1]] += int(run_tf[0])
            run_term, run_doc, run_tf = run_term[1:], run_doc[1:], run_tf[1:]
        to = filled + len(run_term)
        if to > runs or not np.array_equal(run_term, np.searchsorted(indptr_a, np.arange(filled, to), side="right") - 1):
            raise RuntimeError("FTS5's term instances did not come by term and article")
        rows_a[filled:to] = by_key[np.searchsorted(keys, run_doc, sorter=by_key)]
        tf16[filled:to] = np.minimum(run_tf, 65535)
        np.add.at(lengths, rows_a[filled:to], run_tf)
        filled, last = to, (int(term[-1]), int(doc[-1]))
    if filled != runs or seen != (int(ends[-1]) if len(ends) else 0):
        raise RuntimeError(f"FTS5 listed {seen} term instances in {filled} runs; its vocabulary counts "
                           f"{int(ends[-1]) if len(ends) else 0} in {runs}")
    lengths = lengths.astype(np.int32)
    terms = [(name, int(c), col) for col, (name, c) in enumerate(zip(names, np.diff(indptr_a).tolist()))]
    conn.executemany("INSERT INTO lexical_terms (term, docs, col) VALUES (?, ?, ?)", terms)
    np.save(tmp / "lexical_indptr.npy", indptr_a)
    np.save(tmp / "lexical_rows.npy", rows_a)
    np.save(tmp / "lexical_tf.npy", tf16)
    np.save(tmp / "lexical_lengths.npy", lengths)
    words = np.asarray([is_word(t) for t, _, _ in terms], dtype=bool)
    query_indptr, query_cols = article_query_terms(indptr_a, rows_a, tf16, words, len(keys))
    np.save(tmp / "lexical_query_indptr.npy", query_indptr)
    np.save(tmp / "lexical_query_cols.npy", query_cols)


def article_query_terms(indptr: np.ndarray, rows: np.ndarray, tf: np.ndarray, words: np.ndarray,
                        n: int) -> tuple[np.ndarray, np.ndarray]:
    """For every row, the terms (postings columns) that lexical.search_terms picks from its article's
    own text, best first, as (indptr over rows, columns): the rule applied to the postings in one
    vectorised pass when a snapshot is written, so a related query for an indexed article reads its
    terms instead of splitting its text and counting each word's articles. `words`: the columns that
    are words (search_terms leaves out single letters)."""
    from recommender.text.lexical import MAX_QUERY_TERMS, asked_for, term_weights

    docs = np.diff(indptr)
    asked = words & asked_for(docs, n)
    out_indptr = np.zeros(n + 1, dtype=np.int64)
    out_cols: list[np.ndarray] = []
    for lo in range(0, n, QUERY_TERMS_ROWS):  # a block of rows at a time: the sort's memory stays bounded
        hi = min(n, lo + QUERY_TERMS_ROWS)
        # The block's postings of the terms a query may ask for, found POSTINGS_CHUNK postings at a
        # time: nothing the size of every posting is made beside the postings themselves.
        found, terms = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for p0 in range(0, len(rows), POSTINGS_CHUNK):
            part = rows[p0:p0 + POSTINGS_CHUNK]
            at = p0 + np.flatnonzero((part.astype(np.int32, copy=False) - lo).view(np.uint32) < hi - lo)
            term = np.searchsorted(indptr, at, side="right") - 1
            found.append(at[asked[term]])
            terms.append(term[asked[term]])
        mine, c = np.concatenate(found), np.concatenate(terms)
        a = rows[mine].astype(np.int64)
        weight = term_weights(tf[mine].astype(np.float64), docs[c].astype(np.float64), n)
        order = np.lexsort((c, -weight, a))  # by row, then weight (highest first), then term
        c, a = c[order], a[order]
        starts = np.searchsorted(a, np.arange(lo, hi + 1))
        keep = np.arange(len(a)) - starts[a - lo] < MAX_QUERY_TERMS
        out_indptr[lo + 1:hi + 1] = np.diff(np.searchsorted(a[keep], np.arange(lo, hi + 1)))
        out_cols.append(c[keep].astype(np.int32))
    return np.cumsum(out_indptr), (np.concatenate(out_cols) if out_cols else np.zeros(0, dtype=np.int32))


def build_faiss(vectors: np.ndarray, keys: np.ndarray, *, exact_limit: int | None = None,
                pq_limit: int | None = None):
    """Exact inner product up to `exact_limit` (default EXACT_LIMIT) articles, IVF-SQ8 up to `pq_limit`
    (default PQ_LIMIT), IVF-PQ above; all keyed by the stable article keys. Returns (index, type,
    manifest entries)."""
    import faiss

    exact_limit = EXACT_LIMIT if exact_limit is None else exact_limit
    n, dim = vectors.shape if vectors.ndim == 2 else (0, 0)
    dim = dim or 1
    if n <= exact_limit:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if n:
            index.add_with_ids(np.ascontiguousarray(vectors), keys)
            release(vectors)
        return index, "flat", {}
    sample = vectors[np.random.default_rng(0).choice(n, size=min(n, train_size(n, pq_limit)), replace=False)]
    release(vectors)
    index, kind, extra = new_ivf(sample, n, pq_limit=pq_limit)
    for start in range(0, n, 100_000):
        index.add_with_ids(np.ascontiguousarray(vectors[start:start + 100_000]), keys[start:start + 100_000])
        release(vectors)
    return index, kind, extra


def _lists(n: int, pq: bool = False) -> int:
    """Inverted lists for n articles: 4 sqrt(n) for IVF-SQ8; sqrt(n) for IVF-PQ, whose sizes make
    training and assigning the dominant build cost (k-means over 12,649 lists at 10M did not finish
    in 3 minutes on 2 cores; 3,162 lists train in ~1). Queries scan the same share of codes either way."""
    return int(min(65536, max(256, (1 if pq else 4) * np.sqrt(n))))


def _is_pq(n: int, pq_limit: int | None) -> bool:
    """Whether an index of n articles holds product-quantised codes (above PQ_LIMIT, or `pq_limit`)."""
    return n > (PQ_LIMIT if pq_limit is None else pq_limit)


def train_size(n: int, pq_limit: int | None = None) -> int:
    """Vectors an IVF index of n articles is trained on (40 per list; PQ codebooks need 10k+)."""
    return max(_lists(n, _is_pq(n, pq_limit)) * 40, 16_384)


def new_ivf(sample: np.ndarray, n: int, *, pq_limit: int | None = None):
    """A trained, empty IVF index for n articles (vectors added with add_with_ids): (index, type,
    manifest entries). The build adds every vector; bench/ann_scale.py adds them in chunks."""
    import faiss

    pq = _is_pq(n, pq_limit)
    dim = sample.shape[1]
    nlist = _lists(n, pq)
    quantizer = faiss.IndexFlatIP(dim)
    extra = {"nlist": nlist, "nprobe": max(32, int(np.ceil(nlist * PROBE_SHARE)))}
    if pq:
        # Product-quantised residuals, a byte per PQ_DIMS_PER_BYTE dimensions (10M articles: 960 MB of
        # codes instead of 3.8 GB for SQ8). Real MiniLM embeddings (bench/ann_recall.py --index ivf-pq,
        # 29k texts, 256 lists): recall@10 0.846 from the codes, 0.965 with 4x the hits re-scored probing
        # 10.2% of the lists, 0.972 at the 32 probed there (12.5%); 48-byte codes gave 0.727 and 0.948
        # (682 lists, 10%). So searches take RESCORE_PQ times the hits asked for and keep the best by
        # exact cosine from the raw vectors.
        m = _pq_parts(dim)
        ivf = faiss.IndexIVFPQ(quantizer, dim, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
        kind, extra = "ivf-pq", {**extra, "pq_bytes": m, "rescore": RESCORE_PQ}
    else:
        # 8-bit scalar-quantised residuals: a quarter of float32's memory (1M articles: ~390 MB instead of
        # 1.5 GB); Snapshot.search re-scores the hits with the raw vectors, so callers see exact cosines.
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                            faiss.METRIC_INNER_PRODUCT)
        kind = "ivf-sq8"
    ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
    # The inverted lists store the article keys themselves: no IDMap (whose reverse map alone would
    # take ~0.5 GB at 10M articles).
    return ivf, kind, extra


def _pq_parts(dim: int) -> int:
    """Sub-vectors per PQ code: one byte for every PQ_DIMS_PER_BYTE dimensions (96 for 384), a divisor of dim."""
    want = max(1, dim // PQ_DIMS_PER_BYTE)
    return max(m for m in range(1, want + 1) if dim % m == 0)
