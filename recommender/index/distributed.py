"""A build on a Ray cluster: the per-article steps (clean, embed, MinHash) and the neighbour search.

Ray Data reads the inputs in blocks on the cluster (JSONL lines, or the files of a folder), a pool of
actors cleans, embeds and MinHashes them (the model loaded once per actor, one ONNX thread each),
and the rows come back to this process in input order, written to a folder as they come
(indexing.RowsWriter) and read from there as a `Prepared`, which the usual index assembly
(indexing.build_index / add_articles) links, groups and publishes. Its neighbour search, the
step that grows with the square of the rows, runs on the cluster too (neighbours_on_ray): the rows'
vectors are shared once through the object store (read from the folder by a task on this machine, so
this process never holds them) and each task searches a block of rows; the blocks
are cut where FAISS cuts its own, so the result is the one a local search gives, and a task lost
with its worker is run again to the same result. So does the judging of each row's candidate pairs
(judge_on_ray): tasks read what the judgment needs in place and send back only the links. Nothing is
published before every row is back, so an interrupted build leaves the live snapshot as it was.

Ray is an optional extra (`pip install 'newsrec[ray]'`); nothing else in the project imports this.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import socket
import time
import weakref
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from recommender.text.articles import Article, parse_article
from recommender.config import Config
from recommender.evidence.duplicates import SIGNATURE_WIDTH, text_signatures
from recommender.errors import BadInput, ConfigError
from recommender.index.indexing import (LINK_BLOCK, Linker, Prepared, RowsWriter, embed_records, neighbour_plan,
                                        search_block, search_bounds, what_is_read)
from recommender.index.store import Record, load_file, mapped_file

__all__ = ["RAY_FIX", "judge_on_ray", "neighbours_on_ray", "prepare_on_ray", "release", "search_rows_on_ray"]

RAY_FIX = "install it with: pip install 'newsrec[ray]' (or scripts/setup --ray)"
# Actors and readers ask for fractions of a CPU: on one-CPU nodes an actor (or a reader) asking for a
# whole CPU leaves none for the other, and the build hangs with every actor waiting for input.
ACTOR_CPUS = 0.5
READ_CPUS = 0.25
BLOCK_BYTES = 4 << 20
BATCH = 64  # articles per actor call: small enough to spread a few thousand articles over every actor
# Every Ray worker runs single-threaded native code: two BLAS/ONNX threads per process on a
# two-core node ran 5x slower.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "TOKENIZERS_PARALLELISM": "false", "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
_JSONL = (".jsonl", ".json", ".ndjson")
_FOLDER_FILES = (".txt", ".html", ".htm")


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (the Data library is part of the extra)
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray Data, which is not installed: {RAY_FIX}") from None
    return ray


def _inputs(paths: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Consecutive inputs of one kind as (kind, files), in the order given: 'jsonl' or 'folder'."""
    runs: list[tuple[str, list[str]]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            kind = "folder"
            files = [str(f.resolve()) for f in sorted(path.iterdir())
                     if f.is_file() and f.suffix.lower() in _FOLDER_FILES]
        elif not path.exists():
            raise BadInput(f"input {raw!r} does not exist", field="input")
        elif path.name.lower().removesuffix(".gz").endswith(_JSONL):
            kind, files = "jsonl", [str(path.resolve())]
        else:
            raise BadInput(f"--engine ray reads JSONL (.jsonl, optionally .gz) and folders of .txt/.html; "
                           f"build {path.name} with the local engine or convert it to JSONL", field="input")
        if runs and runs[-1][0] == kind:
            runs[-1][1].extend(files)
        elif files:
            runs.append((kind, files))
    return runs


def _connect(ray, address: str | None, progress: bool) -> None:
    """Join the cluster at `address` ('host:port' of its head, 'auto', 'ray://...'), or start Ray on
    this machine alone when there is none. An address nobody answers at fails at once."""
    if address and address != "auto" and not address.startswith("ray://"):
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"no Ray cluster answers at {address!r} ({exc}): start its head there with "
                              f"`ray start --head --port {port or 6379}`, or leave out --ray-address to run "
                              "Ray on this machine alone") from None
    # The driver's core worker logs an error line for every actor whose constructor arguments sit in the
    # object store (all of Ray Data's); real failures still arrive as Python exceptions.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if not progress:
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        ray.init(address=address or None, runtime_env={"env_vars": WORKER_ENV}, log_to_driver=False,
                 logging_level="ERROR", configure_logging=True)
    except ConnectionError as exc:
        raise ConfigError(f"cannot join the Ray cluster at {address!r}: {exc}; start one with `ray start "
                          "--head`, or leave out --ray-address to run Ray on this machine alone") from None


