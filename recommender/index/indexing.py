"""Build and update index snapshots: clean -> embed -> MinHash -> duplicate links -> groups -> write.

A full build and an incremental update share one path: an update starts from the previous
snapshot's rows (vectors, signatures and links are reused, nothing is re-embedded), adds or drops
rows, links only the new rows, recomputes the groups from the stored links, and publishes a new
snapshot atomically.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import platform
import os
import shutil
import time
from pathlib import Path
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from recommender.text.articles import Article, read_as_headline
from recommender.evidence.duplicates import (BUCKET_LIMIT, NEAR_COSINE, NUM_PERM, SIGNATURE_WIDTH, BandTable, UnionFind,
                         classify_pair, carries_notice, lexical_part, lsh_params, notice_bodies, overlap, Shingled, text_signatures)
from recommender.embed.embedding import Embedder, article_text, embedded_words
from recommender.evidence.pairs import (RETELLING, RETELLING_VERDICT, Sides, lexical_signatures, load_pair_model, other_outlet,
                                       told_again)
from recommender.embed.models import MULTILINGUAL, model_covers
from recommender.index.store import (EXACT_LIMIT, PROBE_SHARE, STORED_NEIGHBOURS, IndexDir, Link, Record, Snapshot, SnapshotParts, StoredBands,
                    load_file, mapped_file, release, trim, write_snapshot)
from recommender.evidence.stories import group_centroids, group_stories

__all__ = ["BuildReport", "Judging", "Linker", "PackedFile", "Prepared", "RecordTable", "RowsWriter", "Search", "build_index",
           "add_articles", "delete_articles",
           "embed_records", "judge_blocks", "link_rows", "neighbour_plan", "neighbours", "search_block", "search_bounds",
           "search_rows",
           "prepare_articles"]

NEIGHBOURS = 20  # embedding neighbours examined per new article when linking
BUILD_CHUNK = 1024  # articles per pipelined build step (larger chunks sort by length better: less padding)
FIRST_CHUNK = 32  # the first step's size; steps double up to BUILD_CHUNK
# Row pairs (searched x indexed) above which linking finds neighbours in the rows' lists (RowLists)
# instead of a flat scan (with more than store.EXACT_LIMIT rows). The flat scan ran 2.3e8 pairs/s here
# (2 cores, 100k x 100k in 44 s), so 4e10 pairs is ~3 minutes, more than cutting the rows into lists
# costs (2.3 s at 300k).
APPROX_PAIRS = 4e10


@dataclass
class BuildReport:
    snapshot: str
    count: int
    added: int = 0
    deleted: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    languages: dict[str, int] = field(default_factory=dict)  # articles per stored language ("" unknown)
    warnings: list[str] = field(default_factory=list)
    # Seconds of each assembly stage (neighbours, links, groups, write), for a build.
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float:
        return self.added / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {
            "snapshot": self.snapshot,
            "count": self.count,
            "added": self.added,
            "deleted": self.deleted,
            "seconds": round(self.seconds, 3),
            "embed_seconds": round(self.embed_seconds, 3),
            "docs_per_second": round(self.docs_per_second, 1),
            "languages": dict(sorted(self.languages.items(), key=lambda kv: -kv[1])),
            "warnings": self.warnings,
            **({"stages": {k: round(v, 3) for k, v in self.stages.items()}} if self.stages else {}),
        }


def language_warnings(languages: Mapping[str, int], model_name: str) -> list[str]:
    """What to tell whoever built an index whose articles are mostly in languages the model was not
    trained on (articles of unknown language are not counted either way)."""
    known = {lang: n for lang, n in languages.items() if lang}
    total = sum(known.values())
    uncovered = sum(n for lang, n in known.items() if not model_covers(model_name, lang))
    if not total or uncovered * 2 <= total:
        return []
    top = ", ".join(f"{lang} {n}" for lang, n in sorted(known.items(), key=lambda kv: -kv[1])[:5])
    hint = (" Set NEWSREC_MODEL=multilingual (or --model multilingual) and rebuild."
            if model_name != MULTILINGUAL and all(model_covers(MULTILINGUAL, lang) for lang in known) else "")
    return [f"{uncovered} of {total} articles are in languages model {model_name!r} was not trained on "
            f"({top}): related lists and duplicate verdicts will be poor for them.{hint}"]


@dataclass
class _Rows:
    """The rows of a snapshot being built, in key order."""

    records: list[Record]
    vectors: np.ndarray
    minhash: np.ndarray
    links: dict[tuple[int, int], Link]
    # Each row's nearest articles (keys, -1 padded) and cosines, kept so related-by-id needs no search.
    neighbours: np.ndarray | None = None
    neighbour_scores: np.ndarray | None = None
    # Words of each article the model read, by key (embedding.embedded_words), counted once.
    words: dict[int, int] = field(default_factory=dict)
    # The LSH band table of these rows' signatures, as linking made it (the snapshot stores it).
    bands: BandTable | None = None
    # The hashes of the bodies read as a site's notice (duplicates.notice_bodies): a page with one of
    # them is read as its headline, now and when it comes later (the manifest keeps them).
    notices: frozenset[str] = frozenset()
    # Where rows read from disk keep what the assembly makes of them (their stored neighbours), beside
    # them: the prepared rows' folder (Prepared.open); None holds it in memory.
    folder: Path | None = None

    def text_words(self, config) -> list[int]:
        heads = _heads(self.records)
        if any(r.key not in self.words for r in heads):
            for r in self.records:  # a table of records read from disk reads each body once, here
                if r.key not in self.words:
                    self.words[r.key] = embedded_words(r.title, r.body, config.max_tokens)
        return [self.words[r.key] for r in heads]

    def ensure_neighbours(self) -> None:
        n = len(self.records)
        if self.neighbours is None and self.folder is not None:
            # Each row's stored neighbours in files beside the rows, written a chunk at a time (link_rows).
            self.neighbours = np.lib.format.open_memmap(self.folder / "neighbours.npy", "w+", np.int64, (n, STORED_NEIGHBOURS))
            self.neighbour_scores = np.lib.format.open_memmap(self.folder / "neighbour_scores.npy", "w+", np.float32,
                                                              (n, STORED_NEIGHBOURS))
            for at in range(0, n, LINK_CHUNK):
                self.neighbours[at:at + LINK_CHUNK] = -1
                self.neighbour_scores[at:at + LINK_CHUNK] = -np.inf
                release(self.neighbours, self.neighbour_scores)
        elif self.neighbours is None or len(self.neighbours) != n:
            old_k = 0 if self.neighbours is None else len(self.neighbours)
            pad_k = np.full((n - old_k, STORED_NEIGHBOURS), -1, dtype=np.int64)
            pad_s = np.full((n - old_k, STORED_NEIGHBOURS), -np.inf, dtype=np.float32)
            if self.neighbours is None:
                self.neighbours, self.neighbour_scores = pad_k, pad_s
            else:
                self.neighbours = np.vstack([self.neighbours, pad_k])
                self.neighbour_scores = np.vstack([self.neighbour_scores, pad_s])

    @property
    def keys(self) -> np.ndarray:
        return np.asarray([r.key for r in _heads(self.records)], dtype=np.int64)

    def sides(self, config) -> Sides:
        """What the pair judgment reads of every row."""
        heads = _heads(self.records)
        return Sides.of([r.when.days for r in heads], self.text_words(config), lexical_part(self.minhash),
                        [r.source for r in heads], [r.lang for r in heads], [r.when.precise for r in heads])


def _text(record: Record, max_tokens: int) -> str:
    return article_text(record.title, record.body, max_tokens)


def link_rows(rows: _Rows, new: Sequence[int], config, search: Search | None = None,
              judging: Judging | None = None) -> None:
    """Add duplicate links between each new row and every other row (exact, near, same-story).
    `search`: how the new rows' neighbours are found (default `search_rows`, here; a Ray cluster's:
    distributed.search_rows_on_ray); `judging`: where their pairs are judged (default `judge_blocks`,
    here; distributed.judge_on_ray).

    The new rows go LINK_CHUNK at a time through the search, their stored neighbours and the judging,
    so what the search answers (k cosines and rows a row) is held for one chunk, not for every row;
    the chunks are cut where the search cuts its blocks, so the links are those one pass gives."""
    if not len(new):
        return
    n = len(rows.records)
    new = np.asarray(list(new), dtype=np.int64)
    k = min(max(NEIGHBOURS, STORED_NEIGHBOURS) + 1, n)
    plan = neighbour_plan(rows.vectors, len(new))
    linker = Linker.of(rows, config)
    rows.bands = linker.bands
    rows.ensure_neighbours()
    new_set, keys = set(new.tolist()), rows.keys
    bounds = search_bounds(len(new))
    per_chunk = LINK_CHUNK // SEARCH_BLOCK
    for c in range(0, len(bounds) - 1, per_chunk):
        chunk = new[bounds[c]:bounds[min(c + per_chunk, len(bounds) - 1)]]
        scores, nbrs = (search or search_rows)(rows.vectors, chunk, k, plan)
        _store_neighbours(rows, keys, chunk.tolist(), (scores, nbrs), new_set)
        for link in (judging or judge_blocks)(linker, chunk, scores, nbrs):
            rows.links[(link.a, link.b)] = link
        # Rows read from disk: what this chunk read and wrote leaves this process's memory, and so does
        # what it freed.
        release(rows.vectors, rows.minhash, rows.neighbours, rows.neighbour_scores)
        trim()


# New rows linked at a time: their candidate pairs are judged in one vectorised call.
LINK_BLOCK = 4096
# New rows searched and judged at a time by link_rows (a multiple of SEARCH_BLOCK and of LINK_BLOCK):
# their search answers, 65,536 x 65 cosines and rows, are 51 MB.
LINK_CHUNK = 65536


class _Text:
    """What classify_pair reads of an article: its body, and its body's hash (here a number per distinct hash)."""

    __slots__ = ("body", "body_hash")

    def __init__(self, body: str, body_hash: int):
        self.body, self.body_hash = body, body_hash


