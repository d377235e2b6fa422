"""ScoreToxicity: the Beam shell around the toxicity models.

- fastText (or any in-process ``TextClassifier``): batched in a DoFn, one model per worker process.
- A Hugging Face checkpoint: documents are tokenised into model-sized chunks on CPU workers, scored
  by ``RunInference(KeyedModelHandler(ToxicityModelHandler))`` in token-budget batches (sorted by
  length, dynamically padded, inference_mode, autocast on CUDA), then aggregated per document by max
  and joined back to the document by key.
- Cascade: the fast model scores everything; only documents whose fast score falls in
  [cascade_low, cascade_high] go to the transformer, which decides them at ``cascade_threshold``;
  outside the band the fast model decides at ``threshold`` (validated to lie inside the band).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.utils import shared

from toxsieve.classifiers.base import sha256_path
from toxsieve.pipelines.config import DEFAULT_ROUTE, Route, ToxicityConfig, route_of
from toxsieve.pipelines.document import DeadLetter, Document, stage_failure
from toxsieve.pipelines.runtime.fast_scoring import (  # noqa: F401 - re-exported: the fast path lives there
    FastScored,
    _count,
    _decide_fast,
    _FastScoreFn,
    _Holder,
    _mark_unsupported,
    doc_key,
    is_hf_model_dir,
)
from toxsieve.pipelines.runtime.transforms import SplitRemovals, inner_tally, log_first_failure
from toxsieve.pipelines.stages.toxicity import apply_toxicity, in_cascade_band
from toxsieve.schemas import Stage

# --- Hugging Face models through RunInference ------------------------------------------


class ChunkFailure:
    """What a chunk that could not be tokenised or scored carries instead of probabilities."""

    def __init__(self, error: str) -> None:
        self.error = error

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return ChunkFailure, (self.error,)


def _token_count(element: Any) -> int:
    """Weight of a (key, token ids) element for token-budget batching."""
    ids = element[1] if isinstance(element, tuple) else element
    return max(1, len(ids))


class ToxicityModelHandler(ModelHandler[Sequence[int], PredictionResult, Any]):
    """Token-id chunks in, label probabilities out, for any local AutoModelForSequenceClassification."""

    def __init__(self, path: str, device: str = "auto", max_length: int | None = None,
                 token_budget: int = 16_384, max_batch_size: int = 256, large_model: bool = False,
                 max_chunk_tokens: int = 512) -> None:
        # Beam 2.77 pitfall: ModelHandler accepts max_batch_weight but BatchElements rejects it. With an
        # element_size_fn, BatchElements' batch *size* is the summed weight, so the token budget goes
        # into max_batch_size; run_inference then splits by padded length and max_batch_size rows.
        # Second pitfall: BatchElements emits an *empty* batch when one element outweighs its current
        # target (which starts at min_batch_size), so the minimum must cover the longest chunk.
        # The budget is also the floor: BatchElements otherwise starts tiny and grows slowly, which
        # on a GPU means many under-filled forward passes.
        budget = max(token_budget, max_chunk_tokens, 1)
        super().__init__(min_batch_size=budget, max_batch_size=budget, element_size_fn=_token_count,
                         large_model=large_model)
        self.max_rows = max_batch_size
        self.path = path
        self.device = device
        self.max_length = max_length
        self.token_budget = token_budget

    def load_model(self) -> Any:
        from toxsieve.classifiers.transformer import load_model

        return load_model(self.path, self.device, self.max_length)

    def run_inference(self, batch: Sequence[Sequence[int]], model: Any,
                      inference_args: dict[str, Any] | None = None) -> Iterable[PredictionResult]:
        """Probabilities per chunk. When the model raises on a batch, each chunk alone; a chunk it raises on
        alone gets a ``ChunkFailure`` (its document becomes a dead letter), not a failed pipeline."""
        from toxsieve.classifiers.transformer import infer_token_batches

        try:
            probs = infer_token_batches(model, batch, self.token_budget, max_rows=self.max_rows)
        except Exception as exc:  # noqa: BLE001 - one bad chunk costs its document, not the run
            if len(batch) > 1:
                return [result for ids in batch for result in self.run_inference([ids], model, inference_args)]
            log_first_failure("checkpoint", "the toxicity checkpoint failed on a chunk; its document is dead-lettered")
            Metrics.counter(Stage.TOXICITY.value, "failed").inc()
            return [PredictionResult(len(batch[0]), ChunkFailure(f"{type(exc).__name__}: {exc}"), self.path)]
        return [PredictionResult(len(ids), row, self.path) for ids, row in zip(batch, probs, strict=True)]

    def get_num_bytes(self, batch: Sequence[Sequence[int]]) -> int:
        return sum(len(ids) for ids in batch) * 8

    def get_metrics_namespace(self) -> str:
        return "toxsieve_transformer"


class _TokenizeFn(beam.DoFn):
    """Documents → (key/chunk index, token ids): tokenisation on CPU workers, off the GPU's path."""

    def __init__(self, path: str, max_length: int | None) -> None:
        self.path = path
        self.max_length = max_length
        self._shared = shared.Shared()
        self._tok: Any = None

    def setup(self) -> None:
        from toxsieve.classifiers.transformer import load_tokenizer, model_max_length

        self._tok = self._shared.acquire(lambda: _Holder(load_tokenizer(self.path), "", ""))
        self._limit = model_max_length(self.path, self.max_length)

    def process(self, keyed: tuple[str, Document]) -> Iterator[tuple[tuple[str, int], list[int]] | tuple[str, ChunkFailure]]:
        """((key, chunk index), token ids) per chunk, or (key, ChunkFailure) when tokenising raises."""
        from toxsieve.classifiers.transformer import tokenize_chunks

        key, doc = keyed
        try:
            chunks = list(tokenize_chunks(self._tok.classifier, doc.text or "", self._limit))
        except Exception as exc:  # noqa: BLE001 - one bad document costs that document
            log_first_failure("tokenizer", "tokenising a document for the toxicity checkpoint failed; it is dead-lettered")
            Metrics.counter(Stage.TOXICITY.value, "failed").inc()
            yield key, ChunkFailure(f"{type(exc).__name__}: {exc}")
            return
        for i, ids in enumerate(chunks):
            yield (key, i), ids


