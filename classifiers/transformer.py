"""Hugging Face sequence classifiers (any local ``AutoModelForSequenceClassification`` directory)
as toxicity models, in process and behind Beam's ``RunInference``.

Safety: weights load only from safetensors, ``trust_remote_code`` is never set, and a checkpoint
that declares custom code (``auto_map``) is refused. Nothing is downloaded: the path must be local.
torch and transformers come from the ``[gpu]`` extra and are imported lazily.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toxsieve.classifiers.base import ModelIdentity, sha256_path

DEFAULT_TOKEN_BUDGET = 16_384  # padded tokens per forward pass


class UnsafeModelError(ValueError):
    """The checkpoint would need pickle weights or remote code."""


def check_model_dir(path: str | Path) -> Path:
    """A local, safe model directory, or a clear error saying what is wrong."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"model directory not found: {root}")
    config_path = root / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{root} has no config.json: not a Hugging Face model directory")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("auto_map"):
        raise UnsafeModelError(f"{root} declares custom model code (auto_map); toxsieve never runs remote code")
    if not any(root.glob("*.safetensors")):
        pickled = [p.name for p in root.glob("*.bin")] + [p.name for p in root.glob("*.pt")]
        hint = f" (found {', '.join(pickled)}: convert them to safetensors)" if pickled else ""
        raise UnsafeModelError(f"{root} has no .safetensors weights{hint}; pickle weights are not loaded")
    return root


def labels_from_config(path: str | Path) -> tuple[tuple[str, ...], bool]:
    """(labels in output order, multi-label?) from ``config.json``'s id2label and problem_type."""
    config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label") or {}
    n = int(config.get("num_labels") or len(id2label) or 2)
    labels = tuple(str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(n))
    return labels, config.get("problem_type") == "multi_label_classification"


def default_toxic_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """Labels that count as toxic when the config does not say: everything but a 'not toxic' class."""
    clean = {"non_toxic", "non-toxic", "nontoxic", "neutral", "not_toxic", "clean", "normal", "label_0", "ok"}
    toxic = tuple(label for label in labels if label.lower() not in clean)
    return toxic if len(toxic) < len(labels) else tuple(labels[1:]) or tuple(labels)


def model_max_length(path: str | Path, requested: int | None = None) -> int:
    """The token window: the requested one, capped by the model's position embeddings."""
    config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    model_max = int(config.get("max_position_embeddings", 512) or 512)
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert", "longformer"):
        model_max -= 2  # their position ids start after the padding index
    tok_config = Path(path) / "tokenizer_config.json"
    if tok_config.is_file():
        declared = json.loads(tok_config.read_text(encoding="utf-8")).get("model_max_length")
        if isinstance(declared, int) and 0 < declared < model_max:
            model_max = declared
    return min(requested or model_max, model_max)


@dataclass
class LoadedModel:
    model: Any
    device: str
    labels: tuple[str, ...]
    multi_label: bool
    pad_id: int
    max_length: int
    autocast_dtype: Any


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device} was asked for but no CUDA GPU is visible; refusing to run on CPU")
    return device


def _quiet_transformers() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: paths are local
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_model(path: str | Path, device: str = "auto", max_length: int | None = None) -> LoadedModel:
    import torch

    _quiet_transformers()
    from transformers import AutoConfig, AutoModelForSequenceClassification

    root = check_model_dir(path)
    dev = resolve_device(device)
    config = AutoConfig.from_pretrained(root, trust_remote_code=False, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        root, config=config, trust_remote_code=False, use_safetensors=True, local_files_only=True)
    model.eval().to(dev)
    labels, multi = labels_from_config(root)
    limit = model_max_length(root, max_length)
    dtype = None
    if dev.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    pad = getattr(config, "pad_token_id", None)
    return LoadedModel(model, dev, labels, multi, int(pad if pad is not None else 0), limit, dtype)


def load_tokenizer(path: str | Path) -> Any:
    _quiet_transformers()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(check_model_dir(path), trust_remote_code=False, local_files_only=True)


def tokenize_chunks(tokenizer: Any, text: str, max_length: int) -> list[list[int]]:
    """Token ids of a document split into windows that fit the model, special tokens added.

    A document longer than the model's window becomes several chunks (scored separately and
    aggregated by max); an empty text becomes one chunk of special tokens only.
    """
    encoded = tokenizer(text, add_special_tokens=True, truncation=True, max_length=max_length,
                        return_overflowing_tokens=True, stride=0, verbose=False)
    windows = encoded["input_ids"]
    if windows and isinstance(windows[0], int):  # tokenizers that return a single window
        windows = [windows]
    return [list(w) for w in windows] or [[]]


