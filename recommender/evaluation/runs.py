"""The evaluations `newsrec eval` runs, each returning a JSON-ready dict: cleaning, same story, copies,
related lists."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from recommender.evaluation.datasets import (as_served, make_copy, page_from_blocks, pair_story_groups,
                                             read_rows, semeval_labels, site_fold, story_fold,
                                             uci_records)
from recommender.evaluation.metrics import (best_threshold_accuracy, mean, pairwise_f1, pearson, precision_at_5,
                                            prf_summary, snippet_counts, snippet_scores, squash, token_prf,
                                            verdict_scores)
from recommender.errors import BadInput
from recommender.text.cleaning import clean, clean_html

__all__ = ["eval_cleaning", "eval_dups", "eval_html_snippets", "eval_msrp", "eval_related", "eval_same_story",
           "eval_semeval", "eval_site_links", "eval_uci"]


# The labelled files each evaluation reads, by the fields of their rows (the first row decides).
CLEANING_KINDS = {"snippets": ("html", "with"), "pages": ("clean_text",)}
SAME_STORY_KINDS = {"semeval": ("pair_id", "text1", "text2", "Overall"), "uci": ("ID", "TITLE", "STORY", "CATEGORY", "TIMESTAMP"),
                    "msrp": ("text1", "text2", "label")}
RELATED_KINDS = {"uci": SAME_STORY_KINDS["uci"], "msvcode": ("doc_id", "title", "gold1"),
                 "semeval": SAME_STORY_KINDS["semeval"], "corpus": ("id", "title", "body")}


def labelled_rows(path: str | Path, kinds: dict[str, tuple[str, ...]]) -> tuple[str, list[dict]]:
    """(the kind, the rows) of a labelled file: the first kind whose fields its first row holds. A
    missing, unreadable or empty file, or rows of no kind known here, is BadInput naming what is read."""
    path = Path(path)
    known = "; ".join(f"{kind}: {', '.join(fields)}" for kind, fields in kinds.items())
    if not path.is_file():
        raise BadInput(f"{path}: no such file", field="data")
    try:
        rows = read_rows(path, None)
    except OSError as exc:
        raise BadInput(f"{path}: cannot read it ({exc.strerror or exc})", field="data") from None
    except BadInput as exc:
        raise BadInput(f"{path}: not a CSV file or JSON lines ({exc.message})", field="data") from None
    first = rows[0] if rows and isinstance(rows[0], dict) else {}
    for kind, fields in kinds.items():
        if all(f in first for f in fields):
            return kind, rows
    raise BadInput(f"{path}: {'no rows' if not rows else 'rows of no kind read here'} (the kinds and the fields "
                   f"of their rows: {known})", field="data")


def eval_cleaning(path: str | Path, *, limit: int | None = None, html: bool = True) -> dict:
    """Token P/R/F1 of cleaned bodies against `clean_text`, averaged over documents.

    - `newsrec`: clean() on `raw_text` (or clean_html() on `html` where a row has it), and the share of
      labelled headlines clean() reports as the title (`title_exact`, whitespace and case aside; also
      per site fold, `title_exact_by_site_fold`);
    - `keep_everything`: every line but the title (the baseline);
    - with `html`: clean_html() and trafilatura alone on the same pages (the row's `html`, else a
      page rebuilt from its text blocks).
    """
    import trafilatura

    kind, rows = labelled_rows(path, CLEANING_KINDS)
    rows = rows[:limit] if limit else rows
    if kind == "snippets":
        return {"task": "cleaning", "data": str(path), **eval_html_snippets(rows)}
    ours, base, ours_html, traf, titles = [], [], [], [], []
    title_folds: list[int] = []
    for row in rows:
        gold = row["clean_text"]
        raw = row.get("raw_text") or ""
        if raw:
            cleaned = clean(raw)
            ours.append(token_prf(cleaned.body, gold))
            title = (row.get("title") or "").strip()
            if title:  # the labelled headline: is it the title clean() reports?
                titles.append(float(squash(cleaned.title).lower() == squash(title).lower()))
                title_folds.append(site_fold(row.get("url", "")))
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
    out = {"task": "cleaning", "data": str(path), "newsrec": prf_summary(ours)}
    if titles:
        out["newsrec"]["title_exact"] = round(mean(titles), 4)
        out["newsrec"]["titled_documents"] = len(titles)
        out["newsrec"]["title_exact_by_site_fold"] = {
            str(f): round(mean([t for t, g in zip(titles, title_folds) if g == f]), 4) for f in sorted(set(title_folds))}
    if base:
        out["keep_everything"] = prf_summary(base)
    if ours_html:
        out["newsrec_html"] = prf_summary(ours_html)
        out["trafilatura_alone"] = prf_summary(traf)
    return out


def eval_html_snippets(rows: list[dict]) -> dict:
    """The trafilatura benchmark (fields html, with, without): clean_html() and trafilatura's own
    extract() on the same pages in the same run, overall, per site fold and per language (the language
    of the page's kept snippets, as detected)."""
    scored = over_cores(_score_snippets, rows)
    ours, theirs, langs = (list(x) for x in zip(*scored)) if scored else ([], [], [])
    folds = [site_fold(row.get("url", "")) for row in rows]

    def table(pick) -> dict:
        chosen = [i for i in range(len(rows)) if pick(i)]
        return {"newsrec": snippet_scores([ours[i] for i in chosen]),
                "trafilatura_alone": snippet_scores([theirs[i] for i in chosen])}

    per_language = {lang: table(lambda i, lang=lang: langs[i] == lang)
                    for lang, _ in Counter(langs).most_common()}
    return {"kind": "html-snippets", **table(lambda i: True),
            "folds": {str(f): table(lambda i, f=f: folds[i] == f) for f in sorted(set(folds))},
            "per_language": per_language}


def _score_snippets(rows: list[dict]) -> list[tuple]:
    """(clean_html's counts, trafilatura's counts, the kept snippets' language) for each row."""
    import trafilatura

    from recommender.text.language import detect_language

    out = []
    for row in rows:
        keep, cut = row.get("with") or [], row.get("without") or []
        ours = snippet_counts(clean_html(row["html"]).body, keep, cut)
        try:
            alone = trafilatura.extract(row["html"]) or ""
        except Exception:  # scored as an empty extraction, as a user of trafilatura would get
            alone = ""
        out.append((ours, snippet_counts(alone, keep, cut), detect_language(" ".join(keep)).lang or "und"))
    return out


def over_cores(work, items: list, *, least: int = 200) -> list:
    """`work` (a module-level function from a list of items to a list of results, one each) over the
    machine's cores: the items dealt to a process a core, the results in the items' order. Fewer than
    `least` items, or one core, run here."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    workers = min(os.cpu_count() or 1, 4) if len(items) >= least else 1
    if workers == 1:
        return work(items)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_one_thread) as pool:
        parts = list(pool.map(work, [items[i::workers] for i in range(workers)]))
    out: list = [None] * len(items)
    for i, part in enumerate(parts):
        out[i::workers] = part
    return out


# --- same story -------------------------------------------------------------------------------


def _embed(embedder, articles: list[tuple[str, str]], max_tokens: int = 256):
    """Vectors of (title, body) pairs, embedded as the service embeds an article."""
    from recommender.embed.embedding import article_text

    return embedder.encode([article_text(title, body, max_tokens) for title, body in articles], batch_size=16)


def _minhash_jaccard(a_texts: list[str], b_texts: list[str]) -> list[float]:
    from recommender.evidence.duplicates import minhash_signatures

    sa, sb = minhash_signatures(a_texts), minhash_signatures(b_texts)
    return [float((x == y).mean()) for x, y in zip(sa, sb)]


def pair_similarities(rows: list[dict], embedder, max_tokens: int):
    """(texts a, texts b, embedding cosine, TF-IDF cosine, MinHash Jaccard) for text1/text2 pairs.

    Each text goes through the cleaning the service applies before it embeds, so the cosine is the
    one POST /api/compare reports; the TF-IDF and MinHash baselines read the same cleaned texts."""
    return _similarities([as_served(r["text1"]) for r in rows], [as_served(r["text2"]) for r in rows], embedder,
                         max_tokens)


def _similarities(served_a: list[tuple[str, str]], served_b: list[tuple[str, str]], embedder, max_tokens: int):
    from recommender.text.lexical import TfIdf

    a = [f"{t}\n{body}".strip() for t, body in served_a]
    b = [f"{t}\n{body}".strip() for t, body in served_b]
    va, vb = _embed(embedder, served_a, max_tokens), _embed(embedder, served_b, max_tokens)
    cos = (va * vb).sum(axis=1)
    tf = TfIdf.fit(a + b)
    tfidf = [tf.cosine(tf.vector(x), tf.vector(y)) for x, y in zip(a, b)]
    return a, b, cos, tfidf, _minhash_jaccard(a, b)


def judge_served(served_a: list[tuple[str, str]], served_b: list[tuple[str, str]], cos, config):
    """The shipped pair judgment (pairs.Judgment) of (title, body) pairs as POST /api/compare judges two
    texts given without dates or outlets."""
    import numpy as np

    from recommender.embed.embedding import article_text, embedded_words
    from recommender.evidence.pairs import Sides, lexical_signatures, load_pair_model, token_containment

    def read(served: list[tuple[str, str]]) -> list[str]:
        return [article_text(t, body, config.max_tokens) for t, body in served]

    def sides(served: list[tuple[str, str]]) -> Sides:
        return Sides.of(np.full(len(served), np.nan), [embedded_words(t, body, config.max_tokens) for t, body in served],
                        lexical_signatures(read(served)))

    model = load_pair_model(config.model, config.pair_model or None)
    lex = [token_containment(a, [b])[0] for a, b in zip(read(served_a), read(served_b))]  # both at hand, as /api/compare
    return model.judge(np.asarray(cos, dtype=np.float64), sides(served_a), sides(served_b), lex)


def _judgment_scores(judged, retold: list, related: list | None = None) -> dict:
    """verdict_scores of each head on the pairs it has labels for (None: no label)."""
    import numpy as np

    out = {}
    for head, labels in (("retelling", retold), ("related", related)):
        if labels is None:
            continue
        have = np.asarray([x is not None for x in labels], dtype=bool)
        p = (judged.p_retelling if head == "retelling" else judged.p_related)[have]
        out[head] = verdict_scores(p, np.asarray([x for x in labels if x is not None], dtype=np.int64))
    return out


def eval_semeval(rows: list[dict], embedder, config=None) -> dict:
    """Pearson of each similarity with -Overall (1 = same story ... 4 = unrelated), English pairs and all;
    and the pair judgment's verdicts: retelling for Overall <= 2 against >= 3, related for <= 2 against
    >= 3.5 (the pairs undated, as the set gives them)."""
    from recommender.config import Config

    config = config or Config.load({}, environ={})
    served_a, served_b = [as_served(r["text1"]) for r in rows], [as_served(r["text2"]) for r in rows]
    a, b, cos, tfidf, mh = _similarities(served_a, served_b, embedder, config.max_tokens)
    gold = [-float(r["Overall"]) for r in rows]
    english = [i for i, r in enumerate(rows) if r.get("lang1") == "en" and r.get("lang2") == "en"]
    judged = judge_served(served_a, served_b, cos, config)
    retold, related = (list(x) for x in zip(*(semeval_labels(float(r["Overall"])) for r in rows)))

    def scores(idx: list[int]) -> dict:
        pick = lambda xs: [xs[i] for i in idx]
        return {
            "pairs": len(idx),
            "pearson_newsrec": pearson(pick(list(cos)), pick(gold)),
            "pearson_tfidf": pearson(pick(tfidf), pick(gold)),
            "pearson_minhash": pearson(pick(mh), pick(gold)),
            "judgment": _judgment_scores(judged.take(idx), pick(retold), pick(related)),
        }

    # Every language pair with 20 or more pairs (fewer say little), and all cross-language pairs.
    pairs: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        pairs.setdefault(f"{r.get('lang1', '?')}-{r.get('lang2', '?')}", []).append(i)
    cross = [i for i, r in enumerate(rows) if r.get("lang1") != r.get("lang2")]
    by_language = {name: scores(idx) for name, idx in sorted(pairs.items()) if len(idx) >= 20}
    if cross:
        by_language["cross-language"] = scores(cross)
    # Story folds (bench/language_centres.py chose the multilingual settings on one, scored the other).
    folds = [story_fold(g) for g in pair_story_groups(rows)]
    return {"kind": "semeval", "english": scores(english), "all": scores(list(range(len(rows)))),
            "by_language": by_language, "story_folds": {str(f): scores([i for i, x in enumerate(folds) if x == f]) for f in (0, 1)}}


def eval_msrp(rows: list[dict], embedder, config=None) -> dict:
    """The pair judgment's retelling verdict on paraphrase labels (never fitted on: its pairs are
    sentences of one story each), beside each similarity's best single threshold (chosen on these
    same pairs: an upper bound, not a held-out score)."""
    from recommender.config import Config

    config = config or Config.load({}, environ={})
    served_a, served_b = [as_served(r["text1"]) for r in rows], [as_served(r["text2"]) for r in rows]
    _, _, cos, tfidf, mh = _similarities(served_a, served_b, embedder, config.max_tokens)
    labels = [int(r["label"]) for r in rows]
    out = {"kind": "msrp", "pairs": len(rows),
           "judgment": _judgment_scores(judge_served(served_a, served_b, cos, config), labels)}
    for name, s in (("newsrec", cos), ("tfidf", tfidf), ("minhash", mh)):
        acc, thr = best_threshold_accuracy(s, labels)
        out[f"accuracy_{name}"] = acc
        out[f"threshold_{name}"] = thr
    return out


def index_story_groups(records: list[dict], embedder, config) -> dict[str, int]:
    """Each article's story group as the index forms it: a real build (links, average linkage, per-row
    bars, stragglers), so a pinned group score gates the algorithm the service runs."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rec = _build_eval_index(records, embedder, config, Path(tmp))
        snap = rec.snapshot
        ids = snap.ids(snap.keys)
        groups = {ids[int(k)]: int(g) for k, g in zip(snap.keys, snap.story_group)}
        snap.close()
    return groups