def _is_failure(element: tuple[Any, Any]) -> bool:
    return isinstance(element[1], ChunkFailure)


class _MaxOverChunks(beam.CombineFn):
    """Element-wise max of chunk probabilities, the chunk count, and the first error of a failed chunk."""

    def create_accumulator(self) -> tuple[np.ndarray | None, int, str | None]:
        return None, 0, None

    def add_input(self, acc: tuple[np.ndarray | None, int, str | None],
                  row: np.ndarray | ChunkFailure) -> tuple[np.ndarray | None, int, str | None]:
        best, n, error = acc
        if isinstance(row, ChunkFailure):
            return best, n + 1, error or row.error
        return (row.copy() if best is None else np.maximum(best, row)), n + 1, error

    def merge_accumulators(self, accs: Iterable[tuple[np.ndarray | None, int, str | None]]
                           ) -> tuple[np.ndarray | None, int, str | None]:
        best: np.ndarray | None = None
        total = 0
        error: str | None = None
        for row, n, err in accs:
            total += n
            error = error or err
            if row is not None:
                best = row.copy() if best is None else np.maximum(best, row)
        return best, total, error

    def extract_output(self, acc: tuple[np.ndarray | None, int, str | None]) -> tuple[np.ndarray | None, int, str | None]:
        return acc


def _by_document(kv: tuple[tuple[str, int], PredictionResult]) -> tuple[str, np.ndarray | ChunkFailure]:
    inference = kv[1].inference
    return kv[0][0], inference if isinstance(inference, ChunkFailure) else np.asarray(inference, dtype=np.float32)


