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
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

from typing import Callable, Iterable, Iterator
from urllib.parse import urlsplit

from recommender.text.articles import Article
from recommender.ingest.fetch import Entry, Failure, Fetcher, Politeness, Response, Skip, Source, content_kind
from recommender.ingest.sources import discover, discover_site
from recommender.ingest.state import IngestLock, IngestReport, IngestState, utc_text
from recommender.errors import BadInput, NewsrecError


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
                after = utc_text(last_ok - 3600) if (s.kind == "wordpress" and last_ok and not prune) else ""
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
                kind = content_kind(resp)
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
