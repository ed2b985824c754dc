"""Which language an article is written in: py3langid (langid.py's model, bundled in the package, offline).

Detection reads letters, not words of any one language; a text with too few letters to tell is
`und` (undetermined) with confidence 0.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

__all__ = ["CONFIDENT", "Language", "detect_language", "language_posterior", "MIN_LETTERS"]

MIN_LETTERS = 12  # fewer letters than this say too little to name a language
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_SAMPLE_CHARS = 2000
# Probability from which a detected language is stored as the article's own (and so filters related
# lists). English headlines that langid calls something else score at most 0.7 (UCI: 415 of 5,007,
# mostly 0.1-0.3); real articles of a paragraph or more score >= 0.8 in 99.9% (SemEval dev, 757
# texts in 8 languages: 1,000 characters). A headline alone often stays below: it then has no
# language and no filter applies to it, which costs nothing but the filter.
CONFIDENT = 0.8  # the start of a text decides; longer texts only cost time


@dataclass(frozen=True)
class Language:
    lang: str  # ISO 639-1 code (or "und")
    confidence: float  # the model's probability of that language, 0 to 1


UNDETERMINED = Language("und", 0.0)


@functools.lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _sample(text: str) -> tuple[str, list[str]] | None:
    """(the start of a text the detector reads, its letters), or None when it has too few letters to tell."""
    sample = (text or "")[:_SAMPLE_CHARS]
    letters = _LETTER.findall(sample)
    return (sample, letters) if len(letters) >= MIN_LETTERS else None


# The scripts a language is written in (Unicode's script word at the start of a letter's name); a language
# not listed here is written in Latin letters.
SCRIPTS = {
    **dict.fromkeys(("ru", "uk", "bg", "be", "mk", "sr", "kk", "ky", "mn", "tg"), ("CYRILLIC",)),
    **dict.fromkeys(("ar", "fa", "ur", "ps", "ug", "sd", "ku"), ("ARABIC",)),
    **dict.fromkeys(("hi", "mr", "ne", "sa"), ("DEVANAGARI",)),
    "zh": ("CJK",), "ja": ("CJK", "HIRAGANA", "KATAKANA"), "ko": ("HANGUL", "CJK"), "th": ("THAI",),
    "lo": ("LAO",), "km": ("KHMER",), "my": ("MYANMAR",), "he": ("HEBREW",), "yi": ("HEBREW",), "el": ("GREEK",),
    "ka": ("GEORGIAN",), "hy": ("ARMENIAN",), "am": ("ETHIOPIC",), "bn": ("BENGALI",), "as": ("BENGALI",),
    "ta": ("TAMIL",), "te": ("TELUGU",), "kn": ("KANNADA",), "ml": ("MALAYALAM",), "gu": ("GUJARATI",),
    "pa": ("GURMUKHI",), "or": ("ORIYA",), "si": ("SINHALA",), "bo": ("TIBETAN",), "dz": ("TIBETAN",),
}


def script_share(text: str, lang: str) -> float:
    """Share of a text's letters written in the script(s) of `lang`: an English article that quotes a
    name in Thai letters is mostly Latin, whatever the detector makes of the quote."""
    return _share_in_script(_LETTER.findall(text or ""), lang)


def _share_in_script(found: list[str], lang: str) -> float:
    """script_share of a text from its letters."""
    letters = Counter(found)
    total = sum(letters.values())
    if not total:
        return 0.0
    scripts = SCRIPTS.get(lang, ("LATIN",))
    return sum(n for c, n in letters.items() if _script(c) in scripts) / total


@functools.lru_cache(maxsize=65536)
def _script(letter: str) -> str:
    """The script a letter is written in: the first word of its Unicode name ("LATIN", "CJK", ...)."""
    return unicodedata.name(letter, "?").split(" ", 1)[0]


def detect_language(text: str) -> Language:
    """The language of a text and the model's confidence; `und` when there are too few letters. The
    confidence is at most the share of the text's letters written in that language's script, so a
    text mostly in another script is never confidently called that language."""
    read = _sample(text)
    if read is None:
        return UNDETERMINED
    sample, letters = read
    lang, prob = _identifier().classify(sample)
    return Language(str(lang), round(min(float(prob), _share_in_script(letters, str(lang))), 4))


POSTERIOR_FLOOR = 0.01  # languages the detector gives less than this are left out of a posterior


def language_posterior(text: str) -> list[tuple[str, float]]:
    """The detector's probability for each language it gives at least POSTERIOR_FLOOR, most likely
    first; empty when there are too few letters to tell."""
    read = _sample(text)
    if read is None:
        return []
    return [(str(lang), float(p)) for lang, p in _identifier().rank(read[0]) if p >= POSTERIOR_FLOOR]
