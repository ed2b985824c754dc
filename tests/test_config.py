"""Settings: the one table, environment overrides, and the README listing every setting."""
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
    assert Config.load({"max_k": 3}, environ={"NEWSREC_MAX_K": "9"}).max_k == 3


def test_bad_values_say_how_to_fix():
    with pytest.raises(ConfigError, match="NEWSREC_MAX_K"):
        Config.load(environ={"NEWSREC_MAX_K": "many"})
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.load({"nope": 1})


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`NEWSREC_([A-Z_]+)`", readme))
    names = {s.name.upper() for s in SETTINGS}
    assert names - documented == set(), "settings missing from the README"
    assert documented - names == set(), "README documents settings that do not exist"
    table = re.search(r"<!-- settings:start[^\n]*-->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert table and table.group(1) == settings_table(), "README's settings table is stale: python -m recommender.config"


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
