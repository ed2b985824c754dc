"""Duplicate evidence: exact hashes, MinHash near-duplicates, and groups.

Three levels:
- `exact`: the same normalised body (a hash);
- `near`: the same text with edits: MinHash over 5-word shingles finds candidates through LSH
  bands; each is confirmed by its coverage: the share of the shorter text's words that lie in 5-word
  passages the other text has (of the shorter text, so a copy that carries extra furniture or lost its
  last paragraph still counts). An edit leaves the words around it covered by the passages on either
  side, so a copy with a tenth of its words edited stays above 0.78 (300 copies made from Wikinews,
  1-10% of words edited: 0.79 at least); pages that share a template block and differ in the rest
  (interviews of different people under one introduction and one list of questions) share a block and
  no more (56 such Wikinews interviews: 0.74 at most, with shingle containment up to 0.63);
- `same-story`: a different text telling the same event: the pair judgment's p_retelling (pairs.py) is
  more likely than not.

The LSH band table is a pair of sorted numpy arrays (band hash, row) per band, so it memory-maps
and needs no start-up work; lookups are binary searches.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from recommender.evidence.pairs import LEX_PERM, RETELLING_VERDICT, WORD_SLOTS, content_tokens, lexical_signatures

__all__ = [
    "BUCKET_LIMIT",
    "BandTable",
    "NEAR_COSINE",
    "NUM_PERM",
    "SHINGLE",
    "SIGNATURE_WIDTH",
    "lexical_part",
    "word_part",
    "text_signatures",
    "Shingled",
    "UnionFind",
    "body_hash",
    "classify_pair",
    "has_shingles",
    "lsh_params",
    "minhash_signatures",
    "notice_bodies",
    "carries_notice",
    "overlap",
    "shingles",
]

SHINGLE = 5
NUM_PERM = 128
# A stored article's signature row: the shingle MinHash (NUM_PERM columns: copies), then the content-word
# signature the pair judgment reads (pairs.lexical_signatures: a count and LEX_PERM columns), then the
# content words' hashes (WORD_SLOTS columns), which count a text's shared words with the article.
LEXICAL_WIDTH = 1 + LEX_PERM
SIGNATURE_WIDTH = NUM_PERM + LEXICAL_WIDTH + WORD_SLOTS
# Copy candidates a row takes from one bucket (an LSH band, or one body repeated word for word): the
# first this many. Union-find joins the rest of a larger bucket through them, so the groups are the
# same, and a body a thousand pages repeat (a paywall's stub) costs a thousand rows, not a million pairs.
BUCKET_LIMIT = 200
NEAR_COSINE = 0.80  # an embedding neighbour this close is also checked for near-duplicate text
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _WORD.findall(text)


def body_hash(text: str) -> str:
    """Hash of the normalised word sequence: equal for bodies that differ only in case, spacing, punctuation."""
    return hashlib.blake2b(" ".join(words(text)).encode(), digest_size=16).hexdigest()


# Distinct headlines of one repeated body compared pairwise when judging it a notice (the first this many).
NOTICE_SAMPLE = 40


def notice_bodies(pages: Sequence) -> set[str]:
    """The body hashes that are a site's notice, not a story: a body that pages about different stories
    repeat word for word (a paywall's or a cookie wall's text, a "please enable JavaScript" page the
    scraper stored as the article). Their headlines tell them apart: one story's copies (an article at
    two addresses, a wire story every outlet runs under its own headline) have headlines that share a
    name, a place or a number; the pages behind one notice mostly share no content word at all. A body is
    a notice when it is repeated under two or more distinct headlines and fewer than half of the pairs
    of those headlines (the first NOTICE_SAMPLE) share a content word (pairs.content_tokens, the same in
    any language). `pages`: index records (anything with `title`, `body` and `body_hash`); a page without a
    headline or a body is never judged one."""
    counts: dict[str, int] = {}
    for page in pages:
        counts[page.body_hash] = counts.get(page.body_hash, 0) + 1
    by_hash: dict[str, dict[str, frozenset[str]]] = {}  # a repeated body's distinct headlines, and their content words
    for page in pages:
        if counts[page.body_hash] < 2 or not page.body.strip() or not page.title.strip():
            continue
        heads = by_hash.setdefault(page.body_hash, {})
        key = " ".join(words(page.title))
        if key not in heads and len(heads) < NOTICE_SAMPLE:
            heads[key] = frozenset(content_tokens(page.title))
    out: set[str] = set()
    for h, heads in by_hash.items():
        sets = list(heads.values())
        pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
        if pairs and 2 * sum(bool(a & b) for a, b in pairs) < len(pairs):
            out.add(h)
    return out


def carries_notice(page, notices: frozenset[str]) -> bool:
    """Whether a page's body is one of these notices and it has a headline to be read by instead. `page`:
    an index record (its stored `body_hash` is read) or an article (its body is hashed, and only when
    there are notices to look for)."""
    if not notices or not page.body or not page.title.strip():
        return False
    return (getattr(page, "body_hash", None) or body_hash(page.body)) in notices


# The hash of a body without a word ("", "***", a row of dashes): such bodies say nothing, and two of them
# are not copies of each other.
_NO_WORDS = body_hash("")


def shingles(text: str, size: int = SHINGLE) -> frozenset[str]:
    """Word shingles; a text shorter than `size` words is one shingle."""
    return Shingled.of(text, size).set


def shared_passages(text: str, other: str, size: int = SHINGLE) -> list[tuple[str, bool]]:
    """`text` cut into (piece, shared) runs: shared where its words belong to a shingle of `size`
    words that `other` also has (the evidence of a near-duplicate, for showing side by side).
    Joining the pieces gives `text` back exactly."""
    theirs = shingles(other, size)
    spans = [(m.start(), m.end(), unicodedata.normalize("NFKC", m.group()).casefold())
             for m in _WORD.finditer(text)]
    marked = [False] * len(spans)
    for i in range(len(spans) - size + 1):
        if " ".join(w for _, _, w in spans[i : i + size]) in theirs:
            for j in range(i, i + size):
                marked[j] = True
    pieces: list[tuple[str, bool]] = []

    def add(piece: str, shared: bool) -> None:
        if not piece:
            return
        if pieces and pieces[-1][1] == shared:
            pieces[-1] = (pieces[-1][0] + piece, shared)
        else:
            pieces.append((piece, shared))

    at, before = 0, False
    for (start, end, _), shared in zip(spans, marked):
        add(text[at:start], shared and before)  # the gap between two shared words is shared too
        add(text[start:end], shared)
        at, before = end, shared
    add(text[at:], False)
    return pieces


@dataclass(frozen=True)
class Shingled:
    """A text's shingles in reading order (where each falls) and as a set."""
    order: tuple[str, ...]
    set: frozenset[str]
    words: int

    @classmethod
    def of(cls, text: str, size: int = SHINGLE) -> "Shingled":
        w = words(text)
        if len(w) < size:
            order = (" ".join(w),) if w else ()
        else:
            order = tuple(" ".join(w[i : i + size]) for i in range(len(w) - size + 1))
        return cls(order, frozenset(order), len(w))


