"""Faster CPU embedders: the same sentence-transformers model exported to ONNX locally, quantised to
int8 and run with the `tokenizers` fast tokenizer, mean-pooled and normalised. Two runtimes:

- `onnx`: onnxruntime with dynamic int8 (weights int8 per channel; each run measures its own
  activation range), one text a run, since a shared range would tie a text's vector to its batch-mates;
- `openvino`: OpenVINO with static int8 (NNCF: weights and activations int8, the activations' ranges
  set once from calibration text, with SmoothQuant and bias correction). Fixed ranges make a text's
  vector independent of its batch-mates, so it runs small batches; OpenVINO also fuses attention and
  the layer norms, which onnxruntime spent ~40% of a run on. The multilingual model's default.

The export happens once, on this machine, from the local model files (never a download), and is
cached under the cache directory keyed by the model's files. Measured here: about 3x the torch
backend's docs/s (docs/measurements.md); cosines differ from torch by a few hundredths, so thresholds
are calibrated on the backend that serves.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from recommender.embed.models import Centres, prompt_of, resolve_model
from recommender.errors import ConfigError

__all__ = ["OnnxEmbedder", "calibration_texts", "discard_fp32", "export_onnx", "export_openvino", "model_fingerprint", "pooling_mode"]

EXPORT_VERSION = 3  # 3: attention traced in its plain (eager) form


def model_fingerprint(model_dir: Path) -> str:
    """A model folder's files and the export version, as a short hash (names its exports)."""
    h = hashlib.sha256(f"v{EXPORT_VERSION}".encode())
    for name in sorted(p.name for p in model_dir.iterdir() if p.is_file()):
        stat = (model_dir / name).stat()
        h.update(f"{name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return h.hexdigest()[:16]


def _export_dir(model_dir: Path, cache_dir: str | Path) -> Path:
    """Where this model's exports are cached (one folder per model files and export version)."""
    return Path(os.path.expanduser(str(cache_dir))) / "onnx" / model_fingerprint(model_dir)


def _transformer_dir(model_dir: Path) -> Path:
    """The folder holding the transformer weights (sentence-transformers puts them at the root or in 0_*)."""
    if (model_dir / "config.json").exists():
        return model_dir
    for sub in sorted(model_dir.glob("0_*")):
        if (sub / "config.json").exists():
            return sub
    raise ConfigError(f"{model_dir} holds no transformer config.json; it is not a sentence-transformers model")


_POOLING = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}


def pooling_mode(model_dir: Path) -> str:
    """'mean', 'cls' or 'max': how the sentence-transformers model pools its token vectors."""
    for cfg in sorted(model_dir.glob("*_Pooling/config.json")):
        modes = json.loads(cfg.read_text(encoding="utf-8"))
        chosen = [k for k, v in modes.items() if k.startswith("pooling_mode_") and v is True]
        if len(chosen) != 1 or chosen[0] not in _POOLING:
            raise ConfigError(f"{cfg}: the ONNX backend pools by mean, CLS token or max, one at a time; "
                              f"this model asks for {chosen or 'none'}: use NEWSREC_BACKEND=torch")
        return _POOLING[chosen[0]]
    return "mean"  # a bare transformer folder: sentence-transformers pools by mean


