"""Property tests: an article in any of twelve languages, with its site's furniture around and inside it,
keeps every paragraph and loses the furniture, as scraped text and as an HTML page; its language is
detected. No rule that keeps prose reads English words, so the same properties hold in every script."""
from __future__ import annotations

import html

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender.text.cleaning import clean, clean_html
from recommender.text.language import detect_language
from tests.multilingual_pages import FURNITURE, LANGUAGES, PARAGRAPHS

MENU = ["Home", "News", "Sport", "Business", "Culture", "Opinion", "Weather"]


@st.composite
def pages(draw):
    lang = draw(st.sampled_from(LANGUAGES))
    paras = draw(st.lists(st.sampled_from(PARAGRAPHS[lang]), min_size=2, max_size=4, unique=True))
    related, share, ad, follow, comments = FURNITURE[lang]
    inside = draw(st.lists(st.sampled_from([related, share, ad]), min_size=1, max_size=2, unique=True))
    before = draw(st.lists(st.sampled_from([share, follow, ad]), max_size=2, unique=True))
    after = draw(st.lists(st.sampled_from([related, share, follow]), max_size=2, unique=True))
    at = draw(st.integers(1, len(paras) - 1))
    body = paras[:at] + inside + paras[at:]
    return lang, paras, before, body, after + [comments]


def _text(before, body, after) -> str:
    return "\n\n".join(MENU + ["A headline for the story"] + before + body + after)


def _html(before, body, after) -> str:
    menu = "".join(f'<li><a href="/section/{m.lower()}">{html.escape(m)}</a></li>' for m in MENU)
    more = "".join(f'<li><a href="/story/{i}">Another story number {i} from the site</a></li>' for i in range(8))
    para = lambda t: f"<p>{html.escape(t)}</p>"  # noqa: E731
    return (f"<html><head><title>A headline for the story</title></head><body><nav><ul>{menu}</ul></nav>"
            f"<article><h1>A headline for the story</h1>{''.join(map(para, before + body + after))}</article>"
            f"<aside><h3>More stories</h3><ul>{more}</ul></aside><footer><a href='/about'>About us</a></footer>"
            f"</body></html>")


def _check(result, paras, furniture) -> None:
    for p in paras:
        assert p in result.body, f"paragraph lost: {p[:60]!r}\n--- body:\n{result.body}"
    for f in furniture:
        assert f not in result.body, f"furniture kept: {f!r}\n--- body:\n{result.body}"


@pytest.mark.parametrize("shape", ["text", "html"])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(page=pages())
def test_keeps_every_paragraph_and_cuts_the_furniture(shape, page):
    lang, paras, before, body, after = page
    result = clean(_text(before, body, after)) if shape == "text" else clean_html(_html(before, body, after))
    _check(result, paras, [*before, *(b for b in body if b not in paras), *after, *MENU])
    assert "Another story number" not in result.body
    assert result.language.lang == lang


def test_every_language_is_detected_from_one_paragraph():
    for lang, paras in PARAGRAPHS.items():
        for p in paras:
            found = detect_language(p)
            assert found.lang == lang and found.confidence > 0.5, (lang, p[:40], found)


def test_too_little_text_is_undetermined():
    assert detect_language("OK 12").lang == "und" and detect_language("").confidence == 0.0


# Sentences broken over lines by inline markup (a name in italics, a link), as scrapers store them,
# in four languages and two scripts; the menus around them are single short lines.
BROKEN = {
    "en": ["A new British TV soap starring former", "Neighbours", "heartthrob Jason Donovan has failed to impress the critics, who have branded it lame and even insulting.",
           "He returns to the screen as the star of", "Echo Beach", ", a drama set in a seaside town where he finds his former girlfriend married."],
    "de": ["Der neue Film des Regisseurs", "Christopher Nolan", "läuft ab Donnerstag in den deutschen Kinos und hat bereits zahlreiche Preise gewonnen.",
           "Die Kritiker der Zeitung", "Die Zeit", "loben vor allem die Musik, die Bilder und die Darsteller der beiden Hauptrollen."],
    "es": ["El nuevo disco de la banda", "Los Planetas", "salió a la venta este viernes y ya encabeza las listas de ventas en varias ciudades del país.",
           "Según la revista", "Rolling Stone", ", se trata del mejor trabajo del grupo en más de una década de carrera musical."],
    "ru": ["Новый фильм режиссёра", "Андрея Звягинцева", "выходит в прокат в четверг и уже получил несколько наград на международных фестивалях.",
           "По словам критиков издания", "Коммерсантъ", ", картина стала лучшей работой режиссёра за последние десять лет его карьеры."],
}
MENU = ["Home", "News", "Sport", "Weather", "Contact us", "Sign in"]


