"""How far MSVCode's own annotators agree on its fine groups, beside what the embedding model's cosine
tells of them: the ceiling a retelling verdict on that set is measured against.

    python bench/msvcode_agreement.py --data ../shared/eval/same_story/msvcode_clusters_dev.jsonl [--model multilingual]

The set ships three human clusterings of each query's search results; `gold1` (fine same-story groups)
is the one the pair model is scored on (docs/pairs.md): a retelling is two results of one `gold1` group,
the other class two results of one query in different `gold1` groups. Each other clustering is read as a
verdict on those same pairs (same group or not; a result it left out of every group is "not the same"),
and scored by balanced accuracy against `gold1`, on all the pairs and on those both clusterings grouped.
Beside it, the model's cosine on the same pairs: its AUC, and the balanced accuracy of the best cosine
bar chosen on these pairs themselves (in sample: a ceiling, not a held-out number).
"""
from __future__ import annotations

import argparse
import itertools
import json
from collections import defaultdict

import numpy as np
from _common import machine, reference_config

from recommender.embed.embedding import article_text, load_embedder
from recommender.evaluation.datasets import read_rows
from recommender.evaluation.metrics import auc, balanced_accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="english")
    args = ap.parse_args()
    rows = read_rows(args.data, None)
    by_topic = defaultdict(list)
    for i, r in enumerate(rows):
        if r.get("gold1"):
            by_topic[r["topic"]].append(i)
    pairs = np.asarray([p for members in by_topic.values() for p in itertools.combinations(members, 2)])
    a, b = pairs[:, 0], pairs[:, 1]

    def same(key: str) -> tuple[np.ndarray, np.ndarray]:
        ga = np.asarray([rows[i].get(key) for i in a], dtype=object)
        gb = np.asarray([rows[i].get(key) for i in b], dtype=object)
        grouped = np.asarray([x is not None and y is not None for x, y in zip(ga, gb)])
        return grouped & (ga == gb), grouped

    truth, _ = same("gold1")
    report: dict = {"pairs": {"same group": int(truth.sum()), "other group": int((~truth).sum())}, "annotators": {}}
    for key in ("gold2", "gold3"):
        said, grouped = same(key)
        report["annotators"][key] = {"all pairs": round(balanced_accuracy(said, truth), 3),
                                     "pairs it grouped": round(balanced_accuracy(said[grouped], truth[grouped]), 3)}

    config = reference_config(args.model)
    texts = [article_text(r["title"], r.get("description", ""), config.max_tokens) for r in rows]
    vectors = load_embedder(config).encode(texts, batch_size=16, progress=False)
    cos = (vectors[a] * vectors[b]).sum(axis=1)
    bars = np.unique(np.round(cos, 3))
    best = max(bars, key=lambda bar: balanced_accuracy(cos >= bar, truth))
    report["cosine"] = {"model": args.model, "backend": config.backend, "auc": round(auc(cos, truth), 3),
                        "best bar, in sample": round(float(best), 3),
                        "its balanced accuracy": round(balanced_accuracy(cos >= best, truth), 3)}
    report["machine"] = machine()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
