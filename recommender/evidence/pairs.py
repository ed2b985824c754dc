"""The judgment of a pair of articles: calibrated probabilities that B *retells* A and that B is *related* to A.

- retells: the same event and facts (another outlet's version, a rewrite, an update that adds a line).
  The same-story verdicts (/api/duplicates, /api/compare, the build's links) read it.
- related: a reader of A would want B (a development of the same story, a follow-up, the same topic);
  a retelling is related too. Related items report both probabilities.

Copies (the same text, edited) stay with the shingle evidence of `duplicates`; this module judges
different texts. The shipped models read four features, each with a reason in any language and length:

    cos        cosine of what the model read of each (title + lead)
    lex        containment of the shorter text's content words in the other: shared names, places and
               numbers; a word is 4+ letters or holds a digit, and scripts written without spaces count in
               character pairs, so no stop list of any language is needed. Counted where a text is given
               in full (against the texts, or the hashes of its content words a snapshot stores for each
               article); a MinHash estimate between two stored articles
    gap        log(1 + hours apart), less a day of grace when either time is a date alone
    undated    either date unknown: its own value, never "the same time"

FEATURES names more (the text's length, sources, languages, products): the fit script can try them, and
a model file names the ones it reads. The coefficients ship in `pair_model.json` (per embedding model),
fitted by `python bench/fit_pair_model.py` on labelled pairs of several kinds of news and checked leaving
each kind out (docs/pairs.md). Everything here works on arrays: a thousand pairs in one call.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from recommender.errors import ConfigError

__all__ = ["FEATURES", "LEX_PERM", "PairModel", "Sides", "Judgment", "lexical_signatures", "pair_features", "token_containment",
           "counted_containment", "counted_in_slots", "WORD_SLOTS", "LEX_UNSEEN",
           "load_pair_model", "other_outlet", "told_again", "RETELLING", "RELATED", "RETELLING_VERDICT"]

LEX_PERM = 64  # MinHash permutations of a text's content-word set: Jaccard to about +-0.06
# A stored article's content words themselves, hashed (word_slots): what the model reads of an article
# holds at most about 128 words (max_tokens), so its content words fit; a set that does not (character
# pairs of a long text written without spaces) is counted from the stored text instead.
WORD_SLOTS = 128
RETELLING = "retelling"
RELATED = "related"
RETELLING_VERDICT = 0.5  # a calibrated probability: "same-story" when a retelling is more likely than not
MODEL_FILE = Path(__file__).with_name("pair_model.json")
MAX_GAP_DAYS = 3650.0
# A share of shared words rests on the words it counts: one word shared of one says less than ten of ten.
# `lex` reads the share as if one more of the smaller text's content words had gone unshared (one of one:
# a half; ten of ten: 0.91; fifty of fifty: 0.98), so a text of a word or two never reads as all its facts
# shared. Two (one of one: a third) judged a one-word text lower still but cost headline lists more
# (docs/pairs.md).
LEX_UNSEEN = 1.0
_SHORT_SPAN = np.log1p(200.0)  # 200 words read and more count as a full text

# Scripts written without spaces between words: their runs are counted in character pairs.
_UNSPACED_CHARS = r"\u0E00-\u0EFF\u1000-\u109F\u1780-\u17FF\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF"
_UNSPACED = re.compile(rf"[{_UNSPACED_CHARS}]+")
_WORD = re.compile(r"[^\W_]+")
# A letter or digit that continues a word of a spaced script: a content word ends where one is not.
_SPACED_WORD_CHAR = rf"[^\W_{_UNSPACED_CHARS}]"
_MERSENNE = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)


def content_tokens(text: str) -> set[str]:
    """The words that carry a text's facts: 4+ letters or a digit (casefolded), and character pairs of
    scripts written without spaces."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    if not _UNSPACED.search(text):  # the common case, in one pass (a letter is never a digit)
        return {w for w in _WORD.findall(text) if len(w) >= 4 or (not w.isalpha() and any(c.isdigit() for c in w))}
    out: set[str] = set()
    for w in _WORD.findall(text):
        runs = _UNSPACED.findall(w)
        if runs:
            for run in runs:
                out.update(run[i:i + 2] for i in range(max(len(run) - 1, 1)))
            w = _UNSPACED.sub(" ", w)
            out.update(x for x in w.split() if len(x) >= 4 or any(c.isdigit() for c in x))
        elif len(w) >= 4 or any(c.isdigit() for c in w):
            out.add(w)
    return out


