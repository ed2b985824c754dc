"""`newsrec ingest` end to end from a local server: sitemap listing, fetch, clean (HTML path), embed,
add. The site is the shipped demo corpus (real Wikinews articles) rendered as article pages with
site furniture, served on 127.0.0.1; the index already holds the rest of the corpus, as a live
site's would. Prints JSON.

    python bench/ingest_speed.py [--pages 600] [--workers 4] [--model english|multilingual]
"""
from __future__ import annotations

import argparse
import gzip
import html
import http.server
import json
import tempfile
import threading
import time

from _common import ROOT, machine

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} | Demo News</title></head>
<body><nav><a href="/">Home</a> <a href="/world/">World</a> <a href="/sport/">Sport</a></nav><article><h1>{title}</h1>
{paras}<p>ALSO READ: <a href="/other">Another story entirely</a></p><p>Kindly Share This Story</p></article>
<footer>Demo News. All rights reserved.</footer></body></html>"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=600)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--model", default="")
    args = ap.parse_args()
    docs = [json.loads(line) for line in gzip.open(ROOT / "demo" / "wikinews_demo.jsonl.gz", "rt", encoding="utf-8")]
    new, old = docs[: args.pages], docs[args.pages:]
    pages = {}
    for i, d in enumerate(new):
        paras = "".join(f"<p>{html.escape(p)}</p>" for p in d["body"].split("\n\n") if p.strip())
        pages[f"/a/{i}.html"] = PAGE.format(title=html.escape(d["title"]), paras=paras).encode("utf-8")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            if self.path == "/sitemap.xml":
                locs = "".join(f"<url><loc>{base}{p}</loc><lastmod>2024-03-01</lastmod></url>" for p in pages)
                body, ctype = f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'.encode(), "application/xml"
            elif self.path in pages:
                body, ctype = pages[self.path], "text/html; charset=utf-8"
            else:
                body, ctype = b"", "text/plain"
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()

    from recommender import Recommender
    from recommender.text.articles import parse_article
    from recommender.config import Config
    from recommender.ingest import Politeness, Source, run_ingest

    with tempfile.TemporaryDirectory() as tmp:
        config = Config.load({"index": f"{tmp}/idx", "reload_interval": 0, **({"model": args.model} if args.model else {})})
        rec = Recommender(config)
        rec.build([parse_article(d) for d in old])  # the site's archive, already indexed
        t0 = time.time()
        report = run_ingest(rec, [Source("sitemap", base + "/sitemap.xml")],
                            politeness=Politeness(rate=0, workers=args.workers, robots=False))
        seconds = time.time() - t0
    server.shutdown()
    print(json.dumps({"bench": "ingest_speed", **machine(), "model": args.model or "english", "pages": args.pages,
                      "workers": args.workers, "new": report.new, "failed": report.failed, "skipped": report.skipped,
                      "seconds": round(seconds, 2), "new_pages_per_second": round(report.new / seconds, 1),
                      "index_articles_after": len(old) + report.new}, indent=2))


if __name__ == "__main__":
    main()
