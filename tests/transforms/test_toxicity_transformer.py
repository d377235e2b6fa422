"""The Hugging Face path: safety checks, chunking, batching, label mapping, RunInference in Beam."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import apache_beam as beam  # noqa: E402
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline  # noqa: E402
from apache_beam.testing.util import assert_that  # noqa: E402

from tests.conftest import build_tiny_model, local_runner  # noqa: E402
from toxsieve.classifiers.transformer import (  # noqa: E402
    TransformerToxicityClassifier,
    UnsafeModelError,
    check_model_dir,
    length_batches,
    load_model,
)
from toxsieve.pipelines.config import ToxicityConfig  # noqa: E402
from toxsieve.pipelines.document import Document  # noqa: E402
from toxsieve.pipelines.runtime.inference import ScoreToxicity  # noqa: E402

TEXTS = ["you are an idiot", "nice day", "good morning people", "this is stupid and i hate that",
         "the garden flowers love the sun and rain", "", "a", "you are stupid people"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "binary")


@pytest.fixture(scope="module")
def tiny_multi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "multi", labels=("toxic", "insult", "threat"),
                            multi_label=True, seed=1)


def _reference(path: Path, ids: list[int]) -> np.ndarray:
    """One chunk, unbatched, straight through the model: what every batched path must reproduce."""
    loaded = load_model(path, "cpu")
    with torch.inference_mode():
        logits = loaded.model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids))).logits
    return (torch.sigmoid(logits) if loaded.multi_label else torch.softmax(logits, -1))[0].numpy()


def test_batched_length_bucketed_scores_equal_one_by_one(tiny: Path) -> None:
    clf = TransformerToxicityClassifier(tiny, device="cpu", token_budget=24)  # forces many small batches
    batched = clf.predict(TEXTS)
    for text, row in zip(TEXTS, batched, strict=True):
        np.testing.assert_allclose(row, _reference(tiny, clf.chunk(text)[0]), rtol=1e-4, atol=1e-5)
    assert np.allclose(batched.sum(axis=1), 1.0, atol=1e-5)  # softmax for single-label models
    assert len({round(float(r[1]), 4) for r in batched}) > 3  # texts really differ


def test_multi_label_models_use_sigmoid_and_config_labels(tiny_multi: Path) -> None:
    clf = TransformerToxicityClassifier(tiny_multi, device="cpu", toxic_labels=["insult", "threat"])
    assert clf.labels == ("toxic", "insult", "threat")
    probs = clf.predict(TEXTS[:3])
    np.testing.assert_allclose(probs[0], _reference(tiny_multi, clf.chunk(TEXTS[0])[0]), rtol=1e-4, atol=1e-5)
    assert not np.allclose(probs.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="not labels"):
        TransformerToxicityClassifier(tiny_multi, device="cpu", toxic_labels=["obscene"])


def test_long_documents_are_chunked_to_the_model_window_and_aggregated_by_max(tiny: Path) -> None:
    clf = TransformerToxicityClassifier(tiny, device="cpu")
    long_text = " ".join(["the garden flowers love the sun and rain ."] * 10 + ["you are an idiot"])
    chunks = clf.chunk(long_text)
    assert len(chunks) > 2 and all(len(c) <= clf.max_length for c in chunks)
    scores, n_chunks = clf.score_chunked([long_text, "nice day"])
    assert n_chunks == [len(chunks), 1]
    expected = np.max([_reference(tiny, c) for c in chunks], axis=0)
    np.testing.assert_allclose(scores[0], expected, rtol=1e-4, atol=1e-5)


def test_length_batches_respect_the_token_budget_and_cut_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.integers(5, 500, size=301)]
    batches = length_batches(lengths, token_budget=2048)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(max(lengths[i] for i in b) * len(b) <= 2048 or len(b) == 1 for b in batches)
    padded_sorted = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    fixed = [list(range(i, min(len(lengths), i + 4))) for i in range(0, len(lengths), 4)]
    padded_fixed = sum(max(lengths[i] for i in b) * len(b) for b in fixed)
    assert padded_sorted < 0.8 * padded_fixed


def test_unsafe_or_missing_models_are_refused(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_model_dir(tmp_path / "nope")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(UnsafeModelError, match="safetensors"):
        check_model_dir(pickled)
    remote = tmp_path / "remote"
    remote.mkdir()
    config = json.loads((tiny / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.Evil"}
    (remote / "config.json").write_text(json.dumps(config))
    (remote / "model.safetensors").write_bytes((tiny / "model.safetensors").read_bytes())
    with pytest.raises(UnsafeModelError, match="remote code"):
        check_model_dir(remote)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_a_gpu_is_an_error_not_a_silent_cpu_run(tiny: Path) -> None:
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        load_model(tiny, "cuda")


def _docs(n: int) -> list[Document]:
    out = []
    for i in range(n):
        text = TEXTS[i % len(TEXTS)] + (" ." * (i % 7)) + (" the sun and rain" * (i % 13))
        out.append(Document(f"d{i:03d}", "mem://x", i, "jsonl", text=text, language="en"))
    return out


@pytest.mark.parametrize("max_batch_size", [3, 64])
def test_run_inference_stage_preserves_keys_and_matches_in_process_scores(tiny: Path, max_batch_size: int) -> None:
    docs = _docs(41)  # a prime: no batch size divides it
    clf = TransformerToxicityClassifier(tiny, device="cpu")
    expected_probs, expected_chunks = clf.score_chunked([d.text or "" for d in docs])
    expected = {d.doc_id: (round(float(p[1]), 4), n) for d, p, n in zip(docs, expected_probs, expected_chunks,
                                                                          strict=True)}
    threshold = float(np.median(expected_probs[:, 1]))
    cfg = ToxicityConfig(model=str(tiny), device="cpu", mode="filter", threshold=threshold,
                         max_batch_size=max_batch_size, token_budget=96)

    def check(kept_and_removed: list[Document]) -> None:
        got = {d.doc_id: (round(float(d.toxicity_score or 0), 4), d.toxicity_n_chunks) for d in kept_and_removed}
        assert got == expected
        for d in kept_and_removed:
            assert d.toxicity_model == tiny.name and d.toxicity_model_sha256 and d.toxicity_threshold == threshold
            assert (d.removal is not None) == bool(d.toxicity_flagged)
            assert d.toxicity_flagged == (d.toxicity_score >= threshold)  # type: ignore[operator]
            assert dict(d.toxicity_label_scores).keys() == {"non_toxic", "toxic"}

    with BeamTestPipeline(runner=local_runner()) as p:
        kept, removed = p | beam.Create(docs) | ScoreToxicity(cfg)
        assert_that((kept, removed) | beam.Flatten(), check)


def test_cascade_sends_only_the_uncertain_band_to_the_checkpoint(tiny: Path) -> None:
    from toxsieve.classifiers.base import score_documents
    from toxsieve.classifiers.registry import load_classifier

    docs = [Document(f"c{i:02d}", "mem://x", i, "jsonl", text=t, language="en") for i, t in enumerate([
        "You are a worthless idiot and a disgusting pig, shut up.",
        "Thanks for the edit, the citation to the 1998 survey is now correct.",
        "I disagree with your revert, but let us discuss it on the talk page.",
        "What a stupid, stupid comment. Are you dumb?",
        "The garden flowers love the sun and the rain in spring.",
        "Go away, nobody wants your garbage here.",
    ])]
    fast = load_classifier("fasttext")
    fast_scores = [s.toxicity_score for s in score_documents(fast, [d.text or "" for d in docs], 64)]
    low, high = sorted(fast_scores)[1], sorted(fast_scores)[-2]  # the middle of the range is "unsure"
    unsure = {d.doc_id for d, s in zip(docs, fast_scores, strict=True) if low <= s <= high}
    assert 0 < len(unsure) < len(docs)
    cfg = ToxicityConfig(model="fasttext", cascade_model=str(tiny), cascade_low=low, cascade_high=high,
                         device="cpu", threshold=0.5)

    def check(out: list[Document]) -> None:
        assert {d.doc_id for d in out} == {d.doc_id for d in docs}
        for d in out:
            if d.doc_id in unsure:
                assert d.toxicity_model == tiny.name and d.toxicity_fast_score is not None
            else:
                assert d.toxicity_model == "toxsieve-fasttext-toxicity-v1" and d.toxicity_fast_score is None

    with BeamTestPipeline(runner=local_runner()) as p:
        kept, removed = p | beam.Create(docs) | ScoreToxicity(cfg)
        assert_that((kept, removed) | beam.Flatten(), check)


def test_a_chunk_the_checkpoint_raises_on_dead_letters_its_document_only(tiny: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The model raises on any batch holding the poison chunk ("hate" is token 20): the batch is re-run
    chunk by chunk, the poison document becomes a StageError dead letter and every other one is scored
    as in-process scoring scores it."""
    from toxsieve.classifiers import transformer
    from toxsieve.pipelines.document import DeadLetter

    real = transformer.infer_token_batches

    def infer(model, chunks, *args, **kwargs):  # type: ignore[no-untyped-def]
        if any(20 in ids for ids in chunks):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(model, chunks, *args, **kwargs)

    docs = [Document(f"d{i:02d}", "mem://x", i, "jsonl", text=t, language="en") for i, t in enumerate(
        ["you are an idiot", "nice day", "this is stupid and i hate that", "good morning people",
         "the garden flowers love the sun and rain"] * 3)]
    poison = {d.doc_id for d in docs if "hate" in (d.text or "")}
    clf = TransformerToxicityClassifier(tiny, device="cpu")
    expected = {d.doc_id: round(float(p[1]), 4) for d, p in zip(docs, clf.predict([d.text or "" for d in docs]),
                                                                  strict=True) if d.doc_id not in poison}
    monkeypatch.setattr(transformer, "infer_token_batches", infer)
    cfg = ToxicityConfig(model=str(tiny), device="cpu", mode="annotate", token_budget=64)

    def check(out: list[Document | DeadLetter]) -> None:
        dead = [e for e in out if isinstance(e, DeadLetter)]
        assert sorted(d.source_offset for d in dead) == sorted(int(i[1:]) for i in poison)
        assert all(d.error_type == "StageError" and "illegal memory access" in d.error for d in dead)
        scored = {d.doc_id: round(float(d.toxicity_score or 0), 4) for d in out if isinstance(d, Document)}
        assert scored == expected

    with BeamTestPipeline(runner=local_runner()) as p:
        kept, removed = p | beam.Create(docs) | ScoreToxicity(cfg)
        assert_that((kept, removed) | beam.Flatten(), check)
