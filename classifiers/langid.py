"""fastText LID-176 language identification (the shipped ``lid.176.ftz`` or a user-given model)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from toxsieve.classifiers.base import ModelIdentity, sha256_path

SHIPPED_LID_MODEL = Path(__file__).parent / "models" / "lid" / "lid.176.ftz"
UNDETERMINED = "und"  # ISO 639-2 code for "no text to identify"


class ModelNotFoundError(FileNotFoundError):
    pass


def resolve_lid_model(model_path: str | None) -> Path:
    path = Path(model_path) if model_path else SHIPPED_LID_MODEL
    if not path.is_file():
        raise ModelNotFoundError(f"language-ID model not found: {path}")
    return path


class FastTextLanguageIdentifier:
    """Batch language identification. Load once per worker (DoFn.setup), not per element."""

    def __init__(self, model_path: str | None = None, max_chars: int = 10_000) -> None:
        import fasttext

        self.path = resolve_lid_model(model_path)
        self.max_chars = max_chars
        self._model = fasttext.load_model(str(self.path))

    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.path.name, str(self.path), sha256_path(self.path))

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(language code, probability of the top label) per text; ``und``/0.0 for empty text."""
        prepared = [_prepare(t, self.max_chars) for t in texts]
        out: list[tuple[str, float]] = [(UNDETERMINED, 0.0)] * len(texts)
        idx = [i for i, t in enumerate(prepared) if t]
        if not idx:
            return out
        labels, probs = self._model.predict([prepared[i] for i in idx], k=1)
        for i, label, prob in zip(idx, labels, probs, strict=True):
            code = label[0].removeprefix("__label__") if len(label) else UNDETERMINED
            # fastText's hierarchical softmax can report 1.00004: clamp to a probability.
            out[i] = (code, min(1.0, max(0.0, float(prob[0]))) if len(prob) else 0.0)
        return out


def _prepare(text: str, max_chars: int) -> str:
    # fastText predicts on one line; newlines would be rejected.
    return " ".join(text[:max_chars].split())
