"""A publisher's first minutes, timed: a fresh clone set up, the demo index built, the server started,
and its first requests. Prints JSON.

    python bench/first_run.py [--model-cache fresh|kept] [--requests 10]

The clone is of this checkout's HEAD, in a temporary folder, with its own new .venv (pip's download
cache is the machine's: a publisher's first install downloads the wheels once more). `--model-cache
fresh` (the default) exports the model again into an empty cache, as on a new machine; `kept` reuses
~/.cache/newsrec. The README's claims are printed beside what was measured.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, http, machine

CLAIMS = {"demo_serving_seconds": 180, "first_related_ms": 200}


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-cache", choices=("fresh", "kept"), default="fresh")
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--port", type=int, default=8131)
    args = ap.parse_args()
    out: dict = {"bench": "first_run", **machine(), "model_cache": args.model_cache}
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "newsrec"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        if args.model_cache == "fresh":
            env["NEWSREC_CACHE_DIR"] = str(Path(tmp) / "cache")
        env.update(NEWSREC_INDEX="index/demo", PORT=str(args.port))
        out["setup_seconds"] = round(timed(["scripts/setup"], clone, env), 1)
        out["build_seconds"] = round(timed([".venv/bin/newsrec", "build", "--input", "demo/wikinews_demo.jsonl.gz",
                                            "--input", "demo/scraped", "--index", "index/demo"], clone, env), 1)
        started = time.perf_counter()
        server = subprocess.Popen(["scripts/demo"], cwd=clone, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{args.port}"
        try:
            while True:
                try:
                    http(f"{url}/healthz")
                    break
                except Exception:
                    if server.poll() is not None or time.perf_counter() - started > 300:
                        raise RuntimeError("the demo server did not start")
                    time.sleep(0.2)
            out["serve_seconds"] = round(time.perf_counter() - started, 1)
            body = {"title": "Council expands bus network",
                    "body": "The city council voted on Tuesday to expand the bus network, adding four routes."}
            times = []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                http(f"{url}/api/related", body)
                times.append(round(1000 * (time.perf_counter() - t0), 1))
            out["related_by_text_ms"] = times
            t0 = time.perf_counter()
            http(f"{url}/api/related?id=sample-sheinbaum")
            out["first_related_by_id_ms"] = round(1000 * (time.perf_counter() - t0), 1)
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)
    out["demo_serving_seconds"] = round(out["setup_seconds"] + out["build_seconds"] + out["serve_seconds"], 1)
    out["claims"] = CLAIMS
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
