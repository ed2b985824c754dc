"""HTML pages: the demo page, article pages, the /embed fragment, the admin page and widget.js."""
from __future__ import annotations

import functools
import re
from pathlib import Path

from flask import Blueprint, Response, current_app, render_template, request, send_from_directory

from recommender import ArticleNotFound, IndexNotReady, related_link

from .api import cfg, rank_params, rec
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
    response = Response(render_template("embed.html", result=result, heading=args.get("heading", "Related stories")))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/admin")
def admin():
    ok, why = check_token(cfg())
    if not ok and request.authorization and request.authorization.password:
        import hmac

        ok = bool(cfg().token) and hmac.compare_digest(request.authorization.password.encode(), cfg().token.encode())
    if not ok:
        response = Response(f"admin needs the token: {why}\n", status=401 if cfg().token else 403, mimetype="text/plain")
        if cfg().token:
            response.headers["WWW-Authenticate"] = 'Basic realm="newsrec admin"'
        return response
    if not _index_ready():
        raise IndexNotReady("no index loaded")
    r = rec()
    stats = r.stats()
    groups = r.groups("duplicate", limit=30)
    story_groups = r.groups("story", limit=30)
    hist = r.nearest_histogram()
    return render_template("admin.html", stats=stats, groups=groups, story_groups=story_groups, hist=hist)


@bp.route("/widget.js")
def widget():
    response = send_from_directory(current_app.static_folder, "widget.js", mimetype="application/javascript")
    response.headers["Cache-Control"] = "public, max-age=600"
    return response


