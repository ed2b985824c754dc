"""The widget in a real browser: Debian's Chromium driven by Playwright against a real server.

Never `playwright install`: the browser is /usr/bin/chromium (scripts/test installs it).
"""
from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, free_port

pytestmark = [pytest.mark.browser, pytest.mark.model]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
        "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: scripts/test installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("dialog", lambda d: (pg.errors.append("dialog: " + d.message), d.dismiss()))
    # Article links point at Wikinews; there is no internet here, so answer them locally.
    pg.route("https://en.wikinews.org/**", lambda route: route.fulfill(status=200, body="ok", content_type="text/plain"))
    yield pg
    context.close()


def shadow_titles(pg) -> list[str]:
    return pg.evaluate("""() => Array.from(document.querySelectorAll('[data-newsrec-widget]'))
        .flatMap(h => Array.from(h.shadowRoot.querySelectorAll('a')).map(a => a.firstChild.textContent))""")


def test_demo_page_replaces_also_read_links(page, live_server):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(live_server.url + "/")
    page.wait_for_selector("html[data-newsrec='ready']", timeout=20_000)
    originals = page.locator("p.also-read")
    assert originals.count() == 3
    for i in range(3):
        assert not originals.nth(i).is_visible()
    titles = shadow_titles(page)
    assert len(titles) == 3 and all(titles)
    assert not any("Venezuela" in t or "Doha" in t for t in titles)  # the site's old links are gone
    api = json.load(urllib.request.urlopen(live_server.url + "/api/related?id=sample-sheinbaum&k=3"))
    assert titles == [i["title"] for i in api["items"]]  # the stories come from the index
    page.screenshot(path=str(ARTIFACTS / "demo-page.png"), full_page=True)
    page.locator("[data-newsrec-widget]").first.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -500)")
    page.screenshot(path=str(ARTIFACTS / "demo-viewport.png"))
    page.click("#toggle")
    assert originals.first.is_visible()
    page.screenshot(path=str(ARTIFACTS / "demo-page-original.png"))
    assert page.errors == []


def test_search_box_opens_an_indexed_article(page, live_server):
    page.goto(live_server.url + "/")
    page.fill("#search-q", "Mexic")
    page.wait_for_selector("#search-results a", timeout=10_000)
    page.click("#search-results a >> nth=0")
    page.wait_for_selector("html[data-newsrec]", timeout=20_000)
    article_id = page.url.rsplit("/article/", 1)[1]
    api = json.load(urllib.request.urlopen(f"{live_server.url}/api/related?id={article_id}&k=5"))
    assert shadow_titles(page) == [i["title"] for i in api["items"]]  # may be fewer than 5: min_score
    assert page.errors == []


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# A German site's page about an indexed story (it names the article's id), with its related-link
# blocks labelled in German: the widget must find them and label its stories the same way.
GERMAN_PAGE = """<!doctype html><html lang="de-DE"><head><meta charset="utf-8"><title>Nachrichten</title></head>
<body data-article-id="sample-sheinbaum"><article><h1>Sheinbaum: Keine ausländischen Truppen in Mexiko</h1>
<p>Mexikos Präsidentin wies Berichte über einen geplanten Einsatz der Vereinigten Staaten gegen Drogenkartelle zurück.</p>
<p class="rel">Lesen Sie auch: <a href="/a">Lottozahlen vom Freitag</a></p>
<p>Die Zusammenarbeit in Sicherheitsfragen gehe nur auf diplomatischem Weg weiter, sagte sie.</p>
<div class="rel">» Lesen Sie auch » <a href="/b">Promi-Klatsch der Woche</a></div>
</article><script src="WIDGET" async data-timeout="8000"></script></body></html>"""


