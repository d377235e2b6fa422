"""The fastText toxicity model: preprocessing, probabilities, the shipped model's quality, chunking,
the registry, metrics, the data split and deterministic training."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toxsieve.classifiers.base import TextClassifier, score_documents, sha256_path
from toxsieve.classifiers.fasttext_toxicity import (
    DEFAULT_MAX_WORDS,
    DEFAULT_THRESHOLD,
    SHIPPED_TOXICITY_MODEL,
    FastTextToxicityClassifier,
    preprocess,
)
from toxsieve.classifiers.identity_terms import has_identity_term, swap_identity_terms
from toxsieve.classifiers.metrics import average_precision, best_f1_threshold, binary_metrics, roc_auc
from toxsieve.classifiers.registry import load_classifier
from toxsieve.classifiers.toxicity_data import (
    SHIPPED_DATA_DIR,
    SHIPPED_HELDOUT,
    Example,
    read_labeled_csv,
    split_of,
)
from toxsieve.classifiers.train_fasttext import FastTextTrainConfig, build_training_lines, train_fasttext

MODEL_CARD = SHIPPED_TOXICITY_MODEL.parent / "MODEL_CARD.md"
# Measured on the held-out split with `toxsieve evaluate` (MODEL_CARD.md); the test allows 0.02 less.
HELDOUT_ROC_AUC = 0.9328

TOXIC = [
    "You are a stupid idiot and everyone hates you.",
    "Shut up, you worthless piece of shit.",
    "go kill yourself you pathetic loser",
    "What a moron. Only a retard would write this garbage.",
    "F*CK YOU!!! you dumb b1tch",
]
CLEAN = [
    "Thank you for the helpful edit, I have added the missing reference.",
    "The museum opens at ten and the guided tour takes about an hour.",
    "Preheat the oven to 180 degrees and bake the bread for forty minutes.",
    "I think the second paragraph could cite a more recent source.",
    "The committee will meet again next Tuesday to discuss the budget.",
]


@pytest.fixture(scope="module")
def model() -> FastTextToxicityClassifier:
    return FastTextToxicityClassifier()


# --- preprocessing --------------------------------------------------------------------------

def test_preprocess_tokens_and_normalisation() -> None:
    assert preprocess("Hello @bob, see https://example.com/a?b=1 NOW!!!!") == "hello xxuser , see xxurl now !!"
    assert preprocess("STUUUUPID\n\nline two\tend") == "stuupid line two end"
    assert preprocess("ｆｕｌｌｗｉｄｔｈ from 66.249.1.1 at 12:30") == "fullwidth from xxip at xxnum"
    assert preprocess("sh1t and f*ck stay words") == "sh1t and f*ck stay words"  # obfuscation is signal
    assert preprocess(":::Reply\n== Heading ==\n[[User:Foo|Foo]]") == "reply heading xxuser"
    assert preprocess("") == ""


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_preprocess_is_one_line_and_idempotent(text: str) -> None:
    once = preprocess(text)
    assert "\n" not in once and "\r" not in once and once == once.strip()
    assert preprocess(once) == once


# --- the classifier and the shipped model ---------------------------------------------------

def test_probabilities_are_float32_rows_summing_to_one(model: FastTextToxicityClassifier) -> None:
    assert isinstance(model, TextClassifier)
    assert model.labels == ("non_toxic", "toxic") and model.toxic_labels == ("toxic",)
    probs = model.predict([*TOXIC, *CLEAN, "", "   \n"])
    assert probs.dtype == np.float32 and probs.shape == (len(TOXIC) + len(CLEAN) + 2, 2)
    assert np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    # The fastText-wheel bug gave every label the top label's probability: rows of 0.5 / 0.5 here.
    assert np.all(np.abs(probs[: len(TOXIC) + len(CLEAN), 1] - 0.5) > 0.2)
    assert model.predict([]).shape == (0, 2)


def test_batch_equals_one_by_one(model: FastTextToxicityClassifier) -> None:
    texts = [*TOXIC, *CLEAN]
    batch = model.predict(texts)
    single = np.vstack([model.predict([t]) for t in texts])
    np.testing.assert_array_equal(batch, single)


def test_shipped_model_ranks_toxic_above_clean(model: FastTextToxicityClassifier) -> None:
    toxic = model.predict(TOXIC)[:, 1]
    clean = model.predict(CLEAN)[:, 1]
    assert toxic.min() > clean.max(), (toxic, clean)
    assert np.all(toxic >= DEFAULT_THRESHOLD) and np.all(clean < DEFAULT_THRESHOLD)


def test_chunk_max_finds_a_toxic_paragraph_in_a_long_clean_document(model: FastTextToxicityClassifier) -> None:
    rng = random.Random(0)
    paragraphs = [rng.choice(CLEAN) + " " + rng.choice(CLEAN) for _ in range(30)]
    clean_doc = "\n\n".join(paragraphs)
    toxic_doc = "\n\n".join(paragraphs[:17] + [TOXIC[0] + " " + TOXIC[3]] + paragraphs[17:])
    clean_score, toxic_score = score_documents(model, [clean_doc, toxic_doc], DEFAULT_MAX_WORDS)
    assert clean_score.n_chunks > 5
    assert clean_score.toxicity_score < DEFAULT_THRESHOLD <= toxic_score.toxicity_score
    # Scoring the whole document at once dilutes the toxic paragraph: chunking is what finds it.
    assert model.predict([toxic_doc])[0, 1] < toxic_score.toxicity_score


def test_shipped_model_reaches_its_heldout_auc(model: FastTextToxicityClassifier) -> None:
    """A broken or swapped model fails here: the card's held-out ROC-AUC, less 0.02."""
    heldout = read_labeled_csv(SHIPPED_HELDOUT)
    scores = [s.toxicity_score for s in score_documents(model, [e.text for e in heldout], DEFAULT_MAX_WORDS)]
    auc = roc_auc([e.label for e in heldout], scores)
    assert auc >= HELDOUT_ROC_AUC - 0.02, auc


