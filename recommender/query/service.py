"""The query side: an embedder, an index directory and the live snapshot, behind plain methods.

`QueryService` answers questions (related lists, duplicates, comparisons, listings) and never writes;
`facade.Recommender` adds the writes on top of it, so this module does not import the build step.
A request reads `service.snapshot` once and uses that snapshot throughout, so a swap to a new
snapshot never changes an answer half-way.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from recommender.text.articles import Article, parse_article, read_as_headline
from recommender.text.cleaning import CleaningProfile, count_words, load_profile
from recommender.config import Config
from recommender.text.dates import Published
from recommender.text.language import language_posterior
from recommender.text.lexical import search_terms
from recommender.evidence.duplicates import (BUCKET_LIMIT, NEAR_COSINE, BandTable, carries_notice, classify_pair, lexical_part,
                                             minhash_signatures, overlap, Shingled, word_part)
from recommender.embed.embedding import Embedder, article_text, embedded_words, load_embedder
from recommender.errors import ArticleNotFound, BadInput, ConfigError, IndexNotReady
from recommender.embed.models import model_covers
from recommender.query.editorial import Choices, Editorial
from recommender.query.rules import load_rules
from recommender.query.ranking import (Candidate, CandidateVectors, Query, RankParams, rank_pool, story_of,
                                       within_age)
from recommender.index.store import LISTING_FIELDS, STORED_NEIGHBOURS, Hit, IndexDir, Meta, Record, Snapshot
from recommender.evidence.pairs import (RETELLING, RETELLING_VERDICT, PairModel, Sides, counted_containment,
                                       counted_in_slots, lexical_signatures, load_pair_model, token_containment, told_again)

__all__ = ["QueryService"]

LEVEL_ORDER = {"exact": 0, "near": 1, "same-story": 2}
MAX_CANDIDATES = 1000  # the widest candidate pool a related query examines
# Candidates a related query takes from its lexical (BM25) search, beside the embedding index's.
LEXICAL_CANDIDATES = 100
# The lexical ranking's weight in a list's order (times the `lexical` setting) for an article in a
# language the model was not trained on (models.model_covers): five times the model's two rankings
# together, so the search's order leads and theirs break its near ties. SemEval's related pairs as
# lists with the english model (`newsrec eval related`, docs/measurements.md): the partner in the top 5
# for 0.785 of the queries in the six languages it does not read, 0.920 with the lexical ranking
# leading (TF-IDF's 0.920, the plain cosine's 0.696); each language held out chose the same weight.
LEXICAL_LEADS = 10.0
# The lexical ranking's least weight (times `lexical`) where the model reads the language, however much
# of the article it read: BM25 weighs a shared word by how few of the site's articles hold it, which
# neither the embedding nor the pair model's word overlap (every content word alike) does. Where the model
# did not read all of an article, the share it did not read weighs, if more. Measured on every kind with
# lists (docs/measurements.md, Related lists): at a tenth, the Wikinews cut to 40 words finds more of the
# editors' links (0.686 -> 0.724) and UCI's lists come back short half as often; the other kinds' lists
# move by a link or a few items either way (the 1.6k subset's cuts: same-topic precision 0.830 ->
# 0.816). At a quarter and more, UCI's same-category precision falls on every runtime, and the
# multilingual subset's cuts go below the plain cosine of the model.
LEXICAL_READ = 0.1
PUBLIC_COLUMNS = ("id", "title", "url", "published", "source", "section", "lang", "image")
GROUP_SORTS = ("size", "newest", "title")


class QueryService:
    """Answers queries against the index's live snapshot.

    `read_only=True` opens the index without a model (nothing is embedded: listings, groups, stats,
    related-by-id): the snapshot's own model is trusted and anything that must embed text says so.
    """

    def __init__(self, config: Config, embedder: Embedder | None = None, *, index_path: str | None = None,
                 read_only: bool = False):
        self.config = config
        self.read_only = read_only
        self.index_dir = IndexDir(index_path or config.index)
        self.embedder = (embedder if embedder is not None or read_only
                         else load_embedder(config, built_with=self.index_dir.manifest().get("backend")))
        self.editorial = Editorial(self.index_dir.path)
        self.rules = load_rules(config.site_rules)
        self.profile: CleaningProfile | None = load_profile(config.site_patterns)
        self._snapshot: Snapshot | None = None
        self._pairs: PairModel | None = None
        self._swap_lock = threading.Lock()
        self._last_check = 0.0

    # --- snapshots --------------------------------------------------------------------------

    def _open(self) -> Snapshot:
        if self.embedder is None:
            return self.index_dir.open()
        return self.index_dir.open_for(self.embedder, self.config.max_tokens)

    def load(self) -> Snapshot:
        """Open the index's current snapshot and make it live (raises IndexNotReady / IndexMismatch)."""
        with self._swap_lock:
            if not self.read_only:
                with self.index_dir.write_lock():
                    self.index_dir.clean_leftovers()
            snap = self._open()
            self._snapshot = snap
            return snap

    def _model(self) -> Embedder:
        if self.embedder is None:
            raise ConfigError("this index was opened read-only, without a model: open it with an embedder to "
                              "embed text (drop --read-only, or construct the Recommender with one)")
        return self.embedder

    @property
    def current(self) -> Snapshot | None:
        """The live snapshot, or None before an index is loaded."""
        return self._snapshot

    @property
    def snapshot(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            raise IndexNotReady(
                f"no index loaded from {str(self.index_dir.path)!r}: build one with "
                f"`newsrec build --input FILE --index {self.index_dir.path}`"
            )
        return snap

    def maybe_reload(self, *, force: bool = False) -> bool:
        """Swap in a newer snapshot if CURRENT moved (checked at most every reload_interval seconds)."""
        now = time.monotonic()
        interval = self.config.reload_interval
        if not force and (interval <= 0 or now - self._last_check < interval):
            return False
        self._last_check = now
        name = self.index_dir.current_name()
        current = self._snapshot
        if not name or (current is not None and current.name == name):
            return False
        with self._swap_lock:
            if self._snapshot is not None and self._snapshot.name == name:
                return False
            snap = self._open()
            self._snapshot = snap  # one reference swap; requests holding the old one finish on it
        return True

    # --- helpers ----------------------------------------------------------------------------

    def parse(self, record: Mapping[str, Any], *, require_id: bool = False) -> Article:
        """The article as the index reads it: cleaned, and read as its headline when its body is one the
        index knows as a notice (duplicates.notice_bodies)."""
        art = parse_article(record, require_id=require_id, profile=self.profile)
        snap = self._snapshot
        return read_as_headline(art, "notice") if snap is not None and carries_notice(art, snap.notices) else art

    def embed(self, article: Article) -> np.ndarray:
        text = article_text(article.title, article.body, self.config.max_tokens)
        return self._model().encode([text])[0]

    def low_confidence(self, lang: str, text: str = "") -> bool:
        """True when the model was not trained on the text's language: scores mean less. A text too short
        for its language to be named (`lang` empty: a headline) is flagged when the languages the model
        was trained on have less than even odds together in the detector's posterior, or when it has too
        few letters to tell.

        The model is the one loaded (an index serves only with the model it was built with), else,
        read-only, the one the index names: comparing two texts needs no index."""
        name = self.embedder.name if self.embedder is not None else self.snapshot.manifest.get("model") or ""
        if lang or not text:
            return not model_covers(name, lang)
        return sum(p for other, p in language_posterior(text) if model_covers(name, other)) < 0.5

    @property
    def pairs(self) -> PairModel:
        """The pair judgment fitted for the model the index is served with (loaded once)."""
        if self._pairs is None:
            name = self.embedder.name if self.embedder is not None else self.snapshot.manifest.get("model") or ""
            self._pairs = load_pair_model(name, self.config.pair_model or None)
        return self._pairs

    def _judge_rows(self, snap: Snapshot, art: Article, cosines: np.ndarray, rows: np.ndarray,
                    keys: Sequence[int] | None = None, stored: Mapping[int, Record] | None = None):
        """The pair judgment of an article not in the index against rows of `snap` (row-aligned cosines): the
        snapshot the request read, never the live reference again (a swap may have moved it). Given the rows'
        keys (and their records, by key, where the caller has read them), the shared content words are
        counted, not estimated (_counted_lex)."""
        counted = (None if keys is None
                   else self._counted_lex(snap, article_text(art.title, art.body, self.config.max_tokens), rows, keys,
                                          stored))
        return self.pairs.judge(cosines, self._sides(art), _row_sides(snap, rows), counted)

    def _counted_lex(self, snap: Snapshot, read: str, rows: np.ndarray, keys: Sequence[int],
                     stored: Mapping[int, Record] | None = None) -> np.ndarray:
        """`lex` of a text given in full (what the model read of it) against stored articles (rows and
        their keys, aligned): its content words counted in what the model read of each, from the words'
        hashes the snapshot stores; an article whose words did not fit them, or a snapshot written before
        them, is counted in its stored text (`stored`, by key, where the caller has read it)."""
        signatures = np.asarray(snap.minhash[np.asarray(rows, dtype=np.int64)])
        sizes = lexical_part(signatures)[:, 0].astype(np.float64)
        slots = word_part(signatures)
        counted = counted_in_slots(read, slots, sizes) if slots is not None else np.full(len(keys), np.nan)
        left = np.flatnonzero(np.isnan(counted))
        if len(left):
            texts = stored if stored is not None else snap.records([keys[i] for i in left])
            counted[left] = counted_containment(
                read, [article_text(texts[keys[i]].title, texts[keys[i]].body, self.config.max_tokens) for i in left],
                sizes[left])
        return counted

    def _sides(self, art: Article) -> Sides:
        """What the pair judgment reads of an article not in the index."""
        return Sides.of([art.when.days], [embedded_words(art.title, art.body, self.config.max_tokens)],
                        lexical_signatures([article_text(art.title, art.body, self.config.max_tokens)]), art.source,
                        art.lang, art.when.precise)

    def _retelling_bars(self) -> dict[str, float]:
        """Where the pair judgment calls two texts a retelling, as cosines: the same day, and undated, with
        no content words shared (shared words lower both)."""
        day = Sides.of([0.0], [100])
        return {f"retelling, {name}, no shared words": round(self.pairs.cosine_for(RETELLING, RETELLING_VERDICT, day, other), 2)
                for name, other in (("same day", day), ("undated", Sides.of([np.nan], [100])))}

    def resolve(self, snap: Snapshot, *, id: str | None = None, url: str | None = None) -> int:
        if id:
            return snap.key_of_id(id)
        if url:
            return snap.key_of_url(url)
        raise BadInput("give 'id' or 'url'", field="id")

    def params(self, **overrides: Any) -> RankParams:
        c = self.config
        base = dict(
            k=c.default_k, half_life_days=c.half_life_days, mmr_lambda=c.mmr_lambda, min_score=c.min_score,
            collapse=c.collapse, story_context=c.story_context, feedback=c.feedback, feedback_stories=c.feedback_stories,
            pool_stories=c.pool_stories, lexical=c.lexical,
        )
        base.update({k: v for k, v in overrides.items() if v is not None})
        return RankParams(**base)

    # --- related ----------------------------------------------------------------------------

    def related(
        self,
        params: RankParams,
        *,
        id: str | None = None,
        url: str | None = None,
        article: Mapping[str, Any] | None = None,
        explain: bool = False,
    ) -> dict:
        """Related stories for an indexed article (id/url) or for an article given in full."""
        snap = self.snapshot
        info: dict[str, Any]
        query_lang = ""
        asked_k = params.k
        params = self.rules.params(params)  # the site's rules hold for every list
        pinned: list[dict] = []
        if article is not None:
            art = self.parse(article)
            query_lang = art.lang
            sides = self._sides(art)
            query = Query.unindexed(vector=self.embed(art), when=art.when, words=int(sides.words[0]),
                                    lexical=sides.lexsig[0], source=art.source,
                                    read=article_text(art.title, art.body, self.config.max_tokens))
            info = {"id": art.id or None, "title": art.title, "indexed": False}
            words_of = f"{art.title}\n{art.body}"
            if explain:
                info.update(also_read=list(art.also_read), removed=art.removed)
        else:
            key = self.resolve(snap, id=id, url=url)
            query = self._indexed_query(snap, key)
            full = snap.record(key)  # one read of the row: its metadata, and the text the lexical side reads
            query_lang = full.lang
            info = {"id": full.id, "title": full.title, "indexed": True}
            words_of = f"{full.title}\n{full.body}"
            if explain:  # the cut furniture is shown only when asked for
                info.update(also_read=list(full.also_read), removed=list(full.removed))
            choices = self.editorial.get(full.id)
            if choices:
                # The editors' pins lead (in their order, counting towards k); the rest of the list is
                # ranked as ever, without the excluded stories and never repeating a pin's story.
                pinned, groups = self._pinned(snap, query, choices.pins, params)
                params = replace(params, k=params.k - len(pinned),
                                 exclude_groups=params.exclude_groups | groups | _stories(snap, choices.excludes),
                                 exclude_ids=params.exclude_ids | frozenset(choices.pins) | frozenset(choices.excludes))
        info["lang"] = query_lang or None
        info["low_confidence"] = self.low_confidence(query_lang, words_of)
        own_language = not params.langs and not params.cross_lang and bool(query_lang)
        if own_language:
            # A reader of a German page is shown German stories; cross_lang=1 (or lang=...) widens it.
            params = replace(params, langs=frozenset({query_lang}))
        # The lexical search's best matches join the candidates (each judged by the pair model like any
        # other), and its ranking has a say in the order, weighed by what the publisher set times the
        # share of the article the model did not read (words past the embedded lead are evidence the
        # embedding never saw), and never less than LEXICAL_READ of it: the search weighs a shared word
        # by its rarity on the site, which nothing else here does. In a language the model was not
        # trained on its cosines say little, and the lexical ranking leads (LEXICAL_LEADS).
        asked_params = params
        unread = unread_share(query.words, words_of)
        leads = bool(query_lang) and info["low_confidence"]
        params = replace(params, lexical=params.lexical * (LEXICAL_LEADS if leads else max(unread, LEXICAL_READ)))
        asked, lexical = (self._lexical_hits(snap, words_of, query.key, names=explain) if params.lexical > 0 or explain
                          else ([], [] if snap.has_lexical else None))
        if explain:
            info["lexical_terms"] = asked
            info["lexical_unread_share"] = round(unread, 3)
            info["lexical_leads"] = leads
        pool_lexical = (lexical or []) if params.lexical > 0 else []
        if params.k > 0 and query.words > 0:
            ranked, meta_of, n_cand, floor = self._ranked_list(snap, query, params, pool_lexical)
        else:  # pinned in full, or nothing to match
            ranked, meta_of, n_cand, floor = [], {}, 0, 1.0
        answer_extra: dict[str, Any] = {"short": len(ranked) < params.k}
        if lexical is None:
            answer_extra["notes"] = ["this index was built without its lexical part: lists come from the embedding "
                                     "index alone; `newsrec build` again adds it"]
        if query.words == 0 and params.k > 0:
            # No word in any script: what the model makes of punctuation relates it to nothing.
            answer_extra["short_reason"] = "the article has no words to match: its title and body hold only punctuation or symbols"
        elif len(ranked) < params.k:
            answer_extra["short_reason"] = _short_reason(snap, params, n_cand, floor, len(ranked))
            if own_language:
                # The article's own language was not asked for: a list it leaves short takes other
                # languages too, and says so.
                wider = replace(params, langs=frozenset())
                more, more_meta, more_cand, more_floor = self._ranked_list(snap, query, wider, pool_lexical)
                if len(more) > len(ranked):
                    widened = (f"kept to the article's language ({query_lang}) it held {len(ranked)}, so other "
                               f"languages were added (lang= keeps one)")
                    ranked, meta_of, params = more, more_meta, wider
                    answer_extra["short"] = len(ranked) < params.k
                    # why the widened list is still short, if it is, then why it was widened
                    answer_extra["short_reason"] = "; ".join(
                        ([_short_reason(snap, params, more_cand, more_floor, len(ranked))] if answer_extra["short"] else [])
                        + [widened])
        items = list(pinned)
        for r in ranked:
            items.append({
                **_public(meta_of[r.candidate.key]),
                "score": r.score,
                "similarity": r.similarity,
                "recency": r.recency,
                "story_similarity": r.story_similarity,
                "neighbourhood_similarity": r.neighbourhood_similarity,
                "p_related": None if r.p_related is None else round(r.p_related, 4),
                "p_retelling": None if r.p_retelling is None else round(r.p_retelling, 4),
                # The same story, kept: the outlet's own next article on it (pairs.told_again).
                "relation": "development" if (r.p_retelling or 0.0) >= RETELLING_VERDICT else "related",
                "lexical_rank": None if r.candidate.lexical_rank is None else r.candidate.lexical_rank + 1,
                "reason": r.reason,
                "group_size": r.group_size,
                "pinned": False,
            })
        shown = _public_params(replace(params, lexical=asked_params.lexical, k=asked_k))
        return {"query": info, "items": items, "snapshot": snap.name, "params": shown, **answer_extra}

    def _pinned(self, snap: Snapshot, query: Query, pins: Sequence[str],
                params: RankParams) -> tuple[list[dict], frozenset[int]]:
        """(the list items of an article's pins still indexed and allowed by the site's rules, in order,
        at most k; the stories they stand for). A pin's numbers are its own evidence against the article;
        no recency or rank applies to it."""
        found = snap.keys_of_ids(pins)  # one deleted since it was pinned is dropped here, reported on the admin page
        keys = [found[p] for p in pins if p in found]
        meta = snap.meta(keys)
        keys = [k for k in keys if _allowed(meta[k], params)][:params.k]
        if not keys:
            return [], frozenset()
        rows = snap.rows_of_keys(keys)
        sims = (np.asarray(snap.vectors[rows]) @ query.vector).astype(np.float64)
        judged = self.pairs.judge(sims, query.sides(), _row_sides(snap, rows, [meta[k].source for k in keys]))
        items = []
        for n, key in enumerate(keys):
            sim = round(float(sims[n]), 4)
            items.append({**_public(meta[key]), "score": sim, "similarity": sim, "recency": 1.0,
                          "story_similarity": None, "neighbourhood_similarity": None,
                          "p_related": round(float(judged.p_related[n]), 4),
                          "p_retelling": round(float(judged.p_retelling[n]), 4),
                          "relation": "development" if judged.p_retelling[n] >= RETELLING_VERDICT else "related",
                          "lexical_rank": None, "reason": f"pinned by an editor (similar text, cosine {sim:.2f})",
                          "group_size": 1, "pinned": True})
        return items, _stories(snap, [meta[k].id for k in keys])

    # --- editors' choices -------------------------------------------------------------------

    def choices(self, article_id: str) -> dict:
        """An article's pinned and excluded stories, each with its title, or `gone` when deleted since."""
        snap = self.snapshot
        key = snap.key_of_id(article_id)  # ArticleNotFound for an unknown article
        choices = self.editorial.get(article_id)
        titles = self.titles(list(choices.pins) + list(choices.excludes))

        def listed(ids: Sequence[str]) -> list[dict]:
            return [{"id": i, "title": titles.get(i), "gone": i not in titles} for i in ids]
        return {"id": article_id, "title": snap.meta([key])[key].title, "pins": listed(choices.pins),
                "excludes": listed(choices.excludes)}

    def linked_stories(self, article_id: str) -> list[dict]:
        """The indexed articles the article's own cut ALSO READ links point at (by url, else by their
        headline as the title of an indexed article), in page order: what its editors once linked,
        offered to them as pins (never applied by themselves)."""
        snap = self.snapshot
        record = snap.record(snap.key_of_id(article_id))
        found: dict[int, None] = {}
        for link in record.also_read:
            url, title = (link.get("url") or "", (link.get("title") or "").strip()) if isinstance(link, dict) else ("", "")
            key = None
            try:
                key = snap.key_of_url(url) if url else None
            except ArticleNotFound:
                pass
            if key is None and title:
                key = next((m.key for m in snap.title_search(title, 5) if m.title.strip().casefold() == title.casefold()),
                           None)
            if key is not None and key != record.key:
                found[key] = None
        meta = snap.meta(list(found))
        return [{"id": meta[k].id, "title": meta[k].title} for k in found if k in meta]

    def set_choices(self, article_id: str, pins: Any, excludes: Any) -> dict:
        """Replace an article's pinned stories (in order) and excluded ones. Checked whole before anything
        is stored: known articles, not the article itself, no story both pinned and excluded, at most
        max_k pins (BadInput, naming the field, otherwise)."""
        snap = self.snapshot
        snap.key_of_id(article_id)
        lists = {}
        for field, given in (("pins", pins), ("excludes", excludes)):
            if not isinstance(given, (list, tuple)) or not all(isinstance(i, str) and i for i in given):
                raise BadInput(f"'{field}' must be a list of article ids", field=field)
            if len(set(given)) != len(given):
                raise BadInput(f"'{field}' names an article twice", field=field)
            if article_id in given:
                raise BadInput(f"an article cannot be in its own list ('{field}' names {article_id!r})", field=field)
            known = self.titles(list(given))
            unknown = [i for i in given if i not in known]
            if unknown:
                raise BadInput(f"'{field}' names {unknown[0]!r}, which is not in the index", field=field)
            lists[field] = tuple(given)
        if len(lists["pins"]) > self.config.max_k:
            raise BadInput(f"at most {self.config.max_k} pins (max_k): a list never shows more", field="pins")
        both = set(lists["pins"]) & set(lists["excludes"])
        if both:
            raise BadInput(f"{sorted(both)[0]!r} is both pinned and excluded", field="excludes")
        self.editorial.put(article_id, Choices(lists["pins"], lists["excludes"]))
        return self.choices(article_id)

    @staticmethod
    def _lexical_hits(snap: Snapshot, text: str, key: int | None = None, *,
                      names: bool = True) -> tuple[list[str], list[tuple[int, float]] | None]:
        """(the terms asked for, the best lexical matches as (key, BM25 score)) for a query text; the
        matches are None when the snapshot has no lexical part, empty when no word of the text
        qualifies (none found in another article, or a script the index does not split into words).
        An indexed article (`key`) asks for the terms the snapshot chose from its text when written
        (the same rule); their names are looked up only when wanted."""
        if not snap.has_lexical:
            return [], None
        cols = snap.query_terms(snap.row_of_key(key)) if key is not None else None
        if cols is not None:
            return (snap.term_names(cols) if names else []), snap.lexical_search_columns(cols, LEXICAL_CANDIDATES)
        terms = search_terms(text, snap.term_docs, snap.count)
        return terms, snap.lexical_search(terms, LEXICAL_CANDIDATES)

    def _ranked_list(self, snap: Snapshot, query: Query, params: RankParams,
                     lexical: list[tuple[int, float]] | None = None):
        """(ranked, metadata by key, candidates examined, lowest candidate cosine) for a query. The
        candidate pool widens while too few survive: a big story (hundreds of copies) or strict filters
        can use up the nearest candidates, and a list of k chosen from barely k other stories is no
        choice (params.pool_stories)."""
        n_cand = min(snap.count, max(STORED_NEIGHBOURS, params.k * 4 + len(params.exclude_ids)))
        searched: list[Hit] = []
        made: dict[int, Candidate] = {}  # each candidate judged once, however often the pool widens
        excluded = frozenset(snap.keys_of_ids(sorted(params.exclude_ids)).values()) if params.exclude_ids else frozenset()
        while True:
            ranked, meta_of, floor, pool = self._rank_candidates(snap, query, n_cand, params, searched, lexical or [],
                                                                 made=made, excluded=excluded)
            # Scores never exceed similarity, so candidates further out than min_score cannot help.
            enough = len(ranked) >= params.k and pool >= params.pool_stories
            if enough or n_cand >= min(snap.count, MAX_CANDIDATES) or floor < params.min_score:
                return ranked, meta_of, n_cand, floor
            n_cand = min(snap.count, MAX_CANDIDATES, n_cand * 4)

    @staticmethod
    def _indexed_query(snap: Snapshot, key: int) -> Query:
        row = snap.row_of_key(key)
        story = int(snap.story_group[row])
        return Query.indexed(key=key, vector=np.asarray(snap.vectors[row]), dup_group=int(snap.dup_group[row]),
                             story_group=story, when=snap.published(row),
                             words=int(snap.words_read([row])[0]), story_centroid=snap.story_centroid(story),
                             lexical=lexical_part(snap.minhash[row]), source=snap.meta([key])[key].source)

    def _rank_candidates(self, snap: Snapshot, query: Query, n_cand: int, params: RankParams,
                         searched: list[Hit], lexical: list[tuple[int, float]], *, made: dict[int, Candidate],
                         excluded: frozenset[int] = frozenset()):
        """(ranked, the ranked items' metadata by key, lowest candidate cosine, other stories ranked from)
        for the query's n_cand nearest articles. Past the stored neighbours, the widest pool is searched once into
        `searched` and each widening takes its first n_cand (a flat or IVF search of 1,000 costs about
        what one of 256 does: the scan, not k, is the work); `made` keeps the candidates judged by an
        earlier, narrower pool of the same query."""
        hits = snap.stored_neighbours(snap.row_of_key(query.key), n_cand) if query.key is not None else None
        if hits is None and n_cand <= STORED_NEIGHBOURS:
            hits = snap.search(query.vector, n_cand)
        elif hits is None:
            if not searched:
                searched.extend(snap.search(query.vector, min(snap.count, MAX_CANDIDATES)))
            hits = searched[:n_cand]
        floor = min((h.score for h in hits), default=-1.0)
        # The lexical search's matches join the pool with their exact cosines.
        lexical_rank = {key: n for n, key in enumerate(key for key, _ in lexical if key != query.key)}
        have = {h.key for h in hits}
        extra = [key for key in lexical_rank if key not in have and key != query.key]
        if extra:
            extra_rows = snap.rows_of_keys(extra)
            cosines = (np.asarray(snap.vectors[extra_rows]) @ query.vector).astype(np.float64)
            hits = list(hits) + [Hit(int(r), key, float(c)) for r, key, c in zip(extra_rows, extra, cosines)]
        # Outlets, sections and languages come from the snapshot's arrays; the metadata table is read for
        # the items listed alone (for every candidate only in a snapshot written before those arrays).
        hits = [h for h in hits if h.key != query.key and h.key not in excluded]
        listing = snap.listing([h.row for h in hits])
        meta = None
        if listing is None:
            meta = snap.meta([h.key for h in hits])
            hits = [h for h in hits if h.key in meta]
            listing = {field: [getattr(meta[h.key], field) for h in hits] for field in LISTING_FIELDS}
        rows = np.asarray([h.row for h in hits], dtype=np.int64)
        sides = _row_sides(snap, rows, listing["source"])
        # Every new candidate judged against the query in one call (a thousand pairs take a millisecond).
        new = [n for n, h in enumerate(hits) if h.key not in made]
        if new:
            fresh = sides.take(new)
            counted = None
            if query.read is not None:  # a text given in full: its shared words with each candidate are counted
                counted = self._counted_lex(snap, query.read, rows[new], [hits[n].key for n in new])
            judged = self.pairs.judge(np.asarray([hits[n].score for n in new], dtype=np.float64), query.sides(), fresh,
                                      counted)
            retold = told_again(judged.p_retelling, query.source, fresh.source).tolist()
            p_ret, p_rel = judged.p_retelling.tolist(), judged.p_related.tolist()
            dup_groups, story_groups = snap.dup_group[rows[new]].tolist(), snap.story_group[rows[new]].tolist()
            sources, sections, langs = listing["source"], listing["section"], listing["lang"]
            published = snap.published_rows(rows[new])
            for j, n in enumerate(new):
                h = hits[n]
                made[h.key] = Candidate(
                    key=h.key, id="", similarity=h.score, when=published[j],
                    dup_group=dup_groups[j], story_group=story_groups[j], source=sources[n], section=sections[n],
                    lang=langs[n], p_retelling=p_ret[j], p_related=p_rel[j], told_again=retold[j],
                    lexical_rank=lexical_rank.get(h.key),
                )
        cands = [made[h.key] for h in hits]
        vecs = np.asarray(snap.vectors[rows]) if len(rows) else np.zeros((0, len(query.vector)), dtype=np.float32)
        centroids = None
        if params.story_context > 0 and len(rows):
            centroids = snap.story_vectors(rows, own=vecs)
            if query.key is None:
                query = query.with_story(self._story_of(snap, cands))
        ranked, pool = rank_pool(cands, CandidateVectors(vecs, centroids, sides), query, params, judge=self.pairs)
        listed = [r.candidate.key for r in ranked]
        meta = snap.meta(listed) if meta is None else {key: meta[key] for key in listed}
        for r in ranked:
            r.candidate.id = meta[r.candidate.key].id
        return ranked, meta, floor, pool

    @staticmethod
    def _story_of(snap: Snapshot, cands: list[Candidate]) -> np.ndarray | None:
        """For an article not in the index: the centroid of the story its likeliest retelling among the
        candidates tells (when one is more likely than not), or None."""
        same = [c for c in cands if c.p_retelling is not None and c.p_retelling >= RETELLING_VERDICT]
        if not same:
            return None
        return snap.story_centroid(max(same, key=lambda c: c.p_retelling).story_group)

    # --- duplicates -------------------------------------------------------------------------

    def duplicates(self, article: Mapping[str, Any], *, k: int = 20, levels: tuple[str, ...] = ("exact", "near", "same-story")) -> dict:
        """Indexed articles that duplicate this one, each with its level and evidence."""
        snap = self.snapshot
        art = self.parse(article)
        vector = self.embed(art)
        record = Record(key=0, **art.stored())
        hits = snap.search(vector, min(snap.count, max(k, 20)))
        cos_of = {h.key: h.score for h in hits}
        candidates = set()
        sig = minhash_signatures([art.body])[0]
        for row in self._bands(snap).query(sig):
            candidates.add(int(snap.keys[row]))
        candidates.update(key for key, s in cos_of.items() if s >= NEAR_COSINE)
        candidates.update(snap.keys_by_hash(record.body_hash, BUCKET_LIMIT))  # as many as an LSH bucket gives
        # Every hit is judged (a few dozen pairs in one call); the copies' candidates too.
        keys = sorted(candidates | set(cos_of))
        stored = snap.records(keys)
        mine = Shingled.of(art.body)
        rows = snap.rows_of_keys(keys)
        cosines = (np.asarray(snap.vectors[rows]) @ vector).astype(np.float64) if len(rows) else np.zeros(0)
        judged = self._judge_rows(snap, art, cosines, rows, keys, stored)
        matches = []
        for n, key in enumerate(keys):
            other = stored[key]
            if art.id and other.id == art.id:
                continue
            row = int(rows[n])
            cos = float(cosines[n])
            ov = overlap(mine, Shingled.of(other.body))
            p = float(judged.p_retelling[n])
            level, _, _ = classify_pair(record, other, ov if key in candidates else None, p, self.config)
            if level is None or level not in levels:
                continue
            matches.append({
                **_public(other),
                "level": level,
                "scores": {"cosine": round(cos, 4), "jaccard": round(ov.jaccard, 4),
                           "containment": round(ov.containment, 4), "coverage": round(ov.coverage, 4),
                           "p_retelling": round(p, 4),
                           "p_related": round(float(judged.p_related[n]), 4),
                           "days_apart": _days_apart(art.when.days, float(snap.time_days[row]))},
                "dup_group": int(snap.dup_group[row]),
                "story_group": int(snap.story_group[row]),
            })
        # Groups are named by their canonical member's id: one query for all of them.
        names = _group_ids(snap, [m[c] for m in matches for c in ("dup_group", "story_group")])
        for m in matches:
            m["dup_group"], m["story_group"] = names[m["dup_group"]], names[m["story_group"]]
        matches.sort(key=lambda m: (LEVEL_ORDER[m["level"]], -m["scores"]["cosine"]))
        for m in matches:  # the same story told in another language says so
            m["cross_lang"] = bool(art.lang and m["lang"] and m["lang"] != art.lang)
        verdict = matches[0]["level"] if matches else "unique"
        return {"verdict": verdict, "matches": matches[:k], "snapshot": snap.name,
                "lang": art.lang or None, "low_confidence": self.low_confidence(art.lang, f"{art.title}\n{art.body}"),
                "thresholds": self._thresholds()}

    def _bands(self, snap: Snapshot) -> BandTable:
        """The snapshot's LSH band table at the configured threshold (made once per snapshot)."""
        threshold = self.config.near_threshold
        return snap.memo(("bands", threshold), lambda: BandTable.from_stored(snap.stored_bands(), snap.minhash, threshold))

    def compare(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict:
        """Similarity of two articles and a duplicate verdict."""
        arts = []
        for name, rec in (("a", a), ("b", b)):
            try:
                arts.append(self.parse(rec))
            except BadInput as exc:
                raise BadInput(f"{name}: {exc.message}", field=f"{name}.{exc.field}" if exc.field else name) from None
        read = [article_text(x.title, x.body, self.config.max_tokens) for x in arts]
        vecs = self._model().encode(read)
        cos = float(np.dot(vecs[0], vecs[1]))
        ra, rb = (Record(key=0, **x.stored()) for x in arts)
        ov = overlap(Shingled.of(ra.body), Shingled.of(rb.body))
        # Both texts at hand: their shared content words are counted, not estimated from signatures.
        judged = self.pairs.judge([cos], self._sides(arts[0]), self._sides(arts[1]), token_containment(read[0], read[1:]))
        p = float(judged.p_retelling[0])
        level, _, _ = classify_pair(ra, rb, ov, p, self.config)
        return {
            "level": level or "unrelated",
            "duplicate": level in ("exact", "near"),
            "same_story": level is not None,
            "scores": {"cosine": round(cos, 4), "jaccard": round(ov.jaccard, 4), "containment": round(ov.containment, 4),
                       "coverage": round(ov.coverage, 4), "p_retelling": round(p, 4),
                       "p_related": round(float(judged.p_related[0]), 4),
                       "days_apart": _days_apart(arts[0].when.days, arts[1].when.days)},
            "explain": judged.explain(0, self.pairs),
            "langs": {"a": arts[0].lang or None, "b": arts[1].lang or None},
            "cross_lang": bool(arts[0].lang and arts[1].lang and arts[0].lang != arts[1].lang),
            "low_confidence": any(self.low_confidence(x.lang, f"{x.title}\n{x.body}") for x in arts),
            "thresholds": self._thresholds(),
        }

    def _thresholds(self) -> dict:
        return {
            "near_coverage": self.config.near_coverage,
            "near_threshold": self.config.near_threshold,
            "retelling_verdict": RETELLING_VERDICT,
        }

    # --- articles and stats -----------------------------------------------------------------

    def titles(self, article_ids: list[str]) -> dict[str, str]:
        """Titles of those ids that are in the index (the rest are left out)."""
        snap = self.snapshot
        keys = {k: i for i, k in snap.keys_of_ids(article_ids).items()}
        return {keys[k]: m.title for k, m in snap.meta(list(keys)).items()}

    def article_info(self, article_id: str) -> dict:
        snap = self.snapshot
        key = snap.key_of_id(article_id)
        rec = snap.record(key)
        out = _public(rec)
        out["body"] = rec.body
        out["also_read"] = list(rec.also_read)
        out["removed"] = list(rec.removed)
        groups = {}
        for name, group in (("duplicate", rec.dup_group), ("story", rec.story_group)):
            members = snap.group_members(f"{'dup' if name == 'duplicate' else 'story'}_group", group)
            ids = snap.ids(members)
            groups[name] = {"id": ids.get(group, str(group)), "canonical": ids.get(group),
                            "members": [ids[m] for m in members if m in ids]}
        out["groups"] = groups
        stored_links = snap.links_of(key)
        other_keys = [link.b if link.a == key else link.a for link in stored_links]
        names = snap.ids(other_keys)
        out["links"] = [{"id": names.get(other), "level": link.level,
                         "scores": {"cosine": link.cosine, "jaccard": link.jaccard, "containment": link.containment}}
                        for link, other in zip(stored_links, other_keys)]
        return out

    def groups(self, kind: str = "duplicate", min_size: int = 2, limit: int = 100) -> list[dict]:
        snap = self.snapshot
        column = {"duplicate": "dup_group", "story": "story_group"}.get(kind)
        if column is None:
            raise BadInput("kind must be 'duplicate' or 'story'", field="kind")
        out = []
        for group, members in snap.iter_groups(column, min_size)[:limit]:
            found = snap.meta(members)
            out.append({
                "group": found[group].id if group in found else str(group),
                "canonical": found[group].id if group in found else None,
                "size": len(members),
                "members": [{"id": found[m].id, "title": found[m].title, "published": found[m].published}
                            for m in members if m in found],
            })
        return out

    def search_titles(self, words: str, limit: int = 10) -> list[dict]:
        """Indexed articles whose title contains these words, newest first."""
        return [{"id": m.id, "title": m.title, "published": m.published, "source": m.source}
                for m in self.snapshot.title_search(words, limit)]

    def group_listing(self, kind: str = "duplicate", *, sort: str = "size", offset: int = 0, limit: int = 50) -> dict:
        """Groups of two or more (duplicate or story), each named by its canonical member's title, with
        their members (title, source, date); sorted by size, newest or title. The listing is made once
        per snapshot; a page costs only its members' metadata."""
        if sort not in GROUP_SORTS:
            raise BadInput(f"sort must be one of {', '.join(GROUP_SORTS)}", field="sort")
        snap = self.snapshot
        column = {"duplicate": "dup_group", "story": "story_group"}.get(kind)
        if column is None:
            raise BadInput("kind must be 'duplicate' or 'story'", field="kind")

        def listing() -> dict[str, list[tuple[int, list[int], str, str]]]:
            groups = snap.iter_groups(column, 2)
            meta = snap.meta([g for g, _ in groups])
            rows = [(g, members, meta[g].title if g in meta else "", meta[g].published if g in meta else "")
                    for g, members in groups]
            return {"size": rows,  # iter_groups: largest first
                    "newest": sorted(rows, key=lambda r: r[3], reverse=True),
                    "title": sorted(rows, key=lambda r: r[2].casefold())}

        rows = snap.memo(("group-listing", column), listing)[sort]
        page = rows[offset:offset + limit]
        found = snap.meta([m for _, members, _, _ in page for m in members])
        return {
            "kind": kind, "sort": sort, "total": len(rows), "offset": offset,
            "groups": [{"canonical": found[g].id if g in found else str(g), "title": title, "size": len(members),
                        "members": [{"id": found[m].id, "title": found[m].title, "source": found[m].source,
                                     "published": found[m].published} for m in members if m in found]}
                       for g, members, title, _ in page],
        }

    def score_histograms(self, bins: int = 40) -> dict:
        """Histograms of each article's nearest-neighbour cosine and of the stored links' cosines by
        verdict, with the configured bars to draw on them (made once per snapshot)."""
        snap = self.snapshot

        def make() -> dict:
            edges = np.linspace(0, 1, bins + 1)
            if snap.neighbour_scores is not None and snap.count > 1:
                nearest = np.asarray(snap.neighbour_scores[:, 0], dtype=np.float32)
                nearest = np.clip(nearest[np.isfinite(nearest)], 0, 1)
            else:
                nearest = np.zeros(0)
            by_level: dict[str, list[float]] = {}
            for link in snap.links():
                by_level.setdefault(link.level, []).append(float(link.cosine))
            return {
                "edges": edges.tolist(),
                "nearest": np.histogram(nearest, bins=edges)[0].tolist(),
                "links": {level: np.histogram(np.clip(v, 0, 1), bins=edges)[0].tolist()
                          for level, v in sorted(by_level.items())},
                "bars": {"near-duplicate cosine candidate": NEAR_COSINE,
                         **self._retelling_bars()},
            }

        return snap.memo(("score-histograms", bins), make)

    def site_link_agreement(self, k: int = 5, sample: int | None = None) -> dict:
        """How often the top k related items hold the articles a site's own ALSO READ links pointed at
        (matched by URL, else exact title), per source: the site's editors as free relevance labels.
        `sample`: score at most this many of the articles that carry such links (evenly spread)."""
        snap = self.snapshot
        rows = list(snap.records().values())
        by_url = {r.url: r.id for r in rows if r.url}
        by_title = {r.title.strip().casefold(): r.id for r in rows if r.title.strip()}
        labelled = []
        for r in rows:
            targets = set()
            for link in r.also_read:
                target = by_url.get(link.get("url") or "") or by_title.get((link.get("title") or "").strip().casefold())
                if target and target != r.id:
                    targets.add(target)
            if targets:
                labelled.append((r, targets))
        sampled = sample is not None and len(labelled) > sample
        if sampled:
            step = len(labelled) / sample
            labelled = [labelled[int(i * step)] for i in range(sample)]
        params = self.params(k=k)
        per_source: dict[str, list[float]] = {}
        for r, targets in labelled:
            got = {i["id"] for i in self.related(params, id=r.id)["items"]}
            per_source.setdefault(r.source or "(none)", []).append(len(got & targets) / len(targets))

        def mean(v: list[float]) -> float | None:
            return round(sum(v) / len(v), 4) if v else None

        return {
            "k": k, "sampled": sampled,
            "sources": {s: {"articles_with_links": len(v), "recall_at_k": mean(v)} for s, v in sorted(per_source.items())},
            "articles_with_links": sum(len(v) for v in per_source.values()),
            "recall_at_k": mean([x for v in per_source.values() for x in v]),
        }

    def stats(self) -> dict:
        snap = self.snapshot
        dup_sizes = np.bincount(np.unique(snap.dup_group, return_counts=True)[1]) if snap.count else np.zeros(1)
        story_sizes = np.unique(snap.story_group, return_counts=True)[1] if snap.count else np.zeros(0)
        return {
            "snapshot": snap.name,
            "count": snap.count,
            "model": snap.manifest.get("model"),
            "backend": snap.manifest.get("backend"),
            "dim": snap.manifest.get("dim"),
            "index_type": snap.manifest.get("index_type"),
            "built_at": snap.manifest.get("built_at"),
            "duplicate_groups": int(dup_sizes[2:].sum()) if len(dup_sizes) > 2 else 0,
            "story_groups": int((story_sizes >= 2).sum()),
        }


def _days_apart(a: float, b: float) -> float | None:
    """Days between two publication times (fractional days, NaN unknown); None when either is unknown:
    the pair was judged on its text alone."""
    apart = abs(a - b)
    return None if np.isnan(apart) else round(float(apart), 2)


def unread_share(words_read: int, text: str) -> float:
    """The share of a text's words the model did not read (0 when it read all of them: a headline, a
    lead, a short page)."""
    total = count_words(text)
    return max(0.0, 1.0 - words_read / total) if total else 0.0


def _allowed(meta: Meta, p: RankParams) -> bool:
    """Whether the site's rules (as merged into the parameters) let this article be listed."""
    return (meta.id not in p.exclude_ids and meta.source not in p.exclude_sources and meta.section not in p.exclude_sections
            and (not p.oldest_day or within_age(meta.section, Published.of(meta.published).day, p.oldest_day)))


def _stories(snap: Snapshot, ids: Sequence[str]) -> frozenset[int]:
    """The stories (ranking.story_of) the indexed articles among these ids stand in."""
    keys = list(snap.keys_of_ids(ids).values())
    rows = snap.rows_of_keys(keys)
    return frozenset(story_of(int(snap.story_group[r]), int(snap.dup_group[r]), int(k)) for r, k in zip(rows, keys))


def _row_sides(snap: Snapshot, rows: np.ndarray, sources: Sequence[str] | str = "") -> Sides:
    """What the pair judgment reads of indexed rows (with their outlets when the caller has them)."""
    return Sides.of(snap.time_days[rows], snap.words_read(rows), lexical_part(np.asarray(snap.minhash[rows])), sources,
                    "", snap.precise_time[rows])


def _short_reason(snap: Snapshot, params: RankParams, examined: int, floor: float, found: int) -> str:
    """Why a related list holds fewer than k items, in words a site's developer can act on."""
    filtered = any((params.sources, params.exclude_sources, params.sections, params.langs, params.exclude_ids,
                    params.exclude_sections, params.oldest_day, params.exclude_groups,
                    params.date_from is not None, params.date_to is not None))
    if snap.count - 1 < params.k:
        return f"the index holds {snap.count} articles"
    if floor < params.min_score:
        return (f"only {found} other stories score at or above min_score {params.min_score} "
                f"(the rest are the same story, filtered out, or too far from this article)")
    if filtered:
        return f"the filters left {found} of the {examined} nearest articles"
    return f"the {examined} nearest articles hold only {found} other stories"


def _group_ids(snap: Snapshot, keys) -> dict[int, str]:
    """Names (canonical members' article ids) of several groups, in one query."""
    found = snap.ids(sorted(set(keys)))
    return {k: found.get(k, str(k)) for k in set(keys)}


def _public(item: Meta | Record) -> dict:
    """The public fields of a stored article, as the API shows them."""
    return {c: getattr(item, c) for c in PUBLIC_COLUMNS}


def _public_params(p: RankParams) -> dict:
    return {
        "k": p.k, "half_life_days": p.half_life_days, "mmr_lambda": p.mmr_lambda,
        "story_context": p.story_context, "feedback": p.feedback, "min_score": p.min_score,
        "collapse": p.collapse, "lang": sorted(p.langs) or None, "cross_lang": p.cross_lang, "lexical": p.lexical,
    }
