"""The Beam shell of extraction and of the declared language stage, on TestPipeline with the local runner: splits, metrics."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import local_runner
from toxsieve.pipelines.config import ExtractConfig, LanguageConfig
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.runtime.transforms import ExtractText
from toxsieve.pipelines.stages.apply import TRANSFORMS

IdentifyLanguage = TRANSFORMS["language"]  # the declared language stage's Beam step

ENGLISH = ("The committee met on Tuesday to discuss the new library budget and the opening hours "
           "of the reading room, which many residents had asked to extend into the evening. ")
GERMAN = ("Der Ausschuss traf sich am Dienstag, um den neuen Haushalt der Bibliothek und die "
          "Öffnungszeiten des Lesesaals zu besprechen, die viele Bewohner verlängern wollten. ")


def _doc(doc_id: str, text: str, offset: int = 0) -> Document:
    return Document(doc_id, "mem://test", offset, "jsonl", text=text, n_bytes_raw=len(text))


def _pipeline() -> BeamTestPipeline:
    return BeamTestPipeline(runner=local_runner())


def test_extract_text_splits_short_documents_into_removed_with_reason() -> None:
    docs = [_doc("a", ENGLISH * 3), _doc("b", "too short"), _doc("c", "   \n\t "), _doc("d", GERMAN * 3)]
    p = _pipeline()
    kept, removed = p | beam.Create(docs) | ExtractText(ExtractConfig(min_chars=50))
    assert_that(kept | "KeptIds" >> beam.Map(lambda d: d.doc_id), equal_to(["a", "d"]), label="kept")
    assert_that(removed | "Why" >> beam.Map(lambda d: (d.doc_id, d.removal.reason.value)),
                equal_to([("b", "too_short"), ("c", "empty_text")]), label="removed")
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]
                if c.key.metric.namespace == "extract"}
    assert counters == {"too_short": 1, "empty_text": 1}


def test_identify_language_annotates_and_filters_by_allowed_languages() -> None:
    docs = [_doc("en", ENGLISH * 2), _doc("de", GERMAN * 2)]
    with _pipeline() as p:
        kept, removed = (p | beam.Create(docs) | ExtractText(ExtractConfig(min_chars=10))
                         )[0] | IdentifyLanguage(LanguageConfig(allowed=("en",), min_score=0.3))
        assert_that(kept | "K" >> beam.Map(lambda d: (d.doc_id, d.language)), equal_to([("en", "en")]), label="k")
        assert_that(removed | "R" >> beam.Map(lambda d: (d.doc_id, d.language, d.removal.reason.value)),
                    equal_to([("de", "de", "language_not_allowed")]), label="r")
