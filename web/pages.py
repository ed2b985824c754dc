"""HTML pages: the demo page, article pages, the /embed fragment, the admin page and widget.js."""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
import threading
from pathlib import Path
from urllib.parse import quote
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from recommender import (ArticleNotFound, BadInput, IndexNotReady, NewsrecError, ingest_runs, related_link,
                         shared_passages)

from .api import cfg, int_param, rank_params, rec
from .errors import ApiError
from .security import check_token

bp = Blueprint("pages", __name__)

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
SAMPLE_FILE = DEMO_DIR / "scraped" / "sample-sheinbaum.txt"
SAMPLE_ID = "sample-sheinbaum"


@functools.lru_cache(maxsize=1)
def _sample_blocks() -> tuple[str, list[dict]]:
    """The scraped sample as the publisher showed it: a title and blocks, ALSO READ lines as links
    (read once per process: the file ships with the code)."""
    if not SAMPLE_FILE.exists():
        return "", []
    lines = [l.strip() for l in SAMPLE_FILE.read_text(encoding="utf-8").splitlines() if l.strip()]
    title = lines[1] if len(lines) > 1 else ""
    blocks = []
    for line in lines[2:]:
        link = related_link(line)
        if link:
            blocks.append({"kind": "also-read", "label": link[0], "text": link[1]})
        elif len(line.split()) <= 9 and not line.endswith((".", "”", "\"", ":")):
            blocks.append({"kind": "subhead", "text": line})
        else:
            blocks.append({"kind": "p", "text": line})
    return title, blocks


def _index_ready() -> bool:
    return rec().current is not None


@bp.route("/")
def demo():
    title, blocks = _sample_blocks()
    indexed = False
    if _index_ready():
        try:
            rec().snapshot.key_of_id(SAMPLE_ID)
            indexed = True
        except ArticleNotFound:
            indexed = False
    stats = rec().stats() if _index_ready() else None
    return render_template("demo.html", title=title, blocks=blocks, article_id=SAMPLE_ID if indexed else "",
                           stats=stats)


@bp.route("/article/<path:article_id>")
def article_page(article_id: str):
    info = rec().article_info(article_id)
    paragraphs = [p for p in re.split(r"\n\s*\n|\n", info["body"]) if p.strip()]
    return render_template("article.html", article=info, paragraphs=paragraphs)


@bp.route("/embed")
def embed():
    args = request.args
    article_id, url = args.get("id"), args.get("url")
    if not article_id and not url:
        raise ApiError(400, "give 'id' or 'url'", field="id")
    params = rank_params(args)
    result = rec().related(params, id=article_id, url=url)
    response = Response(render_template("embed.html", result=result, heading=args.get("heading", "Related stories"),
                                        fallback_image=cfg().fallback_image))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _admin_page_refusal() -> Response | None:
    """_admin_refusal, then IndexNotReady when no index is loaded: what every admin page of the index
    checks first."""
    refusal = _admin_refusal()
    if refusal is None and not _index_ready():
        raise IndexNotReady("no index loaded")
    return refusal


def _admin_refusal() -> Response | None:
    """None when the request carries the admin token (bearer, or basic auth with it as password)."""
    ok, why = check_token(cfg())
    if not ok and request.authorization and request.authorization.password:
        ok = bool(cfg().token) and hmac.compare_digest(request.authorization.password.encode(), cfg().token.encode())
    if ok:
        return None
    if not cfg().token:
        why = ("this server was started without a token, so its admin pages are closed: restart it with "
               "NEWSREC_TOKEN set (for example NEWSREC_TOKEN=$(openssl rand -hex 16) scripts/demo), then open "
               "/admin and give that token as the password")
    response = Response(f"The admin pages need the token: {why}\n", status=401 if cfg().token else 403,
                        mimetype="text/plain")
    if cfg().token:
        response.headers["WWW-Authenticate"] = 'Basic realm="newsrec admin"'
    return response


GROUPS_PER_PAGE = 50
AGREEMENT_SAMPLE = 300  # articles with ALSO READ links scored for the per-source agreement


