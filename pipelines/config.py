"""Run configuration: one frozen dataclass tree, loaded from YAML and validated with clear errors."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from toxsieve.pipelines.stages import QualityConfig
from toxsieve.pipelines.stages.base import check_choice as _choice
from toxsieve.pipelines.stages.base import check_positive as _positive
from toxsieve.pipelines.stages.base import check_unit as _unit
from toxsieve.pipelines.stages.language import LanguageConfig
from toxsieve.pipelines.stages.url_blocklist import UrlBlocklistConfig
from toxsieve.pipelines.stages.word_blocklist import WordBlocklistConfig

INPUT_FORMATS = ("auto", "warc", "wet", "jsonl", "parquet")
REMOVED_TEXT_MODES = ("full", "truncated", "none")


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the offending key."""


@dataclass(frozen=True)
class InputConfig:
    format: str = "auto"  # auto: from the file name; or force one of INPUT_FORMATS
    text_field: str = "text"  # JSONL/Parquet; dotted paths reach into nested objects
    id_field: str = "id"
    url_field: str = "url"
    date_field: str | None = None
    max_record_bytes: int = 20_000_000  # larger records are dead-lettered, not loaded
    base: str | None = None  # --input-list: base of relative entries (default: the list's directory)

    def validate(self) -> None:
        _choice("input.format", self.format, INPUT_FORMATS)
        _positive("input.max_record_bytes", self.max_record_bytes)


@dataclass(frozen=True)
class ExtractConfig:
    # normalised text shorter than this is removed (too_short). Only a tiny floor: characters are not
    # comparable across scripts; the real length floor is quality.length, in words, after language ID
    min_chars: int = 1
    main_content: bool = True  # resiliparse main-content heuristics (drop nav, footers)

    def validate(self) -> None:
        if self.min_chars < 0:
            raise ConfigError("extract.min_chars must be >= 0")


@dataclass(frozen=True)
class ExactDedupConfig:
    enabled: bool = True


SHINGLE_KINDS = ("word", "char")
MINHASH_SCHEMES = ("affine32", "legacy")
NEAR_DEDUP_VERIFY = ("signature", "exact")
KEEPER_POLICIES = ("smallest_doc_id", "longest_text")


@dataclass(frozen=True)
class NearDedupConfig:
    """MinHash-LSH near-deduplication (pipelines/stages/minhash.py, pipelines/stages/near_dedup.py)."""

    enabled: bool = True
    shingle: str = "word"  # word | char n-grams of the lower-cased normalised text
    ngram: int = 5
    num_perm: int = 256  # 128 misses too many pairs just above the threshold (docs/near_dedup.md)
    seed: int = 1
    scheme: str = "affine32"  # datasketch 2.0's default; legacy = datasketch < 2.0 values
    threshold: float = 0.8  # Jaccard similarity at which two documents are near-duplicates
    bands: int | None = None  # LSH bands x rows; default: datasketch MinHashLSH's optimum for threshold
    rows: int | None = None
    max_bucket_size: int = 1000  # larger band buckets are split into sub-buckets (counter: oversized_buckets)
    verify: str = "signature"  # candidate pairs: signature-estimated Jaccard, or exact shingle Jaccard
    keeper: str = "smallest_doc_id"  # or longest_text (ties by doc_id)
    max_rounds: int = 10  # connected-components rounds (large-star + small-star each)
    batch_size: int = 256  # documents per signature batch (results never depend on it)

    def validate(self) -> None:
        _choice("near_dedup.shingle", self.shingle, SHINGLE_KINDS)
        _choice("near_dedup.scheme", self.scheme, MINHASH_SCHEMES)
        _choice("near_dedup.verify", self.verify, NEAR_DEDUP_VERIFY)
        _choice("near_dedup.keeper", self.keeper, KEEPER_POLICIES)
        if not 1 <= self.ngram <= 64:
            raise ConfigError(f"config key 'near_dedup.ngram' must be between 1 and 64, got {self.ngram!r}")
        for key in ("num_perm", "max_bucket_size", "max_rounds", "batch_size"):
            _positive(f"near_dedup.{key}", getattr(self, key))
        if self.seed < 0:
            raise ConfigError(f"config key 'near_dedup.seed' must be >= 0, got {self.seed!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"config key 'near_dedup.threshold' must be between 0 and 1 (exclusive), "
                              f"got {self.threshold!r}")
        if (self.bands is None) != (self.rows is None):
            raise ConfigError("config keys 'near_dedup.bands' and 'near_dedup.rows' go together: set both or neither")
        if self.bands is not None and self.rows is not None:
            _positive("near_dedup.bands", self.bands)
            _positive("near_dedup.rows", self.rows)
            if self.bands * self.rows > self.num_perm:
                raise ConfigError(f"config keys 'near_dedup.bands' x 'near_dedup.rows' = {self.bands * self.rows} "
                                  f"must be <= near_dedup.num_perm = {self.num_perm}")