def eval_uci(rows: list[dict], embedder, config) -> dict:
    """Same-story precision@5 among headlines, and pairwise P/R/F1 of the story groups formed."""
    import numpy as np

    from recommender.embed.embedding import embedded_words
    from recommender.evidence.pairs import Sides, lexical_signatures, load_pair_model
    from recommender.text.lexical import TfIdf

    titles = [r["TITLE"] for r in rows]
    labels = np.asarray([r["STORY"] for r in rows])
    days = np.asarray([int(r["TIMESTAMP"]) / 86_400_000 for r in rows])
    vectors = _embed(embedder, [(t, "") for t in titles], config.max_tokens)
    cos = vectors @ vectors.T
    # The judgment's ranking: each headline's 50 nearest by cosine, ordered by p_retelling.
    sides = Sides.of(days, [embedded_words(t, "", config.max_tokens) for t in titles], lexical_signatures(titles),
                     [r.get("PUBLISHER", "") for r in rows], precise=True)
    nearest = np.argsort(-cos, axis=1)[:, :51]
    qi, near = np.repeat(np.arange(len(rows)), nearest.shape[1]), nearest.ravel()
    judged = load_pair_model(config.model, config.pair_model or None).judge(cos[qi, near], sides.take(qi),
                                                                             sides.take(near))
    newsrec = np.full(cos.shape, -np.inf)
    newsrec[qi, near] = judged.p_retelling
    tf = TfIdf.fit(titles)
    m = tf.matrix(titles)
    tfidf = (m @ m.T).toarray()
    by_id = index_story_groups(uci_records(rows), embedder, config)
    groups = [by_id[r["ID"]] for r in rows]
    # The pair judgment's verdicts on sampled pairs, as the pair model's fit draws them (times and outlets
    # known): retelling = same story against same category, other story; related = same story against
    # another category.
    a, b, retold, related = uci_pairs(rows)
    judged = load_pair_model(config.model, config.pair_model or None).judge(
        (vectors[a] * vectors[b]).sum(axis=1), sides.take(a), sides.take(b))
    return {
        "kind": "uci",
        "headlines": len(rows),
        "stories": int(len(set(labels))),
        "p_at_5_newsrec": precision_at_5(newsrec, labels),
        "p_at_5_cosine": precision_at_5(cos, labels),
        "p_at_5_tfidf": precision_at_5(tfidf, labels),
        "groups": {"count": len(set(groups)),
                   **pairwise_f1(groups, list(labels))},
        "judgment": _judgment_scores(judged, retold, related),
    }


