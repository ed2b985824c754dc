"""Publication dates: parsed once into one value, `Published`, which every other module reads.

An article's `published` is stored as text in one of two ISO forms: a date (`2024-05-01`) or a UTC
time to the second (`2024-05-01T13:45:00`). Everything the rules need is derived here, once:

- `day`: the date's ordinal (`UNKNOWN_DAY`, -1, when there is no date) — for filters and recency;
- `days`: the moment in fractional days (NaN when unknown) — for time penalties between stories;
- `precise`: whether a time of day is known (a date alone gets a day of grace in story rules).
"""
from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from recommender.errors import BadInput

__all__ = ["Published", "UNKNOWN_DAY", "parse_published", "published_arrays"]

UNKNOWN_DAY = -1  # the `day` of an article with no date (integer arrays cannot hold NaN)
_DATE_LENGTH = len("2024-05-01")


def parse_published(value: Any, field_name: str = "published") -> str:
    """Input text -> the stored ISO form: a date (YYYY-MM-DD), or a UTC time (YYYY-MM-DDTHH:MM:SS) when a
    time is given. Empty stays empty; anything else raises BadInput naming the field."""
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise BadInput(f"'{field_name}' must be an ISO date string like 2024-05-01", field=field_name)
    text = value.strip()
    try:
        if len(text) == _DATE_LENGTH:
            return dt.date.fromisoformat(text).isoformat()
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = _rfc2822(text)
        if moment is None:
            raise BadInput(f"'{field_name}' is not an ISO date: {text[:40]!r} (use YYYY-MM-DD, or an RSS date "
                           f"like 'Tue, 22 Aug 2017 14:39:05 +0530')", field=field_name) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def _rfc2822(text: str) -> dt.datetime | None:
    """An RSS / e-mail date ('Tue, 22 Aug 2017 14:39:05 +0530'), as feeds and sitemaps write them."""
    import email.utils

    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Published:
    """A parsed publication time. Build with `Published.of(stored_text)` (cached: the same text is
    parsed once per process)."""

    text: str = ""
    day: int = UNKNOWN_DAY
    days: float = math.nan
    precise: bool = False

    @property
    def known(self) -> bool:
        return self.day != UNKNOWN_DAY

    @staticmethod
    @functools.lru_cache(maxsize=65536)
    def of(text: str | None) -> "Published":
        """The value of a stored ISO text (as `parse_published` writes it); unparseable text is unknown."""
        if not text:
            return UNKNOWN
        try:
            if len(text) > _DATE_LENGTH:
                moment = dt.datetime.fromisoformat(text)
                day = moment.toordinal()
                seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
                return Published(text, day, day + seconds / 86400, True)
            day = dt.date.fromisoformat(text[:_DATE_LENGTH]).toordinal()
            return Published(text, day, float(day), False)
        except ValueError:
            return UNKNOWN

    @classmethod
    def parse(cls, value: Any, field_name: str = "published") -> "Published":
        """Validate input text (BadInput when it is not ISO) and parse it."""
        return cls.of(parse_published(value, field_name))


UNKNOWN = Published()


def published_arrays(values: Iterable[Published]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(day int32, days float64, precise bool) arrays for rows of published values."""
    values = list(values)
    return (np.asarray([p.day for p in values], dtype=np.int32),
            np.asarray([p.days for p in values], dtype=np.float64),
            np.asarray([p.precise for p in values], dtype=bool))
