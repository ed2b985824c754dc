"""Site-wide rules every related list honours (the API, the widget, the fragment, pins included): sources,
sections and articles never listed, and a maximum age per section. One JSON file, named by the
`site_rules` setting (docs/operations.md):

    {"never": {"sources": ["partner-ads.example"], "sections": ["sponsored"], "ids": ["wn12"]},
     "max_age_days": {"live": 2, "weather": 7, "*": 3650}}

`max_age_days` maps a section to the oldest an item of it may be, in days before today (UTC); "*" holds
for every other section. An item without a date is not listed where a maximum age applies (its age
cannot be told). A file that does not parse, or holds anything else, stops the server at start with
the reason: a rule silently dropped would show what an editor meant never to show.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from recommender.errors import ConfigError
from recommender.query.ranking import RankParams

__all__ = ["SiteRules", "load_rules"]

_NEVER = ("sources", "sections", "ids")


@dataclass(frozen=True)
class SiteRules:
    sources: frozenset[str] = frozenset()
    sections: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    max_age_days: Mapping[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.sources or self.sections or self.ids or self.max_age_days)

    def oldest_days(self, today: int) -> dict[str, int]:
        """For each section with a maximum age ("*": any other), the earliest date ordinal listed."""
        return {section: today - int(days) for section, days in self.max_age_days.items()}

    def params(self, p: RankParams, today: int | None = None) -> RankParams:
        """The request's parameters with the rules added (a request can narrow a list, never widen it)."""
        if not self:
            return p
        today = dt.datetime.now(dt.timezone.utc).date().toordinal() if today is None else today
        return replace(p, exclude_sources=p.exclude_sources | self.sources, exclude_ids=p.exclude_ids | self.ids,
                       exclude_sections=p.exclude_sections | self.sections, oldest_day=self.oldest_days(today))

    def to_dict(self) -> dict:
        return {"never": {name: sorted(getattr(self, name)) for name in _NEVER}, "max_age_days": dict(self.max_age_days)}


def load_rules(path: str | Path | None) -> SiteRules:
    """The rules in a JSON file (none for an empty path); ConfigError naming the file and what is wrong."""
    if not path:
        return SiteRules()
    where = str(path)
    try:
        data: Any = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"site rules {where!r}: cannot read it ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"site rules {where!r} are not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(data, dict) or set(data) - {"never", "max_age_days"}:
        raise ConfigError(f"site rules {where!r}: expected an object with 'never' and 'max_age_days' "
                          f"(see docs/operations.md), got {sorted(data) if isinstance(data, dict) else type(data).__name__}")
    never = data.get("never", {})
    if not isinstance(never, dict) or set(never) - set(_NEVER):
        raise ConfigError(f"site rules {where!r}: 'never' holds lists named {', '.join(_NEVER)}")
    lists = {}
    for name in _NEVER:
        values = never.get(name, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise ConfigError(f"site rules {where!r}: 'never.{name}' must be a list of non-empty strings")
        lists[name] = frozenset(values)
    ages = data.get("max_age_days", {})
    if not isinstance(ages, dict) or not all(isinstance(k, str) and k and isinstance(v, (int, float))
                                             and not isinstance(v, bool) and v >= 0 for k, v in ages.items()):
        raise ConfigError(f"site rules {where!r}: 'max_age_days' maps sections (or '*') to a number of days >= 0")
    return SiteRules(max_age_days={k: float(v) for k, v in ages.items()}, **lists)