def uci_pairs(rows: list[dict], per_class: int = 3000, seed: int = 7):
    """(rows a, rows b, retelling labels, related labels) of sampled UCI headline pairs, up to `per_class`
    of each kind: the same story (both labels 1), the same category and another story (retelling 0),
    another category (related 0); None where a pair has no label."""
    import random

    import numpy as np

    rng = random.Random(seed)
    by_story: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rows):
        by_story.setdefault((r["CATEGORY"], r["STORY"]), []).append(i)
    stories = [s for s in by_story]
    same, hard, far = [], [], []
    for _ in range(per_class * 6):
        if len(stories) < 2:
            break
        s, t = rng.sample(stories, 2)
        if len(by_story[s]) > 1 and len(same) < per_class:
            same.append(tuple(rng.sample(by_story[s], 2)))
        pair = (rng.choice(by_story[s]), rng.choice(by_story[t]))
        if s[0] == t[0]:
            if len(hard) < per_class:
                hard.append(pair)
        elif len(far) < per_class:
            far.append(pair)
    pairs = same + hard + far
    retold = [1] * len(same) + [0] * len(hard) + [None] * len(far)
    related = [1] * len(same) + [None] * len(hard) + [0] * len(far)
    a = np.asarray([p[0] for p in pairs], dtype=np.int64)
    b = np.asarray([p[1] for p in pairs], dtype=np.int64)
    return a, b, retold, related


