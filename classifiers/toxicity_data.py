"""The labeled toxicity data shipped in ``classifiers/data/toxicity/``, read into one binary table.

Every source becomes ``Example(text, label, source)`` with label 1 = toxic. The held-out / dev /
train split is made by hashing the normalised text (xxh3-64), so it never depends on file order,
on which sources are loaded, or on a random seed: the same text is in the same split everywhere.
"""

from __future__ import annotations

import csv
import gzip
import io
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import xxhash

SHIPPED_DATA_DIR = Path(__file__).parent / "data" / "toxicity"
SHIPPED_HELDOUT = SHIPPED_DATA_DIR / "heldout.csv.gz"

# Hash buckets (of 100): 10 % held out for the model card, 10 % dev for choosing hyper-parameters.
HELDOUT_BUCKETS = range(0, 10)
DEV_BUCKETS = range(10, 20)
SPLITS = ("train", "dev", "heldout")

# Source name -> (folder, file names tried in order). ``web_comments`` rows carry their domain as
# the source (wikipedia_jigsaw, wikipedia_cat, civil_comments, stormfront_forum).
SOURCE_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "web_comments": ("web_comments", ("combined_binary_dedup.csv.gz", "combined_binary_dedup.csv")),
    "germeval": ("germeval2018_de", ("germeval2018.training.txt.gz", "germeval2018.training.txt",
                                     "germeval2018.test.txt.gz", "germeval2018.test.txt")),
    "davidson": ("davidson2017", ("labeled_data.csv.gz", "data_labeled_data.csv", "labeled_data.csv")),
}
# The permissively licensed multilingual sources (multilingual/README.md): one file, one source each.
MULTILINGUAL_FILE = ("multilingual", ("permissive.csv.gz", "permissive.csv"))
MULTILINGUAL_SOURCES: dict[str, str] = {  # source -> language
    "told_br_pt": "pt", "cold_zh": "zh", "mlma_ar": "ar", "mlma_fr": "fr", "poleval2019_cbd_pl": "pl",
}
SOURCE_FILES.update({name: MULTILINGUAL_FILE for name in MULTILINGUAL_SOURCES})
# Every training source's license, as its PROVENANCE.md states it: model cards and training.json list
# these, and a test holds every shipped model to the permissive ones.
SOURCE_LICENSES: dict[str, str] = {
    "web_comments": "CC0 1.0 / CC BY-SA 3.0 / Apache-2.0 labels (per domain: web_comments/LICENSE.md)",
    "germeval": "CC BY 4.0",
    "told_br_pt": "CC BY-SA 4.0", "cold_zh": "Apache-2.0", "mlma_ar": "MIT", "mlma_fr": "MIT",
    "poleval2019_cbd_pl": "BSD-3-Clause",
}


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 1 toxic, 0 not
    source: str


def split_key(text: str) -> str:
    """What the split hash is taken of: NFKC, lower-cased, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def split_of(text: str) -> str:
    bucket = xxhash.xxh3_64_intdigest(split_key(text).encode("utf-8")) % 100
    if bucket in HELDOUT_BUCKETS:
        return "heldout"
    if bucket in DEV_BUCKETS:
        return "dev"
    return "train"


CONTESTED_CIVIL = "civil_comments_contested"


def load_sources(data_dir: str | Path, sources: Iterable[str], *,
                 drop_contested_civil: bool = False) -> list[Example]:
    """All rows of the named sources, de-duplicated on the split key (first occurrence wins, in
    source order), with empty texts dropped.

    Civil Comments rows labeled 0 come from the Toxic Spans set, whose posts had all been rated
    toxic: their 0 means "contested", not clean. They get their own source name,
    ``civil_comments_contested``, and ``drop_contested_civil`` leaves them out."""
    data_dir = Path(data_dir)
    seen: set[str] = set()
    out: list[Example] = []
    for source in sources:
        if source not in SOURCE_FILES:
            raise ValueError(f"unknown toxicity data source {source!r}; known: {sorted(SOURCE_FILES)}")
        for example in _read_source(data_dir, source):
            if example.source == "civil_comments" and example.label == 0:
                if drop_contested_civil:
                    continue
                example = Example(example.text, 0, CONTESTED_CIVIL)
            key = split_key(example.text)
            if key and key not in seen:
                seen.add(key)
                out.append(example)
    return out


def _read_source(data_dir: Path, source: str) -> Iterator[Example]:
    folder, names = SOURCE_FILES[source]
    paths = _existing(data_dir / folder, names)
    if not paths:
        raise FileNotFoundError(f"no data for source {source!r} in {data_dir / folder} (expected one of {names})")
    if source == "web_comments":
        with _open_text(paths[0]) as fh:
            for row in csv.DictReader(fh):
                yield Example(row["text"], int(row["label"]), row["domain"])
    elif source == "germeval":
        for path in paths:
            with _open_text(path) as fh:
                for line in fh:
                    parts = line.rstrip("\r\n").split("\t")
                    if len(parts) >= 2:
                        yield Example(parts[0], int(parts[1] == "OFFENSE"), "germeval_de")
    elif source in MULTILINGUAL_SOURCES:
        with _open_text(paths[0]) as fh:
            for row in csv.DictReader(fh):
                if row["source"] == source:
                    yield Example(row["text"], int(row["label"]), source)
    elif source == "davidson":
        with _open_text(paths[0]) as fh:
            for row in csv.DictReader(fh):
                # class 0 hate speech, 1 offensive language, 2 neither
                yield Example(row["tweet"], int(row["class"] != "2"), "davidson_tweets")


def _existing(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """The files to read: a .gz and its plain twin count once (the first found)."""
    found: list[Path] = []
    stems: set[str] = set()
    for name in names:
        stem = name.removesuffix(".gz")
        if stem not in stems and (folder / name).is_file():
            stems.add(stem)
            found.append(folder / name)
    return found


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_multilingual_csv(path: str | Path, sources: Iterable[str] | None = None) -> list[Example]:
    """Rows of a ``text,label,lang,source`` CSV (the multilingual ``combined.csv.gz``), optionally only
    the named sources; the source name is kept."""
    wanted = set(sources) if sources is not None else None
    with _open_text(Path(path)) as fh:
        return [Example(row["text"], int(row["label"]), row["source"]) for row in csv.DictReader(fh)
                if wanted is None or row["source"] in wanted]


def read_labeled_csv(path: str | Path) -> list[Example]:
    """A ``text,label,source`` CSV (optionally .gz), as written by ``write_labeled_csv``."""
    with _open_text(Path(path)) as fh:
        return [Example(row["text"], int(row["label"]), row["source"]) for row in csv.DictReader(fh)]


def write_labeled_csv(examples: Iterable[Example], path: str | Path) -> None:
    """A deterministic ``text,label,source`` CSV.gz (mtime 0 in the gzip header)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz, \
            io.TextIOWrapper(gz, encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["text", "label", "source"])
        for example in examples:
            writer.writerow([example.text, example.label, example.source])
