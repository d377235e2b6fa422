"""`toxsieve audit` on real runs: counts agree with stats.json, evidence is shown, HTML is escaped."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import DEMO_CONFIG, run_on_sample
from toxsieve.pipelines.cli.main import main

pytestmark = pytest.mark.e2e

HOSTILE_TEXT = ('<script>alert("x")</script><img src=x onerror=alert(1)> & "quoted" text that is long enough '
                'to be kept by the quality rules of the sample run. ') * 8
HOSTILE_URL = 'http://evil.example/"><script>alert(2)</script>'


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The crawl sample plus JSONL records whose text and URL are HTML/script injections, removed
    as exact duplicates (their text is long enough and English), and one unparsable line."""
    root = tmp_path_factory.mktemp("audit")
    src = root / "hostile.jsonl"
    lines = [json.dumps({"id": f"hostile-{i}", "metadata": {"url": HOSTILE_URL}, "text": HOSTILE_TEXT})
             for i in range(3)]  # the demo config reads the URL from metadata.url
    src.write_text("\n".join([*lines, '{"id": "cut", "text": ']) + "\n")
    out = root / "out"
    assert run_on_sample(out, DEMO_CONFIG, "audit-run", str(src)) == 0
    return out


def _stats_counts(out: Path) -> dict[tuple[str, str], int]:
    stats = json.loads((out / "stats.json").read_text())
    return {(stage, reason): n for stage, reasons in stats["removed_by_stage"].items() for reason, n in reasons.items()}


def test_json_report_agrees_with_stats_and_shows_the_smallest_doc_ids(hostile_run: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(hostile_run), "--json", "--examples", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["complete"] and report["run_id"] == "audit-run"
    assert {(r["stage"], r["reason"]): r["documents"] for r in report["removed"]} == _stats_counts(hostile_run)
    removed = pq.read_table(hostile_run / "removed").to_pylist()
    for entry in report["removed"]:
        ids = sorted(r["doc_id"] for r in removed if (r["stage"], r["reason"]) == (entry["stage"], entry["reason"]))
        assert [e["doc_id"] for e in entry["examples"]] == ids[:2]
        for example in entry["examples"]:
            assert example["detail"] and "text" not in example  # evidence shown; text only as an excerpt
    dup = next(r for r in report["removed"] if r["reason"] == "exact_duplicate")
    assert any(e["duplicate_of"] == "hostile-0" for e in dup["examples"])
    assert report["dead_letters"] and report["dead_letters"][0]["error_type"]
    tox = report["toxicity"]
    meta = [m for m in pq.read_table(hostile_run / "metadata").to_pylist() if m["toxicity_score"] is not None]
    assert tox["scored"] == len(meta)
    assert tox["at_or_above"]["0.9"] == sum(m["toxicity_score"] >= 0.9 for m in meta)


def test_filters_and_text_report(hostile_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(hostile_run), "--stage", "language"]) == 0
    text = capsys.readouterr().out
    assert "low_language_confidence" in text and "exact_duplicate" not in text
    assert "score 0.277; threshold 0.5" in text  # the Aragonese page: evidence, not just a count


def test_html_report_escapes_every_document_string(hostile_run: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert main(["audit", str(hostile_run), "--html", str(page), "--examples", "10"]) == 0
    html = page.read_text()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html  # the text, escaped
    assert "&quot;&gt;&lt;script&gt;alert(2)" in html  # the URL, escaped

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: set[str] = set()
            self.attrs: set[str] = set()

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.add(tag)
            self.attrs.update(name for name, _ in attrs)

    parser = Tags()
    parser.feed(html)
    assert not parser.tags & {"script", "img", "iframe", "object"}
    assert not {a for a in parser.attrs if a.startswith("on")}
    assert "Content-Security-Policy" in html
    assert "<h2>Funnel</h2>" in html and "<td>exact_dedup</td>" in html


def test_doc_id_explains_one_document(hostile_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(hostile_run), "--doc-id", "hostile-1"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [m["decision"] for m in found["metadata"]] == ["removed"]
    assert found["removed"][0]["reason"] == "exact_duplicate" and found["removed"][0]["duplicate_of"] == "hostile-0"
    assert main(["audit", str(hostile_run), "--doc-id", "no-such-doc"]) == 2
    assert "no document" in capsys.readouterr().err


def test_not_an_output_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(tmp_path)]) == 2
    assert "not a toxsieve output directory" in capsys.readouterr().err


def test_incomplete_or_damaged_runs(hostile_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(hostile_run, copy)
    (copy / "manifest.json").unlink()
    assert main(["audit", str(copy)]) == 0
    assert "WARNING: no manifest.json" in capsys.readouterr().out
    next((copy / "removed").glob("*.parquet")).write_bytes(b"PAR1 not really")
    assert main(["audit", str(copy)]) == 2
    assert "not a readable Parquet file" in capsys.readouterr().err
    assert main(["audit", "gs://bucket/run"]) == 2
    assert "local directories only" in capsys.readouterr().err


def test_flags_of_annotate_mode_stages_are_counted_from_metadata_with_examples(
        hostile_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the demo config runs the C4 and FineWeb rules in annotate mode: what they would remove stays
    assert main(["audit", str(hostile_run), "--json", "--examples", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    meta = pq.read_table(hostile_run / "metadata").to_pylist()
    expected: dict[tuple[str, str], list[str]] = {}
    for row in meta:
        for stage in ("c4", "fineweb"):
            if row[f"{stage}_flag"]:
                expected.setdefault((stage, row[f"{stage}_flag"]), []).append(row["doc_id"])
    assert expected, "the sample has documents the annotate-mode rules flag"
    got = {(f["stage"], f["reason"]): f for f in report["flagged"]}
    assert {key: f["documents"] for key, f in got.items()} == {key: len(ids) for key, ids in expected.items()}
    stats = json.loads((hostile_run / "stats.json").read_text())["flagged_by_stage"]
    assert all(stats[st][rs] == f["documents"] for (st, rs), f in got.items())
    for key, f in got.items():
        assert [e["doc_id"] for e in f["examples"]] == sorted(expected[key])[:2]
        signal = {"c4": "c4_sentences", "fineweb": "fineweb_line_punct_frac"}[key[0]]
        assert all(signal in e for e in f["examples"])  # the stored signals, as evidence
    assert not any(f["stage"] in ("length", "word_blocklist") for f in report["flagged"])  # filter mode: removals
    assert main(["audit", str(hostile_run), "--stage", "c4"]) == 0
    text = capsys.readouterr().out
    assert "flagged, not removed" in text and "c4_too_few_sentences" in text and "fineweb_" not in text
    page = tmp_path / "report.html"
    assert main(["audit", str(hostile_run), "--html", str(page)]) == 0
    assert 'id="flagged"' in page.read_text()
