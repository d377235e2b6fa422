"""Run configuration: one frozen dataclass tree, loaded from YAML and validated with clear errors."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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

    def validate(self) -> None:
        _choice("input.format", self.format, INPUT_FORMATS)
        _positive("input.max_record_bytes", self.max_record_bytes)


@dataclass(frozen=True)
class ExtractConfig:
    min_chars: int = 200  # normalised text shorter than this is removed (too_short)
    main_content: bool = True  # resiliparse main-content heuristics (drop nav, footers)

    def validate(self) -> None:
        if self.min_chars < 0:
            raise ConfigError("extract.min_chars must be >= 0")


@dataclass(frozen=True)
class LanguageConfig:
    model_path: str | None = None  # default: the shipped fastText lid.176.ftz
    allowed: tuple[str, ...] = ()  # ISO codes as LID-176 emits them; empty = all
    min_score: float = 0.5  # global floor on the top label's probability
    min_score_per_language: Mapping[str, float] = field(default_factory=dict)
    max_chars: int = 10_000  # LID reads at most this many characters of a document

    def validate(self) -> None:
        _unit("language.min_score", self.min_score)
        for lang, score in self.min_score_per_language.items():
            _unit(f"language.min_score_per_language.{lang}", score)
        _positive("language.max_chars", self.max_chars)

    def threshold_for(self, language: str) -> float:
        return self.min_score_per_language.get(language, self.min_score)


@dataclass(frozen=True)
class ExactDedupConfig:
    enabled: bool = True


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
    exact_dedup: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if hasattr(section, "validate"):
                section.validate()

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)


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
        raise ConfigError(f"config section '{prefix or '<root>'}' must be a mapping, got {type(raw).__name__}")
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


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(choices)}; got {value!r}")


def _positive(key: str, value: int) -> None:
    if value <= 0:
        raise ConfigError(f"config key '{key}' must be > 0, got {value!r}")


def _unit(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"config key '{key}' must be between 0 and 1, got {value!r}")