@pytest.fixture(scope="module")
def other_origin(tmp_path_factory, live_server):
    """A second site on another origin with its own markup, served by the test."""
    root = tmp_path_factory.mktemp("site")
    port = free_port()
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Other Site</title></head><body>
<div class="wrap"><h1 class="headline">Sheinbaum says no foreign troops will enter Mexico</h1>
<div class="content">
<p>Mexico's president rejected reports of a planned United States operation against drug cartels on Mexican soil.</p>
<div class="inline-related"><span>Read more:</span> <a href="/x">Unrelated celebrity gossip</a></div>
<p>She said security cooperation with Washington would continue through diplomatic channels only.</p>
<ul class="rel"><li>Related: <a href="/y">Lottery numbers for Friday</a></li></ul>
</div></div>
<script src="{live_server.url}/widget.js" async data-timeout="8000"></script>
</body></html>"""
    (root / "index.html").write_text(page, encoding="utf-8")
    (root / "down.html").write_text(page.replace(live_server.url, f"http://127.0.0.1:{free_port()}"), encoding="utf-8")
    (root / "evil.html").write_text(page, encoding="utf-8")
    (root / "de.html").write_text(GERMAN_PAGE.replace("WIDGET", f"{live_server.url}/widget.js"), encoding="utf-8")
    (root / "slow.html").write_text(page.replace('data-timeout="8000"', 'data-timeout="1000"'), encoding="utf-8")
    for name, when in (("dated.html", "2024-05-20T10:00:00+02:00"), ("misdated.html", "2024-13-45T10:00")):
        (root / name).write_text(page.replace("<title>", f'<meta property="article:published_time" content="{when}"><title>'),
                                 encoding="utf-8")
    # the story three screens down the page, and text after it: the widget must wait, then move nothing
    (root / "long.html").write_text(page.replace('<div class="wrap">', '<div style="height:300vh">Top stories</div><div class="wrap">')
                                    .replace("</div></div>", "</div></div>" + "<p>More of the site.</p>" * 40), encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def test_widget_on_another_origin_with_other_markup(page, live_server, other_origin):
    page.goto(other_origin + "/index.html")
    page.wait_for_selector("html[data-newsrec='ready']", timeout=20_000)
    assert not page.locator(".inline-related").is_visible()
    assert not page.locator("ul.rel > li").is_visible()
    titles = shadow_titles(page)
    assert len(titles) == 2 and "Unrelated celebrity gossip" not in titles
    page.screenshot(path=str(ARTIFACTS / "other-origin.png"), full_page=True)
    assert page.errors == []


def test_the_widget_sends_the_publication_time_a_page_states_and_never_one_the_api_cannot_read(page, live_server,
                                                                                                  other_origin):
    sent: list[dict] = []
    page.on("request", lambda r: sent.append(json.loads(r.post_data)) if r.method == "POST" and "/api/related" in r.url
            else None)
    for name, expected in (("dated.html", "2024-05-20T10:00:00+02:00"), ("misdated.html", None), ("index.html", None)):
        page.goto(other_origin + "/" + name)
        page.wait_for_selector("html[data-newsrec='ready']", timeout=20_000)  # a date it cannot read costs no list
        assert sent[-1].get("published") == expected and sent[-1]["title"], (name, sent[-1])
    assert len(sent) == 3 and page.errors == []


def test_widget_finds_and_labels_a_german_pages_blocks(page, live_server, other_origin):
    page.goto(other_origin + "/de.html")
    page.wait_for_selector("html[data-newsrec='ready']", timeout=20_000)
    blocks = page.locator(".rel")
    assert blocks.count() == 2 and not blocks.nth(0).is_visible() and not blocks.nth(1).is_visible()
    titles = shadow_titles(page)
    assert len(titles) == 2 and not {"Lottozahlen vom Freitag", "Promi-Klatsch der Woche"} & set(titles)
    labels = page.evaluate("""() => Array.from(document.querySelectorAll('[data-newsrec-widget]'))
        .map(h => h.shadowRoot.querySelector('.nr-h').textContent)""")
    assert labels == ["Lesen Sie auch", "Lesen Sie auch"]
    page.screenshot(path=str(ARTIFACTS / "german-page.png"), full_page=True)
    assert page.errors == []


def test_titles_are_text_not_html(page, live_server, other_origin):
    evil = {"query": {"id": None}, "items": [
        {"id": "e1", "title": "<img src=x onerror=alert(1)>", "url": "javascript:alert(2)", "source": "<b>x</b>", "published": "2024-01-01"},
        {"id": "e2", "title": "Second <script>alert(3)</script>", "url": "https://en.wikinews.org/wiki/X"},
    ]}
    page.route(live_server.url + "/api/related**", lambda route: route.fulfill(
        status=200, body=json.dumps(evil), content_type="application/json",
        headers={"Access-Control-Allow-Origin": "*"}))
    page.goto(other_origin + "/evil.html")
    page.wait_for_selector("html[data-newsrec='ready']", timeout=20_000)
    assert shadow_titles(page)[0] == "<img src=x onerror=alert(1)>"
    hrefs = page.evaluate("""() => Array.from(document.querySelectorAll('[data-newsrec-widget]'))
        .flatMap(h => Array.from(h.shadowRoot.querySelectorAll('a')).map(a => a.href))""")
    assert not any(h.startswith("javascript:") for h in hrefs)
    imgs = page.evaluate("""() => Array.from(document.querySelectorAll('[data-newsrec-widget]'))
        .flatMap(h => Array.from(h.shadowRoot.querySelectorAll('img, script')).length)""")
    assert sum(imgs) == 0
    settle(page)
    assert page.errors == []  # no dialog fired, nothing thrown


def settle(page) -> None:
    """Let the page run what it has queued: two animation frames and the task after them."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 0))))")


