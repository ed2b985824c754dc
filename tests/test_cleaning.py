"""Rules of the cleaner, each on text written here; the scraped sample shipped in demo/; properties."""
from __future__ import annotations

import time

from hypothesis import given, settings, strategies as st

from recommender.text.cleaning import CleaningProfile, clean, clean_html, normalise
from tests.conftest import SAMPLE_DIR

STORY = [
    "The city council voted on Tuesday to expand the bus network, adding four routes that will serve the northern suburbs.",
    "Mayor Ana Ruiz said the plan would cost 12 million dollars over three years and be paid for by a new parking levy.",
    "Opposition councillors argued that the levy would hurt small shops, and asked for a study before any money is spent.",
    "The first new route is due to open in March, the transport department said in a statement.",
]


def text(*lines: str) -> str:
    return "\n\n".join(lines)


def test_sample_cleans_to_the_story():
    raw = (SAMPLE_DIR / "sample-sheinbaum.txt").read_text(encoding="utf-8")
    c = clean(raw)
    assert c.title == "Mexican President Claudia Sheinbaum Denies U.S. Anti-Cartel Operation on Mexican Soil"
    blocks = c.body.split("\n\n")
    assert len(blocks) == 23
    assert blocks[0].startswith("Mexican President Claudia Sheinbaum has firmly denied")
    assert blocks[-1] == "“Our doors remain open to dialogue, but our territory will never be open to foreign troops,” she concluded."
    assert "U.S. Denies Plans for Military Action" in blocks  # a subheading stays
    assert "Background: U.S.–Mexico Security Cooperation" in blocks
    for furniture in ("ALSO READ", "Kindly Share", "WhatsApp", "S.A News", "Ansar Allah", "in ,"):
        assert furniture not in c.body
    assert [a.title for a in c.also_read] == [
        "BREAKING: U.S. Special Operations Helicopters Expand Caribbean Missions Near Venezuela",
        "EXCLUSIVE: Doha Strike Was Carried Out After Mossad Ruled Out Ground Operation",
        "Vance, Witkoff To Arrive In Israel On Monday To Discuss Implementation Of Phase 2 Of Gaza Plan - REPORT",
    ]
    reasons = {r.reason for r in c.removed}
    assert {"also-read", "share-prompt", "social-follow", "trailing-headlines", "byline-stub"} <= reasons
    assert "’" in c.body and "é" in c.body  # original characters kept


def test_related_link_spellings_are_cut_and_kept_as_data():
    spellings = [
        "ALSO READ: Storm closes airport",
        "Read Also: Storm closes airport",
        "Also Read | Storm closes airport",
        "RELATED: Storm closes airport",
        "READ MORE: Storm closes airport",
        "Recommended: Storm closes airport",
        "You may also like: Storm closes airport",
        "See also — Storm closes airport",
        "Lee también: Storm closes airport",
    ]
    for line in spellings:
        c = clean(text(STORY[0], line, STORY[1], STORY[2]))
        assert line not in c.body, line
        assert [a.title for a in c.also_read] == ["Storm closes airport"], line
        assert c.body.count("\n\n") == 2


def test_related_link_url_is_kept():
    c = clean(text(STORY[0], "ALSO READ: Storm closes airport https://example.com/storm", STORY[1]))
    assert c.also_read[0].title == "Storm closes airport"
    assert c.also_read[0].url == "https://example.com/storm"
    c = clean(text(STORY[0], "Related: [Storm closes airport](https://example.com/s)", STORY[1]))
    assert (c.also_read[0].title, c.also_read[0].url) == ("Storm closes airport", "https://example.com/s")


def test_related_header_with_a_list():
    c = clean(text(*STORY[:2], "Related stories", "Storm closes airport", "Rail strike called off", *STORY[2:]))
    assert [a.title for a in c.also_read] == ["Storm closes airport", "Rail strike called off"]
    assert "Rail strike" not in c.body and STORY[2] in c.body


def test_share_follow_and_subscribe_prompts_in_several_languages():
    prompts = [
        "Kindly Share This Story:",
        "Share this article",
        "Share on Facebook",
        "𝗙𝗼𝗹𝗹𝗼𝘄 𝗢𝘂𝗿 𝗪𝗵𝗮𝘁𝘀𝗔𝗽𝗽 𝗖𝗵𝗮𝗻𝗻𝗲𝗹 𝗧𝗼 𝗚𝗲𝘁 𝗟𝗮𝘁𝗲𝘀𝘁 𝗡𝗲𝘄𝘀",
        "Join our Telegram channel for breaking news",
        "Subscribe to our newsletter",
        "Download our app for the latest news",
        "Síguenos en Twitter",
        "Suivez-nous sur Facebook",
        "Folgen Sie uns auf Instagram",
        "Compartir en WhatsApp",
    ]
    for p in prompts:
        c = clean(text(STORY[0], p, STORY[1], STORY[2]))
        assert p not in c.body, p
        assert c.body.count("\n\n") == 2, p