@dataclass(frozen=True)
class Overlap:
    jaccard: float
    containment: float  # |A ∩ B| / min(|A|, |B|)
    coverage: float  # the share of the shorter text's words inside a shingle the other has


def overlap(a: Shingled, b: Shingled) -> Overlap:
    if not a.set or not b.set:
        return Overlap(0.0, 0.0, 0.0)
    inter = len(a.set & b.set)
    short, other = (a, b) if len(a.set) <= len(b.set) else (b, a)
    shared = np.fromiter((s in other.set for s in short.order), dtype=np.int32, count=len(short.order))
    if short.words < SHINGLE:  # one shingle holds every word
        coverage = float(shared[0])
    else:  # word i lies in shingles i-SHINGLE+1 .. i
        coverage = float((np.convolve(shared, np.ones(SHINGLE, dtype=np.int32)) > 0).mean())
    return Overlap(inter / len(a.set | b.set), inter / min(len(a.set), len(b.set)), coverage)


def classify_pair(a, b, ov: Overlap | None, p_retelling: float, config) -> tuple[str | None, float | None, float | None]:
    """(level, jaccard, containment) for two texts (anything with `body` and `body_hash`); level None when
    unrelated.

    exact: the same normalised body (one with words); near: the shorter text's coverage by the other's
    shingles (`ov`, when the pair was a near-duplicate candidate) at or above `near_coverage`; same-story:
    the pair judgment's p_retelling (pairs.PairModel) at or above RETELLING_VERDICT.
    """
    if a.body_hash == b.body_hash and a.body_hash != _NO_WORDS:
        return "exact", 1.0, 1.0
    jac = cont = None
    if ov is not None:
        jac, cont = round(ov.jaccard, 4), round(ov.containment, 4)
        if ov.coverage >= config.near_coverage:
            return "near", jac, cont
    if p_retelling >= RETELLING_VERDICT:
        return "same-story", jac, cont
    return None, jac, cont