@lru_cache(maxsize=1)
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(20261201)
    a = rng.randint(1, (1 << 61) - 1, size=LEX_PERM, dtype=np.uint64)
    b = rng.randint(0, (1 << 61) - 1, size=LEX_PERM, dtype=np.uint64)
    return a, b


def content_hashes(tokens) -> np.ndarray:
    """The 32-bit hashes of a set of content tokens, sorted (never the all-ones value, which marks an
    empty slot)."""
    h = np.fromiter((int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") & ((1 << 32) - 1)
                     for t in tokens), dtype=np.uint64, count=len(tokens))
    return np.unique(np.minimum(h, int(_MAX_HASH) - 1)).astype(np.uint32)


def lexical_signatures(texts: Sequence[str], *, slots: bool = False) -> np.ndarray:
    """(n, 1 + LEX_PERM) uint32: each text's number of distinct content tokens (capped), then the MinHash
    of that set (all ones for an empty set). With `slots`, WORD_SLOTS columns follow: the set's hashes
    themselves (content_hashes, all ones where empty; see counted_in_slots)."""
    a, b = _permutations()
    out = np.full((len(texts), 1 + LEX_PERM + (WORD_SLOTS if slots else 0)), _MAX_HASH, dtype=np.uint32)
    for i, text in enumerate(texts):
        toks = content_tokens(text)
        out[i, 0] = min(len(toks), int(_MAX_HASH))
        if not toks:
            continue
        hashes = content_hashes(toks)
        if slots and len(hashes) <= WORD_SLOTS:
            out[i, 1 + LEX_PERM:1 + LEX_PERM + len(hashes)] = hashes
        h = hashes.astype(np.uint64)
        with np.errstate(over="ignore"):
            perm = ((h[:, None] * a[None, :] + b[None, :]) % _MERSENNE) & _MAX_HASH
        out[i, 1:1 + LEX_PERM] = perm.min(axis=0).astype(np.uint32)
    return out


def token_containment(text: str, others: Sequence[str]) -> np.ndarray:
    """`lex` counted exactly, for texts at hand: for each of `others`, the share of the smaller
    content-word set (its or `text`'s) found in the other (0 when either is empty). The MinHash estimate
    (lexical_containment) is what two stored articles are judged by; between sets of very different sizes
    (a headline and an article's lead) it sees a shared word or two only by chance, and reads 1 shared
    word of 4 as 0 or as 0.4."""
    mine = content_tokens(text)
    out = np.zeros(len(others))
    for i, other in enumerate(others):
        theirs = content_tokens(other)
        small = min(len(mine), len(theirs))
        out[i] = len(mine & theirs) / small if small else 0.0
    return out


def counted_containment(text: str, others: Sequence[str], other_sizes) -> np.ndarray:
    """token_containment of one text against many whose content-word counts are known (a signature's
    first column), without tokenising them: each of the text's content words is looked for as a whole word
    in each of the others (about a fifth of the time; a word ends where content_tokens ends it, at a
    character that is not a letter or digit or is of a script written without spaces). A text with words
    of such a script is tokenised as token_containment does."""
    mine = content_tokens(text)
    if any(_UNSPACED.search(w) for w in mine):
        return token_containment(text, others)
    out = np.zeros(len(others))
    if not mine:
        return out
    words = "|".join(sorted(map(re.escape, mine), key=len, reverse=True))
    whole = re.compile(rf"(?<!{_SPACED_WORD_CHAR})(?:{words})(?!{_SPACED_WORD_CHAR})")
    sizes = np.asarray(other_sizes, dtype=np.float64).reshape(-1)
    for i, other in enumerate(others):
        found = len(set(whole.findall(unicodedata.normalize("NFKC", other or "").casefold())))
        small = min(len(mine), sizes[i])
        out[i] = found / small if small else 0.0
    return out


