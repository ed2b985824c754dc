"""Quality gates: score ../shared evaluation data (as CI has it) against the pins in
tests/quality_pins.json. Without ../shared (a user's clone) they skip, saying so."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED

pytestmark = pytest.mark.quality

PINS = json.loads((ROOT / "tests" / "quality_pins.json").read_text(encoding="utf-8"))


def shared_file(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"quality gate skipped: {path} is not here (CI has ../shared; a user's clone does not)")
    return path


def metric(result: dict, dotted: str) -> float:
    value = result
    for part in dotted.split("."):
        value = value[part]
    return float(value)


def check(name: str, result: dict) -> None:
    pins = PINS[name]
    failures = []
    for dotted, floor in pins.get("min", {}).items():
        got = metric(result, dotted)
        if got < floor:
            failures.append(f"{dotted} = {got} dropped below its pin {floor}")
    for dotted, ceiling in pins.get("max", {}).items():
        got = metric(result, dotted)
        if got > ceiling:
            failures.append(f"{dotted} = {got} rose above its pin {ceiling}")
    for better, worse in pins.get("beats", []):
        if metric(result, better) <= metric(result, worse):
            failures.append(f"{better} ({metric(result, better)}) no longer beats {worse} ({metric(result, worse)})")
    assert not failures, f"{name}: " + "; ".join(failures) + "\n" + json.dumps(result, indent=1)


@pytest.mark.parametrize("name", ["cleaning", "cleaning_html"])
def test_cleaning_gate(name):
    from recommender.evaluation.runs import eval_cleaning

    check(name, eval_cleaning(shared_file(PINS[name]["data"])))


def test_seed_sample_cleans_exactly():
    from recommender.text.cleaning import clean

    gold = json.loads(shared_file("eval/cleaning/seed_gold.json").read_text(encoding="utf-8"))
    c = clean(gold["raw_text"])
    assert c.title == gold["title"]
    assert c.body == gold["clean_text"]
    assert [a.title for a in c.also_read] == gold["also_read"]
    removed = sorted(r.text for r in c.removed if r.reason not in ("title", "also-read"))
    assert removed == sorted(gold["boilerplate_lines"])


def check_max(name: str, result: dict) -> None:
    for dotted, ceiling in PINS[name].get("max", {}).items():
        got = metric(result, dotted)
        assert got <= ceiling, f"{name}: {dotted} = {got} rose above its pin {ceiling}"


@pytest.mark.model
@pytest.mark.parametrize("name", ["same_story_semeval", "same_story_uci", "same_story_msrp"])
def test_same_story_gates(name, real_embedder, real_config):
    from recommender.evaluation.runs import eval_same_story

    check(name, eval_same_story(shared_file(PINS[name]["data"]), real_embedder, real_config))


@pytest.mark.model
def test_multilingual_same_story_gate(multilingual_embedder):
    from recommender.config import Config
    from recommender.evaluation.runs import eval_same_story

    name = "same_story_semeval_multilingual"
    config = Config.load({"model": "multilingual"}, environ={})
    check(name, eval_same_story(shared_file(PINS[name]["data"]), multilingual_embedder, config))


@pytest.mark.model
def test_multilingual_related_lists_gate(multilingual_embedder):
    from recommender.config import Config
    from recommender.evaluation.runs import eval_related

    name = "related_semeval_multilingual"
    config = Config.load({"model": "multilingual"}, environ={})
    check(name, eval_related(shared_file(PINS[name]["data"]), multilingual_embedder, config))


@pytest.mark.model
def test_syndicated_copies_gate(real_embedder, real_config):
    from recommender.evaluation.runs import eval_dups

    check("dups", eval_dups(shared_file(PINS["dups"]["data"]), real_embedder, real_config))


@pytest.mark.model
@pytest.mark.parametrize("name", ["related_uci", "related_wikinews", "related_msvcode", "related_semeval"])
def test_related_gates(name, real_embedder, real_config):
    from recommender.evaluation.runs import eval_related

    result = eval_related(shared_file(PINS[name]["data"]), real_embedder, real_config)
    check(name, result)
    check_max(name, result)
