"""Related lists rank stories: the service's story vectors, by id and for an article not in the index."""
from __future__ import annotations

import numpy as np
import pytest

from recommender.text.articles import parse_article
from recommender.index.indexing import build_index
from recommender.query.ranking import mix_story
from recommender import Recommender

# Four tellings of one story by four outlets: the same two-word phrases in other orders (cosine ~0.72
# with the stand-in embedder, the same words and day: retellings; no shared 5-word runs, so not copies).
UNITS = ["city council", "bus routes", "tuesday vote", "four new", "fares rise", "network expands",
         "mayor said", "depot opens", "drivers hired", "service starts", "next month", "budget approved"]
_RNG = np.random.default_rng(3)
STORY = [" ".join(UNITS[i] for i in _RNG.permutation(len(UNITS))) for _ in range(4)]
PAGE = STORY.pop()  # the fourth is the page being viewed, not in the index
OTHERS = [
    "storm closes airport flights cancelled snow runway passengers stranded",
    "rail strike called off union agreement wages drivers trains resume",
    "hospital opens cancer ward patients doctors funding wing new beds",
    "football club signs striker transfer fee record season goals fans",
]


def _served(records, path, embedder, config) -> Recommender:
    build_index([parse_article(r) for r in records], path / "idx", embedder, config)
    rec = Recommender(config, embedder, index_path=str(path / "idx"))
    rec.load()
    return rec


def _bus_site(story_outlet) -> list[dict]:
    """The three tellings (story_outlet(i) tells the i-th) and the other stories (outlet0)."""
    return ([{"id": f"s{i}", "title": "Bus story", "body": b, "published": "2024-03-05", "source": story_outlet(i)}
             for i, b in enumerate(STORY)]
            + [{"id": f"o{i}", "title": f"Other story {i}", "body": b, "published": "2024-03-05", "source": "outlet0"}
               for i, b in enumerate(OTHERS)])


@pytest.fixture()
def story_index(tmp_path, hash_embedder, hash_config):
    return _served(_bus_site(lambda i: f"outlet{i}"), tmp_path, hash_embedder, hash_config)


def test_the_three_versions_form_one_story_with_a_centroid(story_index):
    snap = story_index.snapshot
    rows = [snap.row_of_key(snap.key_of_id(f"s{i}")) for i in range(3)]
    assert len({int(snap.story_group[r]) for r in rows}) == 1
    centroid = np.asarray(snap.vectors[rows]).mean(axis=0)
    assert np.allclose(snap.story_vectors(np.asarray(rows))[0], centroid / np.linalg.norm(centroid), atol=1e-5)


def test_an_unindexed_page_takes_the_story_of_its_same_story_candidate(story_index, hash_embedder):
    snap = story_index.snapshot
    page = {"title": "Bus story", "body": PAGE, "published": "2024-03-05", "source": "outlet9"}
    params = story_index.params(k=5, min_score=-1, feedback=0.0)
    out = story_index.related(params, article=page)
    ids = [i["id"] for i in out["items"]]
    assert ids and not any(i.startswith("s") for i in ids)  # its own story is not related to it
    rows = [snap.row_of_key(snap.key_of_id(f"s{i}")) for i in range(3)]
    centroid = snap.story_vectors(np.asarray(rows[:1]))[0]
    q = mix_story(story_index.embed(story_index.parse(page)), centroid, params.story_context)
    for item in out["items"]:
        row = snap.row_of_key(snap.key_of_id(item["id"]))
        own = np.asarray(snap.vectors[row])
        want = float(mix_story(own, snap.story_vectors(np.asarray([row]))[0], params.story_context) @ q)
        assert item["story_similarity"] == pytest.approx(want, abs=1e-3)  # judged against the story's centroid
        assert item["score"] == pytest.approx(item["story_similarity"] * item["recency"], abs=1e-3)


