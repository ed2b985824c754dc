"""The Flask app: JSON API, widget, embed fragment, demo and admin pages.

`create_app()` builds everything once per process (model, index snapshot) and keeps it on the app;
nothing heavy happens at import time.
"""
from __future__ import annotations

import logging
import os
import uuid
from typing import Any, Mapping

from flask import Flask, g, request

from recommender import Config, IndexNotReady, NewsrecError, Recommender

from .errors import register_error_handlers
from .security import apply_headers, RateLimiter
from .clicks import ClickLog

__all__ = ["create_app"]

log = logging.getLogger("newsrec.web")


def create_app(test_config: Mapping[str, Any] | None = None, *, recommender: Recommender | None = None) -> Flask:
    """App factory. `test_config` overrides settings (see recommender.config.SETTINGS)."""
    app = Flask(__name__, static_folder="static", template_folder="templates")
    config = Config.load(test_config)
    app.config["NEWSREC"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    app.json.ensure_ascii = False

    rec = recommender if recommender is not None else Recommender(config)
    try:
        rec.load()
    except IndexNotReady as exc:  # the app still starts: /healthz and the API say what to run
        log.warning("%s", exc.message)
    app.extensions["newsrec"] = rec
    app.extensions["newsrec.clicks"] = ClickLog(os.path.join(rec.index_dir.path, "clicks.sqlite"),
                                                retention_days=rec.config.reader_retention_days)
    app.extensions["newsrec.ratelimit"] = RateLimiter(config.rate_limit)

    @app.before_request
    def _before() -> None:
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]
        try:
            rec.maybe_reload()
        except NewsrecError as exc:  # a bad new snapshot must not stop the old one from serving
            log.error("reload failed, still serving %s: %s", getattr(rec.current, "name", None), exc.message)

    @app.after_request
    def _after(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        if rec.current is not None:  # replicas behind one balancer: which snapshot answered
            response.headers["X-Newsrec-Snapshot"] = rec.current.name
        return apply_headers(response, config)

    from .api import bp as api_bp
    from .pages import bp as pages_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(pages_bp)
    register_error_handlers(app)
    return app