@dataclass(frozen=True)
class BlocklistsConfig:
    url: UrlBlocklistConfig = field(default_factory=UrlBlocklistConfig)
    words: WordBlocklistConfig = field(default_factory=WordBlocklistConfig)

    def validate(self) -> None:
        self.url.validate()
        self.words.validate()


# The built-in routing under toxicity.models: en -> toxicity.model, and the shipped per-language models
# whose held-out figures passed the bar for default use (README, "Toxicity beyond English").
ENGLISH_MODEL = "fasttext"
NO_MODEL = "none"
DEFAULT_ROUTE = "default"
# Figures: the model cards and docs/multilingual_toxicity.md. de goes to the English model, which was
# trained on GermEval too and measures better on German (0.847) than the German-only model (0.803).
DEFAULT_LANGUAGE_MODELS: Mapping[str, str] = {
    "en": ENGLISH_MODEL, "de": ENGLISH_MODEL, "pl": "fasttext-pl", "pt": "fasttext-pt", "zh": "fasttext-zh",
}


Route = tuple[str, "str | None"]  # (model, cascade model or None)
_R = typing.TypeVar("_R")


def route_of(routes: Mapping[str, _R], language: str | None) -> _R | None:
    """The route of a document in ``language`` (LID's code; None: no language) in a routing table."""
    return routes.get(language or "", routes.get(DEFAULT_ROUTE))


_ACCELERATOR_FLAGS = ("install-nvidia-driver", "use_nvidia_mps")


def check_accelerator(value: str) -> None:
    """A Dataflow-style accelerator hint: ``type:T`` first, ``count:N`` (N >= 1), then flags or key:value."""
    key = "config key 'toxicity.accelerator'"
    parts = [part.strip() for part in value.split(";")]
    if not parts[0].startswith("type:") or not parts[0][5:].strip():
        raise ConfigError(f"{key} must start with type:<accelerator>, e.g. "
                          f"'type:nvidia-tesla-t4;count:1;install-nvidia-driver'; got {value!r}")
    for part in parts[1:]:
        name, colon, arg = part.partition(":")
        if name == "count":
            if not (arg.isdigit() and int(arg) >= 1):
                raise ConfigError(f"{key}: count must be a whole number >= 1; got {part!r} in {value!r}")
        elif name == "type" or (not colon and part not in _ACCELERATOR_FLAGS) or (colon and not (name and arg)):
            raise ConfigError(f"{key}: unexpected {part!r} in {value!r} (allowed: count:N, "
                              f"{', '.join(_ACCELERATOR_FLAGS)}, or key:value)")


