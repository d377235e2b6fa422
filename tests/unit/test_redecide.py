"""redecide's building blocks: declared measurement settings, the toxicity rule on stored signals,
which setting changes can be re-decided, and --set parsing."""

from __future__ import annotations

import dataclasses
import gzip
import json
import typing

import pytest

from tests.conftest import CRAWL
from toxsieve.pipelines.cli.redecide import RedecideError, changed_keys, check_settings
from toxsieve.pipelines.config import Config, ConfigError, ToxicityConfig, merge_config, parse_overrides
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.stages import STAGES
from toxsieve.pipelines.stages.toxicity import apply_toxicity, decide_toxicity


def _texts() -> list[str]:
    out = []
    for path in sorted((CRAWL / "dolma_tests").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            out += [json.loads(line)["text"] for line in fh]
    return out[:25]


def _perturbed(value: typing.Any, hint: typing.Any) -> typing.Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 7
    if isinstance(value, float):
        return value * 0.5 + 0.013
    if value is None:
        return 0.37
    if isinstance(value, typing.Mapping):
        return {"en": 0.5}
    return None


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_only_declared_measurement_settings_change_what_a_stage_measures(stage: typing.Any) -> None:
    """redecide may change every config field a stage does not declare in ``measure``: changing one must
    leave ``score`` (the stored signals) unchanged on real texts."""
    fields = {f.name for f in dataclasses.fields(stage.config)}
    assert set(stage.measure) <= fields
    base = stage.config(enabled=True)
    docs = [Document(f"d{i}", "s", i, "jsonl", text=t, language="en") for i, t in enumerate(_texts())]
    loaded = stage.load(base) if stage.load else None  # a word list is loaded once, as on a worker
    expected = [stage.measure_signals(doc, base, loaded) for doc in docs]
    hints = typing.get_type_hints(stage.config)
    for name in sorted(fields - set(stage.measure) - {"enabled", "mode"}):
        value = _perturbed(getattr(base, name), hints[name])
        if value is None:
            continue
        cfg = dataclasses.replace(base, **{name: value})
        assert [stage.measure_signals(doc, cfg, loaded) for doc in docs] == expected, f"{stage.name}.{name} changes score()"


def _signals(**kw: typing.Any) -> dict[str, typing.Any]:
    base = {"language": "en", "toxicity_score": 0.8, "toxicity_model": "m", "toxicity_fast_score": None,
            "toxicity_n_chunks": 2, "toxicity_supported": True,
            "toxicity_label_scores": [{"label": "clean", "score": 0.2}, {"label": "toxic", "score": 0.8}]}
    return {**base, **kw}


def test_toxicity_rule_on_stored_signals() -> None:
    cfg = ToxicityConfig(mode="filter", threshold=0.7, threshold_per_language={"de": 0.9}, cascade_model="x",
                         cascade_low=0.3, cascade_high=0.95, cascade_threshold=0.85)
    removal = decide_toxicity(_signals(), cfg)
    assert removal is not None and removal.threshold == 0.7 and removal.matched == ("toxic",)
    assert decide_toxicity(_signals(language="de"), cfg) is None  # per-language threshold
    assert decide_toxicity(_signals(toxicity_fast_score=0.6), cfg) is None  # the cascade model decided: 0.85
    assert decide_toxicity(_signals(toxicity_supported=False, toxicity_score=None), cfg) is None  # no model


def test_the_pipeline_and_redecide_make_the_same_removal() -> None:
    cfg = ToxicityConfig(mode="filter", threshold=0.5)
    doc = apply_toxicity(Document("d", "s", 0, "jsonl", text="t", language="en"),
                         {"clean": 0.3333333333, "toxic": 0.6666666666}, ("toxic",), "m", "sha", 3, cfg)
    stored = _signals(toxicity_score=doc.toxicity_score, toxicity_n_chunks=3,
                      toxicity_label_scores=[{"label": k, "score": v} for k, v in doc.toxicity_label_scores])
    assert doc.removal == decide_toxicity(stored, cfg)
    assert (doc.toxicity_threshold, doc.toxicity_flagged) == (0.5, True)


@pytest.mark.parametrize(("settings", "ok"), [
    (["language.min_score=0.9", "language.min_score_per_language.de=0.3", "language.allowed=[en]"], True),
    (["blocklists.words.policy.min_matches=5", "blocklists.words.per_language={de: {min_distinct_terms: 2}}"], True),
    (["quality.c4.min_sentences=2", "quality.fineweb.enabled=false", "quality.length.min_words_per_language.th=20"],
     True),
    (["toxicity.threshold=0.5", "toxicity.cascade_threshold=0.6", "toxicity.device=cpu", "run.progress_interval_s=1"],
     True),
    (["toxicity.models.fr=fasttext"], False),
    (["toxicity.toxic_labels=[insult]"], False),
    (["quality.c4.min_words_per_line=5"], False),
    (["quality.gopher_quality.stop_words.en=[the]"], False),
    (["extract.min_chars=5"], False),
    (["near_dedup.enabled=false"], False),
    (["limits.max_text_chars=100"], False),
])
def test_which_changes_can_be_re_decided(settings: list[str], ok: bool) -> None:
    from toxsieve.pipelines.config import config_from_dict

    src = Config()
    new = config_from_dict(merge_config(src.to_dict(), parse_overrides(settings)))
    if ok:
        assert check_settings(src, new)
    else:
        with pytest.raises(RedecideError, match="cannot re-decide"):
            check_settings(src, new)


def test_changed_keys_name_leaves() -> None:
    old = {"a": {"b": 1, "c": {"x": 1}}, "d": [1]}
    assert changed_keys(old, {"a": {"b": 2, "c": {"x": 1, "y": 2}}, "d": [1, 2]}) == ["a.b", "a.c.y", "d"]


@pytest.mark.parametrize(("value", "message"), [
    ("language", "--set expects KEY=VALUE"),
    ("language..x=1", "--set expects KEY=VALUE"),
    ("a=[1", "not valid YAML"),
])
def test_bad_settings(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        parse_overrides([value])


def test_setting_inside_a_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match="'language.min_score' is a value"):
        merge_config(Config().to_dict(), parse_overrides(["language.min_score.x=1"]))