@dataclass(frozen=True)
class PackedTexts:
    """Texts as one UTF-8 buffer and where each begins: one array a Ray task maps in place instead of
    unpickling a string an article."""

    buffer: np.ndarray  # uint8
    starts: np.ndarray  # (n + 1,) int64

    @classmethod
    def of(cls, texts: Sequence[str], chunk: int = 65536) -> "PackedTexts":
        """Encoded `chunk` texts at a time into one buffer: no second copy of all of them on the way."""
        starts = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.fromiter((len(t.encode("utf-8")) for t in texts), dtype=np.int64, count=len(texts)),
                  out=starts[1:])
        buffer = np.empty(int(starts[-1]), dtype=np.uint8)
        for at in range(0, len(texts), chunk):
            part = b"".join(t.encode("utf-8") for t in texts[at:at + chunk])
            buffer[starts[at]:starts[at] + len(part)] = np.frombuffer(part, dtype=np.uint8)
        return cls(buffer, starts)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, i: int) -> str:
        return self.buffer[self.starts[i]:self.starts[i + 1]].tobytes().decode("utf-8")


class PackedFile:
    """Texts in one UTF-8 file and where each begins (n + 1 offsets), each read with a system call when
    asked for: none of the file is mapped into this process (a million articles' bodies are a gigabyte
    on disk and nothing in memory)."""

    def __init__(self, path: Path, starts: np.ndarray):
        self.path, self.starts = Path(path), starts
        self._fd: int | None = None

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, i: int) -> str:
        a, b = int(self.starts[i]), int(self.starts[i + 1])
        if b == a:
            return ""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return os.pread(self._fd, b - a, a).decode("utf-8")

    def packed(self) -> PackedTexts:
        """All of them read into memory (what a Ray task on this machine makes of the file)."""
        return PackedTexts(np.fromfile(self.path, dtype=np.uint8), self.starts)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __getstate__(self) -> dict:
        return {"path": self.path, "starts": self.starts}

    def __setstate__(self, state: dict) -> None:
        self.path, self.starts, self._fd = state["path"], state["starts"], None

    def __del__(self) -> None:
        self.close()


class TableTexts:
    """The bodies of a RecordTable's rows, by row: read from the rows' file (`base`: a PackedFile, or
    the file's bytes in memory), through `at` (the file's row of each, once rows were taken), a body set
    since (a notice read as its headline) held in `own`."""

    __slots__ = ("base", "at", "own")

    def __init__(self, base, at: np.ndarray | None = None, own: dict[int, str] | None = None):
        self.base, self.at, self.own = base, at, {} if own is None else own

    def __len__(self) -> int:
        return len(self.base) if self.at is None else len(self.at)

    def __getitem__(self, i: int) -> str:
        got = self.own.get(i)
        if got is not None:
            return got
        return self.base[i if self.at is None else int(self.at[i])]

    def loaded(self) -> "TableTexts":
        """These texts with their file read into memory (a Ray task's copy, made on the machine that has it)."""
        return TableTexts(self.base.packed() if isinstance(self.base, PackedFile) else self.base, self.at, self.own)

    def take(self, rows: np.ndarray) -> "TableTexts":
        rows = np.asarray(rows, dtype=np.int64)
        where = {int(old): new for new, old in enumerate(rows.tolist())}
        return TableTexts(self.base, rows if self.at is None else self.at[rows],
                          {where[i]: body for i, body in self.own.items() if i in where})


class RecordTable(Sequence):
    """Records whose bodies stay on disk until a record is read (the rows of a build prepared in a folder,
    Prepared.open): `heads` are the records without their bodies, in memory (~0.5 KB an article: what the
    passes over other fields read), `texts` the bodies, `lengths` each body's characters."""

    def __init__(self, heads: list[Record], texts: TableTexts, lengths: np.ndarray):
        self.heads, self.texts, self.lengths = heads, texts, lengths

    def __len__(self) -> int:
        return len(self.heads)

    def body(self, i: int) -> str:
        return self.texts[i]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return dataclasses.replace(self.heads[i], body=self.texts[i])

    def __iter__(self) -> Iterator[Record]:
        return (self[i] for i in range(len(self.heads)))

    def __setitem__(self, i: int, record: Record) -> None:
        self.texts.own[i] = record.body
        self.lengths[i] = len(record.body)
        self.heads[i] = dataclasses.replace(record, body="")

    def take(self, rows) -> "RecordTable":
        rows = np.asarray(rows, dtype=np.int64)
        return RecordTable([self.heads[i] for i in rows.tolist()], self.texts.take(rows), self.lengths[rows])

    def pages(self) -> list["_Page"]:
        """Each row as duplicates.notice_bodies reads a page: its title and body hash, its body read only
        when asked for."""
        return [_Page(self, i) for i in range(len(self.heads))]


