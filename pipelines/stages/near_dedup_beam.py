"""DropNearDuplicates: the Beam shell around ``near_dedup`` (MinHash-LSH across the whole run).

Documents travel with their text, so they are shuffled once, at the end, to receive their
decision; everything before that moves only 16-byte node ids, band keys and sketches::

  docs ─ BatchElements ─ Sketch ──► (node, sketch, band keys)
                                       │
        band keys ─ GroupByBand ─ LinkBuckets ──► candidate edges (center, member)
                                       │
        sketches + edges ─ ShareSketches ─ Verify ──► verified edges, candidate sketches
                                       │
        verified edges ─ ConnectedComponents (large-star / small-star × max_rounds) ─ Labels
                                       │
        labels + sketches ─ GroupByComponent ─ ChooseKeeper ──► (node, decision)
                                       │
  docs ─ KeyByNode ──────────── JoinDecisions ──► annotated documents ─ SplitRemovals ─► (kept, removed)

No step holds more than one bucket, one node's neighbourhood or one component in memory, and
no single process sees all signatures. Groupings merge tagged values with a ``Flatten`` +
``GroupByKey`` rather than multi-output ParDos (see ``transforms``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from toxsieve.pipelines.config import NearDedupConfig
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.runtime.shuffle_meter import MeteredGroupByKey, Meters
from toxsieve.pipelines.runtime.transforms import SplitRemovals, count_removal, inner_tally
from toxsieve.pipelines.stages.minhash import MinHasher
from toxsieve.pipelines.stages.near_dedup import (
    ClusterDecision,
    Edge,
    Node,
    Sketch,
    apply_decision,
    large_star,
    link_bucket,
    make_hasher,
    node_id,
    resolve_cluster,
    resolved_bands,
    sketch_batch,
    small_star,
    verify_candidates,
)
from toxsieve.schemas import Stage

Split = tuple[beam.PCollection, beam.PCollection]
_NS = Stage.NEAR_DEDUP.value


class NearDedupCounter(StrEnum):
    """Beam counters of the stage (namespace ``near_dedup``), besides the removal reason."""

    SKETCHED = "sketched"  # documents with at least one shingle
    NO_SHINGLES = "no_shingles"  # documents without a token: never anyone's near-duplicate
    SHARED_BUCKETS = "shared_buckets"  # band buckets with two or more members
    OVERSIZED_BUCKETS = "oversized_buckets"  # buckets above max_bucket_size, split into sub-buckets
    OVERSIZED_BUCKET_MEMBERS = "oversized_bucket_members"
    CANDIDATE_EDGES = "candidate_edges"  # (center, member) links from buckets, before dedup of bands
    VERIFIED_EDGES = "verified_edges"
    REJECTED_EDGES = "rejected_edges"  # candidates below the threshold
    CLUSTERS = "clusters"  # components of two or more documents
    CC_UNCONVERGED_NODES = "cc_unconverged_nodes"  # > 0: raise max_rounds (clusters were split)


def _count(counter: NearDedupCounter, n: int = 1) -> None:
    if n:
        Metrics.counter(_NS, counter.value).inc(n)


# --- sketches and candidates -----------------------------------------------------


class _SketchFn(beam.DoFn):
    def __init__(self, cfg: NearDedupConfig) -> None:
        self.cfg = cfg
        self._hasher: MinHasher | None = None

    def setup(self) -> None:
        self._hasher = make_hasher(self.cfg)  # permutations drawn once per worker
        resolved_bands(self.cfg)

    def process(self, batch: Sequence[Document]) -> Iterator[tuple[Node, Sketch, list[bytes]]]:
        assert self._hasher is not None
        n = 0
        for item in sketch_batch(batch, self.cfg, self._hasher):
            n += 1
            yield item
        _count(NearDedupCounter.SKETCHED, n)
        _count(NearDedupCounter.NO_SHINGLES, len(batch) - n)


def _link_bucket(item: tuple[bytes, Iterable[Node]], max_bucket_size: int) -> Iterator[Edge]:
    _, members = item
    size = sum(1 for _ in members)
    if size < 2:
        return
    _count(NearDedupCounter.SHARED_BUCKETS)
    if size > max_bucket_size:
        _count(NearDedupCounter.OVERSIZED_BUCKETS)
        _count(NearDedupCounter.OVERSIZED_BUCKET_MEMBERS, size)
    n = 0
    for edge in link_bucket(members, max_bucket_size):
        n += 1
        yield edge
    _count(NearDedupCounter.CANDIDATE_EDGES, n)


def _take_tagged(values: Iterable[tuple[str, Any]], tag: str) -> tuple[Any | None, list[Any]]:
    """From a grouped stream of (tag, value): the value tagged ``tag`` (None if absent) and all the others."""
    single: Any | None = None
    others: list[Any] = []
    for value_tag, value in values:
        if value_tag == tag:
            single = value
        else:
            others.append(value)
    return single, others


def _share_sketch(item: tuple[Node, Iterable[tuple[str, Any]]]) -> Iterator[tuple[Node, tuple[str, Any]]]:
    """At a node: send its sketch to the members it is the center of, and to itself if it is a
    candidate at all (for verification and for the keeper choice)."""
    node, values = item
    sketch: Sketch | None = None
    members: set[Node] = set()
    candidate = False
    for tag, value in values:
        if tag == "sketch":
            sketch = value
            continue
        candidate = True
        if tag == "member":
            members.add(value)
    if sketch is None or not candidate:
        return
    yield node, ("self", sketch)
    for m in members:
        yield m, ("center", (node, sketch))


def _verify(item: tuple[Node, Iterable[tuple[str, Any]]], cfg: NearDedupConfig) -> Iterator[tuple[str, Any]]:
    """At a candidate node: ("edge", verified edge) per passing center, and ("sketch", (node, sketch))."""
    node, values = item
    own, centers = _take_tagged(values, "self")
    if own is None:
        return
    yield "sketch", (node, own)
    n_ok = 0
    for edge, _sim in verify_candidates(node, own, centers, cfg):
        n_ok += 1
        yield "edge", edge
    _count(NearDedupCounter.VERIFIED_EDGES, n_ok)
    _count(NearDedupCounter.REJECTED_EDGES, len({c for c, _ in centers if c != node}) - n_ok)


# --- connected components ------------------------------------------------------


def _both_ways(edge: Edge) -> list[Edge]:
    u, v = edge
    return [(u, v), (v, u)]


class _StarStep(beam.PTransform):
    """One large-star or small-star operation: group the edge list by node, relink."""

    def __init__(self, op: Any, meters: Meters | None = None) -> None:
        super().__init__()
        self.op = op
        self.meters = meters

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        op = self.op
        return (
            edges
            | "BothWays" >> beam.FlatMap(_both_ways)
            | "GroupByNode" >> MeteredGroupByKey(self.meters, "ConnectedComponents")
            | "Relink" >> beam.FlatMap(lambda kv: op(kv[0], kv[1]))
        )


def _label_messages(item: tuple[Node, Iterable[Node]]) -> Iterator[tuple[Node, tuple[str, Node]]]:
    """Own label (smallest of the closed neighbourhood) to the node, and to each neighbour."""
    node, nbrs = item
    nbr_set = set(nbrs)
    label = min(nbr_set | {node})
    yield node, ("own", label)
    for v in nbr_set:
        yield v, ("nbr", label)


class ConnectedComponents(beam.PTransform):
    """(node, label) for every node of an undirected edge list: label = smallest node of its component.

    ``max_rounds`` rounds of large-star then small-star, unrolled in the graph (rounds after
    convergence change nothing and cost one small shuffle each). A last step gives each node the
    smallest label in its closed neighbourhood and checks that it agrees with every neighbour's:
    that holds on every edge exactly when every node carries its component's minimum. Nodes where
    it does not are counted (``cc_unconverged_nodes``); their component then ends up split into a
    few clusters, each keeping one document: missed removals, never wrong ones.
    Output: (node, ("own" | "nbr", label)) messages, resolved by ``label_of``.
    """

    def __init__(self, max_rounds: int, meters: Meters | None = None) -> None:
        super().__init__()
        self.max_rounds = max_rounds
        self.meters = meters

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        m = self.meters
        for r in range(self.max_rounds):
            edges = edges | f"LargeStar{r}" >> _StarStep(large_star, m) | f"SmallStar{r}" >> _StarStep(small_star, m)
        return (
            edges
            | "BothWays" >> beam.FlatMap(_both_ways)
            | "GroupByNode" >> MeteredGroupByKey(m, "ConnectedComponents")
            | "LabelMessages" >> beam.FlatMap(_label_messages)
        )


def _component_member(item: tuple[Node, Iterable[tuple[str, Any]]]) -> Iterator[tuple[Node, tuple[Node, Sketch]]]:
    """(component label, (node, sketch)) for a node that is in a component."""
    node, values = item
    sketch: Sketch | None = None
    own: Node | None = None
    nbr_labels: set[Node] = set()
    for tag, value in values:
        if tag == "sketch":
            sketch = value
        elif tag == "own":
            own = value
        else:
            nbr_labels.add(value)
    if own is None or sketch is None:
        return
    if nbr_labels - {own}:
        _count(NearDedupCounter.CC_UNCONVERGED_NODES)
    yield min(nbr_labels | {own}), (node, sketch)


def _choose_keeper(item: tuple[Node, Iterable[tuple[Node, Sketch]]]) -> Iterator[tuple[Node, ClusterDecision]]:
    _count(NearDedupCounter.CLUSTERS)
    yield from resolve_cluster(item[1])


def _join_decision(item: tuple[Node, Iterable[tuple[str, Any]]], cfg: NearDedupConfig) -> Iterator[Document]:
    decision, docs = _take_tagged(item[1], "decision")
    for doc in docs:
        out = apply_decision(doc, decision, cfg)
        count_removal(out)
        yield out


def _tag(tag: str) -> Any:
    return lambda kv: (kv[0], (tag, kv[1]))


def _only(tag: str) -> Any:
    return lambda tv: [tv[1]] if tv[0] == tag else []


class DropNearDuplicates(beam.PTransform):
    """MinHash-LSH near-duplicates across the whole run: one keeper per cluster, the rest removed.

    Returns ``(kept, removed)``. Every document with a shingle gets ``near_dup_cluster`` (the
    keeper's doc_id), ``near_dup_cluster_size`` and ``near_dup_similarity`` (estimated Jaccard
    with the keeper; 1.0 for the keeper). Removed documents carry ``Removal(near_dedup,
    near_duplicate, score=that similarity, threshold, duplicate_of=keeper)``.
    """

    def __init__(self, cfg: NearDedupConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def expand(self, docs: beam.PCollection) -> Split:
        cfg = self.cfg
        batches = docs | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=cfg.batch_size)
        self.tallies = [inner_tally(batches, type(self).__name__, "batched", "CountBatched")]
        sketched = batches | "Sketch" >> beam.ParDo(_SketchFn(cfg))
        decisions = sketched | "Graph" >> NearDuplicateGraph(cfg)
        return (
            (
                docs | "KeyByNode" >> beam.Map(lambda d: (node_id(d), ("doc", d))),
                decisions | "TagDecision" >> beam.Map(_tag("decision")),
            )
            | "DecisionMessages" >> beam.Flatten()
            | "GroupByNode" >> beam.GroupByKey()
            | "JoinDecisions" >> beam.FlatMap(_join_decision, cfg)
            | SplitRemovals()
        )


class NearDuplicateGraph(beam.PTransform):
    """(node, sketch, band keys) of every sketched document -> (node, ClusterDecision) for every
    member of a cluster of two or more. Only node ids, band keys and sketches travel; no text.
    With ``meters`` (a list), the bytes entering each shuffle are counted (``shuffle_meter``)."""

    def __init__(self, cfg: NearDedupConfig, meters: Meters | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.meters = meters

    def expand(self, sketched: beam.PCollection) -> beam.PCollection:
        cfg, m = self.cfg, self.meters
        candidates = (
            sketched
            | "BandKeys" >> beam.FlatMap(lambda s: [(key, s[0]) for key in s[2]])
            | "GroupByBand" >> MeteredGroupByKey(m)
            | "LinkBuckets" >> beam.FlatMap(_link_bucket, cfg.max_bucket_size)
        )
        sketches = sketched | "SketchByNode" >> beam.Map(lambda s: (s[0], s[1]))
        return (candidates, sketches) | "Clusters" >> ClusterCandidates(cfg, m)


class ClusterCandidates(beam.PTransform):
    """(candidate edges, (node, sketch)) -> (node, ClusterDecision): verify each candidate edge on the
    sketches, connected components of the verified edges, one keeper per component. ``sketches`` may
    hold every node or only the candidates (nodes without an edge are ignored)."""

    def __init__(self, cfg: NearDedupConfig, meters: Meters | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.meters = meters

    def expand(self, pcolls: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
        cfg, m = self.cfg, self.meters
        candidates, sketches = pcolls
        shared = (
            (
                sketches | "TagSketch" >> beam.Map(lambda s: (s[0], ("sketch", s[1]))),
                candidates | "ByCenter" >> beam.Map(lambda e: (e[0], ("member", e[1]))),
                candidates | "ByMember" >> beam.Map(lambda e: (e[1], ("center", e[0]))),
            )
            | "CandidateMessages" >> beam.Flatten()
            | "GroupCandidates" >> MeteredGroupByKey(m)
            | "ShareSketches" >> beam.FlatMap(_share_sketch)
        )
        verified = shared | "GroupSketches" >> MeteredGroupByKey(m) | "Verify" >> beam.FlatMap(_verify, cfg)
        edges = verified | "VerifiedEdges" >> beam.FlatMap(_only("edge"))
        candidate_sketches = verified | "CandidateSketches" >> beam.FlatMap(_only("sketch"))
        labels = edges | "ConnectedComponents" >> ConnectedComponents(cfg.max_rounds, m)
        return (
            (labels, candidate_sketches | "TagCandidateSketch" >> beam.Map(_tag("sketch")))
            | "LabelMessages" >> beam.Flatten()
            | "GroupLabels" >> MeteredGroupByKey(m)
            | "ComponentMembers" >> beam.FlatMap(_component_member)
            | "GroupByComponent" >> MeteredGroupByKey(m)
            | "ChooseKeeper" >> beam.FlatMap(_choose_keeper)
        )
