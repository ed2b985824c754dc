"""The same-story bar (`same_story_threshold`) of a model, chosen by story folds on SemEval-2022 pairs:
each fold picks the cosine cut with the best accuracy of the verdict "same story" (Overall <= 2), and
the other fold scores it. Pairs that share an article are one story (evaluation.pair_story_groups);
every text is cleaned and embedded as POST /api/compare does it, on the runtime chosen for this CPU and the model's token
budget. Prints JSON. --langs keeps the pairs whose two articles are both in those languages (the
english model is for English: `--langs en`).

    python bench/same_story_bar.py --data ../shared/eval/same_story/semeval2022t8_dev.jsonl [--model multilingual] [--langs en]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from _common import machine

from recommender.config import Config
from recommender.embed.embedding import load_embedder
from recommender.evaluation.datasets import pair_story_groups, read_rows, story_fold
from recommender.evaluation.runs import pair_similarities

CUTS = np.round(np.arange(0.40, 0.701, 0.025), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="", help="english (default) or multilingual")
    ap.add_argument("--langs", default="", help="only pairs in these languages, comma-separated (default: all)")
    args = ap.parse_args()
    rows = read_rows(args.data, None)
    if args.langs:
        langs = set(args.langs.split(","))
        rows = [r for r in rows if r.get("lang1") in langs and r.get("lang2") in langs]
    config = Config.load({"model": args.model})
    _, _, cos, _, _ = pair_similarities(rows, load_embedder(config), config.max_tokens)
    cos = np.asarray(cos, dtype=np.float64)
    same = np.asarray([float(r["Overall"]) <= 2.0 for r in rows])
    folds = np.asarray([story_fold(g) for g in pair_story_groups(rows)])

    def accuracy(idx: np.ndarray, cut: float) -> float:
        return round(float(((cos[idx] >= cut) == same[idx]).mean()), 4)

    every = np.arange(len(rows))
    out = {"bench": "same_story_bar", **machine(), "model": config.model or "english", "backend": config.backend,
           "max_tokens": config.max_tokens, "shipped": config.same_story_threshold, "langs": args.langs or "all",
           "accuracy_by_cut": {str(c): accuracy(every, c) for c in CUTS}, "folds": []}
    for fold in (0, 1):
        on, off = np.flatnonzero(folds == fold), np.flatnonzero(folds != fold)
        best = max(CUTS, key=lambda c: accuracy(on, c))  # the lowest of equal cuts
        out["folds"].append({"chosen_on_fold": fold, "pairs": len(on), "cut": float(best),
                             "accuracy_there": accuracy(on, best), "held_out_accuracy": accuracy(off, best),
                             "held_out_at_shipped": accuracy(off, config.same_story_threshold)})
    shipped = config.same_story_threshold
    out["at_shipped"] = {"same_story_pairs_called": int((cos[same] >= shipped).sum()), "same_story_pairs": int(same.sum()),
                         "other_pairs_called": int((cos[~same] >= shipped).sum()), "other_pairs": int((~same).sum())}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
