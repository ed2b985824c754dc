"""The JSON API (/api/*, /healthz). Every answer carries scores; every error has one shape."""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping

from flask import Blueprint, current_app, jsonify, request

from recommender import SETTINGS, BadInput, Published, RankParams, Recommender, setting_bounds

from .errors import ApiError
from .security import check_token

COLLAPSE = next(s.choices for s in SETTINGS if s.name == "collapse")  # the settings table's own choices

bp = Blueprint("api", __name__)

MAX_JSON_DEPTH = 32
MAX_IDS = 500


def rec() -> Recommender:
    return current_app.extensions["newsrec"]


def cfg():
    return current_app.config["NEWSREC"]


# --- input -----------------------------------------------------------------------------------


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion on hostile input)."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def json_body(*, allow_text_plain: bool = False) -> dict:
    """The request's JSON object, or a 400/415 naming what is wrong."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not (allow_text_plain and mimetype in ("text/plain", "")):
        raise ApiError(415, f"send JSON with 'Content-Type: application/json' (got {mimetype or 'none'!r})")
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not valid UTF-8", field="body") from None
    if not text.strip():
        raise ApiError(400, "request body is empty; send a JSON object", field="body")
    if text.count("[") + text.count("{") > 10_000 and _looks_deep(text):
        raise ApiError(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", field="body")
    try:
        data = json.loads(text)
    except RecursionError:
        raise ApiError(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", field="body") from None
    except ValueError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object", field="body")
    if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ApiError(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", field="body")
    return data


def _looks_deep(text: str) -> bool:
    depth = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _get(source: Mapping[str, Any], name: str) -> Any:
    value = source.get(name)
    return None if value in (None, "") else value


def int_param(source: Mapping[str, Any], name: str, default: int | None, lo: int, hi: int) -> int | None:
    value = _get(source, name)
    if value is None:
        return default
    if isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be an integer from {lo} to {hi}", field=name)
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        number = None
    if number is None or not lo <= number <= hi:
        raise ApiError(400, f"'{name}' must be an integer from {lo} to {hi}", field=name)
    return number


def float_param(source: Mapping[str, Any], name: str, default: float | None, lo: float, hi: float) -> float | None:
    value = _get(source, name)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not lo <= number <= hi:
        raise ApiError(400, f"'{name}' must be a number from {lo} to {hi}", field=name)
    return number


def list_param(source: Mapping[str, Any], name: str) -> frozenset[str]:
    value = _get(source, name)
    if value is None:
        return frozenset()
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise ApiError(400, f"'{name}' must be a string (comma-separated) or a list of strings", field=name)
    items = [v for v in items if v]
    if len(items) > MAX_IDS:
        raise ApiError(400, f"'{name}' lists more than {MAX_IDS} values", field=name)
    return frozenset(items)


def bool_param(source: Mapping[str, Any], name: str) -> bool:
    value = source.get(name)
    if isinstance(value, bool):
        return value
    return str(value or "").lower() in ("1", "true", "yes", "on")


def rank_params(source: Mapping[str, Any]) -> RankParams:
    c = cfg()
    collapse = _get(source, "collapse")
    if collapse is not None and collapse not in COLLAPSE:
        raise ApiError(400, f"'collapse' must be {' or '.join(map(repr, COLLAPSE))}", field="collapse")
    dates = {}
    for name in ("date_from", "date_to"):
        value = _get(source, name)
        try:
            dates[name] = Published.parse(value, name).day if value is not None else None
        except BadInput as exc:
            raise ApiError(400, exc.message, field=name) from None
    # What the request gives, checked against the settings' own ranges (a request may ask what config
    # may); what it leaves out stays None and QueryService.params fills it from the settings, once.
    return rec().params(
        k=int_param(source, "k", None, 1, c.max_k),
        half_life_days=float_param(source, "half_life_days", None, *setting_bounds("half_life_days")),
        mmr_lambda=float_param(source, "mmr_lambda", None, *setting_bounds("mmr_lambda")),
        story_context=float_param(source, "story_context", None, *setting_bounds("story_context")),
        feedback=float_param(source, "feedback", None, *setting_bounds("feedback")),
        min_score=float_param(source, "min_score", None, *setting_bounds("min_score")),
        lexical=float_param(source, "lexical", None, *setting_bounds("lexical")),
        collapse=collapse,
        sources=list_param(source, "source"),
        exclude_sources=list_param(source, "exclude_source"),
        sections=list_param(source, "section"),
        langs=list_param(source, "lang"),
        cross_lang=bool_param(source, "cross_lang"),
        exclude_ids=list_param(source, "exclude"),
        date_from=dates["date_from"],
        date_to=dates["date_to"],
    )


def _require_token() -> None:
    ok, why = check_token(cfg())
    if not ok:
        raise ApiError(403 if not cfg().token else 401, why, field="Authorization")


# Endpoints whose POST carries an article's text: each runs the model (text_rate_limit).
BY_TEXT = frozenset({"/api/related", "/api/duplicates", "/api/compare"})


def _rate_limit() -> None:
    client = request.remote_addr or "?"
    limiters = [(current_app.extensions["newsrec.ratelimit"], "requests")]
    if request.method == "POST" and request.path in BY_TEXT:
        limiters.append((current_app.extensions["newsrec.textlimit"], "requests with an article's text"))
    for limiter, what in limiters:
        if not limiter.allow(client):
            raise ApiError(429, f"more than {limiter.per_minute} {what} a minute from this address; slow down",
                           headers={"Retry-After": str(limiter.retry_after())})


bp.before_request(_rate_limit)


# --- routes ----------------------------------------------------------------------------------


@bp.route("/healthz")
def healthz():
    r = rec()
    snap = r.current
    if snap is None:
        return jsonify({"status": "no_index", "snapshot": None, "count": 0,
                        "message": f"build an index: newsrec build --input FILE --index {r.index_dir.path}"}), 503
    return jsonify({"status": "ok", "snapshot": snap.name, "count": snap.count, "model": snap.manifest.get("model")})


@bp.route("/api/related", methods=["GET"])
def related_get():
    args = request.args
    article_id, url = _get(args, "id"), _get(args, "url")
    if not article_id and not url:
        raise ApiError(400, "give 'id' or 'url' (or POST the article's title and body)", field="id")
    params = rank_params(args)
    snap_name = rec().snapshot.name
    etag = hashlib.blake2b(f"{snap_name}?{request.query_string.decode('latin-1')}".encode(), digest_size=12).hexdigest()
    if request.if_none_match and etag in request.if_none_match:
        response = current_app.response_class(status=304)
        response.set_etag(etag)
        return response
    result = _ticketed(rec().related(params, id=article_id, url=url, explain=bool_param(args, "explain")))
    response = jsonify(result)
    response.set_etag(etag)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/api/related", methods=["POST"])
def related_post():
    data = json_body()
    params = rank_params({**request.args, **data})
    if _get(data, "id") and not any(_get(data, f) for f in ("title", "body", "text", "html")):
        return jsonify(_ticketed(rec().related(params, id=data["id"], explain=bool_param(data, "explain"))))
    return jsonify(_ticketed(rec().related(params, article=data, explain=bool_param(data, "explain"))))


@bp.route("/api/duplicates", methods=["POST"])
def duplicates():
    data = json_body()
    k = int_param(data, "k", 20, 1, 200)
    return jsonify(rec().duplicates(data, k=k))


@bp.route("/api/compare", methods=["POST"])
def compare():
    data = json_body()
    for name in ("a", "b"):
        if not isinstance(data.get(name), dict):
            raise ApiError(400, f"'{name}' must be an article object with 'title' and 'body'", field=name)
    return jsonify(rec().compare(data["a"], data["b"]))


@bp.route("/api/articles/<path:article_id>", methods=["GET"])
def article(article_id: str):
    return jsonify(rec().article_info(article_id))


@bp.route("/api/articles/<path:article_id>/choices", methods=["GET"])
def choices_get(article_id: str):
    """The editors' pinned and excluded stories for an article's list (admin token)."""
    _require_token()
    return jsonify(rec().choices(article_id))


@bp.route("/api/articles/<path:article_id>/choices", methods=["PUT"])
def choices_put(article_id: str):
    """Replace an article's pinned stories (in order) and excluded ones; checked whole, stored at once."""
    _require_token()
    data = json_body()
    unknown = sorted(set(data) - {"pins", "excludes"})
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}: send 'pins' and 'excludes'", field=unknown[0])
    return jsonify(rec().set_choices(article_id, data.get("pins", []), data.get("excludes", [])))


