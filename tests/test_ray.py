"""`newsrec build --engine ray` on a real local Ray cluster (a head and a second node on 127.0.0.1, one
CPU each): the same index as the local build with the real model (2,000 articles) and with the stand-in
embedder (20,000 articles of several outlets), a killed actor retried, a driver interrupted without
touching the live snapshot, and the faults that must fail at once.
The cluster is tests/ray_cluster.py's: its own PID namespace, ended with everything in it."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, demo_records, free_port, index_summary, rows_with_copies, syndicated_records, write_jsonl
from tests.ray_cluster import ENV as RAY_ENV, LocalRayCluster, can_unshare

pytestmark = [pytest.mark.ray, pytest.mark.model, pytest.mark.slow]
ARTICLES = 2000
ENV = {**RAY_ENV, "PYTHONPATH": str(ROOT)}
# The preparing actors' processes, by the part of their title Ray gives them whether or not it fuses the
# read with them ("MapWorker(MapBatches(PrepareActor))", "MapWorker(ReadText->MapBatches(PrepareActor))").
ACTOR = r"MapWorker\(.*MapBatches\(PrepareActor\)\)"  # a pgrep -f pattern


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "web.cli", *args]


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray", reason="the ray extra is not installed (scripts/setup --test installs it)")
    if not can_unshare():
        pytest.skip("needs `unshare --pid` (root or user namespaces) to run a Ray cluster of its own")
    with LocalRayCluster(nodes=2, cpus=1) as address:
        yield address


@pytest.fixture(scope="module")
def articles(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("ray") / "articles.jsonl", demo_records(ARTICLES, seed=7))


def _actor_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", ACTOR], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def _no_actors_left(timeout: float = 60) -> None:
    """Wait for the actors of earlier builds to end (they end with their driver, not at once), so that
    the actors a test waits for, kills or interrupts are its own build's."""
    deadline = time.time() + timeout
    while _actor_pids() and time.time() < deadline:
        time.sleep(0.2)
    assert not _actor_pids(), "actors of an earlier build are still alive"


def _related_lists(index: Path, ids: list[str], backend: str | None = None) -> dict[str, list[str]]:
    from recommender.config import Config
    from recommender.facade import Recommender

    given = {"index": str(index), "reload_interval": 0, **({"backend": backend} if backend else {})}
    rec = Recommender(Config.load(given), read_only=True)
    rec.load()
    return {i: [item["id"] for item in rec.related(rec.params(), id=i)["items"]] for i in ids}


