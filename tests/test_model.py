"""Integration: the real all-MiniLM-L6-v2 model, loaded offline once per run."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import make_app

pytestmark = pytest.mark.model


def test_model_loads_offline_and_embeds(real_embedder):
    v = real_embedder.encode(["Mexico denies a US military operation.", "Mexico rejects American troops on its soil.",
                              "The football season opened with a draw."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > 0.6 > v[0] @ v[2]


def test_onnx_export_runs_locally(tmp_path):
    from recommender.embed.embedding import default_model_path
    from recommender.embed.onnx_backend import OnnxEmbedder, export_onnx

    path = export_onnx(default_model_path(), tmp_path)
    assert path.exists() and path.name == "model-int8.onnx"
    assert export_onnx(default_model_path(), tmp_path) == path  # cached: exported once
    vec = OnnxEmbedder(cache_dir=str(tmp_path)).encode(["Mexico denies a US operation."])
    assert vec.shape == (1, 384)


def test_torch_and_onnx_backends_agree(real_embedder):
    from recommender.embed.embedding import SentenceTransformerEmbedder

    assert real_embedder.backend == "onnx"
    texts = ["Mexico denies a US military operation against drug cartels on its soil.",
             "The city council voted to add four bus routes in the northern suburbs."]
    torch_vecs = SentenceTransformerEmbedder(max_tokens=128).encode(texts)
    onnx_vecs = real_embedder.encode(texts)
    assert np.all((torch_vecs * onnx_vecs).sum(axis=1) > 0.98)


def test_related_for_the_scraped_sample_are_on_topic(real_index, real_embedder):
    app = make_app(real_index, real_embedder, backend="onnx")
    body = app.test_client().get("/api/related?id=sample-sheinbaum&k=5").get_json()
    titles = [i["title"] for i in body["items"]]
    assert len(titles) == 5
    assert sum("Mexic" in t or "U.S." in t or "US " in t for t in titles) >= 2, titles
    for item in body["items"]:
        assert 0 < item["similarity"] <= 1 and item["score"] > 0


def test_furniture_does_not_change_the_embedding_much(real_embedder):
    from recommender.text.articles import parse_article
    from recommender.embed.embedding import article_text

    raw = open("demo/scraped/sample-sheinbaum.txt", encoding="utf-8").read()
    clean_art = parse_article({"id": "a", "text": raw})
    vec = lambda a: real_embedder.encode([article_text(a.title, a.body)])[0]
    furnished = parse_article({"id": "b", "text": "ALSO READ: Football club signs striker\n\n" + raw + "\n\nShare this story"})
    assert float(vec(clean_art) @ vec(furnished)) > 0.999


def test_duplicates_of_a_rewritten_copy(real_index, real_embedder):
    app = make_app(real_index, real_embedder, backend="onnx")
    raw = open("demo/scraped/sample-sheinbaum.txt", encoding="utf-8").read()
    copy = raw.replace("Tuesday", "Wednesday").replace("firmly", "strongly") + "\n\nFollow us on Telegram"
    body = app.test_client().post("/api/duplicates", json={"title": "Sheinbaum rejects US raid", "text": copy}).get_json()
    assert body["verdict"] == "near"
    assert body["matches"][0]["id"] == "sample-sheinbaum"
    assert body["matches"][0]["scores"]["cosine"] > 0.9


def test_vectors_do_not_depend_on_batch_mates(real_embedder):
    model = real_embedder.inner  # the model itself, not the run's memory of its answers (conftest)
    texts = ["Mexico denies a US military operation against drug cartels on its soil.",
             "Short one.", "A much longer text about the city council and its bus network, " * 5]
    together = model.encode(texts, batch_size=8)
    alone = np.stack([model.encode([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def _tiny_model(folder, *, pooling: str):
    """A small random MPNet (no token types) with MiniLM's tokenizer, saved as a sentence-transformers folder."""
    import json
    import shutil
    from pathlib import Path

    import torch
    from transformers import MPNetConfig, MPNetModel

    from recommender.embed.embedding import default_model_path

    torch.manual_seed(0)
    src = Path(default_model_path())
    config = MPNetConfig(vocab_size=30527, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=514)
    MPNetModel(config).eval().save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / name, folder / name)
    (folder / "1_Pooling").mkdir()
    modes = {"pooling_mode_cls_token": pooling == "cls", "pooling_mode_mean_tokens": pooling == "mean",
             "pooling_mode_max_tokens": pooling == "max", "pooling_mode_mean_sqrt_len_tokens": False}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **modes}))
    return MPNetModel.from_pretrained(folder).eval()


