"""Language identification with the shipped fastText LID-176 model, and IdentifyLanguage's decision rule."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from toxsieve.classifiers.langid import (
    SHIPPED_LID_MODEL,
    UNDETERMINED,
    FastTextLanguageIdentifier,
    ModelNotFoundError,
    resolve_lid_model,
)
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.stages.apply import run_stage
from toxsieve.pipelines.stages.language import STAGE, LanguageConfig
from toxsieve.schemas import Reason, Stage

CRAWL = Path(__file__).resolve().parents[1] / "fixtures" / "crawl"

SENTENCES = {
    "en": "The quick brown fox jumps over the lazy dog while the children are playing in the garden.",
    "de": "Der schnelle braune Fuchs springt über den faulen Hund, während die Kinder im Garten spielen.",
    "ru": "Быстрая коричневая лиса прыгает через ленивую собаку, пока дети играют в саду.",
    "zh": "敏捷的棕色狐狸跳过了懒惰的狗，孩子们正在花园里玩耍。",
    "fr": "Le renard brun rapide saute par-dessus le chien paresseux pendant que les enfants jouent dans le jardin.",
}


@pytest.fixture(scope="module")
def lid() -> FastTextLanguageIdentifier:
    return FastTextLanguageIdentifier()


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_shipped_model_identifies_common_languages(lid: FastTextLanguageIdentifier, language: str) -> None:
    ((code, prob),) = lid.predict([SENTENCES[language]])
    assert code == language
    assert 0.5 < prob <= 1.0


def test_probabilities_are_probabilities(lid: FastTextLanguageIdentifier) -> None:
    # "的" and "ที่ที่ที่" make LID-176's hierarchical softmax report slightly more than 1.0.
    texts = [*SENTENCES.values(), "ok", "12345", "!!!", "a", "x" * 5000, "🙂🙂🙂", "的", "ที่" * 5]
    for code, prob in lid.predict(texts):
        assert isinstance(code, str) and code and not code.startswith("__label__")
        assert isinstance(prob, float) and 0.0 <= prob <= 1.0


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_empty_text_is_undetermined(lid: FastTextLanguageIdentifier, text: str) -> None:
    assert lid.predict([text]) == [("und", 0.0)]


def test_empty_batch(lid: FastTextLanguageIdentifier) -> None:
    assert lid.predict([]) == []


def _fixture_texts() -> list[str]:
    texts = []
    for path in sorted((CRAWL / "dolma_tests").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            texts.extend(json.loads(line)["text"] for line in fh)
    return texts


def test_batch_predict_equals_one_by_one(lid: FastTextLanguageIdentifier) -> None:
    # fastText's batch path with k>1 (and some builds' batch probabilities) disagree with single
    # predictions; a batch must give each text exactly what it would get alone.
    texts = [*SENTENCES.values(), "", "short", *_fixture_texts(), "Ceci n'est pas une pipe.\nZweite Zeile."]
    batch = lid.predict(texts)
    single = [lid.predict([t])[0] for t in texts]
    assert len(batch) == len(texts)
    assert [code for code, _ in batch] == [code for code, _ in single]
    assert [p for _, p in batch] == pytest.approx([p for _, p in single], abs=1e-6)

    # ... and what fastText's own single-string path says, with k=1 and as the top of k=5.
    import fasttext

    reference = fasttext.load_model(str(SHIPPED_LID_MODEL))
    for text, (code, prob) in zip(texts, batch, strict=True):
        line = " ".join(text[: lid.max_chars].split())
        if not line:
            assert (code, prob) == ("und", 0.0)
            continue
        (label,), (p1,) = reference.predict(line, k=1)
        labels5, probs5 = reference.predict(line, k=5)
        assert code == label.removeprefix("__label__") == labels5[0].removeprefix("__label__")
        assert prob == pytest.approx(min(1.0, float(p1)), abs=1e-5)
        assert prob == pytest.approx(min(1.0, float(probs5[0])), abs=1e-5)


def test_batch_order_does_not_change_predictions(lid: FastTextLanguageIdentifier) -> None:
    texts = list(SENTENCES.values()) + ["", "mixed"]
    forward = lid.predict(texts)
    backward = lid.predict(texts[::-1])
    assert forward == backward[::-1]


def test_multiline_text_is_predicted_as_one_document(lid: FastTextLanguageIdentifier) -> None:
    # fastText refuses newlines; the identifier must join lines rather than fail or read one line.
    multiline = SENTENCES["de"].replace(", ", ",\n")
    ((code, prob),) = lid.predict([multiline])
    assert code == "de"
    assert prob == pytest.approx(lid.predict([SENTENCES["de"]])[0][1], abs=1e-6)


def test_max_chars_bounds_what_the_model_reads() -> None:
    german_then_english = SENTENCES["de"] + " " + SENTENCES["en"] * 40
    short = FastTextLanguageIdentifier(max_chars=len(SENTENCES["de"]))
    long = FastTextLanguageIdentifier(max_chars=100_000)
    assert short.predict([german_then_english])[0][0] == "de"
    assert long.predict([german_then_english])[0][0] == "en"


def test_missing_model_path_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "lid.bin"
    with pytest.raises(ModelNotFoundError, match="lid.bin"):
        FastTextLanguageIdentifier(str(missing))
    with pytest.raises(FileNotFoundError):  # callers may catch the built-in
        resolve_lid_model(str(tmp_path))  # a directory is not a model file


def test_shipped_model_is_the_default_and_has_an_identity(lid: FastTextLanguageIdentifier) -> None:
    assert resolve_lid_model(None) == SHIPPED_LID_MODEL
    assert SHIPPED_LID_MODEL.is_file()
    identity = lid.identity()
    assert identity.name == "lid.176.ftz"
    assert identity.sha256 == hashlib.sha256(SHIPPED_LID_MODEL.read_bytes()).hexdigest()


# --- the declared language stage: its decision rule ---------------------------


class _Predicted:
    """What the stage's ``load`` returns, answering with a given prediction (to test the rule alone)."""

    def __init__(self, language: str, probability: float) -> None:
        self.answer = (language, probability)

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        return [self.answer for _ in texts]


