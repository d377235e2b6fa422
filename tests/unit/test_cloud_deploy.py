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


# --- the Dataflow Flex Template -------------------------------------------------------------

FLEX = REPO / "deploy" / "flex-template"


def test_metadata_declares_exactly_the_parameters_the_launcher_maps() -> None:
    import json

    from toxsieve.pipelines.cli.flex_template import PARAMETERS

    meta = json.loads((FLEX / "metadata.json").read_text())
    assert meta["name"] and meta["description"]
    names = [p["name"] for p in meta["parameters"]]
    assert sorted(names) == sorted(PARAMETERS) and len(set(names)) == len(names)
    for param in meta["parameters"]:
        assert set(param) <= {"name", "label", "helpText", "isOptional", "regexes"}, param
        assert param["label"] and param["helpText"]
    required = {p["name"] for p in meta["parameters"] if not p.get("isOptional", False)}
    assert required == {"output"}


def test_launcher_maps_parameters_to_toxsieve_run_arguments() -> None:
    from toxsieve.pipelines.cli.flex_template import toxsieve_argv
    from toxsieve.pipelines.cli.main import _parser

    fetched = []
    argv = toxsieve_argv([
        "--input=gs://b/crawl/a/*.warc.gz; gs://b/crawl/b/*.wet.gz", "--input_list=gs://b/lists/wet.paths.gz",
        "--input_base=s3://commoncrawl/", "--output=gs://b/out/run1", "--config=gs://b/cfg/cascade.yaml",
        "--run_id=r1", "--overwrite=true", "--runner=DataflowRunner", "--project=p", "--region=europe-west4",
        "--temp_location=gs://b/tmp", "--sdk_container_image=r/toxsieve-worker:0.1.0"],
        fetch_config=lambda path: fetched.append(path) or "/tmp/cascade.yaml")
    assert fetched == ["gs://b/cfg/cascade.yaml"]
    args, beam_args = _parser().parse_known_args(argv)
    assert args.command == "run"
    assert args.input == ["gs://b/crawl/a/*.warc.gz", "gs://b/crawl/b/*.wet.gz"]
    assert args.input_list == ["gs://b/lists/wet.paths.gz"] and args.input_base == "s3://commoncrawl/"
    assert (args.output, args.config, args.run_id, args.overwrite) == ("gs://b/out/run1", "/tmp/cascade.yaml",
                                                                       "r1", True)
    assert beam_args == ["--runner=DataflowRunner", "--project=p", "--region=europe-west4",
                         "--temp_location=gs://b/tmp", "--sdk_container_image=r/toxsieve-worker:0.1.0"]
    args, _ = _parser().parse_known_args(toxsieve_argv(["--input_list=l.txt", "--output=o", "--overwrite=false"]))
    assert args.overwrite is False and args.input == [] and args.config is None


@pytest.mark.parametrize(("argv", "message"), [
    (["--input=a"], "'output' is required"),
    (["--output=gs://b/o"], "'input' or 'input_list'"),
    (["--output=o", "--input= ; "], "'input' is empty"),
    (["--output=o", "--input=a", "--overwrite=maybe"], "true or false"),
])
def test_bad_template_parameters_are_clear_errors(argv: list[str], message: str) -> None:
    from toxsieve.pipelines.cli.flex_template import TemplateParameterError, main, toxsieve_argv

    with pytest.raises(TemplateParameterError, match=message):
        toxsieve_argv(argv)
    assert main(argv) == 2


def test_launcher_image_runs_the_launcher_at_our_beam_version() -> None:
    import re

    text = (FLEX / "Dockerfile").read_text()
    assert re.findall(r"^FROM\s+(\S+)", text, flags=re.M) == [
        "gcr.io/dataflow-templates-base/python311-template-launcher-base"]
    assert f'"apache-beam[gcp,aws]=={_beam_pin()}"' in text
    assert "ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/template/launcher.py" in text
    assert "COPY deploy/flex-template/launcher.py ./launcher.py" in text
    assert "from toxsieve.pipelines.cli.flex_template import main" in (FLEX / "launcher.py").read_text()
