"""Deterministic training of the fastText toxicity model (``toxsieve train fasttext``).

Reproducibility: the data split comes from a hash of each text (``toxicity_data.split_of``), the
class balancing, augmentation and line order from ``random.Random(seed)``, and fastText trains
with ``thread=1`` and ``seed``. fastText's Hogwild SGD is only deterministic single-threaded: with
more threads the updates interleave differently on every run, so the same command gives a
slightly different model. Single-threaded training of the shipped model takes about 3 minutes.
Each training runs in a new interpreter (``_fit_in_fresh_process``): fasttext-numpy2 0.10.4 gave a
different model, or "Encountered NaN", for a training that followed another in the same process.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np

from toxsieve.classifiers.base import score_documents, sha256_path
from toxsieve.classifiers.fasttext_toxicity import (
    DEFAULT_MAX_WORDS,
    DEFAULT_THRESHOLD,
    LABEL_PREFIX,
    LABELS,
    PREPROCESSORS,
    FastTextToxicityClassifier,
)
from toxsieve.classifiers.identity_terms import has_identity_term, swap_identity_terms
from toxsieve.classifiers.metrics import BinaryMetrics, binary_metrics
from toxsieve.classifiers.toxicity_data import (
    SHIPPED_DATA_DIR,
    SOURCE_FILES,
    SOURCE_LICENSES,
    Example,
    load_sources,
    split_of,
    write_labeled_csv,
)

DEFAULT_OUTPUT = Path(__file__).parent / "models" / "toxicity-fasttext"
MODELS_DIR = Path(__file__).parent / "models"
BALANCE_MODES = ("none", "global", "source")


@dataclass(frozen=True)
class FastTextTrainConfig:
    """Everything that determines the trained model (written to ``training.json``)."""

    sources: tuple[str, ...] = ("web_comments", "germeval")
    splits: tuple[str, ...] = ("train", "dev")  # the final model; experiments train on "train" only
    drop_contested_civil: bool = True  # Civil Comments "label 0" rows were rated toxic, then contested
    balance: str = "source"  # per source, upsample the minority class (at most max_upsample times)
    max_upsample: float = 4.0
    identity_swap: bool = True  # add an identity-swapped copy of every text with an identity term
    # Window augmentation: add this many (as a fraction of the texts) synthetic examples, each 2-4
    # texts joined (label = toxic if any is), like the chunks of a long document the model scores.
    concat_fraction: float = 0.0
    # fastText
    dim: int = 50
    epoch: int = 10
    lr: float = 0.1
    word_ngrams: int = 2
    minn: int = 3  # character n-grams: robust to obfuscation ("f*ck", "idi0t") and to inflection
    maxn: int = 5
    bucket: int = 1_000_000
    min_count: int = 1
    loss: str = "softmax"
    # quantisation (.ftz)
    quantize: bool = True
    cutoff: int = 100_000  # keep the 100k most useful rows (words and n-gram buckets): ~3.6 MB
    dsub: int = 2
    qnorm: bool = True
    quantize_retrain: bool = False  # retraining after pruning did not help on dev (0.939 vs 0.942)
    seed: int = 0
    max_examples: int | None = None  # a deterministic subset, for fast tests
    # v1: the English model's preprocessing; v2 adds source-mask normalisation and CJK characters
    # as tokens (fasttext_toxicity.preprocess_v2), for the per-language models
    preprocess: str = "v1"
    language: str | None = None  # a per-language model (LANGUAGE_CONFIGS); None = the English model
    name: str | None = None  # the model's name in metadata/ (default: the file's stem)

    def __post_init__(self) -> None:
        if self.preprocess not in PREPROCESSORS:
            raise ValueError(f"preprocess must be one of {sorted(PREPROCESSORS)}, not {self.preprocess!r}")
        if self.balance not in BALANCE_MODES:
            raise ValueError(f"balance must be one of {BALANCE_MODES}, not {self.balance!r}")
        unknown = set(self.sources) - set(SOURCE_FILES)
        if unknown:
            raise ValueError(f"unknown sources {sorted(unknown)}; known: {sorted(SOURCE_FILES)}")


@dataclass
class TrainResult:
    model_path: Path
    config: FastTextTrainConfig
    train_lines: int
    counts: dict[str, dict[str, int]]  # source -> {"clean": n, "toxic": n} before balancing
    seconds: float
    heldout: dict[str, BinaryMetrics] = field(default_factory=dict)


def select_examples(examples: Iterable[Example], splits: Sequence[str]) -> list[Example]:
    return [e for e in examples if split_of(e.text) in splits]


def build_training_lines(examples: Sequence[Example], config: FastTextTrainConfig) -> list[str]:
    """fastText input lines (``__label__x text``): augmented, balanced, shuffled, preprocessed."""
    rng = random.Random(config.seed)
    pool = list(examples)
    if config.max_examples is not None and len(pool) > config.max_examples:
        pool = rng.sample(pool, config.max_examples)
    if config.identity_swap:
        pool += [Example(swap_identity_terms(e.text), e.label, e.source) for e in pool if has_identity_term(e.text)]
    if config.concat_fraction > 0:
        pool += _concatenations(pool, int(config.concat_fraction * len(pool)), rng)
    pool = _balance(pool, config, rng)
    rng.shuffle(pool)
    lines = []
    preprocess = PREPROCESSORS[config.preprocess]
    for example in pool:
        text = preprocess(example.text)
        if text:
            lines.append(f"{LABEL_PREFIX}{LABELS[example.label]} {text}")
    return lines


def _concatenations(pool: Sequence[Example], n: int, rng: random.Random) -> list[Example]:
    """Texts from different sources joined into one example, toxic if any part is."""
    out = []
    for _ in range(n):
        parts = [pool[rng.randrange(len(pool))] for _ in range(rng.randint(2, 4))]
        out.append(Example(" ".join(p.text for p in parts), max(p.label for p in parts), "concatenated"))
    return out


def _balance(pool: list[Example], config: FastTextTrainConfig, rng: random.Random) -> list[Example]:
    if config.balance == "none":
        return pool
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in pool:
        groups[example.source if config.balance == "source" else "all"].append(example)
    out: list[Example] = []
    for key in sorted(groups):
        by_label = [[e for e in groups[key] if e.label == label] for label in (0, 1)]
        out.extend(groups[key])
        small, large = sorted(by_label, key=len)
        if not small:
            continue
        factor = min(config.max_upsample, len(large) / len(small))
        whole, frac = int(factor), factor - int(factor)
        out.extend(small * (whole - 1))
        out.extend(e for e in small if rng.random() < frac)
    return out


def train_fasttext(data_dir: str | Path | None = None, output_dir: str | Path = DEFAULT_OUTPUT,
                   config: FastTextTrainConfig | None = None, *, heldout_path: str | Path | None = None,
                   evaluate: bool = True, verbose: bool = False) -> TrainResult:
    """Train (and quantise) the model into ``output_dir/model.ftz`` (``model.bin`` unquantised), with
    ``training.json`` beside it; optionally write the held-out split and report metrics on it."""
    config = config or FastTextTrainConfig()
    data_dir = Path(data_dir) if data_dir else SHIPPED_DATA_DIR
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    examples = load_sources(data_dir, config.sources, drop_contested_civil=config.drop_contested_civil)
    train = select_examples(examples, config.splits)
    # The held-out split keeps every row of the sources, contested ones included (as their own source).
    heldout = select_examples(load_sources(data_dir, config.sources), ("heldout",))
    if heldout_path:
        write_labeled_csv(heldout, heldout_path)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"clean": 0, "toxic": 0})
    for e in train:
        counts[e.source]["toxic" if e.label else "clean"] += 1
    lines = build_training_lines(train, config)
    if verbose:
        print(f"training on {len(lines):,} lines ({len(train):,} texts before augmentation and balancing)")
    model_path = output_dir / ("model.ftz" if config.quantize else "model.bin")
    with tempfile.TemporaryDirectory(prefix="toxsieve-ft-") as tmp:
        train_file = Path(tmp) / "train.txt"
        train_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        _fit_in_fresh_process(train_file, model_path, config)
    seconds = time.perf_counter() - started
    result = TrainResult(model_path, config, len(lines), dict(counts), seconds)
    if evaluate and heldout:
        classifier = FastTextToxicityClassifier(model_path, preprocess_version=config.preprocess)
        result.heldout = evaluate_by_source(classifier, heldout)
    _write_training_json(result, data_dir, output_dir)
    return result


def _fit_in_fresh_process(train_file: Path, model_path: Path, config: FastTextTrainConfig) -> None:
    """Run ``_fit_fasttext`` in a new interpreter. In one process, a fastText training that follows
    another can start from memory the previous model freed, and then differs from a first training
    (or stops with "Encountered NaN"): seen with fasttext-numpy2 0.10.4. A new interpreter (not
    multiprocessing, which would re-run an unguarded caller script) makes every training a first."""
    code = ("import json, sys; from toxsieve.classifiers.train_fasttext import FastTextTrainConfig, _fit_fasttext; "
            "c = json.loads(sys.argv[3]); c['sources'] = tuple(c['sources']); c['splits'] = tuple(c['splits']); "
            "_fit_fasttext(sys.argv[1], sys.argv[2], FastTextTrainConfig(**c))")
    proc = subprocess.run([sys.executable, "-c", code, str(train_file), str(model_path), json.dumps(asdict(config))],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"fastText training failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")


def _fit_fasttext(train_file: str, model_path: str, config: FastTextTrainConfig) -> None:
    """Train (and quantise) single-threaded with the config's seed."""
    import fasttext

    model = fasttext.train_supervised(
        input=train_file, dim=config.dim, epoch=config.epoch, lr=config.lr, wordNgrams=config.word_ngrams,
        minn=config.minn, maxn=config.maxn, bucket=config.bucket, minCount=config.min_count, loss=config.loss,
        seed=config.seed, thread=1, verbose=0,
    )
    if config.quantize:
        model.quantize(input=train_file, retrain=config.quantize_retrain, cutoff=config.cutoff, dsub=config.dsub,
                       qnorm=config.qnorm, thread=1, verbose=0)
    model.save_model(model_path)


