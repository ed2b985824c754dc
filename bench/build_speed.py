"""`newsrec build` throughput on the shipped demo corpus, end to end (cleaning, embedding, MinHash,
duplicate links, groups, snapshot write). Prints JSON.

    python bench/build_speed.py [--backend onnx] [--model english|multilingual|PATH] [--runs 2] [--shape headlines]

`--shape headlines`: the same articles as a headline-only feed gives them (titles, no bodies).
"""
from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time

from _common import ROOT, machine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="", help="onnx, openvino, ... (default: the model's own)")
    ap.add_argument("--model", default="", help="english (default), multilingual or a local model folder")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--shape", choices=("whole", "headlines"), default="whole")
    args = ap.parse_args()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            inputs = ["--input", "demo/wikinews_demo.jsonl.gz", "--input", "demo/scraped"]
            if args.shape == "headlines":
                with gzip.open(ROOT / "demo" / "wikinews_demo.jsonl.gz", "rt", encoding="utf-8") as fh, \
                        open(f"{tmp}/headlines.jsonl", "w", encoding="utf-8") as out:
                    for line in fh:
                        out.write(json.dumps({**json.loads(line), "body": ""}) + "\n")
                inputs = ["--input", f"{tmp}/headlines.jsonl"]
            t0 = time.time()
            out = subprocess.run(
                [sys.executable, "-m", "web.cli", "build", *inputs, "--index", f"{tmp}/idx", "--quiet"]
                + (["--model", args.model] if args.model else []) + (["--backend", args.backend] if args.backend else []),
                cwd=ROOT, capture_output=True, text=True, check=True)
            report = json.loads(out.stdout)
            report["wall_seconds_with_model_load"] = round(time.time() - t0, 1)
            runs.append(report)
    best = max(runs, key=lambda r: r["docs_per_second"])
    print(json.dumps({"bench": "build_speed", "shape": args.shape, "backend": args.backend or "the model's own", "model": args.model or "english", **machine(), "articles": best["count"],
                      "docs_per_second_end_to_end": best["docs_per_second"], "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