class _Page:
    """A row of a RecordTable as a page: title and body hash from memory, the body from disk when read."""

    __slots__ = ("_table", "_i")

    def __init__(self, table: RecordTable, i: int):
        self._table, self._i = table, i

    @property
    def title(self) -> str:
        return self._table.heads[self._i].title

    @property
    def body_hash(self) -> str:
        return self._table.heads[self._i].body_hash

    @property
    def body(self) -> str:
        return self._table.body(self._i)


def _heads(records):
    """The records without their bodies (a RecordTable's heads), or the records: for passes over other fields."""
    return records.heads if isinstance(records, RecordTable) else records


def _update(records, i: int, **changes) -> None:
    """Set fields other than the body of record i, in place."""
    if isinstance(records, RecordTable):
        records.heads[i] = dataclasses.replace(records.heads[i], **changes)
    else:
        records[i] = dataclasses.replace(records[i], **changes)


def _body_length(records, i: int) -> int:
    return int(records.lengths[i]) if isinstance(records, RecordTable) else len(records[i].body)


class Linker:
    """What judging a new row against the others needs, in arrays a Ray task reads without copying
    (`packed`: the bodies as one UTF-8 buffer): the candidate pairs (copy candidates: a shared MinHash band, the same
    body, or a neighbour at NEAR_COSINE or closer; and neighbours close enough to be retellings, by the
    pair model's cosine reach), the pair judgment, and each pair's shingle overlap where it may be a copy."""

    def __init__(self, vectors: np.ndarray, minhash: np.ndarray, sides: Sides, *, bands: BandTable,
                 bodies: "Sequence[str] | PackedTexts", hash_ids: np.ndarray, keys: np.ndarray, config):
        self.vectors, self.minhash, self.bands, self.sides = vectors, minhash, bands, sides
        self.bodies, self.hash_ids, self.keys = bodies, hash_ids, keys
        self.config = config
        # For rows read from disk: the file of their signatures (store.mapped_file), from which a Ray task on
        # this machine makes this Linker again (distributed.judge_on_ray) instead of this process
        # putting a copy of every row's signature and body in the object store.
        self.minhash_file: tuple[str, tuple[int, ...], str] | None = None
        self.judge = load_pair_model(config.model, config.pair_model or None)
        self.reach = self.judge.cosine_reach(RETELLING, RETELLING_VERDICT)
        # Rows whose body another row repeats (most bodies are their own), ordered by hash number.
        repeated = np.flatnonzero(np.bincount(hash_ids) > 1) if len(hash_ids) else hash_ids
        repeats = np.flatnonzero(np.isin(hash_ids, repeated))
        self.repeats = repeats[np.argsort(hash_ids[repeats], kind="stable")]
        self.repeat_hashes = hash_ids[self.repeats]

    @classmethod
    def of(cls, rows: _Rows, config) -> "Linker":
        number: dict[str, int] = {}  # each body hash's number, in order of first appearance
        heads = _heads(rows.records)
        hash_ids = np.fromiter((number.setdefault(r.body_hash, len(number)) for r in heads), dtype=np.int64,
                               count=len(heads))
        bands = BandTable.build(rows.minhash, config.near_threshold)
        release(rows.minhash)
        table = isinstance(rows.records, RecordTable)
        linker = cls(rows.vectors, rows.minhash, rows.sides(config), bands=bands,
                     bodies=rows.records.texts if table else [r.body for r in rows.records], hash_ids=hash_ids,
                     keys=rows.keys, config=config)
        linker.minhash_file = mapped_file(rows.minhash) if table else None
        return linker

    def without_rows(self) -> "Linker":
        """This Linker without what its rows' files hold (signatures, the band table made of them, bodies,
        vectors): what a Ray task makes whole again (from_files) on the machine that has the files."""
        other = copy.copy(self)
        other.vectors = other.minhash = other.bands = None
        other.sides = self.sides._replace(lexsig=None)
        other.bodies = TableTexts(self.bodies.base, self.bodies.at, self.bodies.own)
        return other

    def from_files(self) -> "Linker":
        """A Linker without_rows made whole from its rows' files (signatures, bodies) on this machine."""
        minhash = load_file(self.minhash_file)
        other = copy.copy(self)
        other.minhash = minhash
        other.sides = self.sides._replace(lexsig=np.atleast_2d(lexical_part(minhash)))
        other.bands = BandTable.build(minhash, self.config.near_threshold)
        other.bodies = self.bodies.loaded()
        return other

    def packed(self) -> "Linker":
        """This Linker with its bodies in one UTF-8 buffer (PackedTexts), for a Ray task to map in place."""
        other = copy.copy(self)
        other.bodies = PackedTexts.of(self.bodies)
        return other

    def links(self, new: np.ndarray, scores: np.ndarray, nbrs: np.ndarray) -> list[Link]:
        """The links of these new rows (a block, with their neighbours' cosines and rows), in row order."""
        at, js, cos, copy = self.pairs(new, scores, nbrs)
        if not len(at):
            return []
        i_rows = new[at]
        verdict = self.judge.judge(cos, self.sides.take(i_rows), self.sides.take(js)).p_retelling
        texts: dict[int, _Text] = {}
        shingled: dict[int, Shingled] = {}

        def text(i: int) -> _Text:
            if i not in texts:
                texts[i] = _Text(self.bodies[i], int(self.hash_ids[i]))
            return texts[i]

        def sh(i: int) -> Shingled:
            if i not in shingled:
                shingled[i] = Shingled.of(text(i).body)
            return shingled[i]

        out = []
        # Only copy candidates and retellings can be linked.
        for m in np.flatnonzero((verdict >= RETELLING_VERDICT) | copy).tolist():
            i, j = int(i_rows[m]), int(js[m])
            ov = overlap(sh(i), sh(j)) if copy[m] else None
            level, jac, cont = classify_pair(text(i), text(j), ov, float(verdict[m]), self.config)
            if level is not None:
                a, b = sorted((int(self.keys[i]), int(self.keys[j])))
                out.append(Link(a, b, level, round(float(cos[m]), 4), jac, cont))
        return out

    def pairs(self, new: np.ndarray, scores: np.ndarray, nbrs: np.ndarray):
        """(query positions in `new`, other rows, cosines, copy-candidate flags) of the pairs to judge,
        each pair once, ordered by query then row."""
        n = len(self.vectors)
        q = np.repeat(np.arange(len(new)), nbrs.shape[1])
        j, s = nbrs.reshape(-1), scores.reshape(-1).astype(np.float64)
        known = j >= 0
        q, j, s = q[known], j[known], s[known]
        near = s >= NEAR_COSINE
        keep = near | (s >= self.reach)
        bq, bj = self.bands.query_many(self.minhash[new])
        # The same body: the rows with this row's hash number (the first BUCKET_LIMIT of them).
        lo = np.searchsorted(self.repeat_hashes, self.hash_ids[new], side="left")
        count = np.minimum(np.searchsorted(self.repeat_hashes, self.hash_ids[new], side="right") - lo, BUCKET_LIMIT)
        hq = np.repeat(np.arange(len(new)), count)
        hj = self.repeats[np.repeat(lo, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)]
        code = np.concatenate([q[keep] * n + j[keep], bq * n + bj, hq * n + hj])
        copy = np.concatenate([near[keep], np.ones(len(bq) + len(hq), dtype=bool)])
        cos = np.concatenate([s[keep], np.full(len(bq) + len(hq), np.nan)])
        order = np.argsort(code, kind="stable")
        code, copy, cos = code[order], copy[order], cos[order]
        first = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if len(code) else np.zeros(0, dtype=np.int64)
        copy = np.logical_or.reduceat(copy, first) if len(first) else copy[:0]
        cos = np.fmax.reduceat(cos, first) if len(first) else cos[:0]
        at, js = np.divmod(code[first], n)
        other = js != new[at]
        at, js, cos, copy = at[other], js[other], cos[other], copy[other]
        missing = np.isnan(cos)
        if missing.any():  # copy candidates beyond the neighbours searched: their cosines computed here
            cos[missing] = np.einsum("nd,nd->n", self.vectors[new[at[missing]]], self.vectors[js[missing]])
        return at, js, cos, copy


