"""The evaluation harness scores what the service serves: texts are cleaned as the API cleans them."""
from __future__ import annotations

import json

import pytest

from recommender.evaluation import runs as evaluation
from recommender.embed.embedding import article_text

HEADLINE = "Council votes to expand the northern bus network"
STORY = [
    "The city council voted on Tuesday to expand the bus network, adding four routes that will serve the northern suburbs.",
    "Mayor Ana Ruiz said the plan would cost 12 million dollars over three years and be paid for by a new parking levy.",
    "Opposition councillors argued that the levy would hurt small shops, and asked for a study before any money is spent.",
]
OTHER = [
    "A storm closed the airport for a second day on Friday, stranding thousands of travellers in the terminal overnight.",
    "Airline staff handed out blankets and water while engineers checked the runway lights for damage.",
]


def scraped(*blocks: str) -> str:
    return "\n\n".join(blocks)


def test_pairs_are_scored_on_the_cleaned_texts(hash_embedder):
    clean_copy = scraped(HEADLINE, *STORY)
    # the same story as a scraper stored it: the headline twice and an advertisement slot
    furnished = scraped(HEADLINE, HEADLINE, STORY[0], "Advertisement", *STORY[1:])
    rows = [
        {"text1": furnished, "text2": clean_copy, "Overall": 1.0},
        {"text1": clean_copy, "text2": scraped("Airport shut by storm", *OTHER), "Overall": 4.0},
    ]
    a, b, cos, _, _ = evaluation.pair_similarities(rows, hash_embedder, 128)
    assert abs(cos[0] - 1.0) < 1e-5, "furniture left in the text changed its vector"
    assert "Advertisement" not in a[0]
    assert cos[1] < 0.5
    # the raw texts embed differently, so the equality above comes from the cleaning
    raw = hash_embedder.encode([article_text("", furnished, 128), article_text("", clean_copy, 128)])
    assert float(raw[0] @ raw[1]) < 0.999


def test_semeval_and_msrp_reports(hash_embedder):
    same = scraped(HEADLINE, *STORY)
    other = scraped("Airport shut by storm", *OTHER)
    rows = [
        {"text1": same, "text2": scraped(HEADLINE, *STORY[:2]), "Overall": 1.0, "lang1": "en", "lang2": "en"},
        {"text1": same, "text2": scraped(HEADLINE, STORY[0]), "Overall": 2.0, "lang1": "en", "lang2": "en"},
        {"text1": same, "text2": other, "Overall": 4.0, "lang1": "en", "lang2": "en"},
    ]
    out = evaluation.eval_semeval(rows, hash_embedder)
    assert out["english"]["pairs"] == 3
    assert out["english"]["pearson_newsrec"] > 0.9
    msrp = [{"text1": r["text1"], "text2": r["text2"], "label": int(r["Overall"] <= 2)} for r in rows]
    out = evaluation.eval_msrp(msrp, hash_embedder)
    assert out["accuracy_newsrec"] == 1.0


def test_the_pair_cosine_is_the_one_post_api_compare_answers(tmp_path, hash_embedder):
    from tests.conftest import make_app

    furnished = scraped(HEADLINE, HEADLINE, STORY[0], "Advertisement", *STORY[1:])
    pairs = [(furnished, scraped(HEADLINE, *STORY[:2])), (furnished, scraped("Airport shut by storm", *OTHER))]
    rows = [{"text1": a, "text2": b} for a, b in pairs]
    _, _, cos, _, _ = evaluation.pair_similarities(rows, hash_embedder, 128)
    from recommender.config import Config
    from recommender.evaluation.datasets import as_served

    judged = evaluation.judge_served([as_served(a) for a, _ in pairs], [as_served(b) for _, b in pairs], cos,
                                     Config.load({"max_tokens": 128}, environ={}))
    client = make_app(tmp_path / "no-index", hash_embedder).test_client()  # comparing needs no index
    for (a, b), ours, p in zip(pairs, cos, judged.p_retelling):
        answer = client.post("/api/compare", json={"a": {"body": a}, "b": {"body": b}})
        assert answer.status_code == 200, answer.get_json()
        assert abs(answer.get_json()["scores"]["cosine"] - float(ours)) < 1e-4
        # and the judgment `newsrec eval same-story` scores is the one /api/compare answers
        assert abs(answer.get_json()["scores"]["p_retelling"] - float(p)) < 1e-3


def test_semeval_pairs_that_share_an_article_are_one_story():
    rows = [{"pair_id": "1_2"}, {"pair_id": "2_3"}, {"pair_id": "4_5"}, {"pair_id": "5_1"}, {"pair_id": "7_8"}, {}]
    groups = evaluation.pair_story_groups(rows)
    assert groups[:4] == ["1", "1", "1", "1"] and groups[4] == "7" and groups[5] not in groups[:5]


