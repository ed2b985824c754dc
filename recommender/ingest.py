"""Keep an index fresh from the site itself: RSS/Atom feeds, (news) sitemaps, the WordPress REST API.

One run: discover what the sources list, fetch what is new or changed (politely), clean it with the
HTML path, and add it to the index in one new snapshot. State lives in `ingest.sqlite` beside the
snapshots (never in them):

- `seen`: every URL ingested, with its validators (ETag, Last-Modified), the date its listing gave,
  and the hash of its cleaned title and body (a refetch that cleans to the same text is `unchanged`);
- `staged`: articles fetched and cleaned but not yet in a snapshot. A run killed at any point leaves
  them there and the next run adds them, so nothing fetched is lost and nothing is fetched twice;
- `sources` and `runs`: each source's last run and each run's report (`newsrec info` shows them).

A run is the unit: the staged articles are added (and pruned ones removed) in id order in one
snapshot, then `seen` is updated in one transaction. One run at a time per index (a lock file).
"""
from __future__ import annotations

import dataclasses
import email.utils
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import time
import urllib.robotparser
from html import unescape
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from .articles import Article, parse_article
from .errors import BadInput, NewsrecError

__all__ = ["Fetcher", "IngestReport", "IngestState", "Politeness", "Source", "discover", "ingest_runs", "run_ingest"]

USER_AGENT = "newsrec-ingest/0.1 (+related stories for this site)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
XML_TYPES = ("application/xml", "text/xml", "application/rss+xml", "application/atom+xml", "application/rdf+xml")
JSON_TYPES = ("application/json",)
WP_PAGE_SIZE = 100
# Skips that stay true until the page changes: not asked again while the listing's date is the same.
LASTING_SKIPS = ("too-large", "binary", "not-html-xml", "not-html-json", "off-site-redirect", "no-article-text")
SITEMAP_DEPTH = 3  # a sitemap index of sitemap indexes of sitemaps, no deeper


class Skip(Exception):
    """A URL not ingested, for a reason that is not a failure (robots, not modified, not HTML...)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Failure(Exception):
    """A URL or source that could not be read (timeouts, server errors, invalid XML...)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Source:
    kind: str  # feed | sitemap | wordpress | site
    url: str
    # Tried because sites often have it, not because the site named it (/sitemap.xml): its absence is no failure.
    guessed: bool = field(default=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.url}"


@dataclass(frozen=True)
class Politeness:
    rate: float = 1.0  # requests per second per host; 0 means no limit (a local benchmark)
    timeout: float = 15.0
    max_bytes: int = 5_000_000
    retries: int = 3
    backoff: float = 1.0  # seconds before the first retry; doubles each time (Retry-After wins)
    workers: int = 4
    robots: bool = True
    user_agent: str = USER_AGENT


@dataclass(frozen=True)
class Response:
    url: str  # after redirects
    status: int
    body: bytes
    content_type: str
    etag: str = ""
    last_modified: str = ""
    charset: str = ""


@dataclass(frozen=True)
class Entry:
    """One article a source lists."""

    url: str
    source: str  # the source's key
    listed: str = ""  # the date the listing gives (lastmod, updated, modified_gmt), ISO
    published: str = ""
    title: str = ""
    html: str | None = None  # the article's HTML when the listing carries it (WordPress)


# --- fetching ------------------------------------------------------------------------------------


