"""Quality evaluations that print JSON: cleaning (token P/R/F1), and the scorers shared by the others."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

from .cleaning import clean, clean_html

__all__ = ["token_prf", "eval_cleaning"]

_TOKEN = re.compile(r"\w+")


def token_prf(predicted: str, gold: str) -> tuple[float, float, float]:
    """Bag-of-words precision, recall, F1 of lowercase \\w+ tokens (the Zyte benchmark's scoring)."""
    p = Counter(_TOKEN.findall(predicted.lower()))
    g = Counter(_TOKEN.findall(gold.lower()))
    overlap = sum((p & g).values())
    precision = overlap / sum(p.values()) if p else (1.0 if not g else 0.0)
    recall = overlap / sum(g.values()) if g else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _rows(path: str | Path, limit: int | None) -> Iterable[dict]:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if text.lstrip().startswith("{") and not text.strip().count("\n") and path and str(path).endswith(".json"):
        rows = [json.loads(text)]
    else:
        try:
            data = json.loads(text)
            rows = data if isinstance(data, list) else [data]
        except json.JSONDecodeError:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def _mean(xs: list[float]) -> float:
    return round(sum(xs) / len(xs), 4) if xs else 0.0


def eval_cleaning(path: str | Path, *, limit: int | None = None) -> dict:
    """Token P/R/F1 of clean() (or clean_html()) bodies against `clean_text`, averaged over documents.

    Also scores keeping everything but the title line (the baseline) and, for rows with `html`,
    trafilatura alone on the same pages.
    """
    ours, base, traf = [], [], []
    for row in _rows(path, limit):
        gold = row["clean_text"]
        if row.get("html"):
            result = clean_html(row["html"])
            try:
                import trafilatura

                alone = trafilatura.extract(row["html"]) or ""
            except Exception:  # scored as an empty extraction, as a user of trafilatura would get
                alone = ""
            traf.append(token_prf(alone, gold))
            raw = ""
        else:
            raw = row["raw_text"]
            result = clean(raw)
        ours.append(token_prf(result.body, gold))
        title = (row.get("title") or "").strip()
        kept = "\n".join(line for line in raw.splitlines() if line.strip() and line.strip() != title)
        base.append(token_prf(kept, gold))

    def summary(scores: list[tuple[float, float, float]]) -> dict:
        return {
            "precision": _mean([s[0] for s in scores]),
            "recall": _mean([s[1] for s in scores]),
            "f1": _mean([s[2] for s in scores]),
            "documents": len(scores),
        }

    out = {"task": "cleaning", "data": str(path), "newsrec": summary(ours), "keep_everything": summary(base)}
    if traf:
        out["trafilatura_alone"] = summary(traf)
    return out
