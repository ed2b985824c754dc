"""The service layer: an embedder, an index directory and the live snapshot, behind plain methods.

The web app holds one `Recommender`; a request reads `recommender.snapshot` once and uses that
snapshot throughout, so a swap to a new snapshot never changes an answer half-way.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Mapping

import numpy as np

from .articles import Article, parse_article
from .cleaning import CleaningProfile, load_profile
from .config import Config
from .duplicates import body_hash, minhash_signatures, overlap, shingles
from .embedding import Embedder, article_text, load_embedder
from .errors import BadInput, IndexNotReady
from .indexing import NEAR_COSINE, STORED_NEIGHBOURS, bar_for, classify_pair, record_days, story_bar
from .stories import LIST_DATE_GRACE_DAYS, grace_for, story_score
from .ranking import Candidate, RankParams, date_ordinal, rank
from .store import IndexDir, Snapshot

__all__ = ["Recommender"]

LEVEL_ORDER = {"exact": 0, "near": 1, "same-story": 2}
MAX_CANDIDATES = 1000  # the widest candidate pool a related query examines
PUBLIC_COLUMNS = ("id", "title", "url", "published", "source", "section", "lang", "image")


class Recommender:
    def __init__(self, config: Config, embedder: Embedder | None = None, *, index_path: str | None = None):
        self.config = config
        self.embedder = embedder if embedder is not None else load_embedder(config)
        self.index_dir = IndexDir(index_path or config.index)
        self.profile: CleaningProfile | None = load_profile(config.site_patterns)
        self._snapshot: Snapshot | None = None
        self._swap_lock = threading.Lock()
        self._last_check = 0.0

    # --- snapshots --------------------------------------------------------------------------

    def load(self) -> Snapshot:
        """Open the index's current snapshot and make it live (raises IndexNotReady / IndexMismatch)."""
        with self._swap_lock:
            with self.index_dir.write_lock():
                self.index_dir.clean_leftovers()
            snap = self.index_dir.open(model=self.embedder.name, dim=self.embedder.dim)
            self._snapshot = snap
            return snap

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
            snap = self.index_dir.open(model=self.embedder.name, dim=self.embedder.dim)
            self._snapshot = snap  # one reference swap; requests holding the old one finish on it
        return True

    # --- helpers ----------------------------------------------------------------------------

    def parse(self, record: Mapping[str, Any], *, require_id: bool = False) -> Article:
        return parse_article(record, require_id=require_id, profile=self.profile)

    def embed(self, article: Article) -> np.ndarray:
        text = article_text(article.title, article.body, self.config.max_tokens)
        return self.embedder.encode([text])[0]

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
            collapse=c.collapse, same_story_threshold=c.story_group_threshold, story_context=c.story_context,
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
        query: dict[str, Any]
        if article is not None:
            art = self.parse(article)
            vector = self.embed(art)
            query_key = qdup = qstory = None
            qdays = date_ordinal(art.published) or -1
            query = {"id": art.id or None, "title": art.title, "indexed": False}
            query_record = {"published": art.published, "body": art.body}
            if explain:
                query.update(also_read=[a for a in art.also_read], removed=art.removed)
        else:
            key = self.resolve(snap, id=id, url=url)
            row = snap.row_of_key(key)
            vector = np.asarray(snap.vectors[row])
            query_key, qdup, qstory = key, int(snap.dup_group[row]), int(snap.story_group[row])
            qdays = int(snap.published_days[row])
            # Only what ranking needs: the body is stood for by its length, the cut furniture is read
            # (and decoded) only when asked for.
            rec = snap.articles([key], ("key", "id", "title", "published"))[key]
            query = {"id": rec["id"], "title": rec["title"], "indexed": True}
            query_record = {"published": rec["published"], "body": "x" if snap.body_len[row] else ""}
            if explain:
                full = snap.article(key)
                query.update(also_read=full["also_read"], removed=full["removed"])
        # Widen the candidate pool while too few survive: a big story (hundreds of copies) or strict
        # filters can use up the nearest candidates.
        n_cand = min(snap.count, max(STORED_NEIGHBOURS, params.k * 4 + len(params.exclude_ids)))
        while True:
            ranked, meta, floor = self._rank_candidates(snap, vector, n_cand, params, query_record, query_key, qdup,
                                                        qstory, qdays)
            # Scores never exceed similarity, so candidates further out than min_score cannot help.
            if len(ranked) >= params.k or n_cand >= min(snap.count, MAX_CANDIDATES) or floor < params.min_score:
                break
            n_cand = min(snap.count, MAX_CANDIDATES, n_cand * 4)
        items = []
        for r in ranked:
            m = meta[r.candidate.key]
            items.append({
                **{c: m[c] for c in PUBLIC_COLUMNS},
                "score": r.score,
                "similarity": r.similarity,
                "recency": r.recency,
                "story_similarity": r.story_similarity,
                "reason": r.reason,
                "group_size": r.group_size,
            })
        return {"query": query, "items": items, "snapshot": snap.name, "params": _public_params(params)}

    def _rank_candidates(self, snap: Snapshot, vector, n_cand: int, params: RankParams, query_record: dict,
                         query_key, qdup, qstory, qdays):
        hits = snap.stored_neighbours(snap.row_of_key(query_key), n_cand) if query_key is not None else None
        if hits is None:
            hits = snap.search(vector, n_cand)
        meta = snap.articles([h.key for h in hits], ("key",) + PUBLIC_COLUMNS)
        hits = [h for h in hits if h.key in meta and h.key != query_key]
        rows = np.asarray([h.row for h in hits], dtype=np.int64)
        sims = np.asarray([h.score for h in hits], dtype=np.float64)
        # Story scores against the query, vectorised: cosine less the time penalty (list rules: no
        # grace for date-only pairs, see stories.LIST_DATE_GRACE_DAYS).
        q_days = record_days(query_record)
        q_precise = len(query_record.get("published") or "") > 10
        grace = grace_for(snap.precise_time[rows], q_precise, LIST_DATE_GRACE_DAYS) if len(rows) else 0.0
        stories = story_score(sims, snap.time_days[rows] - q_days, grace_days=grace) if len(rows) else sims
        query_bar = story_bar(query_record, self.config)
        cands = []
        for n, h in enumerate(hits):
            m = meta[h.key]
            cands.append(Candidate(
                key=h.key, id=m["id"], similarity=h.score, published_days=int(snap.published_days[h.row]),
                dup_group=int(snap.dup_group[h.row]), story_group=int(snap.story_group[h.row]),
                source=m["source"], section=m["section"], lang=m["lang"],
                story_score=float(stories[n]), time_days=float(snap.time_days[h.row]),
                precise_time=bool(snap.precise_time[h.row]),
                story_bar=max(query_bar, bar_for(bool(snap.body_len[h.row]), self.config)),
            ))
        vecs = np.asarray(snap.vectors[rows]) if len(rows) else np.zeros((0, len(vector)), dtype=np.float32)
        ctx = centroids = None
        if params.story_context > 0 and len(rows):
            centroids = snap.story_vectors(rows, own=vecs)
            ctx, story_sims = self._story_context(snap, vector, vecs, centroids, params.story_context, query_key,
                                                  qstory, stories, cands)
            for c, s in zip(cands, story_sims):
                c.story_similarity = float(s)
        ranked = rank(cands, vecs, params, query_key=query_key, query_dup_group=qdup, query_story_group=qstory,
                      query_days=qdays, context_vectors=ctx, story_centroids=centroids)
        floor = min((h.score for h in hits), default=-1.0)
        return ranked, meta, floor

    @staticmethod
    def _story_context(snap: Snapshot, vector, vecs, centroids, weight: float, query_key, qstory, stories, cands):
        """Story vectors of the candidates and their cosines with the query's story vector.

        A story vector mixes the article's own vector with its story group's centroid (`weight` of
        the centroid): a story is judged by what its versions share, not by one headline's words. An
        article not in the index takes the story of its closest candidate that tells the same story,
        if any. Changes `cands` in place: each one's story score becomes the higher of its score
        against the query and against the query's story centroid (same time penalty), so a
        candidate as close to the query's story as its members is blocked as that story.
        """
        def mix(own: np.ndarray, centroid: np.ndarray) -> np.ndarray:
            v = (1.0 - weight) * own + weight * centroid
            return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)

        ctx = mix(vecs, centroids)
        if query_key is None:
            same = [n for n, c in enumerate(cands) if c.story_bar is not None and stories[n] >= c.story_bar]
            qstory = cands[max(same, key=lambda n: stories[n])].story_group if same else None
        q_centroid = vector
        if qstory is not None:
            found = snap.story_centroid(qstory)
            if found is not None:
                q_centroid = found
            # A candidate as close to the query's story (its centroid) as a story's own members are
            # belongs to it, even when it shares few words with the query itself.
            to_story = vecs @ q_centroid
            for n, c in enumerate(cands):
                c.story_score = max(c.story_score, float(to_story[n] - (c.similarity - stories[n])))
        q = mix(np.asarray(vector, dtype=np.float32), q_centroid)
        return ctx, ctx @ q

    # --- duplicates -------------------------------------------------------------------------

    def duplicates(self, article: Mapping[str, Any], *, k: int = 20, levels: tuple[str, ...] = ("exact", "near", "same-story")) -> dict:
        """Indexed articles that duplicate this one, each with its level and evidence."""
        snap = self.snapshot
        art = self.parse(article)
        vector = self.embed(art)
        record = {"id": art.id, "title": art.title, "body": art.body, "published": art.published,
                  "body_hash": body_hash(art.body or art.title)}
        hits = snap.search(vector, min(snap.count, max(k, 20)))
        cos_of = {h.key: h.score for h in hits}
        candidates = set()
        sig = minhash_signatures([art.body])[0]
        for row in snap.bands(self.config.near_threshold).query(sig):
            candidates.add(int(snap.keys[row]))
        candidates.update(key for key, s in cos_of.items() if s >= NEAR_COSINE)
        candidates.update(int(r[0]) for r in snap.db().execute(
            "SELECT key FROM articles WHERE body_hash = ?", (record["body_hash"],)))
        same_story = {key for key, s in cos_of.items() if s >= self.config.same_story_threshold}
        keys = sorted(candidates | same_story)
        stored = snap.articles(keys)
        mine = shingles(art.body)
        matches = []
        for key in keys:
            other = stored[key]
            if art.id and other["id"] == art.id:
                continue
            row = snap.row_of_key(key)
            cos = cos_of.get(key)
            if cos is None:
                cos = float(np.dot(vector, snap.vectors[row]))
            level, jac, cont = classify_pair(record, other, mine if key in candidates else None,
                                             shingles(other["body"]) if key in candidates else None, cos, self.config)
            if level is None or level not in levels:
                continue
            if jac is None:
                ov = overlap(mine, shingles(other["body"]))
                jac, cont = round(ov.jaccard, 4), round(ov.containment, 4)
            matches.append({
                **{c: other[c] for c in PUBLIC_COLUMNS},
                "level": level,
                "scores": {"cosine": round(cos, 4), "jaccard": jac, "containment": cont},
                "dup_group": int(snap.dup_group[row]),
                "story_group": int(snap.story_group[row]),
            })
        # Groups are named by their canonical member's id: one query for all of them.
        names = _group_ids(snap, [m[c] for m in matches for c in ("dup_group", "story_group")])
        for m in matches:
            m["dup_group"], m["story_group"] = names[m["dup_group"]], names[m["story_group"]]
        matches.sort(key=lambda m: (LEVEL_ORDER[m["level"]], -m["scores"]["cosine"]))
        verdict = matches[0]["level"] if matches else "unique"
        return {"verdict": verdict, "matches": matches[:k], "snapshot": snap.name,
                "thresholds": self._thresholds()}

    def compare(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict:
        """Similarity of two articles and a duplicate verdict."""
        arts = []
        for name, rec in (("a", a), ("b", b)):
            try:
                arts.append(self.parse(rec))
            except BadInput as exc:
                raise BadInput(f"{name}: {exc.message}", field=f"{name}.{exc.field}" if exc.field else name) from None
        vecs = self.embedder.encode([article_text(x.title, x.body, self.config.max_tokens) for x in arts])
        cos = float(np.dot(vecs[0], vecs[1]))
        ra, rb = ({"body": x.body, "published": x.published, "body_hash": body_hash(x.body or x.title)} for x in arts)
        sa, sb = shingles(arts[0].body), shingles(arts[1].body)
        level, _, _ = classify_pair(ra, rb, sa, sb, cos, self.config)
        ov = overlap(sa, sb)
        return {
            "level": level or "unrelated",
            "duplicate": level in ("exact", "near"),
            "same_story": level is not None,
            "scores": {"cosine": round(cos, 4), "jaccard": round(ov.jaccard, 4), "containment": round(ov.containment, 4)},
            "thresholds": self._thresholds(),
        }

    def _thresholds(self) -> dict:
        return {
            "near_containment": self.config.near_containment,
            "near_threshold": self.config.near_threshold,
            "same_story_threshold": self.config.same_story_threshold,
            "story_group_threshold": self.config.story_group_threshold,
        }

    # --- articles and stats -----------------------------------------------------------------

    def article_info(self, article_id: str) -> dict:
        snap = self.snapshot
        key = snap.key_of_id(article_id)
        rec = snap.article(key)
        row = snap.row_of_key(key)
        out = {c: rec[c] for c in PUBLIC_COLUMNS}
        out["body"] = rec["body"]
        out["also_read"] = rec["also_read"]
        out["removed"] = rec["removed"]
        ids = {}
        for column, arr in (("dup_group", snap.dup_group), ("story_group", snap.story_group)):
            members = snap.group_members(column, int(arr[row]))
            found = snap.articles(members, ("key", "id"))
            group = int(arr[row])
            ids[column] = {"id": found[group]["id"] if group in found else str(group),
                           "canonical": found[group]["id"] if group in found else None,
                           "members": [found[m]["id"] for m in members if m in found]}
        out["groups"] = {"duplicate": ids["dup_group"], "story": ids["story_group"]}
        links = []
        stored_links = snap.links_of(key)
        other_keys = [l["b"] if l["a"] == key else l["a"] for l in stored_links]
        names = snap.articles(other_keys, ("key", "id"))
        for l, other in zip(stored_links, other_keys):
            links.append({"id": names[other]["id"] if other in names else None, "level": l["level"],
                          "scores": {"cosine": l["cosine"], "jaccard": l["jaccard"], "containment": l["containment"]}})
        out["links"] = links
        return out

    def groups(self, kind: str = "duplicate", min_size: int = 2, limit: int = 100) -> list[dict]:
        snap = self.snapshot
        column = {"duplicate": "dup_group", "story": "story_group"}.get(kind)
        if column is None:
            raise BadInput("kind must be 'duplicate' or 'story'", field="kind")
        out = []
        for group, members in snap.iter_groups(column, min_size)[:limit]:
            found = snap.articles(members, ("key", "id", "title", "published"))
            out.append({
                "group": found[group]["id"] if group in found else str(group),
                "canonical": found[group]["id"] if group in found else None,
                "size": len(members),
                "members": [{"id": found[m]["id"], "title": found[m]["title"], "published": found[m]["published"]}
                            for m in members if m in found],
            })
        return out

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


def _group_ids(snap: Snapshot, keys) -> dict[int, str]:
    """Names (canonical members' article ids) of several groups, in one query."""
    found = snap.articles(sorted(set(keys)), ("key", "id"))
    return {k: found[k]["id"] if k in found else str(k) for k in set(keys)}


def _public_params(p: RankParams) -> dict:
    return {
        "k": p.k, "half_life_days": p.half_life_days, "mmr_lambda": p.mmr_lambda,
        "story_context": p.story_context, "min_score": p.min_score,
        "collapse": p.collapse,
    }

