"""pipelines/ keeps its four subpackages apart, and every one of them (with the shipped lists) installs."""

from __future__ import annotations

import fnmatch
import importlib
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
PIPELINES = REPO / "pipelines"


def _installed_name(folder: Path) -> str:
    """The import name setuptools gives a source folder, from ``package-dir``."""
    for name, src in SETUPTOOLS["package-dir"].items():
        if folder == REPO / src or (REPO / src) in folder.parents:
            return ".".join([name, *folder.relative_to(REPO / src).parts])
    raise AssertionError(f"{folder} is under no package-dir")


def test_every_python_package_is_listed_for_install() -> None:
    packages = {_installed_name(init.parent) for top in ("pipelines", "classifiers", "schemas")
                for init in (REPO / top).rglob("__init__.py")}
    assert set(SETUPTOOLS["packages"]) == packages


def test_pipelines_top_holds_only_the_shared_core() -> None:
    modules = sorted(p.name for p in PIPELINES.glob("*.py"))
    assert modules == ["__init__.py", "config.py", "document.py"], (
        "new modules go into pipelines/stages, io, runtime or cli (docs/architecture.md, 'Where things are')")
    assert sorted(p.name for p in PIPELINES.iterdir() if p.is_dir() and p.name != "__pycache__") == [
        "cli", "io", "lists", "runtime", "stages"]


def test_shipped_lists_are_package_data() -> None:
    globs = SETUPTOOLS["package-data"]["toxsieve.pipelines"]
    files = [p.relative_to(PIPELINES).as_posix() for p in (PIPELINES / "lists").rglob("*") if p.is_file()]
    assert files
    missed = [f for f in files if not any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)]
    assert not missed


def test_lists_dir_is_the_shipped_folder() -> None:
    from toxsieve.pipelines.stages.blocklists import LISTS_DIR

    assert LISTS_DIR.resolve() == (PIPELINES / "lists").resolve()


def test_console_script_resolves_to_the_cli_main() -> None:
    target = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["toxsieve"]
    module, _, attr = target.partition(":")
    main = getattr(importlib.import_module(module), attr)
    assert callable(main)
    assert module == "toxsieve.pipelines.cli.main"
