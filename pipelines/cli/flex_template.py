"""Dataflow Flex Template launcher: template parameters → ``toxsieve run`` arguments.

Dataflow starts the launcher image and runs ``deploy/flex-template/launcher.py`` with every template
parameter as ``--name=value`` plus its own pipeline options (``--runner``, ``--project``,
``--region``, ``--temp_location``, ``--staging_location``, ``--sdk_container_image`` ...). The
parameters below are toxsieve's; everything else is handed to Beam unchanged, as ``toxsieve run``
does. ``deploy/flex-template/metadata.json`` declares the same parameters (a test keeps them equal).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable

# template parameter -> (toxsieve run flag, kind): "list" = ';'-separated, repeatable flag;
# "value" = one value; "flag" = true/false
PARAMETERS: dict[str, tuple[str, str]] = {
    "input": ("--input", "list"),
    "input_list": ("--input-list", "list"),
    "input_base": ("--input-base", "value"),
    "output": ("--output", "value"),
    "config": ("--config", "value"),
    "run_id": ("--run-id", "value"),
    "overwrite": ("--overwrite", "flag"),
}
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


class TemplateParameterError(ValueError):
    """A template parameter the launcher cannot turn into toxsieve arguments."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toxsieve-flex-launcher", add_help=False)
    for name in PARAMETERS:
        parser.add_argument(f"--{name}", dest=name, default=None)
    return parser


def toxsieve_argv(argv: list[str], fetch_config: Callable[[str], str] | None = None) -> list[str]:
    """``toxsieve`` CLI arguments (starting with ``run``) for the launcher's command line.

    ``fetch_config`` turns a remote config (``gs://...``) into a local file path; without it a
    remote config is passed through as is.
    """
    known, beam_args = _parser().parse_known_args(argv)
    values = vars(known)
    if not values["output"]:
        raise TemplateParameterError("template parameter 'output' is required")
    if not values["input"] and not values["input_list"]:
        raise TemplateParameterError("template parameter 'input' or 'input_list' is required")
    out = ["run"]
    for name, (flag, kind) in PARAMETERS.items():
        value = values[name]
        if value is None:
            continue
        if kind == "list":
            items = [item.strip() for item in value.split(";") if item.strip()]
            if not items:
                raise TemplateParameterError(f"template parameter {name!r} is empty")
            for item in items:
                out += [flag, item]
        elif kind == "flag":
            if value.strip().lower() not in (*_TRUE, *_FALSE):
                raise TemplateParameterError(f"template parameter {name!r} must be true or false; got {value!r}")
            if value.strip().lower() in _TRUE:
                out.append(flag)
        else:
            if name == "config" and "://" in value and fetch_config is not None:
                value = fetch_config(value)
            out += [flag, value]
    return [*out, *beam_args]


def fetch_to_local(path: str) -> str:
    """Copy a config from any Beam filesystem (gs://, s3://) to a local temporary file."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as src, tempfile.NamedTemporaryFile("wb", suffix=".yaml", delete=False) as dst:
        dst.write(src.read())
        return dst.name


def main(argv: list[str] | None = None) -> int:
    from toxsieve.pipelines.cli.main import main as toxsieve_main

    try:
        args = toxsieve_argv(list(sys.argv[1:] if argv is None else argv), fetch_config=fetch_to_local)
    except TemplateParameterError as exc:
        sys.stderr.write(f"toxsieve flex template: {exc}\n")
        return 2
    return toxsieve_main(args)
