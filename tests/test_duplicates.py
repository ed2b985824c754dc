"""Duplicate evidence on texts and signatures made here."""
from __future__ import annotations

import random

import numpy as np

from recommender.evidence.duplicates import (BandTable, Shingled, UnionFind, body_hash, classify_pair, has_shingles,
                                             minhash_signatures, overlap)

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def doc(seed: int, n: int = 300) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randint(0, 50)) for _ in range(n))


def edit(text: str, share: float, seed: int) -> str:
    rng = random.Random(seed)
    words = text.split()
    for i in rng.sample(range(len(words)), int(len(words) * share)):
        words[i] = "edited" + str(rng.randint(0, 10**6))
    return " ".join(words)


def test_body_hash_ignores_case_spacing_and_punctuation():
    assert body_hash("Hello,  World!") == body_hash("hello world")
    assert body_hash("hello world") != body_hash("hello there world")


def test_overlap_containment_survives_extra_furniture_and_truncation():
    a = doc(1)
    furnished = "Share this story. Follow us on WhatsApp. " + a + " ALSO READ: something else entirely here"
    truncated = " ".join(a.split()[:200])
    assert overlap(Shingled.of(a), Shingled.of(furnished)).containment == 1.0
    ov = overlap(Shingled.of(a), Shingled.of(truncated))
    assert ov.containment == ov.coverage == 1.0 and ov.jaccard < 0.7


def test_a_copy_is_covered_throughout_and_a_shared_template_block_is_not():
    """Edits leave the words around them in shared passages; two pages that share an introduction and a
    list of questions and differ in every answer share a block and no more."""
    from recommender.config import Config

    config = Config.load({}, environ={})
    story = doc(3)
    edited = edit(story, 0.10, 7)
    ov = overlap(Shingled.of(story), Shingled.of(edited))
    assert ov.containment < 0.7 and ov.coverage >= config.near_coverage
    intro = ("Wikinews interviewed the candidate about the election in the riding, the party's plan for "
             "schools and hospitals, and what the voters here ask for most at the doors this autumn. ")
    questions = ["Why are you running in this election?", "What is the most important issue in the riding?",
                 "What would your party do about the cost of housing?", "How would you pay for it?"]
    rng = random.Random(5)

    def interview(person: int) -> str:
        answers = [" ".join(rng.choice(WORDS) + str(rng.randint(0, 50)) for _ in range(9)) + "." for _ in questions]
        return f"Candidate {person} is running. " + intro + " ".join(q + " " + a for q, a in zip(questions, answers))

    one, two = interview(1), interview(2)
    ov = overlap(Shingled.of(one), Shingled.of(two))
    # Containment alone would call it a copy (a copy with a tenth of its words edited keeps 0.55 of it).
    assert ov.containment >= 0.45 and ov.coverage < config.near_coverage
    level, _, _ = classify_pair(_Text(one), _Text(two), ov, 0.0, config)
    assert level is None
    assert classify_pair(_Text(story), _Text(edited), overlap(Shingled.of(story), Shingled.of(edited)), 0.0,
                         config)[0] == "near"


class _Text:
    def __init__(self, body: str):
        from recommender.evidence.duplicates import body_hash

        self.body, self.body_hash = body, body_hash(body)


def test_lsh_finds_edited_copies_and_not_strangers():
    originals = [doc(i) for i in range(40)]
    copies = [edit(t, 0.05, 100 + i) for i, t in enumerate(originals)]
    sigs = minhash_signatures(originals + copies)
    assert sigs.dtype == np.uint32 and sigs.shape == (80, 128)
    table = BandTable.build(sigs, threshold=0.5)
    found = sum(1 for i in range(40) if (40 + i) in table.query(sigs[i]))
    assert found >= 38
    pairs = table.candidate_pairs()
    strangers = [(a, b) for a, b in pairs if a < 40 and b < 40]
    assert len(strangers) <= 2