def judge_blocks(linker: Linker, new: np.ndarray, scores: np.ndarray, nbrs: np.ndarray) -> list[Link]:
    """The links of the new rows, judged here LINK_BLOCK rows at a time, in row order."""
    out: list[Link] = []
    for start in range(0, len(new), LINK_BLOCK):
        block = slice(start, start + LINK_BLOCK)
        out.extend(linker.links(new[block], scores[block], nbrs[block]))
    return out


# Judging: (a Linker, the new rows, their neighbours' cosines and rows) -> the links, in row order.
Judging = Callable[[Linker, np.ndarray, np.ndarray, np.ndarray], "list[Link]"]


# A neighbour search: (all rows' vectors, the rows searched, k, neighbour_plan's plan for the whole
# search) -> (cosines, rows), best first.
Search = Callable[[np.ndarray, np.ndarray, int, "RowLists | None"], "tuple[np.ndarray, np.ndarray]"]
# Query rows searched at a time: a multiple of FAISS's own query block (4096), so a search split into
# blocks (here, or one per Ray task: distributed.search_rows_on_ray) computes exactly what one call does.
SEARCH_BLOCK = 8192


def _timed(search: Search, stages: dict[str, float]) -> Search:
    """`search`, adding the seconds it takes to stages["neighbours"]."""
    def run(vectors, new, k, plan):
        t0 = time.time()
        try:
            return search(vectors, new, k, plan)
        finally:
            stages["neighbours"] = stages.get("neighbours", 0.0) + time.time() - t0
    return run


def neighbour_plan(vectors: np.ndarray, n_queries: int) -> "RowLists | None":
    """How a neighbour search of `n_queries` rows against these runs: None (a flat scan) while the scan
    is small; when many rows are searched against many (a build or a large add above store.EXACT_LIMIT,
    where n^2 grows past hours), the rows cut into lists (RowLists), each query scanning the lists
    nearest it. Either way the cosines are exact: link verdicts never rest on quantised scores."""
    n = len(vectors)
    if n <= EXACT_LIMIT or n_queries * n <= APPROX_PAIRS:
        return None
    return RowLists.of(vectors)


# A large build's neighbour search (RowLists) scans the share of the lists a served query probes
# (store.PROBE_SHARE, a tenth), at least MIN_PROBED of them. On 30,678 real texts (bench/build_lists.py)
# a tenth of the lists finds 0.95 of the exact 21 nearest, 0.92 of the 65 and 0.99 of the neighbours
# within cosine 0.5; on 300k topic-clustered synthetic rows it costs a quarter of the exact scan.
MIN_PROBED = 32


@dataclass(frozen=True)
class RowLists:
    """The rows cut into lists by k-means (spherical, trained on a sample): each row sits in its nearest
    centre's list. A block of queries is searched list by list, one matrix product of the queries that
    probe a list against its rows (BLAS on the raw vectors: exact cosines), the best k kept per query."""

    centres: np.ndarray  # (lists, dim) float32
    order: np.ndarray  # row numbers, list by list
    starts: np.ndarray  # (lists + 1,) where each list begins in `order`
    probe: int

    @classmethod
    def of(cls, vectors: np.ndarray, probe_share: float = PROBE_SHARE) -> "RowLists":
        import faiss

        n, dim = vectors.shape
        lists = max(1, int(round(np.sqrt(n))))
        sample = vectors[np.random.default_rng(0).choice(n, size=min(n, 64 * lists), replace=False)]
        release(vectors)
        kmeans = faiss.Kmeans(dim, lists, niter=12, seed=1, spherical=True)
        kmeans.train(np.ascontiguousarray(sample, dtype=np.float32))
        centres = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
        nearest = np.concatenate([_released(faiss.knn(np.ascontiguousarray(vectors[a:a + 65536]), centres, 1,
                                                       faiss.METRIC_INNER_PRODUCT)[1][:, 0], vectors)
                                  for a in range(0, n, 65536)])
        order = np.argsort(nearest, kind="stable")
        starts = np.searchsorted(nearest[order], np.arange(lists + 1)).astype(np.int64)
        return cls(centres, order.astype(np.int64), starts, min(lists, max(MIN_PROBED, int(np.ceil(lists * probe_share)))))

    def search(self, vectors: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosines, rows) of the k nearest rows of each of `rows` found in its probed lists, best first
        (ties by row number); -inf / -1 where fewer were found."""
        import faiss

        queries = np.ascontiguousarray(vectors[rows], dtype=np.float32)
        m = len(queries)
        _, probes = faiss.knn(queries, self.centres, self.probe, faiss.METRIC_INNER_PRODUCT)
        asking, lists = np.repeat(np.arange(m), self.probe), probes.reshape(-1)
        keep = lists >= 0
        by_list = np.argsort(lists[keep], kind="stable")
        asking, lists = asking[keep][by_list], lists[keep][by_list]
        cut = np.flatnonzero(np.r_[True, lists[1:] != lists[:-1], True]) if len(lists) else np.zeros(1, dtype=np.int64)
        best_s = np.full((m, k), -np.inf, dtype=np.float32)
        best_r = np.full((m, k), -1, dtype=np.int64)
        for a, b in zip(cut[:-1], cut[1:]):
            members = self.order[self.starts[lists[a]]:self.starts[lists[a] + 1]]
            if not len(members):
                continue
            who = asking[a:b]
            sims = queries[who] @ vectors[members].T
            if len(members) > k:
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
                sims, found = np.take_along_axis(sims, top, 1), members[top]
            else:
                found = np.broadcast_to(members, sims.shape)
            both_s, both_r = np.hstack([best_s[who], sims]), np.hstack([best_r[who], found])
            pick = np.argpartition(-both_s, k - 1, axis=1)[:, :k]
            best_s[who], best_r[who] = np.take_along_axis(both_s, pick, 1), np.take_along_axis(both_r, pick, 1)
        pick = _best(best_s, best_r)
        return np.take_along_axis(best_s, pick, 1), np.take_along_axis(best_r, pick, 1)


def _released(value, *arrays):
    """`value`, once the pages of these arrays (rows read from disk) have left this process's memory."""
    release(*arrays)
    return value


