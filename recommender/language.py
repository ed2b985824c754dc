"""Which language an article is written in: py3langid (langid.py's model, bundled in the package, offline).

Detection reads letters, not words of any one language; a text with too few letters to tell is
`und` (undetermined) with confidence 0.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = ["Language", "detect_language", "MIN_LETTERS"]

MIN_LETTERS = 12  # fewer letters than this say too little to name a language
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_SAMPLE_CHARS = 2000  # the start of a text decides; longer texts only cost time


@dataclass(frozen=True)
class Language:
    lang: str  # ISO 639-1 code (or "und")
    confidence: float  # the model's probability of that language, 0 to 1


UNDETERMINED = Language("und", 0.0)


@functools.lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> Language:
    """The language of a text and the model's confidence; `und` when there are too few letters."""
    sample = (text or "")[:_SAMPLE_CHARS]
    if len(_LETTER.findall(sample)) < MIN_LETTERS:
        return UNDETERMINED
    lang, prob = _identifier().classify(sample)
    return Language(str(lang), round(float(prob), 4))