def test_ads_photo_credits_cookies_and_comments():
    c = clean(text(
        STORY[0], "Advertisement", STORY[1], "Photo: Reuters/Jane Doe", STORY[2],
        "We use cookies to improve your experience. By continuing to use this site you agree.", STORY[3],
        "Comments (12)", "I think this is a terrible idea and the mayor should resign immediately, honestly.",
        "Posted by Bob at 10:32", "Totally agree with the previous commenter, the levy is a disaster for everyone.",
    ))
    assert c.body == "\n\n".join(STORY)
    reasons = [r.reason for r in c.removed]
    assert {"advertisement", "photo-credit", "cookie-notice", "comments"} <= set(reasons)


def test_repeated_lines_and_trailing_headlines():
    c = clean(text(*STORY, STORY[1], "Police arrest two after bank robbery in Leeds", "Football: United sign new striker"))
    assert c.body == "\n\n".join(STORY)
    reasons = {r.text: r.reason for r in c.removed}
    assert reasons[STORY[1]] == "duplicate-line"
    assert reasons["Football: United sign new striker"] == "trailing-headlines"


def test_subheadings_quotes_and_datelines_stay():
    body = text(
        "WASHINGTON (Reuters) - " + STORY[0], STORY[1], "Why the levy matters", "“We cannot wait,” the mayor said.", STORY[2]
    )
    c = clean(text("Council expands bus network", body))
    assert c.title == "Council expands bus network"
    assert c.body == body


def test_a_wiki_tables_markup_goes_and_its_cells_and_the_story_around_it_stay():
    table = ('{| border="2" style="border-collapse:collapse; float:right;" cellpadding=2 |- style="background:grey"! '
             'colspan="3" | Comparative attendance figures |-! Event! Venue! Attendance |- | Pride parade | San Francisco '
             '| 10,000 || Street Day | Berlin | 200,000 &ndash; 500,000 |}')
    raw = text(STORY[0], f"{STORY[1]} {table} {STORY[2]}", STORY[3])
    c = clean(raw)
    lines = c.body.split("\n\n")
    assert lines[1] == (f"{STORY[1]} Comparative attendance figures · Event · Venue · Attendance · Pride parade · "
                        f"San Francisco · 10,000 · Street Day · Berlin · 200,000 – 500,000 {STORY[2]}")
    assert [lines[0], lines[2]] == [STORY[0], STORY[3]] and len(lines) == 3
    # a table inside a cell, and one left open at the end of its line
    nested = clean(text(*STORY, 'Results: {| width="30%" | Seats |- | {| | id="x" | 355 | 197 |} |} then ' + STORY[0]))
    assert "Results: Seats · 355 · 197 then " + STORY[0] in nested.body and "=" not in nested.body
    assert "{|" not in clean(text(*STORY, 'Table: {| class="wikitable" | a cell of words |- | another')).body
    assert clean(text(*STORY)).body == text(*STORY)  # a text without tables is untouched


def test_normalise_reads_styled_unicode_and_entities():
    assert normalise("𝗙𝗼𝗹𝗹𝗼𝘄\u00a0us &ndash; now\u200b") == "Follow us – now"
    c = clean(text("Prices rose 5&nbsp;% &ndash; the most since 2008, the agency said in its monthly report today.", STORY[1]))
    assert c.body.startswith("Prices rose 5 % – the most")


def test_site_profile_adds_patterns():
    profile = CleaningProfile.from_dict({"patterns": [{"pattern": r"^daily sample club", "reason": "site-promo"}]})
    c = clean(text(STORY[0], "Daily Sample Club members read free", STORY[1]), profile)
    assert "Daily Sample Club" not in c.body
    assert c.removed[0].reason == "site-promo"


