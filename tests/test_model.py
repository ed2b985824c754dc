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
    from recommender.embedding import default_model_path
    from recommender.onnx_backend import OnnxEmbedder, export_onnx

    path = export_onnx(default_model_path(), tmp_path)
    assert path.exists() and path.name == "model-int8.onnx"
    assert export_onnx(default_model_path(), tmp_path) == path  # cached: exported once
    vec = OnnxEmbedder(cache_dir=str(tmp_path)).encode(["Mexico denies a US operation."])
    assert vec.shape == (1, 384)


def test_torch_and_onnx_backends_agree(real_embedder):
    from recommender.embedding import SentenceTransformerEmbedder

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
    from recommender.articles import parse_article
    from recommender.embedding import article_text

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
    texts = ["Mexico denies a US military operation against drug cartels on its soil.",
             "Short one.", "A much longer text about the city council and its bus network, " * 5]
    together = real_embedder.encode(texts, batch_size=8)
    alone = np.stack([real_embedder.encode([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
