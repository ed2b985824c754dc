"""Story groups and the told-again rule: average linkage over judged links, outlets, undated pairs."""
from __future__ import annotations

import numpy as np

from recommender.evidence.duplicates import classify_pair
from recommender.evidence.pairs import RETELLING_VERDICT, Sides, load_pair_model, other_outlet, told_again
from recommender.evidence.stories import group_stories
from recommender.index.store import Record


def test_average_linkage_joins_a_group_only_when_its_members_on_average_tell_one_story():
    # rows 0-2 retell each other; row 3 retells row 2 alone (a chain): it stays apart
    p = np.array([[1.0, 0.9, 0.9, 0.1],
                  [0.9, 1.0, 0.9, 0.1],
                  [0.9, 0.9, 1.0, 0.8],
                  [0.1, 0.1, 0.8, 1.0]])
    links = [(0, 1, 0.9), (1, 2, 0.9), (2, 3, 0.8)]
    labels = group_stories(4, links, lambda ma, mb: p[np.ix_(ma, mb)])
    assert labels[0] == labels[1] == labels[2] != labels[3]
    # with row 3 as close to all of them, it joins
    p[3, :3] = p[:3, 3] = 0.8
    assert len(set(group_stories(4, links, lambda ma, mb: p[np.ix_(ma, mb)]))) == 1


def test_a_group_stops_growing_at_its_largest():
    links = [(i, i + 1, 0.9) for i in range(9)]
    labels = group_stories(10, links, lambda ma, mb: np.ones((len(ma), len(mb))), max_group=4)
    assert max(labels.count(x) for x in set(labels)) == 4


def test_told_again_needs_another_known_outlet():
    p = np.array([0.9, 0.9, 0.9, 0.4, 0.9])
    a = np.array(["reuters", "reuters", "", "reuters", "ap"], dtype=object)
    b = np.array(["ap", "reuters", "ap", "ap", ""], dtype=object)
    # another outlet's version of the story is told again; the same outlet's second article is its
    # development; an unknown outlet is one collection (no proof of another outlet)
    assert told_again(p, a, b).tolist() == [True, False, False, False, False]
    assert other_outlet("a", np.array(["a", "b", ""], dtype=object)).tolist() == [False, True, False]
    assert bool(told_again(RETELLING_VERDICT, "x", "y")) and not bool(told_again(RETELLING_VERDICT - 1e-9, "x", "y"))


def test_the_verdict_gives_consecutive_dates_a_days_grace_and_an_undated_draft_no_time_at_all():
    monday = Record(key=1, id="m", title="Iranians vote in runoff", body="x", body_hash="a", published="2005-06-24")
    tuesday = Record(key=2, id="t", title="Hardliner wins runoff", body="y", body_hash="b", published="2005-06-25")

    class Config:
        near_coverage = 0.78

    judge = load_pair_model("")
    p = float(judge.judge([0.8], Sides.of([monday.when.days], [5]), Sides.of([tuesday.when.days], [5])).p_retelling[0])
    same_day = float(judge.judge([0.8], Sides.of([monday.when.days], [5]), Sides.of([monday.when.days], [5])).p_retelling[0])
    assert p == same_day and classify_pair(monday, tuesday, None, p, Config)[0] == "same-story"
    # a week apart, the same cosine is less likely one telling
    week = float(judge.judge([0.8], Sides.of([monday.when.days], [5]), Sides.of([monday.when.days + 7], [5])).p_retelling[0])
    assert week < same_day
    # an undated side is judged with the time unknown, never as the same day
    undated = judge.judge([0.8], Sides.of([np.nan], [5]), Sides.of([monday.when.days], [5]))
    assert undated.features[0, list(judge.names).index("undated")] == 1.0