def test_heldout_file_is_the_hash_split() -> None:
    heldout = read_labeled_csv(SHIPPED_HELDOUT)
    assert len(heldout) > 10_000
    assert all(split_of(e.text) == "heldout" for e in heldout)
    assert {"wikipedia_jigsaw", "civil_comments", "germeval_de"} <= {e.source for e in heldout}


def test_identity_and_model_card(model: FastTextToxicityClassifier) -> None:
    identity = model.identity()
    assert identity.name == "toxsieve-fasttext-toxicity-v1"
    assert identity.sha256 == sha256_path(SHIPPED_TOXICITY_MODEL)
    assert SHIPPED_TOXICITY_MODEL.stat().st_size < 10_000_000
    card = MODEL_CARD.read_text()
    assert identity.sha256 in card  # the card describes this exact file


# --- registry -------------------------------------------------------------------------------

def test_registry_resolves_names_paths_and_directories(tmp_path: Path) -> None:
    for spec in (None, "fasttext", str(SHIPPED_TOXICITY_MODEL), str(SHIPPED_TOXICITY_MODEL.parent)):
        clf = load_classifier(spec)
        assert isinstance(clf, FastTextToxicityClassifier)
        assert clf.identity().sha256 == sha256_path(SHIPPED_TOXICITY_MODEL)


def test_registry_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="toxicity model not found"):
        load_classifier(str(tmp_path / "nope.ftz"))
    with pytest.raises(FileNotFoundError, match="no toxicity model in directory"):
        load_classifier(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")  # a Hugging Face directory without safetensors weights
    with pytest.raises(ValueError, match="safetensors"):
        load_classifier(str(tmp_path))
    (tmp_path / "weights.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="unknown file type"):
        load_classifier(str(tmp_path / "weights.onnx"))
    with pytest.raises(FileNotFoundError, match="toxicity model not found"):
        FastTextToxicityClassifier(tmp_path / "missing.bin")


# --- metrics --------------------------------------------------------------------------------

def _pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    return float(np.mean([(p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg)]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=2, max_size=40))
def test_roc_auc_equals_pairwise_count_with_ties(rows: list[tuple[int, int]]) -> None:
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] / 6 for r in rows])
    if y.min() == y.max():
        assert np.isnan(roc_auc(y, s))
    else:
        assert roc_auc(y, s) == pytest.approx(_pairwise_auc(y, s))


