"""Related-story ranking: pure functions over candidates and their vectors.

From more candidates than asked for, the ranking
1. drops the query article, its copies and its own story told again by other outlets (pairs.told_again:
   an outlet's own next article on the story is its development, and stays);
2. applies filters (source, section, language, date range, excluded ids);
3. weighs similarity by a smooth recency decay relative to the query article's date;
4. with feedback on, judges each candidate also by its closeness to the nearest other stories
   (pseudo-relevance feedback: what those stories share with the query is the topic, one headline's
   own words are noise); a score is never above its evidence, the pair's p_related or cosine;
5. keeps one member per duplicate/story group (canonical or freshest), and of two items that retell
   each other (another outlet's version), the first;
6. orders the survivors by reciprocal rank fusion of their score's rank, their rank by the pair
   model's p_related (times recency), and, with lexical evidence, their rank in a BM25 search for the
   query's distinctive words;
7. picks k by maximal marginal relevance; drops anything under the minimum score.
Every result carries the parts of its score.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from recommender.text.dates import UNKNOWN, UNKNOWN_DAY, Published
from recommender.evidence.pairs import PairModel, Sides, other_outlet, told_again

__all__ = ["Candidate", "CandidateVectors", "Query", "RankParams", "Ranked", "feedback", "fused_order", "mix_story", "rank_of",
           "mmr_select", "rank", "rank_pool", "recency_weights", "story_context", "story_of", "within_age"]

RECENCY_FLOOR = 0.5  # an old story keeps at least half its similarity: decay reorders, it does not erase
# Reciprocal rank fusion's constant (Cormack, Clarke and Buettcher, SIGIR 2009: 60, not tuned here): an
# item's fused value is the sum of 1 / (RRF_K + rank) over the rankings that hold it.
RRF_K = 60


@dataclass(slots=True)  # not frozen: a query makes a few hundred, and a frozen one costs three times as much to make
class Candidate:
    key: int
    id: str
    similarity: float  # cosine of the two articles' own vectors
    when: Published = UNKNOWN  # publication time (day for filters and recency, days for story penalties)
    dup_group: int = 0
    story_group: int = 0
    source: str = ""
    section: str = ""
    lang: str = ""
    p_retelling: float | None = None  # the pair judgment against the query (pairs.PairModel)
    p_related: float | None = None
    told_again: bool = False  # the query's story told again by another outlet (pairs.told_again): hidden
    lexical_rank: int | None = None  # 0-based rank in the query's lexical (BM25) search; None: not found by it


@dataclass(frozen=True, eq=False)
class Query:
    """What ranking knows of the article a list is for. Build with `Query.indexed` or `Query.unindexed`."""

    vector: np.ndarray
    when: Published
    words: int  # words of the query article the model read (its story bar follows them)
    key: int | None = None  # None: not in the index
    dup_group: int | None = None
    story_group: int | None = None
    # The centroid of the story the query belongs to (its group's, or for a page not in the index the
    # story of its closest same-story candidate); None: the query is judged by its own vector.
    story_centroid: np.ndarray | None = None
    lexical: np.ndarray | None = None  # its content-word signature (pairs.lexical_signatures), or None
    source: str = ""  # its outlet ('' unknown)
    read: str | None = None  # what the model read of a text given in full (its shared words are counted)

    @classmethod
    def indexed(cls, *, key: int, vector: np.ndarray, dup_group: int, story_group: int, when: Published,
                words: int, story_centroid: np.ndarray | None = None, lexical: np.ndarray | None = None,
                source: str = "") -> "Query":
        return cls(np.asarray(vector, dtype=np.float32), when, words, key, dup_group, story_group, story_centroid,
                   lexical, source)

    @classmethod
    def unindexed(cls, *, vector: np.ndarray, when: Published, words: int,
                  lexical: np.ndarray | None = None, source: str = "", read: str | None = None) -> "Query":
        return cls(np.asarray(vector, dtype=np.float32), when, words, lexical=lexical, source=source, read=read)

    def sides(self) -> Sides:
        """What the pair judgment reads of the query."""
        return Sides.of([self.when.days], [self.words], self.lexical, self.source, "", self.when.precise)

    def with_story(self, centroid: np.ndarray | None) -> "Query":
        return dataclasses.replace(self, story_centroid=centroid)


@dataclass(frozen=True, eq=False)
class CandidateVectors:
    """The candidates' vectors, row-aligned with the candidates."""

    own: np.ndarray
    # Each candidate's story centroid (its own vector when it is alone in its story), or None.
    story: np.ndarray | None = None
    # What the pair judgment reads of each candidate (with a `judge`, items that retell each other
    # are listed once), or None.
    sides: Sides | None = None