def test_server_down_leaves_the_page_alone(page, other_origin):
    # The service is not running: neither the script nor the API answers.
    page.goto(other_origin + "/down.html")
    page.wait_for_load_state("load")  # the load event waits for the async widget script, loaded or failed
    settle(page)
    assert page.locator(".inline-related").is_visible() and page.locator("ul.rel > li").is_visible()
    assert page.evaluate("document.querySelectorAll('[data-newsrec-widget]').length") == 0
    assert page.errors == []


@pytest.mark.parametrize("failure", ["abort", "500", "slow"])
def test_api_failure_leaves_the_page_alone(page, live_server, other_origin, failure):
    # The script loaded (e.g. from a cache) but the API fails, errors or hangs past the timeout.
    def handle(route):
        if failure == "abort":
            route.abort()
        elif failure == "500":
            route.fulfill(status=500, body="{}", content_type="application/json", headers={"Access-Control-Allow-Origin": "*"})
        else:  # slow.html gives up after 1 s; answer after 2.5 s, too late
            time.sleep(2.5)
            route.fulfill(status=200, body='{"items": []}', content_type="application/json",
                          headers={"Access-Control-Allow-Origin": "*"})

    page.route(live_server.url + "/api/**", handle)
    page.goto(other_origin + ("/slow.html" if failure == "slow" else "/index.html"))
    page.wait_for_selector("html[data-newsrec='failed']", timeout=15_000)
    assert page.locator(".inline-related").is_visible() and page.locator("ul.rel > li").is_visible()
    assert page.errors == []


def test_click_beacon_is_counted(page, live_server):
    before = json.load(urllib.request.urlopen(live_server.url + "/api/stats"))["clicks"]["total"]
    page.goto(live_server.url + "/")
    page.wait_for_selector("html[data-newsrec='ready']", timeout=20_000)
    link = page.locator("[data-newsrec-widget] >> nth=0").locator("a").first
    link.click()
    deadline = time.time() + 10
    after = before
    while time.time() < deadline and after == before:
        time.sleep(0.2)
        after = json.load(urllib.request.urlopen(live_server.url + "/api/stats"))["clicks"]["total"]
    assert after == before + 1


ADMIN_ENV = {"NEWSREC_TOKEN": "editor-secret"}


