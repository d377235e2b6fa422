"""MinHash core: shingles, datasketch-identical signatures, LSH parameters, estimates, keepers."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from datasketch import LeanMinHash, MinHash, MinHashLSH
from datasketch.hashfunc import sha1_hash32
from datasketch.lsh import _optimal_param
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toxsieve.pipelines.stages.minhash import (
    MinHasher,
    band_keys,
    estimated_jaccard,
    exact_jaccard,
    has_shingles,
    keeper_rank,
    lsh_params,
    pack_signature,
    shingle_hash,
    shingle_hashes,
    shingle_set,
    shingles,
    true_jaccard,
    unpack_signature,
)

TEXTS = [
    "The committee met on Tuesday to discuss the new library budget and the opening hours of the reading room.",
    "Der Ausschuss traf sich am Dienstag, um den neuen Haushalt der Bibliothek zu besprechen. Ünïcödé façade!",
    "short text",  # fewer tokens than n: one shingle of all of them
    "",  # no token at all
    "!!! ... ---",  # punctuation only: no token either
    "数据 去重 是 语言 模型 训练 数据 管道 中 的 一步 数据 去重",
    "word " * 40,  # one repeated shingle
]
SCHEMES = ["affine32", "legacy"]


def _datasketch(text: str, num_perm: int, seed: int, scheme: str, kind: str = "word", n: int = 5) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=seed, scheme=scheme, hashfunc=lambda s: shingle_hash(s, kind))
    for sh in shingles(text, n, kind):
        m.update(sh)
    return m


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("kind", ["word", "char"])
def test_signatures_are_bit_identical_to_datasketch_with_our_shingle_hashfunc(scheme: str, kind: str) -> None:
    hasher = MinHasher(num_perm=96, seed=42, scheme=scheme)
    values, offsets = shingle_hashes(TEXTS, 5, kind)
    sigs = hasher.signatures(values, offsets)
    assert np.array_equal(hasher.permutations, MinHash(96, seed=42, scheme=scheme).permutations)
    for text, sig in zip(TEXTS, sigs, strict=True):
        ref = _datasketch(text, 96, 42, scheme, kind)
        assert sig.dtype == ref.hashvalues.dtype
        assert np.array_equal(sig, ref.hashvalues), text
        # so our signatures load straight into datasketch's own tools
        assert MinHash(seed=42, hashvalues=sig, scheme=scheme) == ref
        assert LeanMinHash(seed=42, hashvalues=sig, scheme=scheme).jaccard(LeanMinHash(ref)) == 1.0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_signatures_match_datasketch_for_any_custom_hashfunc(scheme: str) -> None:
    """Given the same shingle hash values, whatever function produced them (here datasketch's default
    sha1_hash32 of the shingle text), the signatures are the same as datasketch's."""
    hasher = MinHasher(num_perm=128, seed=7, scheme=scheme)
    docs = [[" ".join(s).encode() for s in shingles(t, 3)] for t in TEXTS]
    values = np.array([sha1_hash32(s) for d in docs for s in d], dtype=np.uint32)
    offsets = np.cumsum([0] + [len(d) for d in docs])
    sigs = hasher.signatures(values, offsets)
    for doc, sig in zip(docs, sigs, strict=True):
        ref = MinHash(num_perm=128, seed=7, scheme=scheme)  # default hashfunc: sha1_hash32
        ref.update_batch(doc)
        assert np.array_equal(sig, ref.hashvalues)


@settings(max_examples=40, deadline=None)
@given(sets=st.lists(st.lists(st.integers(0, 2**32 - 1), max_size=300), min_size=1, max_size=6),
       seed=st.integers(0, 2**31), num_perm=st.integers(1, 300), chunk=st.integers(1, 5000),
       scheme=st.sampled_from(SCHEMES))
def test_batched_chunked_signatures_equal_datasketch_per_document(sets: list[list[int]], seed: int, num_perm: int,
                                                                  chunk: int, scheme: str) -> None:
    """Batch composition and chunk size never change a signature (empty documents included)."""
    hasher = MinHasher(num_perm=num_perm, seed=seed, scheme=scheme, chunk_elements=chunk)
    values = np.array([v for s in sets for v in s], dtype=np.uint32)
    offsets = np.cumsum([0] + [len(s) for s in sets])
    sigs = hasher.signatures(values, offsets)
    for s, sig in zip(sets, sigs, strict=True):
        ref = MinHash(num_perm=num_perm, seed=seed, scheme=scheme, hashfunc=int)
        ref.update_batch(s)
        assert np.array_equal(sig, ref.hashvalues)
        assert np.array_equal(hasher.signature(s), sig)
        assert hasher.is_empty(sig) == (not s)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(st.characters(blacklist_categories=["Cs"]), max_size=80), max_size=8),
       n=st.integers(1, 7), kind=st.sampled_from(["word", "char"]))
def test_vectorised_shingle_hashes_equal_the_per_shingle_reference(texts: list[str], n: int, kind: str) -> None:
    values, offsets = shingle_hashes(texts, n, kind)
    assert values.dtype == np.uint32 and len(offsets) == len(texts) + 1
    for i, text in enumerate(texts):
        ref = [shingle_hash(s, kind) for s in shingles(text, n, kind)]
        assert values[offsets[i]:offsets[i + 1]].tolist() == ref
        assert has_shingles(text, kind) == bool(ref)


