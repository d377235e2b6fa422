"""Cloud deployment files: the [gcp]/[aws] extras, the accelerator hint and the Dataflow Flex Template."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _beam_pin() -> str:
    (beam,) = [Requirement(d) for d in PYPROJECT["project"]["dependencies"] if d.startswith("apache-beam")]
    (spec,) = beam.specifier
    assert spec.operator == "=="
    return spec.version


@pytest.mark.parametrize(("extra", "beam_extra"), [("gcp", "gcp"), ("aws", "aws")])
def test_cloud_extras_pin_beam_with_its_filesystem_extra_at_the_core_version(extra: str, beam_extra: str) -> None:
    (req,) = [Requirement(d) for d in PYPROJECT["project"]["optional-dependencies"][extra]]
    assert req.name == "apache-beam" and req.extras == {beam_extra}
    assert str(req.specifier) == f"=={_beam_pin()}"