@pytest.fixture(scope="module")
def outlets_index(tmp_path_factory, real_embedder, real_config) -> Path:
    """The demo index's articles (one outlet) and, for three of them, a wire service's copy (a new
    headline, the last fifth cut): an index with stories told more than once, for the editors' pages."""
    from tests.conftest import build_hash_index, demo_records

    records = [{**r, "source": "wikinews.org"} for r in demo_records(300)]
    for r in records[:3]:
        words = r["body"].split()
        records.append({"id": f"wire-{r['id']}", "title": f"Wire: {r['title']}", "published": r["published"],
                        "body": " ".join(words[: max(len(words) * 4 // 5, 1)]), "source": "wire.example"})
    return build_hash_index(tmp_path_factory.mktemp("outlets") / "idx", records, real_config, real_embedder)


@pytest.fixture(scope="module")
def admin_server(outlets_index):
    from tests.conftest import Server

    holder = {"server": Server(outlets_index, env=ADMIN_ENV)}

    class Handle:
        @property
        def url(self):
            return holder["server"].url

        def restart(self):
            port = holder["server"].port
            holder["server"].stop()
            holder["server"] = Server(outlets_index, port=port, env=ADMIN_ENV)

    yield Handle()
    holder["server"].stop()


def _editor_page(browser, width: int, height: int):
    """(context, page, page errors) of an editor signed in to the admin pages (HTTP basic, the token)."""
    context = browser.new_context(viewport={"width": width, "height": height},
                                  http_credentials={"username": "editor", "password": "editor-secret"})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page, errors


def _readers_row(url: str, selector: str) -> str:
    import base64

    req = urllib.request.Request(url + "/admin/readers?days=7",
                                 headers={"Authorization": "Basic " + base64.b64encode(b"e:editor-secret").decode()})
    html = urllib.request.urlopen(req).read().decode()
    import re

    match = re.search(selector + r'.*?<td class="clicks">(\d+)</td>', html, re.S)
    return match.group(1) if match else ""


def test_a_click_shows_in_the_readers_numbers_after_a_restart(browser, admin_server):
    from datetime import datetime, timezone

    context, pg, _ = _editor_page(browser, 1100, 1400)
    pg.route("https://en.wikinews.org/**", lambda route: route.fulfill(status=200, body="ok", content_type="text/plain"))
    pg.goto(admin_server.url + "/")
    pg.wait_for_selector("html[data-newsrec='ready']", timeout=20_000)
    second = pg.locator("[data-newsrec-widget] >> nth=1").locator("a").first  # the second ALSO READ block: position 2
    second.scroll_into_view_if_needed()
    second.click()
    today = datetime.now(timezone.utc).date().isoformat()
    deadline = time.time() + 15
    while time.time() < deadline and _readers_row(admin_server.url, 'data-position="2"') in ("", "0"):
        time.sleep(0.3)
    admin_server.restart()
    assert int(_readers_row(admin_server.url, 'data-position="2"') or 0) >= 1
    assert int(_readers_row(admin_server.url, f'data-day="{today}"') or 0) >= 1
    page = context.new_page()
    page.goto(admin_server.url + "/admin/readers?days=7")
    seen = page.locator("#by-position tr[data-position='1'] td").nth(1).inner_text()
    assert int(seen) >= 1  # the list was seen: the view beacon counted its positions
    page.screenshot(path=str(ARTIFACTS / "admin-readers.png"), full_page=True)
    context.close()


def test_an_editor_checks_a_syndicated_copy_and_a_fresh_story(browser, admin_server):
    from tests.conftest import demo_records
    from tests.test_check import syndicated

    context, pg, errors = _editor_page(browser, 1100, 1400)
    original = demo_records(300)[10]
    draft = syndicated(original)
    pg.goto(admin_server.url + "/admin/check")
    pg.fill("#headline", draft["headline"])
    pg.fill("#text", draft["text"])
    pg.click("#check-form button[type=submit]")
    pg.wait_for_selector("#verdict")
    assert pg.locator("[data-verdict]").get_attribute("data-verdict") == "near"
    first = pg.locator("section.match").first
    assert first.get_attribute("data-level") == "near"
    assert first.locator(".match-title").inner_text() == original["title"]
    assert first.locator("mark").count() >= 2 and len(first.locator("mark").first.inner_text()) > 40
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "admin-check-near.png"), full_page=False)
    pg.fill("#headline", "Llamas elect a village mayor in the Andes")
    pg.fill("#text", "In a village high in the Andes, a herd of llamas chose a mayor by standing together in one field "
                     "for an afternoon, a tradition the villagers say is older than the church.")
    pg.click("#check-form button[type=submit]")
    pg.wait_for_selector("#verdict")
    assert pg.locator("[data-verdict]").get_attribute("data-verdict") == "new"
    pg.set_viewport_size({"width": 390, "height": 844})  # a phone
    pg.fill("#headline", "")
    pg.fill("#text", "")
    pg.click("#check-form button[type=submit]")
    assert "Paste a headline" in pg.locator("#check-error").inner_text()
    assert errors == []
    context.close()


def test_the_admin_index_page_on_a_phone(browser, admin_server):
    context, pg, errors = _editor_page(browser, 390, 844)
    pg.goto(admin_server.url + "/admin?kind=story&sort=newest")
    assert "stories told more than once" in pg.locator("#group-count").inner_text()
    first = pg.locator("details.group").first
    first.locator("summary").click()
    assert first.locator("table.members tr").count() >= 3  # a header and two members at least
    assert pg.locator("svg.hist line[class^=bar]").count() >= 4  # the configured bars drawn on the histogram
    assert pg.locator("svg.hist line.axis").count() >= 1 and "cosine" in pg.locator("svg.hist").first.inner_html()
    # usable on a phone: nothing wider than the screen but the tables' own scroll boxes
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390 + 2
    deadline = time.time() + 30
    while pg.locator("#agreement-pending").count() and time.time() < deadline:
        time.sleep(0.5)
        pg.reload()
    assert pg.locator("#builds tr").count() >= 2
    pg.screenshot(path=str(ARTIFACTS / "admin-index.png"), full_page=True)
    assert errors == []
    context.close()


@pytest.fixture()
def editors_index(tmp_path, real_embedder, real_config) -> Path:
    """A small index of the demo's articles that the test changes (add, delete)."""
    from tests.conftest import build_hash_index, demo_records

    return build_hash_index(tmp_path / "idx", demo_records(80), real_config, real_embedder)


def _cli(*args: str) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    subprocess.run([sys.executable, "-m", "web.cli", *args], cwd=ROOT, check=True, capture_output=True)


def _widget_ids(pg, url: str) -> list[str]:
    pg.goto(url)
    pg.wait_for_selector("html[data-newsrec='ready']", timeout=20_000)
    return pg.evaluate("""() => Array.from(document.querySelectorAll('[data-newsrec-widget]'))
        .flatMap(h => Array.from((h.shadowRoot || h).querySelectorAll('a[data-newsrec-id]')))
        .map(a => a.getAttribute('data-newsrec-id'))""")


def test_an_editor_pins_and_excludes_from_the_article_page_and_the_widget_keeps_them_across_snapshots(
        browser, editors_index, tmp_path):
    from tests.conftest import Server, demo_records, write_jsonl

    records = demo_records(120)
    page_id = records[0]["id"]
    server = Server(editors_index, env=ADMIN_ENV)
    try:
        context, pg, errors = _editor_page(browser, 1100, 1400)
        before = _widget_ids(pg, f"{server.url}/article/{page_id}")
        assert len(before) == 5
        pinned, excluded = before[3], before[0]
        pg.goto(f"{server.url}/admin/article/{page_id}")
        pg.click(f"#list button[data-action='pin'][data-id='{pinned}']")
        pg.wait_for_selector(f"#pins li[data-id='{pinned}']")
        pg.click(f"#list button[data-action='exclude'][data-id='{excluded}']")
        pg.wait_for_selector(f"#excludes li[data-id='{excluded}']")
        assert pg.locator("#list li").first.get_attribute("data-id") == pinned  # the preview shows it first
        pg.screenshot(path=str(ARTIFACTS / "admin-article.png"), full_page=True)
        # a new snapshot (newsrec add), picked up by the running server: the choices hold
        snapshot = json.load(urllib.request.urlopen(server.url + "/healthz"))["snapshot"]
        _cli("add", "--quiet", "--index", str(editors_index),
             "--input", str(write_jsonl(tmp_path / "new.jsonl", records[100:103])))
        deadline = time.time() + 20
        while json.load(urllib.request.urlopen(server.url + "/healthz"))["snapshot"] == snapshot:
            assert time.time() < deadline, "the server did not pick up the new snapshot"
            time.sleep(0.3)
        after = _widget_ids(pg, f"{server.url}/article/{page_id}")
        assert after[0] == pinned and excluded not in after and len(after) == 5
        # the pinned story deleted: dropped from the widget, reported gone on the editors' page
        _cli("delete", "--index", str(editors_index), "--id", pinned)
        deadline = time.time() + 20
        while pinned in _widget_ids(pg, f"{server.url}/article/{page_id}"):
            assert time.time() < deadline, "the deleted pin is still listed"
            time.sleep(0.3)
        pg.goto(f"{server.url}/admin/article/{page_id}")
        assert "gone from the index" in pg.locator(f"#pins li[data-id='{pinned}']").inner_text()
        assert not errors
        context.close()
    finally:
        server.stop()


# Counted before any of the page's scripts run: layout shifts not caused by input, long tasks, and when
# the widget finished (its newsrec:ready event, sent once the lists are in place).
BUDGET_PROBE = """
window.__nr = {shift: 0, long: [], ready: null};
new PerformanceObserver(l => l.getEntries().forEach(e => { if (!e.hadRecentInput) window.__nr.shift += e.value; }))
  .observe({type: 'layout-shift', buffered: true});
new PerformanceObserver(l => l.getEntries().forEach(e => window.__nr.long.push([e.startTime, e.duration])))
  .observe({type: 'longtask', buffered: true});
document.addEventListener('newsrec:ready', () => { window.__nr.ready = performance.now(); });
"""


def _scroll_through(pg) -> None:
    """Scroll to the bottom and back a screen at a time, as a reader would."""
    height = pg.evaluate("document.documentElement.scrollHeight")
    for y in list(range(0, height, 500)) + list(range(height, -1, -500)):
        pg.evaluate(f"window.scrollTo(0, {y})")
        pg.wait_for_timeout(60)


@pytest.mark.parametrize("where", ["demo", "other-origin"])
def test_the_widget_shifts_no_layout_and_runs_no_long_task(browser, live_server, other_origin, where):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    pg = context.new_page()
    pg.route("https://en.wikinews.org/**", lambda route: route.fulfill(status=200, body="ok", content_type="text/plain"))
    pg.add_init_script(BUDGET_PROBE)
    pg.goto(live_server.url + "/" if where == "demo" else other_origin + "/index.html")
    pg.wait_for_selector("html[data-newsrec='ready']", timeout=20_000)
    _scroll_through(pg)
    probe = pg.evaluate("window.__nr")
    assert probe["shift"] == 0.0 and probe["ready"] is not None, probe
    assert not [t for t in probe["long"] if t[0] <= probe["ready"] <= t[0] + t[1]], probe  # the lists' placing
    context.close()


def test_the_widget_asks_only_when_its_block_comes_near_and_moves_nothing(browser, live_server, other_origin):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    pg = context.new_page()
    pg.add_init_script(BUDGET_PROBE)
    asked: list[str] = []
    pg.on("request", lambda r: asked.append(r.url) if "/api/related" in r.url else None)
    pg.goto(other_origin + "/long.html")
    pg.wait_for_load_state("load")
    pg.wait_for_timeout(1500)
    assert asked == [] and pg.evaluate("document.documentElement.dataset.newsrec || ''") == ""
    pg.evaluate("window.scrollTo(0, window.innerHeight * 1.2)")  # the block is now within a screen below
    pg.wait_for_selector("html[data-newsrec='ready']", timeout=20_000)
    assert len(asked) == 1
    _scroll_through(pg)
    assert pg.evaluate("window.__nr.shift") == 0.0
    context.close()


def test_widget_js_fits_its_budget(live_server):
    """At most 6 KB gzipped as served (the file keeps its comments; the server sends it without them)."""
    import gzip

    with urllib.request.urlopen(live_server.url + "/widget.js") as r:
        body = r.read()
    assert len(gzip.compress(body, 9)) <= 6 * 1024
    assert body.startswith(b"/*! newsrec widget") and b"\n//" not in body
