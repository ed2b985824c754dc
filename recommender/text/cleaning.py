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
4. The title is the headline-like line above the article that names most of its content words (an
   agency's name, a byline, a date or a section label above the headline names none of them).

Everything is linear in the input, never raises on any string, and is idempotent on its own output.
"""
from __future__ import annotations

import functools
import html as html_lib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Sequence

from recommender.evidence.duplicates import body_hash
from recommender.evidence.pairs import content_tokens
from recommender.text.language import Language, detect_language

__all__ = [
    "AlsoRead",
    "Cleaned",
    "CleaningProfile",
    "Removed",
    "clean",
    "clean_html",
    "load_profile",
    "count_words",
    "normalise",
    "related_link",
    "repeats_title",
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


# Zero-width joiners shape Indic, Arabic-script and emoji text: they stay in the kept text (keys drop them).
_INVISIBLE_IN_TEXT = re.compile(r"[\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")


def tidy(line: str) -> str:
    """Surface clean-up kept in the output: entities, invisible characters, folded spaces."""
    line = _ENTITY.sub(_decode_entity, line)
    line = _INVISIBLE_IN_TEXT.sub("", line)
    line = _CONTROL.sub("", line)
    # NFC: one encoding for canonically equal text ("é" as one character or e and its accent). Not
    # where it would lengthen the line: NFC splits the characters Unicode excludes from composition
    # (Bengali's and Devanagari's precomposed nukta letters "য়" "ज़", Hebrew presentation forms,
    # musical symbols), and cleaning never adds to a text. (Decision keys take NFKC whole: normalise.)
    composed = unicodedata.normalize("NFC", line)
    return _SPACES.sub(" ", composed if len(composed) <= len(line) else line).strip()


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

    @property
    def language(self) -> Language:
        """The detected language of the title and body (`und` when there is too little text to tell)."""
        return detect_language(f"{self.title}\n{self.body}")

    def to_dict(self) -> dict:
        language = self.language
        return {
            "title": self.title,
            "body": self.body,
            "lang": language.lang,
            "lang_confidence": language.confidence,
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
    r"leia\s+também|veja\s+também|"
    # Other languages' labels for a link to another story (cut only: no rule keeps text by its words).
    r"lea(?:\s+más)?|lee\s+más|vea\s+también|ver\s+también|mire|mira|puedes\s+ver|te\s+puede\s+interesar|"
    r"le\s+puede\s+interesar|(?:contenido|notas?|noticias?|artículos?)\s+relacionad[oa]s?|"
    r"también\s+(?:te\s+puede\s+interesar|puedes\s+leer)|"
    r"lire\s+également|voir\s+aussi|à\s+voir\s+aussi|sur\s+le\s+même\s+sujet|"
    r"auch\s+lesen|lesen\s+sie\s+(?:auch|mehr|weiter)(?:\s+die\s+folgenden\s+beiträge)?|zum\s+weiterlesen|"
    r"weiterlesen|mehr\s+zum\s+thema(?:\s+\S+){0,3}|mehr\s+themen|weitere\s+(?:themen|artikel|beiträge|"
    r"nachrichten|meldungen)(?:\s+\S+){0,4}|das\s+könnte\s+sie\s+(?:auch\s+)?interessieren|"
    r"leggi\s+(?:anche|pure)|potrebbe\s+interessarti|leia\s+mais|saiba\s+mais|"
    r"lees\s+(?:ook|meer)|czytaj\s+(?:też|także|również|więcej)|zobacz\s+(?:też|także|również)|"
    r"читайте\s+(?:также|еще|ещё)|смотрите\s+также|см\.\s+также|читать\s+также|"
    r"baca\s+juga|ayrıca\s+(?:okuyun|bakınız)|i̇lgili\s+haberler|ilgili\s+haberler|"
    r"xem\s+thêm|đọc\s+thêm|اقرأ\s+أيضا|اقرأ\s+أيضاً|اقرأ\s+ايضا|यह\s+भी\s+पढ़ें|ये\s+भी\s+पढ़ें|"
    r"関連記事|あわせて読みたい|相关阅读|延伸阅读|相關閱讀|延伸閱讀|관련\s*기사"
)
_ALSO_READ_LINE = re.compile(rf"^[\W_]*(?:{_ALSO_READ_WORDS}){_SEP}(?P<rest>\S.*)$", re.IGNORECASE)
_ALSO_READ_HEADER = re.compile(rf"^[\W_]*(?:{_ALSO_READ_WORDS})[\s:|\-\u2013\u2014»>.…!]*$", re.IGNORECASE)
# A label written in capitals after a sentence's end, at the end of a paragraph, with a headline-length
# rest: "... the minister said. ALSO READ: Police arrest two after bank robbery". It goes on a line of
# its own, where the line rules cut it like any other.
_INLINE_ALSO_READ = re.compile(
    r"(?<=[.!?\"”’)\]])[ \t]+(?=(?:ALSO READ|READ ALSO|READ MORE|SEE ALSO|ALSO SEE|RELATED|MUST READ|DON'?T MISS)"
    r"[ \t]*[:|\-\u2013\u2014»>]+[ \t]*\S[^\n]{0,200}$)", re.MULTILINE)
# Table markup a wiki leaves in a body: "{| attrs |- | attrs | cell || cell |}", header cells after "!".
# Inside a table the cells' words stay where the table stood (" · " between cells, so the line and the
# story around it are judged as before); the delimiters and each cell's attributes (name=value) go.
_WIKI_TABLE_START = "{|"
_WIKI_ATTRIBUTE = re.compile(r"""(?<![\w=])[A-Za-z][\w:-]*\s*=\s*(?:"[^"\n]*"|'[^'\n]*'|[^\s|!"']+)""")
_WIKI_DELIMITER = re.compile(r"\{\||\|\}|\|[-+]|\|\||!!|\||!(?=\s)")


def _wiki_tables(line: str) -> str:
    """`line` with each wiki table's markup taken out, from "{|" to the closing "|}" of the outermost
    table (or to the end of the line)."""
    start = line.find(_WIKI_TABLE_START)
    if start < 0:
        return line
    depth, end, i = 0, len(line), start
    while i < len(line) - 1:
        pair = line[i:i + 2]
        if pair == "{|":
            depth += 1
        elif pair == "|}":
            depth -= 1
            if depth == 0:
                end = i + 2
                break
        i += 2 if pair in ("{|", "|}") else 1
    cells = (_ENTITY.sub(_decode_entity, cell).strip()
             for cell in _WIKI_DELIMITER.split(_WIKI_ATTRIBUTE.sub(" ", line[start:end])))
    table = " · ".join(cell for cell in cells if cell)
    return " ".join(filter(None, (line[:start].rstrip(), table, _wiki_tables(line[end:].strip()))))


_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_MD_LINK = re.compile(r"\[(?P<text>[^\]]{1,300})\]\((?P<url>https?://[^\s)]+)\)")

_SHARE = re.compile(
    r"^[\W_]*(?:(?:kindly|please|do)\s+)?(?:share|sharing|forward)\b.{0,40}\b(?:story|article|post|news|page|link|this|it|with)\b"
    r"|^[\W_]*share\s*(?:this|on|via|now|:|$)|^[\W_]*(?:tweet|email|e-mail|print|pin|whatsapp)\s+(?:this|it)\b"
    r"|^[\W_]*(?:compartir|comparte|compartilhe|partager|partagez|teilen|condividi|deel|udostępnij|"
    r"поделиться|paylaş|bagikan|chia\s+sẻ|شارك|شاركوا)\b|^[\W_]*(?:分享|共有する|공유하기)"
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
    r"get\s+the\s+latest|never\s+miss|stay\s+(?:updated|informed)|s[ií]guenos|suivez-nous|folgen\s+sie\s+uns|seguici|"
    r"(?:zum|für\s+den|unseren?)\s+newsletter\s+(?:anmelden|abonnieren)|newsletter\s+(?:abonnieren|bestellen)|"
    r"jetzt\s+(?:abonnieren|anmelden)|inscr[ií]bete|suscr[ií]bete|abonnez-vous|inscrivez-vous|"
    r"подписывайтесь|подпишитесь|ikuti\s+kami|takip\s+edin|theo\s+dõi|obserwuj\s+nas|volg\s+ons|"
    r"关注我们|關注我們|フォローして|تابعونا|تابعنا|اشترك(?:وا)?\s+(?:الآن|الان)|फॉलो\s+करें)"
    # A teaser line that ends in the call ("Watch the league news every day .. subscribe now").
    r"|(?:subscribe\s+(?:now|today)|jetzt\s+abonnieren|abonnez-vous|suscr[ií]bete(?:\s+ya)?|inscreva-se|iscriviti|"
    r"подпишитесь|abone\s+olun|اشترك(?:وا)?\s+(?:الآن|الان))[\W_]*$"
    # Verb-final languages name the network first ("Bizi Instagram'da takip edin").
    r"|^.{0,40}?(?:instagram|facebook|twitter|telegram|youtube|tiktok|whatsapp)\S*\s+(?:takip\s+edin|をフォロー)",
    re.IGNORECASE,
)
_AD = re.compile(
    r"^[\W_]*(?:advertisements?|advertising|advertisement\s*[-–]\s*continue\s+reading\s+below|ad|ads|sponsored(?:\s+content)?|"
    r"promoted(?:\s+content)?|story\s+continues\s+(?:below|after\s+(?:this\s+)?advertisement)|"
    r"continue\s+reading\s+(?:below|the\s+main\s+story)|scroll\s+(?:down\s+)?to\s+continue(?:\s+reading)?|"
    r"publicidad|anzeige|werbung|publicité|pubblicità|publicidade|reklama|reklam|реклама|advertorial|iklan|"
    r"广告|廣告|広告|광고|إعلان|اعلان|विज्ञापन|"
    r"wird\s+geladen|loading|cargando|chargement|caricamento|carregando|ładowanie|загрузка)[\W_]*$"
    r"|^[\W_]*(?:anzeige|werbung)\s*[-–—,:|]",
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
    r"privacy\s+policy\s+and\s+terms|all\s+rights\s+reserved|terms\s+of\s+(?:use|service)|"
    r"copyrighted\s+property\s+of|written\s+permission\s+must\s+be\s+obtained|"
    r"alle\s+rechte\s+vorbehalten|todos\s+los\s+derechos\s+reservados|tous\s+droits\s+réservés|"
    r"tutti\s+i\s+diritti\s+riservati|todos\s+os\s+direitos\s+reservados|wszelkie\s+prawa\s+zastrzeżone|"
    r"materiał\s+chroniony\s+prawem\s+autorskim|все\s+права\s+защищены)\b",
    re.IGNORECASE,
)
_COMMENTS_HEADER = re.compile(
    r"^[\W_]*(?:comments?|\d+\s+comments?|reader\s+comments|user\s+comments|your\s+comments|"
    r"leave\s+a\s+(?:comment|reply)|post\s+a\s+comment|add\s+(?:a|your)\s+comment|add\s+comment|"
    r"join\s+the\s+(?:discussion|conversation)|show\s+comments|view\s+(?:all\s+)?comments|"
    r"comments\s+are\s+closed|discuss\s+this\s+(?:story|article)|have\s+your\s+say|"
    r"what\s+do\s+you\s+think\??|talkback|readers'?\s+(?:comments|views|opinions)|"
    r"comentarios|kommentare|kommentieren(?:\s+sie)?|commentaires|commenti|comentários|komentarze|"
    r"комментарии|yorumlar|komentar|bình\s+luận|评论|評論|コメント|تعليقات|التعليقات|टिप्पणियाँ)"
    r"[\W_]*(?:\(\d+\))?[\W_]*$",
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
_SENTENCE_END = re.compile(r"[.!?…:;\"”’»)\]。！？．｡।॥؟۔።」』]\s*$")


# Scripts written without spaces between words: a run of their letters counts one word per
# _UNSPACED_CHARS characters (Chinese words average under two characters, Japanese and Thai a few more).
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f\u0e80-\u0eff"
                       r"\u1000-\u109f\u1780-\u17ff]+")
_UNSPACED_CHARS = 2.0


def count_words(key: str) -> int:
    """Words in a text, in any script (runs of unspaced scripts count by characters)."""
    unspaced = _UNSPACED.findall(key)
    if not unspaced:
        return len(_WORD.findall(key))
    rest = _UNSPACED.sub(" ", key)
    return len(_WORD.findall(rest)) + int(round(sum(len(u) for u in unspaced) / _UNSPACED_CHARS))


def _capital_share(key: str) -> float | None:
    """Share of a line's words that start with a capital letter, or None when its script has no case.

    Prose in every cased script starts most words in lower case (German, which capitalises nouns,
    about a third); menus, link clouds and lists of names or headlines start most in capitals."""
    words = _WORD.findall(key)
    lettered = [w for w in words if not w.isdigit()]
    if len(lettered) < len(words) / 2:
        return 1.0  # mostly numbers (a calendar, a score table): not prose in any script
    cased = [w for w in lettered if w[0].lower() != w[0].upper()]
    if len(cased) < max(3, len(lettered) / 2):
        return None
    return sum(w[0].isupper() for w in cased) / len(cased)


# Prose judged by shape, not vocabulary. L3S-GN1 dev, split by site into two folds (docs/measurements.md, "Cleaning"):
# a sentence-length line is prose unless nearly all its words are capitalised (0.9 best on both folds)...
_CAPS_SENTENCE = 0.9
# ...and a long line without a sentence end (a paragraph cut mid-way, a caption, a link cloud) only when
# few are (chosen 0.2 on one fold, 0.4 on the other; 0.3 is within 0.002 of the best on each).
_CAPS_RUN = 0.3


def _is_paragraph(key: str, n_words: int) -> bool:
    """Body-like: a sentence of some length, or a long run of words that reads as prose (by shape:
    sentence ends and capitalisation, in any script)."""
    if n_words >= 7 and _SENTENCE_END.search(key):
        caps = _capital_share(key)
        return n_words < 25 or caps is None or caps <= _CAPS_SENTENCE
    if n_words < 25:
        return False
    caps = _capital_share(key)
    return caps is None or caps <= _CAPS_RUN


def _initials(key: str) -> bool:
    """A line of single letters: an agency's or writer's initials ("A P", "أ ف ب", "د ب أ"), not words."""
    words = _WORD.findall(key)
    return bool(words) and all(len(w) == 1 for w in words)


# A dateline in any language: a clock time, a date written in numbers, or a short line that is a
# day and a year ("2 January 2020", "12 Mart 2020 Perşembe 22:39", "publié le 26/03/2020 à 01:38").
_CLOCK = re.compile(r"(?<![\d.,:])\d{1,2}:\d{2}(?![\d:])")
_NUMERIC_DATE = re.compile(r"(?<![\d.])\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})(?![\d.])")
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")


def _dateline(key: str, n_words: int) -> bool:
    """A short line that gives a date or time: a page's dateline, not a headline."""
    if n_words > 12:
        return False
    if _CLOCK.search(key) or _NUMERIC_DATE.search(key):
        return True
    numbers = sum(w.isdigit() for w in _WORD.findall(key))
    return n_words <= 6 and numbers >= 2 and bool(_YEAR.search(key))


def _is_headline(key: str, n_words: int) -> bool:
    """Headline-like: a short line of words that does not end a sentence (nor a clause), and is
    neither initials nor a dateline."""
    return (3 <= n_words <= 25 and not _SENTENCE_END.search(key.rstrip("!?")) and not key.endswith((",", "，", "、"))
            and not _initials(key) and not _dateline(key, n_words))


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

_SHORT_COST = 6.0  # what a non-paragraph line costs inside the article run (best 6 on both L3S-GN1 dev site folds)
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
        lines.append(_Line(i, raw, text_, key, count_words(key), "\n\n" if blank_since_last else "\n"))
        blank_since_last = False
    return lines


_FRAGMENT_WORDS = 4  # a name or title set apart by inline markup, between two parts of one sentence


def _carries_on(key: str) -> bool:
    """A line that carries on the sentence before it: it starts in lower case (cased scripts) or with
    punctuation no sentence starts with."""
    return bool(key) and (key[0].islower() or key[0] in ",.;:)]}%…，、。；：）")


def _sentence_runs(lines: Sequence[_Line]) -> list[tuple[int, int]]:
    """Runs [a, b) of two or more lines that are one sentence broken by inline markup: each line but the
    last stops without a sentence end, with no blank line between, and the next carries on (starts in
    lower case or with a comma, a closing bracket...), or is a short fragment (a name in italics) that
    the line after it carries on from. Shape only: no words of any language."""
    runs: list[tuple[int, int]] = []
    a = 0
    n = len(lines)
    while a < n:
        b = a + 1
        while b < n and lines[b].gap_before == "\n" and not _SENTENCE_END.search(lines[b - 1].key):
            if _carries_on(lines[b].key):
                b += 1
            elif (lines[b].words <= _FRAGMENT_WORDS and b + 1 < n and lines[b + 1].gap_before == "\n"
                  and not _SENTENCE_END.search(lines[b].key) and _carries_on(lines[b + 1].key)):
                b += 2
            else:
                break
        if b - a > 1:
            runs.append((a, b))
        a = b
    return runs


def _clean_once(text: str, profile: CleaningProfile | None, select: bool = True) -> Cleaned:
    """One pass of the rules. `select` False keeps every line no rule cuts (the extractor already chose
    the article: only furniture a rule is sure of goes, and no title is taken from the lines)."""
    if _WIKI_TABLE_START in text:
        text = "\n".join(_wiki_tables(line) for line in text.split("\n"))
    lines = _split(_INLINE_ALSO_READ.sub("\n", text))
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
        if reason is None and n <= 8 and _COMMENTS_HEADER.match(key):
            # A comment-section header is furniture; after some story text it also ends the article
            # (in a menu before the story, "Readers' Comments" is just a link).
            reason = "comments"
            if sum(c.words for c in candidates if _is_paragraph(c.key, c.words)) >= 50:
                removed.append(Removed(line.text, reason, line.index))
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

    if not select:  # the extractor chose the article: every line the rules left stays, no title is taken
        return _cleaned(candidates, 0, len(candidates), removed=removed, also_read=also_read)
    kinds = [
        "break" if _is_break(c.key, c.words) else "para" if _is_paragraph(c.key, c.words)
        else "head" if _is_headline(c.key, c.words) else "short"
        for c in candidates
    ]
    words = [float(c.words) for c in candidates]
    for a, b in _sentence_runs(candidates):
        # A sentence broken over lines by inline markup (a name in italics, a link) is judged whole:
        # its first line carries the sentence, the rest go with it.
        key = " ".join(c.key for c in candidates[a:b])
        n = sum(c.words for c in candidates[a:b])
        if _is_paragraph(key, n) and not any(kinds[j] == "break" for j in range(a, b)):
            kinds[a:b] = ["para"] + ["cont"] * (b - a - 1)
            words[a:b] = [float(n)] + [0.0] * (b - a - 1)
    scores = []
    for j, kind in enumerate(kinds):
        if kind == "break":
            scores.append(_BREAK_COST)
        elif kind == "cont":
            scores.append(0.0)
        elif kind == "para" and _is_teaser(kinds, j):
            scores.append(-_SHORT_COST)
        elif kind == "para":
            scores.append(words[j])
        else:
            scores.append(-_SHORT_COST)
    span = _best_span(scores)
    if span is None:
        span = (0, len(candidates))
        if len(candidates) > 1 and kinds[0] == "head":
            # No line reads as prose: everything stays, but a leading headline is still the title.
            span = (1, len(candidates))
    start, end = span

    title_at = _title_line(candidates, start, end)
    title = candidates[title_at].text if title_at >= 0 else ""
    return _cleaned(candidates, start, end, removed=removed, also_read=also_read, title=title, title_at=title_at)


def _title_line(candidates: list[_Line], start: int, end: int) -> int:
    """The line before the article [start, end) that is its headline (-1: none): of the headline-like
    lines before it, the one naming most of the story's content words (pairs.content_tokens: its
    people, places and numbers, which an agency's name, a byline, a date or a menu do not), the nearest
    to the article on a tie; when none names any, the nearest within _TITLE_WINDOW lines, else the first."""
    heads = [j for j in range(start) if _is_headline(candidates[j].key, candidates[j].words)
             and not _BYLINE.match(candidates[j].key)]
    if not heads:
        return -1
    story = content_tokens(" ".join(c.key for c in candidates[start:end]))
    shared = {j: len(content_tokens(candidates[j].key) & story) for j in heads}
    best = max(heads, key=lambda j: (shared[j], j))
    if shared[best]:
        return best
    near = [j for j in heads if j >= start - _TITLE_WINDOW]
    return near[-1] if near else heads[0]


def _cleaned(candidates: list[_Line], start: int, end: int, *, removed: list[Removed], also_read: list[AlsoRead],
             title: str = "", title_at: int = -1) -> Cleaned:
    """The result of one pass: lines [start, end) kept with their paragraph breaks, the rest cut with why."""
    for j in range(0, start):
        c = candidates[j]
        if j == title_at:
            reason = "title"
        elif _BYLINE.match(c.key) or _BYLINE_STUB.match(c.key) or (c.words <= 2 and len(c.key) <= 6) or _initials(c.key):
            reason = "byline-stub"
        elif _dateline(c.key, c.words):
            reason = "dateline"
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


def repeats_title(text: str, title: str) -> bool:
    """Whether a text is the headline again: the same words, whatever the case, spacing and punctuation
    (a page's first line, a feed's description)."""
    return bool(text.strip()) and body_hash(text) == body_hash(title)


def clean(text: str, profile: CleaningProfile | None = None, *, select: bool = True) -> Cleaned:
    """Clean scraped article text: the story body, its title, the cut related links and every cut piece.

    `select=False` is for text an extractor has already narrowed to the article: only lines a rule is
    sure of (related links, share/follow prompts, ads, cookie and comment furniture) are cut."""
    if not isinstance(text, str):
        raise TypeError(f"clean() takes a str, got {type(text).__name__}; decode bytes first")
    result = _clean_once(text, profile, select)
    if result.body == text:
        return result  # nothing changed: a second pass would see the same input and decide the same
    # A second pass over the body normally changes nothing; where it would (a line that only became
    # furniture once its neighbours were cut), take its verdict so that clean() is idempotent.
    for _ in range(3):
        again = _clean_once(result.body, profile, select)
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
    """The parsed page: trafilatura's loader (its repairs and parser, so that its extraction reads the same
    tree), else lxml's own parse."""
    try:
        from trafilatura import load_html

        tree = load_html(markup)
        if tree is not None:
            return tree
    except Exception:  # a page trafilatura's loader refuses is still parsed below
        pass
    from lxml import html as lxml_html

    for source in (markup, markup.encode("utf-8", "replace")):
        # A str with an XML encoding declaration is refused by lxml; the same page as UTF-8 bytes is not.
        try:
            return lxml_html.document_fromstring(source)
        except Exception:  # lxml raises several types on broken markup; the text path is the fallback
            continue
    return None


@functools.cache
def _page_text_xpath():
    from lxml import etree

    return etree.XPath("//text()[not(ancestor::script or ancestor::style or ancestor::noscript or ancestor::template)]",
                       smart_strings=False)


def _page_text(tree) -> str:
    """The page's text outside scripts, styles and templates."""
    return "".join(_page_text_xpath()(tree))


_LABEL_START = re.compile(rf"^[\W_]*(?:{_ALSO_READ_WORDS})", re.IGNORECASE)
_RELATED_TAGS = ("p", "div", "li", "span", "strong", "h3", "h4", "aside", "section")


def _leading_text(el, enough: int = 120) -> str:
    """The start of an element's text, at least `enough` characters that are not spaces (its text nodes in
    order, pulled lazily: a page's outer blocks hold most of its text and are not read whole)."""
    parts, size = [], 0
    for piece in el.itertext():
        parts.append(piece)
        size += len(piece.strip())
        if size >= enough:
            break
    return "".join(parts)


@functools.cache
def _text_nodes_xpath():
    from lxml import etree

    return etree.XPath("//text()", smart_strings=False)


_ALSO_READ_ANY_LINE = re.compile(rf"{_ALSO_READ_LINE.pattern}|{_ALSO_READ_HEADER.pattern}", re.IGNORECASE | re.MULTILINE)


def _has_related_label(tree) -> bool:
    """Whether any short text node of a page starts with a related-link label, alone or with its headline
    (only then are the page's elements searched for one): the nodes are read as one text, one per line,
    normalised once."""
    nodes = [t for t in _text_nodes_xpath()(tree) if len(t) <= 300 and not t.isspace()]
    return bool(nodes) and _ALSO_READ_ANY_LINE.search(normalise("\n".join(nodes))) is not None


def _html_also_read(tree) -> list[AlsoRead]:
    """Related-link elements (text starting 'ALSO READ' and similar) with their link targets.

    An element is read whole only when the start of its text can begin with a label (most blocks of a
    page cannot: measured, this pass costs a tenth of reading every block whole)."""
    found: list[AlsoRead] = []
    if not _has_related_label(tree):
        return found
    for el in tree.iter(*_RELATED_TAGS):
        lead = _leading_text(el)
        # ASCII text reads the same normalised (the label patterns allow any spaces): skip the work.
        if not lead or not _LABEL_START.match(lead if lead.isascii() else normalise(lead)):
            continue
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


def _drop_code(tree) -> None:
    """Remove what is not text from a parsed page: scripts, styles, templates."""
    for bad in tree.xpath("//script|//style|//noscript|//template"):
        bad.drop_tree()


def _html_to_text(tree) -> str:
    """Plain text of a page (scripts and styles already dropped) with one line per block element
    (fallback when extraction finds nothing)."""
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


# Link text below this share of a page's words: no menus or lists of other stories in the markup. Real
# pages of the trafilatura benchmark (dev): 1% of them have less than 2% link text, none under 0.4%.
UNLINKED_SHARE = 0.01


def _html_title(tree) -> str:
    """The page's headline: its Open Graph title, else its first <h1>, else its <title>."""
    og = tree.xpath("//meta[@property='og:title']/@content")
    if og and og[0].strip():
        return tidy(og[0])
    heads = tree.xpath("//h1") or tree.xpath("//title")
    return tidy(heads[0].text_content()) if heads else ""


# trafilatura's fast mode skips its second opinions (readability, justext), a third of its time; they
# change a page's text only when the fast text is short. Below trafilatura's own "short" (its
# min_extracted_size, 250 characters) or 2% of the page's text, the full cascade runs as well. Chosen on
# one site fold of the trafilatura benchmark (dev) under a cost bound, checked on the other (docs/measurements.md).
SHORT_EXTRACTION_CHARS = 250
SHORT_EXTRACTION_SHARE = 0.02


def _extract(trafilatura, tree, page_chars: int) -> str | None:
    """trafilatura's main text of a page: fast mode, then the full cascade when that text is short."""
    text = None
    for fast in (True, False):
        doc = trafilatura.bare_extraction(tree, include_comments=False, include_tables=True,
                                          favor_precision=False, with_metadata=False, fast=fast)
        text = (doc.text if hasattr(doc, "text") else doc.get("text")) if doc is not None else None
        n = len(text or "")
        if n >= SHORT_EXTRACTION_CHARS and n >= SHORT_EXTRACTION_SHARE * page_chars:
            break
    return text


def clean_html(markup: str, profile: CleaningProfile | None = None) -> Cleaned:
    """Clean an article page: trafilatura extracts the main text, then only the rules that are sure cut
    (see `clean(select=False)`); related-link blocks in the markup are kept as `also_read`."""
    if not isinstance(markup, str):
        raise TypeError(f"clean_html() takes a str, got {type(markup).__name__}; decode bytes first")
    tree = _html_tree(markup) if markup.strip() else None
    if tree is None:
        return clean(markup, profile)
    title = _html_title(tree)
    link_words = len(" ".join(tree.xpath("//a//text()")).split())
    all_text = _page_text(tree)
    text = None
    # A page with no navigation in its markup (almost no link text: a text dump wrapped in blocks, as
    # scrapers store pages) gives an extractor nothing to separate the story from the rest; there the
    # text rules choose the article from the page's own blocks, as they do for scraped text. So do they
    # when nothing is extracted.
    select = link_words < UNLINKED_SHARE * len(all_text.split())
    if not select:
        try:
            import trafilatura

            # Our tree as parsed by trafilatura's own loader: it works on a copy, and the page is read once.
            text = _extract(trafilatura, tree, len(all_text))
        except Exception:  # trafilatura fails on some pages; the page's own blocks below still clean
            text = None
        select = not text
    _drop_code(tree)
    html_also_read = _html_also_read(tree)
    result = clean(_html_to_text(tree) if select else text, profile, select=select)
    if title:
        result.title = title
        first, _, rest = result.body.partition("\n")
        if repeats_title(first, title):
            # The extracted text repeats the page's headline as its first line.
            result.body = rest.lstrip("\n")
            result.removed.insert(0, Removed(first, "title", -1))
    seen = {a.title.casefold() for a in result.also_read}
    for item in html_also_read:
        if item.title.casefold() in seen:
            result.also_read = [item if a.title.casefold() == item.title.casefold() else a for a in result.also_read]
        else:
            result.also_read.append(item)
    return result