@pytest.mark.parametrize("pooling", ["cls", "max"])
def test_onnx_backend_runs_models_without_token_types_and_pools_as_configured(tmp_path, pooling):
    """NEWSREC_MODEL may name any local sentence-transformers model: an MPNet takes no token types,
    and a model may pool by its CLS token or by max; the ONNX vectors match the model's own (fp32)."""
    import torch
    from tokenizers import Tokenizer

    from recommender.embed.onnx_backend import OnnxEmbedder

    folder = tmp_path / "tiny"
    folder.mkdir()
    model = _tiny_model(folder, pooling=pooling)
    texts = ["Mexico denies a US operation.", "The council voted to add four bus routes in the north."]
    emb = OnnxEmbedder(str(folder), cache_dir=str(tmp_path / "cache"), runtime="onnx-fp32", max_tokens=64)
    assert emb.dim == 32 and emb.pooling == pooling
    got = emb.encode(texts)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()  # MiniLM's tokenizer file pads to a fixed length
    for text, vec in zip(texts, got):
        ids = torch.tensor([tok.encode(text).ids])
        with torch.no_grad():
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
        want = hidden[0] if pooling == "cls" else hidden.max(dim=0).values
        want = (want / want.norm()).numpy()
        assert float(vec @ want) > 0.999


def test_openvino_backend_is_static_int8_close_to_the_model_and_free_of_batch_mates(tmp_path):
    """The openvino runtime: the model quantised with fixed activation ranges (calibrated at export on
    seeded word strings), so a text's vector is the one it gets alone, whatever it is batched with;
    close to the model's own fp32 vector; exported once (a second embedder reuses it) and the fp32
    file it was made from is not left in the cache."""
    from recommender.embed.onnx_backend import OPENVINO_BATCH, OnnxEmbedder, calibration_texts

    folder = tmp_path / "tiny"
    folder.mkdir()
    _tiny_model(folder, pooling="mean")
    texts = ["Mexico denies a US operation.", "The council voted to add four bus routes in the north.",
             "Der Stadtrat beschloss vier neue Buslinien.", "Совет одобрил четыре новых автобусных маршрута.",
             "市议会投票决定增加四条公交线路。", "A short one."]
    emb = OnnxEmbedder(str(folder), cache_dir=str(tmp_path / "cache"), runtime="openvino", max_tokens=64)
    assert emb.backend == "openvino" and emb.batch_independent and OPENVINO_BATCH > 1
    together = emb.encode(texts)
    alone = np.stack([emb.encode([t])[0] for t in texts])
    assert np.allclose((together * alone).sum(axis=1), 1.0, atol=2e-4)
    fp32 = OnnxEmbedder(str(folder), cache_dir=str(tmp_path / "cache32"), runtime="onnx-fp32", max_tokens=64)
    assert float((together * fp32.encode(texts)).sum(axis=1).min()) > 0.98
    exports = list((tmp_path / "cache" / "onnx").glob("*/*"))
    assert sorted(p.suffix for p in exports) == [".bin", ".json", ".xml"]
    again = OnnxEmbedder(str(folder), cache_dir=str(tmp_path / "cache"), runtime="openvino", max_tokens=64)
    assert np.allclose(again.encode(texts[:2]), alone[:2], atol=1e-5)
    # Calibration spreads over every language a model covers (a path model: all wordfreq lists).
    assert len(calibration_texts(frozenset({"en"}))) >= 96 and len(set(calibration_texts(None))) >= 96


def test_unsupported_pooling_is_a_clear_error(tmp_path):
    import json

    from recommender.errors import ConfigError
    from recommender.embed.onnx_backend import pooling_mode

    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False, "pooling_mode_mean_sqrt_len_tokens": True}))
    with pytest.raises(ConfigError, match="NEWSREC_BACKEND=torch"):
        pooling_mode(tmp_path)
    assert pooling_mode(tmp_path / "elsewhere") == "mean"


def test_exports_of_model_folders_that_are_gone_are_pruned(tmp_path):
    """Each fresh venv exports its model once (the files carry the install's mtimes); an export whose
    model folder was deleted can never be used again and is removed, the rest are kept."""
    import json

    from recommender.embed.onnx_backend import _prune_orphans

    alive = tmp_path / "model"
    alive.mkdir()
    for name, source in (("kept", str(alive)), ("orphan", str(tmp_path / "deleted-clone" / "model"))):
        (tmp_path / "onnx" / name).mkdir(parents=True)
        (tmp_path / "onnx" / name / "source.json").write_text(json.dumps({"model_dir": source}))
    (tmp_path / "onnx" / "being-written").mkdir()  # no source.json yet: another process's export
    _prune_orphans(tmp_path / "onnx")
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == ["being-written", "kept"]


def test_an_export_logs_nothing_of_onnxruntimes_own(tmp_path, caplog):
    import logging

    from recommender.embed.embedding import default_model_path
    from recommender.embed.onnx_backend import export_onnx

    with caplog.at_level(logging.INFO):
        export_onnx(default_model_path(), tmp_path / "fresh")
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]