def length_batches(lengths: Sequence[int], token_budget: int, max_batch: int = 1024) -> list[list[int]]:
    """Indices grouped so that (longest in group × group size) ≤ token_budget, after sorting by length.

    Sorting first means each batch is padded only to lengths close to its own: the padding waste
    of fixed-order batching mostly disappears.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = max(lengths[i], lengths[current[-1]] if current else 0)
        if current and (longest * (len(current) + 1) > token_budget or len(current) >= max_batch):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def infer_token_batches(loaded: LoadedModel, chunks: Sequence[Sequence[int]],
                        token_budget: int = DEFAULT_TOKEN_BUDGET, bucket: bool = True,
                        max_rows: int = 1024) -> np.ndarray:
    """Probabilities (n, n_labels) for token-id chunks: length-bucketed, dynamically padded batches
    under ``torch.inference_mode`` (and bf16/fp16 autocast on CUDA)."""
    import torch

    n = len(chunks)
    out = np.zeros((n, len(loaded.labels)), dtype=np.float32)
    if n == 0:
        return out
    lengths = [min(len(c), loaded.max_length) for c in chunks]
    if bucket:
        groups = length_batches(lengths, token_budget, max_rows)
    else:
        per_batch = max(1, token_budget // max(1, loaded.max_length))
        groups = [list(range(i, min(n, i + per_batch))) for i in range(0, n, per_batch)]
    with torch.inference_mode():
        for group in groups:
            width = max(1, max(lengths[i] for i in group))
            ids = torch.full((len(group), width), loaded.pad_id, dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for row, i in enumerate(group):
                piece = list(chunks[i])[: loaded.max_length]
                ids[row, : len(piece)] = torch.tensor(piece, dtype=torch.long)
                mask[row, : len(piece)] = 1
            ids, mask = ids.to(loaded.device), mask.to(loaded.device)
            if loaded.autocast_dtype is not None:
                with torch.autocast("cuda", dtype=loaded.autocast_dtype):
                    logits = loaded.model(input_ids=ids, attention_mask=mask).logits
            else:
                logits = loaded.model(input_ids=ids, attention_mask=mask).logits
            logits = logits.float()
            probs = torch.sigmoid(logits) if loaded.multi_label else torch.softmax(logits, dim=-1)
            out[group] = probs.cpu().numpy()
    return out


class TransformerToxicityClassifier:
    """In-process ``TextClassifier`` over a local checkpoint (for `classify`, `evaluate`, the cascade)."""

    def __init__(self, path: str | Path, device: str = "auto", toxic_labels: Sequence[str] | None = None,
                 max_length: int | None = None, token_budget: int = DEFAULT_TOKEN_BUDGET) -> None:
        self.path = Path(path)
        self._loaded = load_model(path, device, max_length)
        self._tokenizer = load_tokenizer(path)
        self.labels = self._loaded.labels
        self.toxic_labels = tuple(toxic_labels) if toxic_labels else default_toxic_labels(self.labels)
        unknown = set(self.toxic_labels) - set(self.labels)
        if unknown:
            raise ValueError(f"toxic labels {sorted(unknown)} are not labels of {self.path} ({self.labels})")
        self.token_budget = token_budget

    @property
    def max_length(self) -> int:
        return self._loaded.max_length

    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.path.name, str(self.path), sha256_path(self.path))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """One probability row per text; a text longer than the window is truncated here (use
        ``score_chunked`` or ``score_documents`` with chunks for documents)."""
        chunks = [tokenize_chunks(self._tokenizer, t, self.max_length)[0] for t in texts]
        return infer_token_batches(self._loaded, chunks, self.token_budget)

    def chunk(self, text: str) -> list[list[int]]:
        return tokenize_chunks(self._tokenizer, text, self.max_length)

    def score_chunked(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Per-document max over token-window chunks: (n, n_labels) probabilities and chunks per doc."""
        per_doc = [self.chunk(t) for t in texts]
        flat = [c for chunks in per_doc for c in chunks]
        probs = infer_token_batches(self._loaded, flat, self.token_budget)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        start = 0
        for i, chunks in enumerate(per_doc):
            out[i] = probs[start:start + len(chunks)].max(axis=0)
            start += len(chunks)
        return out, [len(c) for c in per_doc]


def iter_model_files(path: str | Path) -> Iterable[Path]:
    return sorted(p for p in Path(path).iterdir() if p.is_file())


def environment_summary() -> dict[str, Any]:
    import torch

    return {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
            "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "threads": torch.get_num_threads(), "omp": os.environ.get("OMP_NUM_THREADS")}
