"""What a declared stage is: its config section, reasons, signal columns, ``score`` and ``decide``.

A stage module builds one :class:`DeclaredStage` and is listed in ``STAGE_MODULES``
(``pipelines/stages/__init__.py``). Everything else is derived from the declaration: the config
section (``quality.<name>`` unless the stage names another), the ``Stage``/``Reason`` enum values
and ``REASONS_BY_STAGE`` (``schemas/enums.py``), the metadata columns ``<name>_<signal>`` (or the
stage's own prefix) and ``<name>_flag`` (``schemas/v1.py``), the Beam step
(``pipelines/stages/apply.py``, which also loads a stage's resources once per worker process), the
funnel in ``stats.json``, the audit evidence (the ``Removal`` that ``decide`` returns) and
re-deciding (``toxsieve redecide``).

This module imports nothing from the rest of toxsieve at import time: ``schemas/`` reads the
declarations to build its enums and schemas.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from toxsieve.pipelines.document import Document, Removal

MODES = ("filter", "annotate")
# Where in the signals chain a declared stage runs: "url" on the record as read, before ExtractText (no
# text yet; a page it removes is never parsed); "text" after ExtractText (text known; the language once
# the first of them, IdentifyLanguage, ran).
PHASES = ("url", "text")  # the language stage is the first of phase text


@dataclass(frozen=True)
class StageConfig:
    """Fields every declared stage's config section has; a stage's config subclasses this."""

    enabled: bool = False
    mode: str = "filter"  # filter: remove what decide() rejects | annotate: record the flag, remove nothing


@dataclass(frozen=True)
class Signal:
    """One measured value a stage writes to ``metadata/`` as column ``<stage>_<name>``."""

    name: str
    type: pa.DataType
    doc: str
    nullable: bool = True  # null: the rule does not apply to this document (e.g. no stop-word list)
    column: str = ""  # its metadata/ column when not <prefix><name>
    # A typed Document field (``doc.<column>``) that later stages read, such as the language: the
    # stage sets the field instead of a declared column, and the schemas place the column themselves.
    field: bool = False


_PY_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (float, int), "bool": (bool,), "string": (str,),
                                          "list": (list, tuple)}


def _kind(pa_type: Any) -> str:
    if pa.types.is_list(pa_type) or pa.types.is_large_list(pa_type):
        return "list"
    name = str(pa_type)
    if name.startswith(("int", "uint")):
        return "int"
    if name in ("float", "double", "halffloat"):
        return "float"
    return "bool" if name == "bool" else "string"


@dataclass(frozen=True)
class DeclaredStage:
    """A per-document stage, declared once.

    ``score(doc, cfg)`` measures (it may use the config's *measurement* settings, such as a line
    length or a stop-word list); ``decide(signals, cfg)`` compares the stored signals with the
    config's *thresholds* and returns a ``Removal`` (reason + evidence) or ``None``; ``signals``
    holds the stage's own signals plus the document's ``language``, all of which ``metadata/``
    stores, so a decision can be re-made from a finished run (``toxsieve redecide``). Both are pure.
    ``rewrite(doc, cfg)``, if declared, returns the text a kept document continues with (line-level
    cleaning); it runs only in filter mode, after ``decide`` kept the document. ``measure`` names the
    config fields ``score``/``rewrite`` read; ``redecide`` may change only the others.

    A stage that needs something loaded (a word list, a model) declares ``load(cfg)``: it runs once
    per worker process and its result is ``score``'s third argument, ``score(doc, cfg, loaded)``.
    ``section`` is the dotted config key when it is not ``quality.<name>`` and ``column_prefix`` the
    prefix of its signal columns when it is not ``<name>_`` (both for stages older than this
    declaration, whose keys and columns users already have). ``phase`` is where the stage runs:
    ``"text"`` (default) after extraction (LID first), ``"url"`` before extraction, on the record's URL and
    HTTP facts only (its ``score`` sees no text and no language).
    """

    name: str  # the Stage value stored in Parquet and the config key under `quality:`
    transform: str  # the Beam step's name, verb-noun (FilterGopherQuality)
    doc: str
    config: type[StageConfig]
    reasons: tuple[tuple[str, str], ...]  # (Reason value, what it means)
    signals: tuple[Signal, ...]
    score: Callable[[Document, Any], dict[str, Any]]
    decide: Callable[[Mapping[str, Any], Any], Removal | None]
    rewrite: Callable[[Document, Any], str] | None = None
    # config fields that score() or rewrite() read (measurement settings): changing one changes the
    # stored signals, so `toxsieve redecide` refuses it; every other field only decides
    measure: tuple[str, ...] = ()
    load: Callable[[Any], Any] | None = None  # once per worker process: score's third argument
    section: str = ""  # dotted config key; "" = quality.<name>
    column_prefix: str = ""  # signal columns are <column_prefix><signal>; "" = <name>_
    phase: str = "text"  # one of PHASES

    @property
    def config_key(self) -> str:
        return self.section or f"quality.{self.name}"

    def config_of(self, cfg: Any) -> Any:
        """This stage's section of a whole run config (``Config``)."""
        for part in self.config_key.split("."):
            cfg = getattr(cfg, part)
        return cfg

    def measure_signals(self, doc: Document, cfg: Any, loaded: Any = None) -> dict[str, Any]:
        """``score`` with what ``load`` returned, for a stage that declares one."""
        return self.score(doc, cfg) if self.load is None else self.score(doc, cfg, loaded)

    def decision_inputs(self, signals: Mapping[str, Any], language: str | None) -> dict[str, Any]:
        """What ``decide`` sees: the stage's signals and the document's language (all stored in
        metadata/); the language stage's own signal is the language."""
        return {"language": language, **signals}

    def stored_inputs(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """``decision_inputs`` from a ``metadata/`` row."""
        return self.decision_inputs({name: row[column] for name, column in self._signal_columns}, row["language"])

    @functools.cached_property
    def _signal_columns(self) -> tuple[tuple[str, str], ...]:
        return tuple((s.name, self.column(s.name)) for s in self.signals)

    @functools.cached_property
    def signal_checks(self) -> dict[str, tuple[Signal, tuple[type, ...], bool]]:
        """Per signal: its declaration, the Python types a value may have, whether it is numeric (what
        ``apply.check_signals`` checks every ``score`` result against)."""
        return {s.name: (s, _PY_TYPES[_kind(s.type)], _kind(s.type) in ("int", "float")) for s in self.signals}

    @functools.cached_property
    def _explicit_columns(self) -> dict[str, str]:
        return {s.name: s.column for s in self.signals if s.column}

    @functools.cached_property
    def field_signals(self) -> frozenset[str]:
        """The signals stored as typed Document fields (``Signal.field``)."""
        return frozenset(s.name for s in self.signals if s.field)

    @functools.cached_property
    def _reason_values(self) -> frozenset[str]:
        return frozenset(r for r, _ in self.reasons)

    def column(self, signal: str) -> str:
        return self._explicit_columns.get(signal) or f"{self.column_prefix or self.name + '_'}{signal}"

    @property
    def flag_column(self) -> str:
        return f"{self.name}_flag"

    def remove(self, reason: str, score: float | None = None, threshold: float | None = None,
               matched: tuple[str, ...] = (), detail: str | None = None) -> Removal:
        """The Removal for one of this stage's reasons, with its evidence."""
        from toxsieve.pipelines.document import Removal
        from toxsieve.schemas import Reason, Stage

        if reason not in self._reason_values:
            raise ValueError(f"stage {self.name!r} did not declare reason {reason!r}")
        return Removal(Stage(self.name), Reason(reason), score=score, threshold=threshold, matched=matched,
                       detail=detail)

    def first_out_of_bounds(self, signals: Any, rules: tuple[tuple[str, str, float | None, str], ...]) -> Any:
        """The Removal for the first (reason, signal, bound, "<" or ">") rule the signals break, else None.
        A rule whose bound is None is off; a signal that is None (not measurable here) breaks nothing."""
        for reason, name, bound, rel in rules:
            value = signals[name]
            if bound is None or value is None or not (value < bound if rel == "<" else value > bound):
                continue
            return self.remove(reason, score=float(value), threshold=float(bound), matched=(name,),
                               detail=f"{name} {value:g} {rel} {self.config_key} bound {bound:g}")
        return None


# --- config checks (raise the config module's ConfigError, which names the key) -----------------


def config_error(message: str) -> Exception:
    from toxsieve.pipelines.config import ConfigError

    return ConfigError(message)


def check_mode(key: str, cfg: StageConfig) -> None:
    check_choice(f"{key}.mode", cfg.mode, MODES)


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise config_error(f"config key '{key}' must be one of {', '.join(choices)}; got {value!r}")


def check_positive(key: str, value: int) -> None:
    if value <= 0:
        raise config_error(f"config key '{key}' must be > 0, got {value!r}")


def check_unit(key: str, value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise config_error(f"config key '{key}' must be between 0 and 1, got {value!r}")


def check_non_negative(key: str, value: float | None) -> None:
    if value is not None and value < 0:
        raise config_error(f"config key '{key}' must be >= 0, got {value!r}")