def test_gold_story_lists_show_the_nearest_other_stories_once_each():
    """The reference beside UCI related lists: for each headline, the closest member of each of the
    k nearest other stories (never its own story, never a story twice), nearest first."""
    import numpy as np

    order = ["a1", "a2", "b1", "b2", "c1"]
    story = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "c1": "C"}
    vectors = np.array([[1.0, 0.0, 0.0], [0.99, 0.14, 0.0], [0.8, 0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    got = evaluation._gold_story_lists(order, vectors @ vectors.T, story, k=2)
    assert got["a1"] == ["b1", "c1"]  # b1 is a1's closest B; B is listed once though b2 is also near
    assert got["b2"] == ["a2", "c1"]
    assert got["c1"] == ["a1", "b1"]


def _related_sweep():
    """bench/related_sweep.py, the cross-validated chooser of related-list settings (bench/ is no package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "related_sweep.py"
    spec = importlib.util.spec_from_file_location("related_sweep", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sweep_line(name: str, categories: list[float], own: float = 0.05, scored: list[int] | None = None) -> dict:
    scored = scored or [10] * len(categories)
    folds = {str(f): {"own_story_share": own, "distinct_stories": 4.8, "category_p_at_5": c, "scored": n}
             for f, (c, n) in enumerate(zip(categories, scored))}
    return {"settings": {"x": name}, "uci": {"headline": {"folds": folds}}}


def test_the_sweep_chooses_each_fold_on_the_other_folds_only():
    sweep = _related_sweep()
    lucky = _sweep_line("lucky", [0.95, 0.5, 0.5, 0.5])  # best only because of fold 0
    steady = _sweep_line("steady", [0.6, 0.6, 0.6, 0.6])
    greedy = _sweep_line("greedy", [0.99] * 4, own=0.2)  # best category, but shows the story being read
    out = sweep.choose([lucky, steady, greedy])
    chosen = {o["held_out_fold"]: o["settings"]["x"] for o in out if "held_out_fold" in o}
    # Held out, fold 0 cannot see its own 0.95: lucky's mean on folds 1-3 is 0.5, steady's 0.6.
    assert chosen == {"0": "steady", "1": "lucky", "2": "lucky", "3": "lucky"}
    pooled = {o["held_out_pooled"]: o["scores"]["uci.headline"]["category_p_at_5"] for o in out if "held_out_pooled" in o}
    assert pooled == {"all": round((0.6 + 0.5 * 3) / 4, 4), "half 0": 0.55, "half 1": 0.5}


def test_the_sweep_pools_folds_by_the_lists_scored():
    sweep = _related_sweep()
    # Folds 1-3 together: (0.7 * 30 + 0.4 * 10 + 0.4 * 10) / 50 = 0.58, above the other's 0.55.
    big = _sweep_line("big", [0.5, 0.7, 0.4, 0.4], scored=[10, 30, 10, 10])
    flat = _sweep_line("flat", [0.5, 0.55, 0.55, 0.55], scored=[10, 30, 10, 10])
    out = sweep.choose([big, flat])
    assert next(o for o in out if o.get("held_out_fold") == "0")["settings"] == {"x": "big"}


def test_verdict_scores_by_hand():
    from recommender.evaluation.metrics import verdict_scores

    out = verdict_scores([0.9, 0.8, 0.3, 0.6], [1, 1, 0, 0])
    assert out == {"pairs": 4, "positives": 2, "balanced_accuracy": 0.75, "ece": 0.3, "auc": 1.0, "reliability": [
        {"from": 0.3, "weight": 0.25, "mean_p": 0.3, "observed": 0.0},
        {"from": 0.6, "weight": 0.25, "mean_p": 0.6, "observed": 0.0},
        {"from": 0.8, "weight": 0.25, "mean_p": 0.8, "observed": 1.0},
        {"from": 0.9, "weight": 0.25, "mean_p": 0.9, "observed": 1.0}]}
    # the ECE is the bins' weighed gap between what was said and what was seen
    assert sum(b["weight"] * abs(b["mean_p"] - b["observed"]) for b in out["reliability"]) == pytest.approx(out["ece"])
    assert verdict_scores([0.5, 0.5, 0.2], [1, 0, 0])["auc"] == 0.75  # a tie counts half
    assert verdict_scores([0.7, 0.2], [0, 0]) == {"pairs": 2, "positives": 0, "verdict_right": 0.5}


def test_paired_difference_counts_queries_and_brackets_the_mean():
    from recommender.evaluation.metrics import paired_difference

    same = paired_difference([0.5, 1.0, 0.0], [0.5, 1.0, 0.0])
    assert same == {"queries": 3, "higher": 0, "lower": 0, "same": 3, "mean": 0.0, "ci95": [0.0, 0.0]}
    # one query of 40 found one link more: a mean above 0, an interval that still holds 0
    a, b = [1.0] + [0.5] * 39, [0.5] * 40
    one = paired_difference(a, b)
    assert (one["higher"], one["lower"], one["same"], one["mean"]) == (1, 0, 39, 0.0125)
    assert one["ci95"][0] == 0.0 < one["ci95"][1]
    # every query higher: the interval lies above 0, and the same scores give the same interval
    many = paired_difference([1.0] * 20 + [0.5] * 20, [0.5] * 20 + [0.5] * 20)
    assert many["ci95"][0] > 0 and many == paired_difference([1.0] * 20 + [0.5] * 20, [0.5] * 40)
    assert paired_difference([], []) == {"queries": 0, "higher": 0, "lower": 0, "same": 0}


def test_a_pair_set_without_english_pairs_reports_null_not_nan(hash_embedder):
    rows = [{"text1": scraped(HEADLINE, *STORY), "text2": scraped(HEADLINE, *STORY[:2]), "Overall": o,
             "lang1": "de", "lang2": "de"} for o in (1.0, 4.0)]
    out = evaluation.eval_semeval(rows, hash_embedder)
    assert out["english"]["pairs"] == 0 and out["english"]["pearson_newsrec"] is None
    assert "NaN" not in json.dumps(out)
    judged = out["all"]["judgment"]["retelling"]
    assert judged["pairs"] == 2 and judged["positives"] == 1 and 0 <= judged["balanced_accuracy"] <= 1