def _best(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per line, the positions in order: highest score first, ties by lowest row, unfilled (-1) last."""
    order = np.argsort(np.where(rows < 0, np.iinfo(np.int64).max, rows), axis=1, kind="stable")
    ranked = np.argsort(-np.take_along_axis(scores, order, 1), axis=1, kind="stable")
    return np.take_along_axis(order, ranked, 1)


def search_block(vectors: np.ndarray, rows: np.ndarray, k: int,
                 plan: "RowLists | None" = None) -> tuple[np.ndarray, np.ndarray]:
    """(cosines, rows) of the k nearest rows of each of `rows` (at most SEARCH_BLOCK), best first, by
    the plan neighbour_plan made."""
    import faiss

    if plan is None:
        queries = np.ascontiguousarray(vectors[rows])
        return faiss.knn(queries, np.ascontiguousarray(vectors, dtype=np.float32), k, faiss.METRIC_INNER_PRODUCT)
    return plan.search(vectors, rows, k)


def search_bounds(n: int) -> list[int]:
    """Where a search of n rows is cut into blocks: every SEARCH_BLOCK rows, a last block of fewer than 32
    joined to the one before (FAISS scans fewer than 20 query rows another way than more)."""
    bounds = list(range(0, n, SEARCH_BLOCK)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < 32:
        del bounds[-2]
    return bounds


def neighbours(vectors: np.ndarray, new: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(cosines, rows) of each new row's k nearest rows, best first: neighbour_plan, then search_rows."""
    new = np.asarray(new, dtype=np.int64)
    return search_rows(vectors, new, k, neighbour_plan(vectors, len(new)))


def search_rows(vectors: np.ndarray, new: np.ndarray, k: int, plan: "RowLists | None") -> tuple[np.ndarray, np.ndarray]:
    """(cosines, rows) of each new row's k nearest rows by `plan` (neighbour_plan's), best first:
    search_block over the blocks of search_bounds, a thread a core, each block's BLAS on one thread.
    A block so searched gives the same bytes here as on a one-thread Ray worker
    (distributed.search_rows_on_ray): a multi-threaded BLAS sums in another order (cosines 2e-7 apart,
    ties reordered)."""
    from concurrent.futures import ThreadPoolExecutor

    import faiss
    from threadpoolctl import threadpool_limits

    new = np.asarray(new, dtype=np.int64)
    bounds = search_bounds(len(new))

    def block(at: int) -> tuple[np.ndarray, np.ndarray]:
        faiss.omp_set_num_threads(1)  # this thread's FAISS and BLAS work on one thread
        return search_block(vectors, new[bounds[at]:bounds[at + 1]], k, plan)

    # Every BLAS on one thread while the blocks run a thread a core (as on a one-thread Ray worker);
    # two searching threads each starting BLAS threads of their own ran slower than one thread.
    with threadpool_limits(1), ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, len(bounds) - 1))) as pool:
        parts = list(pool.map(block, range(len(bounds) - 1)))
    if not parts:
        return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
    return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])


def _store_neighbours(rows: _Rows, keys: np.ndarray, new: list[int], found: tuple[np.ndarray, np.ndarray],
                      new_set: set[int]) -> None:
    """Record each new row's nearest neighbours (`found`: the search's cosines and rows; `keys`: every
    row's key), and enter the new row into the lists of its neighbours that are not new (`new_set`:
    every row being linked; a new row's own search fills its list)."""
    scores, nbrs = found
    K = STORED_NEIGHBOURS
    for qi, i in enumerate(new):
        mask = (nbrs[qi] >= 0) & (nbrs[qi] != i)
        found, sims = nbrs[qi][mask][:K], scores[qi][mask][:K]
        rows.neighbours[i, :] = -1
        rows.neighbour_scores[i, :] = -np.inf
        rows.neighbours[i, : len(found)] = keys[found]
        rows.neighbour_scores[i, : len(found)] = sims
    for qi, i in enumerate(new):
        for j, sim in zip(nbrs[qi], scores[qi]):
            j = int(j)
            if j < 0 or j == i or j in new_set:
                continue
            worst = int(np.argmin(rows.neighbour_scores[j]))
            if sim > rows.neighbour_scores[j, worst] and keys[i] not in rows.neighbours[j]:
                rows.neighbours[j, worst] = keys[i]
                rows.neighbour_scores[j, worst] = sim
                order = np.argsort(-rows.neighbour_scores[j], kind="stable")
                rows.neighbours[j] = rows.neighbours[j][order]
                rows.neighbour_scores[j] = rows.neighbour_scores[j][order]


def _canonical(members: list[int], records) -> int:
    """Earliest published, then longest body, then first added."""
    heads = _heads(records)

    def rank(i: int):
        r = heads[i]
        return (r.published or "9999-99-99", -_body_length(records, i), r.key)

    return min(members, key=rank)


def assign_groups(rows: _Rows, config) -> None:
    """dup_group / story_group of every row from the stored links; a group's id is its canonical member's key.

    Duplicate groups: union-find over exact/near links. Story groups: the copies and the retellings
    by other outlets (pairs.told_again), by average linkage (stories.group_stories), so one busy topic
    does not chain into a single group. An outlet's own articles on one story stay apart: its second
    is the story's development, which lists show."""
    n = len(rows.records)
    keys = rows.keys  # ascending: a key's row is where it sorts
    dup = UnionFind(range(n))
    copies, retold = [], []
    found = list(rows.links.items())
    ends = np.asarray([ab for ab, _ in found], dtype=np.int64).reshape(-1, 2)
    at = np.minimum(np.searchsorted(keys, ends), max(n - 1, 0))
    known = (keys[at] == ends).all(axis=1) if n else np.zeros(len(found), dtype=bool)
    for m in np.flatnonzero(known).tolist():
        ia, ib, link = int(at[m, 0]), int(at[m, 1]), found[m][1]
        if link.level in ("exact", "near"):
            dup.union(ia, ib)
            copies.append((ia, ib, 1.0))
        else:
            retold.append((ia, ib, float(link.cosine)))
    judge = load_pair_model(config.model, config.pair_model or None)
    sides = rows.sides(config)
    dup_of = np.asarray([dup.find(i) for i in range(n)], dtype=np.int64)

    def together(ma: list[int], mb: list[int]) -> np.ndarray:
        """Told-again probabilities between two groups' members (0 within one outlet; copies 1)."""
        ia, ib = np.repeat(ma, len(mb)), np.tile(mb, len(ma))
        cos = np.einsum("nd,nd->n", rows.vectors[ia], rows.vectors[ib])
        p = judge.judge(cos, sides.take(ia), sides.take(ib)).p_retelling
        release(rows.vectors, rows.minhash)  # rows read from disk: these rows' pages leave memory again
        p = np.where(other_outlet(sides.source[ia], sides.source[ib]), p, 0.0)
        return np.where(dup_of[ia] == dup_of[ib], 1.0, p)

    links = list(copies)
    if retold:
        ia, ib, cos = (np.asarray(c) for c in zip(*retold))
        p = judge.judge(cos.astype(np.float64), sides.take(ia), sides.take(ib)).p_retelling
        release(rows.minhash)
        keep = told_again(p, sides.source[ia], sides.source[ib])
        links += list(zip(ia[keep].tolist(), ib[keep].tolist(), p[keep].tolist()))
    story_labels = group_stories(n, links, together)
    story: dict[int, list[int]] = {}
    for i, label in enumerate(story_labels):
        story.setdefault(label, []).append(i)
    labels: dict[str, list[int]] = {}
    for groups, column in ((dup.groups(), "dup_group"), (story, "story_group")):
        labels[column] = [0] * n
        for members in groups.values():
            canon = _heads(rows.records)[_canonical(members, rows.records)].key
            for i in members:
                labels[column][i] = canon
    # A duplicate group always sits inside one story group.
    by_dup: dict[int, int] = {}
    for d, st in zip(labels["dup_group"], labels["story_group"]):
        by_dup.setdefault(d, st)
    for i, d in enumerate(labels["dup_group"]):  # in place: no second list of every record
        _update(rows.records, i, dup_group=d, story_group=by_dup[d])
    release(rows.vectors)


