"""Story groups on hand-made vectors: average linkage, stragglers joining by centroid, time rules."""
from __future__ import annotations

import numpy as np

from recommender.text.dates import Published
from recommender.evidence.duplicates import classify_pair
from recommender.index.store import Record
from recommender.evidence.stories import LIST_DATE_GRACE_DAYS, attach_stragglers, group_stories, pair_story_score


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _story(rng, centre, n, spread):
    return np.stack([_unit(centre + spread * rng.standard_normal(len(centre))) for _ in range(n)])


def test_a_straggler_joins_the_story_whose_centroid_it_is_close_to():
    rng = np.random.default_rng(0)
    dim = 64
    a, b = _unit(rng.standard_normal(dim)), _unit(rng.standard_normal(dim))
    story_a = _story(rng, a, 8, 0.12)
    story_b = _story(rng, b, 8, 0.12)
    straggler = _unit(a + 0.16 * rng.standard_normal(dim))  # close to A's centre, looser to each member
    vectors = np.vstack([story_a, story_b, straggler[None, :]]).astype(np.float32)
    days = np.zeros(len(vectors))
    labels = [0] * 8 + [8] * 8 + [16]
    centroid_cos = float(_unit(story_a.mean(axis=0)) @ straggler)
    bar = centroid_cos - 0.02
    bars = np.full(len(vectors), bar)
    assert float((story_a @ straggler).mean()) < bar  # average linkage alone would leave it out
    out = attach_stragglers(vectors, days, labels, bars, small=5)
    assert out[16] == out[0] and out[8] != out[0]
    # the same text published two days later is another story's news cycle: it stays alone
    late = days.copy()
    late[16] = 2.0
    assert attach_stragglers(vectors, late, labels, bars, small=5)[16] == 16


def test_group_stories_with_stragglers_end_to_end():
    rng = np.random.default_rng(1)
    a = _unit(rng.standard_normal(32))
    members = _story(rng, a, 6, 0.1)
    straggler = _unit(a + 0.35 * rng.standard_normal(32))
    vectors = np.vstack([members, straggler[None, :]]).astype(np.float32)
    links = [(i, j, float(vectors[i] @ vectors[j])) for i in range(7) for j in range(i + 1, 7)]
    mean_cos = float((members @ straggler).mean())
    centroid_cos = float(_unit(members.mean(axis=0)) @ straggler)
    assert centroid_cos > mean_cos + 0.02
    bar = (mean_cos + centroid_cos) / 2
    assert min(vectors[i] @ vectors[j] for i in range(6) for j in range(i + 1, 6)) > bar  # the story holds together
    plain = group_stories(vectors, np.zeros(7), links, bar)
    joined = group_stories(vectors, np.zeros(7), links, bar, straggler_size=5)
    assert len(set(plain[:6])) == 1 and plain[6] != plain[0]
    assert joined == [joined[0]] * 7


def test_lists_give_date_only_pairs_no_grace_but_the_verdict_does():
    from recommender.evidence.pairs import Sides, load_pair_model

    monday = Record(key=1, id="m", title="Iranians vote in runoff", body="x", body_hash="a", published="2005-06-24")
    tuesday = Record(key=2, id="t", title="Hardliner wins runoff", body="y", body_hash="b", published="2005-06-25")

    class Config:
        near_containment = 0.45

    # the same-story verdict (the pair judgment) gives consecutive dates a day's grace...
    judge = load_pair_model("")
    p = float(judge.judge([0.8], Sides.of([monday.when.days], [5]), Sides.of([tuesday.when.days], [5])).p_retelling[0])
    same_day = float(judge.judge([0.8], Sides.of([monday.when.days], [5]), Sides.of([monday.when.days], [5])).p_retelling[0])
    assert p == same_day and classify_pair(monday, tuesday, None, p, Config)[0] == "same-story"
    # ...related lists do not: the next day's development is another item
    assert pair_story_score(monday.when, tuesday.when, 0.8, LIST_DATE_GRACE_DAYS) < 0.5
    assert pair_story_score(monday.when, Published.of("2005-06-24"), 0.8, LIST_DATE_GRACE_DAYS) == 0.8


def test_the_story_bar_follows_what_the_model_read_not_whether_a_body_is_filled():
    from recommender.config import Config
    from recommender.embed.embedding import embedded_words
    from recommender.evidence.stories import bar_for

    config = Config.load(environ={})
    headline = "Fed holds rates steady as inflation cools"
    one_line = "The central bank kept its benchmark rate unchanged on Wednesday."
    lead = " ".join(["The central bank kept its benchmark rate unchanged on Wednesday, officials said."] * 12)
    assert bar_for(embedded_words(headline, "", 128), config) == config.story_group_threshold
    # a headline with a one-line description (or repeated as its body) is judged like a headline
    assert bar_for(embedded_words(headline, one_line, 128), config) == config.story_group_threshold
    assert bar_for(embedded_words(headline, headline, 128), config) == config.story_group_threshold
    assert bar_for(embedded_words(headline, lead, 128), config) == config.story_group_threshold_articles
    middle = bar_for((config.story_bar_short_words + config.story_bar_long_words) // 2, config)
    assert config.story_group_threshold < middle < config.story_group_threshold_articles
    # words of scripts written without spaces count too
    assert embedded_words("央行维持利率不变", "中国人民银行周三宣布维持基准利率不变，市场反应平稳。" * 10, 128) > 40


def test_a_list_blocks_headlines_of_one_running_story_days_apart_but_not_articles():
    """The list time weight follows what the model read: two headline-length texts of one story two
    days apart are one story to a reader (a headline names the story, not the day's development); two
    full articles two days apart at the same cosine are two developments, each its own item."""
    from recommender.config import Config
    from recommender.query.ranking import Candidate, RankParams, _same_story_pairs
    from recommender.evidence.stories import list_weight_for

    config = Config.load(environ={})
    short, long = config.story_bar_short_words, config.story_bar_long_words
    assert list_weight_for(short, config) == config.list_time_weight_short
    assert list_weight_for(long, config) == config.list_time_weight
    assert config.list_time_weight_short < list_weight_for((short + long) // 2, config) < config.list_time_weight
    rng = np.random.default_rng(3)
    vectors = _story(rng, _unit(rng.standard_normal(32)), 2, 0.25).astype(np.float32)
    cos = float(vectors[0] @ vectors[1])
    bar = cos - 0.25  # reached by the cosine less the headline penalty (at most 0.08), not the article's (0.8)
    assert 4 * config.list_time_weight_short < 0.25 < 4 * config.list_time_weight
    params = RankParams(story_group_threshold=bar, list_time_weight=config.list_time_weight)

    def pair(weights):
        cands = [Candidate(key=n, id=str(n), similarity=0.5, when=Published.of(day), story_bar=bar, time_weight=w)
                 for n, (day, w) in enumerate(zip(("2024-03-01", "2024-03-03"), weights))]
        return bool(_same_story_pairs(cands, vectors, params)[0, 1])

    headline, article = list_weight_for(short, config), list_weight_for(long, config)
    assert pair([headline, headline])
    assert not pair([article, article])
    assert not pair([headline, article])  # a headline beside an article is judged in the article's band
