"""Typed library errors. The web layer maps each to an HTTP status via `status`."""
from __future__ import annotations


class NewsrecError(Exception):
    """Base of every error the library raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class BadInput(NewsrecError):
    status = 400
    code = "bad_request"


class ArticleNotFound(NewsrecError):
    status = 404
    code = "not_found"


class IndexNotReady(NewsrecError):
    status = 503
    code = "index_not_ready"


class IndexMismatch(NewsrecError):
    """The index on disk was built with another model or dimension than the configured embedder."""

    status = 503
    code = "index_mismatch"


class ConfigError(NewsrecError):
    status = 500
    code = "config_error"


__all__ = ["NewsrecError", "BadInput", "ArticleNotFound", "IndexNotReady", "IndexMismatch", "ConfigError"]
