"""The shipped per-language fastText models (issue 14): licenses, figures, preprocessing, rebuild."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from toxsieve.classifiers.base import score_documents, sha256_path
from toxsieve.classifiers.fasttext_toxicity import (
    SHIPPED_TOXICITY_MODEL,
    FastTextToxicityClassifier,
    normalise_masks,
    preprocess_v2,
)
from toxsieve.classifiers.metrics import binary_metrics
from toxsieve.classifiers.registry import BUILTIN_MODELS, LANGUAGE_MODEL_LANGUAGES, load_classifier
from toxsieve.classifiers.toxicity_data import (
    MULTILINGUAL_SOURCES,
    SHIPPED_DATA_DIR,
    SOURCE_LICENSES,
    load_sources,
    split_of,
)
from toxsieve.classifiers.train_fasttext import LANGUAGE_SOURCES, language_model_dir

# Licenses a shipped model may train on (the house rule), and the sources that are evaluation-only.
PERMISSIVE = re.compile(r"^(CC0|CC BY 4\.0|CC BY-SA [34]\.0|MIT|Apache-2\.0|BSD-3-Clause)\b")
EVALUATION_ONLY = {"hatebr_pt", "hateval2019_es", "haspeede2_it", "lhsab_ar", "osact2022_ar", "emoevent_es",
                   "mexa3t_es", "hasoc2021_hi"}
NOT_PERMISSIVE = re.compile(r"\bNC\b|non-commercial|no license|unlicensed|not recorded", re.IGNORECASE)


def _shipped_model_dirs() -> list[Path]:
    return [SHIPPED_TOXICITY_MODEL.parent, *(language_model_dir(lang) for lang in LANGUAGE_MODEL_LANGUAGES)]


@pytest.mark.parametrize("folder", _shipped_model_dirs(), ids=lambda p: p.name)
def test_no_shipped_model_trains_on_a_non_commercial_or_unlicensed_source(folder: Path) -> None:
    record = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    sources = record["config"]["sources"]
    assert sources and not set(sources) & EVALUATION_ONLY
    assert set(record.get("training_sources", dict.fromkeys(sources))) == set(sources)
    for source in sources:
        assert source in SOURCE_LICENSES, f"{folder.name}: no license recorded for {source}"
        license_name = record.get("training_sources", {}).get(source, SOURCE_LICENSES[source])
        assert license_name == SOURCE_LICENSES[source]
        assert not NOT_PERMISSIVE.search(license_name)
        assert source == "web_comments" or PERMISSIVE.match(license_name), license_name
    # the counts say what it trained on: only those sources (example source names)
    trained = set(record["train_counts_before_balancing"])
    assert not trained & EVALUATION_ONLY
    if folder != SHIPPED_TOXICITY_MODEL.parent:
        card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
        section = card.split("## Training data", 1)[1].split("\n## ", 1)[0]
        table = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| ")][1:]
        assert sorted(source.strip() for source, _ in table) == sorted(sources)
        for source, license_name in table:  # the card's training sources and their licenses
            assert license_name.strip() == SOURCE_LICENSES[source.strip()]
            assert PERMISSIVE.match(license_name.strip()) and not NOT_PERMISSIVE.search(license_name)
        assert record["model_sha256"] == sha256_path(folder / "model.ftz") and record["model_sha256"] in card


def test_the_repo_holds_no_evaluation_only_data() -> None:
    names = {p.name for p in (SHIPPED_DATA_DIR / "multilingual").iterdir()}
    assert not names & EVALUATION_ONLY
    assert set(MULTILINGUAL_SOURCES) <= {s for srcs in LANGUAGE_SOURCES.values() for s in srcs}


@pytest.mark.parametrize("lang", LANGUAGE_MODEL_LANGUAGES)
def test_model_reaches_the_heldout_auc_its_training_json_records(lang: str) -> None:
    clf = load_classifier(f"fasttext-{lang}")
    assert clf.identity().name == f"toxsieve-fasttext-toxicity-{lang}-v1"
    assert clf.preprocess_version == "v2"  # type: ignore[attr-defined]
    record = json.loads((language_model_dir(lang) / "training.json").read_text(encoding="utf-8"))
    heldout = [e for e in load_sources(SHIPPED_DATA_DIR, LANGUAGE_SOURCES[lang]) if split_of(e.text) == "heldout"]
    scores = np.array([d.toxicity_score for d in score_documents(clf, [e.text for e in heldout], 64)])
    m = binary_metrics(np.array([e.label for e in heldout]), scores, 0.9)
    assert m.n == record["heldout_metrics"]["all"]["n"]
    assert m.roc_auc == pytest.approx(record["heldout_metrics"]["all"]["roc_auc"], abs=1e-4)
    assert m.roc_auc > 0.7  # far from chance: the figure can fail


def test_preprocessing_v2_maps_every_source_mask_to_the_real_thing() -> None:
    real = preprocess_v2("@maria look at http://example.com/x now")
    for masked in ("@user look at URL now", "USER look at @url now", "<user> look at <url> now",
                   "@USER look at URL now", "@anonymized_account look at URL now"):
        assert preprocess_v2(masked) == real, masked
    assert preprocess_v2("HASHTAG ok|LBR|fine<LF>") == "ok fine"
    assert normalise_masks("the url and the user") == "the url and the user"  # words stay words
    assert preprocess_v2("你是个傻瓜!") == "你 是 个 傻 瓜 !"


def test_chinese_pages_are_chunked_by_characters() -> None:
    zh = FastTextToxicityClassifier(BUILTIN_MODELS["fasttext-zh"])
    page = "今天天气很好，我们去公园散步吧。" * 30  # 480 characters, no spaces
    (scores,) = score_documents(zh, [page], 64)
    assert scores.n_chunks == 8  # 64 characters a chunk; the English model sees one "word"
    (en,) = score_documents(load_classifier("fasttext"), [page], 64)
    assert en.n_chunks == 1


@pytest.mark.slow
def test_train_language_rebuilds_the_shipped_model_byte_for_byte(tmp_path: Path) -> None:
    from toxsieve.pipelines.cli.main import main

    assert main(["train", "fasttext", "--language", "ar", "--output", str(tmp_path)]) == 0
    assert sha256_path(tmp_path / "model.ftz") == sha256_path(language_model_dir("ar") / "model.ftz")