@pytest.mark.parametrize("lang", sorted(BROKEN))
def test_a_sentence_broken_by_inline_markup_is_kept_whole_in_any_language(lang):
    lines = BROKEN[lang]
    result = clean("\n".join(MENU + lines + MENU[:3]))
    body = result.body.split("\n")
    assert body == lines, (lang, result.removed)


# Headlines in each script, followed by what sites print between a headline and the story: an
# agency's initials, a teaser that ends in a call to subscribe, a dateline. None is the title.
HEADLINES = {
    "en": ("Council adds four bus routes to the northern districts", "A P",
           "Get the city news every morning .. subscribe now", "2 January 2020"),
    "ar": ("المجلس البلدي يضيف أربعة خطوط حافلات للأحياء الشمالية", "أ ف ب",
           "شاهد أخبار المدينة كل يوم .. اشترك الآن", "23.01.2020 15:56 | آخر تحديث: 23.01.2020 16:10"),
    "de": ("Stadtrat beschließt vier neue Buslinien für den Norden", "d p a",
           "Die wichtigsten Nachrichten jeden Morgen – jetzt abonnieren", "10. Februar 2020, 14:54 Uhr"),
    "ru": ("Городской совет добавил четыре автобусных маршрута на севере", "Т А С С",
           "Главные новости города каждое утро — подпишитесь", "12 марта 2020, 22:39"),
    "zh": ("市议会为北部城区新增四条公交线路", "新华社", "每天早上获取城市新闻 .. subscribe now", "2020-03-12 22:39"),
}
REASONS = ("byline-stub", "social-follow", "dateline")


@pytest.mark.parametrize("lang", sorted(HEADLINES))
def test_initials_a_subscribe_teaser_or_a_dateline_between_headline_and_story_are_not_the_title(lang):
    headline, *between_lines = HEADLINES[lang]
    paras = PARAGRAPHS[lang][:3]
    for between, reason in zip(between_lines, REASONS):
        result = clean("\n".join([headline, between, ""]) + "\n\n".join(paras))
        assert result.title == headline, (lang, between, result.removed)
        assert result.body == "\n\n".join(paras)
        assert (between, reason) in [(r.text, r.reason) for r in result.removed], result.removed


@pytest.mark.parametrize("headline", [
    "Dow rises 2.5% to 28,000 for the first time in 2020",
    "Bayern beat Dortmund 2:1 after extra time",
    "أسعار الخضروات اليوم الثلاثاء 09/يونيو/2020",
    "Abstimmung über das Schulgesetz am 16. Juni",
    "Python 3.12.1 fixes a crash on start-up",
])
def test_a_headline_with_numbers_is_still_the_title(headline):
    paras = PARAGRAPHS["en"][:3]
    result = clean("\n".join(MENU + [headline, ""]) + "\n\n".join(paras))
    assert result.title == headline, result.removed


@pytest.mark.parametrize("text", [
    "\u095bिला अदालत ने \u095eैसला सुनाया",  # Hindi with precomposed nukta letters (NFC splits them)
    "\ufb2aלום עולם, a Hebrew presentation form",
    "Musical symbols \U0001d1bb and \U0001d15e in a line of prose",
    "বাংলা ভাষা\u09df",  # Bengali's precomposed "য়"
    "Cafe\u0301 cre\u0300me",  # NFC composes these: one encoding, shorter
])
def test_cleaning_never_lengthens_a_line_even_where_unicode_would_decompose(text):
    body = clean(text).body
    assert len(body) <= len(text)
    assert clean(body).body == body
    if "Cafe" in text:
        assert body == "Café crème"