def _site_agreement(r) -> dict:
    """Per-source agreement with the site's own ALSO READ links for the live snapshot. It runs a related
    query per sampled article, so it is computed once per snapshot in a background thread and the
    page says so until it is ready (the page itself stays fast)."""

    def start() -> dict:
        box: dict = {"result": None, "error": None}

        def run() -> None:
            try:
                box["result"] = r.site_link_agreement(5, sample=AGREEMENT_SAMPLE)
            except NewsrecError as exc:
                box["error"] = exc.message

        threading.Thread(target=run, name="site-agreement", daemon=True).start()
        return box

    return r.snapshot.memo("site-agreement", start)


def _histogram_svg(counts: list[int], edges: list[float], bars: dict[str, float]) -> dict:
    """Bar geometry (400 x 100 units) for a histogram, and where each configured bar falls on it."""
    top = max(counts, default=0) or 1
    width = 400 / max(1, len(counts))
    return {
        "rects": [{"x": round(i * width, 2), "w": round(width - 1, 2), "h": round(100 * c / top, 1), "count": c,
                   "lo": edges[i], "hi": edges[i + 1]} for i, c in enumerate(counts)],
        "lines": [{"x": round(400 * value, 1), "label": name, "value": value} for name, value in bars.items()],
        "total": sum(counts),
        "top": max(counts, default=0),  # the count axis runs from 0 to this
    }


# The index's numbers as an editor reads them (the JSON API keeps the keys: GET /api/stats).
STAT_LABELS = {
    "snapshot": "Snapshot", "count": "Articles", "model": "Model", "backend": "Runtime", "dim": "Vector size",
    "index_type": "Search index", "built_at": "Built", "duplicate_groups": "Articles copied (groups of copies)",
    "story_groups": "Stories told by more than one outlet",
}


def _stat_rows(stats: dict) -> list[tuple[str, Any]]:
    """(label, value) for the admin page: the known labels, else the key in words."""
    return [(STAT_LABELS.get(k, k.replace("_", " ").capitalize()), v) for k, v in stats.items()]


@bp.route("/admin")
def admin():
    refusal = _admin_page_refusal()
    if refusal is not None:
        return refusal
    r = rec()
    kind = request.args.get("kind", "duplicate")
    sort = request.args.get("sort", "size")
    page = int_param(request.args, "page", 1, 1, 100_000)
    groups = r.group_listing(kind, sort=sort, offset=(page - 1) * GROUPS_PER_PAGE, limit=GROUPS_PER_PAGE)
    hist = r.score_histograms()
    charts = [("Each article's nearest neighbour", _histogram_svg(hist["nearest"], hist["edges"], hist["bars"]))]
    charts += [(f"Stored links: {level}", _histogram_svg(counts, hist["edges"], hist["bars"]))
               for level, counts in hist["links"].items()]
    return render_template("admin.html", stats=_stat_rows(r.stats()), groups=groups, charts=charts, bars=hist["bars"],
                           agreement=_site_agreement(r), builds=r.index_dir.history(20),
                           ingests=ingest_runs(r.index_dir.path, 20), pages=-(-groups["total"] // GROUPS_PER_PAGE),
                           page=page)


def _bars(values: list[float], height: int = 100) -> list[dict]:
    """Bar heights (0-height) for an inline SVG bar chart of these values."""
    top = max((v for v in values if v), default=0) or 1
    return [{"value": v, "height": round(height * (v or 0) / top, 1)} for v in values]


@bp.route("/admin/readers")
def admin_readers():
    """Readers' numbers: click-through by position and by day, most clicked, shown but never clicked."""
    refusal = _admin_refusal()
    if refusal is not None:
        return refusal
    days = int_param(request.args, "days", 30, 1, 3660)  # as GET /api/stats reads it
    stats = current_app.extensions["newsrec.clicks"].stats(days=days)
    titles = {}
    if _index_ready():
        ids = [a["id"] for a in stats["top_articles"]] + [a["id"] for a in stats["shown_never_clicked"]]
        titles = rec().titles(ids)
    pos_bars = _bars([p["ctr"] or 0 for p in stats["by_position"]])
    day_bars = _bars([d["ctr"] or 0 for d in stats["by_day"]])
    return render_template("readers.html", readers=stats, titles=titles, pos_bars=pos_bars, day_bars=day_bars,
                           stats=rec().stats() if _index_ready() else None)


CSRF_COOKIE = "newsrec_csrf"
MAX_DRAFT_CHARS = 200_000
VERDICTS = {"exact": "exact", "near": "near", "same-story": "same-story", "unique": "new"}


def _looks_like_html(text: str) -> bool:
    return bool(re.search(r"<(p|div|article|body|html|h[1-6]|br|span|section)\b", text[:5000], re.IGNORECASE))


def _form_page(template: str, status: int = 200, **context) -> Response:
    """An admin page with forms, with a fresh CSRF token in the forms and in a same-site cookie (double
    submit); never cached (nothing pasted or chosen stays in a cache)."""
    token = secrets.token_urlsafe(24)
    response = Response(render_template(template, csrf=token, **context), status=status)
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/admin",
                        secure=request.is_secure)
    response.headers["Cache-Control"] = "no-store"
    return response


