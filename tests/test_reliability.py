"""Crash safety and hot swaps with real processes: kill -9 a build mid-way; rebuild and update while
a bounded load generator hits a running server."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from recommender.index.store import IndexDir
from tests.conftest import ROOT, SAMPLE_DIR, Server, demo_records, write_jsonl

pytestmark = pytest.mark.slow

# The stand-in model; the load comes from one address, so the per-client limit on requests with a text
# (on by default) is off: these tests measure the server under load, not the limiter.
HASH_ENV = {"NEWSREC_BACKEND": "hash", "NEWSREC_TEXT_RATE_LIMIT": "0"}


def newsrec(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "web.cli", *args], cwd=ROOT,
                            env={**os.environ, **HASH_ENV, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def build(index: Path, corpus: Path) -> None:
    proc = newsrec("build", "--input", str(corpus), "--input", str(SAMPLE_DIR), "--index", str(index), "--quiet")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()


def add_extra(index: Path, corpora: dict) -> None:
    """`newsrec add` the extra articles to the index (a new snapshot), from another process."""
    proc = newsrec("add", "--index", str(index), "--input", str(corpora["extra"]), "--quiet")
    assert proc.wait(120) == 0, proc.stderr.read().decode()


@contextlib.contextmanager
def in_threads(target, count: int, stop: threading.Event):
    """Run target(n) for n in range(count), each in a thread; on leaving, set `stop` and wait for them."""
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    try:
        for t in threads:
            t.start()
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(30)


def get(url: str, data: dict | None = None, timeout: float = 10.0):
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read() or b"null")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    records = demo_records(3000)
    return {
        "small": write_jsonl(root / "small.jsonl", records[:200]),
        "big": write_jsonl(root / "big.jsonl", records),
        "extra": write_jsonl(root / "extra.jsonl", [dict(r, id="added-" + r["id"]) for r in records[200:210]]),
    }


def _loaded(pid: int, library: str) -> bool:
    """Whether a process has mapped a shared library (it got that far in starting up)."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _until(condition, what: str, timeout: float = 30.0) -> None:
    """Wait for a condition (polled) with a deadline; fail naming it when the deadline passes."""
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("moment", ["early", "while-publishing"])
def test_kill_9_during_build_leaves_the_old_index_answering(tmp_path, corpora, moment):
    index = tmp_path / "idx"
    build(index, corpora["small"])
    before = IndexDir(index).current_name()
    proc = newsrec("build", "--input", str(corpora["big"]), "--index", str(index), "--quiet")
    deadline = time.time() + 120
    if moment == "early":  # the build is under way (its libraries are loaded), before it writes anything
        while time.time() < deadline and proc.poll() is None and not _loaded(proc.pid, "_multiarray_umath"):
            time.sleep(0.01)
        assert not any(p.name.startswith(".tmp-") for p in index.iterdir()), "the build was writing before it was killed"
    else:  # wait until the new snapshot is being written, then kill
        while time.time() < deadline and not any(p.name.startswith(".tmp-") for p in index.iterdir()):
            time.sleep(0.002)
        assert any(p.name.startswith(".tmp-") for p in index.iterdir()), "the build finished before it could be killed"
    assert proc.poll() is None, "the build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert IndexDir(index).current_name() == before
    snap = IndexDir(index).open()
    assert snap.count == 201
    snap.close()
    server = Server(index, env=HASH_ENV)
    try:
        status, health = get(server.url + "/healthz")
        assert status == 200 and health["snapshot"] == before and health["count"] == 201
        status, body = get(server.url + "/api/related?id=sample-sheinbaum&min_score=0")
        assert status == 200 and body["items"]
        assert not any(p.name.startswith(".tmp-") for p in index.iterdir())  # start-up cleaned the leftovers
    finally:
        server.stop()


