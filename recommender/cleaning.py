"""Clean scraped article text (and HTML) down to the story.

Scraped bodies carry the site's furniture: "ALSO READ: <headline>" lines, share and follow prompts
(often in styled Unicode), trailing lists of other headlines, menus, comments. The cleaner works on
lines ("blocks"):

1. Each line gets a normalised *key* (NFKC, entities, no zero-width characters, folded spaces) used
   for every decision; the kept text keeps its original characters.
2. Line rules cut furniture that can be recognised on its own (related-link lines, share/follow
   prompts, ads, photo credits, cookie text, repeated lines, byline stubs). Related-link lines are
   kept as data in `also_read`.
3. The article is the highest-scoring contiguous run of the remaining lines, where paragraph-like
   lines score their word count and short lines cost a little (a maximum-subarray search, linear in
   the number of lines). Short lines inside the run (subheadings, inline fragments) stay; short
   lines around it (menus, bylines, trailing headline lists) go. A comment-section header ends the
   article.

Everything is linear in the input, never raises on any string, and is idempotent on its own output.
"""
from __future__ import annotations

import html as html_lib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Sequence

__all__ = [
    "AlsoRead",
    "Cleaned",
    "CleaningProfile",
    "Removed",
    "clean",
    "clean_html",
    "load_profile",
    "normalise",
    "related_link",
]

# --- normalisation -------------------------------------------------------------------------

_LINE_BREAK = re.compile(r"\r\n|[\n\r\u2028\u2029\x0b\x0c\x85]")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
# An entity reference. "&amp;" is decoded except where that would spell a new entity ("&amp;lt;"),
# so decoding is idempotent.
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_ENTITY_AFTER_AMP = re.compile(r"(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _decode_entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name == "amp" and _ENTITY_AFTER_AMP.match(match.string, match.end()):
        return match.group(0)
    decoded = html_lib.unescape(match.group(0))
    if decoded == match.group(0) or _CONTROL.search(decoded) or _INVISIBLE.search(decoded):
        return decoded if decoded == match.group(0) else ""
    if "&" in decoded or _LINE_BREAK.search(decoded) or _SPACES.fullmatch(decoded):
        return " " if _SPACES.fullmatch(decoded) else match.group(0)
    return decoded


def tidy(line: str) -> str:
    """Surface clean-up kept in the output: entities, invisible characters, folded spaces."""
    line = _ENTITY.sub(_decode_entity, line)
    line = _INVISIBLE.sub("", line)
    line = _CONTROL.sub("", line)
    return _SPACES.sub(" ", line).strip()


def normalise(line: str) -> str:
    """The decision key of a line: tidy() plus NFKC (so styled Unicode reads as plain letters)."""
    key = unicodedata.normalize("NFKC", tidy(line))
    return _SPACES.sub(" ", _INVISIBLE.sub("", key)).strip()


# --- data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlsoRead:
    """A related-link line the site put in the story, cut from the body and kept as data."""

    title: str
    url: str | None = None


@dataclass(frozen=True)
class Removed:
    """One cut piece of the input, with why it was cut."""

    text: str
    reason: str
    line: int


@dataclass
class Cleaned:
    title: str
    body: str
    also_read: list[AlsoRead] = field(default_factory=list)
    removed: list[Removed] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "body": self.body,
            "also_read": [asdict(a) for a in self.also_read],
            "removed": [asdict(r) for r in self.removed],
        }


@dataclass(frozen=True)
class CleaningProfile:
    """A site's own additions to the default rules: (regex, reason) pairs matched against line keys."""

    patterns: tuple[tuple[re.Pattern[str], str], ...] = ()
    also_read_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict) -> "CleaningProfile":
        pats = []
        for item in data.get("patterns", []):
            if isinstance(item, str):
                item = {"pattern": item}
            pats.append((re.compile(item["pattern"], re.IGNORECASE), str(item.get("reason", "site-rule"))))
        prefixes = tuple(str(p) for p in data.get("also_read_prefixes", []))
        return cls(tuple(pats), prefixes)