def test_clean_html_uses_trafilatura_and_keeps_related_links():
    paras = "".join(f"<p>{p}</p>" for p in STORY)
    page = (
        "<html><head><title>Council expands bus network | The Daily</title></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/news'>News</a></nav>"
        f"<article><h1>Council expands bus network</h1>{paras[:200]}"
        "<p>ALSO READ: <a href='https://daily.example/storm'>Storm closes airport</a></p>"
        f"{paras[200:]}</article><footer>Copyright 2024 The Daily. All rights reserved.</footer></body></html>"
    )
    c = clean_html(page)
    assert "Council expands bus network" in c.title
    assert "Home" not in c.body and "ALSO READ" not in c.body
    assert STORY[3] in c.body
    assert [(a.title, a.url) for a in c.also_read] == [("Storm closes airport", "https://daily.example/storm")]


class _Extractor:
    """trafilatura's bare_extraction as the cleaner calls it: records the mode of each call and gives
    the text chosen for that mode."""

    def __init__(self, fast_text: str, full_text: str):
        self.texts = {True: fast_text, False: full_text}
        self.calls: list[bool] = []

    def bare_extraction(self, tree, **kw):
        self.calls.append(kw["fast"])
        return type("Doc", (), {"text": self.texts[kw["fast"]]})()


def test_extraction_runs_the_full_cascade_only_when_the_fast_text_is_short():
    from recommender.text.cleaning import SHORT_EXTRACTION_CHARS, _extract

    long_text, short_text = "word " * 200, "word " * 10
    enough = _Extractor(long_text, "full")
    assert _extract(enough, None, page_chars=len(long_text) * 2) == long_text and enough.calls == [True]
    short = _Extractor(short_text, "the full cascade's text")
    assert _extract(short, None, page_chars=5_000) == "the full cascade's text" and short.calls == [True, False]
    # Long enough in characters but a sliver of a long page: the full cascade too.
    sliver = _Extractor("x" * (SHORT_EXTRACTION_CHARS + 10), "full")
    assert _extract(sliver, None, page_chars=1_000_000) == "full" and sliver.calls == [True, False]


def test_short_or_empty_input():
    assert clean("").body == ""
    assert clean("Just one line").body == "Just one line"
    assert clean("\n\n  \n").body == ""


# --- properties ------------------------------------------------------------------------------

lines = st.lists(
    st.one_of(
        st.sampled_from(STORY + ["ALSO READ: x y z", "Share this", "Advertisement", "Comments", "in ,", "", "  "]),
        st.text(max_size=80),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(lines, st.sampled_from(["\n", "\n\n", "\r\n"]))
def test_never_raises_idempotent_and_never_longer(parts, sep):
    raw = sep.join(parts)
    first = clean(raw)
    assert len(first.body) <= len(raw)
    assert clean(first.body).body == first.body


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500))
def test_any_string(raw):
    first = clean(raw)
    assert len(first.body) <= len(raw)
    assert clean(first.body).body == first.body