@bp.route("/api/articles/<path:article_id>/choices", methods=["DELETE"])
def choices_delete(article_id: str):
    _require_token()
    return jsonify(rec().set_choices(article_id, [], []))


@bp.route("/api/search", methods=["GET"])
def search():
    q = (request.args.get("q") or "").strip()
    limit = int_param(request.args, "limit", 10, 1, 50)
    if not q:
        raise ApiError(400, "give 'q', words of a title", field="q")
    return jsonify({"query": q, "items": rec().search_titles(q, limit)})


@bp.route("/api/groups", methods=["GET"])
def groups():
    kind = request.args.get("kind", "duplicate")
    limit = int_param(request.args, "limit", 50, 1, 1000)
    return jsonify({"kind": kind, "groups": rec().groups(kind, limit=limit)})


@bp.route("/api/articles", methods=["POST"])
def add_articles():
    _require_token()
    data = json_body()
    items = data.get("articles")
    if not isinstance(items, list) or not items:
        raise ApiError(400, "'articles' must be a non-empty list of article objects", field="articles")
    if len(items) > 1000:
        raise ApiError(400, "at most 1000 articles per request", field="articles")
    r = rec()
    parsed = []
    for i, item in enumerate(items):
        try:
            parsed.append(r.parse(item, require_id=True))
        except BadInput as exc:
            raise ApiError(400, f"articles[{i}]: {exc.message}", field=f"articles[{i}].{exc.field or 'id'}") from None
    report = r.add(parsed)
    return jsonify(report.to_dict()), 201