class Fetcher:
    """HTTP GET with robots.txt, a per-host rate, conditional requests, retries with backoff, a size
    cap and redirects only within the allowed hosts."""

    def __init__(self, politeness: Politeness, allowed_hosts: Iterable[str]):
        import urllib3

        self.p = politeness
        self.allowed = {h.lower() for h in allowed_hosts}
        self._http = urllib3.PoolManager(num_pools=16, maxsize=max(4, politeness.workers),
                                         headers={"User-Agent": politeness.user_agent}, retries=False)
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()
        self.requests = 0

    def allow(self, host: str) -> None:
        self.allowed.add(host.lower())

    def _wait_turn(self, host: str) -> None:
        if self.p.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(host, 0.0))
            self._next_slot[host] = slot + 1.0 / self.p.rate
        if slot > now:
            time.sleep(slot - now)

    def _robots_for(self, scheme: str, host: str) -> urllib.robotparser.RobotFileParser | None:
        with self._lock:
            if host in self._robots:
                return self._robots[host]
        parser: urllib.robotparser.RobotFileParser | None = urllib.robotparser.RobotFileParser()
        try:
            resp = self._request(f"{scheme}://{host}/robots.txt", {}, check_robots=False)
            parser.parse(resp.body.decode("utf-8", "replace").splitlines())
        except Skip:  # a robots.txt too big or not modified: nothing to obey
            parser = None
        except Failure as exc:
            if exc.reason.startswith("http-4"):
                parser = None  # no robots.txt: everything allowed
            elif exc.reason.startswith("http-"):  # a server error on robots.txt: stay away, as the convention asks
                parser.parse(["User-agent: *", "Disallow: /"])
            else:  # the host did not answer at all (refused, timed out): say that, not "robots"
                raise
        with self._lock:
            self._robots[host] = parser
        return parser

    def sitemaps_in_robots(self, scheme: str, host: str) -> list[str]:
        robots = self._robots_for(scheme, host)
        return list(robots.site_maps() or []) if robots is not None else []

    def get(self, url: str, *, etag: str = "", last_modified: str = "") -> Response:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return self._request(url, headers, check_robots=self.p.robots)

    def _request(self, url: str, headers: dict, *, check_robots: bool) -> Response:
        import urllib3

        for _hop in range(6):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise Skip("not-http")
            host = parts.hostname.lower()
            if self.allowed and host not in self.allowed:
                raise Skip("off-site-redirect" if _hop else "off-site")
            if check_robots:
                robots = self._robots_for(parts.scheme, parts.netloc.lower())
                if robots is not None and not robots.can_fetch(self.p.user_agent, url):
                    raise Skip("robots")
            delay = self.p.backoff
            for attempt in range(self.p.retries + 1):
                self._wait_turn(host)
                try:
                    self.requests += 1
                    resp = self._http.request("GET", url, headers=headers, redirect=False, preload_content=False,
                                              timeout=urllib3.Timeout(connect=self.p.timeout, read=self.p.timeout))
                except urllib3.exceptions.NewConnectionError as exc:  # refused (urllib3 files it under timeouts)
                    if attempt == self.p.retries:
                        raise Failure("connection", str(exc)[:200]) from None
                    status, resp = -2, None
                except urllib3.exceptions.TimeoutError:
                    status, resp = -1, None
                except urllib3.exceptions.HTTPError as exc:
                    if attempt == self.p.retries:
                        raise Failure("connection", str(exc)[:200]) from None
                    status, resp = -2, None
                else:
                    status = resp.status
                if status in (-1, -2, 429) or status >= 500:
                    retry_after = _retry_after(resp.headers.get("Retry-After")) if resp is not None else None
                    if resp is not None:
                        resp.drain_conn()
                        resp.release_conn()
                    if attempt == self.p.retries:
                        raise Failure("timeout" if status == -1 else f"http-{status}" if status > 0 else "connection")
                    time.sleep(min(60.0, retry_after if retry_after is not None else delay))
                    delay *= 2
                    continue
                break
            assert resp is not None
            if status in (301, 302, 303, 307, 308):
                location = resp.headers.get("Location", "")
                resp.drain_conn()
                resp.release_conn()
                if not location:
                    raise Failure(f"http-{status}", "redirect without a Location")
                url = urljoin(url, location)
                continue
            if status == 304:
                # Read the (empty) body before the connection goes back to the pool: an unread response
                # left on it made the next request on that connection fail ("Request-sent").
                resp.drain_conn()
                resp.release_conn()
                raise Skip("not-modified")
            if status >= 400:
                resp.drain_conn()
                resp.release_conn()
                raise Failure(f"http-{status}")
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.p.max_bytes:
                _discard(resp)
                raise Skip("too-large")
            body = bytearray()
            try:
                for chunk in resp.stream(65536):
                    body += chunk
                    if len(body) > self.p.max_bytes:
                        _discard(resp)
                        raise Skip("too-large")
            except urllib3.exceptions.TimeoutError:
                _discard(resp)
                raise Failure("timeout") from None
            except urllib3.exceptions.HTTPError as exc:
                _discard(resp)
                raise Failure("connection", str(exc)[:200]) from None
            resp.release_conn()
            ctype, _, params = (resp.headers.get("Content-Type") or "").partition(";")
            charset = params.split("charset=", 1)[1].strip().strip('"').lower() if "charset=" in params else ""
            return Response(url=url, status=status, body=bytes(body), content_type=ctype.strip().lower(),
                            etag=resp.headers.get("ETag", ""), last_modified=resp.headers.get("Last-Modified", ""),
                            charset=charset)
        raise Failure("too-many-redirects")