def _manifest(embedder: Embedder, count: int, config, started: float, notices: Iterable[str] = ()) -> dict:
    import faiss

    return {
        "notices": sorted(notices),
        "model": embedder.name,
        "backend": embedder.backend,
        "dim": embedder.dim,
        "vectors": getattr(embedder, "vectors", ""),  # how the model's vectors are centred (models.Centres)
        "count": count,
        "max_tokens": config.max_tokens,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.time() - started, 3),
        "thresholds": {
            "near_threshold": config.near_threshold,
            "near_coverage": config.near_coverage,
            "retelling": f"pair model {config.pair_model or 'shipped'} ({load_pair_model(config.model, config.pair_model or None).name}), p >= {RETELLING_VERDICT}",
            "story_groups": "copies and retellings by other outlets",
        },
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "faiss": getattr(faiss, "__version__", "?"),
            "newsrec": _version(),
        },
    }


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("newsrec")
    except Exception:  # not installed as a distribution (running from a checkout)
        return "0+unknown"


def _publish(index_dir: IndexDir, rows: _Rows, embedder: Embedder, config, started: float,
             stages: dict[str, float] | None = None) -> str:
    """Group the rows, write them as a snapshot and publish it; `stages` gets the seconds of each."""
    stages = {} if stages is None else stages
    t0 = time.time()
    assign_groups(rows, config)
    trim()
    t1 = time.time()
    tmp = index_dir.new_temp()
    write_snapshot(tmp, snapshot_parts(rows.records, rows.vectors, rows.minhash, rows.links.values(),
                                       _manifest(embedder, len(rows.records), config, started, rows.notices),
                                       neighbours=(rows.neighbours, rows.neighbour_scores),
                                       band_threshold=config.near_threshold, text_words=rows.text_words(config),
                                       bands=rows.bands))
    name = index_dir.publish(tmp)
    stages.update(groups=t1 - t0, write=time.time() - t1)
    return name


def snapshot_parts(records, vectors, minhash, links, manifest: dict, *, neighbours=(None, None),
                   band_threshold: float | None = None, text_words=None, bands: BandTable | None = None) -> SnapshotParts:
    """What the writer stores, from grouped records: the story centroids (stories told more than once; a
    story of one is its own vector) and the LSH band table (sorted once, memory-mapped by workers):
    `bands`, the one linking made of these rows at this threshold, else built here."""
    vectors = np.asarray(vectors, dtype=np.float32)
    ids, centroids, _ = group_centroids(vectors, [r.story_group for r in _heads(records)], min_size=2)
    release(vectors)
    stored = None
    if band_threshold is not None:
        fits = (bands is not None and bands.keys.shape[1] == len(records)
                and (bands.bands, bands.rows) == lsh_params(band_threshold))
        table = bands if fits else BandTable.build(np.asarray(minhash, dtype=np.uint32), band_threshold)
        stored = StoredBands(table.keys, table.rows_of, table.bands, table.rows, band_threshold)
    return SnapshotParts(records=records if isinstance(records, RecordTable) else list(records), vectors=vectors,
                         minhash=minhash, links=list(links),
                         manifest=manifest, story_ids=ids, story_centroids=centroids, bands=stored,
                         neighbours=neighbours[0], neighbour_scores=neighbours[1],
                         text_words=None if text_words is None else np.asarray(text_words, dtype=np.int32))


def what_is_read(records: Sequence[Record], config) -> list[str]:
    """What the model reads of each record (embedding.article_text): embedded, and signed for the pair judgment."""
    return [_text(r, config.max_tokens) for r in records]


def embed_records(records: Sequence[Record], embedder: Embedder, config, progress: bool = False, *,
                  read: Sequence[str] | None = None) -> np.ndarray:
    """The vectors of these records: what the model reads of each (title + lead, or `read` when the caller
    has it already), L2-normalised."""
    texts = list(read) if read is not None else what_is_read(records, config)
    return embedder.encode(texts, batch_size=config.batch_size, progress=progress)


@dataclass
class Prepared:
    """Cleaned records (key 0) with their vectors and MinHash signatures, in input order: the output of
    the per-article steps (clean, embed, MinHash), made here or on a Ray cluster (distributed.py), and
    what index assembly consumes."""

    records: "list[Record] | RecordTable"
    vectors: np.ndarray
    minhash: np.ndarray
    embed_seconds: float = 0.0
    # Where the assembly finds the rows' neighbours and judges their pairs (None: here), and what ends
    # it (a Ray session).
    search: Search | None = None
    judging: "Judging | None" = None
    release: Callable[[], None] | None = None
    # Rows read from disk (Prepared.open): their folder, and whether it is this build's own (removed
    # when the build ends: close).
    folder: Path | None = None
    owned: bool = False

    @classmethod
    def open(cls, folder: Path, *, heads: list[Record] | None = None, owned: bool = False) -> "Prepared":
        """The rows a RowsWriter wrote to `folder`, read from disk as the assembly needs them: vectors and
        signatures memory-mapped (a block's pages released after use), bodies read one at a time
        (RecordTable); `heads`: the records without bodies when the writer has them at hand."""
        folder = Path(folder)
        meta = json.loads((folder / ROWS_META).read_text(encoding="utf-8"))
        n, dim, width = int(meta["count"]), int(meta["dim"]), int(meta["width"])

        def mapped(name: str, dtype, cols: int) -> np.ndarray:
            if not n:
                return np.zeros((0, cols), dtype=dtype)
            return np.memmap(folder / name, dtype=dtype, mode="r+", shape=(n, cols))

        if heads is None:
            with open(folder / "heads.jsonl", encoding="utf-8") as fh:
                heads = [_head_of(json.loads(line)) for line in fh]
        texts = TableTexts(PackedFile(folder / "bodies.utf8", np.load(folder / "body_starts.npy")))
        records = RecordTable(heads, texts, np.load(folder / "body_chars.npy"))
        return cls(records, mapped("vectors.f32", np.float32, dim), mapped("minhash.u32", np.uint32, width),
                   float(meta.get("embed_seconds", 0.0)), folder=folder, owned=owned)

    def close(self) -> None:
        """End what reads these rows from disk; remove their folder when it is this build's own."""
        if isinstance(self.records, RecordTable) and isinstance(self.records.texts.base, PackedFile):
            self.records.texts.base.close()
        if self.folder is not None and self.owned:
            self.vectors = self.minhash = None
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def in_memory(self) -> "Prepared":
        """These rows with their records, vectors and signatures in memory (rows read from disk read whole,
        and their folder, if this build's own, removed)."""
        if not isinstance(self.records, RecordTable):
            return self
        out = dataclasses.replace(self, records=list(self.records), vectors=np.array(self.vectors, dtype=np.float32),
                                  minhash=np.array(self.minhash, dtype=np.uint32), folder=None, owned=False)
        self.close()
        return out

    @classmethod
    def concat(cls, parts: Sequence["Prepared"], dim: int) -> "Prepared":
        records = [r for p in parts for r in p.records]
        vectors = np.vstack([p.vectors for p in parts]) if records else np.zeros((0, dim), dtype=np.float32)
        minhash = (np.vstack([p.minhash for p in parts]) if records
                   else np.zeros((0, SIGNATURE_WIDTH), dtype=np.uint32))
        return cls(records, np.asarray(vectors, dtype=np.float32), np.asarray(minhash, dtype=np.uint32),
                   sum(p.embed_seconds for p in parts))

    def last_per_id(self) -> "Prepared":
        """One row per id, the last one given (a re-scraped article replaces the old copy), in input order.
        (Rows read from disk keep their bodies there; their vectors and signatures are then copied.)"""
        last = {r.id: i for i, r in enumerate(_heads(self.records))}
        keep = sorted(last.values())
        if len(keep) == len(self.records):
            return self
        records = self.records.take(keep) if isinstance(self.records, RecordTable) else [self.records[i] for i in keep]
        return dataclasses.replace(self, records=records, vectors=np.asarray(self.vectors[keep]),
                                   minhash=np.asarray(self.minhash[keep]))

    def finish(self) -> None:
        """End what the rows were prepared with (a Ray session), once the assembly is done with it."""
        if self.release is not None:
            self.release()
            self.release = self.search = self.judging = None

    def keyed(self, first_key: int) -> "list[Record] | RecordTable":
        """The records with their keys, first_key on, in place: the unkeyed ones are not kept beside them
        (a million records are half a gigabyte without their bodies)."""
        for i in range(len(self.records)):
            _update(self.records, i, key=first_key + i)
        return self.records


