"""Index snapshots on disk: build, reopen, refuse mismatches, add/delete in place, crash leftovers."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from recommender.text.articles import parse_article
from recommender.embed.embedding import HashingEmbedder
from recommender.errors import IndexMismatch, IndexNotReady
from recommender.index.indexing import add_articles, build_index, delete_articles
from recommender.index.store import IndexDir
from tests.conftest import rows_with_copies


def test_snapshot_layout_and_manifest(hash_index, hash_embedder):
    d = IndexDir(hash_index)
    snap = d.open(model=hash_embedder.name, dim=hash_embedder.dim)
    files = {p.name for p in snap.path.iterdir()}
    assert {"manifest.json", "articles.sqlite", "vectors.npy", "keys.npy", "minhash.npy", "faiss.index", "rows.npz"} <= files
    m = snap.manifest
    assert m["model"] == "hashing-v1" and m["dim"] == hash_embedder.dim and m["count"] == snap.count == 301
    assert m["index_type"] == "flat" and "faiss" in m["versions"] and m["built_at"]
    assert np.all(np.diff(snap.keys) > 0)
    norms = np.linalg.norm(np.asarray(snap.vectors), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-4)
    rec = snap.record(snap.key_of_id("sample-sheinbaum"))
    assert len(rec.also_read) == 3 and rec.removed
    assert rec.title.startswith("Mexican President Claudia Sheinbaum")


def test_refuses_an_index_built_with_another_model(hash_index):
    with pytest.raises(IndexMismatch, match="newsrec build"):
        IndexDir(hash_index).open(model="all-MiniLM-L6-v2", dim=384)
    with pytest.raises(IndexMismatch, match="dimension"):
        IndexDir(hash_index).open(dim=384)


def test_refuses_to_be_queried_reading_another_token_budget(hash_index, hash_embedder, hash_config):
    """An index read 128 tokens of each article; queries embedded from 160 would not be comparable, so
    the index refuses and names the setting (the same model and centring are not enough)."""
    built = IndexDir(hash_index).open(model=hash_embedder.name).manifest["max_tokens"]
    assert built == hash_config.max_tokens > 0
    assert IndexDir(hash_index).open_for(hash_embedder, built)
    with pytest.raises(IndexMismatch, match=f"NEWSREC_MAX_TOKENS={built}"):
        IndexDir(hash_index).open_for(hash_embedder, built + 32)


def test_missing_index_says_what_to_run(tmp_path):
    with pytest.raises(IndexNotReady, match="newsrec build"):
        IndexDir(tmp_path / "nothing").open()


def test_search_finds_the_article_itself(hash_index):
    snap = IndexDir(hash_index).open()
    row = snap.row_of_key(snap.key_of_id("sample-sheinbaum"))
    hits = snap.search(np.asarray(snap.vectors[row]), 3)
    assert hits[0].key == snap.keys[row] and hits[0].score == pytest.approx(1.0, abs=1e-4)


def test_warming_reads_the_newest_articles_listings_once(hash_index):
    """Snapshot.warm reads the newest articles' listing metadata into the cache (a served worker's first
    lists then read no rows): the highest keys, as many as asked, the same Meta a query reads."""
    snap = IndexDir(hash_index).open()
    try:
        keys = [int(k) for k in snap.keys]
        assert snap.warm(limit=3) == 3
        assert sorted(snap._meta_cache) == keys[-3:]
        snap._meta_cache.clear()
        assert snap.warm() == len(keys)
        warmed = dict(snap._meta_cache)
        snap._meta_cache.clear()
        assert snap.meta(keys) == warmed
        assert snap.warm(limit=0) == 0
    finally:
        snap.close()


def test_a_full_listing_cache_lets_its_longest_kept_go_and_answers_whole(hash_index, monkeypatch):
    """When the listing cache is full, the articles kept longest make room (not the whole cache), and an
    answer holds every article asked for, whichever were cached."""
    import recommender.index.store as store

    monkeypatch.setattr(store, "META_CACHE", 4)
    snap = IndexDir(hash_index).open()
    try:
        keys = [int(k) for k in snap.keys][:7]
        assert sorted(snap.meta(keys[:3])) == keys[:3]
        assert sorted(snap.meta(keys[3:5])) == keys[3:5]  # 5 > 4: the oldest half (one) goes
        assert list(snap._meta_cache) == keys[1:5]
        assert sorted(snap.meta(keys[:7])) == keys[:7]  # three new ones need three places
        assert set(snap._meta_cache) == {keys[0], keys[4], keys[5], keys[6]}
    finally:
        snap.close()


def test_add_replace_and_delete_in_place(writable_index, hash_config, hash_embedder, corpus_records):
    d = IndexDir(writable_index)
    before = d.open()
    old_vectors = {int(k): np.asarray(before.vectors[i]).copy() for i, k in enumerate(before.keys)}
    new = [parse_article(r) for r in corpus_records[60:70]]
    report = add_articles(writable_index, new, hash_embedder, hash_config)
    assert report.added == 10 and report.count == 71
    after = d.open()
    assert after.name != before.name
    # existing articles were not re-embedded: their vectors are carried over bit for bit
    for i, k in enumerate(after.keys):
        if int(k) in old_vectors:
            assert np.array_equal(old_vectors[int(k)], np.asarray(after.vectors[i]))
    # replacing by id keeps one copy
    changed = dict(corpus_records[0], body=corpus_records[0]["body"] + " An update was added later.")
    add_articles(writable_index, [parse_article(changed)], hash_embedder, hash_config)
    snap = d.open()
    assert snap.count == 71
    assert snap.record(snap.key_of_id(changed["id"])).body.endswith("An update was added later.")
    report = delete_articles(writable_index, [changed["id"], "no-such-id"], hash_embedder, hash_config)
    assert report.deleted == 1 and report.skipped == ["no-such-id"]
    assert d.open().count == 70


def test_the_stored_band_table_is_the_one_of_the_stored_signatures(writable_index, hash_config, hash_embedder,
                                                                    corpus_records):
    """The band table a build, an add and a delete store (linking's own, or made for the snapshot) is the
    one the snapshot's signatures give, at its threshold."""
    from recommender.evidence.duplicates import BandTable

    def check() -> None:
        snap = IndexDir(writable_index).open()
        stored, fresh = snap.stored_bands(), BandTable.build(np.asarray(snap.minhash), hash_config.near_threshold)
        assert stored.threshold == hash_config.near_threshold and stored.keys.shape[1] == snap.count
        assert np.array_equal(stored.keys, fresh.keys) and np.array_equal(stored.rows, fresh.rows_of)

    check()
    add_articles(writable_index, [parse_article(r) for r in corpus_records[60:70]], hash_embedder, hash_config)
    check()
    delete_articles(writable_index, [corpus_records[3]["id"]], hash_embedder, hash_config)
    check()


def test_groups_update_when_a_copy_is_added_and_deleted(writable_index, hash_config, hash_embedder, corpus_records):
    original = corpus_records[5]
    words = original["body"].split()
    words[3] = "changed"
    copy = {"id": "copy-1", "title": "A new headline on a copy", "published": "2030-01-01",
            "body": "Share this story\n\n" + " ".join(words) + "\n\nALSO READ: Something else"}
    add_articles(writable_index, [parse_article(copy)], hash_embedder, hash_config)
    snap = IndexDir(writable_index).open()
    a, b = snap.key_of_id(original["id"]), snap.key_of_id("copy-1")
    ra, rb = snap.row_of_key(a), snap.row_of_key(b)
    assert snap.dup_group[ra] == snap.dup_group[rb] == a  # the earlier original is canonical
    levels = {link.level for link in snap.links_of(b)}
    assert levels & {"near", "exact"}
    # the precomputed neighbour lists were updated in place: the copy is the original's nearest article
    assert int(snap.neighbours[ra][0]) == b and int(snap.neighbours[rb][0]) == a
    assert snap.stored_neighbours(ra, 5)[0].key == b
    delete_articles(writable_index, [original["id"]], hash_embedder, hash_config)
    snap = IndexDir(writable_index).open()
    rb = snap.row_of_key(snap.key_of_id("copy-1"))
    assert snap.dup_group[rb] == b
    assert all(h.key != a for h in snap.stored_neighbours(rb, 64))  # the deleted original is skipped


def test_leftovers_of_a_killed_writer_are_removed_and_never_opened(writable_index):
    d = IndexDir(writable_index)
    name = d.current_name()
    half = writable_index / ".tmp-deadbeef"
    half.mkdir()
    (half / "vectors.npy").write_bytes(b"partial")
    (writable_index / "CURRENT.tmp").write_text("garbage")
    assert d.open().name == name
    removed = d.clean_leftovers()
    assert ".tmp-deadbeef" in removed and not half.exists()
    assert not (writable_index / "CURRENT.tmp").exists()


def test_old_snapshots_are_pruned(writable_index, hash_config, hash_embedder, corpus_records):
    for i in range(4):
        add_articles(writable_index, [parse_article(dict(corpus_records[i], id=f"extra-{i}"))], hash_embedder, hash_config)
    names = os.listdir(writable_index / "snapshots")
    assert len(names) == 3 and IndexDir(writable_index).current_name() in names


def test_empty_build_and_title_only_articles(tmp_path, hash_config):
    emb = HashingEmbedder()
    arts = [parse_article({"id": "t1", "title": "Only a headline here"}), parse_article({"id": "t2", "title": "Another headline"})]
    build_index(arts, tmp_path / "i", emb, hash_config)
    snap = IndexDir(tmp_path / "i").open()
    assert snap.count == 2
    assert json.loads((snap.path / "manifest.json").read_text())["count"] == 2


def _write_snapshot(path, vectors, minhash, band_threshold=None, exact_limit=None, monkeypatch=None, pq_limit=None):
    from recommender.index import store
    from recommender.index.indexing import snapshot_parts

    if exact_limit is not None:
        monkeypatch.setattr(store, "EXACT_LIMIT", exact_limit)
    if pq_limit is not None:
        monkeypatch.setattr(store, "PQ_LIMIT", pq_limit)
    n = len(vectors)
    keys = np.arange(1, n + 1, dtype=np.int64) * 3  # keys are not rows
    d = IndexDir(path)
    tmp = d.new_temp()
    records = [store.Record(key=int(k), id=f"a{k}", title=f"t{k}", body="", body_hash=f"h{k}", dup_group=int(k),
                            story_group=int(k)) for k in keys]
    store.write_snapshot(tmp, snapshot_parts(records, vectors, minhash, [],
                                             {"model": "m", "dim": vectors.shape[1], "count": n},
                                             band_threshold=band_threshold))
    d.publish(tmp)
    return d.open()


def _clustered(n, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    v = centres[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("kind", ["ivf-sq8", "ivf-pq"])
def test_large_index_is_quantised_ivf_and_serves_exact_cosines(tmp_path, monkeypatch, kind):
    vectors = _clustered(3000)
    # Above EXACT_LIMIT the index is IVF-SQ8, above PQ_LIMIT IVF-PQ (both lowered here).
    snap = _write_snapshot(tmp_path / "ivf", vectors, np.zeros((3000, 128), np.uint32), exact_limit=1000,
                           monkeypatch=monkeypatch, pq_limit=2000 if kind == "ivf-pq" else None)
    m = snap.manifest
    assert m["index_type"] == kind and m["nprobe"] >= 32 and m["nlist"] >= 256
    assert snap.rescore == (4 if kind == "ivf-pq" else 1)
    rng = np.random.default_rng(1)
    found = 0
    for row in rng.integers(0, 3000, 50):
        q = vectors[row] + 0.05 * rng.standard_normal(32).astype(np.float32)
        q /= np.linalg.norm(q)
        hits = snap.search(q, 10)
        assert len(hits) == 10
        scores = np.asarray([h.score for h in hits])
        # re-scored with the raw vectors: exact cosines, best first, rows and keys consistent
        assert np.allclose(scores, vectors[[h.row for h in hits]] @ q, atol=1e-5)
        assert np.all(np.diff(scores) <= 1e-7)
        assert all(snap.keys[h.row] == h.key for h in hits)
        exact = set(np.argsort(-(vectors @ q))[:10].tolist())
        found += len(exact & {h.row for h in hits})
    assert found / 500 >= 0.9  # recall@10 against exact search


def _mapped(array) -> bool:
    """Whether an array's memory is a file mapping (a memmap or a plain view of one)."""
    import mmap

    while array is not None:
        if isinstance(array, (np.memmap, mmap.mmap)):
            return True
        array = getattr(array, "base", None)
    return False


def test_band_table_is_written_with_the_snapshot_and_memory_mapped(tmp_path):
    from recommender.evidence.duplicates import BandTable, minhash_signatures

    texts = [f"story number {i} about the council vote on the new bus routes and fares in the city" for i in range(40)]
    sigs = minhash_signatures(texts)
    snap = _write_snapshot(tmp_path / "b", _clustered(40), sigs, band_threshold=0.5)
    assert (snap.path / "band_keys.npy").exists() and snap.manifest["band_threshold"] == 0.5
    table = BandTable.from_stored(snap.stored_bands(), snap.minhash, 0.5)
    assert _mapped(table.keys)
    fresh = BandTable.build(sigs, 0.5)
    for i in range(40):
        assert table.query(sigs[i]) == fresh.query(sigs[i]) and i in table.query(sigs[i])
    other = BandTable.from_stored(snap.stored_bands(), snap.minhash, 0.8)  # another threshold than the snapshot's: built in memory
    assert not _mapped(other.keys) and other.query(sigs[3]) == BandTable.build(sigs, 0.8).query(sigs[3])


def test_story_centroids_are_stored_and_stand_in_for_grouped_rows(tmp_path):
    from recommender.index.indexing import snapshot_parts
    from recommender.index.store import Record, write_snapshot
    from recommender.evidence.stories import group_centroids

    vectors = _clustered(6)
    groups = np.asarray([3, 3, 6, 9, 9, 9])
    ids, cents, _ = group_centroids(vectors, groups, min_size=2)
    assert ids.tolist() == [3, 9]  # a story of one has no centroid: its own vector stands for it
    want = vectors[3:].mean(axis=0)
    assert np.allclose(cents[1], want / np.linalg.norm(want), atol=1e-6)
    d = IndexDir(tmp_path / "s")
    tmp = d.new_temp()
    keys = np.arange(3, 19, 3, dtype=np.int64)
    records = [Record(key=int(k), id=f"a{k}", title="t", body="", body_hash=f"h{k}", dup_group=int(k), story_group=int(g))
               for k, g in zip(keys, groups)]
    write_snapshot(tmp, snapshot_parts(records, vectors, np.zeros((6, 128), np.uint32), [],
                                       {"model": "m", "dim": vectors.shape[1], "count": 6}))
    d.publish(tmp)
    snap = d.open()
    got = snap.story_vectors(np.arange(6))
    assert np.allclose(got[2], vectors[2]) and np.allclose(got[4], cents[1]) and np.allclose(got[0], cents[0])


def test_linking_many_rows_finds_neighbours_in_the_rows_lists_with_exact_cosines(monkeypatch):
    """A build above store.EXACT_LIMIT finds each row's neighbours in the lists of the rows nearest it
    (indexing.RowLists: a flat scan of n^2 pairs would take hours), with exact cosines, best first."""
    from recommender.index import indexing

    vectors = _clustered(3000)
    exact_scores, exact_rows = indexing.neighbours(vectors, list(range(3000)), 11)
    monkeypatch.setattr(indexing, "EXACT_LIMIT", 1000)
    monkeypatch.setattr(indexing, "APPROX_PAIRS", 0)
    scores, rows = indexing.neighbours(vectors, list(range(3000)), 11)
    assert rows.shape == (3000, 11) and np.all(rows >= 0)
    assert np.allclose(scores, np.einsum("qkd,qd->qk", vectors[rows], vectors), atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    recall = np.mean([len(set(a) & set(b)) / 11 for a, b in zip(rows, exact_rows)])
    assert recall >= 0.9


def test_packed_texts_read_back_every_text_across_chunks():
    from recommender.index.indexing import PackedTexts

    texts = ["", "plain", "Zürich – 東京", "", "ünïcödé " * 3, "last"]
    for chunk in (1, 2, 4, 100):
        packed = PackedTexts.of(texts, chunk=chunk)
        assert len(packed) == len(texts) and [packed[i] for i in range(len(texts))] == texts


def test_linking_chunk_by_chunk_gives_the_links_and_neighbours_of_one_pass(monkeypatch):
    """link_rows searches and judges the new rows a chunk at a time (what the search answers is held for
    one chunk): the same links, in the same order, and the same stored neighbours as one pass over all
    of them, for a build and for rows added to rows already linked (whose lists the new rows enter)."""
    from recommender.config import Config
    from recommender.index import indexing

    config = Config.load({"reload_interval": 0}, environ={})
    monkeypatch.setattr(indexing, "SEARCH_BLOCK", 4096)
    found = []
    for chunk in (1 << 30, 4096):  # one pass; chunks of 4,096
        monkeypatch.setattr(indexing, "LINK_CHUNK", chunk)
        calls = []
        search = lambda vectors, new, k, plan: calls.append(len(new)) or indexing.search_rows(vectors, new, k, plan)
        rows = rows_with_copies(8_000, copies=400, offset=800)
        indexing.link_rows(rows, range(5_000), config, search)  # a build of the first 5,000
        indexing.link_rows(rows, range(5_000, 8_000), config, search)  # 3,000 added
        found.append((list(rows.links.values()), rows.neighbours.copy(), rows.neighbour_scores.copy(), calls))
    (links, nb, nbs, calls), (links_c, nb_c, nbs_c, calls_c) = found
    assert calls == [5_000, 3_000] and calls_c == [4096, 904, 3_000]
    assert {link.level for link in links} >= {"exact", "near", "same-story"}
    assert links_c == links
    assert np.array_equal(nb_c, nb) and np.array_equal(nbs_c, nbs)


def test_a_body_many_pages_repeat_and_pages_without_a_body_cost_rows_not_pairs(monkeypatch):
    """500 pages with one body (one story many outlets run, or a notice linked as it is) and 150 headlines
    alone, among 2,000 articles: the body's pages are one group of copies (joined through the first
    BUCKET_LIMIT of them, not judged pair by pair), the headlines are nobody's copies, and the pairs
    judged are at most each row's neighbours and each of those pages' BUCKET_LIMIT (each with every other
    page of its body was 500 x 500, and each headline with 200 rows a band)."""
    import dataclasses

    from recommender.config import Config
    from recommender.evidence.duplicates import BUCKET_LIMIT, body_hash, text_signatures
    from recommender.index import indexing

    config = Config.load({"reload_interval": 0}, environ={})
    rows = rows_with_copies(2_000, copies=0, offset=0)
    stub = "This article is for subscribers only. Subscribe now to continue reading the full story."
    for i in range(2_000):
        if i % 3 == 1 and i < 1_500:
            rows.records[i] = dataclasses.replace(rows.records[i], body=stub, body_hash=body_hash(stub))
        elif i % 10 == 5:
            rows.records[i] = dataclasses.replace(rows.records[i], body="", body_hash=body_hash(rows.records[i].title))
    rows.minhash = text_signatures([r.body for r in rows.records], [f"{r.title} {r.body}" for r in rows.records])
    judged = []
    pairs = indexing.Linker.pairs
    monkeypatch.setattr(indexing.Linker, "pairs", lambda self, *a: judged.append(pairs(self, *a)) or judged[-1])
    indexing.link_rows(rows, range(2_000), config, indexing.search_rows)
    indexing.assign_groups(rows, config)
    assert sum(len(at) for at, *_ in judged) <= 2_000 * indexing.STORED_NEIGHBOURS + 500 * BUCKET_LIMIT
    stubs = [r for r in rows.records if r.body == stub]
    assert len(stubs) == 500 and len({r.dup_group for r in stubs}) == 1
    headlines = [r for r in rows.records if not r.body]
    copies = {(l.a, l.b) for l in rows.links.values() if l.level in ("exact", "near")}
    assert len(headlines) == 150 and not {k for pair in copies for k in pair} & {r.key for r in headlines}


PAYWALL = "This article is for subscribers only. Subscribe now for unlimited access to all our journalism."


def test_a_site_s_paywall_notice_is_read_as_no_story_when_built_added_and_asked(tmp_path, corpus_records, hash_config,
                                                                                  hash_embedder):
    """Pages a scraper stored with the site's paywall text for a body are read as their headlines (the
    notice kept in `removed`): not one group of copies, in a build, in an add that brings the notice's
    second page, and in a query that sends a page with the notice; one story's copies stay copies."""
    from recommender import Recommender

    wire = " ".join(corpus_records[3]["body"].split()[:60])
    stubs = [{"id": f"pay-{i}", "title": title, "body": PAYWALL, "published": "2024-03-0{}".format(i + 1)}
             for i, title in enumerate(["Rovers win league title", "City council approves new bus routes",
                                        "Heatwave expected to last until Friday"])]
    copies = [{"id": "wire-a", "title": "Harbour bridge reopens after repairs", "body": wire},
              {"id": "wire-b", "title": "Harbour bridge open again", "body": wire}]
    path = tmp_path / "idx"
    build_index([parse_article(r) for r in corpus_records[:30] + stubs[:2] + copies], path, hash_embedder, hash_config)
    snap = IndexDir(path).open()
    rows = {i: snap.record(snap.key_of_id(i)) for i in ("pay-0", "pay-1", "wire-a", "wire-b")}
    for i in ("pay-0", "pay-1"):
        assert rows[i].body == "" and rows[i].removed[0] == {"text": PAYWALL, "reason": "notice", "line": 0}
    assert rows["pay-0"].dup_group != rows["pay-1"].dup_group
    assert rows["wire-a"].dup_group == rows["wire-b"].dup_group and rows["wire-a"].body == wire

    add_articles(path, [parse_article(stubs[2]), parse_article({"id": "no-title", "body": PAYWALL})], hash_embedder,
                 hash_config)
    snap = IndexDir(path).open()
    added = snap.record(snap.key_of_id("pay-2"))
    assert added.body == "" and added.removed[0]["reason"] == "notice" and snap.count == 36
    assert snap.record(snap.key_of_id("no-title")).body == PAYWALL  # without a headline there is nothing else to read

    rec = Recommender(hash_config.replace(index=str(path)), hash_embedder)
    rec.load()
    asked = rec.duplicates({"title": "Lions sign new striker", "body": PAYWALL}, k=10)
    assert not [m for m in asked["matches"] if m["level"] == "exact"], asked
    assert rec.compare(stubs[0], stubs[1])["level"] != "exact"


def test_an_indexed_page_is_read_again_when_a_later_page_repeats_its_body_under_another_story(
        tmp_path, corpus_records, hash_config, hash_embedder):
    path = tmp_path / "idx"
    first = {"id": "pay-0", "title": "Rovers win league title", "body": PAYWALL}
    build_index([parse_article(r) for r in corpus_records[:20] + [first]], path, hash_embedder, hash_config)
    assert IndexDir(path).open().record(IndexDir(path).open().key_of_id("pay-0")).body == PAYWALL  # one page: its own body
    report = add_articles(path, [parse_article({"id": "pay-1", "title": "Heatwave expected to last until Friday",
                                                "body": PAYWALL})], hash_embedder, hash_config)
    snap = IndexDir(path).open()
    assert report.added == 1 and snap.count == 22
    for i in ("pay-0", "pay-1"):
        r = snap.record(snap.key_of_id(i))
        assert r.body == "" and r.removed[0]["reason"] == "notice"
    a, b = (snap.row_of_key(snap.key_of_id(i)) for i in ("pay-0", "pay-1"))
    assert snap.dup_group[a] != snap.dup_group[b]
    assert not {link.level for link in snap.links_of(snap.key_of_id("pay-1"))} & {"exact", "near"}
    # deleting one keeps the other read as a headline, and the index remembers the notice
    delete_articles(path, ["pay-0"], hash_embedder, hash_config)
    snap = IndexDir(path).open()
    assert snap.record(snap.key_of_id("pay-1")).body == "" and snap.notices


def _snapshot_contents(path) -> dict:
    """Everything a snapshot stores, to compare two builds byte for byte: records, links and every array."""
    snap = IndexDir(path).open()
    try:
        folder = snap.path
        arrays = {p.name: np.load(p) for p in folder.glob("*.npy")}
        with np.load(folder / "rows.npz") as rows:
            arrays.update({f"rows.{k}": rows[k] for k in rows.files})
        records = snap.records()
        return {"records": {k: records[k] for k in sorted(records)}, "links": sorted(snap.links()), "arrays": arrays}
    finally:
        snap.close()


def test_rows_prepared_in_a_folder_build_the_snapshot_rows_in_memory_build(tmp_path, corpus_records, hash_config,
                                                                           hash_embedder, monkeypatch):
    """A build whose rows come written to a folder (as a Ray cluster's come, read from disk a block at a
    time) stores what the build of the same rows in memory stores, notices, copies and an id given twice
    included; the folder goes with the build when it is the build's own."""
    import recommender.index.indexing as indexing
    from recommender.index.indexing import Prepared, RowsWriter, prepare_articles

    monkeypatch.setattr(indexing, "LINK_CHUNK", 64)  # several chunks, each released
    monkeypatch.setattr(indexing, "SEARCH_BLOCK", 64)
    stubs = [{"id": f"pay-{i}", "title": t, "body": PAYWALL} for i, t in
             enumerate(["Rovers win league title", "City council approves new bus routes"])]
    again = dict(corpus_records[5], title=corpus_records[5]["title"] + " (updated)")
    articles = [parse_article(r) for r in corpus_records[:200] + stubs + [again]]
    memory = prepare_articles(articles, hash_embedder, hash_config)
    build_index(memory, tmp_path / "memory", hash_embedder, hash_config)

    rows = prepare_articles(articles, hash_embedder, hash_config)
    writer = RowsWriter(tmp_path / "rows", hash_embedder.dim)
    for at in range(0, len(rows.records), 70):
        writer.add(rows.records[at:at + 70], rows.vectors[at:at + 70], rows.minhash[at:at + 70])
    disk = writer.close(owned=True)
    assert isinstance(disk.vectors, np.memmap) and disk.records[7] == rows.records[7]
    build_index(disk, tmp_path / "disk", hash_embedder, hash_config)
    assert not (tmp_path / "rows").exists()

    a, b = _snapshot_contents(tmp_path / "memory"), _snapshot_contents(tmp_path / "disk")
    assert a["records"] == b["records"] and a["links"] == b["links"]
    assert sorted(a["arrays"]) == sorted(b["arrays"])
    same = {k: np.array_equal(a["arrays"][k], b["arrays"][k], equal_nan=a["arrays"][k].dtype.kind == "f")
            for k in a["arrays"]}
    assert all(same.values()), [k for k, v in same.items() if not v]
    assert a["records"][IndexDir(tmp_path / "disk").open().key_of_id("pay-0")].body == ""  # read as its headline

    # A folder written by another process (a benchmark's maker) reads back the same rows.
    kept = RowsWriter(tmp_path / "kept", hash_embedder.dim, keep_heads=False)
    kept.add(rows.records, rows.vectors, rows.minhash)
    kept.close()
    reopened = Prepared.open(tmp_path / "kept")
    assert list(reopened.records) == list(rows.records)
    assert np.array_equal(reopened.vectors, rows.vectors) and np.array_equal(reopened.minhash, rows.minhash)


def test_a_killed_builds_prepared_rows_are_removed_by_the_next_writer(writable_index):
    d = IndexDir(writable_index)
    dead = writable_index / ".rows-999999999-abcd"
    mine = d.new_rows_folder()
    dead.mkdir()
    removed = d.clean_leftovers()
    assert dead.name in removed and not dead.exists() and mine.exists()


def test_lists_read_outlets_sections_and_languages_from_the_snapshots_arrays_as_from_its_table(
        writable_index, hash_config, hash_embedder, corpus_records):
    """A related list filters and judges its candidates by outlet, section and language from arrays the
    snapshot stores; one written before them reads its table instead, and lists alike."""
    from recommender.facade import Recommender

    def lists(excluded: str = "") -> list[dict]:
        rec = Recommender(hash_config.replace(index=str(writable_index)), hash_embedder)
        rec.load()
        asked = [rec.params(k=5, min_score=-1), rec.params(k=5, min_score=-1, sections=frozenset({"politics"})),
                 rec.params(k=5, min_score=-1, exclude_sections=frozenset({"economy"}), exclude_ids=frozenset({excluded}))]
        return [rec.related(p, id=r["id"]) for p in asked for r in corpus_records[:12]]

    snap = IndexDir(writable_index).open()
    assert snap.listing([0, 1])["section"] == [snap.meta([k])[k].section for k in snap.keys[:2].tolist()]
    listed = [i for answer in lists()[:12] for i in answer["items"] if i["section"] != "economy"]
    excluded = max({i["id"] for i in listed}, key=[i["id"] for i in listed].count)  # the one listed most
    stored = lists(excluded)
    assert {i["section"] for answer in stored[12:24] for i in answer["items"]} == {"politics"}
    assert not {"economy", excluded} & {i[f] for answer in stored[24:] for i in answer["items"] for f in ("section", "id")}
    assert sum(len(a["items"]) for a in stored) > 100

    rows = snap.path / "rows.npz"
    kept = {k: v for k, v in np.load(rows).items() if not k.endswith(("_code", "_names"))}
    np.savez(rows, **kept)
    assert IndexDir(writable_index).open().listing([0]) is None
    assert lists(excluded) == stored
