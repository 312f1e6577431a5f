"""
testdata/blame-answers: the blame module's real output per scenario, shared
with the Go side's fake salt-api. Set SIFT_UPDATE_FIXTURES=1 to rewrite them.
"""

import json
import os

import pytest

from harness import BLAME_FUNCTIONS, FIXTURES
from scenarios import SCENARIOS


def render(answer, tmp_path):
    """The fixture bytes: sorted keys, two-space indent, temp dir removed from paths."""
    text = json.dumps(answer, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return text.replace(str(tmp_path), "")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fixture_matches_module_output(name, tmp_path):
    minion = SCENARIOS[name](tmp_path)
    answer = minion.answer()
    assert list(answer) == list(BLAME_FUNCTIONS)
    text = render(answer, tmp_path)
    path = FIXTURES / (name + ".json")
    if os.environ.get("SIFT_UPDATE_FIXTURES") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), "missing {}: run with SIFT_UPDATE_FIXTURES=1".format(path)
    assert path.read_text(encoding="utf-8") == text


def test_no_stray_fixtures():
    """Every fixture file comes from a scenario, so none goes stale unnoticed."""
    names = {p.stem for p in FIXTURES.glob("*.json")}
    assert names == set(SCENARIOS)
