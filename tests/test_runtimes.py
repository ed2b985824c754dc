"""The runtime chosen for the CPU (runtimes.py): the fastest whose vectors agree with fp32, once per
model and CPU; an index keeps the runtime it was built with."""
from __future__ import annotations

import json

import numpy as np
import pytest

from recommender.embed import runtimes
from recommender.embed.runtimes import AGREEMENT, REFERENCE, pick


def test_the_fastest_runtime_whose_vectors_agree_is_picked():
    measured = {REFERENCE: {"texts_per_s": 40.0, "min_cosine": None},
                "onnx": {"texts_per_s": 120.0, "min_cosine": AGREEMENT + 0.005},
                "openvino": {"texts_per_s": 160.0, "min_cosine": AGREEMENT + 0.01}}
    assert pick(measured) == "openvino"
    # Faster but further from the model's own vectors: not kept.
    measured["openvino"]["min_cosine"] = AGREEMENT - 0.001
    assert pick(measured) == "onnx"
    # A runtime that could not run here is not kept either; full precision always agrees with itself.
    measured["onnx"] = {"error": "RuntimeError: no int8 kernels"}
    assert pick(measured) == REFERENCE
    measured[REFERENCE]["texts_per_s"] = 500.0
    measured["onnx"] = {"texts_per_s": 120.0, "min_cosine": 0.999}
    assert pick(measured) == REFERENCE


class _Runtime:
    """A stand-in runtime: fp32's vectors, bent by `noise`, at a given cost per text."""

    def __init__(self, noise: float, seconds: float, calls: list):
        self.noise, self.seconds, self.calls = noise, seconds, calls

    def encode(self, texts):
        import time

        self.calls.append(len(texts))
        time.sleep(self.seconds * len(texts))
        rng = np.random.default_rng(len(texts))
        base = rng.standard_normal((len(texts), 8))
        bent = base + self.noise * rng.standard_normal(base.shape)
        return bent / np.linalg.norm(bent, axis=1, keepdims=True)


def test_the_choice_is_measured_once_per_model_and_cpu_and_says_what_it_measured(tmp_path, monkeypatch):
    calls: list = []
    made: list[str] = []
    costs = {REFERENCE: (0.0, 0.004), "onnx": (0.05, 0.001), "openvino": (0.6, 0.0005)}

    def make(name):
        made.append(name)
        noise, seconds = costs[name]
        return _Runtime(noise, seconds, calls)

    monkeypatch.setattr(runtimes, "cpu_features", lambda: ("avx2",))
    first = runtimes.choose_runtime("", max_tokens=128, cache_dir=str(tmp_path), make=make)
    # openvino is the fastest, but its vectors are far from fp32's: onnx is chosen.
    assert first.runtime == "onnx" and set(made) == set(costs)
    assert first.measured["openvino"]["min_cosine"] < AGREEMENT <= first.measured["onnx"]["min_cosine"]
    assert "onnx" in first.describe() and "avx2" in first.describe()
    stored = json.loads((tmp_path / "runtime-choice.json").read_text())
    assert [v["runtime"] for v in stored.values()] == ["onnx"]
    made.clear()
    assert runtimes.choose_runtime("", max_tokens=128, cache_dir=str(tmp_path), make=make).runtime == "onnx"
    assert made == []  # read, not measured again
    # Another kind of CPU measures again.
    monkeypatch.setattr(runtimes, "cpu_features", lambda: ("avx2", "avx512_vnni"))
    runtimes.choose_runtime("", max_tokens=128, cache_dir=str(tmp_path), make=make)
    assert set(made) == set(costs) and len(json.loads((tmp_path / "runtime-choice.json").read_text())) == 2


def test_an_index_keeps_the_runtime_it_was_built_with(tmp_path, monkeypatch):
    from recommender.config import Config
    from recommender.embed import embedding

    asked: list[str] = []

    class Made:
        def __init__(self, model="", *, runtime, **_):
            asked.append(runtime)

    monkeypatch.setattr("recommender.embed.onnx_backend.OnnxEmbedder", Made)
    monkeypatch.setattr(runtimes, "choose_runtime", lambda *a, **k: runtimes.Choice("openvino", (), {}))
    from recommender.index.store import IndexDir

    index = tmp_path / "idx"
    (index / "snapshots" / "s1").mkdir(parents=True)
    (index / "snapshots" / "s1" / "manifest.json").write_text(json.dumps({"backend": "onnx"}))
    (index / "CURRENT").write_text("s1")
    config = Config.load({"index": str(index)}, environ={})
    assert config.backend == "auto"
    built = IndexDir(index).manifest().get("backend")
    embedding.load_embedder(config, built_with=built)
    embedding.load_embedder(config, built_with=IndexDir(tmp_path / "new").manifest().get("backend"))  # none yet
    embedding.load_embedder(config.replace(backend="onnx-fp32"), built_with=built)  # told: as told
    assert asked == ["onnx", "openvino", "onnx-fp32"]
    # A server of that index runs its runtime.
    from recommender.query.service import QueryService

    QueryService(config)
    assert asked[-1] == "onnx"


@pytest.mark.model
def test_the_pinned_runtime_agrees_and_the_chosen_one_is_the_fastest_that_does():
    """The real MiniLM on this CPU: the runtime its quality pins are measured on passes the agreement
    bar (so a machine that runs another agreeing one keeps that quality), and the one chosen is the
    fastest of those that agree."""
    from recommender.config import Config
    from recommender.embed.models import ENGLISH, REFERENCE_RUNTIME

    config = Config.load({}, environ={})
    choice = runtimes.choose_runtime(config.model, max_tokens=config.max_tokens, cache_dir=config.cache_dir)
    m = choice.measured
    assert m[REFERENCE_RUNTIME[ENGLISH]]["min_cosine"] >= AGREEMENT
    agreeing = [n for n, v in m.items() if not v.get("error") and (n == REFERENCE or v["min_cosine"] >= AGREEMENT)]
    assert choice.runtime == max(agreeing, key=lambda n: m[n]["texts_per_s"])
