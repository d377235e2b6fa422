"""toxicity.accelerator: a Beam resource hint on the transformer's RunInference step only (graph, not run)."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import pytest

from tests.conftest import build_tiny_model, local_runner
from toxsieve.pipelines.config import ConfigError, config_from_dict
from toxsieve.pipelines.runtime.pipeline import RunSpec, curate

HINT = "type:nvidia-tesla-t4;count:1;install-nvidia-driver"
ACCELERATOR_URN = "beam:resources:accelerator:v1"


def _hinted(cfg_raw: dict, tmp_path: Path) -> tuple[dict[str, bytes | None], list[str]]:
    """unique name -> accelerator hint (None: none) of every transform of the whole curation graph."""
    p = beam.Pipeline(runner=local_runner())
    curate(p, RunSpec(inputs=[str(tmp_path / "in.jsonl")], output=str(tmp_path / "out"),
                      config=config_from_dict(cfg_raw), run_id="graph"))
    proto = p.to_runner_api()
    envs = proto.components.environments
    hints = {}
    for t in proto.components.transforms.values():
        env = envs.get(t.environment_id) if t.environment_id else None
        hints[t.unique_name] = env.resource_hints.get(ACCELERATOR_URN) if env is not None else None
    return hints, [name for name, hint in hints.items() if hint is not None]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_only_the_cascades_run_inference_asks_for_the_accelerator(tiny: Path, tmp_path: Path) -> None:
    hints, hinted = _hinted({"toxicity": {"cascade_model": str(tiny), "accelerator": HINT}}, tmp_path)
    assert hinted, "no transform carries the accelerator hint"
    roots = {name.split("/RunInference")[0] + "/RunInference" for name in hinted}
    assert len(roots) == 1 and all("/Cascade/" in r for r in roots), roots
    assert all(name.startswith(next(iter(roots))) for name in hinted), hinted
    assert {hints[name] for name in hinted} == {HINT.encode()}
    # reading, extraction, LID, dedup, the fastText scores and the cascade's tokenizer stay on CPU workers
    for name, hint in hints.items():
        if any(step in name for step in ("ReadCrawlShards", "FastScore", "Tokenize", "IdentifyLanguage", "Write")):
            assert hint is None, name
    assert any("FastScore" in name for name in hints) and any("Tokenize" in name for name in hints)


def test_a_checkpoint_alone_is_hinted_and_no_hint_without_the_key(tiny: Path, tmp_path: Path) -> None:
    _, hinted = _hinted({"toxicity": {"model": str(tiny), "accelerator": HINT}}, tmp_path)
    assert hinted and all("/RunInference" in name for name in hinted)
    _, hinted = _hinted({"toxicity": {"cascade_model": str(tiny)}}, tmp_path)
    assert hinted == []


@pytest.mark.parametrize("bad", ["nvidia-tesla-t4", "type:", "type:t4;count:0", "type:t4;count:x",
                                 "type:t4;install-drivers", "type:t4;type:a100"])
def test_bad_accelerator_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="toxicity.accelerator"):
        config_from_dict({"toxicity": {"accelerator": bad}})
    config_from_dict({"toxicity": {"accelerator": "type:nvidia-l4;count:2;install-nvidia-driver;use_nvidia_mps"}})
