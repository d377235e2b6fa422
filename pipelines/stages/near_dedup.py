"""DropNearDuplicates' core: sketches, bucket linking, verification, connected components, keepers.

Pure functions (no Beam) that the Beam shell in ``near_dedup_beam.py`` wires together, plus
``find_near_duplicates``, the same algorithm in memory (union-find instead of distributed
connected components), which tests and the bench use as the reference.

The algorithm, for documents with at least one shingle:

1. **Sketch** each document: signature (``minhash.MinHasher``) and one bucket key per LSH band.
   Documents are identified by a 16-byte ``node_id`` (xxh3-128 of doc_id, source path and
   offset), so two documents that share a doc_id never merge.
2. **Link buckets.** Every member of a band bucket is linked to the bucket's smallest node: a
   star, ``n - 1`` candidate edges instead of ``n (n - 1) / 2`` pairs. A bucket with more than
   ``max_bucket_size`` members (a template band shared by thousands of pages) is split into
   ``ceil(n / max_bucket_size)`` sub-buckets by node hash; each sub-bucket is a star around its
   smallest node and those are linked to the overall smallest. Work stays linear and no
   verification group exceeds about ``max_bucket_size`` candidates (times the number of bands).
3. **Verify** each candidate edge: estimated Jaccard of the two signatures (or, with
   ``verify="exact"``, exact Jaccard of the two shingle hash sets) ``>= threshold``.
4. **Connected components** of the verified edges (in Beam: large-star / small-star rounds).
5. **Keeper** of each component: the smallest ``keeper_rank``; every other member is removed as
   ``duplicate_of`` the keeper, with ``score`` = estimated Jaccard between its signature and the
   keeper's (not the similarity of the edge that linked it: through a chain, the similarity with
   the keeper can be below the threshold, and the audit trail should show that).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

import numpy as np
import xxhash

from toxsieve.pipelines.config import NearDedupConfig
from toxsieve.pipelines.document import Document, Removal
from toxsieve.pipelines.stages.minhash import (
    MinHasher,
    Rank,
    band_keys,
    estimated_jaccard,
    exact_jaccard,
    has_shingles,
    keeper_rank,
    lsh_params,
    pack_signature,
    shingle_hashes,
    unpack_signature,
)
from toxsieve.schemas import Reason, Stage

Node = bytes
Edge = tuple[Node, Node]
# What travels with a node through the shuffles: plain tuples, which Beam encodes without pickling.
#   (doc_id, keeper rank, signature bytes (uint32 LE), shingle set bytes (uint32 LE) or None)
Sketch = tuple[str, Rank, bytes, bytes | None]
# (keeper doc_id, cluster size, estimated Jaccard with the keeper, is the keeper)
ClusterDecision = tuple[str, int, float, bool]


def node_id(doc: Document) -> Node:
    """16-byte id of a document for the near-dedup graph (collisions: ~2^-128 per pair)."""
    key = f"{doc.doc_id}\x00{doc.source_path}\x00{doc.source_offset}"
    return xxhash.xxh3_128_digest(key.encode("utf-8", "surrogatepass"))


def resolved_bands(cfg: NearDedupConfig) -> tuple[int, int]:
    """(bands, rows): the configured override, else datasketch's optimum for the threshold."""
    if cfg.bands is not None and cfg.rows is not None:
        return cfg.bands, cfg.rows
    return lsh_params(cfg.threshold, cfg.num_perm)


def make_hasher(cfg: NearDedupConfig) -> MinHasher:
    return MinHasher(cfg.num_perm, cfg.seed, cfg.scheme)