def test_band_queries_in_one_pass_find_what_each_query_finds():
    """BandTable.query_many (the build's vectorised lookup) gives every signature the rows query gives it,
    the bucket limit included."""
    originals = [doc(i) for i in range(30)]
    texts = originals + [edit(t, 0.05, 200 + i) for i, t in enumerate(originals)] + [originals[0]] * 5
    sigs = minhash_signatures(texts)
    table = BandTable.build(sigs, threshold=0.5)
    for limit in (200, 2):
        q, rows = table.query_many(sigs[::2], limit_per_bucket=limit)
        found = [set(rows[q == n].tolist()) for n in range(len(sigs[::2]))]
        assert found == [table.query(s, limit_per_bucket=limit) for s in sigs[::2]]
        assert sum(len(f) > 1 for f in found[:15]) >= 13  # an original finds its edited copy
    assert {0, 60, 61, 62, 63, 64} <= table.query(sigs[0]) and len(found[0]) < 6  # five repeats, cut to two a band


def test_texts_without_words_are_nobody_s_copy_candidates():
    """MinHash gives every text without words one signature; in one bucket, a headline-only site's every
    pair would be a copy candidate (the build judging n x 200 pairs a band). They find nothing, and
    nothing finds them."""
    texts = ["", "  ", "!!! ...", *[doc(i) for i in range(6)], "", doc(0)]
    sigs = minhash_signatures(texts)
    assert has_shingles(sigs).tolist() == [False] * 3 + [True] * 6 + [False, True]
    table = BandTable.build(sigs, threshold=0.5)
    assert table.query(sigs[0]) == set() and table.query(sigs[9]) == set()
    q, rows = table.query_many(sigs)
    found = {(int(a), int(b)) for a, b in zip(q, rows) if a != b}
    assert found == {(3, 10), (10, 3)}  # the one repeated text, and no pair of empty ones
    assert not set(rows.tolist()) & {0, 1, 2, 9}


def test_union_find_groups():
    uf = UnionFind(range(6))
    uf.union(0, 1)
    uf.union(1, 2)
    uf.union(4, 5)
    groups = sorted(sorted(g) for g in uf.groups().values())
    assert groups == [[0, 1, 2], [3], [4, 5]]


def test_a_body_pages_about_different_stories_repeat_is_a_notice_and_one_story_s_copies_are_not():
    from recommender.evidence.duplicates import body_hash, notice_bodies
    from recommender.index.store import Record

    def pages(titles, bodies):
        return [Record(key=0, id=str(i), title=t, body=b, body_hash=body_hash(b or t))
                for i, (t, b) in enumerate(zip(titles, bodies))]

    stub = "This article is for subscribers only. Subscribe now for unlimited access to all our journalism."
    wire = "Officials in Lima said the earthquake struck at dawn, damaging hundreds of homes in three provinces."
    rows = [("Rovers win league title", stub), ("City council approves new bus routes", stub),
            ("Heatwave expected to last until Friday", stub),
            ("Earthquake in Peru damages hundreds of homes", wire), ("Peru earthquake: hundreds of homes hit", wire),
            ("Mayor resigns", "A short note that one page carries."),
            ("Same page twice", stub + " Twice."), ("Same page twice", stub + " Twice."),
            # another language and script: the rule reads content words, not a stop list
            ("東京で新しい駅が開業", "この記事は有料会員限定です。"), ("大阪の天気は晴れ", "この記事は有料会員限定です。")]
    titles, bodies = [t for t, _ in rows], [b for _, b in rows]
    found = notice_bodies(pages(titles, bodies))
    assert found == {body_hash(stub), body_hash("この記事は有料会員限定です。")}
    # pages without a headline, or a body without words, are never judged notices
    assert notice_bodies(pages(["", ""], [stub, stub])) == set()
    assert notice_bodies([Record(key=0, id=t, title=t, body="", body_hash=body_hash(""))
                          for t in ("Rovers win", "Bus routes")]) == set()


def test_bodies_without_a_word_are_not_copies_of_each_other():
    from recommender.evidence.duplicates import body_hash, classify_pair
    from recommender.index.store import Record

    a, b = (Record(key=0, id=i, title=t, body=body, body_hash=body_hash(body))
            for i, t, body in (("a", "Rovers win league title", "***"), ("b", "Rovers win the cup", "- - -")))
    assert classify_pair(a, b, None, 0.0, None)[0] is None  # the same words (none), and nothing said
    c = Record(key=0, id="c", title="Rovers win", body="Rovers won 2-1.", body_hash=body_hash("Rovers won 2-1."))
    assert classify_pair(c, c, None, 0.0, None)[0] == "exact"
