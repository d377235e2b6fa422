"""The Beam shell of each stage, on TestPipeline with the local runner: splits, grouping, metrics."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import local_runner
from toxsieve.pipelines.config import ExactDedupConfig, ExtractConfig, InputConfig, LanguageConfig, OutputConfig
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.io.outputs import curated_row
from toxsieve.pipelines.runtime.transforms import (
    DropExactDuplicates,
    ExtractText,
    IdentifyLanguage,
    ReadCrawlShards,
    SplitDeadLetters,
    WriteParquetShards,
)
from toxsieve.schemas import CURATED_SCHEMA

ENGLISH = ("The committee met on Tuesday to discuss the new library budget and the opening hours "
           "of the reading room, which many residents had asked to extend into the evening. ")
GERMAN = ("Der Ausschuss traf sich am Dienstag, um den neuen Haushalt der Bibliothek und die "
          "Öffnungszeiten des Lesesaals zu besprechen, die viele Bewohner verlängern wollten. ")


def _doc(doc_id: str, text: str, offset: int = 0) -> Document:
    return Document(doc_id, "mem://test", offset, "jsonl", text=text, n_bytes_raw=len(text))


def _pipeline() -> BeamTestPipeline:
    return BeamTestPipeline(runner=local_runner())


def test_read_crawl_shards_reads_every_record_and_dead_letters_the_bad_file(crawl_dir: Path) -> None:
    patterns = [str(crawl_dir / "resiliparse_cc2020" / "warcfile.warc.gz"),
                str(crawl_dir / "dolma_tests" / "*.jsonl.gz"),
                str(crawl_dir / "ccnet_synthetic" / "sample.warc.txt")]
    cfg = InputConfig(format="auto")
    with _pipeline() as p:
        # sample.warc.txt has no recognised suffix: read it as WET through a second reader.
        records = (
            (p | "Known" >> ReadCrawlShards(patterns[:2], cfg),
             p | "Forced" >> ReadCrawlShards(patterns[2:], InputConfig(format="wet")))
            | beam.Flatten()
        )
        docs, dead = records | SplitDeadLetters()
        assert_that(docs | "CountDocs" >> beam.combiners.Count.Globally(), equal_to([16 + 20]), label="docs")
        assert_that(dead | beam.Map(lambda d: (Path(d.source_path).name, d.error_type)),
                    equal_to([("sample.warc.txt", "WarcParseError")]), label="dead")


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


@pytest.mark.parametrize("order", [0, 1, 2])
def test_drop_exact_duplicates_keeps_smallest_doc_id_whatever_the_order(order: int) -> None:
    texts = {"d3": ENGLISH, "d1": ENGLISH, "d2": ENGLISH, "x9": GERMAN, "x1": GERMAN + "!", "u": "unique " * 20}
    items = list(texts.items())
    items = items[order:] + items[:order]
    docs = [_doc(i, t, n) for n, (i, t) in enumerate(items)]
    with _pipeline() as p:
        extracted, _ = p | beam.Create(docs) | ExtractText(ExtractConfig(min_chars=1))
        kept, removed = extracted | DropExactDuplicates(ExactDedupConfig())
        assert_that(kept | "K" >> beam.Map(lambda d: d.doc_id), equal_to(["d1", "x9", "x1", "u"]), label="k")
        assert_that(removed | "R" >> beam.Map(lambda d: (d.doc_id, d.removal.duplicate_of)),
                    equal_to([("d2", "d1"), ("d3", "d1")]), label="r")


def test_write_parquet_shards_bounds_file_size_and_loses_no_row(tmp_path: Path) -> None:
    n_docs = 53  # deliberately not a multiple of anything
    docs = [_doc(f"doc-{i:03d}", f"{ENGLISH} #{i}", i) for i in range(n_docs)]
    cfg = OutputConfig(shard_target_bytes=2_000)
    out = str(tmp_path / "kept")
    with _pipeline() as p:
        extracted, _ = p | beam.Create(docs) | ExtractText(ExtractConfig(min_chars=1))
        files = extracted | WriteParquetShards(out, CURATED_SCHEMA, curated_row, cfg, n_shards=3)
        assert_that(files | beam.Map(lambda f: f[1]) | beam.CombineGlobally(sum), equal_to([n_docs]))
    paths = sorted((tmp_path / "kept").glob("*.parquet"))
    assert len(paths) > 1, "a small shard target must give several files"
    assert not list((tmp_path / "kept").glob(".tmp-*")), "temporary files must be renamed away"
    ids = []
    for path in paths:
        table = pq.read_table(path)
        assert table.schema.equals(CURATED_SCHEMA, check_metadata=False)
        shard_ids = table.column("doc_id").to_pylist()
        assert shard_ids == sorted(shard_ids), "rows are sorted inside each file"
        ids += shard_ids
    assert sorted(ids) == [d.doc_id for d in docs]


def test_write_parquet_shards_writes_an_empty_file_for_an_empty_output(tmp_path: Path) -> None:
    with _pipeline() as p:
        _ = (p | beam.Create([]) | WriteParquetShards(str(tmp_path / "kept"), CURATED_SCHEMA, curated_row,
                                                      OutputConfig()))
    (path,) = (tmp_path / "kept").glob("*.parquet")
    table = pq.read_table(path)
    assert table.num_rows == 0 and table.schema.equals(CURATED_SCHEMA, check_metadata=False)
