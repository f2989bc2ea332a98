"""The config refuses names that would change an API path or a bucket key, before any task uses them."""

from __future__ import annotations

import pytest

from prism.settings.config import PrismConfigError, load_config

HOSTILE_NAMES = [
    "../accounts",
    "a/b",
    "claudes-friend?x=1",
    "<script>",
    "Claudes-Friend",
    "name\n",
    "",
    "a" * 64,
    "friend#frag",
    "ﬁ-unicode",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_worker_name_that_is_not_a_script_name_is_refused(name):
    with pytest.raises(PrismConfigError, match="cloudflare.worker_name"):
        load_config({"cloudflare": {"worker_name": name}})


@pytest.mark.parametrize(
    "section,key,value",
    [
        ("cloudflare", "d1_database", "../x"),
        ("cloudflare", "vectorize_index", "Bad Index"),
        ("cloudflare", "vectorize_dimensions", 0),
        ("cloudflare", "vectorize_metric", "manhattan"),
        ("backups", "bucket", "UPPER/../bucket"),
        ("backups", "daily_retention_days", 0),
    ],
)
def test_other_hostile_values_are_refused_naming_the_field(section, key, value):
    with pytest.raises(PrismConfigError, match=f"{section}.{key}"):
        load_config({section: {key: value}})


def test_a_real_script_name_passes():
    assert (
        load_config({"cloudflare": {"worker_name": "claudes-friend_2"}})["cloudflare"]["worker_name"]
        == "claudes-friend_2"
    )


def _patterned_string_fields(schema: dict, path: tuple = ()):
    """Every (section, key) of the config schema whose value is a string with a pattern."""
    for key, sub in (schema.get("properties") or {}).items():
        if "pattern" in sub and len(path) == 1:
            yield (*path, key)
        yield from _patterned_string_fields(sub, (*path, key))


PATTERNED = sorted(_patterned_string_fields(__import__("prism.settings.config").settings.config.SCHEMA))


def test_the_schema_has_patterned_fields_to_check():
    assert ("cloudflare", "d1_database") in PATTERNED and ("backups", "bucket") in PATTERNED


@pytest.mark.parametrize(("section", "key"), PATTERNED)
@pytest.mark.parametrize("tail", ["\n", "\r\n", " ", "\u2028"])
def test_a_trailing_newline_or_space_never_passes_a_pattern(section, key, tail):
    good = load_config()[section][key]
    if not isinstance(good, str):  # unset in the shipped config (npm.project_dir): take a good value
        good = {("npm", "project_dir"): "/srv/prism"}[(section, key)]
        assert load_config({section: {key: good}})[section][key] == good
    with pytest.raises(PrismConfigError, match=f"{section}.{key}"):
        load_config({section: {key: good + tail}})