def test_short_documents_have_one_shingle_and_empty_ones_none() -> None:
    assert shingles("Just Three words", 5) == [("just", "three", "words")]
    assert shingles("!!! ...", 5) == [] and shingles("", 5, "char") == []
    assert shingles("abc", 5, "char") == [("a", "b", "c")]
    values, offsets = shingle_hashes(["Just three words.", "just THREE words", "just three words and more", ""])
    assert np.diff(offsets).tolist() == [1, 1, 1, 0]
    # case and punctuation aside, the same short token sequence is the same shingle ...
    assert values[0] == values[1]
    # ... and a longer text containing it is not the same
    assert values[2] != values[0]
    sigs = MinHasher(64).signatures(values, offsets)
    assert estimated_jaccard(sigs[0], sigs[1]) == 1.0
    assert MinHasher(64).is_empty(sigs[3]) and np.all(sigs[3] == MinHash(64).hashvalues)


def _sets_with_jaccard(rng: random.Random, size_a: int, size_b: int, inter: int) -> tuple[list[int], list[int]]:
    pool = rng.sample(range(2**32), size_a + size_b - inter)
    common, only_a, only_b = pool[:inter], pool[inter:size_a], pool[size_a:]
    return common + only_a, common + only_b


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(30, 3000), overlap=st.floats(0.0, 1.0), seed=st.integers(0, 10**6),
       scheme=st.sampled_from(SCHEMES))
def test_estimated_jaccard_is_within_tolerance_of_true_jaccard(size: int, overlap: float, seed: int,
                                                               scheme: str) -> None:
    rng = random.Random(seed)
    inter = int(overlap * size)
    a, b = _sets_with_jaccard(rng, size, size, inter)
    true = inter / (2 * size - inter)
    num_perm = 256
    hasher = MinHasher(num_perm, seed=seed % 1000, scheme=scheme)
    est = estimated_jaccard(hasher.signature(a), hasher.signature(b))
    # binomial standard error; 5 sigma (+ a little for the discrete estimate)
    tol = 5 * math.sqrt(true * (1 - true) / num_perm) + 2 / num_perm
    assert abs(est - true) <= tol
    assert exact_jaccard(shingle_set(np.array(a, np.uint32)), shingle_set(np.array(b, np.uint32))) == \
        pytest.approx(true)


def test_estimates_are_unbiased_on_average() -> None:
    rng = random.Random(1)
    errors = []
    for k in range(200):
        a, b = _sets_with_jaccard(rng, 400, 400, 320)  # J = 2/3
        hasher = MinHasher(128, seed=k)
        errors.append(estimated_jaccard(hasher.signature(a), hasher.signature(b)) - 320 / 480)
    assert abs(float(np.mean(errors))) < 0.01  # 200 draws of sd ~0.042: sd of the mean ~0.003


@pytest.mark.parametrize("num_perm", [16, 64, 128, 256])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95])
def test_lsh_parameters_equal_datasketch_minhashlsh(num_perm: int, threshold: float) -> None:
    expected = _optimal_param(threshold, num_perm, 0.5, 0.5)  # what MinHashLSH(threshold, num_perm) uses
    assert lsh_params(threshold, num_perm) == expected
    if expected[0] >= 2:  # MinHashLSH itself refuses a single band
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        assert (lsh.b, lsh.r) == expected


def test_lsh_parameters_with_other_weights_equal_datasketch() -> None:
    for weights in [(0.3, 0.7), (0.7, 0.3)]:
        lsh = MinHashLSH(threshold=0.8, num_perm=128, weights=weights)
        assert lsh_params(0.8, 128, weights) == (lsh.b, lsh.r)


def test_band_keys_collide_exactly_when_the_band_is_equal() -> None:
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, size=(3, 20), dtype=np.uint64).astype(np.uint32)
    sigs[1, 5:10] = sigs[0, 5:10]  # band 1 of 4 rows... with rows=5: band index 1
    sigs[2, 18:] = 0  # past bands * rows: unused
    keys = band_keys(sigs, bands=3, rows=5)
    assert keys.shape == (3, 3) and keys.dtype == np.uint64
    assert keys[0, 1] == keys[1, 1] and keys[0, 0] != keys[1, 0] and keys[0, 2] != keys[1, 2]
    changed = sigs.copy()
    changed[2, 18:] = 7
    assert np.array_equal(band_keys(changed, 3, 5)[2], keys[2])
    with pytest.raises(ValueError):
        band_keys(sigs, bands=5, rows=5)


def test_signature_bytes_round_trip_for_both_schemes() -> None:
    for scheme in SCHEMES:
        sig = MinHasher(32, scheme=scheme).signature(range(100))
        back = unpack_signature(pack_signature(sig))
        assert len(pack_signature(sig)) == 4 * 32 and np.array_equal(back.astype(sig.dtype), sig)


def test_true_jaccard_on_word_shingles() -> None:
    a = " ".join(f"w{i}" for i in range(20))
    b = " ".join(f"w{i}" for i in range(20) if i != 10)  # removing a word breaks 5 shingles, adds 4
    assert true_jaccard(a, a) == 1.0
    assert true_jaccard(a, b) == pytest.approx(11 / 20)


@settings(max_examples=50, deadline=None)
@given(members=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 3), st.integers(0, 50)),
                        min_size=1, max_size=12, unique=True),
       policy=st.sampled_from(["smallest_doc_id", "longest_text"]), data=st.data())
def test_keeper_is_the_same_in_any_order(members: list[tuple[str, int, int]], policy: str, data: st.DataObject) -> None:
    ranks = [keeper_rank(policy, doc_id, "path", offset, n_chars) for doc_id, offset, n_chars in members]
    shuffled = data.draw(st.permutations(ranks))
    assert min(shuffled) == min(ranks)
    keeper = min(ranks)
    if policy == "smallest_doc_id":
        assert keeper[0] == min(m[0] for m in members)
    else:
        longest = max(m[2] for m in members)
        assert keeper[0] == -longest and keeper[1] == min(m[0] for m in members if m[2] == longest)