@dataclass(frozen=True)
class ToxicityConfig:
    """ScoreToxicity: the shipped fastText model, any local Hugging Face checkpoint, or a cascade."""

    enabled: bool = True
    # "fasttext" = the shipped model (classifiers/models/toxicity-fasttext); "minilm" = the shipped
    # MiniLM model (needs the [gpu] extra; assembled once per machine, no download); a .bin/.ftz
    # path; or a local Hugging Face AutoModelForSequenceClassification directory (safetensors only)
    model: str = "fasttext"
    # annotate (scores and a flag on every document, nothing removed) | filter (remove at or above the
    # threshold). Annotate is the default: on the shipped crawl sample the fast model flags 7 of 66
    # clean pages at 0.9 (one false-alarm chunk is enough under max aggregation); turn filtering on
    # with a threshold chosen for your data, or with a cascade to a checkpoint (README, "Toxicity").
    mode: str = "annotate"
    # 0.9 with 64-word chunks: the shipped fastText model's card (classifiers/models/toxicity-fasttext/
    # MODEL_CARD.md) shows 20 % of clean web-page chunks above 0.5, 3.5 % above 0.9.
    threshold: float = 0.9
    threshold_per_language: Mapping[str, float] = field(default_factory=dict)
    toxic_labels: tuple[str, ...] = ()  # labels that count as toxic; default: all but a clean label
    max_words: int = 64  # fastText: documents are scored in chunks of this many words (max)
    # Hugging Face models
    device: str = "auto"  # auto | cpu | cuda | cuda:N (cuda without a GPU is an error)
    max_length: int | None = None  # token window; default: the model's maximum
    token_budget: int = 16_384  # padded tokens per forward pass
    max_batch_size: int = 256
    share_model_across_processes: bool = False  # one copy per machine (Beam large_model)
    # Beam accelerator resource hint on the transformer's RunInference step only (fastText, reading and
    # the rest stay on CPU workers), in Dataflow's form "type:nvidia-tesla-t4;count:1;install-nvidia-driver";
    # None: no hint. Runners without resource hints ignore it (deploy/README.md, "GPU workers").
    accelerator: str | None = None
    # cascade: the fast model scores everything; documents whose fast score falls in
    # [cascade_low, cascade_high] go to this model (a checkpoint directory, or "minilm": the shipped
    # MiniLM model, assembled on first use), which decides them at cascade_threshold. Outside the
    # band the fast model decides at `threshold`, which must lie inside the band.
    cascade_model: str | None = None
    cascade_low: float = 0.3
    cascade_high: float = 0.97
    cascade_threshold: float = 0.5
    # Per-language routing on the LID language (issue 14): language -> model (any value `model`
    # takes, or "none"); key "default" for every language not listed. A language without a model
    # gets toxicity_score null and toxicity_supported false, and is never removed for toxicity.
    # `models` is laid over the built-in table DEFAULT_LANGUAGE_MODELS (shipped models whose figures
    # passed the bar; no "default": other languages get no model) unless builtin_models is false.
    # `model` is the model of en unless `models` names en. The old behaviour (the English model for
    # every language) is `models: {default: fasttext}` with `builtin_models: false`.
    models: Mapping[str, str] = field(default_factory=dict)
    builtin_models: bool = True
    # language (or "default") -> cascade checkpoint; `cascade_model` is the cascade of en
    cascade_models: Mapping[str, str] = field(default_factory=dict)

    def routes(self) -> dict[str, tuple[str, str | None]]:
        """language (or "default") -> (model, cascade model or None), for languages that have a model."""
        table = {**(DEFAULT_LANGUAGE_MODELS if self.builtin_models else {}), "en": self.model, **self.models}
        cascades = {"en": self.cascade_model, **self.cascade_models}
        return {lang: (model, cascades.get(lang) or None) for lang, model in sorted(table.items())
                if model.lower() != NO_MODEL}

    def route_for(self, language: str | None) -> tuple[str, str | None] | None:
        """The (model, cascade) a document in ``language`` is scored with, or None: no model."""
        return route_of(self.routes(), language)

    def validate(self) -> None:
        for lang, spec in {**self.models, **self.cascade_models}.items():
            if not lang or not spec:
                raise ConfigError(f"config key 'toxicity.models' / 'toxicity.cascade_models': empty language "
                                  f"or model in {lang!r}: {spec!r}")
        routed = self.routes()
        for lang in self.cascade_models:
            if lang not in routed:
                raise ConfigError(f"config key 'toxicity.cascade_models.{lang}': language {lang!r} has no model "
                                  "in toxicity.models to cascade from")
        _choice("toxicity.mode", self.mode, ("filter", "annotate"))
        _unit("toxicity.threshold", self.threshold)
        for lang, value in self.threshold_per_language.items():
            _unit(f"toxicity.threshold_per_language.{lang}", value)
        _positive("toxicity.max_words", self.max_words)
        _positive("toxicity.token_budget", self.token_budget)
        _positive("toxicity.max_batch_size", self.max_batch_size)
        if self.accelerator is not None:
            check_accelerator(self.accelerator)
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ConfigError(f"config key 'toxicity.device' must be auto, cpu or cuda[:N]; got {self.device!r}")
        _unit("toxicity.cascade_low", self.cascade_low)
        _unit("toxicity.cascade_high", self.cascade_high)
        _unit("toxicity.cascade_threshold", self.cascade_threshold)
        if self.cascade_low > self.cascade_high:
            raise ConfigError("toxicity.cascade_low must be <= toxicity.cascade_high")
        if self.cascade_model or self.cascade_models:
            for key, value in [("threshold", self.threshold)] + [
                    (f"threshold_per_language.{lang}", v) for lang, v in self.threshold_per_language.items()]:
                if not self.cascade_low <= value <= self.cascade_high:
                    raise ConfigError(
                        f"config key 'toxicity.{key}' = {value} lies outside the cascade band "
                        f"[{self.cascade_low}, {self.cascade_high}]: the fast model decides outside the band, "
                        "so its threshold must lie inside it")

    def cascade_decision(self) -> ToxicityConfig:
        """The config the cascade model decides with: its own threshold, for every language."""
        return replace(self, threshold=self.cascade_threshold, threshold_per_language={})

    def threshold_for(self, language: str | None) -> float:
        return self.threshold_per_language.get(language or "", self.threshold)