def sketch_batch(docs: Sequence[Document], cfg: NearDedupConfig,
                 hasher: MinHasher) -> Iterator[tuple[Node, Sketch, list[bytes]]]:
    """(node, sketch, band keys) for every document of a batch that has at least one shingle.

    A band key is 2 bytes of band index + 8 bytes of band hash, so bands never share buckets.
    Documents without shingles yield nothing (see ``minhash``: they are nobody's duplicate).
    """
    texts = [d.text or "" for d in docs]
    values, offsets = shingle_hashes(texts, cfg.ngram, cfg.shingle)
    sigs = hasher.signatures(values, offsets)
    bands, rows = resolved_bands(cfg)
    keys = band_keys(sigs, bands, rows)
    for i, doc in enumerate(docs):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        if hi == lo:
            continue
        shingle_bytes = np.unique(values[lo:hi]).astype("<u4").tobytes() if cfg.verify == "exact" else None
        rank = keeper_rank(cfg.keeper, doc.doc_id, doc.source_path, doc.source_offset, len(texts[i]))
        sketch: Sketch = (doc.doc_id, rank, pack_signature(sigs[i]), shingle_bytes)
        yield node_id(doc), sketch, [b.to_bytes(2, "big") + int(k).to_bytes(8, "big") for b, k in enumerate(keys[i])]


# --- candidates and verification -------------------------------------------------


def _sub_bucket(node: Node, n_sub: int) -> int:
    return int.from_bytes(node[:8], "big") % n_sub


def link_bucket(members: Iterable[Node], max_bucket_size: int) -> Iterator[Edge]:
    """Candidate edges (center, member) of one band bucket; ``members`` is iterated up to 3 times.

    Up to ``max_bucket_size`` members: a star around the smallest node. Above it: stars of about
    ``max_bucket_size`` around each sub-bucket's smallest node, and a star of those around the
    smallest node overall (see the module docstring).
    """
    n, smallest = 0, None
    for m in members:
        n += 1
        if smallest is None or m < smallest:
            smallest = m
    if n < 2 or smallest is None:
        return
    if n <= max_bucket_size:
        for m in members:
            if m != smallest:
                yield smallest, m
        return
    n_sub = math.ceil(n / max_bucket_size)
    centers: list[Node | None] = [None] * n_sub
    for m in members:
        k = _sub_bucket(m, n_sub)
        c = centers[k]
        if c is None or m < c:
            centers[k] = m
    for m in members:
        c = centers[_sub_bucket(m, n_sub)]
        if c is not None and m != c:
            yield c, m
    for c in centers:
        if c is not None and c != smallest:
            yield smallest, c


def similarity(a: Sketch, b: Sketch, exact: bool) -> float:
    """The verification similarity: exact shingle-set Jaccard if asked for (and available),
    else the signatures' estimated Jaccard."""
    if exact and a[3] is not None and b[3] is not None:
        return exact_jaccard(np.frombuffer(a[3], "<u4"), np.frombuffer(b[3], "<u4"))
    return estimated_jaccard(unpack_signature(a[2]), unpack_signature(b[2]))


def verify_candidates(node: Node, sketch: Sketch, centers: Iterable[tuple[Node, Sketch]],
                      cfg: NearDedupConfig) -> Iterator[tuple[Edge, float]]:
    """Verified edges between ``node`` and the distinct centers it was linked to, with similarity."""
    seen: set[Node] = set()
    exact = cfg.verify == "exact"
    for center, center_sketch in centers:
        if center in seen or center == node:
            continue
        seen.add(center)
        sim = similarity(sketch, center_sketch, exact)
        if sim >= cfg.threshold:
            yield (center, node), sim


# --- connected components --------------------------------------------------------
# Large-star / small-star (Kiveris et al., "Connected Components in MapReduce and Beyond",
# SoCC 2014): alternating the two operations turns every component into a star around its
# smallest node in O(log^2 n) rounds. Each operation is one grouping of the edge list by node.


def large_star(node: Node, neighbours: Iterable[Node]) -> Iterator[Edge]:
    """Link every strictly larger neighbour to the smallest node of the closed neighbourhood."""
    nbrs = set(neighbours)
    m = min(nbrs | {node})
    for v in nbrs:
        if v > node:
            yield v, m


def small_star(node: Node, neighbours: Iterable[Node]) -> Iterator[Edge]:
    """Link every smaller-or-equal neighbour, and the node itself, to the smallest of them."""
    smaller = {v for v in neighbours if v < node}
    if not smaller:
        return
    m = min(smaller)
    for v in smaller | {node}:
        if v != m:
            yield v, m