def _discard(resp) -> None:
    """Give up on a response mid-body: close its connection so no later request reads the rest."""
    resp.close()
    resp.release_conn()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _kind(resp: Response) -> str:
    """'html', 'xml', 'json' or 'binary': by declared type, then by a look at the first bytes."""
    ctype = resp.content_type
    if ctype in HTML_TYPES:
        return "html"
    if ctype in XML_TYPES or ctype.endswith("+xml"):
        return "xml"
    if ctype in JSON_TYPES or ctype.endswith("+json"):
        return "json"
    head = resp.body[:512].lstrip().lower()
    if head.startswith(b"%pdf") or b"\x00" in resp.body[:1024]:
        return "binary"
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    if head.startswith(b"<?xml") or head.startswith((b"<rss", b"<feed", b"<urlset", b"<sitemapindex")):
        return "xml"
    return "binary" if ctype and not ctype.startswith("text/") else "html"


# --- discovery -----------------------------------------------------------------------------------


def _xml(resp: Response):
    from lxml import etree

    try:
        return etree.fromstring(resp.body, parser=etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False))
    except etree.XMLSyntaxError as exc:
        raise Failure("invalid-xml", str(exc)[:200]) from None


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_text(el, name: str) -> str:
    for child in el:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return ""


def _iso(value: str) -> str:
    """An ISO timestamp (UTC) from RFC 822 (RSS) or ISO 8601 (Atom, sitemaps) text, else ''."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_feed(resp: Response, source: str) -> list[Entry]:
    """Items of an RSS 2.0, RSS 1.0 (RDF) or Atom feed."""
    root = _xml(resp)
    entries = []
    for el in root.iter():
        name = _local(el.tag)
        if name == "item":  # RSS
            link = _child_text(el, "link") or _child_text(el, "guid")
            date = _child_text(el, "pubDate") or _child_text(el, "date")
            if link:
                # RSS dates are publication dates, not modification dates: an edited item keeps its
                # pubDate, so RSS items are always asked again (conditionally: usually a 304).
                entries.append(Entry(urljoin(resp.url, link), source, published=_iso(date),
                                     title=_child_text(el, "title")))
        elif name == "entry":  # Atom: `updated` is a modification date
            href = ""
            for child in el:
                if _local(child.tag) == "link" and child.get("rel", "alternate") == "alternate" and child.get("href"):
                    href = child.get("href")
                    break
            if href:
                entries.append(Entry(urljoin(resp.url, href), source,
                                     listed=_iso(_child_text(el, "updated") or _child_text(el, "published")),
                                     published=_iso(_child_text(el, "published") or _child_text(el, "updated")),
                                     title=_child_text(el, "title")))
    return entries


def parse_sitemap(resp: Response, source: str) -> tuple[list[Entry], list[str]]:
    """(article entries, child sitemaps) of a sitemap or sitemap index; news sitemaps' dates read."""
    root = _xml(resp)
    if _local(root.tag) == "sitemapindex":
        return [], [urljoin(resp.url, _child_text(s, "loc")) for s in root if _local(s.tag) == "sitemap" and _child_text(s, "loc")]
    entries = []
    for url in root:
        if _local(url.tag) != "url":
            continue
        loc = _child_text(url, "loc")
        if not loc:
            continue
        lastmod, published, title = _child_text(url, "lastmod"), "", ""
        for child in url:
            if _local(child.tag) == "news":
                published = _child_text(child, "publication_date")
                title = _child_text(child, "title")
        entries.append(Entry(urljoin(resp.url, loc), source, listed=_iso(lastmod or published),
                             published=_iso(published or lastmod), title=title))
    return entries, []


