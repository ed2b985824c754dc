"""Lexical evidence: the terms a lexical search asks for, and TF-IDF vectors (sparse dicts).

`search_terms` picks what a related query asks the snapshot's full-text index (SQLite FTS5, BM25)
for, the way Lucene's more_like_this does: the query text's most distinctive terms by tf-idf, with
the site's own document frequencies in place of a stop list, so the same rule holds in any language
that separates its words. `TfIdf` is the evaluations' TF-IDF baseline.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import Callable, Iterable, Mapping, Sequence

__all__ = ["MAX_QUERY_TERMS", "TOKENIZER", "TfIdf", "asked_for", "index_terms", "is_word", "search_terms",
           "term_weights", "tokens"]

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_INDEX_TOKEN = re.compile(r"[^\W_]+")
_STOP = frozenset(
    """a an the of to in on at for from by with and or but as is are was were be been being has have had it its
    that this these those which who whom whose what when where why how not no nor so than then there their they them he
    she his her him we our us you your i me my will would can could shall should may might must do does did said says
    say also after before over under into about up out more most other some such only own same very just new one two""".split()
)


# The full-text index's tokenizer: Unicode word characters, case folded, diacritics removed; no stemming
# and no stop list, so no language is favoured (index_terms below splits a query the same way).
TOKENIZER = "unicode61 remove_diacritics 2"
# Terms a lexical query asks for, as Lucene's and Elasticsearch's more_like_this (max_query_terms).
MAX_QUERY_TERMS = 25
# A term found in more than this share of the site's articles says nothing about any one of them.
MAX_DOC_SHARE = 0.5


# The diacritics FTS5's `remove_diacritics 2` takes off: those of Latin letters (combining marks
# U+0300-U+036F after a Latin letter, once decomposed); other scripts keep theirs (Greek tonos,
# Cyrillic ё, Devanagari and Hangul as written).
_LATIN_MARKS = re.compile("([A-Za-z\u00c0-\u024f\u1e00-\u1eff])[\u0300-\u036f]+")


def index_terms(text: str) -> list[str]:
    """The terms of a text as the full-text index (TOKENIZER) splits it: runs of letters and digits,
    in lower case, without the diacritics of Latin letters (every other script's words as written:
    Greek, Cyrillic, Devanagari, Hangul). A script written without spaces gives whole runs, which rarely
    match anything: such a text is found by its embedding alone."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", _LATIN_MARKS.sub(r"\1", unicodedata.normalize("NFD", text)))
    return _INDEX_TOKEN.findall(text.lower())


def search_terms(text: str, docs_of: Callable[[Sequence[str]], Mapping[str, int]], n_docs: int,
                 max_terms: int = MAX_QUERY_TERMS) -> list[str]:
    """The terms a lexical search for `text` asks for: those found in at least one other article and in
    at most MAX_DOC_SHARE of them, the `max_terms` with the highest tf-idf (BM25's idf) in the text.
    `docs_of` gives the number of articles each term is in. Empty when no word of the text qualifies."""
    import numpy as np

    tf = Counter(t for t in index_terms(text) if is_word(t))
    if not tf:
        return []
    docs = docs_of(list(tf))
    terms = list(tf)
    df = np.asarray([docs.get(t, 0) for t in terms], dtype=np.float64)
    weight = term_weights(np.asarray([tf[t] for t in terms], dtype=np.float64), df, n_docs)
    weight = {t: w for t, w, ok in zip(terms, weight.tolist(), asked_for(df, n_docs).tolist()) if ok}
    return sorted(weight, key=lambda t: (-weight[t], t))[:max_terms]


def is_word(term: str) -> bool:
    """Whether a term can be asked for: a single letter cannot (a digit can)."""
    return not (len(term) == 1 and not term.isdigit())


def asked_for(df, n_docs: int):
    """Which terms, by the number of articles each is in, a lexical query may ask for: found in at least
    one other article (the text itself may be one of them) and in at most MAX_DOC_SHARE of them."""
    return (df >= 2) & (df <= MAX_DOC_SHARE * n_docs)


def term_weights(counts, df, n_docs: int):
    """Each term's weight in a text (numpy arrays: its count there, the articles it is in): sublinear tf
    times BM25's idf. The one rule by which search_terms and the snapshot's stored terms pick."""
    import numpy as np

    return (1.0 + np.log(counts)) * np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def tokens(text: str, *, stop: bool = True) -> list[str]:
    words = _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
    return [w for w in words if not (stop and w in _STOP) and len(w) > 1 or w.isdigit()]


class TfIdf:
    """Sublinear TF-IDF with smoothed IDF; vectors are L2-normalised sparse dicts."""

    def __init__(self, df: Mapping[str, int], n_docs: int):
        self.df = df
        self.n_docs = max(1, n_docs)

    @classmethod
    def fit(cls, texts: Iterable[str]) -> "TfIdf":
        df: Counter[str] = Counter()
        n = 0
        for text in texts:
            df.update(set(tokens(text)))
            n += 1
        return cls(df, n)

    def idf(self, term: str) -> float:
        return math.log((1 + self.n_docs) / (1 + self.df.get(term, 0))) + 1.0

    def vector(self, text: str) -> dict[str, float]:
        tf = Counter(tokens(text))
        vec = {t: (1.0 + math.log(c)) * self.idf(t) for t, c in tf.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    @staticmethod
    def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
        if len(a) > len(b):
            a, b = b, a
        return sum(v * b.get(t, 0.0) for t, v in a.items())

    def matrix(self, texts: Sequence[str]):
        """A scipy CSR matrix of the texts' vectors (rows L2-normalised)."""
        import numpy as np
        from scipy.sparse import csr_matrix

        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, text in enumerate(texts):
            for t, v in self.vector(text).items():
                rows.append(i)
                cols.append(vocab.setdefault(t, len(vocab)))
                vals.append(v)
        return csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(len(texts), max(1, len(vocab))))