ROWS_META = "rows.json"


def _head_of(d: dict) -> Record:
    """A record without its body from its JSON line (RowsWriter)."""
    return Record(**{**d, "body": "", "also_read": tuple(d.get("also_read", ())), "removed": tuple(d.get("removed", ()))})


class RowsWriter:
    """Prepared rows written to a folder as they come (from a Ray cluster's actors, or a benchmark's
    maker), so that a build of a million articles holds none of their vectors, signatures or bodies in
    memory: vectors and signatures as raw arrays, bodies as one UTF-8 file with where each begins, the
    rest of each record a JSON line. `close` gives them back as a Prepared read from disk."""

    def __init__(self, folder: Path, dim: int, *, keep_heads: bool = True):
        self.folder, self.dim = Path(folder), dim
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files = {name: open(self.folder / name, "wb")
                       for name in ("vectors.f32", "minhash.u32", "bodies.utf8", "heads.jsonl")}
        self.starts = [0]
        self.lengths: list[int] = []
        self.heads: list[Record] | None = [] if keep_heads else None
        self.count = 0

    def add(self, records: Sequence[Record], vectors: np.ndarray, minhash: np.ndarray) -> None:
        for r in records:
            data = r.body.encode("utf-8")
            self._files["bodies.utf8"].write(data)
            self.starts.append(self.starts[-1] + len(data))
            self.lengths.append(len(r.body))
            head = dataclasses.replace(r, body="")
            if self.heads is not None:
                self.heads.append(head)
            fields = {f.name: getattr(head, f.name) for f in dataclasses.fields(Record) if f.name != "body"}
            self._files["heads.jsonl"].write((json.dumps(fields, ensure_ascii=False) + "\n").encode("utf-8"))
        self._files["vectors.f32"].write(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim).tobytes())
        self._files["minhash.u32"].write(np.ascontiguousarray(minhash, dtype=np.uint32).reshape(-1, SIGNATURE_WIDTH).tobytes())
        self.count += len(records)

    def close(self, embed_seconds: float = 0.0, *, owned: bool = False) -> Prepared:
        for fh in self._files.values():
            fh.close()
        np.save(self.folder / "body_starts.npy", np.asarray(self.starts, dtype=np.int64))
        np.save(self.folder / "body_chars.npy", np.asarray(self.lengths, dtype=np.int64))
        (self.folder / ROWS_META).write_text(json.dumps({"count": self.count, "dim": self.dim, "width": SIGNATURE_WIDTH,
                                                         "embed_seconds": embed_seconds}), encoding="utf-8")
        return Prepared.open(self.folder, heads=self.heads, owned=owned)


def read_notices_as_headlines(prepared: Prepared, notices: frozenset[str], embedder: Embedder, config) -> int:
    """Read the prepared rows whose body is one of these notices (duplicates.notice_bodies) as their
    headlines (those that have one), in place: the body cut (kept in `removed`, reason "notice"), the
    headline embedded and signed again. Returns how many rows were read again."""
    if not notices:
        return 0
    at = [i for i, r in enumerate(_heads(prepared.records))
          if r.body_hash in notices and carries_notice(prepared.records[i], notices)]
    if not at:
        return 0
    again = [read_as_headline(prepared.records[i], "notice") for i in at]
    read = what_is_read(again, config)
    if not (prepared.vectors.flags.writeable and prepared.minhash.flags.writeable):  # rows read in place from elsewhere
        prepared.vectors, prepared.minhash = prepared.vectors.copy(), prepared.minhash.copy()
    prepared.vectors[at] = embed_records(again, embedder, config, read=read)
    prepared.minhash[at] = text_signatures([r.body for r in again], read)
    for i, r in zip(at, again):
        prepared.records[i] = r
    return len(at)


def _dedupe_ids(articles: Iterable[Article]) -> list[Article]:
    """Last record wins when an id repeats (a re-scraped article replaces the old copy)."""
    by_id: dict[str, Article] = {}
    for a in articles:
        by_id.pop(a.id, None)
        by_id[a.id] = a
    return list(by_id.values())


def prepare_articles(articles: Iterable[Article] | Prepared, embedder: Embedder, config, *,
                     progress: bool = False) -> Prepared:
    """Clean, embed and MinHash articles on this machine.

    Cleaning and MinHash (Python, in this thread) overlap with embedding (native code, in a worker
    thread that releases the GIL), chunk by chunk. Already prepared input is returned as it is.
    """
    from concurrent.futures import ThreadPoolExecutor

    if isinstance(articles, Prepared):
        return articles
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(unit="doc", desc="embedding")

    def prepare_chunk(chunk: list[Record], read: list[str]) -> Prepared:
        t0 = time.time()
        vectors = embed_records(chunk, embedder, config, read=read)
        if bar is not None:
            bar.update(len(chunk))  # counts embedded articles, the slow part
        return Prepared(chunk, vectors, np.zeros((0, SIGNATURE_WIDTH), dtype=np.uint32), time.time() - t0)

    futures, minhash_parts = [], []
    with ThreadPoolExecutor(max_workers=1) as pool:

        def flush(chunk: list[Record]) -> None:
            read = what_is_read(chunk, config)
            futures.append(pool.submit(prepare_chunk, chunk, read))  # embeds while this thread cleans the next chunk
            minhash_parts.append(text_signatures([r.body for r in chunk], read))

        chunk: list[Record] = []
        # Small chunks first, so the model starts while the rest is still being cleaned, then
        # BUILD_CHUNK-sized ones (sorted by length inside: less padding for batching backends).
        size = FIRST_CHUNK
        for article in articles:
            chunk.append(Record(key=0, **article.stored()))
            if len(chunk) == size:
                flush(chunk)
                chunk = []
                size = min(BUILD_CHUNK, size * 2)
        if chunk:
            flush(chunk)
        parts = [f.result() for f in futures]
    if bar is not None:
        bar.close()
    for part, minhash in zip(parts, minhash_parts):
        part.minhash = minhash
    return Prepared.concat(parts, embedder.dim)


