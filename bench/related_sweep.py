"""Choose related-list settings on held-out story folds. For each candidate value of the swept settings,
scores UCI headlines (two text shapes), MSVCode (title + description) and Wikinews (editors' links) per
story fold (topic fold for MSVCode). Embeddings are computed once and reused. Prints JSON lines.

python bench/related_sweep.py --uci FILE --msvcode FILE --wikinews FILE --set feedback=0.75,0.5,0.25,0

With --choose (the run's lines, or saved ones given by --results), cross-validation by story: for
each fold, the settings chosen on all the other folds together and that fold's scores under them.
Chosen means: among the settings that keep the list targets on those folds (UCI own story <= 0.08
and 4.6+ distinct stories in both text shapes, MSVCode own story <= 0.10 on its topic folds of the
same numbers, Wikinews editors' recall above TF-IDF's: that set has no folds), the highest UCI
same-category P@5, the mean of the two shapes. Then the held-out scores pooled over all folds, and
over each half (--folds 4: the halves are the two-fold split that `newsrec eval related` reports).
--folds 2: each half chosen on the other alone.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.evaluation import runs as ev  # noqa: E402
from recommender.config import Config  # noqa: E402
from recommender.embed.embedding import load_embedder  # noqa: E402


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
    ap.add_argument("--folds", type=int, default=4, help="story folds (topic folds for MSVCode); default 4")
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
            r = ev.eval_related_uci(ev.read_rows(args.uci, None), embedder, config, folds=args.folds)
            out["uci"] = {shape: v for shape, v in r["shapes"].items()}
        if args.msvcode:
            r = ev.eval_related_msvcode(ev.read_rows(args.msvcode, None), embedder, config, folds=args.folds)
            out["msvcode"] = {"newsrec": r["newsrec"], "folds": r["folds"]}
        if args.wikinews:
            r = ev.eval_related(args.wikinews, embedder, config)
            out["wikinews"] = {"newsrec": r["newsrec"], "tfidf": r["tfidf"]}
        print(json.dumps(out), flush=True)
        lines.append(out)
    if args.choose:
        for choice in choose(lines):
            print(json.dumps(choice), flush=True)


def _pool(parts: list[dict]) -> dict:
    """Several folds' scores as one: each mean weighted by the lists it was taken over."""
    n = sum(p.get("scored", 1) for p in parts)
    return {key: sum(p[key] * p.get("scored", 1) for p in parts) / n if n else 0.0
            for key in ("own_story_share", "distinct_stories", "category_p_at_5") if all(key in p for p in parts)}


def _pooled(parts: list[tuple[dict, str]]) -> dict:
    """Scores pooled over (run, fold) pairs: UCI per shape (own story, distinct stories, category P@5)
    and MSVCode's own story on its topic folds of the same numbers."""
    line = parts[0][0]
    out: dict = {}
    for shape in line.get("uci", {}):
        pooled = _pool([ln["uci"][shape]["folds"][f] for ln, f in parts])
        out[f"uci.{shape}"] = {k: round(x, 4) for k, x in pooled.items()}
    if "msvcode" in line:
        pooled = _pool([ln["msvcode"]["folds"][f] for ln, f in parts])
        out["msvcode.own_story_share"] = round(pooled["own_story_share"], 4)
    return out


def _fold_scores(line: dict, folds: list[str]) -> dict:
    """A run's scores on these folds together (see _pooled), and Wikinews' (no folds: the whole set)."""
    out = _pooled([(line, f) for f in folds])
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


def _folds_of(line: dict) -> list[str]:
    for part in ("uci", "msvcode"):
        if part in line:
            folds = next(iter(line[part].values()))["folds"] if part == "uci" else line[part]["folds"]
            return sorted(folds, key=int)
    return []


def choose(lines: list[dict]) -> list[dict]:
    """For each fold: the settings chosen on all the other folds together (see the module's docstring)
    and that fold's scores under them; then the held-out scores pooled over every fold, and with an even
    number of folds over each half (fold number mod 2: the halves are the two-fold split, as a story's
    fold is its hash modulo the number of folds)."""
    out, held = [], {}
    folds = _folds_of(lines[0]) if lines else []
    for fold in folds:
        others = [f for f in folds if f != fold]
        ok = [line for line in lines if _keeps_targets(_fold_scores(line, others))]
        if not ok:
            out.append({"held_out_fold": fold, "settings": None, "why": "no setting keeps the targets on the other folds"})
            continue
        best = max(ok, key=lambda line: _category(_fold_scores(line, others)))
        held[fold] = best
        out.append({"held_out_fold": fold, "chosen_on": others, "settings": best["settings"],
                    "category_p_at_5_there": round(_category(_fold_scores(best, others)), 4),
                    "held_out": _fold_scores(best, [fold])})
    if held:
        groups = {"all": list(held)}
        if len(folds) > 2 and len(folds) % 2 == 0:
            groups.update({f"half {h}": [f for f in held if int(f) % 2 == h] for h in (0, 1)})
        for name, members in groups.items():
            out.append({"held_out_pooled": name, "folds": members, "scores": _pooled([(held[f], f) for f in members])})
    return out


if __name__ == "__main__":
    main()