class PrepareActor:
    """Cleans, embeds and MinHashes a batch of raw inputs; one per Ray actor, holding the model."""

    def __init__(self, config: Config):
        for name, value in WORKER_ENV.items():
            os.environ.setdefault(name, value)
        from recommender.text.cleaning import load_profile
        from recommender.embed.embedding import load_embedder

        self.config = config
        self.profile = load_profile(config.site_patterns)
        self.embedder = load_embedder(config)

    def _article(self, kind: str, raw, path: str) -> Article:
        name = Path(path).name
        try:
            if kind == "jsonl":
                try:
                    record = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise BadInput(f"a line is not JSON: {exc.msg}: {raw[:80]!r} (--engine ray reads one JSON "
                                   "object a line; a JSON list builds with the local engine)", field="input") from None
            else:
                text = bytes(raw).decode("utf-8", errors="replace")
                field = "text" if name.lower().endswith(".txt") else "html"
                record = {"id": Path(path).stem, field: text}
            return parse_article(record, profile=self.profile)
        except BadInput as exc:
            raise BadInput(f"{name}: {exc.message}", field=exc.field) from None

    def __call__(self, batch: dict) -> dict:
        kind = "jsonl" if "text" in batch else "folder"
        raws = batch["text"] if kind == "jsonl" else batch["bytes"]
        articles: list[Article | None] = []
        errors = []
        for raw, path in zip(raws, batch["path"]):
            try:
                articles.append(self._article(kind, raw, str(path)))
                errors.append("")
            except BadInput as exc:
                articles.append(None)
                errors.append(exc.message)
        at = [i for i, a in enumerate(articles) if a is not None]
        records = [Record(key=0, **articles[i].stored()) for i in at]
        vectors = np.zeros((len(articles), self.embedder.dim), dtype=np.float32)
        minhash = np.zeros((len(articles), SIGNATURE_WIDTH), dtype=np.uint32)
        read = what_is_read(records, self.config)
        vectors[at] = embed_records(records, self.embedder, self.config, read=read)
        minhash[at] = text_signatures([r.body for r in records], read)
        return {
            "article": np.array(["" if a is None else json.dumps(a.to_dict()) for a in articles], dtype=object),
            "error": np.array(errors, dtype=object),
            "vector": vectors,
            "minhash": minhash,
        }


def neighbours_on_ray(vectors: np.ndarray, new: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """indexing.neighbours, on the connected Ray cluster: indexing.neighbour_plan, then search_rows_on_ray."""
    new = np.asarray(new, dtype=np.int64)
    return search_rows_on_ray(vectors, new, k, neighbour_plan(vectors, len(new)))


def search_rows_on_ray(vectors: np.ndarray, new: np.ndarray, k: int, plan) -> tuple[np.ndarray, np.ndarray]:
    """indexing.search_rows, on the connected Ray cluster: the vectors and the plan (the rows' lists,
    past EXACT_LIMIT: indexing.RowLists) go to the object store once a session, whatever number of
    calls a build makes (indexing.link_rows calls once a chunk); a task per block (indexing.search_bounds)
    searches it on whichever node has a free fraction of a CPU, retried on another if its worker dies;
    the blocks come back in order."""
    import ray

    new = np.asarray(new, dtype=np.int64)
    vectors_ref = _put_vectors(ray, vectors)
    plan_ref = None if plan is None else _put_once(ray, "plan", plan, lambda: plan)
    bounds = search_bounds(len(new))
    search = ray.remote(num_cpus=ACTOR_CPUS, max_retries=3)(_search_task)
    futures = [search.remote(vectors_ref, new[a:b], k, plan_ref) for a, b in zip(bounds, bounds[1:]) if b > a]
    parts = ray.get(futures)
    if not parts:
        return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
    return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])


