"""The Ray build against the local build of the same input, on this machine: a local Ray cluster of
`--nodes` nodes (one CPU each, tests/ray_cluster.py) is started first and its start-up is timed
apart; then `newsrec build` runs locally and with `--engine ray`, and both indexes are compared.
Prints JSON.

    python bench/ray_build.py --data ../shared/corpus/wikinews_en.jsonl.gz [--nodes 2]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time

from _common import ROOT, machine

from tests.conftest import index_summary
from tests.ray_cluster import ENV, LocalRayCluster


def _build(data: str, index: str, *extra: str) -> dict:
    t0 = time.time()
    out = subprocess.run([sys.executable, "-m", "web.cli", "build", "--input", data, "--index", index,
                          "--quiet", *extra], cwd=ROOT, env={**ENV, "PYTHONPATH": str(ROOT)}, capture_output=True,
                         text=True, check=True)
    report = json.loads(out.stdout)
    report["wall_seconds_with_model_load"] = round(time.time() - t0, 1)
    for name, pattern in (("connect_seconds", r"connected in ([\d.]+)s"), ("first_rows_seconds", r"first rows back ([\d.]+)s")):
        found = re.search(pattern, out.stderr)
        if found:
            report[name] = float(found.group(1))
    return report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="articles (JSONL, optionally .gz)")
    ap.add_argument("--nodes", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        local = _build(args.data, f"{tmp}/local")
        t0 = time.time()
        with LocalRayCluster(nodes=args.nodes, cpus=1) as address:
            startup = time.time() - t0
            ray = _build(args.data, f"{tmp}/ray", "--engine", "ray", "--ray-address", address)
        a, b = index_summary(f"{tmp}/local"), index_summary(f"{tmp}/ray")
        same = {"ids": a["ids"] == b["ids"], "dup_groups": a["dup_groups"] == b["dup_groups"],
                "story_groups": a["story_groups"] == b["story_groups"],
                "min_cosine": round(min(float(a["vectors"][i] @ b["vectors"][i]) for i in a["ids"]), 6)}
    print(json.dumps({
        "bench": "ray_build", **machine(), "articles": local["count"], "nodes": args.nodes,
        "cluster_startup_seconds": round(startup, 1),
        "local_docs_per_second": local["docs_per_second"], "ray_docs_per_second": ray["docs_per_second"],
        "ray_over_local": round(ray["docs_per_second"] / local["docs_per_second"], 3),
        "same_index": same, "local": local, "ray": ray}, indent=2))


if __name__ == "__main__":
    main()