def test_average_precision_and_threshold_metrics_by_hand() -> None:
    y = [1, 0, 1, 1, 0, 0]
    s = [0.9, 0.8, 0.7, 0.4, 0.3, 0.1]
    # ranks: 1(tp) P=1, 2(fp), 3(tp) P=2/3, 4(tp) P=3/4 -> AP = (1 + 2/3 + 3/4) / 3
    assert average_precision(y, s) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    m = binary_metrics(y, s, threshold=0.5)  # predicted toxic: 0.9, 0.8, 0.7 -> tp 2, fp 1, fn 1
    assert (m.precision, m.recall, m.f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert m.false_positive_rate == pytest.approx(1 / 3)
    assert m.roc_auc == pytest.approx(7 / 9)
    assert best_f1_threshold(y, s) == pytest.approx((0.4, 6 / 7))
    assert binary_metrics(y, s, threshold=0.9).precision == 1.0  # score >= threshold counts


# --- data, augmentation, training -----------------------------------------------------------

def test_split_is_a_stable_hash_of_the_text() -> None:
    assert split_of("You are an idiot") == split_of("  you ARE an\nidiot ")  # normalised key
    splits = [split_of(f"comment number {i}") for i in range(2000)]
    share = {name: splits.count(name) / len(splits) for name in ("train", "dev", "heldout")}
    assert 0.07 < share["heldout"] < 0.13 and 0.07 < share["dev"] < 0.13
    # Golden values (xxh3-64 of the key, mod 100: 79, 67, 17): a change of hash or key would
    # silently move texts between train and held-out.
    assert [split_of(t) for t in ("hello world", "you are an idiot", "thanks for the edit", "golden 4")] == \
        ["train", "train", "dev", "heldout"]


def test_identity_swap_is_symmetric_and_keeps_case() -> None:
    text = "Gay and MUSLIM people, black or white, women and men."
    swapped = swap_identity_terms(text)
    assert swapped == "Straight and CHRISTIAN people, white or black, men and women."
    assert swap_identity_terms(swapped) == text
    assert has_identity_term(text) and not has_identity_term("gayety is not a term; blackboard neither")


def test_training_lines_are_balanced_augmented_and_deterministic() -> None:
    examples = [Example(f"clean text number {i} about the gay pride parade", 0, "a") for i in range(40)]
    examples += [Example(f"toxic idiot {i}", 1, "a") for i in range(10)]
    config = FastTextTrainConfig(balance="source", max_upsample=4.0, identity_swap=True, seed=3)
    lines = build_training_lines(examples, config)
    assert lines == build_training_lines(examples, config)
    assert sum(line.startswith("__label__toxic ") for line in lines) == 40  # 10 upsampled 4x
    assert sum("straight pride" in line for line in lines) == 40  # the identity-swapped copies
    assert all("\n" not in line for line in lines)


def test_train_is_deterministic(tmp_path: Path) -> None:
    """Same data, seed and config -> byte-identical model files and identical predictions."""
    config = FastTextTrainConfig(max_examples=1500, epoch=3, dim=16, bucket=200_000, cutoff=2_000, seed=7)
    a = train_fasttext(SHIPPED_DATA_DIR, tmp_path / "a", config, evaluate=False)
    b = train_fasttext(SHIPPED_DATA_DIR, tmp_path / "b", config, evaluate=False)
    assert a.model_path.name == "model.ftz"
    assert sha256_path(a.model_path) == sha256_path(b.model_path)
    texts = [*TOXIC, *CLEAN]
    np.testing.assert_array_equal(FastTextToxicityClassifier(a.model_path).predict(texts),
                                  FastTextToxicityClassifier(b.model_path).predict(texts))
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    assert record["config"]["seed"] == 7 and record["model_sha256"] == sha256_path(a.model_path)
    # The seed matters: the comparison above can fail.
    c = train_fasttext(SHIPPED_DATA_DIR, tmp_path / "c", replace(config, seed=8), evaluate=False)
    assert sha256_path(c.model_path) != sha256_path(a.model_path)


def test_sha256_path_is_remembered_only_while_the_file_is_unchanged(tmp_path: Path) -> None:
    import hashlib
    import os

    model = tmp_path / "model.bin"
    model.write_bytes(b"a" * 1000)
    old = 1_600_000_000
    os.utime(model, (old, old))
    assert sha256_path(model) == hashlib.sha256(b"a" * 1000).hexdigest()
    model.write_bytes(b"b" * 1000)  # same size, same inode; a new mtime
    assert sha256_path(model) == hashlib.sha256(b"b" * 1000).hexdigest()
    model.write_bytes(b"c" * 1000)  # within the same timestamp tick: "racy", so hashed again
    assert sha256_path(model) == hashlib.sha256(b"c" * 1000).hexdigest()
    assert sha256_path(tmp_path) == sha256_path(tmp_path)  # directories combine the per-file digests
