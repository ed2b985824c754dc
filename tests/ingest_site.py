"""A small news site for the ingest tests, served on 127.0.0.1 by a real HTTP server: RSS and Atom
feeds, a sitemap index with a news sitemap, WordPress-shaped JSON, article pages with furniture,
robots.txt, and faults (a slow page, 500 then 200, a 10 MB page, invalid XML, a redirect to another
host, a feed item pointing at a PDF). It counts every request by path and status.

The article texts were written for these tests."""
from __future__ import annotations

import http.server
import json
import threading
import time
from collections import Counter
from email.utils import format_datetime
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

TOPICS = [
    ("Council expands the city bus network", "The city council voted on Tuesday to add four bus routes to the northern suburbs, starting next spring."),
    ("Storm closes the regional airport", "A winter storm closed the regional airport for most of Monday, and dozens of flights were cancelled or diverted."),
    ("Hospital opens a new children's ward", "The general hospital opened a children's ward with forty beds, doubling the region's paediatric capacity."),
    ("Local team wins the cup final", "The local football team won the cup final on penalties after a goalless draw in front of a full stadium."),
    ("Museum shows rediscovered paintings", "Six paintings thought lost for a century go on show at the city museum, after being found in a private attic."),
    ("River clean-up removes tonnes of plastic", "Volunteers removed more than four tonnes of plastic from the river banks during a weekend clean-up."),
    ("School meals to include more vegetables", "Schools will serve vegetables with every lunch from September, the education department announced."),
    ("Bridge repairs will close the main road", "Repairs to the old stone bridge will close the main road for six weeks, with diversions through the valley."),
]

PLACES = ["Northfield", "the harbour district", "Old Town", "Westbrook", "the market square", "Riverside", "Hillcrest",
          "the university quarter", "Eastgate", "Millbank", "Stonebridge", "Lakeview"]
PEOPLE = ["Anna Berg", "Tomas Lind", "Maria Costa", "James Okafor", "Lena Fischer", "Pavel Novak", "Sara Iqbal",
          "David Moreau", "Elena Rossi", "Omar Haddad", "Grace Kim", "Lucas Silva"]
DETAILS = ["a petition signed by four thousand people", "complaints about delays last winter", "a report from the auditors",
           "questions from a local school", "a survey of shop owners", "letters from the fire brigade",
           "a study by the university", "requests from the farmers' union", "worries about the cost",
           "an inspection in January", "the results of a public vote", "a visit by the regional minister"]


def filler(seed: int) -> str:
    """Two sentences of their own for each article (pages sharing text would be near-duplicates)."""
    i = seed % len(PLACES)
    return (f"Speaking in {PLACES[i]}, {PEOPLE[i]} pointed to {DETAILS[i]} as the reason for acting now. "
            f"{PEOPLE[(i + 5) % 12]} from {PLACES[(i + 7) % 12]} expects {DETAILS[(i + 3) % 12]} before anything is decided.")


def article_html(title: str, lead: str, extra: str = "", seed: int | None = None) -> str:
    seed = abs(hash(title)) if seed is None else seed
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} | Valley News</title></head>
<body><nav><a href="/">Home</a> <a href="/news/">News</a> <a href="/sport/">Sport</a></nav>
<article><h1>{title}</h1>
<p>{lead}</p>
<p>ALSO READ: <a href="/news/other.html">Lottery numbers for Friday</a></p>
<p>{filler(seed)}</p>
<p>{extra or filler(seed + 1)}</p>
<p>Kindly Share This Story</p>
</article><footer>Valley News 2024. All rights reserved.</footer></body></html>"""


class Site:
    """The pages and their versions; tests change them between runs."""

    def __init__(self):
        self.pages: dict[str, tuple[str, str]] = {}  # path -> (html, etag)
        self.rss_items = ["/news/a1.html", "/news/a2.html", "/files/report.pdf", "/private/secret.html", "/news/flaky.html"]
        self.atom_entries = ["/news/a3.html"]
        self.sitemap = {"/news/a4.html": "2024-03-01T10:00:00Z", "/news/a5.html": "2024-03-01T11:00:00Z",
                        "/news/slow.html": "2024-03-01T12:00:00Z", "/news/huge.html": "2024-03-01T12:30:00Z",
                        "/news/away.html": "2024-03-01T13:00:00Z"}
        self.wp_posts = [{"id": 100 + i, "slug": f"wp-{i}", "title": t, "lead": lead, "modified": "2024-03-02T09:00:00"}
                         for i, (t, lead) in enumerate(TOPICS[5:8])]
        for i, (title, lead) in enumerate(TOPICS[:5]):
            self.set_page(f"/news/a{i + 1}.html", title, lead)
        self.set_page("/news/flaky.html", "Flaky page finally answers", "The server failed once and then answered: "
                      "a careful client retries after a pause instead of giving up on the first error it sees.")
        self.set_page("/news/slow.html", "A very slow page", "This page takes longer to answer than the client waits.")
        self.flaky_failures = 1
        self.slow_seconds = 4.0
        self.delay = 0.0  # added to every article page (the crash test)
        self.requests: Counter = Counter()  # (path, status)
        self.wp_queries: list[dict] = []
        self.gone: set[str] = set()
        self.lock = threading.Lock()

    def set_page(self, path: str, title: str, lead: str, extra: str = "") -> None:
        html = article_html(title, lead, extra, seed=len(self.pages) * 2)
        self.pages[path] = (html, f'"{abs(hash(html)) % 10**12}"')

    def count(self, path: str, status: int) -> None:
        with self.lock:
            self.requests[(path, status)] += 1

    def full_fetches(self, prefix: str = "/news/") -> Counter:
        """Article pages answered in full (200), by path."""
        return Counter({p: n for (p, st), n in self.requests.items() if st == 200 and p.startswith(prefix)})


def make_handler(site: Site, base: str, other_host: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, status: int, body: bytes = b"", ctype: str = "text/html; charset=utf-8", headers=None):
            path = urlsplit(self.path).path
            site.count(path, status)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_GET(self):  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            path = url.path
            if path == "/robots.txt":
                return self.send(200, f"User-agent: *\nDisallow: /private/\nSitemap: {base}/sitemap_index.xml\n".encode(), "text/plain")
            if path == "/":
                return self.send(200, f"""<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml">
