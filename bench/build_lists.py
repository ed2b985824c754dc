"""The build's neighbour search past store.EXACT_LIMIT (indexing.RowLists: the rows cut into about sqrt(n)
lists, each query scanning a share of them with exact cosines) against the exact scan: how much of the
exact neighbours each share of the lists finds on real embeddings, and what it costs on synthetic rows
of a large build's size. Prints JSON.

    python bench/build_lists.py --data ../shared/corpus/wikinews_en.jsonl.gz --data ... \
        [--cache /tmp/real_vectors.npy] [--rows 300000] [--shares 0.05,0.1,0.2]

Real: every text of the --data files embedded as bench/ann_recall.py does (articles, paragraphs,
headlines, sentence pairs), 3,000 of them searched against all. Recall@21 (the neighbours linking
judges), @65 (those stored for related lists) and the share found of the exact neighbours within
cosine 0.5 (where retellings are). Synthetic: topic-clustered vectors (bench/_common.topic_vectors),
4,096 queries timed on one thread against the exact scan, extrapolated to all rows on two.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _common import machine, topic_vectors
from ann_recall import embed


def _recall(plan, vectors, queries, exact, exact_scores, share: float) -> dict:
    from recommender.index.indexing import RowLists

    lists = len(plan.centres)
    probe = min(lists, max(1, int(np.ceil(lists * share))))
    scores, rows = RowLists(plan.centres, plan.order, plan.starts, probe).search(vectors, queries, 65)
    close = [(set(b[s > 0.5].tolist()), set(a.tolist())) for a, b, s in zip(rows, exact, exact_scores)]
    return {"share": share, "probed": probe, "lists": lists,
            "recall_at_21": round(float(np.mean([len(set(a[:21]) & set(b[:21])) / 21 for a, b in zip(rows, exact)])), 4),
            "recall_at_65": round(float(np.mean([len(set(a) & set(b)) / 65 for a, b in zip(rows, exact)])), 4),
            "close_found": round(sum(len(x & y) for x, y in close) / max(1, sum(len(x) for x, _ in close)), 4)}


def main() -> None:
    import faiss

    from recommender.index.indexing import RowLists

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", default=[], help="files of real texts (as bench/ann_recall.py)")
    ap.add_argument("--cache", help="save/load the real embeddings here")
    ap.add_argument("--rows", type=int, default=300_000, help="synthetic rows for the cost")
    ap.add_argument("--shares", default="0.05,0.1,0.2")
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    shares = [float(s) for s in args.shares.split(",")]
    out: dict = {"bench": "build_lists", **machine()}
    rng = np.random.default_rng(0)
    if args.data:
        vectors = np.ascontiguousarray(embed([Path(p) for p in args.data], Path(args.cache) if args.cache else None),
                                       dtype=np.float32)
        queries = rng.choice(len(vectors), min(3000, len(vectors)), replace=False)
        exact_scores, exact = faiss.knn(vectors[queries], vectors, 65, faiss.METRIC_INNER_PRODUCT)
        plan = RowLists.of(vectors)
        # The real set is small (~30k rows, ~175 lists): each share is also read without the floor of
        # MIN_PROBED lists, as it would be among the thousands of lists of a large build.
        out["real"] = {"rows": len(vectors), "by_share": [_recall(plan, vectors, queries, exact, exact_scores, s)
                                                           for s in shares]}
        print(json.dumps(out["real"]), flush=True)
    vectors, _ = topic_vectors(args.rows, 384, rng)
    queries = rng.choice(args.rows, 4096, replace=False)
    t0 = time.time()
    faiss.knn(vectors[queries], vectors, 65, faiss.METRIC_INNER_PRODUCT)
    exact_s = time.time() - t0
    t0 = time.time()
    plan = RowLists.of(vectors)
    made = time.time() - t0
    costs = []
    for share in shares:
        probe = min(len(plan.centres), max(1, int(np.ceil(len(plan.centres) * share))))
        t0 = time.time()
        RowLists(plan.centres, plan.order, plan.starts, probe).search(vectors, queries, 65)
        took = time.time() - t0
        costs.append({"share": share, "probed": probe, "of_exact": round(took / exact_s, 3),
                      "build_seconds_two_cores": round(took * args.rows / 4096 / 2, 1)})
    out["synthetic"] = {"rows": args.rows, "lists_made_seconds": round(made, 1),
                        "exact_build_seconds_two_cores": round(exact_s * args.rows / 4096 / 2, 1), "by_share": costs}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
