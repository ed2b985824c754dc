"""What a source lists: RSS/Atom feeds, (news) sitemaps and their indexes, the WordPress REST API, and
a site's own sources found from its home page."""
from __future__ import annotations

import dataclasses
import email.utils
import json
from html import unescape
from datetime import datetime, timezone
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from recommender.errors import NewsrecError
from recommender.ingest.fetch import Entry, Failure, Fetcher, Response, Source, content_kind

WP_PAGE_SIZE = 100
SITEMAP_DEPTH = 3  # a sitemap index of sitemap indexes of sitemaps, no deeper


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
        if content_kind(resp) != "json":
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
    if content_kind(resp) == "html":
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
        if content_kind(resp) != "xml":
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