def _csrf_ok() -> bool:
    """Whether a posted form carries the token its page's cookie holds."""
    sent, kept = request.form.get("csrf", ""), request.cookies.get(CSRF_COOKIE, "")
    return bool(sent and kept and hmac.compare_digest(sent.encode(), kept.encode()))


def _check_page(status: int = 200, **context) -> Response:
    return _form_page("check.html", status, stats=rec().stats() if _index_ready() else None,
                      max_chars=MAX_DRAFT_CHARS, **context)


@bp.route("/admin/check", methods=["GET", "POST"])
def admin_check():
    """Check a draft for copies before publishing: verdict, matches side by side, what to link."""
    refusal = _admin_refusal()
    if refusal is not None:
        return refusal
    if request.method == "GET":
        # A draft is checked before it is published: it is dated the day it goes out (today unless the
        # editor changes it), so a match is judged by the time apart as well as by its text; cleared, the
        # draft is judged on its text alone.
        return _check_page(published=dt.datetime.now(dt.timezone.utc).date().isoformat())
    wants_json = request.accept_mimetypes.best == "application/json"
    if not _csrf_ok():
        if wants_json:
            raise ApiError(403, "the form's CSRF token is missing or does not match: reload the page", field="csrf")
        return _check_page(403, error="This form had expired or came from another page. It has been reloaded: paste again.")
    headline = request.form.get("headline", "").strip()
    text = request.form.get("text", "")
    published = request.form.get("published", "").strip()
    problem, status, field = None, 200, None
    if not headline and not text.strip():
        problem, status, field = "Paste a headline and the draft's text or HTML.", 400, "text"
    elif len(text) + len(headline) > MAX_DRAFT_CHARS:
        problem, status, field = (f"The paste is {len(text) + len(headline):,} characters; the check reads at most "
                                  f"{MAX_DRAFT_CHARS:,}."), 413, "text"
    if problem:
        if wants_json:
            raise ApiError(status, problem, field=field)
        return _check_page(status, error=problem, headline=headline, text=text, published=published)
    if not _index_ready():
        raise IndexNotReady("no index loaded")
    article = {"title": headline, "html" if _looks_like_html(text) else "body": text,
               **({"published": published} if published else {})}
    r = rec()
    try:
        parsed = r.parse(article)
        found = r.duplicates(article, k=10)
        related = r.related(r.params(k=5), article=article)
    except BadInput as exc:
        if wants_json:
            raise ApiError(400, exc.message, field=exc.field) from None
        return _check_page(400, error=exc.message, headline=headline, text=text, published=published)
    matches = []
    for m in found["matches"]:
        body = r.article_info(m["id"])["body"]
        matches.append({**m, "draft": shared_passages(parsed.body, body), "original": shared_passages(body, parsed.body)})
    result = {"verdict": VERDICTS.get(found["verdict"], found["verdict"]), "matches": matches,
              "also_read": list(parsed.also_read), "related": related["items"], "lang": found.get("lang"),
              "published": parsed.when.text or None}
    if wants_json:
        return jsonify({**result, "matches": [{k: v for k, v in m.items() if k not in ("draft", "original")}
                                              for m in matches]})
    return _check_page(headline=headline, text=text, published=published, result=result, draft=parsed)


# --- an article's list, as its editors choose it ---------------------------------------------

ARTICLE_ACTIONS = ("pin", "unpin", "exclude", "unexclude", "up")


