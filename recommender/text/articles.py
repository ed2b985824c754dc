"""Articles: the input record, validation, and readers for JSONL, CSV and folders of .txt/.html files."""
from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from recommender.text.cleaning import Cleaned, CleaningProfile, clean, clean_html, repeats_title
from recommender.text.dates import UNKNOWN, Published, parse_published
from recommender.evidence.duplicates import body_hash
from recommender.errors import BadInput
from recommender.text.language import CONFIDENT

__all__ = ["Article", "parse_article", "read_as_headline", "read_articles", "read_records"]

MAX_ID_LENGTH = 512
_TEXT_FIELDS = ("body", "text", "html")
_META_FIELDS = ("url", "published", "source", "section", "lang", "image")


@dataclass
class Article:
    """One cleaned article, ready to embed and store."""

    id: str
    title: str
    body: str
    url: str = ""
    published: str = ""  # stored ISO form (see dates.parse_published) or empty
    source: str = ""
    section: str = ""
    lang: str = ""
    image: str = ""
    also_read: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    when: Published = UNKNOWN  # `published`, parsed once when the article is read

    def __post_init__(self) -> None:
        if self.published and self.when.text != self.published:
            self.when = Published.of(self.published)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "when"}

    def stored(self) -> dict:
        """What an index stores of this article (the fields of index.store.Record but its key and
        groups): `Record(key=..., **article.stored())`."""
        return dict(
            id=self.id, title=self.title, body=self.body,
            # A title-only article is identified by its title.
            body_hash=body_hash(self.body or self.title),
            url=self.url, published=self.published, source=self.source, section=self.section,
            lang=self.lang, image=self.image, also_read=tuple(self.also_read), removed=tuple(self.removed),
        )


def _str_field(record: Mapping[str, Any], name: str, *, limit: int | None = None) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and name == "id":
        value = str(value)
    if not isinstance(value, str):
        raise BadInput(f"'{name}' must be a string", field=name)
    if "\x00" in value:
        raise BadInput(f"'{name}' contains a NUL byte", field=name)
    if limit is not None and len(value) > limit:
        raise BadInput(f"'{name}' is longer than {limit} characters", field=name)
    return value


def parse_article(
    record: Mapping[str, Any],
    *,
    require_id: bool = True,
    profile: CleaningProfile | None = None,
) -> Article:
    """Validate one input record and clean its text. Raises BadInput naming the field at fault."""
    if not isinstance(record, Mapping):
        raise BadInput("an article must be a JSON object", field="article")
    art_id = _str_field(record, "id", limit=MAX_ID_LENGTH).strip()
    if require_id and not art_id:
        raise BadInput("'id' is required", field="id")
    title = _str_field(record, "title")
    texts = {name: _str_field(record, name) for name in _TEXT_FIELDS}
    if not any(t.strip() for t in texts.values()) and not title.strip():
        raise BadInput("give 'title' and one of 'body', 'text' or 'html'", field="body")
    cleaned: Cleaned
    if texts["html"].strip() and not (texts["body"].strip() or texts["text"].strip()):
        cleaned = clean_html(texts["html"], profile)
    else:
        cleaned = clean(texts["body"] or texts["text"], profile)
    meta = {name: _str_field(record, name, limit=2048) for name in _META_FIELDS}
    if not meta["lang"].strip():
        # The language the cleaned text is written in, when the input does not say and the
        # detector is sure (language.CONFIDENT): a stored language filters related lists.
        detected = cleaned.language
        meta["lang"] = detected.lang if detected.confidence >= CONFIDENT else ""
    meta["published"] = parse_published(meta["published"] or record.get("date") or "", "published")
    if texts["html"].strip() and meta["published"][11:] in ("", "00:00:00"):
        # A listing often gives only the day (or midnight); the page itself says when it was published.
        meta["published"] = page_published(texts["html"]) or meta["published"]
    title = (title.strip() or cleaned.title).strip()
    body, removed = cleaned.body, [r.__dict__ for r in cleaned.removed]
    article = Article(
        id=art_id,
        title=title,
        body=body,
        also_read=[_absolute(a.__dict__, meta["url"]) for a in cleaned.also_read],
        removed=removed,
        **meta,
    )
    if title and repeats_title(body, title):
        # A body that is the headline again (a feed's description repeating its title) says nothing the
        # title does not: the article is its headline, read once, and no one's copy for a shared headline.
        return read_as_headline(article, "title")
    return article


def read_as_headline(article, reason: str):
    """An Article or an index Record with its body cut (kept first in `removed`, with the reason): the
    article is read as its headline, and identified by it."""
    changes = {"body": "", "removed": type(article.removed)([{"text": article.body, "reason": reason, "line": 0},
                                                              *article.removed])}
    if hasattr(article, "body_hash"):
        changes["body_hash"] = body_hash(article.title)
    return dataclasses.replace(article, **changes)


_PUBLISHED_META = re.compile(
    r"""<meta\s[^>]*?(?:property|name|itemprop)\s*=\s*["'](?:article:published_time|datePublished|pubdate|"""
    r"""publish-date|og:published_time|dc\.date\.issued)["'][^>]*>""", re.IGNORECASE)
