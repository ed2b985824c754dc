"""Which runtime runs the model on this CPU (`backend = auto`, the default).

The export makes three runtimes of one model: onnxruntime with dynamic int8 (`onnx`), OpenVINO with
static int8 (`openvino`) and onnxruntime in full precision (`onnx-fp32`). Which is fastest depends on
the CPU: int8 matrix products are fast where the CPU has AVX-512 VNNI (or AVX-VNNI, AMX) and measured
2.7x slower where it has AVX2 alone. So the first time a model runs on a kind of CPU, each runtime embeds
the same probe texts, and the fastest whose vectors agree with the full-precision model's is kept: every
probe text's vector within cosine AGREEMENT of the fp32 one. The runtimes the quality pins are measured
on (models.REFERENCE_RUNTIME) reach 0.981 at worst on the probe texts (MiniLM on onnxruntime int8; 0.992
on OpenVINO int8) and 0.979 (e5 on OpenVINO int8); e5 on onnxruntime's dynamic int8 reaches 0.954, and
scored SemEval lower (0.767 against 0.772), so it is not kept. The choice is stored in the model cache
(`runtime-choice.json`, one entry per model, token budget and CPU features) with what was measured, so it
is made once per machine kind.

An index records the runtime it was built with; an index served or added to keeps that runtime, so
its stored vectors and new queries come from the same one (`load_embedder(..., built_with=)`).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

__all__ = ["AGREEMENT", "CANDIDATES", "Choice", "choose_runtime", "cpu_features", "cpu_vector", "pick"]

CANDIDATES = ("onnx", "openvino", "onnx-fp32")
REFERENCE = "onnx-fp32"
AGREEMENT = 0.975
PROBE_TEXTS = 48
# CPU features int8 and bf16 model runs depend on (Linux /proc/cpuinfo names).
_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def _flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return set(next(line for line in fh if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration, IndexError):
        return set()


def cpu_features() -> tuple[str, ...]:
    """The CPU's features that decide which runtime is fastest (empty where /proc/cpuinfo is unreadable)."""
    flags = _flags()
    return tuple(f for f in _FEATURES if f in flags)


def cpu_vector() -> str:
    """The CPU's widest integer vector instructions, which int8 model runs depend on (2.7x apart):
    'avx512_vnni', 'avx2', 'other', or 'unknown'."""
    flags = _flags()
    if not flags:
        return "unknown"
    return next((f for f in ("avx512_vnni", "avx2") if f in flags), "other")


@dataclass(frozen=True)
class Choice:
    runtime: str
    cpu: tuple[str, ...]
    # Per runtime measured: texts a second on one thread, and the lowest cosine of a probe text's vector to
    # the full-precision one (None for the reference); `error` when the runtime could not run here.
    measured: Mapping[str, Mapping[str, float | str | None]]

    def describe(self) -> str:
        parts = []
        for name, m in self.measured.items():
            if m.get("error"):
                parts.append(f"{name}: {m['error']}")
            else:
                agree = "" if m.get("min_cosine") is None else f", cosine to fp32 >= {m['min_cosine']:.4f}"
                parts.append(f"{name} {m['texts_per_s']:.0f} texts/s{agree}")
        return (f"runtime {self.runtime} chosen for this CPU ({', '.join(self.cpu) or 'features unknown'}): "
                + "; ".join(parts))


def pick(measured: Mapping[str, Mapping[str, float | str | None]]) -> str:
    """The fastest runtime whose vectors agree with the reference's (the reference itself always does)."""
    fit = {name: float(m["texts_per_s"]) for name, m in measured.items()
           if not m.get("error") and (name == REFERENCE or float(m["min_cosine"]) >= AGREEMENT)}
    return max(fit, key=fit.get) if fit else REFERENCE


def _measure(make: Callable[[str], object], texts: list[str]) -> dict[str, dict]:
    """Each candidate's speed on one thread and its vectors' agreement with the reference's."""
    vectors: dict[str, np.ndarray] = {}
    measured: dict[str, dict] = {}
    for name in (REFERENCE,) + tuple(c for c in CANDIDATES if c != REFERENCE):
        try:
            embedder = make(name)
            embedder.encode(texts[:4])  # first runs allocate
            start = time.perf_counter()
            vectors[name] = np.asarray(embedder.encode(texts), dtype=np.float32)
            seconds = time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 - a runtime that cannot run on this machine is not chosen
            if name == REFERENCE:
                raise
            measured[name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
            continue
        measured[name] = {"texts_per_s": round(len(texts) / seconds, 1), "min_cosine": None}
        if name != REFERENCE:
            measured[name]["min_cosine"] = round(float((vectors[name] * vectors[REFERENCE]).sum(axis=1).min()), 4)
    return measured


def choose_runtime(model: str, *, max_tokens: int, cache_dir: str,
                   make: Callable[[str], object] | None = None) -> Choice:
    """The runtime for this model on this CPU: the stored choice, or measured now and stored."""
    from recommender.embed.models import LANGUAGES, resolve_model
    from recommender.embed.onnx_backend import OnnxEmbedder, calibration_texts, discard_fp32, model_fingerprint

    folder, name = resolve_model(model, cache_dir)
    cpu = cpu_features()
    key = f"{name}|{model_fingerprint(Path(folder))}|{max_tokens}|{','.join(cpu)}|agreement {AGREEMENT}"
    store = Path(os.path.expanduser(cache_dir)) / "runtime-choice.json"
    store.parent.mkdir(parents=True, exist_ok=True)
    with _locked(store.with_suffix(".lock")):  # workers starting at once measure once
        known = _read(store)
        if key in known:
            entry = known[key]
            return Choice(entry["runtime"], tuple(entry["cpu"]), entry["measured"])
        make = make or (lambda runtime: OnnxEmbedder(model, max_tokens=max_tokens, cache_dir=cache_dir,
                                                     threads=1, runtime=runtime))
        # Texts other than those the static int8 export calibrates on (seed 1), so agreement is not
        # measured on what the quantiser was fitted to.
        texts = calibration_texts(LANGUAGES.get(name), seed=2)[:PROBE_TEXTS]
        measured = _measure(make, texts)
        choice = Choice(pick(measured), cpu, measured)
        if choice.runtime != REFERENCE:
            discard_fp32(folder, cache_dir)  # measured, not run: its export is the largest
        print(choice.describe(), file=sys.stderr)  # once per model and kind of CPU
        known[key] = {**asdict(choice), "cpu": list(cpu), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        tmp = store.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
        os.replace(tmp, store)
        return choice


def _read(store: Path) -> dict:
    try:
        data = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