def _search_task(vectors: np.ndarray, rows: np.ndarray, k: int, plan):
    return search_block(vectors, rows, k, plan)


# What this process put in the object store for a build's search and judging, put once a session and
# shared by every call: by name, (the object it was made from, weakly; the session; its reference).
_PUT: dict[str, tuple] = {}


def _put_once(ray, name: str, source, make: Callable[[], object]):
    """The object-store reference of what `make` gives for `source` (the rows' vectors, the search's
    plan, the Linker), put on first use in this Ray session and again only when `source` is another object.
    `make` may give the reference of a task that makes it (rows read from disk: _here)."""
    ctx = ray.get_runtime_context()
    session = (ctx.gcs_address, ctx.get_job_id())
    held = _PUT.get(name)
    if held is not None and held[0]() is source and held[1] == session:
        return held[2]
    _PUT.pop(name, None)  # the previous one's reference goes before the next is made
    made = make()
    ref = made if isinstance(made, ray.ObjectRef) else ray.put(made)
    _PUT[name] = (weakref.ref(source), session, ref)
    return ref


def _here(ray, fn):
    """`fn` as a Ray task on this process's machine, which can read the files of rows read from disk:
    what it returns goes to the object store from a worker, so this process never holds (or maps) it.
    None where this process is not on a node of the cluster (Ray Client): it puts what it holds."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        from ray.util.client import ray as client

        if client.is_connected():
            return None
    except ImportError:  # an older Ray without the client module
        pass
    node = ray.get_runtime_context().get_node_id()
    return ray.remote(num_cpus=ACTOR_CPUS, max_retries=3)(fn).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))


def _put_vectors(ray, vectors: np.ndarray):
    """The rows' vectors in the object store, one copy for the session's search and judging alike (rows
    read from disk: read there by a task on this machine)."""
    found = mapped_file(vectors) if vectors.dtype == np.float32 else None
    task = _here(ray, load_file) if found else None
    if task is not None:
        return _put_once(ray, "vectors", vectors, lambda: task.remote(found))
    return _put_once(ray, "vectors", vectors, lambda: np.ascontiguousarray(vectors, dtype=np.float32))


def release() -> None:
    """End this process's Ray session and forget what it put (Prepared.release of a build on Ray)."""
    import ray

    _PUT.clear()
    ray.shutdown()


def judge_on_ray(linker: Linker, new: np.ndarray, scores: np.ndarray, nbrs: np.ndarray) -> list:
    """indexing.judge_blocks, on the connected Ray cluster: the Linker (signatures, what the pair
    judgment reads of every row, the bodies as one buffer) goes to the object store once a session
    (indexing.link_rows calls once a chunk), with the vectors the neighbour search put there already,
    and is read in place; a task per LINK_BLOCK new rows judges their candidate pairs on whichever
    node has a free fraction of a CPU, retried on another if its worker dies; only the links come back,
    in row order."""
    import ray

    vectors_ref = _put_vectors(ray, linker.vectors)

    def packed():
        task = _here(ray, _linker_from_files) if linker.minhash_file is not None else None
        if task is not None:  # rows read from disk: made whole by a task on this machine
            return task.remote(linker.without_rows())
        out = linker.packed()
        out.vectors = None
        return out

    linker_ref = _put_once(ray, "linker", linker, packed)
    task = ray.remote(num_cpus=ACTOR_CPUS, max_retries=3)(_judge_task)
    futures = [task.remote(linker_ref, vectors_ref, new[a:a + LINK_BLOCK], scores[a:a + LINK_BLOCK],
                           nbrs[a:a + LINK_BLOCK])
               for a in range(0, len(new), LINK_BLOCK)]
    return [link for part in ray.get(futures) for link in part]


def _linker_from_files(linker: Linker) -> Linker:
    return linker.from_files()


def _judge_task(linker: Linker, vectors: np.ndarray, new: np.ndarray, scores: np.ndarray, nbrs: np.ndarray) -> list:
    linker = copy.copy(linker)
    linker.vectors = vectors
    return linker.links(new, scores, nbrs)