@dataclass(frozen=True)
class OutputConfig:
    shard_target_bytes: int = 128 * 1024 * 1024  # uncompressed payload per Parquet shard
    removed_text: str = "truncated"  # full | truncated | none, for removed/
    removed_text_chars: int = 2000
    compression: str = "zstd"
    row_group_rows: int = 8192

    def validate(self) -> None:
        _positive("output.shard_target_bytes", self.shard_target_bytes)
        _choice("output.removed_text", self.removed_text, REMOVED_TEXT_MODES)
        _positive("output.removed_text_chars", self.removed_text_chars)
        _choice("output.compression", self.compression, ("zstd", "snappy", "gzip", "none"))
        _positive("output.row_group_rows", self.row_group_rows)


@dataclass(frozen=True)
class LimitsConfig:
    """Per-record resource bounds (docs/reliability.md): past one, a record is removed with a reason.

    input.max_record_bytes (dead letter RecordTooLarge) is the reader's bound, before a record is loaded.
    """

    max_html_bytes: int = 5_000_000  # larger HTML is not parsed (extract/html_too_complex)
    max_html_depth: int = 512  # deeper element nesting is not parsed (extract/html_too_complex); Blink's cap
    extract_timeout_s: float = 10.0  # wall-clock limit per page; past it the extractor process is killed
    guard_min_tags: int = 2000  # pages with more "<" are extracted in the time-limited process; 0 = every page
    max_text_chars: int = 5_000_000  # longer normalised text is removed (extract/text_too_long)

    def validate(self) -> None:
        for key in ("max_html_bytes", "max_html_depth", "max_text_chars"):
            _positive(f"limits.{key}", getattr(self, key))
        if self.extract_timeout_s <= 0:
            raise ConfigError(f"config key 'limits.extract_timeout_s' must be > 0, got {self.extract_timeout_s!r}")
        if self.guard_min_tags < 0:
            raise ConfigError(f"config key 'limits.guard_min_tags' must be >= 0, got {self.guard_min_tags!r}")


