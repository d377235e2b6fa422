"""Resolve a ``--model`` / config value to a ``TextClassifier``.

``None`` or ``"fasttext"`` is the shipped fastText model; ``"minilm"`` the shipped MiniLM model
(assembled once per machine from the ``[gpu]`` extra's encoder package and the head in the repo:
``resolve_model_spec``); a path to a ``.bin``/``.ftz`` file (or a
directory holding ``model.ftz``/``model.bin``) is a fastText model; a directory with ``config.json``
is a Hugging Face checkpoint (``classifiers/transformer.py``; torch and transformers from the
``[gpu]`` extra).
"""

from __future__ import annotations

from pathlib import Path

from toxsieve.classifiers.base import TextClassifier
from toxsieve.classifiers.fasttext_toxicity import SHIPPED_TOXICITY_MODEL, FastTextToxicityClassifier

BUILTIN_MODELS: dict[str, Path] = {"fasttext": SHIPPED_TOXICITY_MODEL}
# The per-language fastText models (issue 14): "fasttext-<language>", trained by
# `toxsieve train fasttext --language <language>` on permissively licensed data only.
LANGUAGE_MODEL_LANGUAGES = ("ar", "de", "fr", "pl", "pt", "zh")
BUILTIN_MODELS.update({f"fasttext-{lang}": SHIPPED_TOXICITY_MODEL.parent.parent / f"toxicity-fasttext-{lang}" / "model.ftz"
                       for lang in LANGUAGE_MODEL_LANGUAGES})
BUILTIN_CHECKPOINTS = ("minilm",)
FASTTEXT_SUFFIXES = (".bin", ".ftz")


def resolve_model_spec(spec: str | None) -> str | None:
    """A built-in checkpoint name becomes its assembled directory; anything else is returned as is."""
    if spec == "minilm":
        from toxsieve.classifiers.train_minilm import cached_model_dir

        return str(cached_model_dir())
    return spec


def load_classifier(name_or_path: str | Path | None = None, device: str = "auto") -> TextClassifier:
    """Load a toxicity classifier once (call from a worker's ``setup``, not per element)."""
    if name_or_path is None or str(name_or_path) in ("", "fasttext"):
        return FastTextToxicityClassifier(None)  # FileNotFoundError if the shipped model is missing
    if str(name_or_path) in BUILTIN_MODELS:
        return FastTextToxicityClassifier(BUILTIN_MODELS[str(name_or_path)])
    name = str(resolve_model_spec(str(name_or_path)))
    path = Path(name).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"toxicity model not found: {name!r} is neither a built-in model "
            f"({', '.join(sorted([*BUILTIN_MODELS, *BUILTIN_CHECKPOINTS]))}) "
            "nor an existing .bin/.ftz file or model directory"
        )
    if path.is_file():
        if path.suffix in FASTTEXT_SUFFIXES:
            return FastTextToxicityClassifier(path)
        raise ValueError(f"toxicity model {name!r}: unknown file type {path.suffix!r} "
                         f"(fastText models end in {' or '.join(FASTTEXT_SUFFIXES)})")
    if (path / "config.json").is_file():
        # A Hugging Face sequence-classification checkpoint (safetensors only, never remote code).
        from toxsieve.classifiers.transformer import TransformerToxicityClassifier

        return TransformerToxicityClassifier(path, device=device)
    for candidate in ("model.ftz", "model.bin"):
        if (path / candidate).is_file():
            return FastTextToxicityClassifier(path / candidate)
    raise FileNotFoundError(f"no toxicity model in directory {name!r}: expected model.ftz, model.bin or config.json")
