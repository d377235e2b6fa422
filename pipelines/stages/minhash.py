"""MinHash-LSH core for DropNearDuplicates: shingles, signatures, LSH bands, verification, keepers.

Pure numpy, no Beam. The pieces, in the order the stage uses them:

* **Shingles.** The normalised text is lower-cased and cut into word tokens (``\\w+``) or, for
  ``kind="char"``, into characters of the whitespace-collapsed text. A shingle is ``n`` consecutive
  tokens. Every token is hashed once (xxh3-64 of its UTF-8 bytes; for characters a 64-bit mix of
  the code point), and the n-gram hash is combined in numpy from the token hashes:
  ``fmix64(sum_j h[i+j] * C_j mod 2^64) >> 32``, a 32-bit shingle hash value.
  ``shingle_hash`` computes the same value for one shingle in plain Python: it is the
  ``hashfunc`` to give ``datasketch.MinHash`` to reproduce our signatures from shingles.
* **Short texts.** A text with no token has no shingle: its signature is the empty one (all
  maximal values, as an empty ``datasketch.MinHash``) and it never takes part in LSH, so it is
  nobody's near-duplicate. A text with 1 to ``n - 1`` tokens has exactly one shingle, made of all
  its tokens: it can only be a near-duplicate of a text with the same short token sequence.
* **Signatures.** ``MinHasher`` draws the permutations exactly as ``datasketch.MinHash(num_perm,
  seed, scheme=...)`` does (``numpy.random.RandomState(seed)``) and applies them to every shingle
  hash of a batch at once (one ``(shingles × num_perm)`` block per chunk, ``np.minimum.reduceat``
  per document), so the signatures are bit-identical to datasketch's given the same shingle hash
  values. Both datasketch 2.0 schemes are supported:

  - ``affine32`` (default, datasketch 2.0's default): the 32-bit hash is pre-mixed with the
    MurmurHash3 finalizer, then ``a*h + b mod 2^32`` with odd ``a``: a bijection, so the
    permutation cannot add collisions (``legacy`` inflates estimates on large sets, datasketch
    issue 212); values are uint32 (half the memory and shuffle bytes); and uint32 arithmetic is
    about twice as fast here as the uint64 modulo of ``legacy``.
  - ``legacy``: ``(a*h + b) mod (2^61 - 1)`` truncated to 32 bits, stored as uint64: what
    datasketch < 2.0 produced, for users who keep older sketches or indexes.
* **LSH.** ``lsh_params`` picks (bands, rows) for a Jaccard threshold exactly as
  ``datasketch.MinHashLSH`` does: a grid search minimising the weighted false-positive and
  false-negative areas under the S-curve, with weights (0.5, 0.5). The integrands are
  polynomials of degree at most ``num_perm``, so a Gauss-Legendre rule of that order integrates
  them exactly instead of scipy's ``quad`` (no scipy at run time). ``band_keys`` hashes each band
  of a signature to 64 bits (datasketch keys its buckets by the band's raw bytes; a 64-bit key
  only adds false candidates with probability 2^-64, which verification removes).
* **Verification.** ``estimated_jaccard`` (share of equal signature values, datasketch's
  ``MinHash.jaccard``) or ``exact_jaccard`` of the two shingle hash sets.
* **Keepers.** ``keeper_rank`` gives the total order a cluster's keeper is the minimum of:
  smallest ``(doc_id, source_path, source_offset)``, or longest text then that.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum

import numpy as np
import xxhash
from numpy.polynomial.legendre import leggauss


class ShingleKind(StrEnum):
    WORD = "word"
    CHAR = "char"


class Scheme(StrEnum):
    AFFINE32 = "affine32"
    LEGACY = "legacy"


class KeeperPolicy(StrEnum):
    SMALLEST_DOC_ID = "smallest_doc_id"
    LONGEST_TEXT = "longest_text"


_U64 = np.uint64
_MASK64 = (1 << 64) - 1
_WORD = re.compile(r"\w+")
_SEP = "\x00"  # cannot occur inside a \w+ token; joins tokens for one encode() per text

# Per-position odd multipliers of the n-gram combination (from a fixed generator, so they never
# change between releases: changing them changes every signature).
_MAX_NGRAM = 64
_POSITION_MULTIPLIERS = np.random.RandomState(0x5EED).randint(0, 1 << 62, _MAX_NGRAM, dtype=np.uint64) * _U64(2) + _U64(1)
_BAND_MULTIPLIERS_SEED = 0xBA4D
_CHAR_SALT = 0x9E3779B97F4A7C15

# datasketch's constants (datasketch/minhash.py).
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH_32 = np.uint64((1 << 32) - 1)
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35), np.uint32(16))
_FMIX64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(33), np.uint64(0xC4CEB9FE1A85EC53), np.uint64(33))


def _fmix(hv: np.ndarray, constants: tuple) -> np.ndarray:
    """MurmurHash3 finalizer (datasketch's ``_fmix``): a bijective avalanche on uint32/uint64 arrays."""
    s1, m1, s2, m2, s3 = constants
    hv = hv ^ (hv >> s1)
    hv = hv * m1
    hv = hv ^ (hv >> s2)
    hv = hv * m2
    return hv ^ (hv >> s3)


def _fmix64_int(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _MASK64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _MASK64
    return x ^ (x >> 33)


# --- shingles ----------------------------------------------------------------


def tokens(text: str, kind: ShingleKind | str = ShingleKind.WORD) -> list[str]:
    """The units shingles are made of: lower-cased ``\\w+`` words, or the characters of the
    lower-cased text with every whitespace run collapsed to one space."""
    if ShingleKind(kind) is ShingleKind.WORD:
        return _WORD.findall(text.lower())
    return list(" ".join(text.lower().split()))


def has_shingles(text: str, kind: ShingleKind | str = ShingleKind.WORD) -> bool:
    """Whether the text has at least one token (and so at least one shingle)."""
    if ShingleKind(kind) is ShingleKind.WORD:
        return _WORD.search(text) is not None
    return bool(text.strip())


def shingles(text: str, ngram: int, kind: ShingleKind | str = ShingleKind.WORD) -> list[tuple[str, ...]]:
    """The shingles of a text as token tuples, in order, repeats included (reference / inspection)."""
    toks = tokens(text, kind)
    if not toks:
        return []
    if len(toks) < ngram:
        return [tuple(toks)]
    return [tuple(toks[i:i + ngram]) for i in range(len(toks) - ngram + 1)]


def _token_hash_int(token: str, kind: ShingleKind) -> int:
    if kind is ShingleKind.WORD:
        return xxhash.xxh3_64_intdigest(token.encode("utf-8"))
    return _fmix64_int(ord(token) ^ _CHAR_SALT)


def shingle_hash(shingle: Sequence[str], kind: ShingleKind | str = ShingleKind.WORD) -> int:
    """The 32-bit hash value of one shingle, computed in plain Python.

    Equal to what ``shingle_hashes`` computes in numpy: pass
    ``hashfunc=lambda s: shingle_hash(s)`` to ``datasketch.MinHash`` and update it with the
    tuples from ``shingles`` to get our signatures.
    """
    kind = ShingleKind(kind)
    if not 0 < len(shingle) <= _MAX_NGRAM:
        raise ValueError(f"a shingle has 1 to {_MAX_NGRAM} tokens, got {len(shingle)}")
    acc = 0
    for j, tok in enumerate(shingle):
        acc = (acc + _token_hash_int(tok, kind) * int(_POSITION_MULTIPLIERS[j])) & _MASK64
    return _fmix64_int(acc) >> 32


def _token_hashes(texts: Sequence[str], kind: ShingleKind) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hash of every token of every text, concatenated; token offsets per text)."""
    if kind is ShingleKind.WORD:
        per_text = [_WORD.findall(t.lower()) for t in texts]
        counts = np.fromiter((len(t) for t in per_text), dtype=np.int64, count=len(per_text))
        joined = _SEP.join(tok for toks in per_text for tok in toks)
        parts = joined.encode("utf-8").split(b"\x00") if joined else []
        hashes = np.fromiter(map(xxhash.xxh3_64_intdigest, parts), dtype=np.uint64, count=len(parts))
    else:
        cleaned = [" ".join(t.lower().split()) for t in texts]
        counts = np.fromiter((len(t) for t in cleaned), dtype=np.int64, count=len(cleaned))
        code_points = np.frombuffer("".join(cleaned).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        hashes = _fmix(code_points ^ _U64(_CHAR_SALT), _FMIX64)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return hashes, offsets


def shingle_hashes(texts: Sequence[str], ngram: int = 5,
                   kind: ShingleKind | str = ShingleKind.WORD) -> tuple[np.ndarray, np.ndarray]:
    """32-bit shingle hash values of a batch of texts, vectorised.

    Returns ``(values, offsets)``: ``values[offsets[i]:offsets[i+1]]`` are text ``i``'s shingle
    hashes in order (repeats included; MinHash ignores them), as uint32.
    """
    kind = ShingleKind(kind)
    if not 0 < ngram <= _MAX_NGRAM:
        raise ValueError(f"ngram must be between 1 and {_MAX_NGRAM}, got {ngram}")
    h, tok_off = _token_hashes(texts, kind)
    n_tok = np.diff(tok_off)
    # Full windows: combine the whole concatenation, then keep the windows inside one text.
    acc = np.zeros(max(len(h) - ngram + 1, 0), dtype=np.uint64)
    for j in range(ngram):
        acc += h[j:j + len(acc)] * _POSITION_MULTIPLIERS[j]
    n_sh = np.where(n_tok >= ngram, n_tok - ngram + 1, np.minimum(n_tok, 1))
    sh_off = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(n_sh, out=sh_off[1:])
    # Shingle k of text i starts at token tok_off[i] + (k - sh_off[i]).
    starts = np.repeat(tok_off[:-1] - sh_off[:-1], n_sh) + np.arange(int(sh_off[-1]), dtype=np.int64)
    combined = acc[np.minimum(starts, max(len(acc) - 1, 0))] if len(acc) else np.zeros(len(starts), np.uint64)
    for i in np.flatnonzero((n_tok > 0) & (n_tok < ngram)):  # short text: one shingle of all its tokens
        k = int(n_tok[i])
        combined[sh_off[i]] = np.sum(h[tok_off[i]:tok_off[i] + k] * _POSITION_MULTIPLIERS[:k], dtype=np.uint64)
    values = (_fmix(combined, _FMIX64) >> _U64(32)).astype(np.uint32)
    return values, sh_off


# --- signatures ----------------------------------------------------------------


class MinHasher:
    """MinHash signatures of many documents at once, bit-identical to ``datasketch.MinHash``.

    ``MinHasher(num_perm, seed, scheme).signatures(values, offsets)`` equals, row by row,
    ``datasketch.MinHash(num_perm, seed, scheme=scheme, hashfunc=f)`` updated with shingles whose
    ``f(shingle)`` are those values.
    """

    def __init__(self, num_perm: int = 128, seed: int = 1, scheme: Scheme | str = Scheme.AFFINE32,
                 chunk_elements: int = 1 << 18) -> None:
        if num_perm < 1:
            raise ValueError("num_perm must be positive")
        self.num_perm = num_perm
        self.seed = seed
        self.scheme = Scheme(scheme)
        self.chunk_rows = max(1, chunk_elements // num_perm)
        gen = np.random.RandomState(seed)
        if self.scheme is Scheme.LEGACY:
            # datasketch draws (a, b) pairs one after the other in a Python loop; so do we.
            pairs = [(gen.randint(1, _MERSENNE_PRIME, dtype=np.uint64), gen.randint(0, _MERSENNE_PRIME, dtype=np.uint64))
                     for _ in range(num_perm)]
            self.a, self.b = np.array(pairs, dtype=np.uint64).T.copy()
            self.dtype: type = np.uint64
            self.empty_value = int(_MAX_HASH_32)
        else:
            self.a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
            self.b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
            self.dtype = np.uint32
            self.empty_value = (1 << 32) - 1

    @property
    def permutations(self) -> np.ndarray:
        """(2, num_perm) array, equal to ``datasketch.MinHash(...).permutations``."""
        return np.array([self.a, self.b])

    def _permute(self, hv: np.ndarray) -> np.ndarray:
        """(num_perm × rows) permuted hash values of a chunk of shingle hashes.

        Permutation-major, so that the per-document minimum is a ``reduceat`` along contiguous
        rows (30× faster in numpy than along axis 0).
        """
        if self.scheme is Scheme.LEGACY:
            phv = np.multiply.outer(self.a, hv.astype(np.uint64))
            phv += self.b[:, None]
            phv %= _MERSENNE_PRIME
            phv &= _MAX_HASH_32
            return phv
        phv = np.multiply.outer(self.a, _fmix(hv.astype(np.uint32), _FMIX32))
        phv += self.b[:, None]
        return phv

    def signatures(self, values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """(documents × num_perm) signatures; a document with no shingle gets the empty signature."""
        n_docs = len(offsets) - 1
        out = np.full((n_docs, self.num_perm), self.empty_value, dtype=self.dtype)
        total = int(offsets[-1]) if n_docs else 0
        for c0 in range(0, total, self.chunk_rows):
            c1 = min(c0 + self.chunk_rows, total)
            phv = self._permute(values[c0:c1])
            inner = offsets[(offsets > c0) & (offsets < c1)]
            starts = np.unique(np.concatenate(([c0], inner)))
            docs = np.searchsorted(offsets, starts, side="right") - 1
            reduced = np.minimum.reduceat(phv, starts - c0, axis=1).T
            out[docs] = np.minimum(out[docs], reduced)
        return out

    def signature(self, values: Iterable[int]) -> np.ndarray:
        """The signature of one document from its shingle hash values."""
        arr = np.fromiter(values, dtype=np.uint64).astype(np.uint32 if self.scheme is Scheme.AFFINE32 else np.uint64)
        return self.signatures(arr, np.array([0, len(arr)], dtype=np.int64))[0]

    def is_empty(self, signature: np.ndarray) -> bool:
        return bool(np.all(signature == self.empty_value))


def pack_signature(signature: np.ndarray) -> bytes:
    """Signature bytes for shuffling: uint32 little-endian (legacy values fit in 32 bits too)."""
    return signature.astype("<u4").tobytes()


def unpack_signature(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u4")


# --- LSH -------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)) -> tuple[int, int]:
    """(bands, rows) minimising ``fp_weight * FP + fn_weight * FN``, as ``datasketch.MinHashLSH``.

    FP = ∫_0^t P(candidate | s) ds and FN = ∫_t^1 P(not candidate | s) ds with
    P(candidate | s) = 1 - (1 - s^r)^b; same grid (b in 1..num_perm, r in 1..num_perm // b), same
    strict ``<`` tie-breaking, so the same choice.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    fp_w, fn_w = weights
    nodes, node_w = leggauss(num_perm // 2 + 2)  # exact for polynomials of degree <= num_perm + 3

    def integral(lo: float, hi: float, b: int, r: int, negate: bool) -> float:
        s = (hi - lo) / 2 * nodes + (hi + lo) / 2
        p = 1 - (1 - s ** float(r)) ** float(b)
        return float((hi - lo) / 2 * np.sum(node_w * ((1 - p) if negate else p)))

    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            error = integral(0.0, threshold, b, r, False) * fp_w + integral(threshold, 1.0, b, r, True) * fn_w
            if error < best:
                best, opt = error, (b, r)
    return opt


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents × bands) uint64 bucket keys: a 64-bit hash of each band's ``rows`` values.

    Band ``i`` covers signature values ``[i*rows, (i+1)*rows)`` as in datasketch (values past
    ``bands * rows`` are unused). Callers keep the band index next to the key.
    """
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"{bands} bands × {rows} rows > {signatures.shape[1]} signature values")
    mult = np.random.RandomState(_BAND_MULTIPLIERS_SEED).randint(0, 1 << 62, rows, dtype=np.uint64) * _U64(2) + _U64(1)
    sig = signatures[:, : bands * rows].astype(np.uint64).reshape(len(signatures), bands, rows)
    acc = np.sum(sig * mult, axis=2, dtype=np.uint64)
    return _fmix(acc, _FMIX64)


# --- verification and keepers -----------------------------------------------------


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Share of equal signature values: datasketch's ``MinHash.jaccard``."""
    return float(np.count_nonzero(sig_a == sig_b)) / float(len(sig_a))


def shingle_set(values: np.ndarray) -> np.ndarray:
    """Sorted distinct shingle hash values (what ``exact_jaccard`` compares)."""
    return np.unique(values)


def exact_jaccard(set_a: np.ndarray, set_b: np.ndarray) -> float:
    """Jaccard similarity of two ``shingle_set`` arrays."""
    if len(set_a) == 0 and len(set_b) == 0:
        return 1.0
    inter = len(np.intersect1d(set_a, set_b, assume_unique=True))
    return inter / (len(set_a) + len(set_b) - inter)


def true_jaccard(text_a: str, text_b: str, ngram: int = 5, kind: ShingleKind | str = ShingleKind.WORD) -> float:
    """Exact Jaccard of two texts' shingle sets (as token tuples; for evaluation)."""
    a, b = set(shingles(text_a, ngram, kind)), set(shingles(text_b, ngram, kind))
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


Rank = tuple[int | str, ...]


def keeper_rank(policy: KeeperPolicy | str, doc_id: str, source_path: str, source_offset: int,
                n_chars: int) -> Rank:
    """The key a cluster's keeper minimises: a total order, so arrival order never matters."""
    if KeeperPolicy(policy) is KeeperPolicy.LONGEST_TEXT:
        return (-n_chars, doc_id, source_path, source_offset)
    return (doc_id, source_path, source_offset)
