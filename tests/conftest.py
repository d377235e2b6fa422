"""Shared fixtures: the shipped crawl sample and a local Beam runner that never tries Prism."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CRAWL = REPO / "tests" / "fixtures" / "crawl"
SAMPLE_GLOBS = [
    str(CRAWL / "*" / "*.warc.gz"),
    str(CRAWL / "*" / "*.warc.wet.gz"),
    str(CRAWL / "*" / "*.jsonl.gz"),
]
DEMO_CONFIG = REPO / "deploy" / "configs" / "demo.yaml"
SAMPLE_INPUTS = [arg for pattern in SAMPLE_GLOBS for arg in ("--input", pattern)]  # `toxsieve run` arguments


def run_on_sample(out: Path, config: Path, run_id: str | None = None, *inputs: str) -> int:
    """`toxsieve run` (in this process, quiet) over the shipped sample and ``inputs``; the exit status."""
    from toxsieve.pipelines.cli.main import main

    extra = [arg for path in inputs for arg in ("--input", path)]
    return main(["run", "--output", str(out), "--quiet", "--run-id", run_id or out.name, "--config", str(config),
                 *extra, *SAMPLE_INPUTS])


@pytest.fixture
def crawl_dir() -> Path:
    return CRAWL


def local_runner():  # type: ignore[no-untyped-def]
    """Beam's local engine without the DirectRunner's Prism attempt (which downloads a binary)."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def warc_record(uri: str, status: int, content_type: str, body: bytes, rid: str) -> bytes:
    """One WARC/1.0 response record (HTTP headers + body)."""
    http = (f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    block = http + body
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{rid}>\r\n"
            f"WARC-Target-URI: {uri}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n").encode()
    return head + block + b"\r\n\r\n"


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "is", "you", "are", "an", "idiot",
              "stupid", "nice", "day", "good", "morning", "people", "this", "that", "hate", "love", "and", "or",
              "garden", "flowers", "rain", "sun", ".", ",", "!", "?"]


def build_tiny_model(root: Path, labels: tuple[str, ...] = ("non_toxic", "toxic"), multi_label: bool = False,
                     max_positions: int = 32, seed: int = 0) -> Path:
    """A randomly initialised, tiny BERT sequence classifier saved as a standard HF directory
    (safetensors + tokenizer), built from a config: no download."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    root.mkdir(parents=True, exist_ok=True)
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(TINY_VOCAB) + "\n")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(TINY_VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=max_positions, num_labels=len(labels),
        initializer_range=0.5,  # large random weights: different texts get clearly different scores
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(root, safe_serialization=True)
    BertTokenizerFast(vocab=str(vocab), do_lower_case=True).save_pretrained(root)
    return root


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    """`gpu` tests run only where torch sees a CUDA device (the device machine), else they skip."""
    try:
        import torch

        has_gpu = bool(torch.cuda.is_available())
    except ImportError:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
