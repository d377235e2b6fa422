"""`toxsieve classify`, `toxsieve evaluate` and `toxsieve train fasttext` through the CLI."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from toxsieve.classifiers.base import score_documents
from toxsieve.classifiers.fasttext_toxicity import DEFAULT_MAX_WORDS, DEFAULT_THRESHOLD, FastTextToxicityClassifier
from toxsieve.pipelines.cli.main import main

pytestmark = pytest.mark.e2e

RECORDS = [
    {"id": "doc-17", "text": "You are a pathetic idiot and nobody wants you here."},
    {"id": "doc-03", "text": "Thanks for fixing the citation, the article reads much better now."},
    {"id": "doc-99", "text": ""},
    {"id": "doc-01", "text": "The weather was mild.\n\n" * 80 + "Shut up, you stupid moron."},
    {"id": "doc-42", "text": "We will meet at the library on Tuesday to plan the garden."},
]
COLUMNS = ["id", "toxicity_score", "score_non_toxic", "score_toxic", "n_chunks"]


def _jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["in.jsonl", "in.jsonl.gz", "in.jsonl.zst"])
def test_classify_jsonl_keeps_ids_and_order(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = _jsonl(tmp_path / name, RECORDS)
    out = tmp_path / "scores.parquet"
    assert main(["classify", "--input", str(src), "--output", str(out), "--batch-size", "2"]) == 0
    table = pq.read_table(out)
    assert table.column_names == COLUMNS
    assert table.schema.field("toxicity_score").type == pa.float32()
    assert table.schema.field("n_chunks").type == pa.int32()
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [r["id"] for r in RECORDS]  # input order, not sorted
    for row in rows:
        assert 0.0 <= row["toxicity_score"] <= 1.0
        assert row["toxicity_score"] == pytest.approx(row["score_toxic"])
        assert row["score_non_toxic"] + row["score_toxic"] >= 0.99  # max per label over chunks
    by_id = {r["id"]: r for r in rows}
    assert by_id["doc-17"]["toxicity_score"] >= DEFAULT_THRESHOLD > by_id["doc-03"]["toxicity_score"]
    assert by_id["doc-01"]["n_chunks"] > 1 and by_id["doc-01"]["toxicity_score"] >= DEFAULT_THRESHOLD
    meta = table.schema.metadata
    assert meta[b"toxsieve.model"] == b"toxsieve-fasttext-toxicity-v1"
    assert "scored 5 documents" in capsys.readouterr().out


def test_classify_parquet_with_integer_ids_and_other_fields(tmp_path: Path) -> None:
    ids = [905, 3, 77, 12, 4]
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"doc": ids, "body": [r["text"] for r in RECORDS], "extra": [1] * 5}), src)
    out = tmp_path / "scores.parquet"
    assert main(["classify", "--input", str(src), "--output", str(out), "--id-field", "doc",
                 "--text-field", "body", "--max-words", "16"]) == 0
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == ids and table.schema.field("id").type == pa.int64()
    expected = score_documents(FastTextToxicityClassifier(), [r["text"] for r in RECORDS], 16)
    np.testing.assert_allclose(table.column("toxicity_score").to_numpy(),
                               [s.toxicity_score for s in expected], rtol=1e-6)
    assert table.column("n_chunks").to_pylist() == [s.n_chunks for s in expected]


def test_classify_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _jsonl(tmp_path / "in.jsonl", RECORDS)
    out = tmp_path / "o.parquet"
    assert main(["classify", "--input", str(tmp_path / "missing.jsonl"), "--output", str(out)]) == 2
    assert "input not found" in capsys.readouterr().err
    assert main(["classify", "--input", str(src), "--output", str(out), "--model", str(tmp_path / "none.ftz")]) == 2
    assert "toxicity model not found" in capsys.readouterr().err
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    assert main(["classify", "--input", str(src), "--output", str(out), "--model", str(tmp_path / "hf")]) == 2
    assert "safetensors" in capsys.readouterr().err  # a Hugging Face directory without safe weights
    assert main(["classify", "--input", str(src), "--output", str(out), "--id-field", "nope"]) == 2
    assert "no field 'nope'" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("name", ["in.jsonl.gz", "in.jsonl.zst"])
def test_classify_refuses_a_truncated_compressed_file(tmp_path: Path, name: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    src = _jsonl(tmp_path / name, RECORDS * 50)
    src.write_bytes(src.read_bytes()[:-40])  # cut inside the last frame / member
    out = tmp_path / "o.parquet"
    assert main(["classify", "--input", str(src), "--output", str(out)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_matches_a_hand_computation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = ["you stupid idiot", "thanks, nice work", "shut up moron", "see you at the meeting",
             "what a lovely garden", "you are a disgusting pig"]
    labels = [1, 0, 1, 0, 1, 0]  # "lovely garden" labeled toxic, "disgusting pig" clean: errors on purpose
    groups = ["a", "a", "a", "b", "b", "b"]
    path = tmp_path / "labeled.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "is_toxic", "group"])
        writer.writerows(zip(texts, labels, groups, strict=True))
    scores = FastTextToxicityClassifier().predict(texts)[:, 1]
    threshold = 0.5
    assert main(["evaluate", "--input", str(path), "--label-field", "is_toxic", "--group-field", "group",
                 "--threshold", str(threshold), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["threshold"] == threshold and report["chunking"] == (
        f"chunks of at most {DEFAULT_MAX_WORDS} words, max over chunks")
    # By hand: ROC-AUC = share of (toxic, clean) pairs ranked right; P/R/F1 from the counts.
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    auc = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    tp = sum(s >= threshold and y for s, y in zip(scores, labels, strict=True))
    fp = sum(s >= threshold and not y for s, y in zip(scores, labels, strict=True))
    fn = sum(s < threshold and y for s, y in zip(scores, labels, strict=True))
    overall = report["metrics"]["all"]
    assert overall["n"] == 6 and overall["n_positive"] == 3
    assert overall["roc_auc"] == pytest.approx(auc)
    assert overall["precision"] == pytest.approx(tp / (tp + fp) if tp + fp else 0.0)
    assert overall["recall"] == pytest.approx(tp / (tp + fn))
    assert overall["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert set(report["metrics"]) == {"all", "a", "b"} and report["metrics"]["a"]["n"] == 3
    # The table form prints the same numbers.
    assert main(["evaluate", "--input", str(path), "--label-field", "is_toxic", "--threshold", "0.5"]) == 0
    table = capsys.readouterr().out
    assert f"{auc:.4f}" in table and "ROC-AUC" in table


def test_evaluate_rejects_non_binary_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _jsonl(tmp_path / "l.jsonl", [{"text": "hi", "label": "maybe"}])
    assert main(["evaluate", "--input", str(src), "--label-field", "label"]) == 2
    assert "not a binary label" in capsys.readouterr().err


@pytest.mark.slow
def test_train_command_writes_a_working_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    assert main(["train", "fasttext", "--output", str(out), "--max-examples", "800", "--epoch", "2",
                 "--dim", "8", "--no-quantize", "--seed", "1"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (out / "model.bin").is_file() and (out / "training.json").is_file()
    src = _jsonl(tmp_path / "in.jsonl", RECORDS)
    assert main(["classify", "--input", str(src), "--output", str(tmp_path / "s.parquet"),
                 "--model", str(out / "model.bin")]) == 0
    assert pq.read_table(tmp_path / "s.parquet").num_rows == len(RECORDS)


def test_evaluate_maps_label_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """GermEval's OFFENSE/OTHER with --toxic-value, HateCheck's hateful/non-hateful by default:
    the same metrics as the same rows labeled 1/0."""
    from toxsieve.classifiers.toxicity_data import SHIPPED_HELDOUT, read_labeled_csv

    rows = [e for e in read_labeled_csv(SHIPPED_HELDOUT) if e.source == "germeval_de"][:120]
    assert 0 < sum(e.label for e in rows) < len(rows)

    def evaluate(name: str, values: tuple[str, str], *extra: str) -> dict:
        path = tmp_path / name
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            writer.writerows((e.text, values[e.label]) for e in rows)
        assert main(["evaluate", "--input", str(path), "--label-field", "label", "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)["metrics"]["all"]

    reference = evaluate("binary.csv", ("0", "1"))
    assert evaluate("germeval.csv", ("OTHER", "OFFENSE"), "--toxic-value", "offense") == reference
    assert evaluate("hatecheck.csv", ("non-hateful", "hateful")) == reference
    assert main(["evaluate", "--input", str(tmp_path / "germeval.csv"), "--label-field", "label"]) == 2
    assert "--toxic-value" in capsys.readouterr().err