def wordpress_entries(fetcher: Fetcher, base: str, source: str, modified_after: str = "") -> list[Entry]:
    """Published posts from the WordPress REST API, paged, with their HTML (no page fetch needed)."""
    entries = []
    page = 1
    api = base.rstrip("/") + "/wp-json/wp/v2/posts"
    while True:
        query = {"per_page": WP_PAGE_SIZE, "page": page, "orderby": "modified", "order": "desc",
                 "_fields": "id,link,date_gmt,modified_gmt,title,content,status"}
        if modified_after:
            query["modified_after"] = modified_after
        try:
            resp = fetcher.get(f"{api}?{urlencode(query)}")
        except Failure as exc:
            if exc.reason == "http-400" and page > 1:  # past the last page
                break
            raise
        if _kind(resp) != "json":
            raise Failure("not-json", resp.content_type)
        try:
            posts = json.loads(resp.body.decode("utf-8"))
        except ValueError as exc:
            raise Failure("invalid-json", str(exc)[:200]) from None
        if not isinstance(posts, list):
            raise Failure("invalid-json", "the posts endpoint did not answer a list")
        for post in posts:
            if not isinstance(post, dict) or post.get("status", "publish") != "publish" or not post.get("link"):
                continue
            title = post["title"].get("rendered", "") if isinstance(post.get("title"), dict) else ""
            content = post["content"].get("rendered", "") if isinstance(post.get("content"), dict) else ""
            modified = f"{post['modified_gmt']}Z" if post.get("modified_gmt") else ""
            published = f"{post['date_gmt']}Z" if post.get("date_gmt") else ""
            # WordPress renders title and content as HTML: one page of them goes through the HTML path.
            entries.append(Entry(post["link"], source, listed=_iso(modified), published=_iso(published),
                                 title=unescape(title),
                                 html=f"<html><body><article><h1>{title}</h1>{content}</article></body></html>"))
        if len(posts) < WP_PAGE_SIZE:  # a short page is the last one
            break
        page += 1
    return entries


def discover_site(fetcher: Fetcher, url: str) -> list[Source]:
    """The feeds, sitemaps and WordPress API a homepage points at (and robots.txt's sitemaps)."""
    from lxml import html as lxml_html

    resp = fetcher.get(url)
    parts = urlsplit(resp.url)
    found: list[Source] = []
    if _kind(resp) == "html":
        doc = lxml_html.fromstring(resp.body)
        for link in doc.iter("link"):
            rel = (link.get("rel") or "").lower()
            ltype = (link.get("type") or "").lower()
            href = link.get("href")
            if not href:
                continue
            if rel == "alternate" and ltype in ("application/rss+xml", "application/atom+xml"):
                found.append(Source("feed", urljoin(resp.url, href)))
            elif rel == "https://api.w.org/":
                found.append(Source("wordpress", urlunsplit((parts.scheme, parts.netloc, "", "", ""))))
    for sitemap in fetcher.sitemaps_in_robots(parts.scheme, parts.netloc):
        found.append(Source("sitemap", sitemap))
    if not any(s.kind == "sitemap" for s in found):
        found.append(Source("sitemap", urlunsplit((parts.scheme, parts.netloc, "/sitemap.xml", "", "")), guessed=True))
    return list(dict.fromkeys(found))  # once each, in the order found