def test_rebuild_and_update_swap_in_under_load(tmp_path, corpora):
    index = tmp_path / "idx"
    build(index, corpora["small"])
    server = Server(index, env=HASH_ENV, workers=2)
    results = {"ok": 0, "failed": []}
    stop = threading.Event()
    lock = threading.Lock()
    ids = [json.loads(l)["id"] for l in open(corpora["small"], encoding="utf-8")][:50]

    def load(n: int) -> None:
        i = 0
        deadline = time.time() + 60  # bounded in time and count; stops by itself
        while not stop.is_set() and time.time() < deadline and i < 20_000:
            i += 1
            try:
                if i % 5 == 0:
                    status, _ = get(server.url + "/api/duplicates", {"title": "x", "body": "Drug cartels in Mexico fought the army."})
                else:
                    status, _ = get(f"{server.url}/api/related?id={ids[(i + n) % len(ids)]}&k=5")
                with lock:
                    results["ok"] += 1
            except (urllib.error.URLError, OSError, ValueError) as exc:
                with lock:
                    results["failed"].append(repr(exc)[:200])

    answered = []  # requests answered by the end of each step: every swap happened under load

    def step(change=None) -> None:
        if change:
            change()
        mark = results["ok"]
        _until(lambda: results["ok"] >= mark + 250 or results["failed"], "requests under load")
        answered.append(results["ok"])

    with in_threads(load, 4, stop):
        step()
        step(lambda: add_extra(index, corpora))
        step(lambda: build(index, corpora["small"]))  # a full rebuild swaps in too
        step(lambda: add_extra(index, corpora))
    try:
        assert results["failed"] == [], results["failed"][:5]
        assert len(answered) == 4 and answered == sorted(answered), answered
        print(f"hot swap under load: {results['ok']} requests answered, {len(results['failed'])} failed")
        current = IndexDir(index).current_name()
        deadline = time.time() + 10
        seen = set()
        while time.time() < deadline and seen != {current}:  # every worker has swapped
            seen = {get(server.url + "/healthz")[1]["snapshot"] for _ in range(8)}
            time.sleep(0.3)
        assert seen == {current}
        added = json.loads(open(corpora["extra"], encoding="utf-8").readline())["id"]
        status, body = get(f"{server.url}/api/articles/{added}")
        assert status == 200 and body["id"] == added  # answers come from the new index
    finally:
        server.stop()


def test_two_servers_on_one_directory_swap_to_a_new_snapshot_together(tmp_path, corpora):
    """Read replicas: two servers (think two hosts on shared storage) serve one index directory; a new
    snapshot published by a writer elsewhere is picked up by both within the reload interval of each
    other, no request fails, and once a server answers from the new snapshot it never goes back."""
    index = tmp_path / "idx"
    build(index, corpora["small"])
    interval = 0.5
    servers = [Server(index, env={**HASH_ENV, "NEWSREC_RELOAD_INTERVAL": str(interval)}, workers=1) for _ in range(2)]
    old = IndexDir(index).current_name()
    seen: list[list[tuple[float, str]]] = [[], []]
    failed: list[str] = []
    stop = threading.Event()
    ids = [json.loads(l)["id"] for l in open(corpora["small"], encoding="utf-8")][:20]

    def poll(n: int) -> None:
        i = 0
        deadline = time.time() + 60
        while not stop.is_set() and time.time() < deadline:
            i += 1
            try:
                with urllib.request.urlopen(f"{servers[n].url}/api/related?id={ids[i % len(ids)]}&k=3", timeout=10) as r:
                    seen[n].append((time.time(), r.headers["X-Newsrec-Snapshot"]))
            except (urllib.error.URLError, OSError) as exc:
                failed.append(repr(exc)[:200])
            time.sleep(0.02)

    try:
        with in_threads(poll, 2, stop):
            _until(lambda: all(len(s) >= 3 for s in seen), "both servers answering")
            add_extra(index, corpora)
            new = IndexDir(index).current_name()
            published = time.time()
            deadline = published + 10
            while time.time() < deadline and not all(s and s[-1][1] == new for s in seen):
                time.sleep(0.1)
            # a few more answers from each after its switch: none goes back to the old snapshot
            counts = [len(s) for s in seen]
            _until(lambda: all(len(s) >= c + 5 for s, c in zip(seen, counts)), "answers after the swap")
    finally:
        for server in servers:
            server.stop()
    assert failed == []
    assert new != old
    firsts = []
    for answers in seen:
        names = [name for _, name in answers]
        assert set(names) == {old, new}
        switch = names.index(new)
        assert all(name == new for name in names[switch:])  # never back to the old snapshot
        firsts.append(answers[switch][0])
    # Both swapped within the reload interval (plus a request's time) of each other and of publication.
    assert abs(firsts[0] - firsts[1]) <= interval + 0.5, firsts
    assert max(firsts) - published <= interval + 1.0


def test_access_log_is_structured_and_sigterm_shuts_down_gracefully(tmp_path, corpora):
    index = tmp_path / "idx"
    build(index, corpora["small"])
    server = Server(index, env=HASH_ENV)
    try:
        req = urllib.request.Request(server.url + "/api/related?id=nope", headers={"X-Request-Id": "trace-123"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(req, timeout=10)
        assert caught.value.code == 404
        assert json.loads(caught.value.read())["error"]["request_id"] == "trace-123"
        get(server.url + "/healthz")
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0  # graceful: workers finish and the master exits cleanly
    finally:
        server.stop()
    lines = [json.loads(l) for l in (index.parent / f"server-{server.port}.log").read_text().splitlines()
             if l.startswith("{")]
    entry = next(l for l in lines if l["request_id"] == "trace-123")
    assert entry["status"] == 404 and entry["path"] == "/api/related" and entry["method"] == "GET"