def _local_and_ray_builds(cluster: str, articles: Path, tmp_path: Path, env: dict) -> tuple[dict, dict]:
    """The local build and the Ray build of one input, an actor killed while the Ray build runs (Ray
    restarts it and retries its batch): each index's summary (tests.conftest.index_summary)."""
    backend = ["--backend", env["NEWSREC_BACKEND"]] if "NEWSREC_BACKEND" in env else []
    local = subprocess.run(_cli("build", "--input", str(articles), "--index", str(tmp_path / "local"), "--quiet", *backend),
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    _no_actors_left()
    driver = subprocess.Popen(_cli("build", "--engine", "ray", "--ray-address", cluster, "--input", str(articles),
                                   "--index", str(tmp_path / "ray"), "--quiet", *backend),
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Kill one actor once both are at work (their model loaded, a few seconds after both are up): Ray
    # restarts it and retries its batch. The first actor still alive from then on is the one killed: on a
    # fast machine the actors can finish their batches within seconds of starting.
    deadline = time.time() + 120
    while len(_actor_pids()) < 2 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.2)
    at_work, victims = time.time() + 4, []
    while driver.poll() is None and time.time() < at_work + 30:
        victims = _actor_pids()
        if victims and time.time() >= at_work:
            break
        time.sleep(0.1)
    assert victims and driver.poll() is None, "the build ended before an actor could be killed"
    os.kill(victims[0], signal.SIGKILL)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err
    assert "2 node(s)" in err, err
    return index_summary(tmp_path / "local"), index_summary(tmp_path / "ray")


def test_the_ray_build_is_the_local_build_even_with_an_actor_killed(cluster, articles, tmp_path):
    a, b = _local_and_ray_builds(cluster, articles, tmp_path, ENV)
    assert a["ids"] == b["ids"] and len(a["ids"]) == ARTICLES
    assert a["dup_groups"] == b["dup_groups"] and a["story_groups"] == b["story_groups"]
    # One runtime both ways; OpenVINO runs four texts a run, and a text's batch-mates move its vector by up to
    # 2e-4 (onnx_backend.OPENVINO_BATCH), onnxruntime int8 not at all.
    assert min(float(a["vectors"][i] @ b["vectors"][i]) for i in a["ids"]) >= 0.9998
    sample = random.Random(5).sample(a["ids"], 100)
    assert _related_lists(tmp_path / "local", sample) == _related_lists(tmp_path / "ray", sample)


def test_an_aggregators_20k_articles_build_on_ray_as_they_build_here(cluster, tmp_path):
    """20,000 articles of several outlets (copies, other tellings, briefs, updates: groups to find), with
    the stand-in embedder so that size costs no model time: the same ids, groups and lists both ways."""
    articles = write_jsonl(tmp_path / "aggregator.jsonl", syndicated_records(20_000))
    a, b = _local_and_ray_builds(cluster, articles, tmp_path, {**ENV, "NEWSREC_BACKEND": "hash"})
    assert a["ids"] == b["ids"] and len(a["ids"]) == 20_000
    assert min(len([g for g in a[name] if len(g) > 1]) for name in ("dup_groups", "story_groups")) > 1000
    assert a["dup_groups"] == b["dup_groups"] and a["story_groups"] == b["story_groups"]
    assert all(np.array_equal(a["vectors"][i], b["vectors"][i]) for i in a["ids"])
    sample = random.Random(5).sample(a["ids"], 100)
    local = _related_lists(tmp_path / "local", sample, "hash")
    assert sum(map(len, local.values())) >= 400
    assert local == _related_lists(tmp_path / "ray", sample, "hash")


def test_a_driver_interrupted_mid_build_leaves_the_live_snapshot(cluster, articles, tmp_path):
    index = tmp_path / "index"
    small = write_jsonl(tmp_path / "small.jsonl", demo_records(50, seed=1))
    first = subprocess.run(_cli("build", "--input", str(small), "--index", str(index), "--quiet"), cwd=ROOT, env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    live = (index / "CURRENT").read_text()
    before = sorted(p.name for p in (index / "snapshots").iterdir())
    _no_actors_left()
    # Ctrl-C's signal reaches the build even where the tests run with it ignored (a background job
    # inherits SIGINT ignored, and so would the build).
    driver = subprocess.Popen(_cli("build", "--engine", "ray", "--ray-address", cluster, "--input", str(articles),
                                   "--index", str(index), "--quiet"),
                              cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not _actor_pids() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    driver.send_signal(signal.SIGINT)
    driver.communicate(timeout=120)
    assert driver.returncode != 0
    assert (index / "CURRENT").read_text() == live
    assert sorted(p.name for p in (index / "snapshots").iterdir()) == before
    assert index_summary(index)["ids"] == sorted(r["id"] for r in demo_records(50, seed=1))
    # The job's actors end with its driver.
    deadline = time.time() + 60
    while _actor_pids() and time.time() < deadline:
        time.sleep(0.5)
    assert not _actor_pids()


def test_faults_that_fail_at_once(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed (scripts/setup --test installs it)")
    articles = write_jsonl(tmp_path / "a.jsonl", demo_records(5))
    port = free_port()  # nobody listens there
    t0 = time.time()
    unreachable = subprocess.run(_cli("build", "--engine", "ray", "--ray-address", f"127.0.0.1:{port}", "--input",
                                      str(articles), "--index", str(tmp_path / "i"), "--quiet"),
                                 cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert unreachable.returncode != 0 and time.time() - t0 < 30
    assert f"no Ray cluster answers at '127.0.0.1:{port}'" in unreachable.stderr
    assert "ray start --head" in unreachable.stderr
    csv = tmp_path / "a.csv"
    csv.write_text("id,title,body\n1,A,B\n")
    wrong = subprocess.run(_cli("build", "--engine", "ray", "--input", str(csv), "--index", str(tmp_path / "i")),
                           cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0 and "--engine ray reads JSONL" in wrong.stderr
    gpu = subprocess.run(_cli("build", "--engine", "ray", "--actor-gpus", "1", "--input", str(articles), "--index",
                              str(tmp_path / "i")), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert gpu.returncode != 0 and "NEWSREC_BACKEND=torch and NEWSREC_DEVICE=cuda" in gpu.stderr
    # Without the extra: a clear message naming the fix, before anything is read.
    no_ray = ("import sys; sys.modules['ray'] = None; from web.cli import main; "
              f"sys.exit(main(['build', '--engine', 'ray', '--input', {str(articles)!r}, '--index', "
              f"{str(tmp_path / 'i')!r}]))")
    missing = subprocess.run([sys.executable, "-c", no_ray], cwd=ROOT, env=ENV, capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode != 0 and "pip install 'newsrec[ray]'" in missing.stderr
    assert not (tmp_path / "i").exists() or not any((tmp_path / "i").glob("snapshots/*"))


def _search_pids(task: str = "_search_task") -> list[int]:
    found = subprocess.run(["pgrep", "-f", f"ray::{task}"], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def _with_a_worker_killed(task: str, wait: float, run):
    """run(), while a worker running `task` is killed (`wait` seconds after it is first seen); its result."""
    import threading

    killed: list[int] = []

    def kill_one() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            pids = _search_pids(task)
            if pids:
                time.sleep(wait)
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)
    killer = threading.Thread(target=kill_one)
    killer.start()
    result = run()
    killer.join()
    assert killed, f"no {task} was seen running"
    return result


def _on_a_driver(cluster: str, tmp_path: Path, driver: str, task: str, wait: float, **inputs):
    """What `driver(cluster, **inputs)` (a function of this module) returns, run by a Ray driver process of
    its own while a worker running `task` is killed. The driver is not this test process: a driver that
    Ray itself brings down (its core worker has been seen to fault when a worker dies under it) fails the
    test with its exit status and log, and does not take pytest's worker with it. Such a fault, and only
    it, is retried once, and said."""
    import pickle
    import warnings

    given, got = tmp_path / f"{driver}.in.pkl", tmp_path / f"{driver}.out.pkl"
    given.write_bytes(pickle.dumps(inputs))
    code = ("import pickle, sys; import tests.test_ray as t; "
            f"out = t.{driver}({cluster!r}, **pickle.loads(open(sys.argv[1], 'rb').read())); "
            "open(sys.argv[2], 'wb').write(pickle.dumps(out))")

    def run() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code, str(given), str(got)], cwd=ROOT, env=ENV,
                              capture_output=True, text=True, timeout=600)
    done = _with_a_worker_killed(task, wait, run)
    if done.returncode < 0:  # ended by a signal: Ray's own fault, not an answer
        warnings.warn(f"the Ray driver ended by signal {-done.returncode}; run again once: {done.stderr[-1500:]}")
        done = _with_a_worker_killed(task, wait, run)
    assert done.returncode == 0, f"the Ray driver failed ({done.returncode}): {done.stderr[-3000:]}"
    return pickle.loads(got.read_bytes())


def _connect(cluster: str) -> None:
    """Join the cluster as a build's driver does."""
    import ray

    from recommender.index import distributed

    distributed._connect(ray, cluster, progress=False)


def _search_driver(cluster: str, vectors: np.ndarray, rows: np.ndarray, part: np.ndarray):
    """(rows' neighbours, part's neighbours past the exact limit) searched on the cluster."""
    from recommender.index import indexing
    from recommender.index.distributed import neighbours_on_ray, release

    _connect(cluster)
    try:
        exact = neighbours_on_ray(vectors, rows, 21)
        indexing.EXACT_LIMIT, indexing.APPROX_PAIRS = 5_000, 1_000_000
        return exact, neighbours_on_ray(vectors, part, 11)
    finally:
        release()


def _judge_driver(cluster: str, n: int, scores: np.ndarray, nbrs: np.ndarray) -> list:
    """The links of rows_with_copies(n)'s candidate pairs, judged on the cluster in tasks of 500 rows."""
    from recommender.config import Config
    from recommender.index import distributed, indexing

    rows = rows_with_copies(n, copies=400, offset=800)
    linker = indexing.Linker.of(rows, Config.load({"reload_interval": 0}, environ={}))
    distributed.LINK_BLOCK = 500  # twelve tasks
    _connect(cluster)
    try:
        return distributed.judge_on_ray(linker, np.arange(n), scores, nbrs)
    finally:
        distributed.release()


def test_the_neighbour_search_on_the_cluster_is_the_local_one_even_with_a_worker_killed(cluster, monkeypatch, tmp_path):
    """Blocks of rows searched by tasks on both nodes give the bytes one local search gives: a flat scan
    (12,000 rows: a block and a remainder; one task's worker killed mid-search and its block run
    again) and the rows' lists past the exact limit (made once by the driver, shipped to the tasks)."""
    from recommender.index import indexing

    rng = np.random.default_rng(3)
    centres = rng.standard_normal((300, 384)).astype(np.float32)
    vectors = centres[rng.integers(0, 300, 12_000)] + rng.standard_normal((12_000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = np.arange(12_000 - 3)  # blocks of 8,192 and 3,805
    part = np.arange(0, 12_000, 2)
    local = indexing.neighbours(vectors, rows, 21)
    remote, remote_ivf = _on_a_driver(cluster, tmp_path, "_search_driver", "_search_task", 0.3,
                                      vectors=vectors, rows=rows, part=part)
    assert np.array_equal(local[1], remote[1]) and np.array_equal(local[0], remote[0])
    # past the exact limit: the driver's lists of the rows (indexing.RowLists), searched in the same blocks
    monkeypatch.setattr(indexing, "EXACT_LIMIT", 5_000)
    monkeypatch.setattr(indexing, "APPROX_PAIRS", 1_000_000)
    local_ivf = indexing.neighbours(vectors, part, 11)
    assert np.array_equal(local_ivf[1], remote_ivf[1]) and np.array_equal(local_ivf[0], remote_ivf[0])
    assert not np.array_equal(local_ivf[1], indexing.search_block(vectors, part, 11)[1])  # it was approximate


def test_the_judging_on_the_cluster_is_the_local_one_even_with_a_worker_killed(cluster, tmp_path):
    """Each row's candidate pairs judged by tasks on both nodes (the Linker read in place from the object
    store) give the links the local judging gives, in the same order, with a task's worker killed
    mid-judging and its block judged again: copies made by editing bodies, and retellings."""
    from recommender.config import Config
    from recommender.index import indexing

    n = 6000
    rows = rows_with_copies(n, copies=400, offset=800)
    new = np.arange(n)
    scores, nbrs = indexing.neighbours(rows.vectors, new, 21)
    linker = indexing.Linker.of(rows, Config.load({"reload_interval": 0}, environ={}))
    local = indexing.judge_blocks(linker, new, scores, nbrs)
    assert {link.level for link in local} >= {"exact", "near", "same-story"}
    remote = _on_a_driver(cluster, tmp_path, "_judge_driver", "_judge_task", 0.05, n=n, scores=scores, nbrs=nbrs)
    assert remote == local
