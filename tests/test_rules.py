"""Site-wide rules: every list honours them (pins, the fragment and the widget's answers included); a
rules file that does not parse stops the app at start with the reason."""
from __future__ import annotations

import datetime as dt
import html
import json

import pytest

from recommender.errors import ConfigError
from recommender.query.rules import load_rules
from tests.conftest import make_app

AUTH = {"Authorization": "Bearer t"}


def _rules(tmp_path, rules: dict) -> str:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules), encoding="utf-8")
    return str(path)


def _items(c, article_id: str, k: int = 10) -> list[dict]:
    return c.get(f"/api/related?id={article_id}&k={k}&min_score=-1").get_json()["items"]


def test_never_listed_sources_sections_and_ids_hold_for_every_list_and_pins(tmp_path, writable_index, corpus_records,
                                                                           hash_embedder):
    page = corpus_records[0]["id"]
    plain = make_app(writable_index, hash_embedder, token="t").test_client()
    before = _items(plain, page)
    economy = next(r["id"] for r in corpus_records[1:60] if r.get("section") == "economy")
    never_id = next(i["id"] for i in before if i["section"] != "economy")
    assert plain.put(f"/api/articles/{page}/choices", json={"pins": [economy]}, headers=AUTH).status_code == 200
    assert _items(plain, page)[0]["id"] == economy
    rules = _rules(tmp_path, {"never": {"sections": ["economy"], "ids": [never_id], "sources": ["wire.example"]}})
    c = make_app(writable_index, hash_embedder, token="t", site_rules=rules).test_client()
    items = _items(c, page)
    assert items and all(i["section"] != "economy" for i in items)  # the pinned economy story too
    assert never_id not in {i["id"] for i in items} and not any(i["pinned"] for i in items)
    fragment = c.get(f"/embed?id={page}&k=10").get_data(as_text=True)
    titles = {r["id"]: html.escape(r["title"]) for r in corpus_records}
    assert titles[never_id] in plain.get(f"/embed?id={page}&k=10").get_data(as_text=True)
    assert titles[never_id] not in fragment and titles[economy] not in fragment
    by_text = c.post("/api/related", json={"title": corpus_records[0]["title"], "body": corpus_records[0]["body"],
                                           "k": 10, "min_score": -1}).get_json()["items"]
    assert by_text and all(i["section"] != "economy" and i["id"] != never_id for i in by_text)
    # a request may narrow a list, never widen it past the rules
    asked = c.get(f"/api/related?id={page}&k=10&min_score=-1&section=economy").get_json()
    assert asked["items"] == [] and asked["short"]


def test_a_maximum_age_per_section_keeps_older_and_undated_items_out(tmp_path, corpus_records, hash_config,
                                                                     hash_embedder):
    from tests.conftest import build_hash_index

    records = [dict(r) for r in corpus_records[:60]]
    records[5]["published"] = ""  # an undated politics story
    records[5]["section"] = "politics"
    index = build_hash_index(tmp_path / "idx", records, hash_config, hash_embedder)
    cutoff = dt.date(2006, 1, 1)
    days = (dt.datetime.now(dt.timezone.utc).date() - cutoff).days
    rules = _rules(tmp_path, {"max_age_days": {"politics": days}})
    c = make_app(index, hash_embedder, site_rules=rules).test_client()
    for page in (records[0]["id"], records[10]["id"], records[20]["id"]):
        items = _items(c, page, k=20)
        assert items
        for i in items:
            if i["section"] == "politics":
                assert i["published"] and dt.date.fromisoformat(i["published"][:10]) >= cutoff, i
    listed = {i["id"] for p in (records[0]["id"], records[10]["id"]) for i in _items(c, p, k=30)}
    assert records[5]["id"] not in listed
    # no age for other sections: older economy stories are still listed
    assert any(i["section"] == "economy" and dt.date.fromisoformat(i["published"][:10]) < cutoff
               for p in (records[0]["id"], records[10]["id"]) for i in _items(c, p, k=30))


@pytest.mark.parametrize("text, words", [
    ("{not json", "not JSON"),
    ('{"never": {"sections": "sponsored"}}', "'never.sections' must be a list"),
    ('{"never": {"tags": ["x"]}}', "'never' holds lists named"),
    ('{"max_age_days": {"live": -2}}', "'max_age_days' maps sections"),
    ('{"max_age": {"live": 2}}', "expected an object with 'never' and 'max_age_days'"),
    ('["sponsored"]', "expected an object"),
])
def test_a_rules_file_that_does_not_parse_stops_the_app_with_the_reason(tmp_path, writable_index, hash_embedder,
                                                                          text, words):
    path = tmp_path / "rules.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        make_app(writable_index, hash_embedder, site_rules=str(path))
    assert words in err.value.message and str(path) in err.value.message
    with pytest.raises(ConfigError, match="cannot read it"):
        load_rules(tmp_path / "missing.json")
    assert not load_rules("")