def load_profile(path: str | None) -> CleaningProfile | None:
    """Read a JSON site profile: {"patterns": [{"pattern": REGEX, "reason": CODE}], "also_read_prefixes": [...]}."""
    if not path:
        return None
    with open(path, encoding="utf-8") as fh:
        return CleaningProfile.from_dict(json.load(fh))


# --- line rules ----------------------------------------------------------------------------

_SEP = r"\s*(?:[:|\-\u2013\u2014»>›•~]+|\s{2,})\s*"
_ALSO_READ_WORDS = (
    r"also\s+read|read\s+also|also\s+see|see\s+also|read\s+more|more\s+to\s+read|must\s+read|"
    r"related(?:\s+(?:stories|story|articles?|news|posts?|content|coverage|links?|reading))?|"
    r"recommended(?:\s+(?:for\s+you|reading|stories|articles))?|you\s+may\s+also\s+like|"
    r"you\s+might\s+also\s+like|you\s+may\s+like|you\s+might\s+like|don'?t\s+miss|"
    r"further\s+reading|more\s+from\s+[\w .]{1,30}|more\s+on\s+this(?:\s+story)?|"
    r"suggested(?:\s+reading)?|trending(?:\s+now)?|popular\s+now|most\s+read|top\s+stories|"
    r"lee\s+también|lea\s+también|lire\s+aussi|à\s+lire\s+aussi|lesen\s+sie\s+auch|leggi\s+anche|"
    r"leia\s+também|veja\s+também"
)
_ALSO_READ_LINE = re.compile(rf"^[\W_]*(?:{_ALSO_READ_WORDS}){_SEP}(?P<rest>\S.*)$", re.IGNORECASE)
_ALSO_READ_HEADER = re.compile(rf"^[\W_]*(?:{_ALSO_READ_WORDS})[\s:|\-\u2013\u2014»>.…!]*$", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_MD_LINK = re.compile(r"\[(?P<text>[^\]]{1,300})\]\((?P<url>https?://[^\s)]+)\)")

_SHARE = re.compile(
    r"^[\W_]*(?:(?:kindly|please|do)\s+)?(?:share|sharing|forward)\b.{0,40}\b(?:story|article|post|news|page|link|this|it|with)\b"
    r"|^[\W_]*share\s*(?:this|on|via|now|:|$)|^[\W_]*(?:tweet|email|e-mail|print|pin|whatsapp)\s+(?:this|it)\b"
    r"|^[\W_]*(?:compartir|comparte|compartilhe|partager|partagez|teilen|condividi|deel|udostępnij)\b"
    r"|^[\W_]*click\s+(?:here\s+)?to\s+(?:share|print|email|tweet)",
    re.IGNORECASE,
)
_SOCIAL_NAMES = (
    r"whats\s?app|telegram|facebook|twitter|\bx\b|instagram|youtube|tiktok|linkedin|threads|"
    r"google\s+news|newsletter|channel|podcast|app\b|notifications?|alerts?|handle|page\b|feed\b"
)
_FOLLOW = re.compile(
    r"^[\W_]*(?:follow|join|like|subscribe|sign\s+up|signup|download|get|install|connect|stay\s+connected|"
    r"click\s+here\s+to\s+(?:follow|join|subscribe)|s[ií]guenos|suivez|abonnez|folgen|abonnieren|seguici|"
    r"siga|iscriviti|inscreva|suscr[ií]bete)\b.{0,120}?(?:" + _SOCIAL_NAMES + r")",
    re.IGNORECASE,
)
_FOLLOW_ANY = re.compile(
    r"^[\W_]*(?:follow\s+us|join\s+us|subscribe\s+(?:to|now|for|here)|sign\s+up\s+(?:for|to|now)|"
    r"get\s+the\s+latest|never\s+miss|stay\s+(?:updated|informed)|s[ií]guenos|suivez-nous|folgen\s+sie\s+uns|seguici)",
    re.IGNORECASE,
)
_AD = re.compile(
    r"^[\W_]*(?:advertisements?|advertising|advertisement\s*[-–]\s*continue\s+reading\s+below|ad|ads|sponsored(?:\s+content)?|"
    r"promoted(?:\s+content)?|story\s+continues\s+(?:below|after\s+(?:this\s+)?advertisement)|"
    r"continue\s+reading\s+(?:below|the\s+main\s+story)|scroll\s+(?:down\s+)?to\s+continue(?:\s+reading)?|"
    r"publicidad|anzeige|publicité|pubblicità)[\W_]*$",
    re.IGNORECASE,
)
_PHOTO = re.compile(
    r"^[\W_]*(?:view\s+larger\s+(?:image|photo|picture)|enlarge\s+(?:image|photo)|click\s+to\s+enlarge)[\W_]*$"
    r"|^[\W_]*(?:photo|photos|image|images|picture|pictures|file\s+photo|photograph|credit|photo\s+credit|"
    r"image\s+credit|caption|foto|bild)s?\s*(?:credit)?\s*[:/|©]"
    r"|^[\W_]*\(?(?:photo|image|picture|file\s+photo)\s*(?::|by|courtesy|credit)[^)]{0,80}\)?$"
    r"|^[\W_]*(?:getty\s+images|ap\s+photo|reuters/|afp\s+photo|afp\s+via\s+getty|epa)\b.{0,60}$"
    r"|^©.{0,80}$",
    re.IGNORECASE,
)
_COOKIE = re.compile(
    r"\b(?:we\s+use\s+cookies|this\s+(?:web)?site\s+uses\s+cookies|cookie\s+(?:policy|settings|preferences|consent)|"
    r"accept\s+(?:all\s+)?cookies|by\s+continuing\s+to\s+(?:use|browse)\s+this\s+(?:web)?site|"
    r"privacy\s+policy\s+and\s+terms|all\s+rights\s+reserved|terms\s+of\s+(?:use|service))\b",
    re.IGNORECASE,
)
_COMMENTS_HEADER = re.compile(
    r"^[\W_]*(?:comments?|\d+\s+comments?|reader\s+comments|user\s+comments|your\s+comments|"
    r"leave\s+a\s+(?:comment|reply)|post\s+a\s+comment|add\s+(?:a|your)\s+comment|add\s+comment|"
    r"join\s+the\s+(?:discussion|conversation)|show\s+comments|view\s+(?:all\s+)?comments|"
    r"comments\s+are\s+closed|discuss\s+this\s+(?:story|article)|have\s+your\s+say|"
    r"what\s+do\s+you\s+think\??|talkback|readers'?\s+(?:comments|views|opinions)|"
    r"comentarios|kommentare|commentaires)[\W_]*(?:\(\d+\))?[\W_]*$",
    re.IGNORECASE,
)
_COMMENT_LINE = re.compile(
    r"^[\W_]*(?:posted\s+by\b|reply\b|report\s+(?:abuse|this\s+comment)|\d+\s+comments?\b|"
    r"log\s*in\s+to\s+(?:comment|reply)|please\s+note:?\s+to\s+publish\s+your\s+comment)",
    re.IGNORECASE,
)
_BYLINE_STUB = re.compile(
    r"^[\W_]*(?:by|in|from|posted|published|updated|written\s+by|words\s+by|reporting\s+by|and)\b[\W_]*$"
    r"|^[\W_]*(?:by|in)\s*[,.;:]+[\W_]*$",
    re.IGNORECASE,
)
_BYLINE = re.compile(r"^[\W_]*(?:by|written\s+by|reporting\s+by|por|par|von)\s+[^.!?]{2,60}$", re.IGNORECASE)

_WORD = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*")
_SENTENCE_END = re.compile(r"[.!?…:;\"”’»)\]]\s*$")


def _words(key: str) -> int:
    return len(_WORD.findall(key))


# Function words of the languages news sites most often publish in. Prose is full of them;
# menus, headline lists and link clouds are not.
_FUNCTION_WORDS = frozenset(
    """a an the of to in on at for from by with and or but as is are was were be been has have had
    it its that this which who not said says will would can could after before over than into about
    de la el los las en y que del por con para una un es se al lo le les des du et est dans pour
    sur une il qui der die das und ist den dem ein eine zu mit von nicht sich im il di che e per
    non una da do das os um uma em não""".split()
)
_TRAILING_FUNCTION = frozenset("a an the of to in on at for from by with and or but as is are was were that".split())


def _function_share(key: str) -> float:
    words = _WORD.findall(key.casefold())
    return sum(w in _FUNCTION_WORDS for w in words) / len(words) if words else 0.0


def _is_paragraph(key: str, n_words: int) -> bool:
    """Body-like: a sentence of some length, or a long run of words that reads as prose."""
    if n_words >= 7 and _SENTENCE_END.search(key):
        return n_words < 25 or _function_share(key) >= 0.12
    return n_words >= 25 and _function_share(key) >= 0.2


def _is_headline(key: str, n_words: int) -> bool:
    """Headline-like: a short line of words that does not end a sentence (nor stop mid-phrase)."""
    if not 3 <= n_words <= 25 or _SENTENCE_END.search(key.rstrip("!?")) or key.endswith(","):
        return False
    last = _WORD.findall(key.casefold())
    return not last or last[-1] not in _TRAILING_FUNCTION


# Lines that end the article: section headers of other content, comment furniture, timestamps.
_SECTION_BREAK = re.compile(
    r"^[\W_]*(?:(?:more|other|latest|top|related|recent|popular|further|previous)\s+(?:recent\s+)?"
    r"(?:news|stories|articles|headlines|posts|videos|links)|(?:more\s+)?[\w.&'’ ]{0,30}\s+headlines(?:\s*».*)?|"
    r"most\s+(?:popular|read|viewed|emailed|shared|commented)|editor'?s\s+picks|in\s+other\s+news|"
    r"links\s+we\s+like|sponsored\s+links|around\s+the\s+web|from\s+around\s+the\s+web|"
    r"what\s+(?:do\s+)?you\s+think|your\s+(?:views|say|comments)|comment\s+viewing\s+options|"
    r"(?:reader|user)s?'?\s+(?:comments?|views?|reactions?)|(?:show|view|read|post|add|leave)\s+(?:all\s+)?(?:a\s+|your\s+)?"
    r"(?:comments?|views?)|(?:internal|external|useful)\s+links|your\s+view)"
    r"[\W_]*(?:\(\d+\))?[\W_]*$",
    re.IGNORECASE,
)
_TIMESTAMP = re.compile(
    r"^[\W_]*(?:(?:posted|updated|published|date|time)\s*:?\s*)?"
    r"(?=.*\d{1,2}:\d{2})(?=.*(?:\d{4}|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|\bago\b))"
    r"[\w ,.:/\-]{4,60}$",
    re.IGNORECASE,
)


def _is_teaser(kinds: Sequence[str], j: int) -> bool:
    """A one-paragraph blurb between headlines, in a run of such: a list of other stories."""
    def blurb(i: int) -> bool:
        return (0 < i < len(kinds) and kinds[i] == "para" and kinds[i - 1] == "head"
                and (i + 1 == len(kinds) or kinds[i + 1] in ("head", "break")))

    return blurb(j) and (blurb(j - 2) or blurb(j + 2))


def _is_break(key: str, n_words: int) -> bool:
    return n_words <= 8 and bool(_SECTION_BREAK.match(key) or _TIMESTAMP.match(key))


def _also_read_item(rest: str) -> AlsoRead:
    md = _MD_LINK.search(rest)
    if md:
        return AlsoRead(tidy(md.group("text")), md.group("url"))
    url_match = _URL.search(rest)
    url = url_match.group(0) if url_match else None
    title = _URL.sub("", rest) if url else rest
    title = tidy(title).strip(" -–—|:()[]<>")
    return AlsoRead(title, url)


def related_link(line: str) -> tuple[str, str] | None:
    """(label, headline) when a line is a related-link line ("ALSO READ: <headline>" and the like)."""
    key = normalise(line)
    match = _ALSO_READ_LINE.match(key)
    if not match:
        return None
    rest = match.group("rest")
    label = key[: len(key) - len(rest)].strip(" :|-–—»>")
    return label, rest


def _line_rule(key: str, n_words: int, profile: CleaningProfile | None) -> str | None:
    """Reason code for a line that is furniture on its own, or None."""
    if profile is not None:
        for pattern, reason in profile.patterns:
            if pattern.search(key):
                return reason
    if n_words <= 14 and _SHARE.search(key):
        return "share-prompt"
    if n_words <= 30 and (_FOLLOW.search(key) or (n_words <= 14 and _FOLLOW_ANY.search(key))):
        return "social-follow"
    if n_words <= 8 and _AD.search(key):
        return "advertisement"
    if n_words <= 20 and _PHOTO.search(key):
        return "photo-credit"
    if n_words <= 60 and _COOKIE.search(key):
        return "cookie-notice"
    if n_words <= 4 and _BYLINE_STUB.search(key):
        return "byline-stub"
    if key and n_words == 0 and len(key) > 3:
        return "decoration"
    return None


# --- span selection ------------------------------------------------------------------------

_SHORT_COST = 5.0  # what a non-paragraph line costs inside the article run (F1 flat for 4-6 on L3S-GN1 dev)
_TITLE_WINDOW = 6  # how far before the article a title may stand
_BREAK_COST = -1e6  # the article never runs across a section break


def _best_span(scores: Sequence[float]) -> tuple[int, int] | None:
    """Maximum-sum contiguous run [start, end); ties prefer the widest. None if nothing is positive."""
    best = 0.0
    best_span: tuple[int, int] | None = None
    prefix = 0.0
    min_prefix = 0.0
    min_at = 0
    for j, s in enumerate(scores, start=1):
        prefix += s
        gain = prefix - min_prefix
        if gain > 0 and gain >= best:
            best, best_span = gain, (min_at, j)
        if prefix < min_prefix:
            min_prefix, min_at = prefix, j
    return best_span


# --- the cleaner ---------------------------------------------------------------------------


@dataclass
class _Line:
    index: int
    raw: str
    text: str
    key: str
    words: int
    gap_before: str = "\n"


def _split(text: str) -> list[_Line]:
    lines: list[_Line] = []
    blank_since_last = False
    for i, raw in enumerate(_LINE_BREAK.split(text)):
        text_ = tidy(raw)
        if not text_:
            blank_since_last = True
            continue
        key = normalise(raw)
        lines.append(_Line(i, raw, text_, key, _words(key), "\n\n" if blank_since_last else "\n"))
        blank_since_last = False
    return lines


def _clean_once(text: str, profile: CleaningProfile | None) -> Cleaned:
    lines = _split(text)
    removed: list[Removed] = []
    also_read: list[AlsoRead] = []
    candidates: list[_Line] = []
    seen: set[str] = set()
    in_related_list = 0
    comment_cut = False
    prefixes = tuple(p.lower() for p in (profile.also_read_prefixes if profile else ()))

    for line in lines:
        key, n = line.key, line.words
        folded = key.casefold()
        if comment_cut:
            removed.append(Removed(line.text, "comments", line.index))
            continue
        match = _ALSO_READ_LINE.match(key) if n <= 40 else None
        prefix_hit = next((p for p in prefixes if folded.startswith(p)), None)
        if match or prefix_hit:
            # Take the headline from the original characters where they match, else from the key.
            raw_match = _ALSO_READ_LINE.match(line.text) if match else None
            if raw_match:
                rest = raw_match.group("rest")
            else:
                rest = match.group("rest") if match else line.text[len(prefix_hit or ""):]
            also_read.append(_also_read_item(rest))
            removed.append(Removed(line.text, "also-read", line.index))
            in_related_list = 0
            continue
        if n <= 6 and _ALSO_READ_HEADER.match(key):
            removed.append(Removed(line.text, "also-read", line.index))
            in_related_list = 12
            continue
        if in_related_list and _is_headline(key, n):
            also_read.append(_also_read_item(line.text.lstrip("-•*·–— ")))
            removed.append(Removed(line.text, "also-read", line.index))
            in_related_list -= 1
            continue
        in_related_list = 0
        reason = _line_rule(key, n, profile)
        if reason is None and n >= 3 and folded in seen:
            reason = "duplicate-line"
        if reason is None and candidates and n <= 8 and _COMMENTS_HEADER.match(key):
            # A comment-section header after some story text ends the article (in a menu before
            # the story, "Readers' Comments" is just a link).
            if sum(c.words for c in candidates if _is_paragraph(c.key, c.words)) >= 50:
                removed.append(Removed(line.text, "comments", line.index))
                comment_cut = True
                continue
        if reason is None and _COMMENT_LINE.match(key) and n <= 12:
            reason = "comments"
        if reason is not None:
            removed.append(Removed(line.text, reason, line.index))
            continue
        if n >= 3:
            seen.add(folded)
        candidates.append(line)

    kinds = [
        "break" if _is_break(c.key, c.words) else "para" if _is_paragraph(c.key, c.words)
        else "head" if _is_headline(c.key, c.words) else "short"
        for c in candidates
    ]
    scores = []
    for j, kind in enumerate(kinds):
        if kind == "break":
            scores.append(_BREAK_COST)
        elif kind == "para" and _is_teaser(kinds, j):
            scores.append(-_SHORT_COST)
        elif kind == "para":
            scores.append(float(candidates[j].words))
        else:
            scores.append(-_SHORT_COST)
    span = _best_span(scores)
    if span is None:
        span = (0, len(candidates))
    start, end = span

    title = ""
    title_at = -1
    for j in range(start - 1, max(-1, start - 1 - _TITLE_WINDOW), -1):
        c = candidates[j]
        if _is_headline(c.key, c.words) and not _BYLINE.match(c.key):
            title, title_at = c.text, j
            break
    if not title:
        for j in range(0, start):
            c = candidates[j]
            if _is_headline(c.key, c.words) and not _BYLINE.match(c.key):
                title, title_at = c.text, j
                break

    for j in range(0, start):
        c = candidates[j]
        if j == title_at:
            reason = "title"
        elif _BYLINE.match(c.key) or _BYLINE_STUB.match(c.key) or (c.words <= 2 and len(c.key) <= 6):
            reason = "byline-stub"
        else:
            reason = "navigation"
        removed.append(Removed(c.text, reason, c.index))
    for c in candidates[end:]:
        reason = "trailing-headlines" if _is_headline(c.key, c.words) else "outside-article"
        removed.append(Removed(c.text, reason, c.index))

    kept = candidates[start:end]
    parts: list[str] = []
    for k, c in enumerate(kept):
        if k:
            parts.append(c.gap_before)
        parts.append(c.text)
    removed.sort(key=lambda r: r.line)
    return Cleaned(title=title, body="".join(parts), also_read=also_read, removed=removed)


def clean(text: str, profile: CleaningProfile | None = None) -> Cleaned:
    """Clean scraped article text: the story body, its title, the cut related links and every cut piece."""
    if not isinstance(text, str):
        raise TypeError(f"clean() takes a str, got {type(text).__name__}; decode bytes first")
    result = _clean_once(text, profile)
    if result.body == text:
        return result  # nothing changed: a second pass would see the same input and decide the same
    # A second pass over the body normally changes nothing; where it would (a line that only became
    # furniture once its neighbours were cut), take its verdict so that clean() is idempotent.
    for _ in range(3):
        again = _clean_once(result.body, profile)
        if again.body == result.body:
            break
        result.removed.extend(Removed(r.text, r.reason, -1) for r in again.removed)
        result.also_read.extend(again.also_read)
        result.body = again.body
    return result


# --- HTML ----------------------------------------------------------------------------------

_BLOCK_TAGS = {
    "p", "div", "section", "article", "header", "footer", "aside", "nav", "li", "ul", "ol", "h1", "h2",
    "h3", "h4", "h5", "h6", "blockquote", "figure", "figcaption", "table", "tr", "td", "th", "br", "hr",
    "main", "pre", "dd", "dt", "form",
}


def _html_tree(markup: str):
    from lxml import html as lxml_html

    try:
        return lxml_html.document_fromstring(markup)
    except Exception:  # lxml raises several types on broken markup; the text path is the fallback
        return None


def _html_also_read(tree) -> list[AlsoRead]:
    """Related-link elements (text starting 'ALSO READ' and similar) with their link targets."""
    found: list[AlsoRead] = []
    for el in tree.iter("p", "div", "li", "span", "strong", "h3", "h4", "aside", "section"):
        text = normalise(el.text_content() or "")
        if not text or len(text) > 300:
            continue
        m = _ALSO_READ_LINE.match(text)
        if not m:
            continue
        links = el.xpath(".//a[@href]")
        url = links[0].get("href") if links else None
        item = AlsoRead(tidy(links[0].text_content()) if links and links[0].text_content().strip() else tidy(m.group("rest")), url)
        if item not in found:
            found.append(item)
    return found


def _html_to_text(tree) -> str:
    """Plain text of a page with one line per block element (fallback when extraction finds nothing)."""
    for bad in tree.xpath("//script|//style|//noscript|//template"):
        bad.drop_tree()
    out: list[str] = []

    def walk(el) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _BLOCK_TAGS:
            out.append("\n")
        if el.text and tag:
            out.append(el.text)
        for child in el:
            walk(child)
            if child.tail:
                out.append(child.tail)
        if tag in _BLOCK_TAGS:
            out.append("\n")

    walk(tree)
    return "".join(out)


def clean_html(markup: str, profile: CleaningProfile | None = None) -> Cleaned:
    """Clean an article page: trafilatura extracts the main text, then the text rules run on it."""
    if not isinstance(markup, str):
        raise TypeError(f"clean_html() takes a str, got {type(markup).__name__}; decode bytes first")
    tree = _html_tree(markup) if markup.strip() else None
    if tree is None:
        return clean(markup, profile)
    html_also_read = _html_also_read(tree)
    title = ""
    text = None
    try:
        import trafilatura

        doc = trafilatura.bare_extraction(
            markup, include_comments=False, include_tables=False, favor_precision=False, with_metadata=True
        )
        if doc is not None:
            text = doc.text if hasattr(doc, "text") else doc.get("text")
            title = (doc.title if hasattr(doc, "title") else doc.get("title")) or ""
    except Exception:  # trafilatura fails on some pages; the plain-text fallback below still cleans them
        text = None
    if not text:
        text = _html_to_text(tree)
        if not title:
            heads = tree.xpath("//h1") or tree.xpath("//title")
            title = tidy(heads[0].text_content()) if heads else ""
    result = clean(text, profile)
    if title:
        result.title = tidy(title)
    seen = {a.title.casefold() for a in result.also_read}
    for item in html_also_read:
        if item.title.casefold() in seen:
            result.also_read = [item if a.title.casefold() == item.title.casefold() else a for a in result.also_read]
        else:
            result.also_read.append(item)
    return result
