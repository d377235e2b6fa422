"""The audit report's aggregation over metadata/ (vectorised) and its SVG charts."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from toxsieve.pipelines.cli.audit import SCORE_BINS, load_report, render_html, render_text, report_json
from toxsieve.pipelines.cli.charts import fmt_int, fmt_score, fmt_share, hbar_chart, heatmap, histogram
from toxsieve.schemas import AUDIT_SCHEMA, METADATA_SCHEMA


def _meta_row(i: int, language: str | None, score: float | None, decision: str = "kept", stage: str | None = None,
              **extra: object) -> dict:
    row = {f.name: None for f in METADATA_SCHEMA}
    row.update(doc_id=f"d{i:04d}", source_path="in.jsonl", source_offset=i, source_format="jsonl", n_bytes_raw=100,
               n_chars=100 * (i + 1), language=language, toxicity_score=score, decision=decision, stage=stage,
               reason=None if stage is None else "x", near_dup_cluster_size=1,
               toxicity_flagged=None if score is None else score >= 0.9)
    row.update(extra)
    return row


def _write_run(root: Path, rows: list[dict], supported: list[bool | None] | None) -> Path:
    (root / "metadata").mkdir(parents=True)
    table = pa.Table.from_pylist(rows, schema=METADATA_SCHEMA)
    column = table.schema.get_field_index("toxicity_supported")
    if supported is None:  # a run written before the column existed: tolerated when it is absent
        table = table.remove_column(column)
    else:
        table = table.set_column(column, "toxicity_supported", pa.array(supported, pa.bool_()))
    pq.write_table(table, root / "metadata" / "part-0.parquet")
    (root / "removed").mkdir()
    pq.write_table(AUDIT_SCHEMA.empty_table(), root / "removed" / "part-0.parquet")
    (root / "stats.json").write_text(json.dumps({"run_id": "r", "read": len(rows)}))
    return root


@pytest.mark.parametrize("with_column", [True, False])
def test_null_scores_and_the_optional_supported_column(tmp_path: Path, with_column: bool) -> None:
    rows = [_meta_row(0, "en", 0.95), _meta_row(1, "en", 0.1), _meta_row(2, "en", 0.5),
            _meta_row(3, "yo", None),  # unsupported language: no score
            _meta_row(4, None, None, "removed", "extract", n_chars=None),
            _meta_row(5, "en", 0.999, "removed", "toxicity", blocklist_terms=["a", "b"]),
            _meta_row(6, "de", 0.0, url_blocklist_category="adult", blocklist_terms=["a"], near_dup_cluster_size=3)]
    supported = [True, True, True, False, None, True, True] if with_column else None
    report = load_report(_write_run(tmp_path / "run", rows, supported))
    assert report.toxicity_scored == 5 and report.toxicity_at[0.9] == 2 and report.toxicity_at[0.5] == 3
    en = report.languages["en"]
    assert (en.read, en.kept, en.scored, en.flagged) == (4, 3, 4, 2)
    assert [i for i, n in enumerate(en.score_hist) if n] == [5, 25, 47, SCORE_BINS - 1]  # 0.1, 0.5, 0.95, 0.999
    assert report.languages["de"].score_hist[0] == 1  # a score of exactly 0 lands in the first bin
    assert report.languages["yo"].unsupported == (1 if with_column else 0) and report.languages["yo"].scored == 0
    assert report.languages["(none)"].removed == 1
    assert report.removed_by_stage_language == {("extract", "(none)"): 1, ("toxicity", "en"): 1}
    assert report.blocklist_terms == {"a": 2, "b": 1} and report.url_categories == {"adult": 1}
    assert report.cluster_sizes == {1: 6, 3: 1}
    assert sum(report.length_hist["kept"]) == 5 and sum(report.length_hist["removed"]) == 1
    assert report_json(report)["languages"]["yo"]["unsupported"] == (1 if with_column else 0)
    page = render_html(report)
    assert "not scored because the model does not support" in page if with_column else "not scored" not in page
    assert "yo" in render_text(report)


def test_one_number_format() -> None:
    assert fmt_int(20000) == "20,000" and fmt_int(None) == "–"
    assert fmt_share(1, 3) == "33.3%" and fmt_share(1, 0) == "–" and fmt_share(38, 81_246) == "<0.1%"
    assert fmt_share(0, 5) == "0.0%"
    assert fmt_score(0.9) == "0.9" and fmt_score(0.27712) == "0.2771" and fmt_score(float("nan")) == "–"


def test_charts_escape_their_labels_and_titles() -> None:
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    charts = [hbar_chart(evil, [(evil, (3,))], [(evil, "#000")]),
              heatmap(evil, [evil], [evil], {(evil, evil): 2}),
              histogram(evil, [1, 2, 3], markers=[(0.5, evil)], band=(0.2, 0.8), band_label=evil)]

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: set[str] = set()
            self.attrs: set[str] = set()

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.add(tag)
            self.attrs.update(name for name, _ in attrs)

    for svg in charts:
        parser = Tags()
        parser.feed(svg)
        assert not parser.tags & {"script", "img"} and not {a for a in parser.attrs if a.startswith("on")}
        assert "&lt;script&gt;" in svg
        assert re.search(r'<svg [^>]*width="\d+" height="\d+"', svg)  # a known size for layout


def test_histograms_mark_the_threshold_per_language_and_the_cascade_band(tmp_path: Path) -> None:
    rows = [_meta_row(i, lang, s) for i, (lang, s) in enumerate([("en", 0.2), ("en", 0.95), ("zh", 0.6)])]
    report = load_report(_write_run(tmp_path / "run", rows, None))
    report.manifest = {"config": {"toxicity": {"model": "fasttext", "mode": "filter", "threshold": 0.9,
                                               "threshold_per_language": {"zh": 0.5}, "cascade_model": "minilm",
                                               "cascade_low": 0.3, "cascade_high": 0.97, "cascade_threshold": 0.5}}}
    page = render_html(report)
    assert "threshold 0.9" in page and "threshold 0.5" in page  # en's and zh's own thresholds
    assert page.count("cascade band (fast score): 0.3 – 0.97") == 3  # all languages, en, zh
    assert "cascade to <code>minilm</code>" in page