def export_onnx(model_dir: str | Path, cache_dir: str | Path, *, quantize: bool = True) -> Path:
    """Export (once) the model's transformer to ONNX, int8-quantised; return the .onnx path."""
    model_dir = Path(model_dir)
    out_dir = _export_dir(model_dir, cache_dir)
    target = out_dir / ("model-int8.onnx" if quantize else "model.onnx")
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    import torch
    from transformers import AutoModel, AutoTokenizer

    tdir = _transformer_dir(model_dir)
    # Attention traced as plain matrix products ("eager"): the default (scaled-dot-product) form traces
    # into masking ops (Where, IsNaN) that cost ~9% of a run on CPU, for the same vectors.
    try:
        model = AutoModel.from_pretrained(str(tdir), local_files_only=True, attn_implementation="eager")
    except (ValueError, TypeError):  # a model class that offers no choice of attention
        model = AutoModel.from_pretrained(str(tdir), local_files_only=True)
    model.eval()
    tok = AutoTokenizer.from_pretrained(str(tdir), local_files_only=True)

    enc = tok(["an example sentence", "another, somewhat longer, example sentence"], return_tensors="pt", padding=True)
    # BERT-style models take token types; MPNet and others take only ids and mask.
    takes = inspect.signature(model.forward).parameters
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in enc and n in takes]

    class Encoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    axes = {0: "batch", 1: "tokens"}
    tmp = out_dir / f".model-{os.getpid()}.onnx"
    # Tracing warns about Python control flow in the model code; the exported graph is checked by
    # the tests (same vectors as torch), so the warnings are noise here.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Encoder(model), tuple(enc[n] for n in names), str(tmp),
            input_names=names, output_names=["last_hidden_state"],
            dynamic_axes={**{n: axes for n in names}, "last_hidden_state": axes},
            opset_version=17, dynamo=False,
        )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        qtmp = out_dir / f".model-int8-{os.getpid()}.onnx"
        # Per-channel weights: cosines within ~0.01 of fp32 here (per-tensor drifted up to 0.18).
        # onnxruntime logs a suggestion to pre-process through the root logger on every export: not ours
        # to act on (the export is measured as it is), so the root logger is held back while it runs.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(str(tmp), str(qtmp), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.setLevel(level)
        os.replace(qtmp, target)
        tmp.unlink()
    else:
        os.replace(tmp, target)
    (out_dir / "source.json").write_text(json.dumps({"model_dir": str(model_dir), "quantized": quantize}))
    _prune_orphans(out_dir.parent)
    return target


# Static int8 (`openvino`): the activations' ranges are set from these texts once, at export. Seeded
# strings of words from each language the model was trained on (wordfreq's lists, as the language
# centres are drawn: e5_weights.language_texts), so no corpus and no one language sets the ranges.
CALIBRATION_TEXTS = 96
CALIBRATION_WORDS = 120  # about the 128-160 tokens a build reads