def evaluate_by_source(classifier: FastTextToxicityClassifier, examples: Sequence[Example],
                       threshold: float = DEFAULT_THRESHOLD, max_words: int = DEFAULT_MAX_WORDS,
                       ) -> dict[str, BinaryMetrics]:
    """Metrics over all examples (key ``"all"``) and per source, scored as ``toxsieve evaluate``
    does (chunks of ``max_words`` words, max over chunks)."""
    scores = np.array([d.toxicity_score for d in score_documents(classifier, [e.text for e in examples], max_words)])
    labels = np.array([e.label for e in examples])
    sources = np.array([e.source for e in examples])
    out = {"all": binary_metrics(labels, scores, threshold)}
    for source in sorted(set(sources.tolist())):
        mask = sources == source
        out[source] = binary_metrics(labels[mask], scores[mask], threshold)
    return out


def _write_training_json(result: TrainResult, data_dir: Path, output_dir: Path) -> None:
    data_files = {}
    for source in result.config.sources:
        folder, names = SOURCE_FILES[source]
        for name in names:
            path = data_dir / folder / name
            if path.is_file():
                data_files[f"{folder}/{name}"] = sha256_path(path)
    record = {
        "name": result.config.name or result.model_path.stem,
        "language": result.config.language,
        "training_sources": {source: SOURCE_LICENSES.get(source, "not recorded") for source in result.config.sources},
        "model": result.model_path.name,
        "model_sha256": sha256_path(result.model_path),
        "config": asdict(result.config),
        "fasttext_package": _version("fasttext-numpy2"),
        "data_sha256": data_files,
        "train_counts_before_balancing": result.counts,
        "train_lines": result.train_lines,
        "deterministic": "thread=1, a fixed seed, a fresh process: the same data and config give the same file",
        "heldout_metrics": {k: _json_safe(v.as_dict()) for k, v in result.heldout.items()},
        "heldout_scoring": f"chunks of {DEFAULT_MAX_WORDS} words, max over chunks; threshold {DEFAULT_THRESHOLD}",
    }
    (output_dir / "training.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _json_safe(d: dict[str, float | int]) -> dict[str, float | int | None]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else (round(v, 4) if isinstance(v, float) else v))
            for k, v in d.items()}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


