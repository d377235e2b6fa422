"""Near-dedup core: bucket linking, verification, components, keepers, config, and quality on a
corpus with planted near-duplicates."""

from __future__ import annotations

import random
from collections import defaultdict
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.neardup_corpus import make_corpus
from toxsieve.pipelines.config import ConfigError, NearDedupConfig, config_from_dict
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.stages.minhash import keeper_rank
from toxsieve.pipelines.stages.near_dedup import (
    Edge,
    Node,
    apply_decision,
    find_near_duplicates,
    large_star,
    link_bucket,
    resolve_cluster,
    resolved_bands,
    small_star,
    union_find_components,
)
from toxsieve.schemas import Reason, Stage


def _nodes(n: int, seed: int = 0) -> list[Node]:
    rng = random.Random(seed)
    return [rng.randbytes(16) for _ in range(n)]


def test_link_bucket_is_a_star_around_the_smallest_member() -> None:
    members = _nodes(7)
    edges = list(link_bucket(members, max_bucket_size=10))
    assert sorted(edges) == sorted((min(members), m) for m in members if m != min(members))
    assert list(link_bucket(members[:1], 10)) == []


@pytest.mark.parametrize("n, cap", [(50, 10), (1000, 30), (11, 10)])
def test_oversized_bucket_is_split_into_linked_sub_stars_with_bounded_fan_in(n: int, cap: int) -> None:
    members = _nodes(n, seed=n)
    edges = list(link_bucket(members, max_bucket_size=cap))
    assert len(edges) == n - 1  # still linear, and a spanning tree of the bucket
    roots = union_find_components(edges)
    assert set(roots) == set(members) and set(roots.values()) == {min(members)}
    fan_in: dict[Node, int] = defaultdict(int)
    for center, _ in edges:
        fan_in[center] += 1
    sub = -(-n // cap)
    assert max(fan_in.values()) <= 3 * cap + sub  # no center verifies much more than ~cap candidates


def _star_rounds(edges: set[Edge], rounds: int) -> dict[Node, Node]:
    def step(es: set[Edge], op: object) -> set[Edge]:
        adj: dict[Node, list[Node]] = defaultdict(list)
        for u, v in es:
            adj[u].append(v)
            adj[v].append(u)
        return {e for u, nbrs in adj.items() for e in op(u, nbrs)}  # type: ignore[operator]

    for _ in range(rounds):
        edges = step(step(edges, large_star), small_star)
    adj: dict[Node, set[Node]] = defaultdict(set)
    for u, v in edges:
        adj[u].add(v)
        adj[v].add(u)
    return {u: min(nbrs | {u}) for u, nbrs in adj.items()}


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 60), density=st.floats(0.0, 0.15), seed=st.integers(0, 10**6))
def test_large_star_small_star_rounds_find_the_components_of_random_graphs(n: int, density: float, seed: int) -> None:
    rng = random.Random(seed)
    nodes = _nodes(n, seed)
    edges = {(a, b) for a in nodes for b in nodes if a < b and rng.random() < density}
    labels = _star_rounds(set(edges), rounds=10)
    assert labels == union_find_components(edges)


def test_a_long_chain_converges_within_the_default_rounds() -> None:
    nodes = sorted(_nodes(1000, seed=1))  # sorted ids along the chain: the slow case
    edges = set(pairwise(nodes))
    assert _star_rounds(edges, NearDedupConfig().max_rounds) == union_find_components(edges)


def _sketch(doc_id: str, sig: list[int], n_chars: int = 100, policy: str = "smallest_doc_id") -> tuple:
    import numpy as np

    return (doc_id, keeper_rank(policy, doc_id, "p", 0, n_chars), np.array(sig, "<u4").tobytes(), None)


@pytest.mark.parametrize("policy", ["smallest_doc_id", "longest_text"])
def test_resolve_cluster_picks_the_keeper_by_total_order_whatever_the_order(policy: str) -> None:
    members = [(bytes([i]) * 16, _sketch(doc_id, sig, n, policy)) for i, (doc_id, sig, n) in enumerate([
        ("d3", [1, 2, 3, 4], 300), ("d1", [1, 2, 3, 9], 100), ("d2", [1, 2, 8, 9], 300), ("d0", [7, 7, 7, 7], 50)])]
    expected_keeper = "d0" if policy == "smallest_doc_id" else "d2"  # longest: d2/d3 tie on length -> d2
    results = set()
    for k in range(len(members)):
        out = dict(resolve_cluster(members[k:] + members[:k]))
        results.add(tuple(sorted(out.items())))
        keepers = [d for d in out.values() if d[3]]
        assert len(keepers) == 1 and keepers[0][0] == expected_keeper
        assert all(d[0] == expected_keeper and d[1] == 4 for d in out.values())
    assert len(results) == 1
    if policy == "longest_text":
        # estimated Jaccard with the keeper d2 = [1, 2, 8, 9]
        sims = {m[1][0]: out[m[0]][2] for m in members}
        assert sims == {"d2": 1.0, "d3": 0.5, "d1": 0.75, "d0": 0.0}


