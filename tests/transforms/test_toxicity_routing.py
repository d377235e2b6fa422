"""ScoreToxicity routes each document by its LID language; languages without a model are never removed."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import local_runner
from toxsieve.classifiers.base import score_documents
from toxsieve.classifiers.registry import load_classifier
from toxsieve.pipelines.config import ToxicityConfig
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.runtime.inference import ScoreToxicity

TEXTS = {
    "en": ["You are a worthless idiot, shut up.", "Thanks for the edit, the citation is now correct."],
    "de": ["Du bist ein erbärmlicher Idiot, halt die Klappe.", "Danke für die Korrektur, die Quelle stimmt jetzt."],
    "sw": ["Asante sana kwa msaada wako leo.", "Habari za asubuhi, rafiki yangu."],
}


def _docs() -> list[Document]:
    out = []
    for lang, texts in TEXTS.items():
        for i, text in enumerate(texts * 3):  # 6 per language: batches that do not divide the input
            out.append(Document(f"{lang}{i}", "mem://x", i, "jsonl", text=text, language=lang))
    return out


def test_each_language_goes_to_its_model_and_unsupported_ones_are_never_removed() -> None:
    cfg = ToxicityConfig(models={"en": "fasttext", "de": "fasttext-de"}, builtin_models=False, mode="filter",
                         threshold=0.0)
    expected = {}
    for lang, model in (("en", "fasttext"), ("de", "fasttext-de")):
        clf = load_classifier(model)
        for d in [d for d in _docs() if d.language == lang]:
            score = score_documents(clf, [d.text or ""], 64)[0].toxicity_score
            expected[d.doc_id] = (clf.identity().name, round(score, 6))

    def check_removed(removed: list[Document]) -> None:
        # threshold 0: every scored document is removed, by its own language's model
        got = {d.doc_id: (d.toxicity_model, d.toxicity_score) for d in removed}
        assert got.keys() == expected.keys()
        for doc_id, (model, score) in got.items():
            assert model == expected[doc_id][0] and abs(score - expected[doc_id][1]) < 1e-6  # type: ignore[operator]
        assert all(d.toxicity_supported is True and d.removal is not None for d in removed)

    def check_kept(kept: list[Document]) -> None:
        assert sorted(d.doc_id for d in kept) == sorted(f"sw{i}" for i in range(6))
        for d in kept:
            assert d.toxicity_supported is False and d.toxicity_score is None and d.toxicity_model is None
            assert d.toxicity_flagged is None and d.removal is None

    with BeamTestPipeline(runner=local_runner()) as p:
        kept, removed = p | beam.Create(_docs()) | ScoreToxicity(cfg, batch_size=4)
        assert_that(removed, check_removed, label="removed")
        assert_that(kept, check_kept, label="kept")


def test_a_default_model_scores_every_other_language_and_no_model_removes_nothing() -> None:
    everything = ToxicityConfig(models={"default": "fasttext"}, builtin_models=False)
    nothing = ToxicityConfig(models={"en": "none"}, builtin_models=False, mode="filter", threshold=0.0)

    def all_scored(out: list[Document]) -> None:
        assert len(out) == 18
        assert {d.toxicity_model for d in out} == {"toxsieve-fasttext-toxicity-v1"}

    def none_scored(out: list[Document]) -> None:
        assert len(out) == 18 and all(d.toxicity_supported is False and d.kept for d in out)

    with BeamTestPipeline(runner=local_runner()) as p:
        docs = p | beam.Create(_docs())
        kept, removed = docs | "Everything" >> ScoreToxicity(everything)
        assert_that((kept, removed) | "All" >> beam.Flatten(), all_scored, label="all")
        kept2, removed2 = docs | "Nothing" >> ScoreToxicity(nothing)
        assert_that(kept2, none_scored, label="none")
        assert_that(removed2, equal_to([]), label="no-removals")


def test_checkpoints_and_cascades_per_language_run_in_their_own_branches(tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.conftest import build_tiny_model

    tiny = build_tiny_model(tmp_path_factory.mktemp("tiny") / "binary")
    # en: the checkpoint alone; de: fastText-de with a cascade to the checkpoint over the whole band;
    # sw: no model
    cfg = ToxicityConfig(models={"en": str(tiny), "de": "fasttext-de"}, builtin_models=False,
                         cascade_models={"de": str(tiny)}, cascade_low=0.0, cascade_high=1.0, threshold=0.5,
                         device="cpu")

    def check(out: list[Document]) -> None:
        by_lang: dict[str, list[Document]] = {}
        for d in out:
            by_lang.setdefault(d.language or "", []).append(d)
        assert all(d.toxicity_model == tiny.name and d.toxicity_fast_score is None for d in by_lang["en"])
        assert all(d.toxicity_model == tiny.name and d.toxicity_fast_score is not None for d in by_lang["de"])
        assert all(d.toxicity_supported is False and d.toxicity_score is None for d in by_lang["sw"])
        assert len(out) == 18

    with BeamTestPipeline(runner=local_runner()) as p:
        kept, removed = p | beam.Create(_docs()) | ScoreToxicity(cfg, batch_size=4)
        assert_that((kept, removed) | beam.Flatten(), check)