def union_find_components(edges: Iterable[Edge]) -> dict[Node, Node]:
    """node -> smallest node of its component (the in-memory equivalent of the Beam rounds)."""
    parent: dict[Node, Node] = {}

    def find(x: Node) -> Node:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


# --- keepers and decisions -------------------------------------------------------


def resolve_cluster(members: Iterable[tuple[Node, Sketch]]) -> Iterator[tuple[Node, ClusterDecision]]:
    """One decision per member of a component; ``members`` is iterated twice, order-free.

    The keeper is the member with the smallest rank; every member gets its estimated Jaccard with
    the keeper (the keeper 1.0).
    """
    keeper: Sketch | None = None
    keeper_node: Node | None = None
    size = 0
    for node, sketch in members:
        size += 1
        if keeper is None or (sketch[1], node) < (keeper[1], keeper_node):
            keeper, keeper_node = sketch, node
    if keeper is None:
        return
    keeper_sig = unpack_signature(keeper[2])
    for node, sketch in members:
        if node == keeper_node:
            yield node, (keeper[0], size, 1.0, True)
        else:
            yield node, (keeper[0], size, estimated_jaccard(unpack_signature(sketch[2]), keeper_sig), False)


def apply_decision(doc: Document, decision: ClusterDecision | None, cfg: NearDedupConfig) -> Document:
    """The document with its cluster signals, removed unless it is its cluster's keeper.

    No decision: a cluster of one (cluster = its own doc_id) if it has shingles, else untouched.
    """
    if decision is None:
        if not has_shingles(doc.text or "", cfg.shingle):
            return doc
        return replace(doc, near_dup_cluster=doc.doc_id, near_dup_cluster_size=1, near_dup_similarity=1.0)
    keeper_id, size, sim, is_keeper = decision
    doc = replace(doc, near_dup_cluster=keeper_id, near_dup_cluster_size=size, near_dup_similarity=sim)
    if is_keeper:
        return doc
    return doc.removed(Removal(
        Stage.NEAR_DEDUP, Reason.NEAR_DUPLICATE, score=sim, threshold=cfg.threshold, duplicate_of=keeper_id,
        detail=(f"near-duplicate cluster of {size} kept {keeper_id}; estimated Jaccard with it {sim:.3f} "
                f"({cfg.shingle} {cfg.ngram}-grams, {cfg.num_perm} perms; linked by edges >= {cfg.threshold})"),
    ))


# --- the whole algorithm in memory -------------------------------------------------


def find_near_duplicates(docs: Sequence[Document], cfg: NearDedupConfig,
                         batch_size: int = 512) -> dict[str, ClusterDecision]:
    """doc_id -> decision for every document in a cluster of two or more, computed in memory.

    Same sketches, bucket links, verification and keepers as the Beam stage; components by
    union-find. For tests, evaluation and small corpora (it holds every signature).
    """
    hasher = make_hasher(cfg)
    sketches: dict[Node, Sketch] = {}
    buckets: dict[bytes, list[Node]] = {}
    for start in range(0, len(docs), batch_size):
        for node, sketch, keys in sketch_batch(docs[start:start + batch_size], cfg, hasher):
            sketches[node] = sketch
            for key in keys:
                buckets.setdefault(key, []).append(node)
    centers_of: dict[Node, list[Node]] = {}
    for members in buckets.values():
        for center, member in link_bucket(members, cfg.max_bucket_size):
            centers_of.setdefault(member, []).append(center)
    edges = [edge for node, centers in centers_of.items()
             for edge, _ in verify_candidates(node, sketches[node], ((c, sketches[c]) for c in centers), cfg)]
    components: dict[Node, list[Node]] = {}
    for node, root in union_find_components(edges).items():
        components.setdefault(root, []).append(node)
    out: dict[str, ClusterDecision] = {}
    for members in components.values():
        for node, decision in resolve_cluster([(n, sketches[n]) for n in members]):
            out[sketches[node][0]] = decision
    return out
