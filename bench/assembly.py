"""The build's assembly on one machine, stage by stage: from rows already cleaned, embedded and signed
(synthetic: topic-clustered vectors, news-shaped bodies, distinct signatures) to a published snapshot.
Each size runs in a process of its own, whose peak memory is the driver's. Prints JSON.

    python bench/assembly.py [--sizes 25000,50000,100000] [--ray-nodes 2]

The rows are made ahead by another process and written to a folder (indexing.RowsWriter, as
`newsrec build --engine ray` writes the rows its actors send back), from which the build reads them
(Prepared.open: vectors and signatures memory-mapped a block at a time, bodies read one by one).
Stages (BuildReport.stages): neighbours (each row's nearest rows: exact up to store.EXACT_LIMIT, then
in the rows' lists, indexing.RowLists), links (the pair judgments of each row's neighbours and copy candidates), groups
(union-find and average linkage over the links), write (the snapshot: vectors, metadata, FTS5 and its
postings, bands). Between two sizes, each stage's growth exponent: log(t2 / t1) / log(n2 / n1).
Memory: the driver's peak before the build (the rows' records read back) and at the end, and the highest
resident memory sampled (every 0.2 s) within each stage (keying, linking: neighbours and links a chunk of
rows at a time, groups, write), split into the process's own (anonymous) memory, the pages of files it
maps (the rows), and the pages of Ray's object store mapped into it (shared memory: what it put there,
or read in place). With --ray-nodes N the neighbour search and the judging run on a local Ray cluster of N one-core nodes,
each pinned to a core (tests/ray_cluster.py), as `newsrec build --engine ray` runs them; the driver is
this process.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import ROOT, machine, synthetic_bodies, topic_blocks


class _Vectors:
    """What a build records of the model that made the rows (they come prepared)."""

    name, backend, dim, vectors = "all-MiniLM-L6-v2", "onnx", 384, ""


def make_rows(n: int, folder: Path) -> None:
    """n synthetic articles' rows written to `folder` a block at a time (none of them held at once)."""
    from recommender.evidence.duplicates import SIGNATURE_WIDTH
    from recommender.index.indexing import RowsWriter
    from recommender.index.store import Record

    rng, words = np.random.default_rng(0), np.random.default_rng(1)
    writer = RowsWriter(folder, 384, keep_heads=False)
    for start, vectors, topic in topic_blocks(n, 384, rng):
        bodies = synthetic_bodies(topic, words)
        records = [Record(key=0, id=f"a{i}", title=f"Synthetic article {i}", body=bodies[i - start], body_hash=f"h{i}",
                          published=f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", source=f"outlet{i % 7}")
                   for i in range(start, start + len(vectors))]
        writer.add(records, vectors, words.integers(0, 2**32, (len(vectors), SIGNATURE_WIDTH), dtype=np.uint32))
    writer.close()


def one(n: int, ray_nodes: int = 0) -> dict:
    from recommender.config import Config
    from recommender.index.indexing import Prepared, build_index

    config = Config.load({"reload_interval": 0}, environ={})
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        t0 = time.time()
        subprocess.run([sys.executable, __file__, "--make", str(n), "--folder", str(tmp / "rows")], cwd=ROOT, check=True)
        made = time.time() - t0
        prepared = Prepared.open(tmp / "rows")
        if ray_nodes:
            import ray

            from recommender.index.distributed import WORKER_ENV, judge_on_ray, release, search_rows_on_ray
            from tests.ray_cluster import LocalRayCluster

            address = stack.enter_context(LocalRayCluster(nodes=ray_nodes, cpus=1, pin=True))
            ray.init(address=address, runtime_env={"env_vars": {**WORKER_ENV, "PYTHONPATH": str(ROOT)}},
                     log_to_driver=False, logging_level="ERROR")
            prepared.search, prepared.judging, prepared.release = search_rows_on_ray, judge_on_ray, release
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with _RssSampler() as rss:
            report = build_index(prepared, tmp / "idx", _Vectors(), config)
            ended = time.time()
    # Each stage's highest sampled resident memory. The build ends with the groups and the write, one
    # after the other; before them the linking, which searches and judges a chunk of rows at a time
    # (its neighbours and links stages interleave); before that the rows are keyed.
    bounds, at = {}, ended
    for stage, seconds in (("write", report.stages["write"]), ("groups", report.stages["groups"]),
                           ("linking", report.stages.get("neighbours", 0.0) + report.stages["links"])):
        bounds[stage] = (at - seconds, at)
        at -= seconds
    bounds = {"keying": (rss.started, at), **dict(reversed(list(bounds.items())))}
    by_stage = {stage: max([(round(a + f + m, 1), round(a, 1), round(f, 1), round(m, 1)) for t, a, f, m in rss.samples
                            if lo <= t <= hi] or [(0.0, 0.0, 0.0, 0.0)])
                for stage, (lo, hi) in bounds.items()}
    return {"articles": n, "ray_nodes": ray_nodes, "rows_made_seconds": round(made, 1), "seconds": round(report.seconds, 1),
            "stages": {k: round(v, 2) for k, v in report.stages.items()},
            "driver_peak_before_build_mb": round(before, 1), "driver_rss_by_stage_mb": by_stage,
            "driver_rss_by_stage_is": "highest (all, own memory, mapped files, object store pages mapped)",
            "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


class _RssSampler:
    """This process's resident memory every 0.2 s: (time, own anonymous MB, mapped files MB, shared-memory MB)."""

    def __init__(self):
        import threading

        self.samples: list[tuple[float, float, float, float]] = []
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with open("/proc/self/status") as fh:
                kb = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in fh) if k.startswith("Rss")}
            self.samples.append((time.time(), kb["RssAnon"] / 1024, kb.get("RssFile", 0) / 1024, kb.get("RssShmem", 0) / 1024))

    def __enter__(self) -> "_RssSampler":
        self.started = time.time()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="25000,50000,100000")
    ap.add_argument("--ray-nodes", type=int, default=0, help="neighbours on a local Ray cluster of this many nodes")
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--make", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--folder", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        make_rows(args.make, Path(args.folder))
        return
    if args.one:
        print(json.dumps(one(args.one, args.ray_nodes)))
        return
    runs = []
    for n in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--ray-nodes", str(args.ray_nodes)], cwd=ROOT,
                             check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]), flush=True)
    growth = {}
    for a, b in zip(runs, runs[1:]):
        ratio = math.log(b["articles"] / a["articles"])
        growth[f"{a['articles']}->{b['articles']}"] = {
            stage: round(math.log(max(b["stages"][stage], 1e-3) / max(a["stages"][stage], 1e-3)) / ratio, 2)
            for stage in a["stages"]}
    print(json.dumps({"bench": "assembly", **machine(), "runs": runs, "growth_exponent": growth}, indent=2))


if __name__ == "__main__":
    main()