class ScoreWithTransformer(beam.PTransform):
    """Documents → (key, (label probabilities per document, n_chunks)) through RunInference."""

    def __init__(self, path: str, cfg: ToxicityConfig) -> None:
        super().__init__()
        self.path = path
        self.cfg = cfg

    def expand(self, keyed_docs: beam.PCollection) -> beam.PCollection:
        from toxsieve.classifiers.transformer import model_max_length

        handler = ToxicityModelHandler(self.path, self.cfg.device, self.cfg.max_length, self.cfg.token_budget,
                                       self.cfg.max_batch_size, self.cfg.share_model_across_processes,
                                       max_chunk_tokens=model_max_length(self.path, self.cfg.max_length))
        tokenized = keyed_docs | "Tokenize" >> beam.ParDo(_TokenizeFn(self.path, self.cfg.max_length))
        # two single-output steps, not a tagged output: Beam's DaskRunner hands every tag to every consumer
        failed = tokenized | "TokenizeFailed" >> beam.Filter(_is_failure)
        scored = (
            tokenized
            | "Chunks" >> beam.Filter(lambda element: not _is_failure(element))
            | "RunInference" >> _with_accelerator(RunInference(KeyedModelHandler(handler)), self.cfg.accelerator)
            | "ByDocument" >> beam.Map(_by_document)
        )
        return (scored, failed) | "WithFailures" >> beam.Flatten() | "MaxOverChunks" >> beam.CombinePerKey(
            _MaxOverChunks())


def _with_accelerator(transform: beam.PTransform, accelerator: str | None) -> beam.PTransform:
    """The transformer's step alone asks for the accelerator (right-fitting: the rest stays on CPU workers)."""
    return transform.with_resource_hints(accelerator=accelerator) if accelerator else transform


class _JoinTransformerScores(beam.DoFn):
    def __init__(self, cfg: ToxicityConfig, labels: tuple[str, ...], toxic: tuple[str, ...], name: str,
                 sha256: str) -> None:
        self.cfg = cfg
        self.labels = labels
        self.toxic = toxic
        self.name = name
        self.sha256 = sha256

    def process(self, item: tuple[str, dict[str, list[Any]]]) -> Iterator[Document | DeadLetter]:
        _, joined = item
        scores = joined["scores"]
        for entry in joined["docs"]:
            doc, fast_score = entry
            error = scores[0][2] if scores else "no score came back from RunInference"
            if error is None and scores[0][0] is None:
                error = "the document has no chunk to score"
            if error is not None:  # a chunk the tokenizer or the model raised on: the document only
                yield stage_failure(Stage.TOXICITY.value, doc, RuntimeError(f"checkpoint {self.name}: {error}"))
                continue
            probs, n_chunks, _ = scores[0]
            label_scores = {label: float(p) for label, p in zip(self.labels, probs, strict=True)}
            out = apply_toxicity(doc, label_scores, self.toxic, self.name, self.sha256, n_chunks, self.cfg,
                                 fast_score=fast_score)
            Metrics.counter("toxicity", "scored_by_transformer").inc()
            _count(out)
            yield out


# --- the stage -------------------------------------------------------------------------------


class ScoreWithCheckpoint(beam.PTransform):
    """(document, fast score or None) → documents decided by a Hugging Face checkpoint."""

    def __init__(self, path: str, cfg: ToxicityConfig) -> None:
        super().__init__()
        from toxsieve.classifiers.transformer import check_model_dir, default_toxic_labels, labels_from_config

        check_model_dir(path)
        self.path = path
        self.cfg = cfg
        self.labels, _ = labels_from_config(path)
        self.toxic = tuple(cfg.toxic_labels) or default_toxic_labels(self.labels)
        unknown = set(self.toxic) - set(self.labels)
        if unknown:
            raise ValueError(f"toxicity.toxic_labels {sorted(unknown)} are not labels of {path}: {self.labels}")
        self.name, self.sha256 = Path(path).name, sha256_path(path)

    def expand(self, docs_with_fast: beam.PCollection) -> beam.PCollection:
        keyed = docs_with_fast | "Key" >> beam.Map(lambda item: (doc_key(item[0]), item))
        scores = keyed | "DocsOnly" >> beam.Map(lambda kv: (kv[0], kv[1][0])) | "Score" >> ScoreWithTransformer(
            self.path, self.cfg)
        return (
            {"docs": keyed, "scores": scores}
            | "Join" >> beam.CoGroupByKey()
            | "Decide" >> beam.ParDo(_JoinTransformerScores(self.cfg, self.labels, self.toxic, self.name,
                                                            self.sha256))
        )