@bp.route("/api/articles/<path:article_id>", methods=["DELETE"])
def delete_article(article_id: str):
    _require_token()
    r = rec()
    r.snapshot.key_of_id(article_id)  # 404 when unknown
    report = r.delete([article_id])
    return jsonify(report.to_dict())


@bp.route("/api/reload", methods=["POST"])
def reload():
    _require_token()
    r = rec()
    changed = r.maybe_reload(force=True)
    return jsonify({"reloaded": changed, "snapshot": r.snapshot.name})


def _ticketed(result: dict) -> dict:
    """A related answer with each item's ticket (clicks.Tickets): what a click or view beacon sends back;
    and the site's fallback image, when it has one."""
    tickets = current_app.extensions["newsrec.tickets"]
    from_id = (result.get("query") or {}).get("id") or ""
    for item in result["items"]:
        item["ticket"] = tickets.of(from_id, item["id"])
    if cfg().fallback_image:
        result["fallback_image"] = cfg().fallback_image
    return result


def _unlisted(from_id: str, items: list[str], given: object) -> None:
    """A 400 unless each item comes with the ticket a list on `from_id` gave it."""
    tickets = current_app.extensions["newsrec.tickets"]
    if not isinstance(given, list) or len(given) != len(items) or not all(
            tickets.valid(from_id, to_id, t) for to_id, t in zip(items, given)):
        raise ApiError(400, "each item needs the ticket the related list gave it on this page: only items a list "
                            "served are counted", field="ticket")


@bp.route("/api/click", methods=["POST"])
def click():
    data = json_body(allow_text_plain=True)  # sendBeacon posts text/plain to avoid a CORS preflight
    to_id = data.get("to")
    from_id = data.get("from") or ""
    if not isinstance(to_id, str) or not to_id or len(to_id) > 512:
        raise ApiError(400, "'to' must be the clicked article's id", field="to")
    if not isinstance(from_id, str) or len(from_id) > 512:
        raise ApiError(400, "'from' must be a string", field="from")
    position = int_param(data, "position", 0, 0, 1000)
    _unlisted(from_id, [to_id], [data.get("ticket")])
    current_app.extensions["newsrec.clicks"].record(from_id, to_id, position)
    return "", 204


@bp.route("/api/view", methods=["POST"])
def view():
    """A reader saw a related list (the widget's beacon when the list scrolls into view)."""
    data = json_body(allow_text_plain=True)
    from_id = data.get("from") or ""
    items = data.get("items")
    if not isinstance(from_id, str) or len(from_id) > 512:
        raise ApiError(400, "'from' must be a string", field="from")
    if (not isinstance(items, list) or not items or len(items) > cfg().max_k
            or not all(isinstance(i, str) and 0 < len(i) <= 512 for i in items)):
        raise ApiError(400, f"'items' must be the shown articles' ids, 1 to {cfg().max_k} of them", field="items")
    _unlisted(from_id, items, data.get("tickets"))
    current_app.extensions["newsrec.clicks"].viewed(from_id, items)
    return "", 204


@bp.route("/api/stats", methods=["GET"])
def stats():
    days = int_param(request.args, "days", 30, 1, 3660)
    return jsonify({"index": rec().stats(), "clicks": current_app.extensions["newsrec.clicks"].stats(days=days)})


@bp.route("/api/<path:_rest>", methods=["OPTIONS"])
def preflight(_rest: str):
    return "", 204


@bp.route("/openapi.json", methods=["GET"])
def openapi():
    from .openapi import document

    return jsonify(document())