def test_apply_decision_removes_non_keepers_with_the_evidence() -> None:
    cfg = NearDedupConfig()
    doc = Document("b", "p", 0, "jsonl", text="some words here")
    removed = apply_decision(doc, ("a", 3, 0.84, False), cfg)
    assert removed.removal is not None
    assert (removed.removal.stage, removed.removal.reason) == (Stage.NEAR_DEDUP, Reason.NEAR_DUPLICATE)
    assert removed.removal.duplicate_of == "a" and removed.removal.score == 0.84
    assert removed.removal.threshold == cfg.threshold and "a" in (removed.removal.detail or "")
    assert (removed.near_dup_cluster, removed.near_dup_cluster_size, removed.near_dup_similarity) == ("a", 3, 0.84)
    keeper = apply_decision(doc, ("b", 3, 1.0, True), cfg)
    assert keeper.removal is None and keeper.near_dup_cluster == "b"
    single = apply_decision(doc, None, cfg)
    assert (single.near_dup_cluster, single.near_dup_cluster_size, single.near_dup_similarity) == ("b", 1, 1.0)
    blank = Document("c", "p", 0, "jsonl", text="!!! ...")
    assert apply_decision(blank, None, cfg) == blank  # no shingle: not part of the stage's clusters


def test_near_dedup_config_defaults_and_validation() -> None:
    cfg = config_from_dict({}).near_dedup
    assert cfg.enabled and cfg.threshold == 0.8 and cfg.scheme == "affine32" and cfg.keeper == "smallest_doc_id"
    assert resolved_bands(cfg) == (17, 15)  # datasketch MinHashLSH(0.8, 256)
    assert resolved_bands(NearDedupConfig(bands=20, rows=5)) == (20, 5)
    ok = config_from_dict({"near_dedup": {"threshold": 0.7, "shingle": "char", "ngram": 9, "bands": 16,
                                          "rows": 8, "num_perm": 128, "keeper": "longest_text"}}).near_dedup
    assert (ok.bands, ok.rows, ok.ngram) == (16, 8, 9)
    for bad, key in [({"threshold": 1.0}, "near_dedup.threshold"), ({"scheme": "affine64"}, "near_dedup.scheme"),
                     ({"bands": 4}, "near_dedup.bands"), ({"bands": 40, "rows": 8}, "near_dedup.bands"),
                     ({"verify": "maybe"}, "near_dedup.verify"), ({"max_rounds": 0}, "near_dedup.max_rounds"),
                     ({"keeper": "newest"}, "near_dedup.keeper"), ({"ngram": 0}, "near_dedup.ngram"),
                     ({"num_perms": 64}, "near_dedup.num_perms")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            config_from_dict({"near_dedup": bad})


# --- quality on planted near-duplicates ---------------------------------------------


@pytest.fixture(scope="module")
def planted() -> tuple:
    corpus = make_corpus(n_pairs=1200, n_singletons=600, seed=11)
    docs = [Document(doc_id, "mem://corpus", 0, "jsonl", text=text) for doc_id, text in corpus.docs.items()]
    return corpus, docs


def _together(decisions: dict, a: str, b: str) -> bool:
    return a in decisions and b in decisions and decisions[a][0] == decisions[b][0]


@pytest.mark.parametrize("verify", ["signature", "exact"])
def test_planted_near_duplicates_are_found_with_the_required_recall_and_precision(planted: tuple, verify: str) -> None:
    corpus, docs = planted
    cfg = NearDedupConfig(verify=verify)
    decisions = find_near_duplicates(docs, cfg)
    high = [p for p in corpus.pairs if p.jaccard >= cfg.threshold + 0.05]
    low = [p for p in corpus.pairs if p.jaccard < cfg.threshold - 0.05]
    assert len(high) > 150 and len(low) > 500
    recall = sum(_together(decisions, p.a, p.b) for p in high) / len(high)
    false_rate = sum(_together(decisions, p.a, p.b) for p in low) / len(low)
    assert recall >= 0.95, recall
    assert 1 - false_rate >= 0.98, false_rate
    # nothing else is merged: every cluster is one planted pair
    planted_of = {d: (p.a, p.b) for p in corpus.pairs for d in (p.a, p.b)}
    for doc_id, (keeper, size, sim, is_keeper) in decisions.items():
        assert size == 2 and keeper in planted_of[doc_id]
        assert is_keeper == (doc_id == keeper) == (doc_id == min(planted_of[doc_id]))
        assert is_keeper or verify == "exact" or sim >= cfg.threshold  # a pair's only edge passed


def test_documents_sharing_an_id_stay_distinct() -> None:
    text = " ".join(f"w{i}" for i in range(60))
    docs = [Document("same", "a.jsonl", 0, "jsonl", text=text), Document("same", "b.jsonl", 0, "jsonl", text=text)]
    decisions = find_near_duplicates(docs, NearDedupConfig())
    assert decisions["same"][1] == 2  # two nodes, one cluster


def test_node_ids_are_stable() -> None:
    from toxsieve.pipelines.stages.near_dedup import node_id

    doc = Document("urn:uuid:1", "s3://bucket/shard.warc.gz", 123, "warc")
    assert node_id(doc) == node_id(Document("urn:uuid:1", "s3://bucket/shard.warc.gz", 123, "warc", text="x"))
    assert node_id(doc) != node_id(Document("urn:uuid:1", "s3://bucket/shard.warc.gz", 124, "warc"))
    assert len(node_id(doc)) == 16
