"""One JSON error shape for every error, made by one helper.

    {"error": {"status": 400, "code": "bad_request", "message": "...", "field": "k", "request_id": "..."}}
"""
from __future__ import annotations

import logging

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from recommender import ArticleNotFound, BadInput, ConfigError, IndexMismatch, IndexNotReady, NewsrecError

__all__ = ["STATUS_OF", "error_response", "register_error_handlers", "status_of", "ApiError"]

log = logging.getLogger("newsrec.web")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


# Each library error type and its HTTP status; a type not listed takes its nearest listed base's.
STATUS_OF = {
    BadInput: 400,
    ArticleNotFound: 404,
    IndexNotReady: 503,
    IndexMismatch: 503,
    ConfigError: 500,
    NewsrecError: 500,
}


def status_of(exc: NewsrecError) -> int:
    """The HTTP status of a library error: its own type's, else its nearest base's in STATUS_OF."""
    return next(STATUS_OF[t] for t in type(exc).__mro__ if t in STATUS_OF)


class ApiError(Exception):
    """An error raised by a view with its HTTP status (for conditions that are not library errors)."""

    def __init__(self, status: int, message: str, *, field: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.code = code or _CODES.get(status, "error")
        self.headers = headers or {}


def error_response(status: int, message: str, *, code: str | None = None, field: str | None = None):
    body = {
        "error": {
            "status": status,
            "code": code or _CODES.get(status, "error"),
            "message": message,
            "field": field,
            "request_id": g.get("request_id", ""),
        }
    }
    response = jsonify(body)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api(exc: ApiError):
        response = error_response(exc.status, exc.message, code=exc.code, field=exc.field)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(NewsrecError)
    def _lib(exc: NewsrecError):
        status = status_of(exc)
        if status >= 500:
            log.error("request %s: %s", g.get("request_id"), exc.message)
        return error_response(status, exc.message, code=exc.code, field=exc.field)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        if status == 405 and set(getattr(exc, "valid_methods", None) or ()) <= {"OPTIONS", "HEAD"}:
            status = 404  # only the CORS preflight matched (a mistyped path): there is no such route
        messages = {
            404: f"no route {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"request body larger than {app.config.get('MAX_CONTENT_LENGTH')} bytes",
        }
        response = error_response(status, messages.get(status, exc.description or exc.name))
        if status == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _any(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http(exc)
        log.exception("request %s failed", g.get("request_id"))
        return error_response(500, "internal error; the request id identifies it in the server log")
