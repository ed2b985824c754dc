"""Editors' pins and excludes per article: stored beside the snapshots, read by every list."""
from __future__ import annotations

import sqlite3

from tests.conftest import make_app
from tests.test_web import assert_error

AUTH = {"Authorization": "Bearer t"}


def _app(index, embedder, **overrides):
    return make_app(index, embedder, token="t", **overrides).test_client()


def _related(c, article_id: str, k: int = 5) -> list[dict]:
    return c.get(f"/api/related?id={article_id}&k={k}").get_json()["items"]


def test_pins_lead_in_order_count_towards_k_and_excluded_stories_never_show(writable_index, corpus_records,
                                                                             hash_embedder):
    c = _app(writable_index, hash_embedder)
    page = corpus_records[0]["id"]
    before = [i["id"] for i in _related(c, page, k=6)]
    # two stories from far down the site, and the list's own first item excluded
    far = [r["id"] for r in corpus_records[:60] if r["id"] not in before and r["id"] != page][-2:]
    r = c.put(f"/api/articles/{page}/choices", json={"pins": far, "excludes": [before[0]]}, headers=AUTH)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert [p["id"] for p in r.get_json()["pins"]] == far and r.get_json()["excludes"][0]["id"] == before[0]
    items = _related(c, page, k=5)
    assert [i["id"] for i in items[:2]] == far and [i["pinned"] for i in items] == [True, True, False, False, False]
    assert len(items) == 5 and before[0] not in {i["id"] for i in items}
    assert all(i["reason"].startswith("pinned by an editor") for i in items[:2])
    assert all(-1.0 <= i["score"] <= 1.0 and i["score"] == i["similarity"] for i in items[:2])
    assert [i["id"] for i in _related(c, page, k=1)] == far[:1]  # a list shorter than the pins shows the first
    assert c.get(f"/api/related?id={page}&k=5").get_json()["params"]["k"] == 5
    # the fragment (the no-JS list) shows the same list
    import html

    title = {r["id"]: html.escape(r["title"]) for r in corpus_records}
    fragment = c.get(f"/embed?id={page}&k=5").get_data(as_text=True)
    assert fragment.index(title[far[0]]) < fragment.index(title[far[1]]) and title[before[0]] not in fragment
    # DELETE clears them: the list is as before
    assert c.delete(f"/api/articles/{page}/choices", headers=AUTH).get_json() == {
        "id": page, "title": corpus_records[0]["title"], "pins": [], "excludes": []}
    assert [i["id"] for i in _related(c, page, k=6)] == before


def test_a_pin_and_an_exclude_stand_for_their_stories(tmp_path, corpus_records, hash_config, hash_embedder):
    """A copy of a pinned story (another outlet's) is never listed beside the pin; excluding a story
    excludes its copies too."""
    from tests.conftest import build_hash_index

    records = corpus_records[:60]
    page = records[0]
    first = _related(_app(build_hash_index(tmp_path / "plain", records, hash_config, hash_embedder), hash_embedder),
                     page["id"])[0]["id"]
    pin = next(r for r in records if r["id"] == first)  # the list's own first story, and a copy of it
    copy = {**pin, "id": pin["id"] + "-wire", "source": "wire.example"}
    index = build_hash_index(tmp_path / "idx", records + [copy], hash_config, hash_embedder)
    c = _app(index, hash_embedder)
    shown = [i["id"] for i in _related(c, page["id"], k=10)]
    assert pin["id"] in shown and copy["id"] not in shown  # one item for the story
    excluded = c.put(f"/api/articles/{page['id']}/choices", json={"excludes": [pin["id"]]}, headers=AUTH)
    assert excluded.status_code == 200
    assert not {pin["id"], copy["id"]} & {i["id"] for i in _related(c, page["id"], k=10)}  # the story excluded
    assert c.put(f"/api/articles/{page['id']}/choices", json={"pins": [pin["id"]]}, headers=AUTH).status_code == 200
    ids = [i["id"] for i in _related(c, page["id"], k=10)]
    assert ids[0] == pin["id"] and copy["id"] not in ids


def test_bad_choices_are_refused_whole_and_nothing_is_stored(writable_index, corpus_records, hash_embedder):
    c = _app(writable_index, hash_embedder, max_k=3, default_k=3)
    page, a, b, d, e = (r["id"] for r in corpus_records[:5])
    assert c.put(f"/api/articles/{page}/choices", json={"pins": [a], "excludes": [b]}, headers=AUTH).status_code == 200
    bad = [
        ({"pins": ["no-such-article"]}, "pins"),
        ({"pins": [page]}, "pins"),  # the article itself
        ({"pins": [a, b, d, e]}, "pins"),  # more than max_k
        ({"pins": [a, a]}, "pins"),
        ({"pins": [a], "excludes": [a]}, "excludes"),
        ({"pins": "a"}, "pins"),
        ({"pins": [a], "excludes": [b, "gone-1"]}, "excludes"),
        ({"pins": [a], "order": []}, "order"),
    ]
    for body, field in bad:
        assert_error(c.put(f"/api/articles/{page}/choices", json=body, headers=AUTH), 400, field)
    assert_error(c.put("/api/articles/nope/choices", json={"pins": [a]}, headers=AUTH), 404)
    assert_error(c.put(f"/api/articles/{page}/choices", data="x", content_type="text/plain", headers=AUTH), 415)
    got = c.get(f"/api/articles/{page}/choices", headers=AUTH).get_json()
    assert [p["id"] for p in got["pins"]] == [a] and [x["id"] for x in got["excludes"]] == [b]
    # without the token nothing is read or written
    assert_error(c.get(f"/api/articles/{page}/choices"), 401)
    assert_error(c.put(f"/api/articles/{page}/choices", json={"pins": []}), 401)
    closed = make_app(writable_index, hash_embedder).test_client()  # a server without a token
    assert_error(closed.put(f"/api/articles/{page}/choices", json={"pins": []}, headers=AUTH), 403)