def counted_in_slots(text: str, slots: np.ndarray, sizes) -> np.ndarray:
    """token_containment of one text against stored articles from their word slots (rows of WORD_SLOTS
    hashes, see lexical_signatures) and content-word counts: NaN for a row whose set did not fit its
    slots (count it from the text, counted_containment)."""
    tokens = content_tokens(text)
    mine = content_hashes(tokens)
    slots = np.atleast_2d(np.asarray(slots, dtype=np.uint32))
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1)
    found = np.isin(slots, mine).sum(axis=1) if len(mine) else np.zeros(len(slots))
    small = np.minimum(len(tokens), sizes)
    out = np.where(small > 0, found / np.maximum(small, 1.0), 0.0)
    return np.where(sizes > WORD_SLOTS, np.nan, out)


def lexical_containment(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Share of the smaller content-word set found in the other, from two rows of signatures (broadcast):
    |A & B| = J (|A| + |B|) / (1 + J) with J the MinHash Jaccard estimate; 0 when either set is empty."""
    sig_a, sig_b = np.atleast_2d(sig_a), np.atleast_2d(sig_b)
    na, nb = sig_a[:, 0].astype(np.float64), sig_b[:, 0].astype(np.float64)
    jac = (sig_a[:, 1:1 + LEX_PERM] == sig_b[:, 1:1 + LEX_PERM]).mean(axis=1)
    inter = jac * (na + nb) / (1.0 + jac)
    small = np.minimum(na, nb)
    return np.where(small > 0, np.minimum(inter / np.maximum(small, 1.0), 1.0), 0.0)


class Sides(NamedTuple):
    """What the judgment reads of each article, as arrays (one row per article)."""

    days: np.ndarray  # publication time in days, NaN when unknown
    words: np.ndarray  # words of it the model read
    lexsig: np.ndarray | None  # (n, 1 + LEX_PERM) uint32 (lexical_signatures), None when not at hand
    source: np.ndarray  # str, '' when unknown
    lang: np.ndarray  # str, '' when unknown
    precise: np.ndarray  # bool: a time of day is known (else a date alone)

    @classmethod
    def of(cls, days, words, lexsig=None, source="", lang="", precise=False) -> "Sides":
        days = np.asarray(days, dtype=np.float64).reshape(-1)
        n = len(days)
        return cls(days, np.broadcast_to(np.asarray(words, dtype=np.float64).reshape(-1), (n,)),
                   None if lexsig is None else np.atleast_2d(np.asarray(lexsig, dtype=np.uint32)),
                   np.broadcast_to(np.asarray(source, dtype=object).reshape(-1), (n,)),
                   np.broadcast_to(np.asarray(lang, dtype=object).reshape(-1), (n,)),
                   np.broadcast_to(np.asarray(precise, dtype=bool).reshape(-1), (n,)))

    def take(self, rows) -> "Sides":
        return Sides(self.days[rows], self.words[rows], None if self.lexsig is None else self.lexsig[rows],
                     self.source[rows], self.lang[rows], self.precise[rows])


def shortness(words) -> np.ndarray:
    """1 for a text of a word or two, 0 from 200 words read: how little of a story the model saw."""
    return 1.0 - np.clip(np.log1p(np.asarray(words, dtype=np.float64)) / _SHORT_SPAN, 0.0, 1.0)


FEATURES = ("cos", "lex", "short", "cos*short", "lex*short", "gap", "undated", "cos*undated", "lex*undated",
            "same_source", "other_source", "other_lang", "cos*lex")


def pair_features(cos, a: Sides, b: Sides, names: Sequence[str] = FEATURES, counted_lex=None) -> np.ndarray:
    """(n, len(names)) float64 for pairs (a[i], b[i]), the named FEATURES in that order; either side may be
    one row (broadcast). Only the named features are computed. `counted_lex`: the pairs' content-word
    containment counted (token_containment, counted_in_slots) where a text is at hand; else `lex` is
    estimated from the sides' signatures. Either way the share is read as resting on the smaller set's
    words (LEX_UNSEEN), whose size the signatures hold."""
    cos = np.asarray(cos, dtype=np.float64).reshape(-1)
    memo: dict[str, np.ndarray] = {}
    signed = a.lexsig is not None and b.lexsig is not None

    def lex():
        if "lex" not in memo:
            if counted_lex is not None:
                share = np.asarray(counted_lex, dtype=np.float64).reshape(-1)
            else:
                share = lexical_containment(a.lexsig, b.lexsig) if signed else np.zeros(1)
            if signed:  # the sets' sizes, as the signatures hold them
                small = np.minimum(a.lexsig[:, 0], b.lexsig[:, 0]).astype(np.float64)
                share = share * small / (small + LEX_UNSEEN)
            memo["lex"] = share
        return memo["lex"]

    def short():
        return shortness(np.minimum(a.words, b.words))

    def undated():
        return np.isnan(a.days - b.days)

    def gap():
        # Hours apart: tellings of one event come within hours when the times are known. A day of grace
        # when either is a date alone: time zones and late editions put one telling a date apart.
        delta = np.abs(a.days - b.days)
        grace = np.where(a.precise & b.precise, 0.0, 1.0)
        return np.where(np.isnan(delta), 0.0,
                        np.log1p(24.0 * np.clip(np.nan_to_num(delta) - grace, 0.0, MAX_GAP_DAYS)))

    def known_source():
        return (a.source != "") & (b.source != "")

    make = {
        "cos": lambda: cos, "lex": lex, "short": short, "cos*short": lambda: cos * short(),
        "lex*short": lambda: lex() * short(), "gap": gap, "undated": undated, "cos*undated": lambda: cos * undated(),
        "lex*undated": lambda: lex() * undated(), "same_source": lambda: known_source() & (a.source == b.source),
        "other_source": lambda: known_source() & (a.source != b.source),
        "other_lang": lambda: (a.lang != "") & (b.lang != "") & (a.lang != b.lang), "cos*lex": lambda: cos * lex(),
    }
    cols = [np.asarray(make[name](), dtype=np.float64) for name in names]
    out = np.empty((max([c.size for c in cols] + [1]), len(cols)))
    for j, c in enumerate(cols):
        out[:, j] = c  # a one-row side's column broadcasts
    return out


def other_outlet(source_a, source_b) -> np.ndarray:
    """Whether two articles come from two different known outlets (arrays broadcast; '' is unknown)."""
    a, b = np.asarray(source_a, dtype=object), np.asarray(source_b, dtype=object)
    return np.asarray((a != "") & (b != "") & (a != b), dtype=bool)


def told_again(p_retelling, source_a, source_b) -> np.ndarray:
    """Whether B tells A's story again for a reader: a retelling (p_retelling at or above RETELLING_VERDICT)
    by another outlet.

    An outlet does not publish one story twice: its second article on a story is that story's development
    (a follow-up, new facts), the item its readers want next, or a copy (an update, the same text edited),
    which the shingle evidence of `duplicates` catches. So within one outlet (or where either outlet is
    unknown: one collection) a same-story pair is a development and stays in lists; across outlets it is
    another version of what the reader has read. Measured on the labelled kinds: same-story pairs are
    from two outlets in 99% of UCI's story clusters and 98% of MSVCode's fine groups, and from one in all
    of the Wikinews editors' links (docs/pairs.md)."""
    return (np.asarray(p_retelling, dtype=np.float64) >= RETELLING_VERDICT) & other_outlet(source_a, source_b)


@dataclass(frozen=True)
class Judgment:
    """Probabilities for pairs, row-aligned, with the features they were read from (the model's own)."""

    p_retelling: np.ndarray
    p_related: np.ndarray
    features: np.ndarray

    def take(self, rows) -> "Judgment":
        return Judgment(self.p_retelling[rows], self.p_related[rows], self.features[rows])

    def explain(self, i: int, model: "PairModel", top: int = 3) -> list[dict]:
        """The features that moved pair i's retelling and related odds most, with their values."""
        out = []
        for head in (RETELLING, RELATED):
            contrib = (self.features[i] - model.centre) * model.weights[head]
            for j in np.argsort(-np.abs(contrib))[:top]:
                out.append({"judgment": head, "feature": model.names[j], "value": round(float(self.features[i, j]), 4),
                            "effect": round(float(contrib[j]), 3)})
        return out


@dataclass(frozen=True)
class PairModel:
    """Logistic models over the named pair_features: weights per head, an intercept, and the mean feature
    row of the fit (explanations are effects against it)."""

    name: str
    names: tuple[str, ...]
    weights: dict[str, np.ndarray]
    intercepts: dict[str, float]
    centre: np.ndarray
    fitted: dict

    def probability(self, head: str, features: np.ndarray) -> np.ndarray:
        z = features @ self.weights[head] + self.intercepts[head]
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def judge(self, cos, a: Sides, b: Sides, counted_lex=None) -> Judgment:
        x = pair_features(cos, a, b, self.names, counted_lex)
        return Judgment(self.probability(RETELLING, x), self.probability(RELATED, x), x)

    def cosine_for(self, head: str, p: float, a: Sides, b: Sides) -> float:
        """The cosine at which a pair of these two (one row each) reaches probability p on this head
        (inf when no cosine does)."""
        x = pair_features([0.0, 1.0], a, b, self.names)
        lo, hi = x @ self.weights[head] + self.intercepts[head]
        return float((np.log(p / (1 - p)) - lo) / (hi - lo)) if hi > lo else float("inf")

    def cosine_reach(self, head: str, p: float = 0.5) -> float:
        """The lowest cosine at which a pair can reach probability p on this head (the same day, at whichever
        length, dating and word overlap favour it most): pairs further apart need not be judged."""
        same = lexical_signatures(["reach"])
        same[:, 0] = _MAX_HASH - 1  # one set shared whole, as large as a set can be: the most `lex` reads
        return min(self.cosine_for(head, p, Sides.of([0.0], [words], sig), Sides.of([day], [words], sig))
                   for words in (0.0, 1e9) for day in (0.0, np.nan) for sig in (None, same))

    @classmethod
    def from_dict(cls, name: str, d: dict) -> "PairModel":
        unknown = [f for f in d["features"] if f not in FEATURES]
        if unknown:
            raise ValueError(f"pair model {name!r} reads features {unknown} this version does not compute: "
                             f"refit it with `python bench/fit_pair_model.py`")
        return cls(name, tuple(d["features"]),
                   {h: np.asarray(d[h]["weights"], dtype=np.float64) for h in (RETELLING, RELATED)},
                   {h: float(d[h]["intercept"]) for h in (RETELLING, RELATED)},
                   np.asarray(d["centre"], dtype=np.float64), d.get("fitted", {}))


def load_pair_model(model_name: str, path: str | Path | None = None) -> PairModel:
    """The pair model fitted for an embedding model (by its short name or folder name), from `path` or the
    shipped file; a model without a fit of its own takes the english model's (docs/pairs.md)."""
    where = str(path or MODEL_FILE)
    try:
        models = _table(where)["models"]
        key = _model_key(model_name)
        return PairModel.from_dict(key if key in models else "english", models[key if key in models else "english"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the pair model {where!r} ({exc.__class__.__name__}: {exc}); fit one with "
                          f"`python bench/fit_pair_model.py --write --out FILE`, or leave NEWSREC_PAIR_MODEL empty") from None


def _model_key(model_name: str) -> str:
    """The fit for a model: its short name or the shipped model's name (a model folder of one's own: english)."""
    return "multilingual" if (model_name or "").strip().lower() in ("multilingual", "multilingual-e5-small") else "english"


@lru_cache(maxsize=4)
def _table(path: str) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