def build_index(
    articles: Iterable[Article] | Prepared,
    index_path,
    embedder: Embedder,
    config,
    *,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> BuildReport:
    """A new snapshot from these articles alone (or their prepared rows); the previous one stays
    until this one is published."""
    log = log or (lambda msg: None)
    # Rows prepared elsewhere (a Ray cluster) bring the time they took.
    started = time.time() - (articles.embed_seconds if isinstance(articles, Prepared) else 0.0)
    index_dir = IndexDir(index_path)
    prepared = prepare_articles(articles, embedder, config, progress=progress)
    try:
        prepared = prepared.last_per_id()
        records = prepared.records
        pages = records.pages() if isinstance(records, RecordTable) else records
        notices = frozenset(notice_bodies(pages))
        del pages
        read_notices_as_headlines(prepared, notices, embedder, config)
        records = prepared.keyed(1)
        log(f"cleaned and embedded {len(records)} articles in {time.time() - started:.1f}s; finding duplicates")
        rows = _Rows(records, prepared.vectors, prepared.minhash, {}, notices=notices, folder=prepared.folder)
        stages: dict[str, float] = {}
        t0 = time.time()
        try:
            link_rows(rows, range(len(records)), config, _timed(prepared.search or search_rows, stages), prepared.judging)
        finally:
            prepared.finish()
        stages["links"] = time.time() - t0 - stages.get("neighbours", 0.0)
        log(f"neighbours {stages.get('neighbours', 0.0):.1f}s, links {stages['links']:.1f}s; grouping and writing")
        with index_dir.write_lock():
            index_dir.clean_leftovers()
            name = _publish(index_dir, rows, embedder, config, started, stages)
        languages = dict(Counter(r.lang for r in _heads(records)))
    finally:
        prepared.finish()
        prepared.close()
    return BuildReport(name, len(records), added=len(records), seconds=time.time() - started, stages=stages,
                       embed_seconds=prepared.embed_seconds, languages=languages,
                       warnings=language_warnings(languages, embedder.name))


def _load_rows(snap: Snapshot, max_tokens: int) -> _Rows:
    found = snap.records()
    records = [found[int(k)] for k in snap.keys]
    links = {(link.a, link.b): link for link in snap.links()}
    nb, nbs = (np.array(snap.neighbours), np.array(snap.neighbour_scores)) if snap.neighbours is not None else (None, None)
    words = {int(k): int(w) for k, w in zip(snap.keys, snap.text_words)} if snap.has_text_words else {}
    minhash = np.array(snap.minhash, dtype=np.uint32)
    if minhash.shape[1] < SIGNATURE_WIDTH:  # written before the content words' hashes were stored: add them
        read = [article_text(r.title, r.body, max_tokens) for r in records]
        minhash = np.hstack([minhash, lexical_signatures(read, slots=True)[:, minhash.shape[1] - NUM_PERM:]])
    return _Rows(records, np.array(snap.vectors, dtype=np.float32), minhash, links, nb, nbs, words, notices=snap.notices)


def _drop(rows: _Rows, drop_keys: set[int]) -> _Rows:
    keep = [i for i, r in enumerate(rows.records) if r.key not in drop_keys]
    links = {ab: l for ab, l in rows.links.items() if ab[0] not in drop_keys and ab[1] not in drop_keys}
    nb = rows.neighbours[keep] if rows.neighbours is not None else None
    nbs = rows.neighbour_scores[keep] if rows.neighbour_scores is not None else None
    return _Rows([rows.records[i] for i in keep], rows.vectors[keep], rows.minhash[keep], links, nb, nbs, rows.words,
                 notices=rows.notices)


def add_articles(
    index_path, articles: Iterable[Article] | Prepared, embedder: Embedder, config, *, progress: bool = False,
    remove: Sequence[str] = (),
) -> BuildReport:
    """Add or replace (by id) articles in place, and drop the ids in `remove`: one new snapshot;
    existing articles are not re-embedded. The articles may come prepared (e.g. by a Ray cluster)."""
    started = time.time()
    index_dir = IndexDir(index_path)
    if not isinstance(articles, Prepared):
        articles = _dedupe_ids(articles)  # the last copy of an id is the only one embedded
    # An add's rows are held in memory with the index's (rows read from disk are read whole here).
    prepared = prepare_articles(articles, embedder, config, progress=progress).in_memory().last_per_id()
    with index_dir.write_lock():
        rows, next_key = _live_rows(index_dir, embedder, config)
        gone = {r.id for r in prepared.records} | set(remove)
        replaced = {r.key for r in rows.records if r.id in gone}
        rows = _drop(rows, replaced)
        # A body the new pages repeat may make a notice of an indexed page's body: that page is read
        # again as its headline, as a new row (its links are made again; its id stays).
        notices = rows.notices | frozenset(notice_bodies(rows.records + prepared.records))
        stale = [i for i, r in enumerate(rows.records) if carries_notice(r, notices)]
        if stale:
            again = Prepared([dataclasses.replace(rows.records[i], key=0) for i in stale], rows.vectors[stale].copy(),
                             rows.minhash[stale].copy())
            rows = _drop(rows, {rows.records[i].key for i in stale})
            prepared = dataclasses.replace(prepared, records=again.records + prepared.records,
                                           vectors=np.vstack([again.vectors, prepared.vectors]),
                                           minhash=np.vstack([again.minhash, prepared.minhash]))
        read_notices_as_headlines(prepared, notices, embedder, config)
        new_records = prepared.keyed(next_key)
        start = len(rows.records)
        rows = _Rows(
            rows.records + new_records,
            np.vstack([rows.vectors, prepared.vectors]) if new_records else rows.vectors,
            np.vstack([rows.minhash, prepared.minhash]) if new_records else rows.minhash,
            rows.links,
            rows.neighbours,
            rows.neighbour_scores,
            rows.words,
            notices=notices,
        )
        try:
            link_rows(rows, range(start, len(rows.records)), config, prepared.search, prepared.judging)
        finally:
            prepared.finish()
        name = _publish(index_dir, rows, embedder, config, started)
    return BuildReport(name, len(rows.records), added=len(new_records) - len(stale), deleted=len(replaced),
                       seconds=time.time() - started, embed_seconds=prepared.embed_seconds)


def _live_rows(index_dir: IndexDir, embedder: Embedder, config) -> tuple[_Rows, int]:
    """(the live snapshot's rows, the key a new article takes next), read under the write lock after
    clearing leftovers of killed writers."""
    index_dir.clean_leftovers()
    snap = index_dir.open_for(embedder, config.max_tokens, mmap=False)
    try:
        return _load_rows(snap, config.max_tokens), int(snap.keys.max()) + 1 if snap.count else 1
    finally:
        snap.close()


def delete_articles(index_path, ids: Sequence[str], embedder: Embedder, config) -> BuildReport:
    """Remove articles by id: a new snapshot without them; groups are recomputed from the remaining links."""
    started = time.time()
    index_dir = IndexDir(index_path)
    with index_dir.write_lock():
        rows, _ = _live_rows(index_dir, embedder, config)
        wanted = set(ids)
        drop = {r.key for r in rows.records if r.id in wanted}
        missing = wanted - {r.id for r in rows.records}
        rows = _drop(rows, drop)
        name = _publish(index_dir, rows, embedder, config, started)
    report = BuildReport(name, len(rows.records), deleted=len(drop), seconds=time.time() - started)
    report.skipped = sorted(missing)
    return report