@dataclass(frozen=True)
class RunConfig:
    progress_interval_s: float = 10.0

    def validate(self) -> None:
        if self.progress_interval_s <= 0:
            raise ConfigError("run.progress_interval_s must be > 0")


@dataclass(frozen=True)
class Config:
    input: InputConfig = field(default_factory=InputConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    blocklists: BlocklistsConfig = field(default_factory=BlocklistsConfig)
    exact_dedup: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    near_dedup: NearDedupConfig = field(default_factory=NearDedupConfig)
    toxicity: ToxicityConfig = field(default_factory=ToxicityConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)  # declared stages (pipelines/stages/)
    output: OutputConfig = field(default_factory=OutputConfig)
    run: RunConfig = field(default_factory=RunConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if hasattr(section, "validate"):
                section.validate()

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)


def parse_language_thresholds(values: list[str]) -> dict[str, float]:
    """``de=0.95`` ... as given to ``--threshold-per-language`` (rethreshold, export)."""
    out: dict[str, float] = {}
    for value in values:
        lang, sep, number = value.partition("=")
        try:
            out[lang] = float(number)
        except ValueError:
            sep = ""
        if not sep or not lang:
            raise ConfigError(f"--threshold-per-language expects LANG=VALUE (e.g. de=0.95), not {value!r}")
    return out


class Replace(dict):  # type: ignore[type-arg]
    """A mapping value given whole (``--set toxicity.threshold_per_language={zh: 0.5}``): it replaces the
    mapping it is laid over instead of merging into it."""


def parse_overrides(values: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` settings as a nested mapping: dotted keys as in the config file, values parsed
    as YAML (``0.7``, ``false``, ``[en, de]``, ``{zh: 0.5}``). Laid over a config with ``merge_config``,
    then validated like a config file (an unknown key names itself). A mapping value replaces the
    mapping at its key (``...per_language={}`` clears it); a dotted key inside it sets one entry."""
    out: dict[str, Any] = {}
    for value in values:
        key, sep, text = value.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set expects KEY=VALUE with a dotted config key "
                              f"(e.g. language.min_score=0.7), not {value!r}")
        try:
            parsed = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: the value {text!r} is not valid YAML: {exc}") from exc
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: '{'.'.join(parts[:i + 1])}' is set to a value, not a section")
            node = child
        node[parts[-1]] = Replace(parsed) if isinstance(parsed, dict) else parsed
    return out


def merge_config(base: Mapping[str, Any], overlay: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``overlay`` laid over ``base`` (plain dicts as in a config file): mappings merge key by key,
    anything else replaces. Setting a key inside a value that is not a mapping is a ConfigError."""
    out = dict(base)
    for key, value in overlay.items():
        current = out.get(key)
        if isinstance(value, Replace):
            out[key] = dict(value)
        elif isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = merge_config(current, value, f"{prefix}{key}.")
        elif isinstance(value, Mapping) and current is not None and key in out:
            raise ConfigError(f"config key '{prefix}{key}' is a value ({current!r}), not a section")
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None) -> Config:
    """Load and validate a YAML config; ``None`` gives the defaults."""
    if path is None:
        raw: Any = {}
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    return config_from_dict(raw)


def config_from_dict(raw: Any) -> Config:
    config = _build(Config, raw, "")
    config.validate()
    return config


def default_config_yaml() -> str:
    return yaml.safe_dump(Config().to_dict(), sort_keys=False)


# --- helpers ---------------------------------------------------------------


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else f" (known: {', '.join(names)})"
            raise ConfigError(f"unknown config key '{dotted}'{hint}")
        kwargs[key] = _coerce(hints[key], value, dotted)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value if value is not None else {}, key + ".")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict, typing.Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        # a plain dict (picklable for Beam workers); the dataclass around it is frozen
        return {str(k): _coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    raise ConfigError(f"config key '{key}': unsupported type {hint!r}")  # pragma: no cover


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value
