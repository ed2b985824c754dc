"""Reading the labelled sets: rows of JSON/JSONL files, the folds that keep a story or a site on one side,
and the copies planted for the duplicate evaluation."""
from __future__ import annotations

import html as html_lib
from pathlib import Path


def read_rows(path: str | Path, limit: int | None) -> list[dict]:
    """Rows of a labelled file, read as a build reads articles (`articles.read_records`: CSV, JSON lines
    or one JSON document, optionally .gz); the first `limit` of them when given."""
    from itertools import islice

    from recommender.text.articles import read_records

    return [row for _, row in islice(read_records(path), limit or None)]


def page_from_blocks(row: dict) -> str:
    """An HTML page rebuilt from a row's text blocks (one <p> a block), for rows that carry no HTML."""
    title = html_lib.escape(row.get("title") or "")
    blocks = "".join(f"<p>{html_lib.escape(line)}</p>" for line in row["raw_text"].splitlines() if line.strip())
    return f"<html><head><title>{title}</title></head><body>{blocks}</body></html>"


def site_fold(url: str, folds: int = 2) -> int:
    """The fold of a page, by its site (host name): pages of one site always land in one fold."""
    import hashlib
    from urllib.parse import urlparse

    host = urlparse(url).netloc or url.split("::")[-1].split("-")[0]
    return int(hashlib.blake2b(host.lower().encode(), digest_size=4).hexdigest(), 16) % folds


def as_served(text: str) -> tuple[str, str]:
    """(title, body) of a scraped text after the cleaning every API call applies (POST /api/compare)."""
    from recommender.text.articles import parse_article
    from recommender.errors import BadInput

    try:
        art = parse_article({"body": text}, require_id=False)
    except BadInput:
        return "", text
    return art.title, art.body


def semeval_labels(overall: float) -> tuple[int | None, int | None]:
    """(retelling, related) labels of a SemEval-2022 pair from its Overall score (1 = same story ... 4 =
    unrelated): retelling = Overall <= 2 against >= 3, related = <= 2 against >= 3.5; None: between."""
    return (1 if overall <= 2 else 0 if overall >= 3 else None), (1 if overall <= 2 else 0 if overall >= 3.5 else None)


def pair_story_groups(rows: list[dict]) -> list[str]:
    """One story label per SemEval pair: pairs that share an article (ids in `pair_id`, "a_b") are one
    story group (connected components), labelled by its smallest article id. Pairs without ids are
    their own group."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    ids = [str(r.get("pair_id") or f"row{i}_row{i}").split("_")[:2] for i, r in enumerate(rows)]
    for a, b in ((p[0], p[-1]) for p in ids):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(p[0]) for p in ids]


def uci_records(rows: list[dict]) -> list[dict]:
    """UCI headlines as articles: the headline as title, no body, the publisher and category."""
    import datetime as dt

    return [{
        "id": r["ID"], "title": r["TITLE"], "body": "", "source": r.get("PUBLISHER", ""), "section": r["CATEGORY"],
        "published": dt.datetime.fromtimestamp(int(r["TIMESTAMP"]) / 1000, dt.timezone.utc).isoformat(timespec="seconds"),
    } for r in rows]


_FURNITURE_TOP = ["Kindly Share This Story:", "𝗙𝗼𝗹𝗹𝗼𝘄 𝗨𝘀 𝗢𝗻 𝗪𝗵𝗮𝘁𝘀𝗔𝗽𝗽", "Advertisement", "Share on Facebook"]


_FURNITURE_INLINE = ["ALSO READ: Police arrest two after bank robbery in Leeds", "READ MORE: Markets slide as oil jumps",
                     "RELATED: Storm closes airport for a second day"]


_FURNITURE_BOTTOM = ["Subscribe to our newsletter for the latest news", "Football: United sign new striker",
                     "Weather: Heavy rain expected across the north"]


def make_copy(article: dict, rng, edit_share: float) -> dict:
    """A syndicated copy: another site's furniture, a new headline, maybe a cut ending, some words edited."""
    import re as _re

    sentences = _re.split(r"(?<=[.!?])\s+", article["body"].strip())
    if len(sentences) > 4 and rng.random() < 0.5:
        sentences = sentences[: max(3, int(len(sentences) * 0.8))]  # truncated ending
    words = " ".join(sentences).split(" ")
    n_edit = int(round(len(words) * edit_share))
    for i in rng.sample(range(len(words)), min(n_edit, len(words))):
        roll = rng.random()
        if roll < 0.5:
            words[i] = rng.choice(["reportedly", "the", "new", "local", "officials", "said", "also", "major"])
        elif roll < 0.8:
            words[i] = ""
        else:
            words[i] = words[i] + " " + rng.choice(["also", "now", "still"])
    body = " ".join(w for w in words if w)
    paragraphs = _re.split(r"(?<=[.!?])\s+(?=[A-Z])", body)
    mid = len(paragraphs) // 2
    parts = [rng.choice(_FURNITURE_TOP)] + paragraphs[:mid] + [rng.choice(_FURNITURE_INLINE)] + paragraphs[mid:]
    parts += rng.sample(_FURNITURE_BOTTOM, 2)
    return {
        "id": article["id"] + "-copy",
        "title": "Report: " + article["title"] if rng.random() < 0.5 else article["title"].upper(),
        "text": "\n\n".join(parts),
        "published": article.get("published") or article.get("date") or "",
        "source": "syndicator.example",
    }


def story_fold(story: str, folds: int = 2) -> int:
    """The fold of a story: every telling of one story lands in one fold (stories, not rows, are split)."""
    import hashlib

    return int(hashlib.blake2b(str(story).encode(), digest_size=4).hexdigest(), 16) % folds
