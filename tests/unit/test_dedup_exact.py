"""resolve_exact_duplicates: one keeper per identical text, chosen by a total order, never by arrival."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from toxsieve.pipelines.document import Document
from toxsieve.pipelines.stages.dedup_exact import resolve_exact_duplicates
from toxsieve.schemas import Reason, Stage


def _doc(doc_id: str, path: str = "s.jsonl", offset: int = 0) -> Document:
    return Document(doc_id, path, offset, "jsonl", text="same text", text_hash="hash-of-same-text")


def _identity(doc: Document) -> tuple[str, str, int]:
    return doc.sort_key()


DOC_IDS = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=12, unique=True)


@settings(max_examples=150, deadline=None)
@given(ids=DOC_IDS, data=st.data())
def test_keeper_is_the_smallest_doc_id_whatever_the_order(ids: list[str], data: st.DataObject) -> None:
    group = [_doc(i, offset=n) for n, i in enumerate(ids)]
    shuffled = data.draw(st.permutations(group))
    out = list(resolve_exact_duplicates(shuffled))

    keeper_id = min(ids)
    kept = [d for d in out if d.kept]
    removed = [d for d in out if not d.kept]
    assert [d.doc_id for d in kept] == [keeper_id]
    for doc in removed:
        assert doc.removal is not None
        assert (doc.removal.stage, doc.removal.reason) == (Stage.EXACT_DEDUP, Reason.EXACT_DUPLICATE)
        assert doc.removal.duplicate_of == keeper_id
        assert keeper_id in (doc.removal.detail or "")
    # kept ∪ removed == input, each exactly once
    assert Counter(map(_identity, out)) == Counter(map(_identity, group))
    # and the result does not depend on the arrival order
    assert sorted(out, key=_identity) == sorted(resolve_exact_duplicates(group), key=_identity)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["p1", "p2"]), st.integers(0, 3)),
                min_size=1, max_size=10, unique=True), st.randoms())
def test_ties_on_doc_id_break_on_source(keys: list[tuple[str, str, int]], rnd: random.Random) -> None:
    group = [_doc(i, p, o) for i, p, o in keys]
    rnd.shuffle(group)
    out = list(resolve_exact_duplicates(group))
    kept = [d for d in out if d.kept]
    assert [d.sort_key() for d in kept] == [min(keys)]
    assert len(out) == len(group)


def test_single_document_is_kept_and_empty_group_yields_nothing() -> None:
    only = _doc("x")
    assert list(resolve_exact_duplicates([only])) == [only]
    assert list(resolve_exact_duplicates([])) == []


def test_keeper_is_returned_unchanged_and_removed_drop_their_html() -> None:
    a = Document("a", "s.warc", 10, "warc", html=None, text="t", text_hash="h")
    b = Document("b", "s.warc", 5, "warc", html=b"<p>t</p>", text="t", text_hash="h")
    out = {d.doc_id: d for d in resolve_exact_duplicates([b, a])}
    assert out["a"] is a
    assert out["b"].html is None and out["b"].text == "t"  # the audit keeps the text, not the payload


class ReIterable:
    """Like Beam's grouped values: iterable more than once, no len(), no indexing, not a list."""

    def __init__(self, docs: list[Document]) -> None:
        self._docs = tuple(docs)
        self.passes = 0
        self.pulled: list[int] = []

    def __iter__(self) -> Iterator[Document]:
        self.passes += 1
        self.pulled.append(0)
        for doc in self._docs:
            self.pulled[-1] += 1
            yield doc


def test_works_on_a_reiterable_that_is_not_a_list() -> None:
    docs = [_doc(f"id{n:02d}", offset=n) for n in (7, 3, 9, 1, 5)]
    group = ReIterable(docs)
    out = resolve_exact_duplicates(group)
    assert group.passes == 0, "nothing is read before the caller asks"
    first = next(out)
    # One pass to find the keeper, then output streams: the second pass has read one element.
    assert group.passes == 2 and group.pulled == [5, 1]
    rest = list(out)
    assert group.passes == 2
    result = [first, *rest]
    assert [d.doc_id for d in result] == [d.doc_id for d in docs]
    assert [d.doc_id for d in result if d.kept] == ["id01"]
