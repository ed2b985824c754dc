"""Fetching for ingest: what a source is, how politely it is read (robots.txt, a per-host rate,
conditional requests, retries with backoff, a size cap, redirects within the allowed hosts)."""
from __future__ import annotations

import email.utils
import threading
import time
import urllib.robotparser
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable
from urllib.parse import urljoin, urlsplit


USER_AGENT = "newsrec-ingest/0.1 (+related stories for this site)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
XML_TYPES = ("application/xml", "text/xml", "application/rss+xml", "application/atom+xml", "application/rdf+xml")
JSON_TYPES = ("application/json",)
# Skips that stay true until the page changes: not asked again while the listing's date is the same.
LASTING_SKIPS = ("too-large", "binary", "not-html-xml", "not-html-json", "off-site-redirect", "no-article-text")


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


def content_kind(resp: Response) -> str:
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