def eval_same_story(path: str | Path, embedder, config) -> dict:
    """Dispatch on the file's fields: SemEval-2022 pairs, UCI headlines or MSRP pairs."""
    kind, rows = labelled_rows(path, SAME_STORY_KINDS)
    out = {"semeval": eval_semeval, "uci": eval_uci, "msrp": eval_msrp}[kind](rows, embedder, config)
    return {"task": "same-story", "data": str(path), "backend": embedder.backend, "model": embedder.name, **out}


# --- syndicated copies ------------------------------------------------------------------------


def eval_dups(path: str | Path, embedder, config, *, originals: int = 1000, seed: int = 7) -> dict:
    """Plant syndicated copies (1-10% of words edited, furniture, new headline, cut endings) among
    Wikinews articles, build an index through the real path, and score the `near` links."""
    import random
    import tempfile

    from recommender.text.articles import parse_article
    from recommender.index.indexing import build_index
    from recommender.index.store import IndexDir

    _, rows = labelled_rows(path, {"corpus": RELATED_KINDS["corpus"]})
    rng = random.Random(seed)
    rows = [r for r in rows if len(r.get("body", "").split()) >= 80]
    if len(rows) < 2:
        raise BadInput(f"{path}: copies are planted among articles of 80 words or more; it holds {len(rows)}", field="data")
    rng.shuffle(rows)
    chosen = rows[: originals * 2]
    planted = chosen[:originals]
    copies = [make_copy(r, rng, edit_share=0.01 + 0.09 * (i % 10) / 9) for i, r in enumerate(planted)]
    records = [{**r, "published": r.get("date", r.get("published", ""))} for r in chosen] + copies
    articles = [parse_article(r) for r in records]
    with tempfile.TemporaryDirectory() as tmp:
        build_index(articles, Path(tmp) / "idx", embedder, config)
        snap = IndexDir(Path(tmp) / "idx").open()
        ids = snap.ids(snap.keys)
        links = snap.links()
        snap.close()
    def origin(article_id: str) -> str:
        return article_id.removesuffix("-copy")

    near = [(ids[link.a], ids[link.b]) for link in links if link.level in ("exact", "near")]
    true_pairs = {frozenset((r["id"], r["id"] + "-copy")) for r in planted}
    found = {frozenset(p) for p in near}
    correct = found & true_pairs
    wrong = [p for p in near if origin(p[0]) != origin(p[1])]
    same_story = [(ids[link.a], ids[link.b]) for link in links if link.level == "same-story"]
    return {
        "task": "dups",
        "data": str(path),
        "articles": len(articles),
        "planted_copies": len(copies),
        "near": {
            "recall": round(len(correct) / len(true_pairs), 4),
            "precision": round(1 - len(wrong) / len(near), 4) if near else 1.0,
            "found": len(correct),
            "false_links": len(wrong),
            "false_examples": [list(p) for p in wrong[:5]],
        },
        "copies_linked_only_as_same_story": sum(
            1 for a, b in same_story if origin(a) == origin(b)
        ),
    }


