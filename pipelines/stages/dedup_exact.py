"""DropExactDuplicates' core: one keeper per identical normalised text, chosen by a total order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from toxsieve.pipelines.document import Document, Removal
from toxsieve.schemas import Reason, Stage


def resolve_exact_duplicates(group: Iterable[Document]) -> Iterator[Document]:
    """Yield every document of one text-hash group: the keeper as is, the others removed.

    ``group`` is iterated twice (Beam's grouped values are re-iterable and may be larger than
    memory), so the result does not depend on arrival order and no list is built.
    """
    keeper: Document | None = None
    for doc in group:
        if keeper is None or doc.sort_key() < keeper.sort_key():
            keeper = doc
    if keeper is None:
        return
    for doc in group:
        if doc is keeper or doc.sort_key() == keeper.sort_key():
            yield doc
        else:
            yield doc.removed(exact_duplicate_removal(keeper.doc_id, keeper.source_path, keeper.source_offset))


def exact_duplicate_removal(keeper_id: str, keeper_path: str, keeper_offset: int) -> Removal:
    """The removal of a document whose normalised text equals that of the keeper."""
    return Removal(Stage.EXACT_DEDUP, Reason.EXACT_DUPLICATE, score=1.0, duplicate_of=keeper_id,
                   detail=f"same normalised text as {keeper_id} ({keeper_path}@{keeper_offset})")