<link rel="alternate" type="application/atom+xml" href="/atom.xml"><link rel="https://api.w.org/" href="{base}/wp-json/">
</head><body><h1>Valley News</h1></body></html>""".encode())
            if path == "/feed.xml":
                items = "".join(f"<item><title>item</title><link>{base}{p}</link><pubDate>Fri, 01 Mar 2024 09:00:00 GMT</pubDate></item>"
                                for p in site.rss_items)
                return self.send(200, f'<?xml version="1.0"?><rss version="2.0"><channel><title>Valley</title>{items}</channel></rss>'.encode(),
                                 "application/rss+xml")
            if path == "/atom.xml":
                entries = "".join(f'<entry><title>e</title><link href="{base}{p}"/><updated>2024-03-01T09:00:00Z</updated></entry>'
                                  for p in site.atom_entries)
                return self.send(200, f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">{entries}</feed>'.encode(),
                                 "application/atom+xml")
            if path == "/broken.xml":
                return self.send(200, b"<?xml version='1.0'?><rss><channel><item><link>oops</channel>", "application/rss+xml")
            if path == "/sitemap_index.xml":
                return self.send(200, f"""<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>{base}/sitemap-news.xml</loc></sitemap></sitemapindex>""".encode(), "application/xml")
            if path == "/sitemap-news.xml":
                urls = "".join(f"""<url><loc>{base}{p}</loc><lastmod>{m}</lastmod><news:news><news:publication>
<news:name>Valley News</news:name><news:language>en</news:language></news:publication>
<news:publication_date>{m}</news:publication_date><news:title>t</news:title></news:news></url>""" for p, m in site.sitemap.items())
                return self.send(200, f"""<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>""".encode(), "application/xml")
            if path == "/wp-json/wp/v2/posts":
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                site.wp_queries.append(q)
                per, page = int(q.get("per_page", 10)), int(q.get("page", 1))
                posts = [p for p in site.wp_posts if not q.get("modified_after") or p["modified"] + "Z" > q["modified_after"]]
                chunk = posts[(page - 1) * per: page * per]
                if page > 1 and not chunk:
                    return self.send(400, b'{"code": "rest_post_invalid_page_number"}', "application/json")
                body = [{"id": p["id"], "link": f"{base}/{p['slug']}/", "status": "publish", "date_gmt": "2024-03-02T08:00:00",
                         "modified_gmt": p["modified"], "title": {"rendered": p["title"]},
                         "content": {"rendered": f"<p>{p['lead']}</p><p>ALSO READ: <a href='/x'>Other</a></p><p>{filler(p['id'])}</p>"}}
                        for p in chunk]
                return self.send(200, json.dumps(body).encode(), "application/json")
            if path == "/files/report.pdf":
                return self.send(200, b"%PDF-1.4\n" + b"\x00" * 2000, "application/pdf")
            if path == "/news/huge.html":
                return self.send(200, b"<html><body>" + b"<p>word</p>" * 1_000_000 + b"</body></html>")
            if path == "/news/away.html":
                return self.send(302, b"", headers={"Location": f"http://{other_host}/elsewhere.html"})
            if path == "/news/flaky.html" and site.flaky_failures > 0:
                site.flaky_failures -= 1
                return self.send(503, b"busy", headers={"Retry-After": "0"})
            if path == "/news/slow.html":
                time.sleep(site.slow_seconds)
            if path in site.gone:
                return self.send(410, b"gone")
            if path in site.pages:
                if site.delay:
                    time.sleep(site.delay)
                html, etag = site.pages[path]
                if self.headers.get("If-None-Match") == etag:
                    return self.send(304, headers={"ETag": etag})
                return self.send(200, html.encode("utf-8"), headers={"ETag": etag})
            wp = [p for p in site.wp_posts if path == f"/{p['slug']}/"]
            if wp:
                return self.send(200, article_html(wp[0]["title"], wp[0]["lead"], seed=wp[0]["id"]).encode())
            return self.send(404, b"not here")

    return Handler


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that stops reading a 10 MB page or a slow one is what the tests do on purpose


class SiteServer:
    def __init__(self, site: Site, port: int, other_host: str = "other.invalid"):
        self.site = site
        self.base = f"http://127.0.0.1:{port}"
        self.server = _QuietServer(("127.0.0.1", port), make_handler(site, self.base, other_host))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def now_http() -> str:
    return format_datetime(datetime.now(timezone.utc), usegmt=True)
