"""DropNearDuplicates on TestPipeline with the local runner: clusters, keepers, batching, caps, metrics."""

from __future__ import annotations

import os
import pathlib
import pickle
import random
import tempfile
from dataclasses import replace

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that

from bench.neardup_corpus import make_corpus
from tests.conftest import local_runner
from toxsieve.pipelines.config import NearDedupConfig
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.stages.minhash import MinHasher, estimated_jaccard, shingle_hashes
from toxsieve.pipelines.stages.near_dedup import find_near_duplicates
from toxsieve.pipelines.stages.near_dedup_beam import DropNearDuplicates, NearDedupCounter

NS = "near_dedup"


def _doc(doc_id: str, text: str, offset: int = 0) -> Document:
    return Document(doc_id, "mem://test", offset, "jsonl", text=text, n_bytes_raw=len(text))


def _all_true(flags: list[bool]) -> None:
    if not all(flags):
        raise BeamAssertException("a document is on the wrong side of the (kept, removed) split")


def _run(docs: list[Document], cfg: NearDedupConfig) -> tuple[list[Document], dict[str, int]]:
    """Every output document (kept and removed) and the stage's counters."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out.pickle")
        p = BeamTestPipeline(runner=local_runner())
        kept, removed = p | beam.Create(docs) | DropNearDuplicates(cfg)
        assert_that(kept | "KeptHasNoRemoval" >> beam.Map(lambda d: d.removal is None), _all_true, label="kept")
        assert_that(removed | "RemovedHasRemoval" >> beam.Map(lambda d: d.removal is not None), _all_true,
                    label="removed")
        _ = ((kept, removed) | beam.Flatten() | beam.combiners.ToList()
             | beam.Map(lambda out: pathlib.Path(path).write_bytes(pickle.dumps(out))))
        result = p.run()
        result.wait_until_finish()
        out = pickle.loads(pathlib.Path(path).read_bytes())
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]
                if c.key.metric.namespace == NS}
    return out, counters


def _chain(n_docs: int, n_words: int = 1000, edits_per_step: int = 8, seed: int = 5) -> list[str]:
    """Texts where each one is the previous with a few words replaced: neighbours are near-duplicates,
    the two ends are not."""
    rng = random.Random(seed)
    words = [f"w{rng.randrange(10**6)}" for _ in range(n_words)]
    texts = [" ".join(words)]
    positions = rng.sample(range(n_words), edits_per_step * n_docs)
    for k in range(1, n_docs):
        for pos in positions[(k - 1) * edits_per_step: k * edits_per_step]:
            words[pos] = f"x{rng.randrange(10**6)}"
        texts.append(" ".join(words))
    return texts


def _estimate(a: str, b: str, cfg: NearDedupConfig) -> float:
    values, offsets = shingle_hashes([a, b], cfg.ngram)
    sigs = MinHasher(cfg.num_perm, cfg.seed).signatures(values, offsets)
    return estimated_jaccard(sigs[0], sigs[1])


@pytest.mark.parametrize("order, batch_size", [(0, 3), (5, 1)])
def test_a_chain_of_near_duplicates_is_one_cluster_kept_by_the_smallest_doc_id(order: int, batch_size: int) -> None:
    cfg = NearDedupConfig(batch_size=batch_size)
    texts = _chain(6)
    ids = ["c4", "a9", "b2", "c1", "b7", "a3"]  # chain order; smallest doc_id "a3" is at the end
    assert _estimate(texts[0], texts[-1], cfg) < cfg.threshold  # the ends only meet through the chain
    assert all(_estimate(a, b, cfg) >= cfg.threshold for a, b in zip(texts, texts[1:], strict=False))
    unrelated = _chain(2, seed=99)
    docs = [_doc(i, t) for i, t in zip(ids, texts, strict=True)] + [_doc("z0", unrelated[0]), _doc("z1", "tiny")]
    docs = docs[order:] + docs[:order]

    out, counters = _run(docs, cfg)

    by_id = {d.doc_id: d for d in out}
    assert sorted(by_id) == sorted(d.doc_id for d in docs) and len(out) == len(docs)  # kept ∪ removed == input
    kept = sorted(d.doc_id for d in out if d.removal is None)
    assert kept == ["a3", "z0", "z1"]
    for doc_id in ids:
        doc = by_id[doc_id]
        assert (doc.near_dup_cluster, doc.near_dup_cluster_size) == ("a3", 6)
        if doc_id != "a3":
            assert doc.removal is not None and doc.removal.duplicate_of == "a3"
            assert doc.removal.reason.value == "near_duplicate" and doc.removal.threshold == cfg.threshold
            assert doc.removal.score == doc.near_dup_similarity == pytest.approx(_estimate(doc.text, texts[-1], cfg))
    # the far end of the chain is in the cluster although it is below the threshold with the keeper
    assert by_id["c4"].near_dup_similarity < cfg.threshold
    assert (by_id["z0"].near_dup_cluster, by_id["z0"].near_dup_cluster_size, by_id["z0"].near_dup_similarity) == \
        ("z0", 1, 1.0)
    assert counters["near_duplicate"] == 5 and counters[NearDedupCounter.CLUSTERS] == 1
    assert counters[NearDedupCounter.SKETCHED] == 8
    assert NearDedupCounter.CC_UNCONVERGED_NODES not in counters


def test_longest_text_policy_keeps_the_longest_member() -> None:
    base = _chain(1)[0]
    docs = [_doc("a", base), _doc("b", base + " one more word"), _doc("c", base + " two more words here")]
    out, _ = _run(docs, NearDedupConfig(keeper="longest_text"))
    assert sorted(d.doc_id for d in out if d.removal is None) == ["c"]
    assert {d.removal.duplicate_of for d in out if d.removal is not None} == {"c"}


@pytest.mark.parametrize("batch_size, verify", [(7, "signature"), (64, "exact")])
def test_the_stage_agrees_with_the_in_memory_reference_whatever_the_batch_size(batch_size: int, verify: str) -> None:
    corpus = make_corpus(n_pairs=40, n_singletons=23, seed=4, j_min=0.6)  # 103 documents
    docs = [_doc(i, t, n) for n, (i, t) in enumerate(corpus.docs.items())]
    cfg = NearDedupConfig(batch_size=batch_size, verify=verify)
    expected = find_near_duplicates(docs, cfg)
    assert sum(not d[3] for d in expected.values()) > 10

    out, counters = _run(docs, cfg)

    assert len(out) == len(docs) and {d.doc_id for d in out} == set(corpus.docs)
    got = {d.doc_id: (d.near_dup_cluster, d.near_dup_cluster_size, d.near_dup_similarity, d.removal is None)
           for d in out if d.near_dup_cluster_size and d.near_dup_cluster_size > 1}
    assert got == expected
    assert counters["near_duplicate"] == sum(not d[3] for d in expected.values())
    assert counters[NearDedupCounter.VERIFIED_EDGES] == counters["near_duplicate"]  # pairs: one edge each


def test_an_oversized_bucket_is_counted_split_and_still_deduplicated() -> None:
    base = _chain(1, n_words=200)[0]
    # 12 copies that differ in one trailing word: most band buckets hold all 12
    docs = [_doc(f"d{i:02d}", f"{base} tail{i}") for i in range(12)]
    cfg = NearDedupConfig(max_bucket_size=5)
    out, counters = _run(docs, cfg)
    assert sorted(d.doc_id for d in out if d.removal is None) == ["d00"]
    assert counters[NearDedupCounter.OVERSIZED_BUCKETS] > 0
    # each oversized bucket has more than max_bucket_size members, at most all 12
    assert 6 * counters[NearDedupCounter.OVERSIZED_BUCKETS] <= counters[NearDedupCounter.OVERSIZED_BUCKET_MEMBERS] \
        <= 12 * counters[NearDedupCounter.OVERSIZED_BUCKETS]
    assert counters["near_duplicate"] == 11


def test_documents_without_tokens_pass_through_untouched() -> None:
    docs = [_doc("p", "!!! ... ???"), _doc("q", "??? ... !!!"), _doc("w", "words and more words")]
    out, counters = _run(docs, NearDedupConfig())
    by_id = {d.doc_id: d for d in out}
    assert all(d.removal is None for d in out)
    assert by_id["p"] == docs[0] and by_id["q"] == docs[1]
    assert by_id["w"] == replace(docs[2], near_dup_cluster="w", near_dup_cluster_size=1, near_dup_similarity=1.0)
    assert counters[NearDedupCounter.NO_SHINGLES] == 2


def test_too_few_rounds_are_counted_and_never_remove_wrongly() -> None:
    texts = _chain(12, n_words=600, edits_per_step=4, seed=8)
    rng = random.Random(3)
    ids = [f"n{rng.randrange(10**6):06d}" for _ in texts]
    docs = [_doc(i, t) for i, t in zip(ids, texts, strict=True)]
    full, _ = _run(docs, NearDedupConfig())
    assert sum(d.removal is None for d in full) == 1
    short, counters = _run(docs, NearDedupConfig(max_rounds=1))
    kept = [d for d in short if d.removal is None]
    assert counters[NearDedupCounter.CC_UNCONVERGED_NODES] > 0
    assert 1 < len(kept) < len(docs)  # the chain is split into a few clusters, each keeping one
    # every removed document still points at a kept document of the same chain
    kept_ids = {d.doc_id for d in kept}
    assert all(d.removal.duplicate_of in kept_ids for d in short if d.removal is not None)
    assert {d.doc_id for d in short} == set(ids)