def test_one_outlets_second_telling_is_the_storys_development_and_is_listed(tmp_path, hash_embedder, hash_config):
    rec = _served(_bus_site(lambda i: "outlet0"), tmp_path, hash_embedder, hash_config)
    snap = rec.snapshot
    assert len({int(snap.story_group[snap.row_of_key(snap.key_of_id(f"s{i}"))]) for i in range(3)}) == 3
    items = rec.related(rec.params(k=5, min_score=-1, feedback=0.0), id="s0")["items"]
    same = [i for i in items if i["id"].startswith("s")]
    assert {i["id"] for i in same} == {"s1", "s2"} and items[0]["id"] in ("s1", "s2")
    assert all(i["relation"] == "development" and i["p_retelling"] >= 0.5 for i in same)
    assert all(i["relation"] == "related" for i in items if i["id"].startswith("o"))


def test_story_context_zero_ranks_by_the_articles_alone(story_index):
    out = story_index.related(story_index.params(k=5, min_score=-1, story_context=0.0, feedback=0.0), id="o0")
    assert out["items"] and all(i["story_similarity"] is None for i in out["items"])
    assert all(i["score"] == pytest.approx(i["similarity"] * i["recency"], abs=1e-4) for i in out["items"])


def test_a_list_shorter_than_k_says_so_and_why(story_index):
    full = story_index.related(story_index.params(k=2, min_score=-1), id="o0")
    assert len(full["items"]) == 2 and full["short"] is False and "short_reason" not in full
    strict = story_index.related(story_index.params(k=5, min_score=0.99), id="o0")
    assert strict["short"] is True and len(strict["items"]) < 5
    assert "min_score 0.99" in strict["short_reason"]
    filtered = story_index.related(story_index.params(k=5, min_score=-1, sources=frozenset({"nowhere"})), id="o0")
    assert filtered["items"] == [] and filtered["short"] is True and "filters" in filtered["short_reason"]


def test_feedback_scores_follow_their_reported_parts(story_index):
    """With feedback, an item's score is (1 - share) x its story similarity + share x its similarity to
    the nearest other stories, times recency, over one norm for the whole list (the moved query's)."""
    share = 0.5
    out = story_index.related(story_index.params(k=5, min_score=-1, feedback=share), id="o0")
    items = out["items"]
    assert len(items) >= 3 and out["params"]["feedback"] == share
    ratios = [i["score"] / (((1 - share) * i["story_similarity"] + share * i["neighbourhood_similarity"]) * i["recency"])
              for i in items]
    assert max(ratios) - min(ratios) < 5e-3
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    off = story_index.related(story_index.params(k=5, min_score=-1, feedback=0.0), id="o0")
    assert all(i["neighbourhood_similarity"] is None for i in off["items"])


def test_a_big_story_widens_the_pool_until_enough_other_stories_are_in_it(tmp_path, hash_embedder, hash_config,
                                                                            monkeypatch):
    # 61 tellings of one story fill 60 of the 64 stored neighbours of each; 40 other stories lie further out.
    rng = np.random.default_rng(5)
    records = [{"id": f"s{i}", "title": "Bus story", "body": " ".join(UNITS[j] for j in rng.permutation(len(UNITS))),
                "published": "2024-03-05", "source": f"outlet{i}"} for i in range(61)]
    words = [f"w{i}" for i in range(400)]
    records += [{"id": f"o{i}", "title": f"Other {i}", "body": " ".join(rng.choice(words, 12)),
                 "published": "2024-03-05"} for i in range(40)]
    rec = _served(records, tmp_path, hash_embedder, hash_config)
    seen: list[int] = []
    inner = Recommender._rank_candidates

    def spy(self, snap, query, n_cand, params, *rest, **named):
        seen.append(n_cand)
        return inner(self, snap, query, n_cand, params, *rest, **named)

    monkeypatch.setattr(Recommender, "_rank_candidates", spy)
    few = rec.related(rec.params(k=3, min_score=-1, pool_stories=0, feedback=0.0), id="s0")
    assert seen == [64] and len(few["items"]) == 3  # the 4 other stories in reach were enough for k
    seen.clear()
    wide = rec.related(rec.params(k=3, min_score=-1, pool_stories=10, feedback=0.0), id="s0")
    assert seen == [64, 101] and len(wide["items"]) == 3  # widened: now chosen from all 40
    assert all(i["id"].startswith("o") for i in few["items"] + wide["items"])
