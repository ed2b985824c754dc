"""Cleaner throughput: seconds for 1 MB of scraped text, and MB/s. Prints JSON."""
from __future__ import annotations

import json
import platform
import time

from recommender.cleaning import clean

PARA = ("The city council voted on Tuesday to expand the bus network, adding four routes that will serve "
        "the northern suburbs, officials said.")


def main() -> None:
    unit = "\n\n".join([PARA, "ALSO READ: Storm closes airport", PARA.replace("council", "board"), "Share this"])
    raw = "\n\n".join(unit.replace("bus", f"bus{i}") for i in range(4500))
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        clean(raw)
        runs.append(time.perf_counter() - started)
    best = min(runs)
    print(json.dumps({"bench": "clean_speed", "bytes": len(raw.encode()), "seconds_best_of_5": round(best, 3),
                      "mb_per_s": round(len(raw.encode()) / 1e6 / best, 2), "machine": platform.machine(),
                      "python": platform.python_version()}))


if __name__ == "__main__":
    main()
