"""The scores the evaluations report: token P/R/F1, Pearson, best-threshold accuracy, P@5, pairwise F1,
snippet counts, and how far two systems' per-query scores differ beyond chance."""
from __future__ import annotations

import re
from collections import Counter


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


def mean(xs: list[float]) -> float:
    return round(sum(xs) / len(xs), 4) if xs else 0.0


def prf_summary(scores: list[tuple[float, float, float]]) -> dict:
    return {
        "precision": mean([s[0] for s in scores]),
        "recall": mean([s[1] for s in scores]),
        "f1": mean([s[2] for s in scores]),
        "documents": len(scores),
    }


def squash(text: str) -> str:
    """Whitespace folded and NFC: canonically equal text (one character or its parts) reads the same."""
    import unicodedata

    return " ".join(unicodedata.normalize("NFC", text).split())


def snippet_counts(output: str, keep: list[str], cut: list[str]) -> tuple[int, int, int, int]:
    """(tp, fn, fp, tn) of the trafilatura benchmark: a `with` snippet found in the output (whitespace
    normalised, exact substring) is a true positive, a `without` snippet found a false positive."""
    out = squash(output)
    tp = sum(squash(s) in out for s in keep)
    fp = sum(squash(s) in out for s in cut)
    return tp, len(keep) - tp, fp, len(cut) - fp


def snippet_scores(counts) -> dict:
    tp, fn, fp, tn = (sum(c[i] for c in counts) for i in range(4))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4),
            "accuracy": round((tp + tn) / max(1, tp + fn + fp + tn), 4), "f_score": round(f, 4), "pages": len(counts)}


def pearson(x, y) -> float | None:
    """Pearson's r, rounded to 4 places; 0 when either side is constant, None for fewer than two pairs."""
    import numpy as np

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return None
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return round(float(np.corrcoef(x, y)[0, 1]), 4)


def best_threshold_accuracy(scores, labels) -> tuple[float, float]:
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


def precision_at_5(sim, labels) -> float:
    import numpy as np

    s = np.array(sim, dtype=np.float64, copy=True)
    np.fill_diagonal(s, -np.inf)
    top = np.argpartition(-s, 5, axis=1)[:, :5]
    return round(float((labels[top] == labels[:, None]).mean()), 4)


def pairwise_f1(pred, gold) -> dict:
    from collections import Counter

    def pairs(counts) -> int:
        return sum(c * (c - 1) // 2 for c in counts.values())

    both = pairs(Counter(zip(pred, gold)))
    p_pairs, g_pairs = pairs(Counter(pred)), pairs(Counter(gold))
    precision = both / p_pairs if p_pairs else 1.0
    recall = both / g_pairs if g_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def balanced_accuracy(said, truth) -> float:
    """The mean of the shares of positives and of negatives a yes/no verdict gets right (both boolean arrays)."""
    return float((said[truth].mean() + (~said[~truth]).mean()) / 2)


def verdict_scores(p, y) -> dict:
    """How a calibrated probability reads labelled pairs: balanced accuracy of the verdict p >= 0.5,
    expected calibration error over ten bins with the two classes weighed equally (a probability reads
    "given a pair as likely to be either"), AUC (ties counted half), and the bins themselves
    (`reliability`: each non-empty tenth of p from its lower edge, its share of the weight, its mean p and
    the share of it that is positive, both classes weighed as in the ECE). Pairs of one class only: the
    share the verdict gets right, nothing else."""
    import numpy as np

    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.int64)
    out: dict = {"pairs": int(len(y)), "positives": int(y.sum())}
    if not len(y):
        return out
    pred = p >= 0.5
    if y.min() == y.max():
        out["verdict_right"] = round(float((pred == (y == 1)).mean()), 4)
        return out
    w = np.where(y == 1, 0.5 / (y == 1).sum(), 0.5 / (y == 0).sum())
    bins = np.minimum((p * 10).astype(int), 9)
    ece, reliability = 0.0, []
    for b in range(10):
        m = bins == b
        if m.any():
            said, seen = (w[m] * p[m]).sum() / w[m].sum(), (w[m] * y[m]).sum() / w[m].sum()
            ece += w[m].sum() * abs(said - seen)
            reliability.append({"from": b / 10, "weight": round(float(w[m].sum()), 4),
                                "mean_p": round(float(said), 4), "observed": round(float(seen), 4)})
    out.update(balanced_accuracy=round(balanced_accuracy(pred, y == 1), 4), ece=round(float(ece), 4), auc=round(auc(p, y), 4),
               reliability=reliability)
    return out


def auc(scores, labels) -> float:
    """The chance that a positive scores above a negative (ties counted half): the area under the ROC
    curve, from the scores' ranks. Both classes must be present."""
    import numpy as np

    y = np.asarray(labels).astype(bool)
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    n1, n0 = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def paired_difference(a, b, *, resamples: int = 10_000, seed: int = 0) -> dict:
    """How two systems' scores on the same queries differ (a less b, query by query): the mean
    difference, the queries where a scores higher, lower and the same, and a 95% interval of the mean
    difference from a paired bootstrap (queries drawn again with replacement, `resamples` times, seeded:
    the same scores give the same interval). An interval that holds 0 is a difference chance could give."""
    import numpy as np

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    out = {"queries": int(len(d)), "higher": int((d > 0).sum()), "lower": int((d < 0).sum()), "same": int((d == 0).sum())}
    if not len(d):
        return out
    draws = np.random.default_rng(seed).integers(0, len(d), size=(resamples, len(d)))
    lo, hi = np.percentile(d[draws].mean(axis=1), [2.5, 97.5])
    out.update(mean=round(float(d.mean()), 4), ci95=[round(float(lo), 4), round(float(hi), 4)])
    return out


def _average_ranks(x) -> "np.ndarray":
    """1-based ranks of x, tied values sharing their mean rank."""
    import numpy as np

    order = np.argsort(x, kind="stable")
    xs = np.asarray(x)[order]
    starts = np.r_[0, np.flatnonzero(np.diff(xs)) + 1]
    ends = np.r_[starts[1:], len(xs)]
    mean_rank = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends, averaged
    ranks = np.empty(len(xs))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks
