"""The config's layers: the shipped file, the deployment's overlay file (PRISM_CONFIG_OVERLAY), then the
`prism_config` Variable; and the keys that say which programs run (npm, indexing)."""

from __future__ import annotations

import json

import pytest

from prism.settings.config import BUNDLE, PrismConfigError, load_config, schedule


@pytest.fixture
def overlay(monkeypatch, tmp_path):
    def use(data) -> str:
        path = tmp_path / f"overlay-{len(list(tmp_path.iterdir()))}.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        monkeypatch.setenv("PRISM_CONFIG_OVERLAY", str(path))
        return str(path)

    return use


def test_without_an_overlay_the_shipped_config_runs_nothing(monkeypatch):
    monkeypatch.delenv("PRISM_CONFIG_OVERLAY", raising=False)
    config = load_config()
    assert config["indexing"]["indexer_command"] is None and config["indexing"]["embedder_command"] is None
    assert config["npm"]["project_dir"] is None and config["indexing"]["env"] == config["npm"]["env"] == []
    monkeypatch.setenv("PRISM_CONFIG_OVERLAY", "")  # compose's empty default is no overlay
    assert load_config()["indexing"]["indexer_command"] is None


def test_the_demo_overlay_names_the_demo_indexer(monkeypatch):
    monkeypatch.setenv("PRISM_CONFIG_OVERLAY", "include/prism.demo.json")  # relative to the bundle
    indexing = load_config()["indexing"]
    assert indexing["indexer_command"] == ["python", "-m", "prism_demo_indexer", "index"]
    assert indexing["working_dir"] == "include" and indexing["env"] == ["PRISM_DEMO_NOW"]
    assert indexing["repos"] == json.loads((BUNDLE / "include" / "prism.config.json").read_text())["indexing"]["repos"]


def test_the_variable_goes_over_the_overlay_over_the_file(overlay):
    overlay(
        {
            "indexing": {"indexer_command": ["prism-index"], "embedder_command": ["prism-embed"]},
            "schedules": {"prism_weekly": "0 5 * * 0"},
        }
    )
    config = load_config({"indexing": {"embedder_command": ["other-embed"]}})
    assert (config["indexing"]["indexer_command"], config["indexing"]["embedder_command"]) == (
        ["prism-index"],
        ["other-embed"],
    )
    assert config["cloudflare"]["d1_database"] == "claudes-friend-db"  # the file's, untouched
    assert schedule("prism_weekly", None) == "0 5 * * 0"


@pytest.mark.parametrize(
    "data, message",
    [
        ("{not json", "cannot read the PRISM config overlay"),
        ("[1, 2]", "must be a JSON object"),
        ({"indexing": {"indexer_command": "python -m x"}}, "indexing.indexer_command"),
        ({"indexing": {"env": ["AIRFLOW__CORE__FERNET_KEY\nX"]}}, "indexing.env"),
        ({"indexing": {"indexer_comand": ["x"]}}, "indexer_comand"),
    ],
)
def test_a_bad_overlay_is_an_error_naming_it(overlay, data, message):
    overlay(data)
    with pytest.raises(PrismConfigError, match=message):
        load_config()


def test_a_missing_overlay_file_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PRISM_CONFIG_OVERLAY", str(tmp_path / "absent.json"))
    with pytest.raises(PrismConfigError, match="absent.json"):
        load_config()