def apply_language(doc: Document, language: str, probability: float, cfg: LanguageConfig) -> Document:
    """The declared language stage on one document whose LID prediction is (language, probability)."""
    return run_stage(STAGE, doc, cfg, _Predicted(language, probability))


def _doc() -> Document:
    return Document("d1", "s.jsonl", 0, "jsonl", text="some text", text_hash="h")


def test_allowed_language_with_confidence_is_kept() -> None:
    doc = apply_language(_doc(), "en", 0.93, LanguageConfig(allowed=("en", "de")))
    assert doc.kept
    assert (doc.language, doc.language_score) == ("en", 0.93)


def test_language_not_allowed() -> None:
    doc = apply_language(_doc(), "fr", 0.99, LanguageConfig(allowed=("en", "de")))
    assert doc.removal is not None
    assert (doc.removal.stage, doc.removal.reason) == (Stage.LANGUAGE, Reason.LANGUAGE_NOT_ALLOWED)
    assert doc.removal.matched == ("fr",) and doc.removal.score == 0.99
    assert (doc.language, doc.language_score) == ("fr", 0.99)  # the audit shows what was detected


def test_empty_allowed_list_allows_every_language() -> None:
    assert apply_language(_doc(), "tlh", 0.9, LanguageConfig(allowed=())).kept


def test_low_confidence() -> None:
    doc = apply_language(_doc(), "en", 0.31, LanguageConfig(min_score=0.5))
    assert doc.removal is not None
    assert (doc.removal.stage, doc.removal.reason) == (Stage.LANGUAGE, Reason.LOW_LANGUAGE_CONFIDENCE)
    assert (doc.removal.score, doc.removal.threshold) == (0.31, 0.5)
    assert doc.removal.matched == ("en",)


def test_threshold_is_inclusive() -> None:
    assert apply_language(_doc(), "en", 0.5, LanguageConfig(min_score=0.5)).kept


def test_disallowed_language_wins_over_low_confidence() -> None:
    doc = apply_language(_doc(), "fr", 0.1, LanguageConfig(allowed=("en",), min_score=0.5))
    assert doc.removal is not None and doc.removal.reason == Reason.LANGUAGE_NOT_ALLOWED


def test_per_language_threshold_overrides_the_global_one() -> None:
    cfg = LanguageConfig(min_score=0.5, min_score_per_language={"en": 0.9, "zh": 0.2})
    strict = apply_language(_doc(), "en", 0.8, cfg)
    assert strict.removal is not None and strict.removal.reason == Reason.LOW_LANGUAGE_CONFIDENCE
    assert strict.removal.threshold == 0.9
    assert apply_language(_doc(), "de", 0.8, cfg).kept  # global floor for others
    assert apply_language(_doc(), "zh", 0.3, cfg).kept  # a lower floor is honoured too
    lenient_global = apply_language(_doc(), "de", 0.3, cfg)
    assert lenient_global.removal is not None and lenient_global.removal.threshold == 0.5


def test_undetermined_empty_text_is_low_confidence() -> None:
    doc = apply_language(_doc(), UNDETERMINED, 0.0, LanguageConfig())
    assert doc.removal is not None and doc.removal.reason == Reason.LOW_LANGUAGE_CONFIDENCE


def test_apply_language_end_to_end_on_fixture_texts(lid: FastTextLanguageIdentifier) -> None:
    texts = _fixture_texts()[:5]
    cfg = LanguageConfig(allowed=("en",), min_score=0.5)
    docs = [Document(f"d{i}", "s.jsonl", i, "jsonl", text=t) for i, t in enumerate(texts)]
    out = [run_stage(STAGE, d, cfg, lid) for d in docs]
    assert all(d.language == "en" for d in out)  # cc_en_head is English by construction
    assert all(d.kept for d in out)


def test_annotate_mode_flags_and_keeps_with_the_language_set() -> None:
    doc = apply_language(_doc(), "fr", 0.99, LanguageConfig(allowed=("en",), mode="annotate"))
    assert doc.kept and (doc.language, doc.language_score) == ("fr", 0.99)
    assert dict(doc.signals) == {"language_flag": "language_not_allowed"}  # language/score are Document fields
    kept = apply_language(_doc(), "en", 0.99, LanguageConfig(allowed=("en",)))
    assert dict(kept.signals) == {"language_flag": None}