# --- related stories --------------------------------------------------------------------------


def _build_eval_index(records: list[dict], embedder, config, tmp: Path):
    from recommender.text.articles import parse_article
    from recommender.facade import Recommender

    rec = Recommender(config, embedder, index_path=str(tmp / "idx"))
    rec.build(parse_article(r) for r in records)
    return rec


def _top_by(sim, k: int):
    import numpy as np

    s = np.array(sim, dtype=np.float64, copy=True)
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1)[:, :k]


def _list_scores(lists: dict[str, list[str]], story: dict[str, str], category: dict[str, str] | None,
                 k: int, short: dict[str, bool] | None = None) -> dict:
    """Own-story share, distinct stories and (with categories) same-category P@k of related lists; the
    share of lists shorter than k (the minimum score left too few)."""
    own, distinct, cat, sizes = [], [], [], []
    for qid, items in lists.items():
        sizes.append(len(items))
        if not items:
            continue
        own.append(sum(story.get(i) == story[qid] for i in items) / len(items))
        distinct.append(len({story.get(i, i) for i in items}))
        if category is not None:
            cat.append(sum(category[i] == category[qid] for i in items) / len(items))
    out = {"own_story_share": mean(own), "distinct_stories": mean(distinct), "mean_items": mean(sizes),
           "short_lists": mean([float(n < k) for n in sizes]), "lists": len(sizes), "scored": len(own)}
    if category is not None:
        out["category_p_at_5"] = mean(cat)
    if short is not None:
        out["flagged_short"] = mean([float(short[q]) for q in lists])
    return out


def _answer(index: str, config, k: int, queries: list[str]) -> list[tuple[list[str], bool]]:
    """(each query's list of ids, whether it came back short), from a built index opened read-only
    (related by id needs no model)."""
    from recommender.facade import Recommender

    rec = Recommender(config, read_only=True, index_path=index)
    rec.load()
    params = rec.params(k=k)
    out = []
    for qid in queries:
        answer = rec.related(params, id=qid)
        out.append(([i["id"] for i in answer["items"]], bool(answer.get("short"))))
    rec.snapshot.close()
    return out


