"""Declared stages (pipelines/stages/): what the declarations produce, and each quality rule's core."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from toxsieve.pipelines.config import Config, ConfigError, config_from_dict
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.stages import BY_NAME, STAGES, QualityConfig, signal_columns
from toxsieve.pipelines.stages import text as T
from toxsieve.pipelines.stages.apply import TRANSFORMS, check_signals, run_stage
from toxsieve.pipelines.stages.c4 import C4Config
from toxsieve.pipelines.stages.fineweb import FineWebConfig
from toxsieve.pipelines.stages.gopher_quality import GopherQualityConfig
from toxsieve.pipelines.stages.gopher_repetition import GopherRepetitionConfig
from toxsieve.pipelines.stages.length import LengthConfig
from toxsieve.schemas import METADATA_SCHEMA, Reason, Stage
from toxsieve.schemas.enums import REASONS_BY_STAGE

# The same short passage in three languages (our own translations).
PASSAGES = {
    "en": ("The city library opened a new reading room this spring. It has long wooden tables, quiet corners "
           "and large windows that look out over the river. Students come in the morning to study for their "
           "exams, and older visitors read the newspapers in the afternoon. On weekends the staff organise "
           "readings for children, and the room is often full until the library closes in the evening."),
    "de": ("Die Stadtbibliothek hat in diesem Frühjahr einen neuen Lesesaal eröffnet. Er hat lange Holztische, "
           "ruhige Ecken und große Fenster mit Blick auf den Fluss. Studierende kommen morgens, um für ihre "
           "Prüfungen zu lernen, und ältere Besucher lesen am Nachmittag die Zeitungen. An den Wochenenden "
           "veranstaltet das Personal Lesungen für Kinder, und der Raum ist oft voll, bis die Bibliothek am "
           "Abend schließt."),
    "zh": ("市图书馆今年春天开设了一间新的阅览室。阅览室里有长长的木桌、安静的角落和可以眺望河流的大窗户。"
           "学生们早上来这里为考试复习，年长的读者下午来看报纸。周末，工作人员为孩子们组织朗读活动，"
           "阅览室里常常坐满了人，直到图书馆晚上闭馆。"),
}


def _doc(text: str, language: str | None = "en", doc_id: str = "d") -> Document:
    return Document(doc_id, "mem", 0, "jsonl", text=text, text_hash="h", language=language, language_score=0.99)


def _signals(name: str, doc: Document, cfg: object) -> dict:
    signals = BY_NAME[name].score(doc, cfg)
    check_signals(BY_NAME[name], signals)
    return signals


# --- what the declarations produce -----------------------------------------------------------------


def test_every_declared_stage_has_enum_values_reasons_columns_config_and_a_transform() -> None:
    for stage in STAGES:
        assert Stage(stage.name) in REASONS_BY_STAGE
        assert [r.value for r in REASONS_BY_STAGE[Stage(stage.name)]] == [r for r, _ in stage.reasons]
        for signal in stage.signals:
            field = METADATA_SCHEMA.field(stage.column(signal.name))
            assert field.type == signal.type and field.nullable == signal.nullable
        assert METADATA_SCHEMA.field(stage.flag_column).type == pa.string()
        assert isinstance(stage.config_of(Config()), stage.config)
        if not stage.section:
            assert isinstance(getattr(QualityConfig(), stage.name), stage.config)
        assert TRANSFORMS[stage.name].__name__ == stage.transform


def test_declared_stages_run_where_their_phase_says() -> None:
    order = [s.value for s in Stage]
    url = [s.name for s in STAGES if s.phase == "url"]
    text = [s.name for s in STAGES if s.phase == "text"]
    assert url == ["url_blocklist"] and len(url) + len(text) == len(STAGES)
    assert order[order.index("read") + 1:order.index("extract")] == url  # before any HTML is parsed
    assert order[order.index("extract") + 1:order.index("exact_dedup")] == text and text[0] == "language"


def test_quality_config_is_loaded_and_an_unknown_key_is_named() -> None:
    cfg = config_from_dict({"quality": {"c4": {"enabled": True, "mode": "filter", "min_sentences": 3},
                                        "length": {"min_words_per_language": {"th": 20}}}})
    assert cfg.quality.c4.min_sentences == 3 and cfg.quality.c4.mode == "filter"
    assert cfg.quality.length.floor_for("th") == 20 and cfg.quality.length.floor_for("en") == 30
    with pytest.raises(ConfigError, match=r"unknown config key 'quality\.gopher'.*gopher_"):
        config_from_dict({"quality": {"gopher": {"enabled": False}}})
    with pytest.raises(ConfigError, match=r"unknown config key 'quality\.c4\.min_sentence'.*'quality\.c4\.min_sentences'"):
        config_from_dict({"quality": {"c4": {"min_sentence": 3}}})
    with pytest.raises(ConfigError, match=r"quality\.gopher_quality\.mode"):
        config_from_dict({"quality": {"gopher_quality": {"mode": "drop"}}})
    with pytest.raises(ConfigError, match=r"quality\.gopher_repetition\.max_dup_line_frac"):
        config_from_dict({"quality": {"gopher_repetition": {"max_dup_line_frac": 1.5}}})


def test_score_must_return_the_declared_signals_with_their_types() -> None:
    stage = BY_NAME["length"]
    good = stage.score(_doc(PASSAGES["en"]), LengthConfig())
    check_signals(stage, good)
    with pytest.raises(TypeError, match="declared"):
        check_signals(stage, {**good, "extra": 1})
    with pytest.raises(TypeError, match="tokens"):
        check_signals(stage, {**good, "tokens": 1.5})


def test_filter_removes_with_evidence_and_annotate_only_flags() -> None:
    doc = _doc("Home\nAbout\nContact\nLogin")
    removed = run_stage(BY_NAME["length"], doc, LengthConfig())
    assert removed.removal is not None and removed.removal.reason == Reason("below_length_floor")
    assert removed.removal.score == 4 and removed.removal.threshold == 30
    row = signal_columns(removed)
    assert row["length_flag"] == "below_length_floor" and row["length_words"] == 4
    assert row["c4_flag"] is None and row["c4_sentences"] is None  # a stage that did not run: null
    annotated = run_stage(BY_NAME["length"], doc, LengthConfig(mode="annotate"))
    assert annotated.removal is None and signal_columns(annotated)["length_flag"] == "below_length_floor"


# --- length floor and tokens ----------------------------------------------------------------------


def test_the_same_passage_in_english_german_and_chinese_is_treated_alike() -> None:
    words = {lang: T.word_units(T.words(text)) for lang, text in PASSAGES.items()}
    assert max(words.values()) / min(words.values()) < 1.35, words
    # a character floor is not fair: the Chinese text has well under half the characters
    assert len(PASSAGES["zh"]) < 0.4 * len(PASSAGES["en"])
    for floor, kept in ((30, True), (100, False)):
        cfg = LengthConfig(min_words=floor)
        for lang, text in PASSAGES.items():
            assert run_stage(BY_NAME["length"], _doc(text, lang), cfg).kept is kept, (lang, floor, words[lang])


def test_words_split_han_characters_keep_thai_runs_and_strip_punctuation() -> None:
    assert T.words("Hello, world! (test)") == ("Hello", "world", "test")
    assert T.words("我爱北京。") == ("我", "爱", "北", "京")
    assert T.words("ภาษาไทย ง่าย") == ("ภาษาไทย", "ง่าย")
    assert T.words("हिन्दी भाषा") == ("हिन्दी", "भाषा")  # combining marks stay inside the word
    assert T.word_units(T.words("我爱北京")) == pytest.approx(4 / 1.5)
    assert T.estimate_tokens("abcd" * 10) == 10 and T.estimate_tokens("中文") == 2


# --- Gopher ---------------------------------------------------------------------------------------


def test_gopher_repetition_flags_repeated_lines_and_ngrams_not_prose() -> None:
    stage, cfg = BY_NAME["gopher_repetition"], GopherRepetitionConfig(mode="filter")
    prose = _doc(PASSAGES["en"])
    assert stage.decide({**_signals("gopher_repetition", prose, cfg), "language": "en"}, cfg) is None
    spam = _doc("\n".join(["Buy cheap watches online today"] * 6 + [PASSAGES["en"]]))
    removal = stage.decide({**_signals("gopher_repetition", spam, cfg), "language": "en"}, cfg)
    assert removal is not None and removal.reason == Reason("gopher_dup_lines")
    assert removal.score > removal.threshold == 0.3
    words = ["a", "b", "c", "d", "e"] * 4
    signals = _signals("gopher_repetition", _doc(" ".join(words)), cfg)
    assert signals["dup_5gram_char_frac"] == pytest.approx(15 / 20)  # every word after the first 5-gram
    assert signals["top_2gram_char_frac"] == pytest.approx(8 / 20)  # "a b" x4


def test_gopher_quality_rules_and_their_language_limits() -> None:
    stage, cfg = BY_NAME["gopher_quality"], GopherQualityConfig()
    en = _signals("gopher_quality", _doc(PASSAGES["en"]), cfg)
    assert en["stop_words"] >= 2 and 3 <= en["mean_word_length"] <= 10
    assert stage.decide({**en, "language": "en"}, cfg) is None
    zh = _signals("gopher_quality", _doc(PASSAGES["zh"], "zh"), cfg)
    assert zh["stop_words"] is None and zh["mean_word_length"] is None  # rules that do not apply
    assert stage.decide({**zh, "language": "zh"}, cfg) is None
    no_stop = _doc(" ".join(["Laptops tablets phones cameras accessories cables chargers"] * 10))
    removal = stage.decide({**_signals("gopher_quality", no_stop, cfg), "language": "en"}, cfg)
    assert removal is not None and removal.reason == Reason("gopher_stop_words")
    hashes = _doc(" ".join(f"#tag{i} word" for i in range(40)))
    removal = stage.decide({**_signals("gopher_quality", hashes, cfg), "language": "en"}, cfg)
    assert removal is not None and removal.reason == Reason("gopher_symbol_ratio")


# --- C4 and FineWeb -------------------------------------------------------------------------------

PAGE = "\n".join([
    "Home | News | Contact",
    "Please enable JavaScript to view the comments powered by Disqus.",
    "This website uses cookies to improve your experience.",
    PASSAGES["en"],
    "The reading room is open every day. Entry is free for everyone!",
    "Share this:",
])


def test_c4_line_rules_strip_boilerplate_lines_and_keep_the_text() -> None:
    cfg = C4Config(mode="filter", min_sentences=3)
    signals = _signals("c4", _doc(PAGE), cfg)
    assert signals["lines"] == 6 and signals["lines_kept"] == 2
    assert signals["lines_no_terminal_punct"] == 2 and signals["lines_javascript"] == 1
    assert signals["lines_policy"] == 1 and signals["sentences"] == 6
    out = run_stage(BY_NAME["c4"], _doc(PAGE), cfg)
    assert out.kept and out.text == PASSAGES["en"] + "\n" + "The reading room is open every day. Entry is free for everyone!"
    assert out.text_hash != "h"  # the cleaned text is re-hashed for exact dedup
    assert run_stage(BY_NAME["c4"], _doc(PAGE), dataclasses.replace(cfg, mode="annotate")).text == PAGE
    removed = run_stage(BY_NAME["c4"], _doc(PAGE), C4Config(mode="filter"))  # C4's 5 sentences: 6 survive
    assert removed.kept
    lorem = run_stage(BY_NAME["c4"], _doc(PAGE + "\nLorem ipsum dolor sit amet, consectetur elit."), cfg)
    assert lorem.removal is not None and lorem.removal.reason == Reason("c4_lorem_ipsum")
    code = run_stage(BY_NAME["c4"], _doc(PAGE + "\nfunction f() { return 1; } is the code."), cfg)
    assert code.removal is not None and code.removal.reason == Reason("c4_curly_bracket")


def test_c4_counts_chinese_sentences_and_terminal_marks() -> None:
    signals = _signals("c4", _doc(PASSAGES["zh"], "zh"), C4Config())
    assert signals["lines_kept"] == 1 and signals["sentences"] == 4


def test_fineweb_flags_list_like_pages_not_prose() -> None:
    stage, cfg = BY_NAME["fineweb"], FineWebConfig(mode="filter")
    assert stage.decide({**_signals("fineweb", _doc(PASSAGES["en"]), cfg), "language": "en"}, cfg) is None
    menu = _doc("\n".join(f"Category {i}" for i in range(30)) + "\n" + PASSAGES["en"])
    removal = stage.decide({**_signals("fineweb", menu, cfg), "language": "en"}, cfg)
    assert removal is not None and removal.reason == Reason("fineweb_line_punct")
    assert removal.score < 0.12
