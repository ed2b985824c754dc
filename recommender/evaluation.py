"""Quality evaluations that print JSON: cleaning (token P/R/F1), and the scorers shared by the others."""
from __future__ import annotations

import html as html_lib
import json
import re
from collections import Counter
from pathlib import Path
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


def _rows(path: str | Path, limit: int | None) -> list[dict]:
    """Rows of a JSONL file, or of a JSON file holding one object or a list."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        rows = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def _mean(xs: list[float]) -> float:
    return round(sum(xs) / len(xs), 4) if xs else 0.0


def page_from_blocks(row: dict) -> str:
    """An HTML page rebuilt from a row's text blocks (one <p> a block), for rows that carry no HTML."""
    title = html_lib.escape(row.get("title") or "")
    blocks = "".join(f"<p>{html_lib.escape(line)}</p>" for line in row["raw_text"].splitlines() if line.strip())
    return f"<html><head><title>{title}</title></head><body>{blocks}</body></html>"


def _summary(scores: list[tuple[float, float, float]]) -> dict:
    return {
        "precision": _mean([s[0] for s in scores]),
        "recall": _mean([s[1] for s in scores]),
        "f1": _mean([s[2] for s in scores]),
        "documents": len(scores),
    }


def eval_cleaning(path: str | Path, *, limit: int | None = None, html: bool = True) -> dict:
    """Token P/R/F1 of cleaned bodies against `clean_text`, averaged over documents.

    - `newsrec`: clean() on `raw_text` (or clean_html() on `html` where a row has it);
    - `keep_everything`: every line but the title (the baseline);
    - with `html`: clean_html() and trafilatura alone on the same pages (the row's `html`, else a
      page rebuilt from its text blocks).
    """
    import trafilatura

    ours, base, ours_html, traf = [], [], [], []
    for row in _rows(path, limit):
        gold = row["clean_text"]
        raw = row.get("raw_text") or ""
        if raw:
            ours.append(token_prf(clean(raw).body, gold))
            title = (row.get("title") or "").strip()
            kept = "\n".join(line for line in raw.splitlines() if line.strip() and line.strip() != title)
            base.append(token_prf(kept, gold))
        if html or not raw:
            page = row.get("html") or page_from_blocks(row)
            result = clean_html(page)
            ours_html.append(token_prf(result.body, gold))
            if not raw:
                ours.append(ours_html[-1])
            try:
                alone = trafilatura.extract(page) or ""
            except Exception:  # scored as an empty extraction, as a user of trafilatura would get
                alone = ""
            traf.append(token_prf(alone, gold))
    out = {"task": "cleaning", "data": str(path), "newsrec": _summary(ours)}
    if base:
        out["keep_everything"] = _summary(base)
    if ours_html:
        out["newsrec_html"] = _summary(ours_html)
        out["trafilatura_alone"] = _summary(traf)
    return out


# --- same story -------------------------------------------------------------------------------


def pearson(x, y) -> float:
    import numpy as np

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _embed(embedder, texts: list[str], max_tokens: int = 256):
    from .embedding import article_text

    return embedder.encode([article_text("", t, max_tokens) for t in texts], batch_size=16)


def _best_threshold_accuracy(scores, labels) -> tuple[float, float]:
    """(accuracy, threshold) of the best single threshold on these scores."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    order = np.argsort(s)
    s, y = s[order], y[order]
    # predict 1 for scores >= threshold; try every cut point
    positives_above = np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    negatives_below = np.concatenate([[0], np.cumsum(1 - y)])
    correct = positives_above + negatives_below
    best = int(np.argmax(correct))
    threshold = float(s[best]) if best < len(s) else float(s[-1]) + 1e-6
    return round(float(correct[best]) / len(y), 4), round(threshold, 4)
