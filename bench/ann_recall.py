"""Recall@10 of the approximate index (what `newsrec build` writes above EXACT_LIMIT articles) against
exact search, on real embeddings. Prints JSON.

    python bench/ann_recall.py --data ../shared/corpus/wikinews_en.jsonl.gz --data more.jsonl ... \
        [--cache /tmp/real_vectors.npy] [--queries 2000]

Every text of every file is embedded with the serving embedder: articles (title + body), each
paragraph of an article body, headlines (CSV TITLE), sentence pairs (text1/text2). The approximate
index is built by `store.build_faiss` with the exact limit forced to 0 (and the PQ limit too with
`--index ivf-pq`), so its lists and probes follow the same rule as a large index; queries are held-out texts (not in the index), like an incoming
article. Recall@10 = share of the exact top 10 found in the approximate top 10, per probe count.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _common import ROOT, machine  # noqa: F401  (puts the project on sys.path)
from recommender.evaluation.datasets import read_rows  # noqa: E402

TEXT_FIELDS = ("text1", "text2", "raw_text", "description", "TITLE")


def texts_of(path: Path) -> list[str]:
    out: list[str] = []
    for row in read_rows(path, None):
        title, body = str(row.get("title") or ""), str(row.get("body") or row.get("text") or "")
        if body:
            out.append(f"{title}. {body}" if title else body)
            out.extend(p.strip() for p in body.split("\n") if len(p.strip()) > 80)
        for f in TEXT_FIELDS:
            if isinstance(row.get(f), str) and len(row[f]) > 20:
                out.append(row[f])
    return out


def embed(paths: list[Path], cache: Path | None) -> np.ndarray:
    if cache and cache.exists():
        return np.load(cache)
    from recommender.config import Config
    from recommender.embed.embedding import article_text, load_embedder

    config = Config.load({})
    texts = sorted({t for p in paths for t in texts_of(p)})
    embedder = load_embedder(config)
    t0 = time.time()
    vectors = embedder.encode([article_text("", t, config.max_tokens) for t in texts], batch_size=32, progress=True)
    print(json.dumps({"embedded": len(texts), "seconds": round(time.time() - t0, 1)}), flush=True)
    if cache:
        np.save(cache, vectors)
    return vectors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", action="append", required=True, help="corpus or evaluation file (repeatable)")
    ap.add_argument("--cache", help="save/load the embeddings here")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--nprobe", default="8,16,32,64", help="probe counts to try besides the one the build chooses")
    ap.add_argument("--index", choices=["ivf-sq8", "ivf-pq"], default="ivf-sq8",
                    help="which approximate index (ivf-pq: what a build above store.PQ_LIMIT writes)")
    args = ap.parse_args()
    import faiss

    from recommender.index.store import build_faiss

    faiss.omp_set_num_threads(1)
    vectors = np.ascontiguousarray(embed([Path(p) for p in args.data], Path(args.cache) if args.cache else None),
                                   dtype=np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(vectors))
    q_rows, base_rows = order[: args.queries], np.sort(order[args.queries:])
    base, queries = vectors[base_rows], vectors[q_rows]
    keys = np.arange(1, len(base) + 1, dtype=np.int64)
    t0 = time.time()
    approx, kind, extra = build_faiss(base, keys, exact_limit=0, pq_limit=0 if args.index == "ivf-pq" else None)
    served = 10 * int(extra.get("rescore", 1))
    built = time.time() - t0
    exact = faiss.IndexFlatIP(base.shape[1])
    exact.add(base)
    _, truth = exact.search(queries, 10)
    truth = keys[truth]
    result = {"bench": "ann_recall", **machine(), "vectors": len(base), "queries": len(queries), "index_type": kind,
              **extra, "build_seconds": round(built, 1), "recall_at_10": {}}
    ivf = faiss.extract_index_ivf(approx)
    for nprobe in sorted({int(x) for x in args.nprobe.split(",")} | {int(extra["nprobe"])}):
        ivf.nprobe = nprobe
        t0 = time.perf_counter()
        _, found = approx.search(queries, max(64, served))
        ms = (time.perf_counter() - t0) * 1000 / len(queries)
        recall = np.mean([len(set(t) & set(f[:10])) / 10 for t, f in zip(truth, found)])
        # What Snapshot.search serves: the 64 found re-scored with the raw vectors, then the top 10.
        rescored = []
        for q, f in zip(queries, found):
            f = f[:64][f[:64] >= 0]
            exact_scores = base[f - 1] @ q
            rescored.append(f[np.argsort(-exact_scores)[:10]])
        recall_rescored = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, rescored)])
        # What Snapshot.search serves for k=10: 10 x the index's rescore factor found, re-scored, the best 10.
        as_served = []
        for q, f in zip(queries, found):
            f = f[:served][f[:served] >= 0]
            as_served.append(f[np.argsort(-(base[f - 1] @ q))[:10]])
        recall_served = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, as_served)])
        result["recall_at_10"][str(nprobe)] = {"codes_only": round(float(recall), 4),
                                               "rescored_from_64": round(float(recall_rescored), 4),
                                               f"served_rescored_from_{served}": round(float(recall_served), 4),
                                               "ms_per_query": round(ms, 3),
                                               "share_of_lists": round(nprobe / ivf.nlist, 4)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