def test_choices_survive_add_and_delete_and_a_deleted_pin_is_dropped_and_reported(writable_index, corpus_records,
                                                                                   hash_embedder):
    c = _app(writable_index, hash_embedder)
    page, keep, doomed = corpus_records[0]["id"], corpus_records[30]["id"], corpus_records[40]["id"]
    assert c.put(f"/api/articles/{page}/choices", json={"pins": [doomed, keep]}, headers=AUTH).status_code == 200
    assert c.post("/api/articles", json={"articles": [corpus_records[100]]}, headers=AUTH).status_code == 201
    assert [i["id"] for i in _related(c, page)[:2]] == [doomed, keep]  # a new snapshot: the pins hold
    assert c.delete(f"/api/articles/{doomed}", headers=AUTH).status_code == 200
    items = _related(c, page)
    assert items[0]["id"] == keep and items[0]["pinned"] and doomed not in {i["id"] for i in items}
    assert len(items) == 5
    got = c.get(f"/api/articles/{page}/choices", headers=AUTH).get_json()
    assert got["pins"] == [{"id": doomed, "title": None, "gone": True},
                           {"id": keep, "title": corpus_records[30]["title"], "gone": False}]
    # kept beside the snapshots, not in one
    with sqlite3.connect(writable_index / "editorial.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM choices WHERE article_id = ?", (page,)).fetchone()[0] == 2


def _form_post(c, path: str, action: str, other: str):
    """Post an action of the admin article page as its form does (the CSRF token of the page just read)."""
    import re

    page = c.get(path, headers=AUTH).get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return c.post(path, data={"csrf": token, "action": action, "id": other}, headers=AUTH)


def test_the_admin_article_page_pins_excludes_and_offers_the_articles_own_links(tmp_path, corpus_records, hash_config,
                                                                               hash_embedder):
    from tests.conftest import build_hash_index

    records = [dict(r) for r in corpus_records[:60]]
    linked = records[45]
    # the page's own ALSO READ link to an indexed story (cut by cleaning, kept as data)
    records[0]["body"] = records[0]["body"] + f"\n\nALSO READ: {linked['title']}"
    records[0]["html"] = None
    index = build_hash_index(tmp_path / "idx", records, hash_config, hash_embedder)
    c = _app(index, hash_embedder)
    page = records[0]["id"]
    path = f"/admin/article/{page}"
    assert c.get(path).status_code == 401
    html_page = c.get(path, headers=AUTH).get_data(as_text=True)
    first = _related(c, page)[0]["id"]
    assert f'data-action="pin" data-id="{first}"' in html_page
    r = _form_post(c, path, "pin", first)
    assert r.status_code == 303 and r.headers["Location"] == path
    assert _related(c, page)[0] == {**_related(c, page)[0], "id": first, "pinned": True}
    second = _related(c, page)[1]["id"]
    assert _form_post(c, path, "exclude", second).status_code == 303
    assert second not in {i["id"] for i in _related(c, page, k=10)}
    assert _form_post(c, path, "pin", "no-such-article").status_code == 400  # said on the page, nothing stored
    got = c.get(f"/api/articles/{page}/choices", headers=AUTH).get_json()
    assert [p["id"] for p in got["pins"]] == [first] and [x["id"] for x in got["excludes"]] == [second]
    # a form from elsewhere (no matching CSRF cookie) changes nothing
    other = make_app(index, hash_embedder, token="t").test_client()
    assert other.post(path, data={"csrf": "x", "action": "unpin", "id": first}, headers=AUTH).status_code == 403
    assert [p["id"] for p in c.get(f"/api/articles/{page}/choices", headers=AUTH).get_json()["pins"]] == [first]
    # the article's own ALSO READ link, offered as a pin with one click (never applied by itself)
    assert linked["id"] not in [p["id"] for p in got["pins"]]
    assert f'<li data-id="{linked["id"]}">' in c.get(path, headers=AUTH).get_data(as_text=True).split('id="offered"')[1]
    assert _form_post(c, path, "pin", linked["id"]).status_code == 303
    assert [i["id"] for i in _related(c, page)[:2]] == [first, linked["id"]]
    assert _form_post(c, path, "up", linked["id"]).status_code == 303
    assert [i["id"] for i in _related(c, page)[:2]] == [linked["id"], first]
    found = c.get(f"/admin/articles?q={first}", headers=AUTH)
    assert found.status_code == 200 and f"/admin/article/{page}" in found.get_data(as_text=True)  # listed as chosen