def _one_thread() -> None:
    """A pool process's FAISS and BLAS work on one thread: a process a core, each with threads for every
    core, fight over the cores (the UCI lists took twice as long)."""
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(1)
    threadpool_limits(1)


def related_by_id(index: str | Path, config, k: int, queries: list[str]) -> tuple[dict[str, list[str]], dict[str, bool]]:
    """(lists, short) by query: _answer over the machine's cores (over_cores; each process opens the
    index itself), the same answers as one process gives."""
    from functools import partial

    answers = over_cores(partial(_answer, str(index), config, k), list(queries), least=500)
    return ({q: items for q, (items, _) in zip(queries, answers)},
            {q: short for q, (_, short) in zip(queries, answers)})


def _related_lists(records: list[dict], embedder, config, k: int, queries: list[str] | None = None):
    """(newsrec lists, flagged-short by query, ids in row order, vectors) over an index of these records."""
    import tempfile

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        rec = _build_eval_index(records, embedder, config, Path(tmp))
        lists, short = related_by_id(rec.index_dir.path, config, k,
                                     queries if queries is not None else [r["id"] for r in records])
        snap = rec.snapshot
        ids = snap.ids(snap.keys)
        order = [ids[int(key)] for key in snap.keys]
        vectors = np.asarray(snap.vectors)
        snap.close()
    return lists, short, order, vectors


def _gold_story_lists(order: list[str], sims, story: dict[str, str], k: int) -> dict[str, list[str]]:
    """For each row (`sims`: the rows' cosines to each other), the closest member of each of the k
    nearest *other* stories by the gold labels (a story ranked by its closest member). A list that
    knew the stories perfectly and ranked them by the model's cosine would show these: set beside the
    real lists, it tells a flaw of the ranking from a limit of the model."""
    import numpy as np

    labels = np.array([story[q] for q in order])
    out = {}
    for i, q in enumerate(order):
        picked: dict[str, str] = {}
        for j in np.argsort(-sims[i], kind="stable"):
            if labels[j] != labels[i] and labels[j] not in picked:
                picked[labels[j]] = order[j]
                if len(picked) == k:
                    break
        out[q] = list(picked.values())
    return out


def eval_related_uci(rows: list[dict], embedder, config, k: int = 5, folds: int = 2) -> dict:
    """UCI headlines in two text shapes (the headline alone; the headline with a one-line body, here
    the headline repeated, as feeds store it): with the project's own groups collapsing, how much of
    the top 5 is the story being read, how many distinct stories it shows, same-category precision,
    overall and per story fold (`folds` of them); against raw cosine and TF-IDF without collapsing, in
    the same run; and the category precision of the five nearest other stories by the gold labels (what
    perfect story knowledge would give with the model's cosine)."""
    from recommender.text.lexical import TfIdf

    story = {r["ID"]: r["STORY"] for r in rows}
    category = {r["ID"]: r["CATEGORY"] for r in rows}
    fold = {r["ID"]: story_fold(r["STORY"], folds) for r in rows}
    out: dict = {"kind": "uci", "headlines": len(rows), "stories": len(set(story.values())), "shapes": {}}
    for shape in ("headline", "headline_body"):
        records = uci_records(rows)
        if shape == "headline_body":
            records = [{**r, "body": r["title"]} for r in records]
        ours, short, order, vectors = _related_lists(records, embedder, config, k)
        out["shapes"][shape] = {
            "newsrec": _list_scores(ours, story, category, k, short),
            "folds": {str(f): _list_scores({q: v for q, v in ours.items() if fold[q] == f}, story, category, k)
                      for f in range(folds)},
        }
        sims = vectors @ vectors.T
        known = _gold_story_lists(order, sims, story, k)
        out["shapes"][shape]["gold_stories_by_cosine"] = {
            "category_p_at_5": _list_scores(known, story, category, k)["category_p_at_5"],
            "folds": {str(f): _list_scores({q: v for q, v in known.items() if fold[q] == f}, story, category,
                                           k)["category_p_at_5"] for f in range(folds)},
        }
        if shape == "headline":
            top = _top_by(sims, k)
            raw = {order[i]: [order[j] for j in top[i]] for i in range(len(order))}
            titles = [r["title"] for r in records]
            m = TfIdf.fit(titles).matrix(titles)
            ttop = _top_by((m @ m.T).toarray(), k)
            tfidf = {records[i]["id"]: [records[j]["id"] for j in ttop[i]] for i in range(len(records))}
            out["cosine_no_collapse"] = _list_scores(raw, story, category, k)
            out["tfidf_no_collapse"] = _list_scores(tfidf, story, category, k)
    out["newsrec"] = out["shapes"]["headline"]["newsrec"]  # the headline shape, as pinned before
    return out