# --- per-language models (`toxsieve train fasttext --language xx`) ------------------------------
# Trained only on permissively licensed sources (toxicity_data.SOURCE_LICENSES). Smaller than the
# English model: 200k hash buckets and 50k rows kept by quantisation (the data are 3k-37k texts).
# Identity swapping is off: its term list is English.
LANGUAGE_SOURCES: dict[str, tuple[str, ...]] = {
    "de": ("germeval",), "pt": ("told_br_pt",), "zh": ("cold_zh",), "ar": ("mlma_ar",), "fr": ("mlma_fr",),
    "pl": ("poleval2019_cbd_pl",),
}


def language_config(language: str, **changes: object) -> FastTextTrainConfig:
    """The config that rebuilds the shipped model for ``language`` (changes: for experiments)."""
    if language not in LANGUAGE_SOURCES:
        raise ValueError(f"no training data for language {language!r}; known: {', '.join(sorted(LANGUAGE_SOURCES))}")
    base = FastTextTrainConfig(sources=LANGUAGE_SOURCES[language], identity_swap=False, preprocess="v2",
                               bucket=200_000, cutoff=50_000, language=language,
                               name=f"toxsieve-fasttext-toxicity-{language}-v1")
    return replace(base, **changes)  # type: ignore[arg-type]


def language_model_dir(language: str) -> Path:
    return MODELS_DIR / f"toxicity-fasttext-{language}"


def config_with(config: FastTextTrainConfig, **changes: object) -> FastTextTrainConfig:
    return replace(config, **changes)  # type: ignore[arg-type]
