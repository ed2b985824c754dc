"""Choose related-list settings on held-out story folds. For each candidate value of the swept settings,
scores UCI headlines (two text shapes), MSVCode (title + description) and Wikinews (editors' links) per
story fold (topic fold for MSVCode). Embeddings are computed once and reused. Prints JSON lines.

python bench/related_sweep.py --uci FILE --msvcode FILE --wikinews FILE --set list_time_weight=0.2,0.1,0.05,0

With --choose (the run's lines, or saved ones given by --results), each fold's choice and the other
fold's held-out scores: on a fold, the settings that keep #15's list targets there (UCI own story
<= 0.08 and 4.6+ distinct stories in both text shapes, MSVCode own story <= 0.10 on its topic fold of
the same number, Wikinews editors' recall above TF-IDF's: that set has no folds) and among them the
highest UCI same-category P@5, the mean of the two shapes.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender import evaluation as ev  # noqa: E402
from recommender.config import Config  # noqa: E402
from recommender.embedding import load_embedder  # noqa: E402


class CachedEmbedder:
    """The real embedder, each distinct text embedded once across the sweep."""

    def __init__(self, embedder):
        self.inner, self.name, self.backend, self.dim = embedder, embedder.name, embedder.backend, embedder.dim
        self.cache: dict[str, np.ndarray] = {}

    def encode(self, texts, **kw):
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.encode(missing, **kw)))
        return np.stack([self.cache[t] for t in texts]) if len(texts) else np.zeros((0, self.dim), np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--uci")
    ap.add_argument("--msvcode")
    ap.add_argument("--wikinews")
    ap.add_argument("--set", action="append", default=[], help="NAME=V1,V2,... (repeatable: a grid)")
    ap.add_argument("--choose", action="store_true", help="print each fold's choice and held-out scores")
    ap.add_argument("--results", help="JSON lines of an earlier run to choose from (no evaluation)")
    args = ap.parse_args()
    if args.results:
        lines = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
        for choice in choose(lines):
            print(json.dumps(choice))
        return
    lines = []
    base = Config.load({})
    embedder = CachedEmbedder(load_embedder(base))
    grid = {name: [type(getattr(base, name))(v) for v in values.split(",")]
            for name, values in (s.split("=", 1) for s in args.set)}
    for values in itertools.product(*grid.values()):
        changes = dict(zip(grid, values))
        config = base.replace(**changes)
        out: dict = {"settings": changes}
        if args.uci:
            r = ev.eval_related_uci(ev._read_any(args.uci), embedder, config)
            out["uci"] = {shape: v for shape, v in r["shapes"].items()}
        if args.msvcode:
            r = ev.eval_related_msvcode(ev._read_any(args.msvcode), embedder, config)
            out["msvcode"] = {"newsrec": r["newsrec"], "folds": r["folds"]}
        if args.wikinews:
            r = ev.eval_related(args.wikinews, embedder, config)
            out["wikinews"] = {"newsrec": r["newsrec"], "tfidf": r["tfidf"]}
        print(json.dumps(out), flush=True)
        lines.append(out)
    if args.choose:
        for choice in choose(lines):
            print(json.dumps(choice), flush=True)


def _fold_scores(line: dict, fold: str) -> dict:
    """A run's scores on one fold: UCI per shape (own story, distinct stories, category P@5), MSVCode's
    own story on its topic fold, Wikinews (no folds: the whole set)."""
    out: dict = {}
    for shape, v in line.get("uci", {}).items():
        f = v["folds"][fold]
        out[f"uci.{shape}"] = {k: round(f[k], 4) for k in ("own_story_share", "distinct_stories", "category_p_at_5")}
    if "msvcode" in line:
        out["msvcode.own_story_share"] = round(line["msvcode"]["folds"][fold]["own_story_share"], 4)
    if "wikinews" in line:
        out["wikinews.editors_links_recall_at_5"] = line["wikinews"]["newsrec"]["editors_links_recall_at_5"]
        out["wikinews.tfidf"] = line["wikinews"]["tfidf"]["editors_links_recall_at_5"]
    return out


def _keeps_targets(scores: dict) -> bool:
    uci = [v for k, v in scores.items() if k.startswith("uci.")]
    return (all(v["own_story_share"] <= 0.08 and v["distinct_stories"] >= 4.6 for v in uci)
            and scores.get("msvcode.own_story_share", 0.0) <= 0.10
            and scores.get("wikinews.editors_links_recall_at_5", 1.0) > scores.get("wikinews.tfidf", 0.0))


def _category(scores: dict) -> float:
    values = [v["category_p_at_5"] for k, v in scores.items() if k.startswith("uci.")]
    return sum(values) / len(values) if values else 0.0


def choose(lines: list[dict]) -> list[dict]:
    """For each fold: the settings chosen on it (see the module's docstring) and the other fold's scores."""
    out = []
    for fold, other in (("0", "1"), ("1", "0")):
        ok = [line for line in lines if _keeps_targets(_fold_scores(line, fold))]
        if not ok:
            out.append({"chosen_on_fold": fold, "settings": None, "why": "no setting keeps the targets on this fold"})
            continue
        best = max(ok, key=lambda line: _category(_fold_scores(line, fold)))
        out.append({"chosen_on_fold": fold, "settings": best["settings"],
                    "category_p_at_5_there": round(_category(_fold_scores(best, fold)), 4),
                    "held_out_fold": other, "held_out": _fold_scores(best, other)})
    return out


if __name__ == "__main__":
    main()