def calibration_texts(languages: frozenset[str] | None, *, seed: int = 1) -> list[str]:
    """Seeded word strings, spread evenly over the `languages` (ISO 639-1) wordfreq lists; every
    language it lists when `languages` is None (a model of one's own). The export calibrates on seed 1."""
    import wordfreq

    from recommender.embed.e5_weights import WORDFREQ_TO_LANGID, language_texts

    codes = [c for c in sorted(wordfreq.available_languages())
             if languages is None or WORDFREQ_TO_LANGID.get(c, c) in languages]
    if not codes:
        codes = ["en"]
    each = -(-CALIBRATION_TEXTS // len(codes))
    return [t for c in codes for t in language_texts(c, each, seed=seed, words=CALIBRATION_WORDS)]


def export_openvino(model_dir: str | Path, cache_dir: str | Path, languages: frozenset[str] | None) -> Path:
    """Export (once) the model to OpenVINO with static int8 (NNCF), activation ranges calibrated on
    `calibration_texts(languages)`; return the .xml path. The fp32 ONNX it is made from is deleted
    afterwards."""
    model_dir = Path(model_dir)
    out_dir = _export_dir(model_dir, cache_dir)
    target = out_dir / "model-int8-openvino.xml"
    if target.exists():
        return target
    fp32 = export_onnx(model_dir, cache_dir, quantize=False)
    # NNCF reports each use to Intel unless told it runs in CI: a self-hosted service does not.
    os.environ.setdefault("NNCF_CI", "1")
    import logging

    import nncf
    import openvino as ov
    from tokenizers import Tokenizer

    nncf.set_log_level(logging.ERROR)
    tokenizer = Tokenizer.from_file(str(_transformer_dir(model_dir) / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=256)
    core = ov.Core()
    model = core.read_model(str(fp32))
    names = [i.get_any_name() for i in model.inputs]
    feeds = []
    for e in tokenizer.encode_batch(calibration_texts(languages)):
        feed = {"input_ids": [e.ids], "attention_mask": [e.attention_mask], "token_type_ids": [e.type_ids]}
        feeds.append({n: np.asarray(feed[n], dtype=np.int64) for n in names})
    # NNCF draws progress bars on standard output, which carries `newsrec build`'s JSON report.
    with contextlib.redirect_stdout(sys.stderr):
        quantized = nncf.quantize(model, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(feeds))
    tmp = out_dir / f".model-int8-openvino-{os.getpid()}.xml"
    ov.save_model(quantized, str(tmp))
    os.replace(tmp.with_suffix(".bin"), target.with_suffix(".bin"))
    os.replace(tmp, target)
    fp32.unlink(missing_ok=True)  # another process exporting at once may have done it
    return target


def discard_fp32(model_dir: str | Path, cache_dir: str | Path) -> None:
    """Delete the model's full-precision export (made again if a runtime asks for it)."""
    (_export_dir(Path(model_dir), cache_dir) / "model.onnx").unlink(missing_ok=True)


def _prune_orphans(exports: Path) -> None:
    """Delete exports whose model folder is gone (a deleted clone's venv, an older unpack): nothing
    can use them again, and each fresh venv adds one (a model's files carry the install's mtimes).
    Exports of folders that still exist are kept, whichever venv they belong to."""
    import shutil

    for folder in exports.iterdir():
        try:
            source = json.loads((folder / "source.json").read_text(encoding="utf-8"))["model_dir"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not an export of ours, or one being written: leave it
        if not Path(source).is_dir():
            shutil.rmtree(folder, ignore_errors=True)


# Texts a run for the static int8 runtime, whose vectors do not depend on batch-mates (cosine >= 0.9998
# to the text run alone, from padding): batches of 4 ran ~12% faster than single texts here (e5, two
# streams: 82 vs 74 texts/s at 160 tokens), 8 and 16 no faster than 4.
OPENVINO_BATCH = 4


class _OrtRuns:
    """onnxruntime, one single-thread session shared by the streams."""

    def __init__(self, path: Path, *, quantized: bool):
        import onnxruntime as ort

        # Texts a run (None: as the caller asks). Dynamic int8 quantises activations per run, so a text's
        # vector would depend on its batch-mates (cosine drift up to 0.008 measured). One text a run keeps
        # build-time and query-time vectors identical, at the same speed here (121 vs 126 docs/s at batch 8).
        self.batch = 1 if quantized else None

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self._session.get_inputs()]

    def run(self, feed: dict) -> np.ndarray:
        return self._session.run(None, feed)[0]


class _OpenVinoRuns:
    """OpenVINO's CPU plugin, one single-thread stream per core; each calling thread has its own request."""

    batch = OPENVINO_BATCH

    def __init__(self, path: Path, streams: int):
        import openvino as ov

        core = ov.Core()
        # bf16 for what stays floating point where the CPU has it (AVX-512 BF16, AMX): 74 vs 70 texts/s
        # here, the same vectors (cosine to fp32 0.9991 either way).
        caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        self._compiled = core.compile_model(str(path), "CPU", {
            "INFERENCE_NUM_THREADS": streams, "NUM_STREAMS": streams,
            "INFERENCE_PRECISION_HINT": "bf16" if "BF16" in caps else "f32"})
        self.inputs = [i.get_any_name() for i in self._compiled.inputs]
        self._output = self._compiled.outputs[0]
        self._local = threading.local()

    def run(self, feed: dict) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return np.array(request.infer(feed)[self._output])  # a copy: the request reuses its buffer


class OnnxEmbedder:
    """The model's ONNX export run by onnxruntime (dynamic int8 or fp32) or OpenVINO (static int8);
    same interface as the torch embedder."""

    def __init__(self, model: str = "", *, max_tokens: int = 256, cache_dir: str = "~/.cache/newsrec",
                 threads: int | None = None, runtime: str = "onnx"):
        from tokenizers import Tokenizer

        from recommender.embed.models import LANGUAGES

        folder, self.name = resolve_model(model, cache_dir)
        model_dir = Path(folder)
        # A model's default prompt (sentence-transformers' config), put before each text; none for ours.
        self.prompt = prompt_of(model_dir)
        self.centres = Centres.of(model_dir)
        self.max_tokens = max_tokens
        self.backend = runtime
        # One thread per run, and as many concurrent runs as cores for batch work: two single-thread
        # streams measured 116 docs/s against 96 for one two-thread session (MiniLM, 128 tokens, 2 cores).
        self.streams = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or (os.cpu_count() or 1)
        if runtime == "openvino":
            path = export_openvino(model_dir, cache_dir, LANGUAGES.get(self.name))
            self._runs = _OpenVinoRuns(path, self.streams)
        elif runtime in ("onnx", "onnx-fp32"):
            quantized = runtime == "onnx"
            self._runs = _OrtRuns(export_onnx(model_dir, cache_dir, quantize=quantized), quantized=quantized)
        else:
            raise ConfigError(f"unknown ONNX runtime {runtime!r}: 'onnx', 'onnx-fp32' or 'openvino'")
        self._inputs = self._runs.inputs
        # Whether a text's vector is the same whatever else is embedded with it: the runtimes that fix
        # their batch (int8: one text a run, or fixed activation ranges); fp32 batches pad, which moves
        # vectors in the last digits.
        self.batch_independent = self._runs.batch is not None
        self.pooling = pooling_mode(model_dir)
        tdir = _transformer_dir(model_dir)
        if not (tdir / "tokenizer.json").exists():
            raise ConfigError(f"{tdir} has no tokenizer.json (a fast tokenizer file); use NEWSREC_BACKEND=torch")
        self._tokenizer = Tokenizer.from_file(str(tdir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.no_padding()
        self._lock = threading.Lock()
        self.dim = int(self.encode(["dimension probe"]).shape[1])

    @property
    def vectors(self) -> str:
        """How this embedder's vectors are centred (recorded in an index's manifest and checked)."""
        return self.centres.fingerprint

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        batch_size = self._runs.batch or batch_size
        with self._lock:  # the Tokenizer object is not shared across threads
            encodings = self._tokenizer.encode_batch([self.prompt + (t or " ") for t in texts])
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")  # sort by length: little padding
        chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), unit="doc", desc="embedding")
        results: dict[int, np.ndarray] = {}

        def run(chunk: np.ndarray) -> None:
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            types = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                e = encodings[i]
                n = len(e.ids)
                ids[row, :n] = e.ids
                mask[row, :n] = e.attention_mask
                types[row, :n] = e.type_ids
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = self._runs.run({name: feed[name] for name in self._inputs})
            m = mask[:, :, None].astype(np.float32)
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            elif self.pooling == "max":
                pooled = np.where(m > 0, hidden, -np.inf).max(axis=1)
            else:
                pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            # Centred here, row by row as apply() always is, so the language detector runs while the
            # other stream's model run goes on (it was ~5% of a multilingual build, run after them all).
            pooled = self.centres.apply(pooled, [texts[i] for i in chunk])
            for row, i in enumerate(chunk):
                results[int(i)] = pooled[row]
            if bar is not None:
                bar.update(len(chunk))

        if self.streams > 1 and len(chunks) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=self.streams) as pool:
                list(pool.map(run, chunks))
        else:
            for chunk in chunks:
                run(chunk)
        if bar is not None:
            bar.close()
        return np.stack([results[i] for i in range(len(texts))])
