"""Config: YAML in, one frozen validated dataclass tree out, errors that name the bad key."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml

from toxsieve.pipelines.config import (
    Config,
    ConfigError,
    config_from_dict,
    default_config_yaml,
    load_config,
)


def test_defaults_validate() -> None:
    cfg = Config()
    cfg.validate()
    assert load_config(None) == cfg
    assert config_from_dict({}) == cfg


def test_default_yaml_round_trips(tmp_path: Path) -> None:
    text = default_config_yaml()
    raw = yaml.safe_load(text)
    assert list(raw) == [f.name for f in dataclasses.fields(Config)]  # every section, in order
    assert raw["language"]["min_score"] == 0.5
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path) == Config()
    assert yaml.safe_load(default_config_yaml()) == Config().to_dict()


def test_yaml_values_reach_the_dataclasses(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        """
input:
  format: jsonl
  url_field: metadata.url
language:
  allowed: [en, de]
  min_score: 0.7
  min_score_per_language: {de: 0.9}
output:
  removed_text: none
exact_dedup:
  enabled: false
""",
        encoding="utf-8",
    )
    cfg = load_config(path)
    assert cfg.input.format == "jsonl" and cfg.input.url_field == "metadata.url"
    assert cfg.language.allowed == ("en", "de")
    assert cfg.language.threshold_for("de") == 0.9
    assert cfg.language.threshold_for("en") == 0.7
    assert cfg.output.removed_text == "none"
    assert cfg.exact_dedup.enabled is False
    assert cfg.extract == Config().extract  # untouched sections keep their defaults
    # The resolved config round-trips through its own YAML (it goes into manifest.json).
    assert config_from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg


def test_empty_file_and_null_section_give_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load_config(empty) == Config()
    assert config_from_dict({"language": None}) == Config()


def test_integer_is_accepted_where_a_number_is_expected() -> None:
    cfg = config_from_dict({"language": {"min_score": 1}})
    assert cfg.language.min_score == 1.0 and isinstance(cfg.language.min_score, float)


@pytest.mark.parametrize(
    ("raw", "named", "suggested"),
    [
        ({"language": {"min_scor": 0.3}}, "language.min_scor", "language.min_score"),
        ({"langauge": {}}, "langauge", "language"),
        ({"output": {"removed_txt": "full"}}, "output.removed_txt", "output.removed_text"),
        ({"input": {"max_record_byte": 10}}, "input.max_record_byte", "input.max_record_bytes"),
    ],
)
def test_unknown_key_names_it_and_suggests_the_close_match(raw: dict, named: str, suggested: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    message = str(err.value)
    assert f"'{named}'" in message
    assert f"did you mean '{suggested}'" in message


def test_unknown_key_without_close_match_lists_the_known_keys() -> None:
    with pytest.raises(ConfigError, match=r"'extract\.zzz'.*known: min_chars, main_content"):
        config_from_dict({"extract": {"zzz": 1}})


def test_unknown_key_in_a_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("language:\n  min_scor: 0.3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="language.min_scor"):
        load_config(path)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"language": {"min_score": "high"}}, "language.min_score"),
        ({"language": {"min_score": True}}, "language.min_score"),  # bool is not a number here
        ({"extract": {"min_chars": 1.5}}, "extract.min_chars"),
        ({"extract": {"min_chars": "200"}}, "extract.min_chars"),
        ({"extract": {"min_chars": True}}, "extract.min_chars"),
        ({"extract": {"main_content": "yes"}}, "extract.main_content"),
        ({"exact_dedup": {"enabled": 1}}, "exact_dedup.enabled"),
        ({"input": {"text_field": 3}}, "input.text_field"),
        ({"language": {"allowed": "en"}}, "language.allowed"),  # a string is not a list of codes
        ({"language": {"allowed": ["en", 3]}}, "language.allowed[1]"),
        ({"language": {"min_score_per_language": ["en"]}}, "language.min_score_per_language"),
        ({"language": {"min_score_per_language": {"en": "x"}}}, "language.min_score_per_language.en"),
        ({"run": {"progress_interval_s": "10s"}}, "run.progress_interval_s"),
    ],
)
def test_wrong_types_name_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert f"'{key}'" in str(err.value)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"language": {"min_score": 1.5}}, "language.min_score"),
        ({"language": {"min_score": -0.1}}, "language.min_score"),
        ({"language": {"min_score_per_language": {"de": 2}}}, "language.min_score_per_language.de"),
        ({"language": {"max_chars": 0}}, "language.max_chars"),
        ({"extract": {"min_chars": -1}}, "extract.min_chars"),
        ({"input": {"max_record_bytes": 0}}, "input.max_record_bytes"),
        ({"output": {"shard_target_bytes": -5}}, "output.shard_target_bytes"),
        ({"output": {"removed_text_chars": 0}}, "output.removed_text_chars"),
        ({"output": {"row_group_rows": 0}}, "output.row_group_rows"),
        ({"run": {"progress_interval_s": 0}}, "run.progress_interval_s"),
        ({"toxicity": {"cascade_threshold": 2}}, "toxicity.cascade_threshold"),
        # a cascade's fast model decides outside the band, so its thresholds must lie inside it
        ({"toxicity": {"cascade_model": "m", "cascade_low": 0.2, "cascade_high": 0.8}}, "toxicity.threshold"),
        ({"toxicity": {"cascade_model": "m", "threshold_per_language": {"de": 0.1}}},
         "toxicity.threshold_per_language.de"),
    ],
)
def test_out_of_range_values_name_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(raw)


@pytest.mark.parametrize("score", [0.0, 1.0])
def test_score_bounds_are_inclusive(score: float) -> None:
    assert config_from_dict({"language": {"min_score": score}}).language.min_score == score


@pytest.mark.parametrize(
    ("raw", "key", "choice"),
    [
        ({"input": {"format": "xml"}}, "input.format", "warc"),
        ({"output": {"removed_text": "partial"}}, "output.removed_text", "truncated"),
        ({"output": {"compression": "lz4"}}, "output.compression", "zstd"),
    ],
)
def test_bad_choices_list_the_allowed_values(raw: dict, key: str, choice: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert f"'{key}'" in str(err.value) and choice in str(err.value)


@pytest.mark.parametrize(
    ("raw", "section"),
    [
        ({"language": ["en", "de"]}, "'language'"),
        ({"output": "fast"}, "'output'"),
        (["input", "output"], "'<root>'"),
        ("just a string", "'<root>'"),
    ],
)
def test_non_mapping_section_is_an_error(raw: Any, section: str) -> None:
    with pytest.raises(ConfigError, match="must be a mapping") as err:
        config_from_dict(raw)
    assert section in str(err.value)


def test_invalid_yaml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("language: {min_score: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")


def test_config_errors_are_value_errors() -> None:
    assert issubclass(ConfigError, ValueError)


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.language = None  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.language.min_score = 0.1  # type: ignore[misc]


def test_config_is_picklable_for_beam_workers() -> None:
    cfg = config_from_dict({
        "input": {"format": "warc", "date_field": "metadata.date"},
        "language": {"allowed": ["en", "fr"], "min_score_per_language": {"fr": 0.8}},
        "output": {"removed_text": "full"},
    })
    restored = pickle.loads(pickle.dumps(cfg))
    assert restored == cfg
    assert restored.language.threshold_for("fr") == 0.8
    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        assert pickle.loads(pickle.dumps(section)) == section


def test_cascade_decides_with_its_own_threshold() -> None:
    tox = config_from_dict({"toxicity": {"cascade_model": "m", "threshold_per_language": {"de": 0.95},
                                         "cascade_threshold": 0.6}}).toxicity
    assert tox.threshold_for("de") == 0.95 and tox.threshold_for("en") == 0.9
    second = tox.cascade_decision()
    assert second.threshold_for("de") == second.threshold_for("en") == 0.6
    assert config_from_dict({"toxicity": {"cascade_low": 0.2, "cascade_high": 0.8}}).toxicity.cascade_model is None


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[2] / "deploy" / "configs").glob("*.yaml")))
def test_shipped_configs_load(path: Path) -> None:
    assert load_config(path).to_dict()  # every key known and every value valid
