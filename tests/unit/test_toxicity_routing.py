"""Per-language toxicity routing (issue 14): the routing table, the unsupported path, its stats."""

from __future__ import annotations

import pytest

from toxsieve.pipelines.config import DEFAULT_LANGUAGE_MODELS, ConfigError, ToxicityConfig, config_from_dict
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.io.outputs import metadata_row
from toxsieve.pipelines.runtime.run import _toxicity_stats, summary_table
from toxsieve.pipelines.runtime.transforms import funnel_keys
from toxsieve.pipelines.stages.toxicity import apply_toxicity, mark_unsupported


def _tox(**raw: object) -> ToxicityConfig:
    return config_from_dict({"toxicity": raw}).toxicity


def test_default_table_scores_english_and_the_shipped_languages_only() -> None:
    tox = _tox()
    assert tox.route_for("en") == ("fasttext", None)
    for lang, model in DEFAULT_LANGUAGE_MODELS.items():
        assert tox.route_for(lang) == (model if lang != "en" else "fasttext", None)
    # no English scores on text the English model cannot read
    assert tox.route_for("es") is None and tox.route_for("hi") is None and tox.route_for(None) is None


def test_model_is_the_english_model_and_models_lies_over_the_builtin_table() -> None:
    assert _tox(model="/m/en.ftz").route_for("en") == ("/m/en.ftz", None)
    tox = _tox(model="/m/en.ftz", models={"de": "fasttext-de", "ar": "fasttext-ar", "default": "/m/multi"})
    assert tox.route_for("en") == ("/m/en.ftz", None)  # en falls back to `model`
    assert tox.route_for("de") == ("fasttext-de", None) and tox.route_for("ar") == ("fasttext-ar", None)
    assert tox.route_for("zh") == ("fasttext-zh", None)  # the built-in table stays under `models`
    assert tox.route_for("sw") == ("/m/multi", None) and tox.route_for(None) == ("/m/multi", None)
    assert _tox(models={"en": "fasttext-de"}).route_for("en") == ("fasttext-de", None)


def test_old_behaviour_and_turning_languages_off() -> None:
    everything = _tox(models={"default": "fasttext"}, builtin_models=False)
    assert {everything.route_for(lang) for lang in ("en", "de", "zh", "xx")} == {("fasttext", None)}
    off = _tox(models={"en": "none", "zh": "none"})
    assert off.route_for("en") is None and off.route_for("zh") is None and off.route_for("pt") == ("fasttext-pt", None)
    only = _tox(builtin_models=False, models={"de": "fasttext-de"})
    assert only.routes() == {"de": ("fasttext-de", None), "en": ("fasttext", None)}


def test_cascades_per_language() -> None:
    tox = _tox(cascade_model="/ckpt/en", cascade_models={"de": "/ckpt/de"}, models={"de": "fasttext-de"})
    assert tox.route_for("en") == ("fasttext", "/ckpt/en")
    assert tox.route_for("de") == ("fasttext-de", "/ckpt/de")
    with pytest.raises(ConfigError, match="cascade_models.ar"):
        _tox(cascade_models={"ar": "/ckpt/ar"}, models={"de": "fasttext-de"})
    with pytest.raises(ConfigError, match="outside the cascade band"):
        _tox(cascade_models={"en": "/ckpt"}, threshold=0.99)


def test_empty_model_name_is_an_error() -> None:
    with pytest.raises(ConfigError, match="toxicity.models"):
        _tox(models={"de": ""})


def _doc(lang: str | None) -> Document:
    return Document(f"d-{lang}", "mem://x", 0, "jsonl", text="some text", language=lang)


def test_unsupported_document_has_no_score_and_is_not_flagged() -> None:
    doc = mark_unsupported(_doc("sw"))
    row = metadata_row(doc)
    assert row["toxicity_supported"] is False and row["toxicity_score"] is None
    assert row["toxicity_flagged"] is None and row["toxicity_model"] is None and doc.kept
    scored = apply_toxicity(_doc("en"), {"non_toxic": 0.2, "toxic": 0.8}, ("toxic",), "m", "sha", 1,
                            ToxicityConfig(mode="filter", threshold=0.5))
    assert metadata_row(scored)["toxicity_supported"] is True and not scored.kept


def test_stats_count_scored_and_unsupported_documents_per_language() -> None:
    rows = [metadata_row(mark_unsupported(_doc(lang))) for lang in ("sw", "sw", "hi", None)]
    rows += [metadata_row(apply_toxicity(_doc(lang), {"non_toxic": 0.9, "toxic": 0.1}, ("toxic",), "m", "s", 1,
                                         ToxicityConfig())) for lang in ("en", "en", "de")]
    counts: dict[str, int] = {}
    for row in rows:
        for key in funnel_keys(row):
            counts[key] = counts.get(key, 0) + 1
    tox = _toxicity_stats(counts)
    assert tox["scored"] == 3 and tox["by_language"] == {"en": 2, "de": 1}
    assert tox["unsupported"] == 4 and tox["unsupported_by_language"] == {"sw": 2, "hi": 1, "und": 1}
    stats = {"run_id": "r", "wall_time_s": 1.0, "docs_per_s": 7.0, "read": 7, "documents": 7, "dead_lettered": 0,
             "funnel": [], "removed_by_stage": {}, "kept": 7, "dead_letter_by_error": {}, "languages": {},
             "toxicity": tox, "conservation": {"read": 7, "accounted": 7, "ok": True}}
    assert "4 in languages without a model (no score, never removed): sw 2, hi 1, und 1" in summary_table(stats, "o")