def discover(fetcher: Fetcher, source: Source, *, modified_after: str = "") -> list[Entry]:
    """Every article a source lists now."""
    if source.kind == "feed":
        resp = fetcher.get(source.url)
        if _kind(resp) != "xml":
            raise Failure("not-a-feed", resp.content_type)
        return parse_feed(resp, source.key)
    if source.kind == "sitemap":
        entries: list[Entry] = []
        queue, visited = [(source.url, 0)], set()
        while queue:
            url, depth = queue.pop(0)
            if url in visited or depth > SITEMAP_DEPTH:
                continue
            visited.add(url)
            resp = fetcher.get(url)
            if url.endswith(".gz") or resp.body[:2] == b"\x1f\x8b":
                import gzip

                try:
                    resp = dataclasses.replace(resp, body=gzip.decompress(resp.body)[: fetcher.p.max_bytes])
                except OSError:
                    raise Failure("invalid-gzip") from None
            found, children = parse_sitemap(resp, source.key)
            entries.extend(found)
            queue.extend((c, depth + 1) for c in children)
        return entries
    if source.kind == "wordpress":
        return wordpress_entries(fetcher, source.url, source.key, modified_after)
    raise NewsrecError(f"unknown source kind {source.kind!r}")


# --- state ---------------------------------------------------------------------------------------


SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    url TEXT PRIMARY KEY, id TEXT NOT NULL, source TEXT NOT NULL, etag TEXT, last_modified TEXT,
    listed TEXT, content_hash TEXT, first_seen REAL, last_fetched REAL, last_changed REAL
);
CREATE TABLE IF NOT EXISTS staged (
    id TEXT PRIMARY KEY, url TEXT NOT NULL, source TEXT NOT NULL, article TEXT NOT NULL, content_hash TEXT,
    etag TEXT, last_modified TEXT, listed TEXT, change TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS skips (url TEXT PRIMARY KEY, reason TEXT NOT NULL, listed TEXT, at REAL);
CREATE TABLE IF NOT EXISTS removals (id TEXT PRIMARY KEY, url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, url TEXT NOT NULL, last_run REAL, last_ok REAL, last_report TEXT
);
CREATE TABLE IF NOT EXISTS runs (started REAL PRIMARY KEY, finished REAL, report TEXT);
"""


class IngestState:
    """`ingest.sqlite` beside the snapshots: what was seen, what is staged, what each run did."""

    def __init__(self, index_path: str | os.PathLike):
        self.path = Path(index_path) / "ingest.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def seen(self, url: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM seen WHERE url = ?", (url,)).fetchone()

    def seen_of_source(self, source: str) -> dict[str, str]:
        return {r["url"]: r["id"] for r in self.db.execute("SELECT url, id FROM seen WHERE source = ?", (source,))}

    def staged_urls(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT url FROM staged")}

    def stage(self, article: Article, entry: Entry, content_hash: str, resp: Response | None, change: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO staged VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (article.id, entry.url, entry.source, json.dumps(article.to_dict(), ensure_ascii=False), content_hash,
             resp.etag if resp else "", resp.last_modified if resp else "", entry.listed, change))
        self.db.commit()  # each fetched article survives a crash

    def touch(self, entry: Entry, resp: Response | None) -> None:
        """An unchanged URL: keep its new validators and listing date."""
        self.db.execute("UPDATE seen SET last_fetched = ?, listed = COALESCE(NULLIF(?, ''), listed), "
                        "etag = COALESCE(NULLIF(?, ''), etag), last_modified = COALESCE(NULLIF(?, ''), last_modified) "
                        "WHERE url = ?", (time.time(), entry.listed, resp.etag if resp else "",
                                          resp.last_modified if resp else "", entry.url))
        self.db.commit()

    def skip(self, entry: Entry, reason: str) -> None:
        """A URL skipped for a lasting reason; asked again only when its listing date changes."""
        if reason in LASTING_SKIPS:
            self.db.execute("INSERT OR REPLACE INTO skips VALUES (?, ?, ?, ?)", (entry.url, reason, entry.listed, time.time()))
            self.db.commit()

    def skipped_before(self, entry: Entry) -> str | None:
        row = self.db.execute("SELECT reason, listed FROM skips WHERE url = ?", (entry.url,)).fetchone()
        if row is None or (row["listed"] or "") != (entry.listed or "") or not entry.listed:
            return None
        return row["reason"]

    def stage_removal(self, article_id: str, url: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO removals VALUES (?, ?)", (article_id, url))
        self.db.commit()

    def pending(self) -> tuple[list[Article], list[str]]:
        """Staged articles (in id order: the same snapshot whatever order they were fetched in) and removals."""
        arts = []
        for (raw,) in self.db.execute("SELECT article FROM staged ORDER BY id"):
            data = json.loads(raw)
            arts.append(Article(**data))
        removals = [r[0] for r in self.db.execute("SELECT id FROM removals ORDER BY id")]
        return arts, removals

    def applied(self) -> None:
        """The staged articles are in the live snapshot: record them as seen, in one transaction."""
        now = time.time()
        with self.db:
            self.db.execute(
                "INSERT INTO seen (url, id, source, etag, last_modified, listed, content_hash, first_seen, last_fetched, last_changed) "
                "SELECT url, id, source, etag, last_modified, listed, content_hash, ?, ?, ? FROM staged WHERE true "
                "ON CONFLICT(url) DO UPDATE SET id = excluded.id, etag = excluded.etag, last_modified = excluded.last_modified, "
                "listed = excluded.listed, content_hash = excluded.content_hash, last_fetched = excluded.last_fetched, "
                "last_changed = excluded.last_changed", (now, now, now))
            self.db.execute("DELETE FROM seen WHERE url IN (SELECT url FROM removals)")
            self.db.execute("DELETE FROM staged")
            self.db.execute("DELETE FROM removals")

    def record_run(self, report: "IngestReport", sources: list[Source]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)",
                            (report.started, report.started + report.seconds, json.dumps(report.to_dict())))
            for s in sources:
                ok = not any(f.startswith(s.key + " ") for f in report.source_errors)
                self.db.execute(
                    "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET last_run = excluded.last_run, "
                    "last_ok = COALESCE(excluded.last_ok, sources.last_ok), last_report = excluded.last_report",
                    (s.key, s.kind, s.url, report.started, report.started if ok else None,
                     json.dumps(report.per_source.get(s.key, {}))))

    def last_ok(self, source: Source) -> float | None:
        row = self.db.execute("SELECT last_ok FROM sources WHERE key = ?", (source.key,)).fetchone()
        return row[0] if row else None

    def summary(self) -> dict:
        """What `newsrec info` shows: sources, their last run, and the counts of seen and staged URLs."""
        sources = [
            {"source": key, "kind": kind, "url": url, "last_run": _utc(last_run), "last_ok": _utc(last_ok),
             "last_report": json.loads(rep) if rep else {}}
            for key, kind, url, last_run, last_ok, rep in self.db.execute("SELECT * FROM sources ORDER BY key")]
        last = self.db.execute("SELECT report FROM runs ORDER BY started DESC LIMIT 1").fetchone()
        return {"sources": sources, "seen_urls": self.db.execute("SELECT COUNT(*) FROM seen").fetchone()[0],
                "staged": self.db.execute("SELECT COUNT(*) FROM staged").fetchone()[0],
                "last_run": json.loads(last[0]) if last else None}


def ingest_runs(index_path: str | os.PathLike, limit: int = 20) -> list[dict]:
    """The last `limit` ingest runs of an index, newest first (empty when it was never ingested into);
    read-only, so a server can show them while an ingest runs."""
    path = Path(index_path) / "ingest.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT started, finished, report FROM runs ORDER BY started DESC LIMIT ?", (limit,)).fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()
    return [{"started": _utc(started), "finished": _utc(finished), **json.loads(report or "{}")}
            for started, finished, report in rows]


def _utc(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


class IngestLock:
    """One ingest at a time per index: an exclusive, non-blocking lock on `ingest.lock`."""

    def __init__(self, index_path: str | os.PathLike):
        self.path = Path(index_path) / "ingest.lock"

    def __enter__(self) -> "IngestLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another process"
            self.fh.close()
            raise NewsrecError(f"another ingest is running on this index (pid {holder}); one at a time") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
        self.fh.close()


# --- a run ---------------------------------------------------------------------------------------


@dataclass
class IngestReport:
    started: float
    listed: int = 0
    fetched: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    resumed: int = 0  # staged by an earlier run that did not finish, added now
    skipped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    source_errors: list[str] = field(default_factory=list)
    per_source: dict[str, dict] = field(default_factory=dict)
    requests: int = 0
    snapshot: str | None = None
    seconds: float = 0.0

    def count(self, table: dict[str, int], reason: str) -> None:
        table[reason] = table.get(reason, 0) + 1

    def source_failed(self, source: Source, exc: Skip | Failure) -> None:
        """A source that could not be listed: named in source_errors, counted as failed."""
        self.source_errors.append(f"{source.key} {exc}")
        self.count(self.failed, f"source-{exc.reason}")

    def to_dict(self) -> dict:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "started"}
        out["started"] = _utc(self.started)
        out["seconds"] = round(self.seconds, 2)
        return out

    def line(self) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        failed = ", ".join(f"{k} {v}" for k, v in sorted(self.failed.items())) or "none"
        return (f"ingest: {self.listed} listed, {self.fetched} fetched, {self.new} new, {self.changed} changed, "
                f"{self.unchanged} unchanged, {self.removed} removed; skipped: {skipped}; failed: {failed}; "
                f"{self.requests} requests in {self.seconds:.1f}s" + (f"; snapshot {self.snapshot}" if self.snapshot else ""))


def content_hash(article: Article) -> str:
    return hashlib.sha256(f"{article.title}\n{article.body}".encode("utf-8")).hexdigest()[:32]


def article_id(url: str) -> str:
    """An article's id: its URL without fragment, tracking parameters or default port (courlan)."""
    from courlan import normalize_url

    try:
        return normalize_url(url, strict=True)
    except (ValueError, AttributeError):
        return url


def _hosts(sources: Iterable[Source]) -> set[str]:
    return {urlsplit(s.url).hostname.lower() for s in sources if urlsplit(s.url).hostname}


def run_ingest(
    rec,
    sources: list[Source],
    *,
    politeness: Politeness = Politeness(),
    prune: bool = False,
    allowed_hosts: Iterable[str] = (),
    progress: bool = False,
) -> IngestReport:
    """One ingest run into `rec`'s index (a facade.Recommender with a model)."""
    report = IngestReport(started=time.time())
    index_path = rec.index_dir.path
    with IngestLock(index_path):
        state = IngestState(index_path)
        try:
            fetcher = Fetcher(politeness, set(allowed_hosts) | _hosts(sources))
            expanded: list[Source] = []
            for s in sources:
                if s.kind != "site":
                    expanded.append(s)
                    continue
                try:
                    expanded.extend(discover_site(fetcher, s.url))
                except (Failure, Skip) as exc:
                    report.source_failed(s, exc)
            entries: dict[str, Entry] = {}
            complete: dict[str, set[str]] = {}  # sources whose listing is whole (for pruning) -> urls listed
            for s in expanded:
                last_ok = state.last_ok(s)
                # WordPress: only posts modified since the last good run (an hour's overlap for clocks),
                # unless pruning, which needs the whole listing.
                after = _utc(last_ok - 3600) if (s.kind == "wordpress" and last_ok and not prune) else ""
                try:
                    found = discover(fetcher, s, modified_after=after)
                except (Failure, Skip) as exc:
                    if s.guessed and exc.reason in ("http-404", "http-410"):
                        report.count(report.skipped, "no-sitemap")  # the site has none; nothing failed
                    else:
                        report.source_failed(s, exc)
                    continue
                report.per_source[s.key] = {"listed": len(found)}
                if s.kind in ("sitemap", "wordpress") and not after:
                    complete[s.key] = {e.url for e in found}
                for e in found:
                    entries.setdefault(e.url, e)
            report.listed = len(entries)
            staged = state.staged_urls()
            report.resumed = len(staged)
            todo = []
            for url, e in entries.items():
                if url in staged:
                    continue  # fetched by a run that did not finish: added below
                seen = state.seen(url)
                earlier = state.skipped_before(e) if seen is None else None
                if earlier:
                    report.count(report.skipped, earlier)  # as last time, and the listing says nothing changed
                    continue
                if seen is not None and e.listed and seen["listed"] and e.listed <= seen["listed"] and e.html is None:
                    report.unchanged += 1  # the listing says it has not changed: no request
                    continue
                todo.append((e, seen))
            _fetch_all(todo, fetcher, state, rec, report, politeness=politeness, progress=progress)
            if prune:
                _prune(complete, state, fetcher, report)
            arts, removals = state.pending()
            if arts or removals:
                if rec.index_dir.exists():
                    built = rec.add(arts, remove=removals)
                else:
                    built = rec.build(arts)
                report.snapshot = built.snapshot
                state.applied()
            report.requests = fetcher.requests
            report.seconds = time.time() - report.started
            state.record_run(report, expanded)
        finally:
            state.close()
    return report


def _fetch_all(todo, fetcher: Fetcher, state: IngestState, rec, report: IngestReport, *,
               politeness: Politeness, progress: bool) -> None:
    """Fetch and clean in worker threads; stage from this thread (one SQLite writer)."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="page", desc="ingest")

    def work(item):
        entry, seen = item
        try:
            resp = None
            html = entry.html
            if html is None:
                resp = fetcher.get(entry.url, etag=(seen["etag"] or "") if seen else "",
                                   last_modified=(seen["last_modified"] or "") if seen else "")
                kind = _kind(resp)
                if kind != "html":
                    raise Skip("binary" if kind == "binary" else f"not-html-{kind}")
                html = resp.body.decode(_charset(resp), "replace")
            record = {"id": article_id(entry.url), "url": entry.url, "html": html,
                      "published": entry.published, "source": urlsplit(entry.url).hostname or ""}
            try:
                article = rec.parse(record)
            except BadInput as exc:
                raise Skip("no-article-text" if "text" in exc.message or "body" in exc.message else "bad-page") from None
            if not article.title and entry.title:
                article = dataclasses.replace(article, title=entry.title)
            return entry, seen, resp, article, None
        except (Skip, Failure) as exc:
            return entry, seen, None, None, exc

    with ThreadPoolExecutor(max_workers=max(1, politeness.workers)) as pool:
        for entry, seen, resp, article, exc in pool.map(work, todo):
            if bar is not None:
                bar.update(1)
            if isinstance(exc, Skip):
                if exc.reason == "not-modified":
                    report.unchanged += 1
                    state.touch(entry, None)
                else:
                    report.count(report.skipped, exc.reason)
                    state.skip(entry, exc.reason)
                continue
            if isinstance(exc, Failure):
                report.count(report.failed, exc.reason)
                continue
            report.fetched += 1 if entry.html is None else 0
            digest = content_hash(article)
            if seen is not None and seen["content_hash"] == digest:
                report.unchanged += 1
                state.touch(entry, resp)
                continue
            change = "new" if seen is None else "changed"
            setattr(report, change, getattr(report, change) + 1)
            state.stage(article, entry, digest, resp, change)
    if bar is not None:
        bar.close()


def _prune(complete: dict[str, set[str]], state: IngestState, fetcher: Fetcher, report: IngestReport) -> None:
    """Seen URLs a complete listing no longer holds, and that now answer 404 or 410, are removed."""
    for source, listed in complete.items():
        for url, art_id in state.seen_of_source(source).items():
            if url in listed:
                continue
            try:
                fetcher.get(url)
            except Failure as exc:
                if exc.reason in ("http-404", "http-410"):
                    state.stage_removal(art_id, url)
                    report.removed += 1
            except Skip:
                pass


def _charset(resp: Response) -> str:
    """The page's encoding: the Content-Type header's, else a <meta charset> near the top, else UTF-8."""
    import codecs
    import re

    found = resp.charset
    if not found:
        match = re.search(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-]+)""", resp.body[:4096], re.IGNORECASE)
        found = match.group(1).decode("ascii").lower() if match else "utf-8"
    try:
        codecs.lookup(found)
    except LookupError:
        return "utf-8"
    return found


def run_forever(every: float, once: Callable[[], IngestReport], log: Callable[[str], None]) -> Iterator[IngestReport]:
    """Run, then sleep until the next interval starts, for ever (Ctrl-C or SIGTERM ends it)."""
    while True:
        started = time.monotonic()
        try:
            yield once()
        except NewsrecError as exc:
            log(f"ingest: {exc}")
        time.sleep(max(0.0, every - (time.monotonic() - started)))
