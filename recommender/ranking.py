"""Related-story ranking: pure functions over candidates and their vectors.

From more candidates than asked for, the ranking
1. drops the query article, its duplicates and its own story (the same story told again);
2. applies filters (source, section, language, date range, excluded ids);
3. weighs similarity by a smooth recency decay relative to the query article's date;
4. keeps one member per duplicate/story group (canonical or freshest);
5. picks k by maximal marginal relevance; drops anything under the minimum score.
Every result carries the parts of its score.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["Candidate", "RankParams", "Ranked", "rank", "recency_weights", "mmr_select"]

RECENCY_FLOOR = 0.5  # an old story keeps at least half its similarity: decay reorders, it does not erase


@dataclass
class Candidate:
    key: int
    id: str
    similarity: float
    published_days: int = -1  # date ordinal, -1 unknown
    dup_group: int = 0
    story_group: int = 0
    source: str = ""
    section: str = ""
    lang: str = ""
    story_score: float | None = None  # same-story score against the query (cosine less time penalty)
    time_days: float = float("nan")  # publication time in (fractional) days, for story scores between candidates
    precise_time: bool = False
    story_bar: float | None = None  # this candidate's own same-story bar (None: the params' threshold)
    # Cosine between the query's story and this candidate's story (each its group centroid mixed with
    # the article itself, see RankParams.story_context); None ranks by `similarity` alone.
    story_similarity: float | None = None


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
    date_from: int | None = None  # date ordinals, inclusive
    date_to: int | None = None
    exclude_ids: frozenset[str] = frozenset()
    same_story_threshold: float = 1.01  # a candidate this similar to the query is its own story
    story_context: float = 0.0  # weight of story centroids in the ranking vectors (read by the service layer)


@dataclass
class Ranked:
    candidate: Candidate
    score: float
    similarity: float
    recency: float
    reason: str
    group_size: int = 1
    story_similarity: float | None = None
    parts: dict = field(default_factory=dict)


def recency_weights(days: np.ndarray, query_days: int, half_life_days: float) -> np.ndarray:
    """Weights in [RECENCY_FLOOR, 1]: 1 at the query's date, halving the distance to the floor every half-life.

    Unknown dates (-1) and a decay that is off (half-life 0) weigh 1.
    """
    days = np.asarray(days, dtype=np.float64)
    out = np.ones_like(days)
    if half_life_days <= 0 or query_days < 0:
        return out
    known = days >= 0
    decay = np.power(0.5, np.abs(days[known] - query_days) / half_life_days)
    out[known] = RECENCY_FLOOR + (1.0 - RECENCY_FLOOR) * decay
    return out


def mmr_select(scores: np.ndarray, vectors: np.ndarray, k: int, lam: float, same_story: np.ndarray | None = None) -> list[int]:
    """Greedy maximal marginal relevance: lam * score - (1 - lam) * max cosine to those already picked.

    `same_story[i, j]` true means i and j tell one story: once one is picked the other is not.
    """
    n = len(scores)
    if n == 0 or k <= 0:
        return []
    chosen: list[int] = []
    max_sim = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = lam * scores - (1.0 - lam) * penalty
        value[~available] = -np.inf
        i = int(np.argmax(value))
        if not np.isfinite(value[i]):
            break
        chosen.append(i)
        available[i] = False
        if same_story is not None:
            available &= ~same_story[i]
        sims = vectors @ vectors[i]
        max_sim = np.maximum(max_sim, sims)
    return chosen


def _passes(c: Candidate, p: RankParams) -> bool:
    if c.id in p.exclude_ids:
        return False
    if p.sources and c.source not in p.sources:
        return False
    if c.source in p.exclude_sources:
        return False
    if p.sections and c.section not in p.sections:
        return False
    if p.langs and c.lang and c.lang not in p.langs:
        return False
    if p.date_from is not None and (c.published_days < 0 or c.published_days < p.date_from):
        return False
    if p.date_to is not None and (c.published_days < 0 or c.published_days > p.date_to):
        return False
    return True


def _describe(c: Candidate, similarity: float, query_days: int, group_size: int) -> str:
    words = [f"similar text (cosine {similarity:.2f})"]
    if c.published_days >= 0 and query_days >= 0:
        delta = c.published_days - query_days
        if delta == 0:
            words.append("same day")
        else:
            words.append(f"{abs(delta)} day{'s' if abs(delta) != 1 else ''} {'after' if delta > 0 else 'before'}")
    if group_size > 1:
        words.append(f"stands for {group_size} versions of one story")
    return "; ".join(words)


def rank(
    candidates: Sequence[Candidate],
    vectors: np.ndarray,
    params: RankParams,
    *,
    query_key: int | None = None,
    query_dup_group: int | None = None,
    query_story_group: int | None = None,
    query_days: int = -1,
    context_vectors: np.ndarray | None = None,
    story_centroids: np.ndarray | None = None,
) -> list[Ranked]:
    """Rank candidates (with their vectors, row-aligned) for a query; see the module docstring.

    With `context_vectors` (row-aligned story vectors) and candidates' `story_similarity`, relevance
    and diversity are judged between stories; same-story blocking uses the articles' own vectors and
    story scores, and with `story_centroids` also each one's closeness to the other's story centroid."""
    keep: list[int] = []
    for i, c in enumerate(candidates):
        if query_key is not None and c.key == query_key:
            continue
        if query_dup_group is not None and c.dup_group == query_dup_group:
            continue
        if query_story_group is not None and c.story_group == query_story_group:
            continue
        bar = max(params.same_story_threshold, c.story_bar) if c.story_bar is not None else params.same_story_threshold
        if (c.story_score if c.story_score is not None else c.similarity) >= bar:
            continue  # the same story told again
        if not _passes(c, params):
            continue
        keep.append(i)
    if not keep:
        return []
    cands = [candidates[i] for i in keep]
    vecs = np.asarray(vectors, dtype=np.float32)[keep]
    ctx = vecs if context_vectors is None else np.asarray(context_vectors, dtype=np.float32)[keep]
    sims = np.asarray([c.similarity for c in cands], dtype=np.float64)
    relevance = np.asarray([c.similarity if c.story_similarity is None else c.story_similarity for c in cands],
                           dtype=np.float64)
    rec = recency_weights(np.asarray([c.published_days for c in cands]), query_days, params.half_life_days)
    scores = relevance * rec

    # One member per group: the story group (which contains the duplicate group).
    group_size: dict[int, int] = {}
    chosen_in_group: dict[int, int] = {}
    if params.collapse != "none":
        for i, c in enumerate(cands):
            g = c.story_group or c.dup_group or -c.key
            group_size[g] = group_size.get(g, 0) + 1
            j = chosen_in_group.get(g)
            if j is None or _better_representative(i, j, cands, scores, params.collapse, g):
                chosen_in_group[g] = i
        survivors = sorted(chosen_in_group.values())
    else:
        survivors = list(range(len(cands)))
    survivors = [i for i in survivors if scores[i] >= params.min_score]
    if not survivors:
        return []
    blocked = None
    if params.collapse != "none" and params.same_story_threshold <= 1.0:
        blocked = _same_story_pairs([cands[i] for i in survivors], vecs[survivors], params.same_story_threshold,
                                    None if story_centroids is None else np.asarray(story_centroids)[keep][survivors])
    picked = mmr_select(scores[survivors], ctx[survivors], params.k, params.mmr_lambda, blocked)
    out = []
    for s in picked:
        i = survivors[s]
        c = cands[i]
        g = c.story_group or c.dup_group or -c.key
        size = group_size.get(g, 1)
        out.append(
            Ranked(
                candidate=c,
                score=round(float(scores[i]), 4),
                similarity=round(float(sims[i]), 4),
                recency=round(float(rec[i]), 4),
                reason=_describe(c, float(sims[i]), query_days, size),
                group_size=size,
                story_similarity=None if c.story_similarity is None else round(float(c.story_similarity), 4),
            )
        )
    return out


def _same_story_pairs(cands: Sequence[Candidate], vecs: np.ndarray, threshold: float,
                      centroids: np.ndarray | None = None) -> np.ndarray:
    """Pairs of candidates that tell one story: story score at or above the bar, where with
    `centroids` (each candidate's story centroid, row-aligned) a candidate as close to the other's
    story centroid as to a member counts too (the rule the query's own story is blocked by)."""
    from .stories import LIST_DATE_GRACE_DAYS, grace_for, story_score

    days = np.asarray([c.time_days for c in cands], dtype=np.float64)
    precise = np.asarray([c.precise_time for c in cands], dtype=bool)
    delta = days[:, None] - days[None, :]
    cos = vecs @ vecs.T
    if centroids is not None:
        to_story = vecs @ np.asarray(centroids, dtype=np.float32).T
        cos = np.maximum(cos, np.maximum(to_story, to_story.T))
    score = story_score(cos, delta, grace_days=grace_for(precise[:, None], precise[None, :], LIST_DATE_GRACE_DAYS))
    bars = np.asarray([threshold if c.story_bar is None else max(threshold, c.story_bar) for c in cands])
    same = score >= np.maximum(bars[:, None], bars[None, :])
    np.fill_diagonal(same, False)
    return same


def _better_representative(i: int, j: int, cands: Sequence[Candidate], scores: np.ndarray, mode: str, group: int) -> bool:
    """Whether candidate i should replace j as its group's representative."""
    ci, cj = cands[i], cands[j]
    if mode == "freshest":
        return (ci.published_days, scores[i]) > (cj.published_days, scores[j])
    # canonical: the group's canonical member (its key is the group id) if present, else the best score
    if ci.key == group:
        return True
    if cj.key == group:
        return False
    return scores[i] > scores[j]


def date_ordinal(value: str | None) -> int | None:
    """ISO date -> ordinal, None when empty."""
    if not value:
        return None
    return dt.date.fromisoformat(value[:10]).toordinal()
