"""SemEval-2022 Task 8 pairs scored through POST /api/compare as served: each pair's two texts go to
the Flask app as scraped bodies, and the answer's `scores.cosine` is correlated with -Overall.
Prints Pearson over all pairs, English pairs, every language pair with 20+ pairs and the story
folds of bench/language_centres.py.

    python bench/compare_semeval.py --data ../shared/eval/same_story/semeval2022t8_dev.jsonl [--model multilingual]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

from _common import machine

from recommender import Recommender
from recommender.config import Config
from recommender.evaluation.datasets import pair_story_groups, read_rows, story_fold
from recommender.evaluation.metrics import pearson
from web import create_app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="multilingual")
    args = ap.parse_args()
    rows = read_rows(args.data, None)
    with tempfile.TemporaryDirectory() as tmp:  # comparing two texts needs no index
        settings = {"model": args.model, "index": f"{tmp}/idx", "reload_interval": 0, "text_rate_limit": 0}
        client = create_app(settings, recommender=Recommender(Config.load(settings))).test_client()
        started = time.time()
        cosines, levels = [], []
        for r in rows:
            answer = client.post("/api/compare", json={"a": {"body": r["text1"]}, "b": {"body": r["text2"]}})
            if answer.status_code != 200:
                raise SystemExit(f"pair {r['pair_id']}: {answer.status_code} {answer.get_json()}")
            cosines.append(answer.get_json()["scores"]["cosine"])
            levels.append(answer.get_json()["level"])
        seconds = time.time() - started
    gold = [-float(r["Overall"]) for r in rows]

    def score(idx: list[int]) -> dict:
        return {"pairs": len(idx), "pearson": round(pearson([cosines[i] for i in idx], [gold[i] for i in idx]), 4)}

    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(f"{r['lang1']}-{r['lang2']}", []).append(i)
    folds = [story_fold(g) for g in pair_story_groups(rows)]
    same = [i for i, r in enumerate(rows) if float(r["Overall"]) <= 2.0]
    print(json.dumps({
        "bench": "compare_semeval", **machine(), "model": args.model, "pairs_per_second": round(len(rows) / seconds, 1),
        "all": score(list(range(len(rows)))),
        "english": score(groups.get("en-en", [])),
        "by_language": {k: score(v) for k, v in sorted(groups.items()) if len(v) >= 20},
        "cross_language": score([i for i, r in enumerate(rows) if r["lang1"] != r["lang2"]]),
        "story_folds": {f"fold{f}": score([i for i, x in enumerate(folds) if x == f]) for f in (0, 1)},
        "same_story_verdicts": {"pairs_overall_le_2": len(same),
                                "called_same_story": sum(levels[i] != "unrelated" for i in same),
                                "others_called_same_story": sum(levels[i] != "unrelated" for i in range(len(rows)) if i not in set(same))},
    }, indent=1))


if __name__ == "__main__":
    main()