def minhash_signatures(texts: Sequence[str], num_perm: int = NUM_PERM, seed: int = 1) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures of the texts' shingle sets (datasketch)."""
    from datasketch import MinHash

    out = np.zeros((len(texts), num_perm), dtype=np.uint32)
    template = MinHash(num_perm=num_perm, seed=seed)
    for i, text in enumerate(texts):
        m = MinHash(num_perm=num_perm, seed=seed, permutations=template.permutations, scheme=template.scheme)
        sh = shingles(text)
        if sh:
            m.update_batch([s.encode("utf-8") for s in sh])
        out[i] = m.hashvalues.astype(np.uint32)
    return out


# What MinHash gives a text with no shingles (no words): every value at its maximum. Texts without words
# share nothing, so such a signature is never a copy candidate (it would fall in one bucket with every
# other empty body: a headline-only site's every pair).
_NO_SHINGLES = np.uint32(0xFFFFFFFF)


def has_shingles(signatures: np.ndarray) -> np.ndarray:
    """For each signature row (or the one signature), whether its text had any shingle."""
    return (np.asarray(signatures)[..., :NUM_PERM] != _NO_SHINGLES).any(axis=-1)


def text_signatures(bodies: Sequence[str], read: Sequence[str]) -> np.ndarray:
    """(n, SIGNATURE_WIDTH) uint32: each article's shingle MinHash of its body, then the content-word
    signature of what the model reads of it (`read`: embedding.article_text; a bounded set, so two
    texts' overlap is estimated as well for an article as for a headline)."""
    return np.hstack([minhash_signatures(bodies), lexical_signatures(read, slots=True)])


def lexical_part(signatures: np.ndarray) -> np.ndarray:
    """The content-word signatures (pairs.lexical_signatures) of stored signature rows."""
    return signatures[..., NUM_PERM:NUM_PERM + LEXICAL_WIDTH]


def word_part(signatures: np.ndarray) -> np.ndarray | None:
    """The content words' hashes (pairs.WORD_SLOTS columns) of stored signature rows; None for rows
    written before they were stored."""
    signatures = np.asarray(signatures)
    return signatures[..., NUM_PERM + LEXICAL_WIDTH:] if signatures.shape[-1] == SIGNATURE_WIDTH else None