@dataclass
class RankParams:
    k: int = 5
    half_life_days: float = 0.0
    mmr_lambda: float = 0.8
    min_score: float = 0.25
    collapse: str = "canonical"  # canonical | freshest | none
    sources: frozenset[str] = frozenset()
    exclude_sources: frozenset[str] = frozenset()
    sections: frozenset[str] = frozenset()
    langs: frozenset[str] = frozenset()
    # Related lists keep to the query's language unless asked for all (langs, when given, decide).
    cross_lang: bool = False
    date_from: int | None = None  # date ordinals, inclusive
    date_to: int | None = None
    exclude_ids: frozenset[str] = frozenset()
    # Stories (group ids as _group gives them) never listed: an editor's pins stand for theirs.
    exclude_groups: frozenset[int] = frozenset()
    exclude_sections: frozenset[str] = frozenset()
    # Per section ("*": any other), the earliest date ordinal listed (site rules' maximum age).
    oldest_day: Mapping[str, int] = field(default_factory=dict)
    # Weight of story centroids against the articles themselves in relevance and diversity (0: articles alone).
    story_context: float = 0.0
    # Share of the nearest other stories (their relevance-weighted mean) in the query vector (0: off).
    feedback: float = 0.0
    feedback_stories: int = 3  # how many of the nearest other stories (one member each) make that mean
    # Other stories a list is chosen from: the service widens its candidate pool until this many
    # survive blocking, filters and min_score (or the pool is at its widest); 0 asks only for k items.
    pool_stories: int = 0
    # Weight of the lexical ranking against the semantic one in the list's order (reciprocal rank fusion);
    # 0 orders by the semantic score alone.
    lexical: float = 0.0


@dataclass
class Ranked:
    candidate: Candidate
    score: float
    similarity: float
    recency: float
    reason: str
    group_size: int = 1
    story_similarity: float | None = None
    neighbourhood_similarity: float | None = None  # cosine to the nearest other stories' mean (feedback on)
    parts: dict = field(default_factory=dict)

    @property
    def p_retelling(self) -> float | None:
        return self.candidate.p_retelling

    @property
    def p_related(self) -> float | None:
        return self.candidate.p_related


