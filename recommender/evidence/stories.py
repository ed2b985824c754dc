"""Story groups: the versions of one story an index holds, as pure functions over links and judgments.

A story group gathers an article's copies (the shingle evidence of `duplicates`) and its retellings by
other outlets (`pairs.told_again`). Groups are formed by average linkage over the links, strongest first:
two groups join only if their members, on average, tell one story (the mean told-again probability
between them reaches RETELLING_VERDICT), which avoids the chains that plain union-find builds across a
busy news week.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from recommender.evidence.duplicates import UnionFind
from recommender.evidence.pairs import RETELLING_VERDICT

__all__ = ["group_stories", "group_centroids"]

MAX_GROUP = 500  # a group grows no larger: past this, links are evidence of a topic, not of one story


def group_stories(n: int, links: Iterable[tuple[int, int, float]],
                  together: Callable[[list[int], list[int]], np.ndarray], *, max_group: int = MAX_GROUP) -> list[int]:
    """Group labels (a member row of each group) for n rows by average linkage over candidate links.

    `links` are (row, row, strength) candidates, merged from the strongest down, a link's strength being
    the probability that its two rows tell one story; `together(ma, mb)` gives the (len(ma), len(mb))
    probabilities between the members of two groups, and two groups merge only when their mean reaches
    RETELLING_VERDICT."""
    uf = UnionFind(range(n))
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    apart: set[tuple[int, int, int, int]] = set()  # two groups found apart, as they were (roots and sizes)
    for a, b, strength in sorted(links, key=lambda t: -t[2]):
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        ma, mb = members[ra], members[rb]
        if len(ma) + len(mb) > max_group:
            continue
        seen = (min(ra, rb), max(ra, rb), len(members[min(ra, rb)]), len(members[max(ra, rb)]))
        if seen in apart:
            continue  # the same two groups, unchanged since: the same mean
        if len(ma) == len(mb) == 1:
            mean = strength  # two rows: the link's own judgment
        else:
            mean = float(np.mean(together(ma, mb)))
        if mean < RETELLING_VERDICT:
            apart.add(seen)
            continue
        uf.union(ra, rb)
        root = uf.find(ra)
        members[root] = ma + mb
        for other in (ra, rb):
            if other != root:
                members.pop(other, None)
    return [uf.find(i) for i in range(n)]


CENTROID_ROWS = 1 << 16  # members whose vectors are gathered at a time when centroids are summed


def group_centroids(vectors: np.ndarray, labels, min_size: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group ids, normalised mean vectors, sizes) of the groups with at least `min_size` members."""
    labels = np.asarray(labels, dtype=np.int64)
    dim = vectors.shape[1] if vectors.ndim == 2 else 1
    if not len(labels):
        return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32), np.zeros(0, dtype=np.int64)
    ids, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    keep = counts >= min_size
    # Sums of the kept groups only (most articles are a story of one: a 64-bit sum each would be 3 KB
    # an article), their members' vectors added in row order CENTROID_ROWS at a time.
    slot = np.cumsum(keep) - 1
    members = np.flatnonzero(keep[inverse])
    c = np.zeros((int(keep.sum()), dim), dtype=np.float64)
    for lo in range(0, len(members), CENTROID_ROWS):
        rows = members[lo:lo + CENTROID_ROWS]
        np.add.at(c, slot[inverse[rows]], np.asarray(vectors[rows], dtype=np.float32))
    c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    return ids[keep].astype(np.int64), np.ascontiguousarray(c, dtype=np.float32), counts[keep].astype(np.int64)
