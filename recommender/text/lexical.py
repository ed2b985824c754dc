"""Lexical evidence: TF-IDF vectors (sparse dicts).

Small and dependency-free on purpose: the service keeps document frequencies with each snapshot,
and the evaluations use the same code for their TF-IDF baseline.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import Iterable, Mapping, Sequence

__all__ = ["TfIdf", "tokens"]

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_STOP = frozenset(
    """a an the of to in on at for from by with and or but as is are was were be been being has have had it its
    that this these those which who whom whose what when where why how not no nor so than then there their they them he
    she his her him we our us you your i me my will would can could shall should may might must do does did said says
    say also after before over under into about up out more most other some such only own same very just new one two""".split()
)


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
