"""The Flask app: JSON API, widget, embed fragment, demo and admin pages.

`create_app()` builds everything once per process (model, index snapshot) and keeps it on the app;
nothing heavy happens at import time.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any, Mapping

from flask import Flask, g, request

from recommender import Config, IndexNotReady, NewsrecError, Recommender

from .errors import register_error_handlers
from .security import apply_headers, RateLimiter
from .clicks import ClickLog, Tickets

__all__ = ["create_app"]

log = logging.getLogger("newsrec.web")


def create_app(test_config: Mapping[str, Any] | None = None, *, recommender: Recommender | None = None,
               warm: bool = False) -> Flask:
    """App factory. `test_config` overrides settings (see recommender.config.SETTINGS). `warm`: answer
    each kind of request once before returning (what a served worker does: see warm_up)."""
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
    app.extensions["newsrec.tickets"] = Tickets(rec.index_dir.path)
    app.extensions["newsrec.ratelimit"] = RateLimiter(config.rate_limit)
    app.extensions["newsrec.textlimit"] = RateLimiter(config.text_rate_limit)

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
    if warm and rec.current is not None:
        warm_up(app)
    return app


# A story with a heading, a share line and an ALSO READ link, as a publisher's page or draft has them.
_WARM_TITLE = "Council expands the city's bus network"
_WARM_BODY = ("The city council voted on Tuesday to expand the bus network, adding four routes to the north of the city "
              "and a night service at weekends.\n\nALSO READ: Stadium plans approved\n\nThe new routes start in "
              "March, the council said, and fares stay as they are.\n\nShare this story on Facebook")
_WARM_PAGE = (f"<html><head><title>{_WARM_TITLE}</title></head><body><article><h1>{_WARM_TITLE}</h1>"
              + "".join(f"<p>{p}</p>" for p in _WARM_BODY.split("\n\n")) + "</article></body></html>")


def warm_up(app: Flask) -> None:
    """Answer each kind of request once through the app (by id and by text, duplicates, a pasted page,
    the fragment, the widget): the model's first runs, the cleaner's and language detector's imports, the
    templates, the snapshot's mapped pages, the newest articles' listing metadata (Snapshot.warm) and the
    pair model are paid for here, so a served worker's
    first request costs what its tenth does. Nothing is stored (reads only); the warm-up's requests
    count against no client's rate limit."""
    rec = app.extensions["newsrec"]
    snap = rec.current
    some_id = snap.ids([int(snap.keys[0])]).get(int(snap.keys[0])) if snap.count else None
    client = app.test_client()
    text = {"title": _WARM_TITLE, "body": _WARM_BODY}
    calls = [("POST", "/api/related", text), ("POST", "/api/duplicates", text),
             ("POST", "/api/duplicates", {"title": _WARM_TITLE, "html": _WARM_PAGE}),
             ("POST", "/api/compare", {"a": text, "b": {"title": "Stadium plans approved", "body": _WARM_BODY}}),
             ("GET", "/widget.js", None)]
    if some_id is not None:
        calls += [("GET", f"/api/related?id={some_id}", None), ("GET", f"/embed?id={some_id}", None)]
    limiters = {name: app.extensions[name] for name in ("newsrec.ratelimit", "newsrec.textlimit")}
    app.extensions.update({name: RateLimiter(0) for name in limiters})
    started = time.perf_counter()
    snap.warm()
    for method, path, body in calls:
        answer = client.open(path, method=method, json=body)
        if answer.status_code >= 500:
            log.warning("warm-up %s %s answered %s", method, path, answer.status_code)
    app.extensions.update(limiters)
    log.info("warmed up in %.1f s", time.perf_counter() - started)
