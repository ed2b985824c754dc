"""The IVF-PQ index a build writes above store.PQ_LIMIT articles, at that size, on synthetic vectors:
build time, index size on disk and in memory (a fresh process reading it, as a server does), query
latency at the chosen probes (one thread), and recall@10 against exact search for a sample of
queries. Synthetic vectors are harder than real ones (no near neighbours): recall on real embeddings
is bench/ann_recall.py --index ivf-pq. Prints JSON.

    python bench/ann_scale.py [--n 10000000] [--queries 200] [--dir /tmp/ann_scale]

The vectors are generated chunk by chunk from a seed (never all in memory; 10M x 384 float32 would be
15 GB), trained and added through store.new_ivf, the function the build uses.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import ROOT, machine

CHUNK = 250_000
DIM = 384


def _centres(n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((max(16, n // 200), DIM)).astype(np.float32)


def chunk(start: int, size: int, centres: np.ndarray) -> np.ndarray:
    """Rows start..start+size of the synthetic set: unit vectors around topic centres (as _common does)."""
    rng = np.random.default_rng(1_000_003 + start)
    v = centres[rng.integers(0, len(centres), size)] + 0.9 * rng.standard_normal((size, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def build(n: int, path: Path) -> dict:
    import faiss

    from recommender.index.store import new_ivf, train_size

    centres = _centres(n)
    t0 = time.time()
    sample = chunk(n + 7, train_size(n, pq_limit=0), centres)  # rows from the same distribution, not in the index
    index, kind, extra = new_ivf(sample, n, pq_limit=0)
    trained = time.time() - t0
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        index.add_with_ids(chunk(start, size, centres), np.arange(start + 1, start + size + 1, dtype=np.int64))
    faiss.write_index(index, str(path))
    return {"index_type": kind, **extra, "train_seconds": round(trained, 1),
            "build_seconds": round(time.time() - t0, 1), "file_mb": round(path.stat().st_size / 2**20, 1)}


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


def serve(n: int, path: Path, queries: int) -> dict:
    """In a fresh process: load the index as a server would (and fully, to count it), search one thread."""
    import faiss

    faiss.omp_set_num_threads(1)
    before = _rss_mb()
    index = faiss.read_index(str(path))
    loaded_mb = _rss_mb() - before
    manifest_probe = json.loads(os.environ["ANN_EXTRA"])
    ivf = faiss.extract_index_ivf(index)
    centres = _centres(n)
    rng = np.random.default_rng(5)
    q_rows = np.sort(rng.choice(n, size=queries, replace=False))
    # Queries: indexed rows perturbed (an article's rewrite), and their exact top 10 by a full scan.
    q = np.vstack([chunk(int(r) - int(r) % CHUNK, CHUNK, centres)[int(r) % CHUNK].copy() for r in q_rows])  # copy: a view keeps its chunk
    q = q + 0.3 * rng.standard_normal(q.shape).astype(np.float32)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    best = np.full((queries, 10), -np.inf, dtype=np.float32)
    best_ids = np.zeros((queries, 10), dtype=np.int64)
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        scores = q @ chunk(start, size, centres).T
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        cand_s = np.concatenate([best, np.take_along_axis(scores, top, 1)], 1)
        cand_i = np.concatenate([best_ids, top + start + 1], 1)
        keep = np.argsort(-cand_s, axis=1)[:, :10]
        best, best_ids = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_i, keep, 1)
    out = {"loaded_mb": round(loaded_mb, 1), "by_probes": {}}
    rescore = int(manifest_probe.get("rescore", 1))
    for nprobe in sorted({int(manifest_probe["nprobe"]), int(manifest_probe["nprobe"]) // 2, int(manifest_probe["nprobe"]) * 2}):
        ivf.nprobe = nprobe
        t0 = time.perf_counter()
        _, found = index.search(q, 10 * rescore)
        ms = (time.perf_counter() - t0) * 1000 / queries
        codes = np.mean([len(set(t) & set(f[:10])) / 10 for t, f in zip(best_ids, found)])
        out["by_probes"][str(nprobe)] = {"ms_per_query": round(ms, 2), "recall_at_10_codes_only": round(float(codes), 4),
                                         "share_of_lists": round(nprobe / ivf.nlist, 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dir", default="/tmp/ann_scale")
    ap.add_argument("--serve-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = Path(args.dir) / f"ivfpq-{args.n}.index"
    if args.serve_only:
        print(json.dumps(serve(args.n, path, args.queries)))
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    built = build(args.n, path)
    served = subprocess.run([sys.executable, __file__, "--n", str(args.n), "--queries", str(args.queries), "--dir",
                             args.dir, "--serve-only"], env={**os.environ, "ANN_EXTRA": json.dumps(built)},
                            cwd=ROOT, capture_output=True, text=True, check=True)
    print(json.dumps({"bench": "ann_scale", **machine(), "vectors": args.n, **built,
                      **json.loads(served.stdout)}, indent=2))


if __name__ == "__main__":
    main()