def mix_story(own: np.ndarray, centroid: np.ndarray, weight: float) -> np.ndarray:
    """A story vector: `weight` of the story's centroid and the rest of the article's own vector, normalised."""
    v = (1.0 - weight) * np.asarray(own, dtype=np.float32) + weight * np.asarray(centroid, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def story_context(query: Query, vectors: CandidateVectors, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """(story vectors, story similarities) of the candidates against the query's story.

    A story vector mixes the article's own vector with its story's centroid (`weight` of the
    centroid): a story is judged by what its versions share, not by one headline's words."""
    own = np.asarray(vectors.own, dtype=np.float32)
    centroids = own if vectors.story is None else vectors.story
    ctx = mix_story(own, centroids, weight)
    q_centroid = query.vector if query.story_centroid is None else query.story_centroid
    q = mix_story(query.vector, q_centroid, weight)
    return ctx, ctx @ q


def feedback(relevance: np.ndarray, vectors: np.ndarray, groups: Sequence[int], share: float,
             stories: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(relevance after feedback, each candidate's cosine to the neighbourhood): pseudo-relevance feedback.
    With feedback off (share or stories 0) or no relevant story, the relevance as it is and None.

    `relevance` is each candidate's cosine to the query vector q, `vectors` the (unit) vectors it was
    taken against, `groups` each one's story. The neighbourhood n is the relevance-weighted mean of the
    `stories` most relevant stories (each by its most relevant member); the query becomes
    (1 - share) q + share n, normalised, so a candidate's relevance is its cosine to that:
    ((1 - share) relevance + share (v . n)) / |(1 - share) q + share n|, where q . n and |n| follow
    from the relevances and vectors alone.
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    vectors = np.asarray(vectors, dtype=np.float64)
    if share <= 0 or stories <= 0:
        return relevance, None
    top: list[int] = []
    seen: set[int] = set()
    for i in np.argsort(-relevance, kind="stable"):
        if groups[i] in seen:
            continue
        seen.add(groups[i])
        top.append(int(i))
        if len(top) == stories:
            break
    weights = np.maximum(relevance[top], 0.0)
    if not top or weights.sum() <= 0:
        return relevance, None
    weights = weights / weights.sum()
    n = weights @ vectors[top]
    to_n = vectors @ n
    q_dot_n = float(weights @ relevance[top])
    norm = np.sqrt((1 - share) ** 2 + 2 * share * (1 - share) * q_dot_n + share ** 2 * float(n @ n))
    return ((1 - share) * relevance + share * to_n) / max(norm, 1e-12), to_n


def recency_weights(days: np.ndarray, query_days: int, half_life_days: float) -> np.ndarray:
    """Weights in [RECENCY_FLOOR, 1]: 1 at the query's date, halving the distance to the floor every half-life.

    Unknown dates (UNKNOWN_DAY) and a decay that is off (half-life 0) weigh 1.
    """
    days = np.asarray(days, dtype=np.float64)
    out = np.ones_like(days)
    if half_life_days <= 0 or query_days == UNKNOWN_DAY:
        return out
    known = days != UNKNOWN_DAY
    decay = np.power(0.5, np.abs(days[known] - query_days) / half_life_days)
    out[known] = RECENCY_FLOOR + (1.0 - RECENCY_FLOOR) * decay
    return out


def mmr_select(scores: np.ndarray, vectors: np.ndarray, k: int, lam: float,
               same_story: Callable[[int, list[int]], bool] | None = None) -> list[int]:
    """Greedy maximal marginal relevance: lam * score - (1 - lam) * max cosine to those already picked.

    `same_story(i, chosen)` says whether item i tells the story of one already chosen: then it is
    passed over (asked only of the item about to be picked, so a list of k asks about k items and
    those it passes over, not every pair)."""
    n = len(scores)
    if n == 0 or k <= 0:
        return []
    chosen: list[int] = []
    max_sim = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    while len(chosen) < k and available.any():
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = lam * scores - (1.0 - lam) * penalty
        value[~available] = -np.inf
        i = int(np.argmax(value))
        if not np.isfinite(value[i]):
            break
        available[i] = False
        if same_story is not None and chosen and same_story(i, chosen):
            continue
        chosen.append(i)
        sims = vectors @ vectors[i]
        max_sim = np.maximum(max_sim, sims)
    return chosen


def _passes(c: Candidate, p: RankParams) -> bool:
    if c.id in p.exclude_ids:
        return False
    if p.exclude_groups and _group(c) in p.exclude_groups:
        return False
    if p.sources and c.source not in p.sources:
        return False
    if c.source in p.exclude_sources:
        return False
    if c.section in p.exclude_sections:
        return False
    if p.oldest_day and not within_age(c.section, c.when.day, p.oldest_day):
        return False
    if p.sections and c.section not in p.sections:
        return False
    if p.langs and c.lang and c.lang not in p.langs:
        return False
    if p.date_from is not None and (not c.when.known or c.when.day < p.date_from):
        return False
    if p.date_to is not None and (not c.when.known or c.when.day > p.date_to):
        return False
    return True


def within_age(section: str, day: int, oldest_day: Mapping[str, int]) -> bool:
    """Whether an item of this section and date ordinal is young enough (an undated one is not, where an
    age applies)."""
    oldest = oldest_day.get(section, oldest_day.get("*"))
    return oldest is None or (day != UNKNOWN_DAY and day >= oldest)


def _describe(c: Candidate, similarity: float, query_days: int, group_size: int) -> str:
    words = [f"similar text (cosine {similarity:.2f})"]
    if c.lexical_rank is not None:
        words.append(f"shares distinctive words (lexical rank {c.lexical_rank + 1})")
    if c.when.known and query_days != UNKNOWN_DAY:
        delta = c.when.day - query_days
        if delta == 0:
            words.append("same day")
        else:
            words.append(f"{abs(delta)} day{'s' if abs(delta) != 1 else ''} {'after' if delta > 0 else 'before'}")
    if group_size > 1:
        words.append(f"stands for {group_size} versions of one story")
    return "; ".join(words)


def rank(candidates: Sequence[Candidate], vectors: CandidateVectors, query: Query, params: RankParams, *,
         judge: PairModel | None = None) -> list[Ranked]:
    """Rank candidates (with their vectors, row-aligned) for a query; see the module docstring and rank_pool."""
    return rank_pool(candidates, vectors, query, params, judge=judge)[0]


def rank_pool(candidates: Sequence[Candidate], vectors: CandidateVectors, query: Query,
              params: RankParams, *, judge: PairModel | None = None) -> tuple[list[Ranked], int]:
    """(the ranked list, how many other stories it was chosen from): the candidates' stories that
    survive same-story blocking, filters and the minimum score, one member each (with collapse
    "none", every surviving item counts).

    With story vectors and `params.story_context` > 0, relevance and diversity are judged between
    stories (see story_context). With a `judge` and the candidates' sides, of two items that retell
    each other (pairs.told_again) the list shows the first picked."""
    n = len(candidates)
    sims_all = np.asarray([c.similarity for c in candidates], dtype=np.float64)
    own_all = np.asarray(vectors.own, dtype=np.float32).reshape(n, -1)
    ctx_all, story_sims = own_all, None
    if params.story_context > 0 and n:
        ctx_all, story_sims = story_context(query, vectors, params.story_context)
    keep: list[int] = []
    for i, c in enumerate(candidates):
        if query.key is not None and c.key == query.key:
            continue
        if query.dup_group is not None and c.dup_group == query.dup_group:
            continue
        if query.story_group is not None and c.story_group == query.story_group:
            continue
        if c.told_again:
            continue  # the story being read, told again by another outlet
        if not _passes(c, params):
            continue
        keep.append(i)
    if not keep:
        return [], 0
    cands = [candidates[i] for i in keep]
    vecs = own_all[keep]
    ctx = ctx_all[keep]
    sims = sims_all[keep]
    relevance = sims if story_sims is None else np.asarray(story_sims, dtype=np.float64)[keep]
    groups = [_group(c) for c in cands]
    before_feedback = relevance
    relevance, to_neighbours = feedback(relevance, ctx, groups, params.feedback, params.feedback_stories)
    rec = recency_weights(np.asarray([c.when.day for c in cands]), query.when.day, params.half_life_days)
    scores = relevance * rec
    # What a reader is shown and the minimum score cuts: never above the pair's own evidence. The order
    # keeps the uncapped score's rank beside p_related's (ordered by the capped score, a story's other
    # tellings rise over other stories: MSVCode's lists hold more of the story being read, 0.072 -> 0.073).
    p_related = [c.p_related for c in cands]
    shown = np.minimum(relevance, _evidence_cap(p_related, sims)) * rec

    # One member per group: the story group (which contains the duplicate group).
    group_size: dict[int, int] = {}
    chosen_in_group: dict[int, int] = {}
    if params.collapse != "none":
        for i, g in enumerate(groups):
            group_size[g] = group_size.get(g, 0) + 1
            j = chosen_in_group.get(g)
            if j is None or _better_representative(i, j, cands, scores, params.collapse, g):
                chosen_in_group[g] = i
        survivors = sorted(chosen_in_group.values())
    else:
        survivors = list(range(len(cands)))
    survivors = [i for i in survivors if shown[i] >= params.min_score]
    if not survivors:
        return [], 0
    blocked = None
    if params.collapse != "none" and judge is not None and vectors.sides is not None:
        blocked = _retold_by(judge, vecs[survivors], vectors.sides.take(np.asarray(keep)[survivors]))
    # The order: two judgments of the same question, merged by rank (their scores are not on one scale):
    # the pair model's p_related (its cosine, shared content words, time apart: calibrated across kinds
    # of news) and the list's score (story context, the neighbourhood's feedback, recency), with the
    # lexical search's rank beside them when it has a say.
    rankings = [(rank_of(scores[survivors].tolist()), 1.0)]
    if any(p_related[i] is not None for i in survivors):
        rankings.append((rank_of([None if p_related[i] is None else p_related[i] * rec[i] for i in survivors]), 1.0))
    if params.lexical > 0 and any(cands[i].lexical_rank is not None for i in survivors):
        rankings.append((np.asarray([np.inf if cands[i].lexical_rank is None else cands[i].lexical_rank
                                     for i in survivors], dtype=np.float64), params.lexical))
    order = fused_order(rankings) if len(rankings) > 1 else scores[survivors]
    picked = mmr_select(order, ctx[survivors], params.k, params.mmr_lambda, blocked)
    out = []
    for s in picked:
        i = survivors[s]
        c = cands[i]
        size = group_size.get(groups[i], 1)
        out.append(
            Ranked(
                candidate=c,
                score=round(float(shown[i]), 4),
                similarity=round(float(sims[i]), 4),
                recency=round(float(rec[i]), 4),
                reason=_describe(c, float(sims[i]), query.when.day, size),
                group_size=size,
                story_similarity=None if story_sims is None else round(float(before_feedback[i]), 4),
                neighbourhood_similarity=None if to_neighbours is None else round(float(to_neighbours[i]), 4),
            )
        )
    return out, len(survivors)


def _evidence_cap(p_related: Sequence[float | None], sims: np.ndarray) -> np.ndarray:
    """The most each candidate's score may be: its pair judgment's p_related or its cosine to the query,
    whichever is higher (no cap where it was not judged). Story context and the neighbourhood's feedback
    move a candidate up among the others, never past what the pair itself shows: a text that says little
    (a few words, a language the model does not read) is not lifted to a high score by the articles near it."""
    return np.asarray([np.inf if p is None else max(p, float(s)) for p, s in zip(p_related, sims)])


def rank_of(values: Sequence[float | None]) -> np.ndarray:
    """Each value's 0-based rank, highest first (ties in order; None: not ranked, inf)."""
    have = np.asarray([v is not None for v in values], dtype=bool)
    ranks = np.full(len(values), np.inf)
    held = np.asarray([v for v in values if v is not None], dtype=np.float64)
    ranks[np.flatnonzero(have)[np.argsort(-held, kind="stable")]] = np.arange(len(held))
    return ranks


def fused_order(rankings: Sequence[tuple[np.ndarray, float]]) -> np.ndarray:
    """Reciprocal rank fusion of rankings given as 0-based ranks (inf: not in that ranking), each with
    its weight, scaled so that first in all of them is 1."""
    total = sum(w for _, w in rankings)
    fused = sum(w / (RRF_K + 1 + np.asarray(r, dtype=np.float64)) for r, w in rankings)
    return fused / (total / (RRF_K + 1))


def _group(c: Candidate) -> int:
    """The group a candidate stands in: its story group, else its duplicate group, else itself."""
    return story_of(c.story_group, c.dup_group, c.key)


def story_of(story_group: int, dup_group: int, key: int) -> int:
    """The group an article stands in, from its stored groups (see _group)."""
    return story_group or dup_group or -key


def _retold_by(judge: PairModel, vecs: np.ndarray, sides: Sides) -> Callable[[int, list[int]], bool]:
    """Whether item i retells one of the items chosen (pairs.told_again), judged in one call."""
    def retold(i: int, chosen: list[int]) -> bool:
        rows = np.asarray(chosen)
        rows = rows[other_outlet(sides.source[i], sides.source[rows])]  # one outlet's pairs are never told again
        if not len(rows):
            return False
        p = judge.judge(vecs[rows] @ vecs[i], sides.take([i]), sides.take(rows)).p_retelling
        return bool(told_again(p, sides.source[i], sides.source[rows]).any())
    return retold


def _better_representative(i: int, j: int, cands: Sequence[Candidate], scores: np.ndarray, mode: str, group: int) -> bool:
    """Whether candidate i should replace j as its group's representative."""
    ci, cj = cands[i], cands[j]
    if mode == "freshest":
        return (ci.when.day, scores[i]) > (cj.when.day, scores[j])
    # canonical: the group's canonical member (its key is the group id) if present, else the best score
    if ci.key == group:
        return True
    if cj.key == group:
        return False
    return scores[i] > scores[j]
