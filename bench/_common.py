"""Helpers shared by the benchmarks: synthetic indexes, a server process, latency statistics."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender.embed.runtimes import cpu_vector  # noqa: E402


def machine() -> dict:
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "system": platform.system(), "cpu_vector": cpu_vector(), "pace_ms": pace()}


def reference_config(model: str):
    """The settings a bench scores a model with when its numbers are compared with the shipped fit and the
    quality pins: the model's reference runtime, whatever this CPU would choose, and no NEWSREC_* of the
    shell."""
    from recommender.config import Config
    from recommender.embed.models import REFERENCE_RUNTIME, resolve_model

    return Config.load({"model": model, "backend": REFERENCE_RUNTIME[resolve_model(model, "~/.cache/newsrec")[1]]},
                       environ={})


def pace() -> dict:
    """The machine's pace when a bench ran, in two fixed pieces of work (best of five, milliseconds):
    a million steps of a Python loop, and a scan of 100,000 vectors of 384 floats. VMs of one kind
    differ, and one VM's pace moves with its neighbours (1.7x within an hour here): a number is read
    beside the pace it was measured at."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((100_000, 384)).astype(np.float32)
    query = vectors[0]

    def best(work) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return round(min(times) * 1000, 2)

    return {"python_loop": best(lambda: sum(i * i for i in range(1_000_000))),
            "vector_scan": best(lambda: vectors @ query)}


def synthetic_index(path: Path, n: int, *, dim: int = 384, seed: int = 0, model: str = "all-MiniLM-L6-v2",
                    backend: str = "onnx", grouped: bool = False, centring: str = "",
                    max_tokens: int | None = None, topic_stories: bool = False) -> Path:
    """An index of n synthetic articles: clustered unit vectors (like topics), short metadata.
    `grouped`: a quarter of the articles in stories of three, the first two of each copies of one
    another (for pages that list groups); otherwise every article is its own group. `centring` (the
    manifest's `vectors`) and `max_tokens` are recorded as a build with that model records them, so a
    server of the model opens it. `topic_stories`: every article in one story with its topic (about 200
    articles each), so an article's own story fills its stored neighbours and every related query
    widens its candidate pool: the worst case for related-list latency."""
    from recommender.config import Config
    from recommender.evidence.duplicates import SIGNATURE_WIDTH
    from recommender.index.indexing import snapshot_parts
    from recommender.index.store import STORED_NEIGHBOURS, IndexDir, Record, write_snapshot

    rng = np.random.default_rng(seed)
    vectors, topic = topic_vectors(n, dim, rng)
    keys = np.arange(1, n + 1, dtype=np.int64)
    neighbours = neighbour_scores = None
    if n <= 200_000:  # what `newsrec build` stores for an exact index: each article's 64 nearest
        import faiss

        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors)
        neighbours = np.empty((n, STORED_NEIGHBOURS), dtype=np.int64)
        neighbour_scores = np.empty((n, STORED_NEIGHBOURS), dtype=np.float32)
        for start in range(0, n, 4096):
            s_, i_ = flat.search(vectors[start:start + 4096], STORED_NEIGHBOURS + 1)
            neighbours[start:start + 4096] = keys[i_[:, 1:]]
            neighbour_scores[start:start + 4096] = s_[:, 1:]
    index_dir = IndexDir(path)
    tmp = index_dir.new_temp()
    first_of_topic: dict[int, int] = {}
    if topic_stories:
        for k, t in zip(keys.tolist(), topic.tolist()):
            first_of_topic.setdefault(t, k)

    def groups(k: int) -> tuple[int, int]:
        if topic_stories:
            return k, first_of_topic[int(topic[k - 1])]
        first = (k - 1) // 3 * 3 + 1
        if not grouped or (k - 1) // 3 % 4 or first + 2 > n:
            return k, k
        return (first if k - first < 2 else k), first

    bodies = synthetic_bodies(topic, rng)
    records = [Record(key=int(k), id=f"a{k}", title=f"Synthetic article {k}", body=bodies[k - 1],
                      body_hash=f"h{k}", published=f"2024-01-{1 + k % 28:02d}" if grouped else "2024-01-01",
                      source=f"bench{k % 5}" if grouped else "bench",
                      dup_group=groups(int(k))[0], story_group=groups(int(k))[1])
               for k in keys]
    # Random signatures: every article its own text, so LSH buckets are as sparse as real distinct articles'.
    minhash = rng.integers(0, 2**32, (n, SIGNATURE_WIDTH), dtype=np.uint32)
    write_snapshot(tmp, snapshot_parts(records, vectors, minhash, [],
                                       {"model": model, "backend": backend, "dim": dim, "count": n, "synthetic": True,
                                        "vectors": centring, "max_tokens": max_tokens},
                                       neighbours=(neighbours, neighbour_scores),
                                       band_threshold=Config.load({}).near_threshold))
    index_dir.publish(tmp)
    return path


