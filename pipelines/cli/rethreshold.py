"""``toxsieve rethreshold``: ``toxsieve redecide`` with only toxicity settings changed.

Kept for its CLI: ``--threshold``, ``--threshold-per-language`` (replaces the source run's table),
``--cascade-threshold`` and ``--mode`` (default ``filter``) become the ``toxicity`` section of the new
config, and ``pipelines/cli/redecide.py`` decides every document with ``toxicity.decide_toxicity``, the
pipeline's own rule. A document the source removed for toxicity can be restored only when
``removed/`` holds its full text (see redecide's rules); toxicity removals name the source run and
say that no model ran.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from toxsieve.pipelines.cli.redecide import redecide
from toxsieve.pipelines.config import Config, ConfigError, ToxicityConfig
from toxsieve.pipelines.runtime.run import RunError


def new_toxicity_config(source: ToxicityConfig, threshold: float | None, per_language: dict[str, float] | None,
                        cascade_threshold: float | None, mode: str) -> ToxicityConfig:
    tox = dataclasses.replace(
        source, mode=mode,
        threshold=source.threshold if threshold is None else threshold,
        threshold_per_language=source.threshold_per_language if per_language is None else per_language,
        cascade_threshold=source.cascade_threshold if cascade_threshold is None else cascade_threshold,
    )
    tox.validate()
    return tox


def rethreshold(source: str | Path, output: str | Path, threshold: float | None = None,
                per_language: dict[str, float] | None = None, cascade_threshold: float | None = None,
                mode: str = "filter", overwrite: bool = False, run_id: str | None = None) -> dict[str, Any]:
    def new_config(cfg: Config) -> Config:
        if not cfg.toxicity.enabled:
            raise RunError(f"{source} was run with toxicity disabled: there are no stored scores")
        try:
            tox = new_toxicity_config(cfg.toxicity, threshold, per_language, cascade_threshold, mode)
        except ConfigError as exc:
            raise RunError(str(exc)) from exc
        return dataclasses.replace(cfg, toxicity=tox)

    stats = redecide(source, output, new_config, overwrite=overwrite, run_id=run_id, command="rethreshold",
                     note=lambda src_run: f"rethreshold of run {src_run}; no model run")
    return stats
