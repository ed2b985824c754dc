"""Choose related-list settings on held-out story folds. For each candidate value of the swept settings,
scores UCI headlines (two text shapes), MSVCode (title + description) and Wikinews (editors' links) per
story fold (topic fold for MSVCode). Embeddings are computed once and reused. Prints JSON lines.

python bench/related_sweep.py --uci FILE --msvcode FILE --wikinews FILE --set list_time_weight=0.2,0.1,0.05,0
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
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
