"""`newsrec`: the one command-line entry point, with subcommands."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Iterator, Sequence

from recommender.config import Config
from recommender.errors import NewsrecError

__all__ = ["main"]


def _config(args: argparse.Namespace) -> Config:
    overrides = {}
    for name in ("index", "model", "backend", "max_tokens", "batch_size", "token"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Config.load(overrides)


def _embedder(config: Config):
    from recommender.embed.embedding import load_embedder

    return load_embedder(config)


def _print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _recommender(config: Config, *, read_only: bool = False):
    from recommender.facade import Recommender

    return Recommender(config, read_only=read_only)


def _read(args: argparse.Namespace, rec) -> Iterator:
    from recommender.text.articles import read_articles

    return (a for path in args.input for a in read_articles(path, profile=rec.profile))


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _articles(args: argparse.Namespace, rec):
    """The input articles, cleaned here as they are read, or prepared on a Ray cluster (--engine ray)."""
    if args.engine == "ray":
        from recommender.index.distributed import prepare_on_ray

        # The actors run the driver's runtime (an `auto` choice is made once, here), so every vector of the
        # index comes from one runtime whichever CPU each node has.
        config = rec.config.replace(backend=rec.embedder.backend)
        return prepare_on_ray(args.input, config, rec.embedder.dim, address=args.ray_address,
                              actors=args.actors, actor_gpus=args.actor_gpus, progress=not args.quiet, log=_log,
                              folder=rec.index_dir.new_rows_folder())
    return _read(args, rec)


def cmd_build(args: argparse.Namespace) -> int:
    rec = _recommender(_config(args))
    report = rec.build(_articles(args, rec), progress=not args.quiet, log=_log)
    print(f"built {report.count} articles into {rec.index_dir.path} (snapshot {report.snapshot}) "
          f"in {report.seconds:.1f}s: {report.docs_per_second:.1f} docs/s end to end "
          f"({report.added / report.embed_seconds if report.embed_seconds else 0:.1f} docs/s "
          f"{'through Ray: read, clean, embed, MinHash' if args.engine == 'ray' else 'embedding'})",
          file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    _print_json(report.to_dict())
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    rec = _recommender(_config(args))
    _print_json(rec.add(_articles(args, rec), progress=not args.quiet).to_dict())
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    report = _recommender(_config(args)).delete(args.id)
    out = report.to_dict()
    out["not_found"] = report.skipped
    _print_json(out)
    return 0


def _page_as_record(src, name: str):
    """The lines of a JSONL input as they are; a page saved as a file (.txt, .html, or any text that does
    not start with a JSON object) as one record line of its own: {"id": file name, "text"|"html": ...}."""
    first = src.readline()
    suffix = os.path.splitext(name)[1].lower()
    if first.lstrip().startswith("{") and suffix not in (".txt", ".html", ".htm"):
        yield first
        yield from src
        return
    content = first + src.read()
    kind = "html" if suffix in (".html", ".htm") or content.lstrip()[:1] == "<" else "text"
    yield json.dumps({"id": os.path.splitext(os.path.basename(name))[0] if name != "-" else "", kind: content})


def cmd_clean(args: argparse.Namespace) -> int:
    from recommender.text.cleaning import clean, clean_html, load_profile

    config = _config(args)
    profile = load_profile(config.site_patterns)
    try:
        src = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    except OSError as exc:
        raise NewsrecError(f"cannot read {args.input}: {exc.strerror}") from None
    dst = sys.stdout if args.output == "-" else open(args.output + ".tmp", "w", encoding="utf-8")
    try:
        lines = _page_as_record(src, args.input)
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise NewsrecError(f"line {n} is not JSON: {exc.msg}") from None
            if not isinstance(record, dict):
                raise NewsrecError(f"line {n}: each line must be a JSON object with 'id' and 'text' or 'html'")
            if isinstance(record.get("html"), str) and not record.get("text"):
                result = clean_html(record["html"], profile)
            else:
                text = record.get("text", record.get("body", record.get("raw_text", "")))
                if not isinstance(text, str):
                    raise NewsrecError(f"line {n}: 'text' must be a string")
                result = clean(text, profile)
            dst.write(json.dumps({"id": record.get("id"), **result.to_dict()}, ensure_ascii=False) + "\n")
    except UnicodeDecodeError:
        raise NewsrecError(f"{args.input} is not UTF-8 text: give JSON lines, a saved page or text") from None
    finally:
        if src is not sys.stdin:
            src.close()
        if dst is not sys.stdout:
            dst.close()
            if sys.exc_info()[0] is not None:  # a failed run leaves no half-written output
                os.remove(args.output + ".tmp")
    if dst is not sys.stdout:
        os.replace(args.output + ".tmp", args.output)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    config = _config(args)
    os.environ["NEWSREC_INDEX"] = config.index
    for name in ("model", "backend", "token"):
        if getattr(args, name, None) is not None:
            os.environ["NEWSREC_" + name.upper()] = str(getattr(args, name))
    # One BLAS/torch thread per worker: two per process on 2 cores measured 5x slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from web.serving import run_gunicorn

    print(f"serving {config.index} at http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    return run_gunicorn(args.host, args.port, workers=args.workers, threads=args.threads)


def cmd_dups(args: argparse.Namespace) -> int:
    rec = _recommender(_config(args), read_only=True)
    rec.load()
    groups = rec.groups(args.kind, min_size=args.min_size, limit=args.limit)
    if args.format == "json":
        _print_json({"kind": args.kind, "groups": groups})
    else:
        for g in groups:
            print(f"{g['size']:>4}  {g['canonical']}")
            for m in g["members"]:
                print(f"      {m['published'] or '----------'}  {m['id']:<20}  {m['title'][:70]}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from pathlib import Path

    rec = _recommender(_config(args), read_only=True)
    rec.load()
    out = {**rec.stats(), "manifest": rec.snapshot.manifest}
    if (Path(rec.index_dir.path) / "ingest.sqlite").exists():
        from recommender.ingest import IngestState

        state = IngestState(rec.index_dir.path)
        try:
            out["ingest"] = state.summary()
        finally:
            state.close()
    _print_json(out)
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from recommender.ingest import Politeness, Source, run_forever, run_ingest

    sources = ([Source("feed", u) for u in args.feed or []] + [Source("sitemap", u) for u in args.sitemap or []]
               + [Source("wordpress", u) for u in args.wordpress or []] + [Source("site", u) for u in args.site or []])
    if not sources:
        raise NewsrecError("ingest needs at least one source: --feed, --sitemap, --wordpress or --site URL")
    politeness = Politeness(rate=args.rate, timeout=args.timeout, max_bytes=args.max_bytes, workers=args.workers,
                            robots=not args.ignore_robots)
    rec = _recommender(_config(args))
    quiet = args.quiet or not sys.stderr.isatty()
    log = _log

    def once():
        report = run_ingest(rec, sources, politeness=politeness, prune=args.prune, allowed_hosts=args.allow_host or (),
                            progress=not quiet)
        print(report.line(), file=sys.stderr)
        if args.json:
            _print_json(report.to_dict())
        return report

    if not args.every:
        report = once()
        return 1 if report.source_errors and not report.listed else 0
    for _ in run_forever(args.every, once, log):
        sys.stdout.flush()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from recommender.evaluation import runs as evaluation

    config = _config(args)
    if args.task != "site-links" and not args.data:
        raise NewsrecError(f"eval {args.task} needs --data FILE")
    if args.task == "cleaning":
        result = evaluation.eval_cleaning(args.data, limit=args.limit, html=not args.text_only)
    elif args.task == "same-story":
        result = evaluation.eval_same_story(args.data, _embedder(config), config)
    elif args.task == "related":
        result = evaluation.eval_related(args.data, _embedder(config), config, related=args.related)
    elif args.task == "site-links":
        result = evaluation.eval_site_links(config.index, _embedder(config), config)
    elif args.task == "dups":
        result = evaluation.eval_dups(args.data, _embedder(config), config, originals=args.limit or 1000)
    else:
        raise NewsrecError(f"unknown evaluation {args.task!r}")
    _print_json(result)
    return 0


def _add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="where articles are cleaned, embedded and MinHashed: this process (default) or a Ray "
                        "cluster (needs the ray extra; reads JSONL and folders)")
    p.add_argument("--ray-address", dest="ray_address",
                   help="the Ray cluster's head (host:port, 'auto' or ray://...); default: Ray on this machine alone")
    p.add_argument("--actors", type=int, help="Ray actors cleaning and embedding (default: one per CPU of the cluster)")
    p.add_argument("--actor-gpus", dest="actor_gpus", type=float, default=0.0,
                   help="GPUs each Ray actor asks for (with NEWSREC_BACKEND=torch NEWSREC_DEVICE=cuda)")


def _add_common(p: argparse.ArgumentParser, *, index: bool = True, model: bool = True) -> None:
    if index:
        p.add_argument("--index", help="index directory (default: $NEWSREC_INDEX or index/demo)")
    if model:
        p.add_argument("--model", help="sentence-transformers model path or name (default: bundled all-MiniLM-L6-v2)")
        p.add_argument("--backend", choices=["auto", "onnx", "openvino", "onnx-fp32", "torch", "hash"], help="embedding runtime (default auto: the one the index was built with, else the fastest on this CPU whose vectors agree with the full-precision model's)")
        p.add_argument("--max-tokens", dest="max_tokens", type=int, help="tokens of each article the model reads")
        p.add_argument("--batch-size", dest="batch_size", type=int, help="articles per embedding batch")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="newsrec", description="Related stories and near-duplicates for news sites.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build an index from JSONL, CSV or a folder of .txt/.html files")
    p.add_argument("--input", required=True, action="append",
                   help="articles: .jsonl / .csv (optionally .gz) or a folder; repeat to combine several")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_engine(p)
    _add_common(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("add", help="add or replace articles in an index (new snapshot, nothing re-embedded)")
    p.add_argument("--input", required=True, action="append", help="articles to add (repeatable)")
    p.add_argument("--quiet", action="store_true")
    _add_engine(p)
    _add_common(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("delete", help="delete articles from an index by id")
    p.add_argument("--id", action="append", required=True, help="article id (repeat for several)")
    _add_common(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("clean", help="clean scraped text/HTML: JSONL (id + text or html) in, JSONL out")
    p.add_argument("--input", required=True, help="JSONL file (id + text/html a line), a saved page (.txt or .html), "
                                                  "or - for stdin")
    p.add_argument("--output", default="-", help="JSONL file, or - for stdout (the default)")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("serve", help="serve the JSON API, widget and demo page (gunicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--token", help="bearer token for write endpoints and /admin (default: $NEWSREC_TOKEN)")
    _add_common(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("dups", help="list the duplicate or story groups of an index")
    p.add_argument("--kind", choices=["duplicate", "story"], default="duplicate")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--min-size", dest="min_size", type=int, default=2)
    p.add_argument("--limit", type=int, default=100)
    _add_common(p, model=False)
    p.set_defaults(func=cmd_dups)

    p = sub.add_parser("info", help="show an index's manifest and counts")
    _add_common(p, model=False)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("ingest", help="fetch new and changed articles from feeds, sitemaps or the WordPress API")
    p.add_argument("--feed", action="append", help="an RSS or Atom feed URL (repeatable)")
    p.add_argument("--sitemap", action="append", help="a sitemap or sitemap index URL; news sitemaps' dates are read")
    p.add_argument("--wordpress", action="append", help="a WordPress site's base URL (its /wp-json/wp/v2/posts)")
    p.add_argument("--site", action="append", help="a homepage: its feeds, sitemaps and WordPress API are found")
    p.add_argument("--prune", action="store_true",
                   help="remove articles a sitemap or WordPress no longer lists and whose page answers 404/410")
    p.add_argument("--every", type=float, default=0, help="keep running: one ingest every SECONDS")
    p.add_argument("--rate", type=float, default=1.0, help="requests per second per host (default 1; 0: no limit)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds before a request gives up (default 15)")
    p.add_argument("--max-bytes", dest="max_bytes", type=int, default=5_000_000, help="largest page read (default 5 MB)")
    p.add_argument("--workers", type=int, default=4, help="pages fetched and cleaned at once (default 4)")
    p.add_argument("--allow-host", dest="allow_host", action="append",
                   help="another host articles and redirects may be on (the sources' hosts always are)")
    p.add_argument("--ignore-robots", dest="ignore_robots", action="store_true", help="do not read robots.txt (your own site only)")
    p.add_argument("--json", action="store_true", help="print each run's report as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar (none is shown when stderr is not a terminal)")
    _add_common(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("eval", help="score quality on labelled data; prints JSON")
    p.add_argument("task", choices=["cleaning", "same-story", "dups", "related", "site-links"])
    p.add_argument("--related", help="related: the editors' links file for a Wikinews corpus (default: beside --data)")
    p.add_argument("--data", help="labelled data file (all tasks but site-links, which reads --index)")
    p.add_argument("--limit", type=int, help="score only the first N rows")
    p.add_argument("--text-only", action="store_true", help="cleaning: skip the HTML comparison with trafilatura")
    _add_common(p)
    p.set_defaults(func=cmd_eval)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NewsrecError as exc:
        print(f"newsrec {args.command}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
