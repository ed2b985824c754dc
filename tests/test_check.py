"""/admin/check: an editor pastes a draft and sees whether the index already has it."""
from __future__ import annotations

import re

import pytest

from recommender import shared_passages
from tests.conftest import demo_records, make_app

AUTH = {"Authorization": "Bearer t"}


@pytest.fixture()
def check(hash_index, hash_embedder):
    return make_app(hash_index, hash_embedder, token="t").test_client()


def csrf(client) -> str:
    page = client.get("/admin/check", headers=AUTH)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    return re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def syndicated(original: dict) -> dict:
    """Another site's copy: a new headline, a dateline, the ending cut, its own furniture added."""
    body = original["body"]
    cut = body[: int(len(body) * 0.7)].rsplit(" ", 1)[0] + "."
    return {"headline": "Breaking: " + original["title"],
            "text": f"MEXICO CITY (Wire) — {cut}\n\nALSO READ: Ten things to do this weekend\n\nKindly Share This Story"}


def test_check_needs_the_token_and_a_csrf_token(check):
    assert check.get("/admin/check").status_code == 401
    check.get("/admin/check", headers=AUTH)  # sets the cookie
    no_field = check.post("/admin/check", headers=AUTH, data={"headline": "x", "text": "y"})
    assert no_field.status_code == 403 and "expired" in no_field.get_data(as_text=True)
    token = csrf(check)
    wrong = check.post("/admin/check", headers=AUTH, data={"csrf": token + "x", "headline": "x", "text": "y"})
    assert wrong.status_code == 403
    as_json = check.post("/admin/check", headers={**AUTH, "Accept": "application/json"},
                         data={"csrf": "nope", "headline": "x", "text": "y"})
    assert as_json.status_code == 403 and as_json.get_json()["error"]["field"] == "csrf"


def test_empty_and_oversized_pastes_get_a_message(check):
    empty = check.post("/admin/check", headers=AUTH, data={"csrf": csrf(check), "headline": " ", "text": "\n "})
    assert empty.status_code == 400 and "Paste a headline" in empty.get_data(as_text=True)
    big = check.post("/admin/check", headers=AUTH, data={"csrf": csrf(check), "headline": "h", "text": "word " * 50_000})
    assert big.status_code == 413 and "at most" in big.get_data(as_text=True)
    err = check.post("/admin/check", headers={**AUTH, "Accept": "application/json"},
                     data={"csrf": csrf(check), "headline": "", "text": ""})
    assert err.status_code == 400 and set(err.get_json()["error"]) == {"status", "code", "message", "field", "request_id"}


def test_a_syndicated_copy_is_near_with_shared_passages_and_a_fresh_story_is_new(check):
    original = demo_records(300)[10]
    page = check.post("/admin/check", headers=AUTH, data={"csrf": csrf(check), **syndicated(original)})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-verdict="near"' in html and original["title"].split()[0] in html
    assert "time apart unknown: judged on the text alone" in html  # the paste sent no date
    dated = check.post("/admin/check", headers=AUTH, data={"csrf": csrf(check), **syndicated(original),
                                                          "published": original["published"][:10]})
    assert "0 days apart" in dated.get_data(as_text=True)
    assert html.count("<mark>") >= 2
    assert "Ten things to do this weekend" in html  # the draft's ALSO READ link, shown as data
    fresh = check.post("/admin/check", headers=AUTH, data={"csrf": csrf(check), "headline": "Llamas elect a mayor",
                                                          "text": "In a village high in the Andes, a herd of llamas chose a mayor by standing in a field."})
    assert 'data-verdict="new"' in fresh.get_data(as_text=True)


def test_pasted_html_is_shown_as_text_never_run(check):
    evil = "<p>Attack <img src=x onerror=alert(1)> now</p><script>alert(2)</script>"
    page = check.post("/admin/check", headers=AUTH, data={"csrf": csrf(check), "headline": "<b>bold</b>", "text": evil})
    html = page.get_data(as_text=True)
    assert "<img src=x" not in html and "<script>alert(2)" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_shared_passages_give_the_text_back():
    text = "Hello there. The quick brown fox jumps over the lazy dog, said Anna."
    pieces = shared_passages(text, "yesterday the quick brown fox jumps over the lazy dog again")
    assert "".join(p for p, _ in pieces) == text
    assert [p for p, shared in pieces if shared] == ["The quick brown fox jumps over the lazy dog"]


def test_a_draft_is_dated_the_day_it_goes_out_unless_the_editor_changes_or_clears_it(check):
    import datetime as dt

    page = check.get("/admin/check", headers=AUTH).get_data(as_text=True)
    shown = re.search(r'name="published" value="([^"]*)"', page).group(1)
    assert dt.date.fromisoformat(shown) >= dt.date.today() - dt.timedelta(days=1)  # today, as UTC has it
    asked = {"headline": "Llamas elect a mayor", "text": "In a village high in the Andes, a herd of llamas chose a mayor."}
    as_json = {**AUTH, "Accept": "application/json"}
    dated = check.post("/admin/check", headers=as_json, data={"csrf": csrf(check), **asked, "published": "2024-05-20"})
    assert dated.status_code == 200 and dated.get_json()["published"] == "2024-05-20"
    undated = check.post("/admin/check", headers=as_json, data={"csrf": csrf(check), **asked, "published": ""})
    assert undated.status_code == 200 and undated.get_json()["published"] is None
    bad = check.post("/admin/check", headers=as_json, data={"csrf": csrf(check), **asked, "published": "20/05/2024"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "published"
    page = check.post("/admin/check", headers=AUTH, data={"csrf": csrf(check), **asked, "published": "20/05/2024"})
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and "not an ISO date" in html and 'value="20/05/2024"' in html and "Llamas" in html
