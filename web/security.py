"""Response headers (CSP, CORS, framing), bearer-token checks and an optional per-client rate limit."""
from __future__ import annotations

import hmac
import threading
import time

from flask import request

from recommender import Config

__all__ = ["apply_headers", "allowed_origin", "check_token", "RateLimiter"]


def _origins(config: Config) -> list[str]:
    return [o.strip().rstrip("/") for o in config.cors_origins.split(",") if o.strip()]


def allowed_origin(config: Config, origin: str | None) -> str | None:
    """The value for Access-Control-Allow-Origin, or None when the origin is not allowed."""
    if not origin:
        return None
    origins = _origins(config)
    if "*" in origins:
        return "*"
    return origin if origin.rstrip("/") in origins else None


def apply_headers(response, config: Config):
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if response.mimetype == "text/html":
        frame_ancestors = "'self'"
        if request.path.startswith("/embed"):
            extra = " ".join(o for o in _origins(config) if o != "*") if "*" not in _origins(config) else "*"
            frame_ancestors = ("'self' " + extra).strip() if extra != "*" else "*"
        else:
            h.setdefault("X-Frame-Options", "SAMEORIGIN")
        h.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
            f"connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'; frame-ancestors {frame_ancestors}",
        )
    if request.path.startswith("/api/") or request.path == "/widget.js":
        allow = allowed_origin(config, request.headers.get("Origin"))
        if allow:
            h["Access-Control-Allow-Origin"] = allow
            h["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            h["Access-Control-Allow-Headers"] = "Content-Type, Authorization, X-Request-Id"
            h["Access-Control-Expose-Headers"] = "ETag, X-Request-Id"
            h["Access-Control-Max-Age"] = "600"
            if allow != "*":
                h.add("Vary", "Origin")
    return response


def check_token(config: Config) -> tuple[bool, str]:
    """(allowed, why not) for a write: the configured bearer token, compared in constant time."""
    if not config.token:
        return False, "writes are disabled: set NEWSREC_TOKEN on the server to enable them"
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False, "send 'Authorization: Bearer <token>'"
    if not hmac.compare_digest(given.strip().encode(), config.token.encode()):
        return False, "wrong token"
    return True, ""


class RateLimiter:
    """Fixed one-minute windows per client address; 0 requests per minute means no limit."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def retry_after() -> int:
        """Seconds until the current window ends (what a refused client is told to wait)."""
        return max(1, 60 - int(time.time() % 60))

    def allow(self, client: str) -> bool:
        if self.per_minute <= 0:
            return True
        window = int(time.time() // 60)
        with self._lock:
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            w, n = self._counts.get(client, (window, 0))
            if w != window:
                w, n = window, 0
            n += 1
            self._counts[client] = (w, n)
            return n <= self.per_minute
