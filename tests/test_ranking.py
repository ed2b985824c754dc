"""Ranking maths on hand-made vectors: filters, decay, collapsing, MMR, minimum score, score parts."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recommender.text.dates import UNKNOWN, Published
from recommender.query.ranking import (Candidate, CandidateVectors, Query, RankParams, feedback, mix_story, mmr_select,
                                  rank, recency_weights, story_context)


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def on_day(day: int) -> Published:
    """A published value known to the day (-1: unknown)."""
    return UNKNOWN if day < 0 else Published(day=day, days=float(day))


def cands(sims, **fields):
    out = []
    for i, s in enumerate(sims, start=1):
        extra = {k: v[i - 1] for k, v in fields.items()}
        if "published_days" in extra:
            extra["when"] = on_day(extra.pop("published_days"))
        out.append(Candidate(key=i, id=f"a{i}", similarity=s, story_group=extra.pop("story_group", i), **extra))
    return out


VECS = np.stack([unit(1, 0, 0), unit(0.9, 0.1, 0), unit(0, 1, 0), unit(0, 0, 1), unit(0.5, 0.5, 0)])


def query(day: int = -1, **fields) -> Query:
    """A query not in the index (or, with key/dup_group/story_group, one that is)."""
    q = Query.unindexed(vector=unit(1, 1, 1), when=on_day(day), words=10)
    return dataclasses.replace(q, **fields)


def ranked(c, vecs, params, q=None, story=None):
    return rank(c, CandidateVectors(vecs, story), q or query(), params)


def test_orders_by_similarity_and_reports_parts():
    out = ranked(cands([0.5, 0.9, 0.7, 0.3, 0.6]), VECS, RankParams(k=3, mmr_lambda=1.0, min_score=0))
    assert [r.candidate.id for r in out] == ["a2", "a3", "a5"]
    for r in out:
        assert r.score == pytest.approx(r.similarity * r.recency)
        assert r.reason.startswith("similar text")


def test_drops_query_its_duplicates_and_its_story():
    c = cands([0.99, 0.9, 0.8, 0.7, 0.6], story_group=[1, 7, 7, 4, 5], dup_group=[1, 2, 3, 9, 5])
    out = ranked(c, VECS, RankParams(k=5, mmr_lambda=1.0, min_score=0), query(key=1, dup_group=9, story_group=7))
    assert [r.candidate.id for r in out] == ["a5"]


def test_collapses_story_groups_to_canonical_or_freshest():
    c = cands([0.9, 0.8, 0.7], story_group=[2, 2, 2], published_days=[100, 300, 200])
    out = ranked(c, VECS[:3], RankParams(k=3, mmr_lambda=1.0, min_score=0, collapse="canonical"))
    assert [r.candidate.id for r in out] == ["a2"] and out[0].group_size == 3
    out = ranked(c, VECS[:3], RankParams(k=3, mmr_lambda=1.0, min_score=0, collapse="freshest"))
    assert [r.candidate.id for r in out] == ["a2"]
    c[1] = dataclasses.replace(c[1], when=on_day(50))
    out = ranked(c, VECS[:3], RankParams(k=3, mmr_lambda=1.0, min_score=0, collapse="freshest"))
    assert [r.candidate.id for r in out] == ["a3"]
    out = ranked(c, VECS[:3], RankParams(k=3, mmr_lambda=1.0, min_score=0, collapse="none"))
    assert len(out) == 3


def test_filters():
    c = cands([0.9, 0.8, 0.7, 0.6, 0.5], source=["x", "y", "x", "z", "x"], section=["s", "s", "t", "s", "s"],
              published_days=[10, 20, 30, -1, 50], lang=["en", "en", "fr", "en", ""])
    ids = lambda p: [r.candidate.id for r in ranked(c, VECS, p)]
    base = dict(k=5, mmr_lambda=1.0, min_score=0)
    assert ids(RankParams(**base, sources=frozenset({"x"}))) == ["a1", "a3", "a5"]
    assert ids(RankParams(**base, exclude_sources=frozenset({"x"}))) == ["a2", "a4"]
    assert ids(RankParams(**base, sections=frozenset({"t"}))) == ["a3"]
    assert ids(RankParams(**base, langs=frozenset({"en"}))) == ["a1", "a2", "a4", "a5"]
    assert ids(RankParams(**base, date_from=20, date_to=30)) == ["a2", "a3"]
    assert ids(RankParams(**base, exclude_ids=frozenset({"a1", "a2"}))) == ["a3", "a4", "a5"]


def test_minimum_score_gives_an_empty_list_rather_than_a_bad_one():
    assert ranked(cands([0.2, 0.1]), VECS[:2], RankParams(k=5, min_score=0.25)) == []


def test_recency_decay_is_smooth_relative_to_the_query_date():
    w = recency_weights(np.array([100, 90, 80, 110, -1]), 100, half_life_days=10)
    assert w[0] == 1.0 and w[4] == 1.0
    assert w[1] == pytest.approx(0.75) and w[3] == pytest.approx(0.75)  # floor 0.5 + 0.5 * 2^-1
    assert w[2] == pytest.approx(0.625)
    assert np.all(recency_weights(np.array([1, 500]), 100, half_life_days=0) == 1.0)


def test_decay_reorders_old_stories():
    c = cands([0.8, 0.75], published_days=[100, 1000])
    fresh_first = ranked(c, VECS[:2], RankParams(k=2, mmr_lambda=1.0, min_score=0, half_life_days=7), query(1000))
    assert [r.candidate.id for r in fresh_first] == ["a2", "a1"]
    assert fresh_first[1].recency < 1.0


def test_mmr_prefers_diverse_items():
    scores = np.array([0.9, 0.89, 0.6])
    vecs = np.stack([unit(1, 0), unit(1, 0.01), unit(0, 1)])
    assert mmr_select(scores, vecs, 2, lam=1.0) == [0, 1]
    assert mmr_select(scores, vecs, 2, lam=0.5) == [0, 2]


def test_story_similarity_drives_relevance_and_is_reported():
    # a1 is nearer the query article, but a3's story (its centroid) is nearer the query's story
    own = np.stack([unit(0.8, 0.6, 0), unit(0.6, 0.8, 0), unit(0.5, 0, 0.75 ** 0.5)])
    story = np.stack([unit(0, 0, 1), unit(0, 1, 0), unit(1, 0, 0)])
    q = query(vector=unit(1, 0, 0))
    c = cands([0.8, 0.6, 0.5])
    out = ranked(c, own, RankParams(k=3, mmr_lambda=1.0, min_score=0, story_context=0.5), q, story)
    # half the weight on the centroid: a3 = unit(1.5, 0, .87), a1 = unit(.8, .6, 1), a2 = unit(.6, 1.8, 0)
    assert [r.candidate.id for r in out] == ["a3", "a1", "a2"]
    assert [r.story_similarity for r in out] == pytest.approx([1.5 / np.sqrt(3), 0.8 / np.sqrt(2), 0.6 / np.sqrt(3.6)],
                                                              abs=1e-4)
    assert [r.similarity for r in out] == [0.5, 0.8, 0.6]  # the articles' own cosine stays reported
    assert all(r.score == pytest.approx(r.story_similarity * r.recency) for r in out)
    # story_context 0: the articles alone, and no story similarity is reported
    alone = ranked(c, own, RankParams(k=3, mmr_lambda=1.0, min_score=0, story_context=0.0), q, story)
    assert [r.candidate.id for r in alone] == ["a1", "a2", "a3"] and alone[0].story_similarity is None


def test_story_context_mixes_centroids_toward_the_querys_story():
    own = np.stack([unit(1, 0), unit(0, 1)])
    story = np.stack([unit(0, 1), unit(0, 1)])
    q = query(vector=unit(1, 0), story_centroid=unit(0, 1))
    ctx, sims = story_context(q, CandidateVectors(own, story), 0.5)
    assert np.allclose(ctx[0], unit(1, 1)) and np.allclose(ctx[1], unit(0, 1))
    assert np.allclose(mix_story(unit(1, 0), unit(0, 1), 0.25), unit(0.75, 0.25))
    assert sims == pytest.approx([1.0, 1 / np.sqrt(2)], abs=1e-6)  # against the query's mixed story vector


def test_a_list_hides_the_story_told_again_by_another_outlet_and_keeps_the_outlets_own_development():
    c = cands([0.9, 0.8, 0.7], told_again=[True, False, False], p_retelling=[0.9, 0.9, 0.1])
    out = ranked(c, VECS[:3], RankParams(k=5, mmr_lambda=1.0, min_score=0))
    assert [r.candidate.id for r in out] == ["a2", "a3"]


def test_of_two_items_that_retell_each_other_a_list_shows_the_first():
    from recommender.evidence.pairs import Sides, load_pair_model

    judge = load_pair_model("")
    vecs = np.stack([unit(1, 0, 0), unit(1, 0.02, 0), unit(0, 1, 0)])
    day = 20000.0

    def shown(sources):
        sides = Sides.of([day] * 3, [10] * 3, None, sources)
        return [r.candidate.id for r in rank(cands([0.9, 0.8, 0.7]), CandidateVectors(vecs, None, sides), query(),
                                             RankParams(k=3, mmr_lambda=1.0, min_score=0), judge=judge)]

    # a2 is another outlet's version of a1 (cosine 1 the same day): listed once
    assert shown(["x", "y", "z"]) == ["a1", "a3"]
    # from one outlet, a2 is a1's development: both are listed
    assert shown(["x", "x", "z"]) == ["a1", "a2", "a3"]
    # without a judge every item stands alone
    assert len(rank(cands([0.9, 0.8, 0.7]), CandidateVectors(vecs), query(), RankParams(k=3, mmr_lambda=1.0, min_score=0))) == 3


def test_feedback_moves_the_query_toward_its_nearest_other_story():
    # a1 is nearest; a3 (0.85) beats a2 (0.8) on the query alone, but a2 shares a1's direction
    q = query(vector=unit(1, 0, 0))
    own = np.stack([unit(0.9, 0.43, 0), unit(0.8, 0.6, 0), unit(0.85, 0, 0.52)])
    c = cands([float(v @ q.vector) for v in own])
    alone = ranked(c, own, RankParams(k=3, mmr_lambda=1.0, min_score=0, feedback=0.0), q)
    assert [r.candidate.id for r in alone] == ["a1", "a3", "a2"]
    assert all(r.neighbourhood_similarity is None for r in alone)
    moved = ranked(c, own, RankParams(k=3, mmr_lambda=1.0, min_score=0, feedback=0.5, feedback_stories=1), q)
    assert [r.candidate.id for r in moved] == ["a1", "a2", "a3"]
    # the score is the cosine to the moved query, normalised; its parts are reported
    q2 = 0.5 * q.vector + 0.5 * own[0]
    q2 /= np.linalg.norm(q2)
    by_id = {r.candidate.id: r for r in moved}
    for i, v in enumerate(own, start=1):
        assert by_id[f"a{i}"].score == pytest.approx(float(v @ q2), abs=1e-4)
        assert by_id[f"a{i}"].neighbourhood_similarity == pytest.approx(float(v @ own[0]), abs=1e-4)


def test_a_score_is_never_above_its_evidence_however_much_the_neighbourhood_lifts_it():
    # a query that says little (near no candidate) whose neighbourhood is one tight cluster: feedback alone
    # would score the cluster's members at 0.6-0.7 from cosines of 0.2-0.3
    q = query(vector=unit(1, 0, 0))
    own = np.stack([unit(0.3, 0.95, 0), unit(0.25, 0.97, 0.05), unit(0.2, 0.9, 0.3)])
    sims = [float(v @ q.vector) for v in own]
    params = RankParams(k=3, mmr_lambda=1.0, min_score=0, feedback=0.5, feedback_stories=2)
    lifted = ranked(cands(sims), own, params, q)
    assert max(r.score for r in lifted) > 0.5 and max(sims) < 0.35  # the lift the evidence does not back
    judged = ranked(cands(sims, p_related=[0.4, 0.2, 0.1]), own, params, q)
    for r in judged:
        assert r.score <= max(r.candidate.p_related, r.similarity) + 1e-9, r
    assert judged[0].score == pytest.approx(0.4)
    # and under the minimum score, such a list is empty rather than a list of what the pair does not back
    assert ranked(cands(sims, p_related=[0.2, 0.2, 0.1]), own, dataclasses.replace(params, min_score=0.35), q) == []


def test_feedback_takes_one_member_per_story_and_weighs_by_relevance():
    rel = np.array([0.9, 0.89, 0.5])
    vecs = np.stack([unit(1, 0), unit(1, 0.05), unit(0, 1)])
    # a1 and a2 are one story: the two "nearest stories" are a1's and a3's, weighted 0.9 : 0.5
    _, to_n = feedback(rel, vecs, [7, 7, 8], 0.5, 2)
    n = (0.9 * vecs[0] + 0.5 * vecs[2]) / 1.4
    assert to_n == pytest.approx(vecs @ n, abs=1e-6)
    # share 0 or nothing relevant: relevance unchanged
    assert feedback(rel, vecs, [1, 2, 3], 0.0, 2)[0] == pytest.approx(rel)
    assert feedback(rel, vecs, [1, 2, 3], 0.0, 2)[1] is None  # no neighbourhood to report
    assert feedback(rel, vecs, [1, 2, 3], 0.5, 0)[0] == pytest.approx(rel)  # no stories (or fewer than none)
    assert feedback(rel, vecs, [1, 2, 3], 0.5, -1)[0] == pytest.approx(rel)
    assert feedback(-rel, vecs, [1, 2, 3], 0.5, 2)[0] == pytest.approx(-rel)


def test_rank_pool_counts_the_other_stories_a_list_was_chosen_from():
    from recommender.query.ranking import rank_pool

    # a1 is the query's own story, a2 and a3 one other story, a4 below the minimum score.
    c = cands([0.9, 0.8, 0.7, 0.1, 0.6], story_group=[7, 3, 3, 4, 5])
    out, stories = rank_pool(c, CandidateVectors(VECS, None), query(key=99, story_group=7),
                             RankParams(k=1, mmr_lambda=1.0, min_score=0.25))
    assert [r.candidate.story_group for r in out] == [3]
    assert stories == 2  # stories 3 and 5: the query's own story and a4 (under min_score) do not count
    assert rank_pool(c[:1], CandidateVectors(VECS[:1], None), query(key=99, story_group=7),
                     RankParams(k=1, min_score=0.25)) == ([], 0)
