"""Held-out scores for the cleaner's prose settings: split a labelled cleaning set (L3S-GN1 format:
`url`, `raw_text`, `clean_text`) into two folds by site, choose the settings on one fold, score them on
the other. Prints JSON. Usage: python bench/cleaning_folds.py --data ../shared/eval/cleaning/l3s_gn1_dev.jsonl
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.text import cleaning  # noqa: E402
from recommender.evaluation.datasets import read_rows, site_fold  # noqa: E402
from recommender.evaluation.metrics import token_prf  # noqa: E402

GRID = {"_CAPS_SENTENCE": [0.6, 0.7, 0.8, 0.9], "_CAPS_RUN": [0.2, 0.3, 0.4, 0.5], "_SHORT_COST": [4.0, 5.0, 6.0, 7.0]}


def fold_scores(rows: list[dict], folds: list[int]) -> list[float]:
    f1 = [[], []]
    for row, fold in zip(rows, folds):
        f1[fold].append(token_prf(cleaning.clean(row["raw_text"]).body, row["clean_text"])[2])
    return [round(sum(x) / len(x), 4) for x in f1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    rows = read_rows(args.data, None)
    folds = [site_fold(r.get("url", "")) for r in rows]
    shipped = {name: getattr(cleaning, name) for name in GRID}
    results = []
    for values in itertools.product(*GRID.values()):
        for name, value in zip(GRID, values):
            setattr(cleaning, name, value)
        results.append((dict(zip(GRID, values)), fold_scores(rows, folds)))
    for name, value in shipped.items():
        setattr(cleaning, name, value)
    out = {"bench": "cleaning_folds", "data": args.data, "documents": [folds.count(0), folds.count(1)],
           "shipped": {"settings": shipped, "f1_by_fold": fold_scores(rows, folds)}, "held_out": {}}
    for chosen_on in (0, 1):
        best = max(results, key=lambda r: r[1][chosen_on])
        out["held_out"][f"chosen_on_fold_{chosen_on}"] = {"settings": best[0], "f1_on_fold": best[1][chosen_on],
                                                         "f1_held_out": best[1][1 - chosen_on]}
    n0, n1 = out["documents"]
    held = (out["held_out"]["chosen_on_fold_1"]["f1_held_out"] * n0 + out["held_out"]["chosen_on_fold_0"]["f1_held_out"] * n1)
    out["held_out"]["f1_all_documents"] = round(held / (n0 + n1), 4)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