def lsh_params(threshold: float, num_perm: int = NUM_PERM) -> tuple[int, int]:
    """(bands, rows) minimising false positives + false negatives at the threshold (datasketch's rule)."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.5, 0.5)


# Signatures hashed into bands at a time: their 64-bit copy is 1 KB a row (65,536 rows: 64 MB).
BAND_HASH_ROWS = 1 << 16


def _band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64: one hash per band of `rows` signature values (BAND_HASH_ROWS rows at a time)."""
    n = signatures.shape[0]
    out = np.empty((n, bands), dtype=np.uint64)
    prime = np.uint64(1099511628211)
    salt = np.arange(bands, dtype=np.uint64)[None, :] * np.uint64(0x9E3779B97F4A7C15)
    for lo in range(0, n, BAND_HASH_ROWS):
        part = signatures[lo:lo + BAND_HASH_ROWS, : bands * rows]
        sig = np.ascontiguousarray(part, dtype=np.uint64).reshape(len(part), bands, rows)
        h = np.full((len(part), bands), np.uint64(1469598103934665603), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for r in range(rows):
                h = (h ^ sig[:, :, r]) * prime
            h ^= salt
        out[lo:lo + len(part)] = h
    return out


class BandTable:
    """LSH buckets as sorted arrays: for each band, band hashes sorted with the row they came from."""

    def __init__(self, keys: np.ndarray, rows_: np.ndarray, bands: int, rows: int):
        self.keys = keys  # (bands, n) uint64, each band sorted
        self.rows_of = rows_  # (bands, n) int32
        self.bands = bands
        self.rows = rows

    @classmethod
    def build(cls, signatures: np.ndarray, threshold: float) -> "BandTable":
        bands, rows = lsh_params(threshold, NUM_PERM)
        n = signatures.shape[0]
        if n == 0:
            empty = np.zeros((bands, 0), dtype=np.uint64)
            return cls(empty, empty.astype(np.int32), bands, rows)
        h = _band_hashes(signatures[:, :NUM_PERM], bands, rows)  # (n, bands)
        keys = np.empty((bands, n), dtype=np.uint64)
        rows_of = np.empty((bands, n), dtype=np.int32)
        for b in range(bands):  # a band at a time: no (bands, n) 64-bit order beside the table
            band = np.ascontiguousarray(h[:, b])
            order = np.argsort(band, kind="stable")
            keys[b], rows_of[b] = band[order], order
        return cls(keys, rows_of, bands, rows)

    @classmethod
    def from_stored(cls, stored, signatures: np.ndarray, threshold: float) -> "BandTable":
        """The table written with a snapshot (store.StoredBands, memory-mapped) when it was made at this
        threshold, else one built from the signatures."""
        if stored is not None and stored.threshold == threshold:
            return cls(stored.keys, stored.rows, stored.bands, stored.rows_per_band)
        return cls.build(np.asarray(signatures), threshold)

    def query(self, signature: np.ndarray, limit_per_bucket: int = BUCKET_LIMIT) -> set[int]:
        """Rows sharing at least one band with the signature (none for a text without words)."""
        if self.keys.shape[1] == 0 or not has_shingles(signature):
            return set()
        h = _band_hashes(signature.reshape(1, -1)[:, :NUM_PERM], self.bands, self.rows)[0]
        found: set[int] = set()
        for b in range(self.bands):
            lo = np.searchsorted(self.keys[b], h[b], side="left")
            hi = np.searchsorted(self.keys[b], h[b], side="right")
            if hi > lo:
                found.update(self.rows_of[b, lo : min(hi, lo + limit_per_bucket)].tolist())
        return found

    def query_many(self, signatures: np.ndarray, limit_per_bucket: int = BUCKET_LIMIT) -> tuple[np.ndarray, np.ndarray]:
        """(query, row) index arrays: for each signature, the rows sharing at least one band with it (`query`
        of each in one vectorised pass; a pair may repeat, once per band it shares; a text without words
        finds none)."""
        asking = np.flatnonzero(has_shingles(signatures))
        if self.keys.shape[1] == 0 or not len(asking):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        h = _band_hashes(signatures[asking, :NUM_PERM], self.bands, self.rows)
        queries, found = [], []
        for b in range(self.bands):
            lo = np.searchsorted(self.keys[b], h[:, b], side="left")
            hi = np.minimum(np.searchsorted(self.keys[b], h[:, b], side="right"), lo + limit_per_bucket)
            count = hi - lo
            hit = np.flatnonzero(count > 0)
            if not len(hit):
                continue
            count = count[hit]
            within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
            queries.append(asking[np.repeat(hit, count)])
            found.append(self.rows_of[b, np.repeat(lo[hit], count) + within].astype(np.int64))
        if not queries:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(queries).astype(np.int64), np.concatenate(found)

    def candidate_pairs(self, limit_per_bucket: int = BUCKET_LIMIT) -> set[tuple[int, int]]:
        """Every pair of rows that share a bucket (buckets larger than the limit are cut)."""
        pairs: set[tuple[int, int]] = set()
        for b in range(self.bands):
            keys = self.keys[b]
            if keys.size < 2:
                continue
            starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
            ends = np.r_[starts[1:], keys.size]
            for s, e in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
                members = sorted(int(r) for r in self.rows_of[b, s : min(e, s + limit_per_bucket)])
                for i, a in enumerate(members):
                    for c in members[i + 1 :]:
                        pairs.add((a, c))
        return pairs


class UnionFind:
    def __init__(self, items: Iterable[int] = ()):
        self.parent: dict[int, int] = {i: i for i in items}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for x in self.parent:
            out.setdefault(self.find(x), []).append(x)
        return out
