"""Declared per-document stages: one module each, listed once in ``STAGE_MODULES``.

Adding a stage = one new module in this folder that defines ``STAGE = DeclaredStage(...)``
(see ``base.py``) + one line in ``STAGE_MODULES``. Its config section (``quality.<name>``), enum
values, metadata columns, Beam step, funnel, audit evidence and re-deciding all come from the
declaration. The stages run in this order: those of phase ``url`` on the record as read, before
ExtractText; those of phase ``text`` after ExtractText and before DropExactDuplicates, the first of
them IdentifyLanguage (``language``), which sets the language every later stage reads.

Importing this package loads only the declarations (no Beam, nothing else from toxsieve), so
``schemas/`` can build its enums and schemas from it.

The folder also holds the cores of the stages that are not declared (``extract``, ``blocklists``
(the matchers ``url_blocklist`` and ``word_blocklist`` load), ``toxicity``,
``dedup_exact``, ``near_dedup`` with ``minhash`` and its Beam graph ``near_dedup_beam``); their
Beam steps: extraction's in ``runtime/transforms.py``, toxicity's in ``runtime/fast_scoring.py`` and
``runtime/inference.py``, dedup's in ``runtime/passes.py`` (pass 2).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from toxsieve.pipelines.stages.base import PHASES, DeclaredStage, Signal, StageConfig

if TYPE_CHECKING:
    from toxsieve.pipelines.document import Document

# The declared stages, in pipeline order (the "url" phase first: it runs before extraction).
STAGE_MODULES: tuple[str, ...] = (
    "url_blocklist",  # phase url (before extraction); config blocklists.url, columns url_*: its keys before declarations
    "language",  # phase text, first: sets Document.language for every later stage; config language
    "word_blocklist",  # config blocklists.words, columns blocklist_*: the keys it had before declarations
    "length",  # the length floor after language ID, in comparable words; token estimate
    "gopher_repetition",
    "gopher_quality",
    "c4",
    "fineweb",
)

STAGES: tuple[DeclaredStage, ...] = tuple(
    importlib.import_module(f"{__name__}.{name}").STAGE for name in STAGE_MODULES)
BY_NAME: dict[str, DeclaredStage] = {stage.name: stage for stage in STAGES}


def in_phase(phase: str, cfg: Any = None) -> tuple[DeclaredStage, ...]:
    """The declared stages that run in ``phase`` (``base.PHASES``), in pipeline order; given a run
    config, only those it enables."""
    return tuple(stage for stage in STAGES
                 if stage.phase == phase and (cfg is None or stage.config_of(cfg).enabled))


# The stages whose config is a section of quality: (the others name their own section).
QUALITY_STAGES: tuple[DeclaredStage, ...] = tuple(stage for stage in STAGES if not stage.section)


def _check_declarations() -> None:
    for name, stage in zip(STAGE_MODULES, STAGES, strict=True):
        if stage.name != name:
            raise ImportError(f"pipelines/stages/{name}.py declares stage {stage.name!r}; name it {name!r}")
        if not issubclass(stage.config, StageConfig):
            raise ImportError(f"stage {name}: config {stage.config.__name__} must subclass StageConfig")
        if not stage.reasons:
            raise ImportError(f"stage {name} declares no reasons")
        names = [s.name for s in stage.signals]
        if len(names) != len(set(names)) or "flag" in names:
            raise ImportError(f"stage {name}: signal names must be unique and not 'flag'")
        if stage.section and stage.section.startswith("quality."):
            raise ImportError(f"stage {name}: a quality.* section is the default; leave `section` empty")
        if stage.phase not in PHASES:
            raise ImportError(f"stage {name}: phase {stage.phase!r} is not one of {', '.join(PHASES)}")
        if stage.phase == "url" and stage.rewrite is not None:
            raise ImportError(f"stage {name}: a stage of phase url runs before there is text to rewrite")
    phases = [PHASES.index(stage.phase) for stage in STAGES]
    if phases != sorted(phases):
        raise ImportError(f"STAGE_MODULES: list the stages phase by phase ({', '.join(PHASES)}), in pipeline order")


_check_declarations()


def _quality_config() -> type:
    fields = [(s.name, s.config, dataclasses.field(default_factory=s.config)) for s in QUALITY_STAGES]
    cls = dataclasses.make_dataclass("QualityConfig", fields, frozen=True)
    cls.__module__ = __name__  # picklable by reference (Beam ships configs to workers)
    cls.__doc__ = "Declared stages' config sections: quality.<stage> (see pipelines/stages/)."

    def validate(self: Any) -> None:
        for stage in QUALITY_STAGES:
            section = getattr(self, stage.name)
            if hasattr(section, "validate"):
                section.validate(stage.config_key)

    cls.validate = validate
    return cls


QualityConfig = _quality_config()


def signal_fields(phase: str | None = None) -> list[pa.Field]:
    """The metadata columns of every declared stage (of one phase): its signals, then ``<stage>_flag``."""
    out: list[pa.Field] = []
    for stage in STAGES if phase is None else in_phase(phase):
        out += [pa.field(stage.column(s.name), s.type, nullable=s.nullable) for s in stage.signals if not s.field]
        out.append(pa.field(stage.flag_column, pa.string()))  # the reason decide() gave, in either mode
    return out


def signal_columns(doc: Document) -> dict[str, Any]:
    """Every declared column for one document (null where its stage did not run)."""
    row: dict[str, Any] = {name: None for name in _ALL_COLUMNS}
    row.update(doc.signals)
    return row


_ALL_COLUMNS = tuple(f.name for f in signal_fields())


def stat_keys(meta: Mapping[str, Any]) -> Iterator[tuple[str, int]]:
    """Stats keys (key, amount) from one metadata row: flags per stage and reason (in annotate mode
    these are what the stage would have removed), and estimated tokens of kept documents per language."""
    for stage in STAGES:
        flag = meta.get(stage.flag_column)
        if flag:
            yield f"flagged/{stage.name}/{flag}", 1
    tokens = meta.get("length_tokens")
    if meta["decision"] == "kept" and tokens is not None:
        yield f"tokens/{meta['language'] or 'und'}", int(tokens)


__all__ = ["BY_NAME", "QUALITY_STAGES", "STAGES", "STAGE_MODULES", "DeclaredStage", "QualityConfig", "Signal", "StageConfig",
           "in_phase", "signal_columns", "signal_fields", "stat_keys"]