class ScoreToxicity(beam.PTransform):
    """Routes each document by its LID language to that language's model (``ToxicityConfig.routes``):
    in one fast-model DoFn when every model is in-process, else one ``ScoreWithModel`` per distinct
    (model, cascade). A language without a model is marked ``toxicity_supported = False`` with no
    score and is never removed for toxicity."""

    def __init__(self, cfg: ToxicityConfig, batch_size: int = 64) -> None:
        super().__init__()
        self.cfg = cfg
        self.batch_size = batch_size

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        cfg = self.cfg
        routes = cfg.routes()
        if all(not is_hf_model_dir(model) and not cascade for model, cascade in routes.values()):
            # In-process models only: one DoFn picks each document's model (no branches to merge:
            # a Flatten of texts would be materialised by Beam's local runner).
            scorer = ScoreWithModel(cfg, self.batch_size, tally_stage=type(self).__name__)
            scored = docs | "ByLanguage" >> scorer
            self.tallies = scorer.tallies  # every document reaches the batching step: batched == in
            return scored
        groups: dict[Route, list[str]] = {}
        for lang, route in routes.items():
            groups.setdefault(route, []).append(lang)
        kept, removed = [], []
        for route, langs in sorted(groups.items(), key=lambda kv: kv[1]):
            name = "+".join(langs)
            selected = docs | f"Select[{name}]" >> beam.FlatMap(_if_route, routes, route)
            one_model = replace(cfg, model=route[0], cascade_model=route[1], models={DEFAULT_ROUTE: route[0]},
                                builtin_models=False, cascade_models={})
            k, r = selected | f"Score[{name}]" >> ScoreWithModel(one_model, self.batch_size)
            kept.append(k)
            removed.append(r)
        unsupported = (docs | "SelectUnsupported" >> beam.FlatMap(_if_route, routes, None)
                       | "MarkUnsupported" >> beam.Map(_mark_unsupported))
        return ((*kept, unsupported) | "MergeKept" >> beam.Flatten(),
                removed | "MergeRemoved" >> beam.Flatten() if removed else docs | "NoRemovals" >> beam.FlatMap(
                    lambda _: []))


def _if_route(doc: Document, routes: dict[str, Route], route: Route | None) -> list[Document]:
    return [doc] if route_of(routes, doc.language) == route else []


class ScoreWithModel(beam.PTransform):
    """Toxicity scores on every document with one model (or cascade); remove at or above the
    threshold in filter mode."""

    def __init__(self, cfg: ToxicityConfig, batch_size: int = 64, tally_stage: str | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.batch_size = batch_size
        # the stage whose input every document here is (stats: "<stage>: batched == in"); None when
        # this is one routed branch of several, which sees only part of the stage's input
        self.tally_stage = tally_stage
        self.tallies: list[beam.PCollection] = []

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        cfg = self.cfg
        if is_hf_model_dir(cfg.model) and not cfg.cascade_model:
            scored = (docs | "NoFastScore" >> beam.Map(lambda d: (d, None))
                      | "Checkpoint" >> ScoreWithCheckpoint(cfg.model, cfg))
            return scored | SplitRemovals()
        batches = docs | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.batch_size)
        if self.tally_stage:
            self.tallies = [inner_tally(batches, self.tally_stage, "batched", "CountBatched")]
        fast = batches | "FastScore" >> beam.ParDo(_FastScoreFn(cfg))
        if not cfg.cascade_model:
            return fast | "Decide" >> beam.Map(_decide_fast, cfg=cfg) | SplitRemovals()
        # Cascade: confident fast scores decide now; the uncertain band goes to the checkpoint.
        sure = fast | "Sure" >> beam.FlatMap(lambda f: [] if in_cascade_band(f.score, cfg) else [f])
        unsure = fast | "Unsure" >> beam.FlatMap(lambda f: [(f.doc, f.score)] if in_cascade_band(f.score, cfg)
                                                 else [])
        decided = (
            sure | "DecideFast" >> beam.Map(_decide_fast, cfg=cfg),
            unsure | "Cascade" >> ScoreWithCheckpoint(cfg.cascade_model, cfg.cascade_decision()),
        ) | "Merge" >> beam.Flatten()
        return decided | SplitRemovals()