def topic_vectors(n: int, dim: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(n unit vectors, the topic of each): topics of about 200 articles, each article its topic's centre
    plus noise (neighbour cosines like real articles': a few close, most far)."""
    vectors = np.empty((n, dim), dtype=np.float32)
    topic = np.empty(n, dtype=np.int64)
    for start, v, t in topic_blocks(n, dim, rng):
        vectors[start:start + len(v)], topic[start:start + len(v)] = v, t
    return vectors, topic


def topic_blocks(n: int, dim: int, rng, step: int = 100_000):
    """topic_vectors a block of `step` rows at a time: (first row, vectors, topics) of each block."""
    centres = rng.standard_normal((max(16, n // 200), dim)).astype(np.float32)
    for start in range(0, n, step):
        m = min(step, n - start)
        topic = rng.integers(0, len(centres), m)
        v = centres[topic] + 0.9 * rng.standard_normal((m, dim)).astype(np.float32)
        yield start, v / np.linalg.norm(v, axis=1, keepdims=True), topic


def synthetic_bodies(topic: np.ndarray, rng, words: int = 150, vocabulary: int = 30_000) -> list[str]:
    """Bodies for synthetic articles whose word counts look like news for the lexical index: words drawn
    from a Zipf-shaped vocabulary (a few very common words, a long tail), a fifth of them from the
    article's topic's own 200 words (the names and places a story shares)."""
    vocab = np.asarray([f"w{i}" for i in range(vocabulary)])
    weights = 1.0 / np.arange(1, vocabulary + 1)
    weights /= weights.sum()
    common = rng.choice(vocabulary, size=(len(topic), words - words // 5), p=weights)
    own = rng.integers(0, 200, size=(len(topic), words // 5)) + (topic[:, None] * 200) % vocabulary
    return [" ".join(vocab[np.concatenate([c, o])]) for c, o in zip(common, own)]


CGROUP_ROOT = Path("/sys/fs/cgroup/memory")  # cgroup v1 memory controller, where the machine allows it


class MemoryCgroup:
    """A cgroup v1 memory group with a hard limit: the server runs inside it, page cache included,
    so "fits in N MB" is tested, not inferred. Needs a writable /sys/fs/cgroup/memory (root)."""

    def __init__(self, limit_mb: int):
        self.path = CGROUP_ROOT / f"newsrec-bench-{os.getpid()}"
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(limit_mb * 1024 * 1024))
        with_swap = self.path / "memory.memsw.limit_in_bytes"
        if with_swap.exists():
            with_swap.write_text(str(limit_mb * 1024 * 1024))  # no escaping into swap either

    def read(self, name: str) -> str:
        return (self.path / name).read_text().strip()

    def report(self) -> dict:
        oom = dict(line.split() for line in self.read("memory.oom_control").splitlines())
        stat = dict(line.split() for line in self.read("memory.stat").splitlines())
        return {"limit_mb": int(self.read("memory.limit_in_bytes")) // 2**20,
                "peak_mb": round(int(self.read("memory.max_usage_in_bytes")) / 2**20, 1),
                "anon_mb": round(int(stat.get("rss", 0)) / 2**20, 1),
                "page_cache_mb": round(int(stat.get("cache", 0)) / 2**20, 1),
                "oom_kills": int(oom.get("oom_kill", 0))}

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:  # processes still leaving
                time.sleep(0.2)


def evict_from_page_cache(path: Path) -> None:
    """Drop a directory's files from the page cache, so a server in a memory cgroup is charged for
    every page it reads (pages cached by the process that wrote them are charged to that process)."""
    for file in Path(path).rglob("*"):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, index: Path, port: int, workers: int = 2, env: dict | None = None,
                 cgroup: MemoryCgroup | None = None):
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "web.cli", "serve", "--index", str(index), "--port", str(port),
               "--workers", str(workers)]
        if cgroup is not None:  # join the group before exec, so the workers forked later are in it too
            cmd = ["sh", "-c", f'echo $$ > {cgroup.path / "cgroup.procs"} && exec "$@"', "sh", *cmd]
        # A bench is one client measuring the server: the by-text limit a server keeps per client is off.
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "NEWSREC_TEXT_RATE_LIMIT": "0", **(env or {})},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except Exception:  # not up yet
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("server did not start")

    def rss_mb(self) -> float:
        """Memory of the server and its workers (MB): proportional set size, so pages the workers
        share (memory-mapped index files) count once, split between them."""
        total = 0
        pids = [self.proc.pid] + [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()]
        for pid in pids:
            try:
                with open(f"/proc/{pid}/smaps_rollup") as fh:
                    for line in fh:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
            except FileNotFoundError:
                pass
        return round(total / 1024, 1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def latencies(fn, n: int) -> dict:
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
    a = np.asarray(times)
    return {"n": n, "p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2)}


class KeptAlive:
    """Requests on one persistent HTTP/1.1 connection, as a browser fetching a widget's lists keeps it
    (`http` below opens a new connection for each request)."""

    def __init__(self, base_url: str):
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def get(self, path: str) -> dict:
        return self._ask("GET", path, None)

    def post(self, path: str, data: dict) -> dict:
        return self._ask("POST", path, data)

    def _ask(self, method: str, path: str, data: dict | None) -> dict:
        if data is None:
            self.conn.request(method, path)
        else:
            self.conn.request(method, path, body=json.dumps(data).encode(), headers={"Content-Type": "application/json"})
        answer = self.conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{method} {path}: {answer.status}")
        return json.loads(body)

    def close(self) -> None:
        self.conn.close()


def http(url: str, data: dict | None = None) -> dict:
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
