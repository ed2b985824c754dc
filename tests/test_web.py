"""The Flask app with the stand-in embedder: routes, the one error shape, headers, writes."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.conftest import build_hash_index, make_app
from web import create_app


def assert_error(response, status: int, field: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"status", "code", "message", "field", "request_id"}
    assert err["status"] == status and err["message"] and err["request_id"]
    assert "Traceback" not in err["message"]
    if field is not None:
        assert err["field"] == field
    return err


def test_factory_without_an_index_still_starts(tmp_path, hash_embedder):
    app = make_app(tmp_path / "none", hash_embedder)
    c = app.test_client()
    r = c.get("/healthz")
    assert r.status_code == 503 and "newsrec build" in r.get_json()["message"]
    assert_error(c.get("/api/related?id=x"), 503)


def test_factory_reads_test_config(hash_index, hash_embedder):
    app = make_app(hash_index, hash_embedder, max_k=7)
    assert app.config["NEWSREC"].max_k == 7
    assert_error(app.test_client().get("/api/related?id=sample-sheinbaum&k=8"), 400, "k")


def test_healthz_reports_the_snapshot(client, hash_index):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["count"] == 301
    assert body["snapshot"] == (hash_index / "CURRENT").read_text().strip()


def test_related_by_id_has_scores_and_caching(client):
    r = client.get("/api/related?id=sample-sheinbaum&k=3&min_score=0")
    assert r.status_code == 200
    body = r.get_json()
    assert body["query"]["id"] == "sample-sheinbaum" and len(body["items"]) == 3
    for item in body["items"]:
        assert item["id"] != "sample-sheinbaum"
        assert {"score", "similarity", "recency", "reason"} <= set(item)
    assert r.headers["ETag"] and "max-age" in r.headers["Cache-Control"]
    again = client.get("/api/related?id=sample-sheinbaum&k=3&min_score=0", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304


def test_related_explain_returns_cut_furniture(client):
    body = client.get("/api/related?id=sample-sheinbaum&explain=1").get_json()
    assert len(body["query"]["also_read"]) == 3 and body["query"]["removed"]


def test_related_by_text_and_html(client):
    r = client.post("/api/related", json={"title": "Mexico cartel violence", "body": "Drug cartels in Mexico fought the army.", "k": 2, "min_score": 0})
    assert r.status_code == 200 and len(r.get_json()["items"]) == 2
    r = client.post("/api/related", json={"html": "<html><body><article><h1>Mexico</h1><p>Drug cartels in Mexico fought the army again this week, officials said.</p></article></body></html>", "min_score": 0})
    assert r.status_code == 200 and r.get_json()["items"]


def test_duplicates_and_compare(client):
    raw = open("demo/scraped/sample-sheinbaum.txt", encoding="utf-8").read()
    body = client.post("/api/duplicates", json={"title": "A copy", "text": raw.replace("Tuesday", "Monday")}).get_json()
    assert body["verdict"] in ("exact", "near")
    top = body["matches"][0]
    assert top["id"] == "sample-sheinbaum"
    assert set(top["scores"]) == {"cosine", "jaccard", "containment", "coverage", "p_retelling", "p_related", "days_apart"}
    cmp = client.post("/api/compare", json={"a": {"title": "a", "body": raw}, "b": {"title": "b", "body": raw + "\n\nShare this"}}).get_json()
    assert cmp["duplicate"] is True and cmp["scores"]["containment"] == 1.0 and cmp["scores"]["days_apart"] is None


def test_a_match_says_how_many_days_apart_it_was_judged_or_that_its_time_was_unknown(client):
    from tests.conftest import demo_records

    original = next(r for r in demo_records(300) if r["published"])
    when = dt.date.fromisoformat(original["published"][:10]) + dt.timedelta(days=3)
    copy = {"title": original["title"], "body": original["body"]}
    found = lambda article: next(m for m in client.post("/api/duplicates", json=article).get_json()["matches"]
                                 if m["id"] == original["id"])
    assert found({**copy, "published": when.isoformat()})["scores"]["days_apart"] == 3.0
    assert found(copy)["scores"]["days_apart"] is None  # undated: judged on the text alone
    pair = client.post("/api/compare", json={"a": {**copy, "published": original["published"][:10]},
                                             "b": {**copy, "published": when.isoformat()}}).get_json()
    assert pair["scores"]["days_apart"] == 3.0


def test_article_shows_groups(client):
    body = client.get("/api/articles/sample-sheinbaum").get_json()
    assert body["groups"]["duplicate"]["canonical"] == "sample-sheinbaum"
    assert "sample-sheinbaum" in body["groups"]["story"]["members"]


@pytest.mark.parametrize("url,field", [
    ("/api/related", "id"),
    ("/api/related?id=sample-sheinbaum&k=0", "k"),
    ("/api/related?id=sample-sheinbaum&k=abc", "k"),
    ("/api/related?id=sample-sheinbaum&mmr_lambda=2", "mmr_lambda"),
    ("/api/related?id=sample-sheinbaum&date_from=yesterday", "date_from"),
    ("/api/related?id=sample-sheinbaum&collapse=maybe", "collapse"),
])
def test_400_names_the_field(client, url, field):
    assert_error(client.get(url), 400, field)


def test_400_for_bad_json_bodies(client):
    post = lambda data, ct="application/json": client.post("/api/related", data=data, content_type=ct)
    assert_error(post(b"{not json"), 400, "body")
    assert_error(post(b"[1, 2]"), 400, "body")
    assert_error(post(b"\xff\xfe{}"), 400, "body")
    assert_error(post(b""), 400, "body")
    assert_error(post(("[" * 5000 + "]" * 5000).encode()), 400, "body")
    assert_error(post(json.dumps({"title": "x", "body": "a\x00b"}).encode()), 400, "body")
    assert_error(post(json.dumps({"title": 5, "body": "text"}).encode()), 400, "title")
    assert_error(client.post("/api/compare", json={"a": {"title": "x", "body": "y"}}), 400, "b")


def test_404_405_413_415(client):
    assert_error(client.get("/api/related?id=no-such-article"), 404, "id")
    assert_error(client.get("/no/such/page"), 404)
    assert_error(client.get("/api/articles/nope"), 404)
    r = client.put("/api/related")
    assert_error(r, 405)
    assert "GET" in r.headers["Allow"] and "POST" in r.headers["Allow"]
    assert_error(client.post("/api/related", data=b"x" * 3_000_000, content_type="application/json"), 413)
    assert_error(client.post("/api/related", data="title=x", content_type="application/x-www-form-urlencoded"), 415)


def test_429_when_rate_limited(hash_index, hash_embedder):
    c = make_app(hash_index, hash_embedder, rate_limit=3).test_client()
    codes = [c.get("/api/related?id=sample-sheinbaum").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200]
    assert_error(c.get("/api/related?id=sample-sheinbaum"), 429)


def test_requests_with_a_text_are_limited_per_client_by_default_and_told_when_to_retry(hash_index, hash_embedder):
    """Each by-text request runs the model: past text_rate_limit a minute from one address the answer is
    429 with Retry-After (in seconds, within the minute), in the one error shape; reads by id are not
    counted, nor another address's requests; 0 turns the limit off."""
    from recommender.config import Config

    assert Config.load({}, environ={}).text_rate_limit > 0
    body = {"title": "Council expands bus network", "body": "The council voted to add four bus routes."}
    c = make_app(hash_index, hash_embedder, text_rate_limit=3).test_client()
    codes = [c.post(path, json=body).status_code for path in ("/api/related", "/api/duplicates", "/api/related")]
    assert codes == [200, 200, 200]
    refused = c.post("/api/duplicates", json=body)
    assert_error(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert c.get("/api/related?id=sample-sheinbaum").status_code == 200
    assert c.post("/api/related", json=body, environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200
    unlimited = make_app(hash_index, hash_embedder, text_rate_limit=0).test_client()
    assert {unlimited.post("/api/related", json=body).status_code for _ in range(5)} == {200}


def test_a_warmed_worker_has_answered_each_kind_of_request_and_counts_none_against_a_client(hash_index, hash_embedder,
                                                                                             monkeypatch):
    """The served app (web.serving: create_app(warm=True)) answers by text, by id, duplicates, a pasted page
    and the fragment once before its first request, each without an error; a reader's rate limit then
    starts from nothing."""
    from recommender.query.service import QueryService
    from recommender.text import articles
    from web import create_app
    from web.serving import APP

    assert APP == "web:create_app(warm=True)"
    seen, failed = [], []
    for name in ("related", "duplicates", "compare"):
        original = getattr(QueryService, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            seen.append((_name, "id" if kwargs.get("id") else "text"))
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(QueryService, name, counted)
    clean_html = articles.clean_html
    monkeypatch.setattr(articles, "clean_html", lambda *a, **k: seen.append(("clean_html", "page")) or clean_html(*a, **k))
    import web
    monkeypatch.setattr(web.log, "warning", lambda *a: failed.append(a))
    from recommender import Recommender
    from recommender.config import Config

    settings = {"index": str(hash_index), "backend": "hash", "reload_interval": 0, "rate_limit": 2}
    app = create_app(settings, recommender=Recommender(Config.load(settings, environ={}), hash_embedder), warm=True)
    assert {("related", "text"), ("related", "id"), ("duplicates", "text"), ("compare", "text"),
            ("clean_html", "page")} <= set(seen)
    assert not failed
    c = app.test_client()
    assert [c.get("/api/related?id=sample-sheinbaum").status_code for _ in range(3)] == [200, 200, 429]
    before = len(seen)
    create_app(settings, recommender=Recommender(Config.load(settings, environ={}), hash_embedder))
    assert len(seen) == before  # the tests' apps and a script's are not warmed unless asked


def test_500_is_json_without_a_stack_trace(app):
    def boom(*a, **k):
        raise RuntimeError("secret internals")

    app.extensions["newsrec"].related = boom
    err = assert_error(app.test_client().get("/api/related?id=sample-sheinbaum"), 500)
    assert "secret" not in err["message"]


def test_writes_need_the_token(hash_index, hash_embedder, writable_index, corpus_records):
    c = make_app(hash_index, hash_embedder).test_client()
    assert_error(c.post("/api/articles", json={"articles": []}), 403, "Authorization")
    app = make_app(writable_index, hash_embedder, token="s3cret")
    c = app.test_client()
    assert_error(c.post("/api/articles", json={"articles": [corpus_records[100]]}), 401)
    assert_error(c.post("/api/articles", json={"articles": [corpus_records[100]]}, headers={"Authorization": "Bearer nope"}), 401)
    auth = {"Authorization": "Bearer s3cret"}
    r = c.post("/api/articles", json={"articles": [corpus_records[100]]}, headers=auth)
    assert r.status_code == 201 and r.get_json()["added"] == 1
    assert c.get(f"/api/articles/{corpus_records[100]['id']}").status_code == 200
    assert_error(c.post("/api/articles", json={"articles": [{"title": "no id"}]}, headers=auth), 400, "articles[0].id")
    assert c.delete(f"/api/articles/{corpus_records[100]['id']}", headers=auth).status_code == 200
    assert_error(c.get(f"/api/articles/{corpus_records[100]['id']}"), 404)
    assert c.post("/api/reload", headers=auth).status_code == 200


def test_cors_allowed_origins_and_preflight(hash_index, hash_embedder):
    c = make_app(hash_index, hash_embedder, cors_origins="https://news.example").test_client()
    r = c.options("/api/related", headers={"Origin": "https://news.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code in (200, 204) and r.headers["Access-Control-Allow-Origin"] == "https://news.example"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    r = c.get("/api/related?id=sample-sheinbaum", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_by_default_any_page_may_read_so_the_widget_works_where_it_is_pasted(hash_index, hash_embedder):
    c = make_app(hash_index, hash_embedder).test_client()
    r = c.get("/api/related?id=sample-sheinbaum", headers={"Origin": "https://www.some-paper.example"})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert c.get("/widget.js", headers={"Origin": "https://www.some-paper.example"}).headers["Access-Control-Allow-Origin"] == "*"
    # a write still needs the token, from any origin
    r = c.post("/api/articles", json={"id": "x", "title": "t", "body": "b"}, headers={"Origin": "https://www.some-paper.example"})
    assert r.status_code in (401, 403)
    # empty keeps the API to its own origin
    same = make_app(hash_index, hash_embedder, cors_origins="").test_client()
    assert "Access-Control-Allow-Origin" not in same.get("/api/related?id=sample-sheinbaum",
                                                         headers={"Origin": "https://www.some-paper.example"}).headers


def test_html_security_headers_and_escaping(client, writable_index, hash_embedder):
    r = client.get("/")
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert b"ALSO READ" in r.data and b"<script src=\"/widget.js\"" in r.data
    app = make_app(writable_index, hash_embedder, token="t")
    c = app.test_client()
    evil = {"id": "evil", "title": "<img src=x onerror=alert(1)> Mexico drug cartels", "source": "hostile-site",
            "body": "Drug cartels in Mexico fought the army again."}
    c.post("/api/articles", json={"articles": [evil]}, headers={"Authorization": "Bearer t"})
    # the hostile site's article is the only one its source filter lets through: its title is on the page
    page = c.get("/embed?id=sample-sheinbaum&min_score=-1&source=hostile-site").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page


def test_embed_is_framable_and_pages_are_not(client):
    assert client.get("/").headers["X-Frame-Options"] == "SAMEORIGIN"
    r = client.get("/embed?id=sample-sheinbaum")
    assert r.status_code == 200 and "X-Frame-Options" not in r.headers
    assert "frame-ancestors" in r.headers["Content-Security-Policy"]


def test_click_beacon_is_counted_for_items_a_list_served(writable_index, corpus_records, hash_embedder):
    app = make_app(writable_index, hash_embedder)
    client = app.test_client()
    page = corpus_records[0]["id"]
    served = client.get(f"/api/related?id={page}&k=3").get_json()["items"]
    first, second = served[0], served[1]
    click = {"from": page, "to": second["id"], "position": 2, "ticket": second["ticket"]}
    r = client.post("/api/click", data=json.dumps(click), content_type="text/plain;charset=UTF-8")
    assert r.status_code == 204
    # an item no list showed on that page, a ticket of another item or page, or none: refused, not counted
    never = next(r["id"] for r in corpus_records[1:] if r["id"] not in {i["id"] for i in served})
    for forged in ({**click, "to": never}, {**click, "from": never}, {**click, "ticket": first["ticket"]},
                   {k: v for k, v in click.items() if k != "ticket"}):
        assert_error(client.post("/api/click", json=forged), 400, field="ticket")
    app.extensions["newsrec.clicks"].flush()
    stats = client.get("/api/stats").get_json()["clicks"]
    assert stats["total"] == 1 and any(p["position"] == 2 and p["clicks"] == 1 for p in stats["by_position"])
    ids, tickets = [i["id"] for i in served[:2]], [i["ticket"] for i in served[:2]]
    assert client.post("/api/view", json={"from": page, "items": ids, "tickets": tickets}).status_code == 204
    assert_error(client.post("/api/view", json={"from": page, "items": ids + [never],
                                                "tickets": tickets + tickets[:1]}), 400, field="ticket")
    stats = client.get("/api/stats?days=1").get_json()["clicks"]
    second_place = next(p for p in stats["by_position"] if p["position"] == 2)
    assert second_place["views"] == 1 and second_place["ctr"] is not None
    assert client.post("/api/view", json={"from": "x", "items": []}).status_code == 400
    # the key is kept beside the index: another worker (another app on the same index) accepts the ticket
    other = make_app(writable_index, hash_embedder).test_client()
    assert other.post("/api/click", json=click).status_code == 204


def test_widget_and_admin(client, hash_index, hash_embedder):
    r = client.get("/widget.js")
    assert r.status_code == 200 and r.mimetype == "application/javascript" and len(r.data) < 15_000
    assert client.get("/admin").status_code == 403
    c = make_app(hash_index, hash_embedder, token="t").test_client()
    assert c.get("/admin").status_code == 401
    r = c.get("/admin", headers={"Authorization": "Bearer t"})
    assert r.status_code == 200 and b"<svg" in r.data


def test_admin_index_page_lists_groups_by_title_histograms_agreement_and_history(tmp_path, corpus_records,
                                                                                  hash_config, hash_embedder):
    import re as _re
    import time as _time

    records = corpus_records[:60]
    copies = [dict(r, id=r["id"] + "-wire", source="wire") for r in records[:5]]  # syndicated copies
    index = build_hash_index(tmp_path / "idx", records + copies, hash_config, hash_embedder)
    c = make_app(index, hash_embedder, token="t").test_client()
    auth = {"Authorization": "Bearer t"}
    r = c.get("/admin?kind=duplicate&sort=title", headers=auth)
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    titles = _re.findall(r'<span class="gtitle">(.*?)</span>', page)
    assert len(titles) >= 2 and titles == sorted(titles, key=str.casefold)  # by title, and titled
    assert "<th>source</th>" in page and "(canonical)" in page and "<td>wire</td>" in page
    # the index's numbers in words, not the API's keys
    headings = _re.findall(r'<table class="kv">(.*?)</table>', page, _re.S)[0]
    assert "<th>Articles</th>" in headings and "<th>Search index</th>" in headings
    assert not _re.search(r"<th>[a-z]+_[a-z_]+</th>", headings)
    # histograms carry the configured bars as lines
    assert page.count("<svg") >= 1 and "retelling, same day, no shared words: 0." in page and "<line" in page
    # build history starts with the build that made this index
    builds = page.split('id="builds"')[1].split("</table>")[0]
    assert _re.search(r"<td>\d{8}T\d+Z-[0-9a-f]+</td>", builds)
    # the agreement is computed in the background, then shown
    deadline = _time.time() + 30
    while "agreement-pending" in c.get("/admin", headers=auth).get_data(as_text=True) and _time.time() < deadline:
        _time.sleep(0.2)
    page = c.get("/admin", headers=auth).get_data(as_text=True)
    assert 'id="agreement"' in page and "over 0 articles" not in page and "– over" not in page
    # bad parameters get the one error shape
    bad = c.get("/admin?sort=colour", headers=auth)
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "sort"
    by_size = c.get("/admin?kind=duplicate&sort=size", headers=auth).get_data(as_text=True)
    sizes = [int(n) for n in _re.findall(r"</span> · (\d+) copies", by_size)]
    assert sizes == sorted(sizes, reverse=True)


def test_the_factory_takes_its_settings_and_starts_without_an_index(tmp_path):
    """create_app(test_config): the settings come from the mapping, nothing is built at import time, and
    an app over an empty directory still starts and says what to run."""
    app = create_app({"index": str(tmp_path / "nothing-here"), "backend": "hash", "max_k": 7})
    assert app.config["NEWSREC"].max_k == 7 and app.config["MAX_CONTENT_LENGTH"] == app.config["NEWSREC"].max_body_bytes
    c = app.test_client()
    r = c.get("/api/related?id=x")
    assert r.status_code == 503 and "newsrec build" in r.get_json()["error"]["message"]
    with pytest.raises(Exception, match="max_k"):
        create_app({"index": str(tmp_path), "backend": "hash", "max_k": 0})


def test_a_mistyped_api_path_is_404_not_405(client):
    r = client.get("/api/relatd?id=x")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    assert "/api/relatd" in r.get_json()["error"]["message"] and "Allow" not in r.headers
    assert client.delete("/api/related").status_code == 405  # a real route, another method: still 405


def test_a_list_left_short_by_the_articles_own_language_takes_other_languages_and_says_so(client):
    page = {"title": "Drogenkartelle in Mexiko", "min_score": 0,
            "body": "Die mexikanische Armee kämpfte diese Woche erneut gegen die Drogenkartelle im Norden des Landes, "
                    "sagten Beamte am Dienstag in der Hauptstadt."}
    body = client.post("/api/related", json=page).get_json()
    assert body["query"]["lang"] == "de"  # detected; the index holds English stories
    assert body["items"] and "other languages were added" in body.get("short_reason", "")
    # a language the client asks for is kept, even when it leaves the list empty
    asked = client.post("/api/related", json={**page, "lang": "de"}).get_json()
    assert asked["items"] == [] and "other languages" not in asked.get("short_reason", "")


def test_admin_without_a_token_on_the_server_says_how_to_open_it(client):
    r = client.get("/admin")
    text = r.get_data(as_text=True)
    assert r.status_code == 403 and "restart it with NEWSREC_TOKEN" in text and "writes" not in text


def test_thumbnails_hold_their_place_and_the_site_fallback_stands_in(hash_index, hash_embedder):
    """Every fragment row is sized before its image loads (width, height, lazy); a story without an image
    shows the site's fallback image when one is set (the widget reads it from the answer); a fallback
    that is not an http(s) URL is refused at start."""
    import re

    from recommender.config import Config
    from recommender.errors import ConfigError

    plain = make_app(hash_index, hash_embedder).test_client()
    assert "fallback_image" not in plain.get("/api/related?id=sample-sheinbaum").get_json()
    assert "<img" not in plain.get("/embed?id=sample-sheinbaum").get_data(as_text=True)
    c = make_app(hash_index, hash_embedder, fallback_image="https://cdn.example/logo.png").test_client()
    assert c.get("/api/related?id=sample-sheinbaum").get_json()["fallback_image"] == "https://cdn.example/logo.png"
    page = c.get("/embed?id=sample-sheinbaum").get_data(as_text=True)
    images = re.findall(r"<img [^>]*>", page)
    assert images and all('width="72" height="48"' in i and 'loading="lazy"' in i for i in images)
    assert 'src="https://cdn.example/logo.png"' in images[0]
    with pytest.raises(ConfigError, match="fallback_image"):
        Config.load({"fallback_image": "javascript:alert(1)"}, environ={})


def test_the_served_widget_drops_comments_and_indentation_but_no_code():
    from web.pages import minified

    source = "/*! header\n * options\n */\n(function () {\n  // a note\n  var a = 1; // kept\n  /* inner\n     block */\n  /* short */ var b = 2;\n  var url = \"https://x\";\n})();\n"
    assert minified(source) == ("/*! header\n* options\n*/\n(function () {\nvar a = 1; // kept\nvar b = 2;\n"
                                "var url = \"https://x\";\n})();\n")