def _seconds(raw: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        clean(raw)
        best = min(best, time.perf_counter() - started)
    return best


def test_time_grows_linearly_up_to_a_megabyte():
    """A complexity check, not a speed target (bench/clean_speed.py measures speed): 10x the text
    may cost at most 30x the time; a quadratic step would cost about 100x."""
    unit = "\n\n".join(STORY + ["ALSO READ: Storm closes airport", "Share this"]) + "\n\n"
    unique = "".join(unit.replace("bus", f"bus{i}") for i in range(2200))
    assert len(unique) > 1_000_000
    small, large = unique[: len(unique) // 10], unique
    assert _seconds(large) < 30 * _seconds(small)


def test_related_link_helper():
    from recommender.text.cleaning import related_link

    assert related_link("ALSO READ:  Storm closes airport") == ("ALSO READ", "Storm closes airport")
    assert related_link("Also Read | Storm closes airport") == ("Also Read", "Storm closes airport")
    assert related_link(STORY[0]) is None


def test_a_cut_also_read_links_relative_url_is_made_absolute_against_the_page():
    from recommender.text.articles import parse_article

    html = ("<html><body><article><h1>Council expands bus network</h1>"
            "<p>ALSO READ: <a href='/news/old-story.html'>Old story</a></p><p>"
            + "The council voted to add four bus routes to the northern suburbs. " * 8 + "</p></article></body></html>")
    art = parse_article({"id": "a", "html": html, "url": "https://www.example-news.com/news/2024/bus.html"})
    assert art.also_read == [{"title": "Old story", "url": "https://www.example-news.com/news/old-story.html"}]
    # without a page URL the link stays as the page had it
    assert parse_article({"id": "a", "html": html}).also_read[0]["url"] == "/news/old-story.html"


def test_a_page_keeps_the_publication_time_it_states_of_itself():
    from recommender.text.articles import page_published, parse_article

    body = "<p>" + "The council voted on the new bus routes after a long debate. " * 12 + "</p>"
    page = ('<html><head><meta property="article:published_time" content="2024-05-01T14:39:05+02:00">'
            f"<title>Council votes</title></head><body><article><h1>Council votes</h1>{body}</article></body></html>")
    assert page_published(page) == "2024-05-01T12:39:05"
    # a listing's bare day (or midnight) gives way to the page's own time; a listing's own time stays
    assert parse_article({"id": "a", "html": page, "published": "2024-05-01"}).published == "2024-05-01T12:39:05"
    assert parse_article({"id": "a", "html": page, "published": "2024-05-01T00:00:00"}).published == "2024-05-01T12:39:05"
    assert parse_article({"id": "a", "html": page, "published": "2024-05-02T08:00:00"}).published == "2024-05-02T08:00:00"
    json_ld = page.replace('<meta property="article:published_time" content="2024-05-01T14:39:05+02:00">',
                           '<script type="application/ld+json">{"datePublished": "2024-05-01T09:00:00Z"}</script>')
    assert parse_article({"id": "a", "html": json_ld}).published == "2024-05-01T09:00:00"
    assert page_published("<html><head><meta name='pubdate' content='2024-05-01'></head></html>") == ""


def test_an_also_read_label_at_the_end_of_a_paragraph_is_cut_and_kept_as_a_link():
    text = ("Council approves new bus routes\n\nThe council approved three new bus routes on Tuesday, the mayor "
            "said. ALSO READ: Police arrest two after bank robbery in Leeds\n\nThe routes start in June and will "
            "serve the hospital and the university campus, officials said on Tuesday evening.")
    cleaned = clean(text)
    assert "ALSO READ" not in cleaned.body and "the mayor said." in cleaned.body
    assert [a.title for a in cleaned.also_read] == ["Police arrest two after bank robbery in Leeds"]
    # prose that happens to say "read more:" mid-sentence, in lower case, stays
    prose = "He told the students to read more: books matter, he said. Also read: the rest of the letter."
    assert clean(prose).body == prose


def test_a_body_that_only_repeats_the_headline_is_read_as_the_headline():
    """A feed whose description is its title again: the article is its headline (read once by the model,
    nobody's copy for sharing a headline), the repeat kept among the cut pieces; a body that says more
    keeps every word."""
    from recommender.text.articles import parse_article

    title = "Apple shares rise after record iPhone sales"
    art = parse_article({"id": "a", "title": title, "body": "APPLE shares rise, after record iPhone sales!"})
    assert art.body == "" and art.title == title
    assert art.removed[0] == {"text": "APPLE shares rise, after record iPhone sales!", "reason": "title", "line": 0}
    longer = f"{title} on Tuesday, the company said"
    assert parse_article({"id": "b", "title": title, "body": longer}).body == longer
    assert parse_article({"id": "c", "body": title}).body == title  # no title: the body is the text
    ru = "Совет города одобрил новые автобусные маршруты"
    assert parse_article({"id": "d", "title": ru, "body": f"{ru.upper()}."}).body == ""  # words of any script
    assert parse_article({"id": "e", "title": ru, "body": f"{ru} в понедельник"}).body == f"{ru} в понедельник"


def test_the_title_is_the_headline_naming_the_story_not_the_agency_or_date_above_the_text():
    """Of the headline-like lines above a scraped story, the title is the one naming its people and
    places: an agency's name, a section label or a date sitting nearer the text is passed over."""
    from recommender.text.cleaning import clean

    story = ("Barack Obama is picking up support among Harlem's black leaders, who had long backed Hillary "
             "Clinton, as the race for the Democratic nomination tightens before the New York primary.\n\n"
             "Several Harlem pastors said on Sunday that their congregations were moving toward Obama, citing "
             "his campaign's energy and a sense that history was being made in the primaries this winter.")
    raw = f"Home\nPolitics\nObama picking up support in Harlem\nTHE ASSOCIATED PRESS\nTuesday 8th January 2008\n{story}"
    cleaned = clean(raw)
    assert cleaned.title == "Obama picking up support in Harlem"
    assert cleaned.body.startswith("Barack Obama is picking up support")
    # nothing above the text names the story: the nearest headline-like line stays the title
    assert clean(f"Storm warnings for the coast\nClassic recipes this weekend\n{story}").title == "Classic recipes this weekend"
