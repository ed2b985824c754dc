"""The build's neighbour search (each row's nearest rows: the step that grows with the square of the
rows) in this process and on a local Ray cluster of one and of two nodes, each node a core of its own
(tests/ray_cluster.py, pinned with taskset), on synthetic vectors with topic structure. Prints JSON.

    python bench/ray_neighbours.py [--sizes 50000,100000] [--k 65]

Every run's neighbours are checked equal to the local search's.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from _common import ROOT, machine

from tests.ray_cluster import LocalRayCluster


def vectors_of(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(16, n // 200), dim)).astype(np.float32)
    v = centres[rng.integers(0, len(centres), n)] + 0.9 * rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def on_cluster(vectors: np.ndarray, k: int, nodes: int, expected) -> dict:
    import ray

    from recommender.index.distributed import WORKER_ENV, neighbours_on_ray, release

    with LocalRayCluster(nodes=nodes, cpus=1, pin=True) as address:
        ray.init(address=address, runtime_env={"env_vars": {**WORKER_ENV, "PYTHONPATH": str(ROOT)}},
                 log_to_driver=False, logging_level="ERROR")
        try:
            neighbours_on_ray(vectors[:2000], np.arange(2000), k)  # workers started, imports done
            t0 = time.perf_counter()
            scores, rows = neighbours_on_ray(vectors, np.arange(len(vectors)), k)
            seconds = time.perf_counter() - t0
        finally:
            release()
    return {"seconds": round(seconds, 1), "same_as_local": bool(np.array_equal(rows, expected))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50000,100000")
    ap.add_argument("--k", type=int, default=65)
    args = ap.parse_args()
    from recommender.index.indexing import neighbours

    out = {"bench": "ray_neighbours", **machine(), "sizes": []}
    for n in (int(s) for s in args.sizes.split(",")):
        vectors = vectors_of(n)
        t0 = time.perf_counter()
        _, expected = neighbours(vectors, np.arange(n), args.k)
        entry = {"rows": n, "local_seconds_all_cores": round(time.perf_counter() - t0, 1),
                 "one_node": on_cluster(vectors, args.k, 1, expected),
                 "two_nodes": on_cluster(vectors, args.k, 2, expected)}
        entry["speedup_two_over_one"] = round(entry["one_node"]["seconds"] / entry["two_nodes"]["seconds"], 2)
        out["sizes"].append(entry)
        print(json.dumps(entry), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    main()