_CONTENT = re.compile(r"""content\s*=\s*["']([^"']{8,40})["']""", re.IGNORECASE)
_JSON_LD_PUBLISHED = re.compile(r'"datePublished"\s*:\s*"([^"]{8,40})"')


def page_published(html: str) -> str:
    """The publication time a page states of itself (article:published_time and its kin, or JSON-LD's
    datePublished) in the stored ISO form, when it gives one with a time of day; else empty."""
    head = html[:200_000]
    found = [m.group(1) for tag in _PUBLISHED_META.finditer(head) for m in [_CONTENT.search(tag.group(0))] if m]
    found += _JSON_LD_PUBLISHED.findall(head)
    for value in found:
        try:
            stored = parse_published(value.strip(), "published")
        except BadInput:
            continue
        if len(stored) > 10:
            return stored
    return ""


def _absolute(link: dict, page_url: str) -> dict:
    """A cut ALSO READ link with its URL made absolute against the page's own (when that is an http(s) URL)."""
    from urllib.parse import urljoin, urlsplit

    url = link.get("url") or ""
    if url and page_url and urlsplit(page_url).scheme in ("http", "https") and not urlsplit(url).scheme:
        return {**link, "url": urljoin(page_url, url)}
    return link


def open_text(path: str | os.PathLike) -> io.TextIOBase:
    """A text file opened for reading as UTF-8, gunzipped when its name ends in .gz."""
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


def read_records(path: str | os.PathLike) -> Iterator[tuple[str, Any]]:
    """(where, record) of each record of a file: the rows of a CSV file, or JSON lines (.jsonl/.json/
    .ndjson) -- or one JSON document holding an object or a list of them -- each optionally .gz. A name
    of no such kind, a file that is not UTF-8 text, a broken .gz or a line that is not JSON is BadInput
    naming the file (and the line)."""
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        records = _records_csv(path)
    elif name.endswith((".jsonl", ".json", ".ndjson")):
        records = _records_json(path)
    else:
        raise BadInput(f"cannot read {path.name}: use .jsonl, .json or .csv (optionally .gz)", field="input")
    return _readable(records, path)


def _records_json(path: Path) -> Iterator[tuple[str, Any]]:
    first = True
    with open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if first:  # not JSON lines: perhaps one document over many lines
                    yield from _json_document(path, f"{path.name} line {n} is not JSON: {exc.msg}")
                    return
                raise BadInput(f"{path.name} line {n} is not JSON: {exc.msg}", field="input") from None
            first = False
            yield f"{path.name}:{n}", record


def _json_document(path: Path, not_lines: str) -> Iterator[tuple[str, Any]]:
    with open_text(path) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError:
            raise BadInput(not_lines, field="input") from None
    items = data if isinstance(data, list) else [data]
    for n, record in enumerate(items, start=1):
        yield f"{path.name} item {n}", record


def _records_csv(path: Path) -> Iterator[tuple[str, Any]]:
    csv.field_size_limit(50_000_000)
    with open_text(path) as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            yield f"{path.name}:{n}", {k: v for k, v in row.items() if k is not None}


def _records_folder(path: Path) -> Iterator[tuple[str, Any]]:
    for file in sorted(path.iterdir()):
        if file.suffix.lower() not in {".txt", ".html", ".htm"} or not file.is_file():
            continue
        text = file.read_text(encoding="utf-8", errors="replace")
        if file.suffix.lower() == ".txt":
            yield file.name, {"id": file.stem, "text": text}
        else:
            yield file.name, {"id": file.stem, "html": text}


def read_articles(path: str | os.PathLike, *, profile: CleaningProfile | None = None) -> Iterator[Article]:
    """Articles from JSONL (.jsonl/.json, optionally .gz), CSV, or a folder of .txt/.html files.

    For .txt files the first meaningful line is the title (as scrapers store pages). A bad record
    raises BadInput naming the file and line.
    """
    path = Path(path)
    if path.is_dir():
        records = _readable(_records_folder(path), path)
    elif not path.exists():
        raise BadInput(f"input {str(path)!r} does not exist", field="input")
    else:
        try:
            records = read_records(path)
        except BadInput as exc:  # a name of no kind read here
            raise BadInput(f"{exc.message}, or a folder of .txt/.html files", field="input") from None
    for where, record in records:
        try:
            yield parse_article(record, profile=profile)
        except BadInput as exc:
            raise BadInput(f"{where}: {exc.message}", field=exc.field) from None


def _readable(records: Iterator[tuple[str, Any]], path: Path) -> Iterator[tuple[str, Any]]:
    """The records as read, a file that is not UTF-8 text (or a broken .gz) a BadInput naming it."""
    try:
        yield from records
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path.name} is not UTF-8 text (byte {exc.start}): save it as UTF-8", field="input") from None
    except (EOFError, gzip.BadGzipFile) as exc:
        raise BadInput(f"{path.name} is not a whole gzip file ({exc})", field="input") from None