def _article_admin_page(article_id: str, status: int = 200, error: str | None = None) -> Response:
    """The editors' page of one article: its list as readers see it, its pins and excludes, and the stories
    its own ALSO READ links point at (offered as pins), with a fresh CSRF token for the forms."""
    r = rec()
    choices = r.choices(article_id)
    listed = r.related(r.params(), id=article_id)["items"]
    pinned = {p["id"] for p in choices["pins"]}
    excluded = {x["id"] for x in choices["excludes"]}
    offered = [s for s in r.linked_stories(article_id) if s["id"] not in pinned | excluded]
    return _form_page("admin_article.html", status, article=choices, items=listed, offered=offered, error=error,
                      max_k=cfg().max_k)


@bp.route("/admin/articles")
def admin_articles():
    """Find an article by words of its title; the articles whose lists editors have chosen."""
    refusal = _admin_page_refusal()
    if refusal is not None:
        return refusal
    r = rec()
    q = (request.args.get("q") or "").strip()
    found = r.search_titles(q, 20) if q else []
    chosen = r.editorial.articles(100)
    titles = r.titles([a for a, _, _ in chosen])
    return render_template("admin_articles.html", q=q, found=found,
                           chosen=[{"id": a, "title": titles.get(a), "pins": p, "excludes": x} for a, p, x in chosen])


@bp.route("/admin/article/<path:article_id>", methods=["GET", "POST"])
def admin_article(article_id: str):
    refusal = _admin_page_refusal()
    if refusal is not None:
        return refusal
    if request.method == "GET":
        return _article_admin_page(article_id)
    if not _csrf_ok():
        return _article_admin_page(article_id, 403, "This form had expired or came from another page; it has been "
                                                    "reloaded: try again.")
    action, other = request.form.get("action", ""), request.form.get("id", "").strip()
    if action not in ARTICLE_ACTIONS or not other:
        return _article_admin_page(article_id, 400, "Choose a story and what to do with it.")
    r = rec()
    current = r.editorial.get(article_id)
    pins, excludes = list(current.pins), list(current.excludes)
    if action == "pin" and other not in pins:
        pins.append(other)
        excludes = [x for x in excludes if x != other]
    elif action == "unpin":
        pins = [p for p in pins if p != other]
    elif action == "up" and other in pins and pins.index(other) > 0:
        at = pins.index(other)
        pins[at - 1], pins[at] = pins[at], pins[at - 1]
    elif action == "exclude" and other not in excludes:
        excludes.append(other)
        pins = [p for p in pins if p != other]
    elif action == "unexclude":
        excludes = [x for x in excludes if x != other]
    try:
        r.set_choices(article_id, pins, excludes)
    except BadInput as exc:
        return _article_admin_page(article_id, 400, exc.message)
    response = Response(status=303)  # after a change, a GET: reloading the page does not post again
    response.headers["Location"] = f"/admin/article/{quote(article_id, safe='')}"
    return response


def minified(source: str) -> str:
    """widget.js as served: its lines without their indentation, line comments and inner block comments
    (the opening /*! ... */ with the options stays). The file keeps its comments for whoever reads it."""
    out, in_comment = [], False
    for n, line in enumerate(source.splitlines()):
        text = line.strip()
        if in_comment or (n and text.startswith("/*") and not text.startswith("/*!")):
            in_comment = "*/" not in text
            text = "" if in_comment else text.split("*/", 1)[1].strip()  # code after a closed comment stays
        if text and not text.startswith("//"):
            out.append(text)
    return "\n".join(out) + "\n"


@functools.lru_cache(maxsize=2)
def _widget_body(path: str, mtime: float) -> tuple[bytes, str]:
    body = minified(Path(path).read_text(encoding="utf-8")).encode("utf-8")
    return body, hashlib.blake2b(body, digest_size=12).hexdigest()


@bp.route("/widget.js")
def widget():
    path = Path(current_app.static_folder) / "widget.js"
    body, etag = _widget_body(str(path), path.stat().st_mtime)
    response = Response(body, mimetype="application/javascript")
    response.set_etag(etag)
    response.headers["Cache-Control"] = "public, max-age=600"
    return response.make_conditional(request)


