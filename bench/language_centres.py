"""How much of each language's centre the multilingual model takes away (models.LANGUAGE_CENTRE_WEIGHT)
and how many tokens it reads (models.MODEL_SETTINGS), chosen together by story folds on SemEval-2022
pairs: each fold picks the pair of settings, the other fold scores it.

Pairs that share an article are one story (evaluation.pair_story_groups), and a whole story lands
in one fold. Every text is cleaned as the service cleans it.

    python bench/language_centres.py --data ../shared/eval/same_story/semeval2022t8_dev.jsonl [--tokens 128,160]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from _common import machine

from recommender.config import Config
from recommender.embed.embedding import article_text, load_embedder
from recommender.evaluation.datasets import as_served, pair_story_groups, read_rows, story_fold
from recommender.evaluation.metrics import pearson
from recommender.embed.models import Centres

WEIGHTS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokens", default="128,160", help="token budgets to compare, comma-separated")
    args = ap.parse_args()
    rows = read_rows(args.data, None)
    gold = [-float(r["Overall"]) for r in rows]
    folds = [story_fold(g) for g in pair_story_groups(rows)]
    served_a, served_b = [as_served(r["text1"]) for r in rows], [as_served(r["text2"]) for r in rows]

    def fold_pearson(s: np.ndarray, fold: int | None) -> float:
        idx = [i for i, f in enumerate(folds) if fold is None or f == fold]
        return round(pearson([s[i] for i in idx], [gold[i] for i in idx]), 4)

    out = {}
    for tokens in [int(t) for t in args.tokens.split(",")]:
        config = Config.load({"model": "multilingual", "max_tokens": tokens})
        embedder = load_embedder(config)
        centres, embedder.centres = embedder.centres, Centres()  # raw model vectors; centred below
        texts_a = [article_text(t, b, tokens) for t, b in served_a]
        texts_b = [article_text(t, b, tokens) for t, b in served_b]
        raw_a, raw_b = embedder.encode(texts_a), embedder.encode(texts_b)

        def scores(centred: Centres) -> np.ndarray:
            return (centred.apply(raw_a, texts_a) * centred.apply(raw_b, texts_b)).sum(axis=1)

        table = {(tokens, None): scores(Centres(centres.common))}
        table.update({(tokens, w): scores(Centres(centres.common, centres.languages, w)) for w in WEIGHTS})
        out.update({key: {"fold0": fold_pearson(s, 0), "fold1": fold_pearson(s, 1), "all": fold_pearson(s, None)}
                    for key, s in table.items()})
    held_out = {}
    for pick, score in ((0, 1), (1, 0)):
        best = max(out, key=lambda key: out[key][f"fold{pick}"])
        held_out[f"chosen on fold {pick}"] = {"tokens": best[0], "weight": best[1],
                                              f"fold {score} held out": out[best][f"fold{score}"]}
    out = {f"{t} tokens, " + ("common centre only" if w is None else f"language centres x{w}"): v for (t, w), v in out.items()}
    print(json.dumps({"bench": "language_centres", **machine(), "pairs": len(rows),
                      "pairs_per_fold": [folds.count(0), folds.count(1)], "pearson": out, "held_out": held_out}, indent=1))


if __name__ == "__main__":
    main()