def _dataset(ray, kind: str, files: list[str]):
    if kind == "jsonl":  # .gz is decompressed by Arrow, detected from the name
        return ray.data.read_text(files, include_paths=True, num_cpus=READ_CPUS)
    return ray.data.read_binary_files(files, include_paths=True, num_cpus=READ_CPUS)


def prepare_on_ray(inputs: Sequence[str], config: Config, dim: int, *, address: str | None = None,
                   actors: int | None = None, actor_gpus: float = 0.0, progress: bool = False,
                   log: Callable[[str], None] | None = None, folder: Path) -> Prepared:
    """Cleaned, embedded and MinHashed articles from these input files, computed on a Ray cluster,
    in input order (the local engine's order: keys and groups come out the same). Its embed_seconds
    is the wall time of the whole cluster stage (read, clean, embed, MinHash, transfer).

    `folder`: where the rows are written as they come back (indexing.RowsWriter; the assembly reads
    them from there, and the folder is removed when it ends), so that this process holds none of their
    vectors, signatures or bodies.

    `actors`: size of the actor pool (default: one per CPU the cluster has, or per GPU with
    `actor_gpus`). `actor_gpus`: GPUs each actor asks Ray for; the model then runs on the torch backend
    on `config.device` (e.g. 'cuda'). A bad record raises BadInput naming its file, as the local
    reader does."""
    log = log or (lambda msg: None)
    if actor_gpus and (config.backend != "torch" or not config.device.startswith("cuda")):
        raise ConfigError("--actor-gpus needs the model on a GPU: NEWSREC_BACKEND=torch and NEWSREC_DEVICE=cuda "
                          "(the ONNX backends run on CPU only)")
    try:
        ray = _import_ray()
        runs = _inputs(inputs)
        t0 = time.time()
        _connect(ray, address, progress)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    log(f"ray: connected in {time.time() - t0:.1f}s")
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # rows come back in input order
        ctx.enable_progress_bars = progress
        ctx.print_on_execution_start = False
        # Readers hand on blocks of about a thousand articles rather than a whole file: rows flow to the
        # actors (and back) while the file is still being read, and a lost actor redoes little.
        ctx.target_max_block_size = BLOCK_BYTES
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 1)), float(resources.get("GPU", 0))
        if actor_gpus and gpus < actor_gpus:
            raise ConfigError(f"--actor-gpus {actor_gpus:g}: the cluster has {gpus:g} GPUs")
        pool = actors or max(1, int(gpus / actor_gpus if actor_gpus else cpus))
        log(f"ray: {cpus:g} CPUs, {gpus:g} GPUs on {len(ray.nodes())} node(s); {pool} actors of {ACTOR_CPUS} CPU"
            + (f" and {actor_gpus:g} GPU" if actor_gpus else "") + " each")
        started = time.time()
        writer = RowsWriter(folder, dim)
        for kind, files in runs:
            ds = _dataset(ray, kind, files).map_batches(
                PrepareActor, fn_constructor_kwargs={"config": config}, batch_size=BATCH,
                compute=ray.data.ActorPoolStrategy(size=pool), num_cpus=ACTOR_CPUS,
                num_gpus=actor_gpus or None, batch_format="numpy")
            # (Ray Data restarts a lost actor and retries its batch: max_restarts=-1, max_task_retries=-1.)
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                if not writer.count:
                    log(f"ray: first rows back {time.time() - started:.1f}s after the start (actors load the model)")
                bad = next((e for e in batch["error"] if e), None)
                if bad:
                    raise BadInput(bad, field="input")
                records = [Record(key=0, **Article(**json.loads(a)).stored()) for a in batch["article"]]
                writer.add(records, batch["vector"], batch["minhash"])
        prepared = writer.close(time.time() - started, owned=True)
        # The session stays for the assembly's neighbour search and judging, which end it (Prepared.finish).
        prepared.search, prepared.judging, prepared.release = search_rows_on_ray, judge_on_ray, release
        return prepared
    except BaseException:
        release()
        shutil.rmtree(folder, ignore_errors=True)
        raise