def _outlet(url: str) -> str:
    """A search result's outlet: the host of its address, without 'www.'."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def eval_related_msvcode(rows: list[dict], embedder, config, k: int = 5, folds: int = 2) -> dict:
    """MSVCode news search results (title + description, 17 topics): how much of each related list is
    the story being read, by the fine-grained human groups (`gold1`), overall and per topic fold."""
    records = [{"id": r["doc_id"], "title": r.get("meta_title") or r["title"], "body": r.get("description") or "",
                "published": r.get("date") or "", "url": r.get("url") or "", "source": _outlet(r.get("url") or "")}
               for r in rows]
    story = {r["doc_id"]: r["gold1"] for r in rows if r.get("gold1")}
    queries = sorted(story)
    ours, short, _, _ = _related_lists(records, embedder, config, k, queries)
    fold = {r["doc_id"]: story_fold(r.get("topic", ""), folds) for r in rows}
    return {"kind": "msvcode", "documents": len(records), "queries": len(queries),
            "newsrec": _list_scores(ours, story, None, k, short),
            "folds": {str(f): _list_scores({q: v for q, v in ours.items() if fold[q] == f}, story, None, k)
                      for f in range(folds)}}


def eval_related_semeval(rows: list[dict], embedder, config, k: int = 5) -> dict:
    """SemEval-2022's related pairs in one language (Overall <= 2) as related lists, ten languages: every
    article of the set indexed once (identical texts once, as served), each article of a pair asks for
    its list, and the other is looked for in its top k; beside the plain cosine's and TF-IDF's top k,
    both kept to the article's language as the list is. Per language, and over the languages the model
    was and was not trained on (models.model_covers); the articles whole, and (`headlines`) their
    headlines alone, as a feed without bodies gives them."""
    canonical: dict[tuple[str, str], str] = {}
    same: dict[str, str] = {}
    records: list[dict] = []
    for r in rows:
        for aid, text, lang in zip(r["pair_id"].split("_"), (r["text1"], r["text2"]), (r["lang1"], r["lang2"])):
            if aid in same:
                continue
            title, body = as_served(text)
            first = canonical.setdefault((title, body), aid)
            same[aid] = first
            if first == aid:
                records.append({"id": aid, "title": title, "body": body, "lang": lang})
    asks: list[tuple[str, str]] = []
    for r in rows:
        a, b = (same[x] for x in r["pair_id"].split("_"))
        if r["lang1"] == r["lang2"] and semeval_labels(float(r["Overall"]))[1] == 1 and a != b:
            asks += [(a, b), (b, a)]
    headlines = [{**x, "title": x["title"] or " ".join(x["body"].split()[:20]), "body": ""} for x in records]
    return {"kind": "semeval", "articles": len(records), "queries": len(asks),
            **_partner_scores(records, asks, embedder, config, k),
            "headlines": _partner_scores(headlines, asks, embedder, config, k)}


def _partner_scores(records: list[dict], asks: list[tuple[str, str]], embedder, config, k: int) -> dict:
    """For (query, partner) asks over these records: the share of queries whose top k holds the
    partner, for newsrec's lists, the plain cosine and TF-IDF (both kept to the query's language)."""
    import numpy as np

    from recommender.embed.models import model_covers
    from recommender.text.lexical import TfIdf

    lang_of = {x["id"]: x["lang"] for x in records}
    ours, _, order, vectors = _related_lists(records, embedder, config, k, sorted({q for q, _ in asks}))
    row = {x: i for i, x in enumerate(order)}
    langs = np.asarray([lang_of[x] for x in order])
    text_of = {x["id"]: f"{x['title']}\n{x['body']}" for x in records}
    texts = [text_of[x] for x in order]
    tfidf = TfIdf.fit(texts).matrix(texts)

    def top(sims: np.ndarray, q: str) -> list[str]:
        sims = np.where(langs == lang_of[q], sims, -np.inf)
        sims[row[q]] = -np.inf
        return [order[j] for j in np.argsort(-sims, kind="stable")[:k]]

    found: dict[str, list[tuple[bool, bool, bool]]] = {}
    for q, want in asks:
        cos = top(vectors @ vectors[row[q]], q)
        lex = top((tfidf @ tfidf[row[q]].T).toarray().ravel(), q)
        found.setdefault(lang_of[q], []).append((want in ours.get(q, []), want in cos, want in lex))

    def scores(hits: list[tuple[bool, bool, bool]]) -> dict:
        return {"queries": len(hits), **{name: round(float(np.mean([h[i] for h in hits])), 4) if hits else None
                                          for i, name in enumerate(("newsrec", "cosine", "tfidf"))}}

    reads = [lang for lang in found if model_covers(embedder.name, lang)]
    return {"by_language": {lang: scores(hits) for lang, hits in sorted(found.items())},
            "model_reads": scores([h for lang in reads for h in found[lang]]),
            "model_does_not_read": scores([h for lang in found if lang not in reads for h in found[lang]]),
            "all": scores([h for hits in found.values() for h in hits])}


def eval_related_wikinews(rows: list[dict], related_path: str | Path, embedder, config, k: int = 5) -> dict:
    """Wikinews: recall@5 of the editors' "Related news" links, and same-topic precision@5."""
    import tempfile

    import numpy as np

    from recommender.text.lexical import TfIdf

    labels = [json.loads(line) for line in Path(related_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [{"id": r["id"], "title": r["title"], "body": r["body"], "published": r.get("date", ""),
                "url": r.get("url", ""), "source": "Wikinews"} for r in rows]
    ids = [r["id"] for r in records]
    known = set(ids)
    with_links = [l for l in labels if any(x in known for x in l.get("related_news", []))]
    with_topic = [l for l in labels if l.get("same_topic")]

    def score(top_of) -> dict:
        recall = []
        for l in with_links:
            wanted = [x for x in l["related_news"] if x in known]
            got = set(top_of(l["id"]))
            recall.append(len(got & set(wanted)) / len(wanted))
        precision = []
        for l in with_topic:
            got = top_of(l["id"])
            precision.append(sum(x in set(l["same_topic"]) for x in got) / k if got else 0.0)
        return {"editors_links_recall_at_5": mean(recall), "same_topic_p_at_5": mean(precision)}

    with tempfile.TemporaryDirectory() as tmp:
        rec = _build_eval_index(records, embedder, config, Path(tmp))
        asked = [q for q in dict.fromkeys(l["id"] for l in with_links + with_topic) if q in known]
        lists, _ = related_by_id(rec.index_dir.path, config, k, asked)
        newsrec = score(lambda qid: lists.get(qid, []))
        snap = rec.snapshot
        row_ids = {snap.row_of_key(snap.key_of_id(i)): i for i in ids}
        vectors = np.asarray(snap.vectors)
        snap.close()
    order = [row_ids[i] for i in range(len(ids))]
    pos = {i: n for n, i in enumerate(order)}
    cos = vectors @ vectors.T
    cos_top = _top_by(cos, k)
    tf = TfIdf.fit([r["title"] + " " + r["body"] for r in records])
    m = tf.matrix([r["title"] + " " + r["body"] for r in records])
    tpos = {r["id"]: n for n, r in enumerate(records)}
    tf_sim = (m @ m.T).toarray()
    tf_top = _top_by(tf_sim, k)
    return {
        "kind": "wikinews", "articles": len(records), "queries_with_editors_links": len(with_links),
        "queries_with_same_topic": len(with_topic),
        "newsrec": newsrec,
        "cosine_no_collapse": score(lambda q: [order[j] for j in cos_top[pos[q]]] if q in pos else []),
        "tfidf": score(lambda q: [records[j]["id"] for j in tf_top[tpos[q]]] if q in tpos else []),
    }


def eval_related(path: str | Path, embedder, config, *, related: str | None = None) -> dict:
    """Dispatch on the file's fields: UCI story clusters, MSVCode groups, SemEval-2022 pairs, or a corpus
    of articles with its editors' links (`related`, by default wikinews_en_related.jsonl beside it)."""
    path = Path(path)
    kind, rows = labelled_rows(path, RELATED_KINDS)
    if kind == "corpus":
        related = related or str(path.parent / "wikinews_en_related.jsonl")
        if not Path(related).is_file():
            raise BadInput(f"{related}: no such file: a corpus is scored against its editors' links (JSON lines: id, "
                           f"related_news, same_topic), given with --related", field="related")
        out = eval_related_wikinews(rows, related, embedder, config)
    else:
        out = {"uci": eval_related_uci, "msvcode": eval_related_msvcode, "semeval": eval_related_semeval}[kind](
            rows, embedder, config)
    return {"task": "related", "data": str(path), "backend": embedder.backend, **out}


def eval_site_links(index_path: str | Path, embedder, config, k: int = 5) -> dict:
    """The site's own ALSO READ links as free relevance labels: for each indexed article whose cut
    related links point at articles in the index (by URL, else by exact title), how many of those
    the top k contains, per source."""
    from recommender.facade import Recommender

    rec = Recommender(config, embedder, index_path=str(index_path))
    snap = rec.load()
    try:
        found = rec.site_link_agreement(k)
    finally:
        snap.close()
    return {"task": "site-links", "index": str(index_path), "k": k, "sources": found["sources"],
            "articles_with_links": found["articles_with_links"], "recall_at_k": found["recall_at_k"]}
