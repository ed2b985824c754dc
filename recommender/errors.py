"""Typed library errors, each with a stable `code`; what a type means over HTTP is the web layer's business
(`web/errors.py` maps each type to its status in one table)."""
from __future__ import annotations


class NewsrecError(Exception):
    """Base of every error the library raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class BadInput(NewsrecError):
    code = "bad_request"


class ArticleNotFound(NewsrecError):
    code = "not_found"


class IndexNotReady(NewsrecError):
    code = "index_not_ready"


class IndexMismatch(NewsrecError):
    """The index on disk was built with another model or dimension than the configured embedder."""

    code = "index_mismatch"


class ConfigError(NewsrecError):
    code = "config_error"


__all__ = ["NewsrecError", "BadInput", "ArticleNotFound", "IndexNotReady", "IndexMismatch", "ConfigError"]
