"""Cleaner throughput. Prints JSON.

- Scraped text: seconds for 1 MB of scraped text, and MB/s.
- HTML (with `--html FILE`, JSONL rows with an `html` field, optionally .gz, e.g. the trafilatura
  benchmark pages): clean_html() pages/s beside trafilatura's own extract() on the same pages, in
  the same run, one core.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.evaluation.datasets import read_rows  # noqa: E402
from recommender.text.cleaning import clean, clean_html  # noqa: E402

PARA = ("The city council voted on Tuesday to expand the bus network, adding four routes that will serve "
        "the northern suburbs, officials said.")


def text_speed() -> dict:
    unit = "\n\n".join([PARA, "ALSO READ: Storm closes airport", PARA.replace("council", "board"), "Share this"])
    raw = "\n\n".join(unit.replace("bus", f"bus{i}") for i in range(4500))
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        clean(raw)
        runs.append(time.perf_counter() - started)
    best = min(runs)
    return {"bytes": len(raw.encode()), "seconds_best_of_5": round(best, 3), "mb_per_s": round(len(raw.encode()) / 1e6 / best, 2)}


def html_speed(path: str, limit: int) -> dict:
    import trafilatura

    pages = [row["html"] for row in read_rows(path, limit)]
    out = {"pages": len(pages)}
    for name, fn in (("trafilatura_extract", lambda p: trafilatura.extract(p)), ("newsrec_clean_html", clean_html)):
        fn(pages[0])  # warm-up (imports, caches)
        started = time.perf_counter()
        for page in pages:
            try:
                fn(page)
            except Exception:  # a page trafilatura cannot read is still a page timed
                pass
        seconds = time.perf_counter() - started
        out[name] = {"seconds": round(seconds, 2), "pages_per_s": round(len(pages) / seconds, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--html", help="JSONL(.gz) of pages with an 'html' field")
    ap.add_argument("--limit", type=int, default=300, help="pages to time (default 300)")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    result = {"bench": "clean_speed", "text": text_speed(), "machine": platform.machine(),
              "python": platform.python_version()}
    if args.html:
        result["html"] = html_speed(args.html, args.limit)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
