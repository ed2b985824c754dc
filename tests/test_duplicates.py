"""Duplicate evidence on texts and signatures made here."""
from __future__ import annotations

import random

import numpy as np

from recommender.evidence.duplicates import BandTable, UnionFind, body_hash, minhash_signatures, overlap, shingles

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
    assert overlap(shingles(a), shingles(furnished)).containment == 1.0
    ov = overlap(shingles(a), shingles(truncated))
    assert ov.containment == 1.0 and ov.jaccard < 0.7


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


def test_union_find_groups():
    uf = UnionFind(range(6))
    uf.union(0, 1)
    uf.union(1, 2)
    uf.union(4, 5)
    groups = sorted(sorted(g) for g in uf.groups().values())
    assert groups == [[0, 1, 2], [3], [4, 5]]
