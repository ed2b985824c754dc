"""Settings: the one table, environment overrides, and docs/configuration.md listing every setting."""
from __future__ import annotations

import dataclasses
import re

import pytest

from recommender.config import SETTINGS, Config, settings_table
from recommender.errors import ConfigError
from tests.conftest import ROOT


def test_defaults_and_environment_overrides():
    c = Config.load(environ={"NEWSREC_MAX_K": "9", "NEWSREC_MIN_SCORE": "0.5"})
    assert c.max_k == 9 and c.min_score == 0.5 and c.default_k == 5
    assert Config.load({"max_k": 6}, environ={"NEWSREC_MAX_K": "9"}).max_k == 6


def test_bad_values_say_how_to_fix():
    with pytest.raises(ConfigError, match="NEWSREC_MAX_K"):
        Config.load(environ={"NEWSREC_MAX_K": "many"})
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.load({"nope": 1})


@pytest.mark.parametrize("env, named", [
    ({"NEWSREC_FEEDBACK": "5"}, "NEWSREC_FEEDBACK"),  # above its range
    ({"NEWSREC_STORY_CONTEXT": "-0.1"}, "NEWSREC_STORY_CONTEXT"),  # below it
    ({"NEWSREC_MIN_SCORE": "nan"}, "NEWSREC_MIN_SCORE"),  # a float, but no number
    ({"NEWSREC_RELOAD_INTERVAL": "inf"}, "NEWSREC_RELOAD_INTERVAL"),
    ({"NEWSREC_DEFAULT_K": "60"}, "NEWSREC_MAX_K"),  # above max_k (50)
])
def test_numbers_out_of_range_are_refused_by_name(env, named):
    with pytest.raises(ConfigError, match=named):
        Config.load(environ=env)


def test_every_default_lies_in_its_range_and_the_api_takes_the_same_range():
    from recommender.config import setting_bounds as bounds
    from web.openapi import RELATED_PARAMS

    Config.load(environ={})  # the defaults pass their own checks
    for s in SETTINGS:
        if s.kind in (int, float) and s.default != 0:
            lo, hi = bounds(s.name)
            assert lo <= s.default <= hi, s.name
    schemas = {name: schema for name, schema, _ in RELATED_PARAMS}
    for name in ("half_life_days", "mmr_lambda", "story_context", "feedback", "min_score"):
        assert (schemas[name]["minimum"], schemas[name]["maximum"]) == bounds(name)


def test_the_docs_document_every_setting():
    readme = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`NEWSREC_([A-Z_]+)`", readme))
    names = {s.name.upper() for s in SETTINGS}
    assert names - documented == set(), "settings missing from docs/configuration.md"
    assert documented - names == set(), "docs/configuration.md documents settings that do not exist"
    table = re.search(r"<!-- settings:start[^\n]*-->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert table and table.group(1) == settings_table(), "docs/configuration.md's settings table is stale: python -m recommender.config"


def test_config_is_typed_and_frozen():
    c = Config.load(environ={})
    assert isinstance(c.min_score, float) and isinstance(c.max_k, int) and isinstance(c.index, str)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.max_k = 3
    assert c.replace(max_k=7).max_k == 7 and c.max_k == 50
    assert [s.name for s in SETTINGS] == [f.name for f in dataclasses.fields(Config)]


def test_core_does_not_import_flask():
    for path in (ROOT / "recommender").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import) (flask|web)\b", text, re.M), path.name


def test_a_word_setting_outside_its_choices_is_refused_naming_the_variable_and_the_choices():
    with pytest.raises(ConfigError, match=r"NEWSREC_COLLAPSE.*|'canonical', 'freshest', 'none'"):
        Config.load({"collapse": "bogus"}, environ={})
    with pytest.raises(ConfigError, match="NEWSREC_COLLAPSE"):
        Config.load(environ={"NEWSREC_COLLAPSE": "newest"})
    assert Config.load(environ={"NEWSREC_COLLAPSE": "freshest"}).collapse == "freshest"
