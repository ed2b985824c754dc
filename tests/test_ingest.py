"""`newsrec ingest` against a real local HTTP server serving a fixture site with faults."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from recommender import NewsrecError, ingest
from recommender.ingest import Politeness, Source, run_ingest
from tests.conftest import ROOT, free_port, index_summary
from tests.ingest_site import Site, SiteServer

# A timeout well under the slow page's delay, and well over any other answer on a loaded machine.
FAST = Politeness(rate=0, timeout=2.0, retries=1, backoff=0.05, workers=4)


@pytest.fixture()
def site():
    s = Site()
    server = SiteServer(s, free_port())
    yield server
    server.stop()


def recommender(index, hash_embedder):
    from recommender import Recommender
    from recommender.config import Config

    return Recommender(Config.load({"index": str(index), "backend": "hash", "reload_interval": 0}, environ={}), hash_embedder)


def all_sources(base: str) -> list[Source]:
    return [Source("feed", base + "/feed.xml"), Source("feed", base + "/atom.xml"), Source("feed", base + "/broken.xml"),
            Source("sitemap", base + "/sitemap_index.xml"), Source("wordpress", base)]


def test_the_fixture_site_ingests_and_every_fault_has_its_reason(site, tmp_path, hash_embedder, monkeypatch):
    monkeypatch.setattr(ingest.sources, "WP_PAGE_SIZE", 2)  # three posts: two pages
    rec = recommender(tmp_path / "idx", hash_embedder)
    report = run_ingest(rec, all_sources(site.base), politeness=FAST)
    ids = set(rec.snapshot.ids(list(map(int, rec.snapshot.keys))).values())
    base = site.base
    for n in (1, 2, 3, 4, 5):
        assert f"{base}/news/a{n}.html" in ids
    assert f"{base}/news/flaky.html" in ids  # 503 then 200: retried
    assert {f"{base}/wp-0/", f"{base}/wp-1/", f"{base}/wp-2/"} <= ids  # WordPress, both pages
    assert [q["page"] for q in site.site.wp_queries] == ["1", "2"]
    assert report.new == len(ids) == 9
    assert report.skipped == {"robots": 1, "binary": 1, "too-large": 1, "off-site-redirect": 1}
    assert report.failed == {"source-invalid-xml": 1, "timeout": 1}
    assert any("broken.xml" in e for e in report.source_errors)
    # The HTML path cut the site's furniture and kept its ALSO READ link as data.
    article = rec.article_info(f"{base}/news/a1.html")
    assert "Kindly Share" not in article["body"] and "Lottery" not in article["body"]
    assert article["title"] == "Council expands the city bus network"
    assert [a["title"] for a in article["also_read"]] == ["Lottery numbers for Friday"]
    assert site.site.requests[("/private/secret.html", 200)] == 0  # robots.txt obeyed
    line = report.line()
    assert "9 new" in line and "robots 1" in line and "timeout 1" in line


def test_a_second_run_fetches_only_the_new_and_the_edited(site, tmp_path, hash_embedder):
    rec = recommender(tmp_path / "idx", hash_embedder)
    sources = all_sources(site.base)[:2] + [Source("sitemap", site.base + "/sitemap_index.xml")]
    run_ingest(rec, sources, politeness=FAST)
    site.site.requests.clear()
    site.site.set_page("/news/a6.html", "Bakery celebrates a hundred years", "The family bakery on Market Street "
                       "celebrated its hundredth year with free bread for every customer who brought a story.")
    site.site.atom_entries.append("/news/a6.html")
    site.site.set_page("/news/a2.html", "Storm closes the regional airport again", "A second storm closed the airport "
                       "on Thursday, days after the first, and airlines warned of more cancellations.")
    report = run_ingest(rec, sources, politeness=FAST)
    assert report.new == 1 and report.changed == 1
    # Only the new and the edited page come in full; the slow page (a timeout last time) is asked
    # again, the 10 MB one is not (its sitemap date has not changed).
    assert set(site.site.full_fetches()) - {"/news/slow.html"} == {"/news/a6.html", "/news/a2.html"}
    assert report.skipped == {"too-large": 1, "off-site-redirect": 1, "binary": 1, "robots": 1}
    assert site.site.requests[("/news/huge.html", 200)] == 0
    assert site.site.requests[("/news/a4.html", 200)] + site.site.requests[("/news/a4.html", 304)] == 0  # lastmod unchanged
    assert site.site.requests[("/news/a1.html", 304)] == 1  # RSS: asked again, conditionally
    new_id = f"{site.base}/news/a6.html"
    related = rec.related(rec.params(k=3, min_score=-1), id=new_id)  # listable at once
    assert related["query"]["id"] == new_id and related["items"]
    assert rec.article_info(f"{site.base}/news/a2.html")["title"].endswith("again")
    # A third run with nothing new makes no snapshot.
    before = rec.snapshot.name
    report = run_ingest(rec, sources, politeness=FAST)
    assert report.new == report.changed == 0 and report.snapshot is None and rec.snapshot.name == before


def test_prune_removes_what_the_site_took_down(site, tmp_path, hash_embedder):
    rec = recommender(tmp_path / "idx", hash_embedder)
    sources = [Source("sitemap", site.base + "/sitemap_index.xml")]
    run_ingest(rec, sources, politeness=FAST)
    gone = f"{site.base}/news/a5.html"
    assert gone in rec.snapshot.ids(list(map(int, rec.snapshot.keys))).values()
    del site.site.sitemap["/news/a5.html"]
    site.site.gone.add("/news/a5.html")
    report = run_ingest(rec, sources, politeness=FAST)  # without --prune nothing is removed
    assert report.removed == 0
    report = run_ingest(rec, sources, politeness=FAST, prune=True)
    assert report.removed == 1
    assert gone not in rec.snapshot.ids(list(map(int, rec.snapshot.keys))).values()


def test_site_discovery_finds_feeds_sitemaps_and_wordpress(site, tmp_path, hash_embedder):
    rec = recommender(tmp_path / "idx", hash_embedder)
    report = run_ingest(rec, [Source("site", site.base + "/")], politeness=FAST)
    assert set(report.per_source) == {f"feed:{site.base}/feed.xml", f"feed:{site.base}/atom.xml",
                                      f"sitemap:{site.base}/sitemap_index.xml", f"wordpress:{site.base}"}
    assert report.new == 9


def test_one_ingest_at_a_time(tmp_path):
    with ingest.IngestLock(tmp_path):
        with pytest.raises(NewsrecError, match="another ingest is running"):
            with ingest.IngestLock(tmp_path):
                pass


def test_the_per_host_rate_is_kept(site):
    fetcher = ingest.Fetcher(Politeness(rate=5, robots=False), [site.base.split("//")[1].split(":")[0]])
    started = time.monotonic()
    for _ in range(6):
        fetcher.get(site.base + "/news/a1.html")
    assert time.monotonic() - started >= 1.0  # six requests at 5/s: at least a second


def _cli(index, *extra, env=None):
    return [sys.executable, "-m", "web.cli", "ingest", "--index", str(index), "--backend", "hash",
            "--rate", "0", "--timeout", "1", "--quiet", "--json", *extra]


def test_kill_9_mid_run_then_a_rerun_gives_the_uninterrupted_index(site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Feeds only: the sitemap's slow page would spend its retries' backoff in every run.
    sources = ["--feed", site.base + "/feed.xml", "--feed", site.base + "/atom.xml", "--workers", "1"]
    whole = subprocess.run(_cli(tmp_path / "whole", *sources), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0, whole.stderr
    site.site.delay = 0.4  # slow pages, so the kill lands mid-run
    proc = subprocess.Popen(_cli(tmp_path / "cut", *sources), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = tmp_path / "cut" / "ingest.sqlite"
    deadline = time.time() + 60
    while time.time() < deadline:
        if state.exists():
            with sqlite3.connect(state) as db:
                try:
                    if db.execute("SELECT COUNT(*) FROM staged").fetchone()[0] >= 2:
                        break
                except sqlite3.OperationalError:
                    pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert not (tmp_path / "cut" / "CURRENT").exists()  # killed before any snapshot
    site.site.delay = 0.0
    again = subprocess.run(_cli(tmp_path / "cut", *sources), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["resumed"] >= 2
    a, b = index_summary(tmp_path / "whole"), index_summary(tmp_path / "cut")
    assert a["ids"] == b["ids"] and a["dup_groups"] == b["dup_groups"]
    for article_id in a["ids"]:
        assert float(a["vectors"][article_id] @ b["vectors"][article_id]) >= 0.9999
    info = subprocess.run([sys.executable, "-m", "web.cli", "info", "--index", str(tmp_path / "cut")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    shown = json.loads(info.stdout)["ingest"]
    assert {s["kind"] for s in shown["sources"]} == {"feed"} and len(shown["sources"]) == 2 and shown["staged"] == 0


def _tiny_site(routes: dict[str, tuple[int, str, str]]):
    """A local HTTP server answering only `routes` (path -> status, content type, body), 404 elsewhere."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 (http.server's name)
            status, ctype, body = routes.get(self.path, (404, "text/plain", "not found"))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_a_site_without_a_sitemap_is_not_a_failure_on_every_run(tmp_path, hash_embedder):
    page = "<html><head><title>Home</title></head><body><p>Welcome</p></body></html>"
    server, base = _tiny_site({"/": (200, "text/html", page), "/robots.txt": (200, "text/plain", "User-agent: *\n")})
    try:
        rec = recommender(tmp_path / "idx", hash_embedder)
        report = run_ingest(rec, [Source("site", base + "/")], politeness=FAST)
        assert not any(k.startswith("source-") for k in report.failed), report.failed
        assert report.skipped.get("no-sitemap") == 1
    finally:
        server.shutdown()


def test_a_refused_connection_is_reported_as_one_not_as_robots(tmp_path, hash_embedder):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rec = recommender(tmp_path / "idx", hash_embedder)
    report = run_ingest(rec, [Source("feed", f"http://127.0.0.1:{port}/rss.xml")], politeness=FAST)
    assert "source-robots" not in report.failed and report.failed.get("source-connection") == 1, report.failed
