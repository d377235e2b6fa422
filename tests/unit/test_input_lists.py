"""--input-list files (Common Crawl's *.paths.gz) and the remote-filesystem check, before any work."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from toxsieve.pipelines.io import input_lists
from toxsieve.pipelines.io.input_lists import (
    InputListError,
    check_filesystems,
    parse_path_list,
    read_path_list,
    resolve_entry,
)


def _shards(root: Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_gz_list_resolves_relative_entries_against_its_own_directory(tmp_path: Path) -> None:
    names = [f"crawl-data/CC-MAIN-2024-10/segments/{i}/wet/CC-{i:05d}.warc.wet.gz" for i in range(3)]
    _shards(tmp_path, names)
    listing = tmp_path / "wet.paths.gz"
    with gzip.open(listing, "wt") as handle:
        handle.write("# Common Crawl style list\n\n" + "\n".join(names) + "\n")
    assert read_path_list(str(listing)) == [str(tmp_path / n) for n in names]


def test_plain_list_with_base_comments_and_absolute_entries(tmp_path: Path) -> None:
    _shards(tmp_path / "base", ["a/1.jsonl", "b/2.jsonl"])
    _shards(tmp_path / "elsewhere", ["3.jsonl"])
    listing = tmp_path / "lists" / "paths.txt"
    listing.parent.mkdir()
    listing.write_text(f"a/1.jsonl\n  # indented comment\n   \n b/2.jsonl \n{tmp_path / 'elsewhere' / '3.jsonl'}\n")
    assert read_path_list(str(listing), base=str(tmp_path / "base")) == [
        str(tmp_path / "base" / "a" / "1.jsonl"), str(tmp_path / "base" / "b" / "2.jsonl"),
        str(tmp_path / "elsewhere" / "3.jsonl")]


def test_missing_entry_is_an_error_naming_its_line(tmp_path: Path) -> None:
    _shards(tmp_path, ["one.jsonl"])
    listing = tmp_path / "paths.txt"
    listing.write_text("# header\none.jsonl\n\ntwo.jsonl\n")
    with pytest.raises(InputListError, match=r"line 4: .*two\.jsonl does not exist"):
        read_path_list(str(listing))


def test_missing_or_empty_or_binary_list_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputListError, match="does not exist"):
        read_path_list(str(tmp_path / "nope.paths.gz"))
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    with pytest.raises(InputListError, match="names no path"):
        read_path_list(str(tmp_path / "empty.txt"))
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x9c")
    with pytest.raises(InputListError, match="cannot be read"):
        read_path_list(str(tmp_path / "bin.txt"))


def test_resolve_entry_against_a_url_base() -> None:
    assert resolve_entry("crawl-data/x.warc.gz", "s3://commoncrawl/") == "s3://commoncrawl/crawl-data/x.warc.gz"
    assert resolve_entry("crawl-data/x.warc.gz", "gs://b/cc") == "gs://b/cc/crawl-data/x.warc.gz"
    assert resolve_entry("gs://other/y.warc.gz", "s3://commoncrawl/") == "gs://other/y.warc.gz"
    assert resolve_entry("/abs/z.jsonl", "/base") == "/abs/z.jsonl"
    assert parse_path_list("#c\n\na\n", "/b") == [(3, "/b/a")]


@pytest.mark.parametrize(("path", "extra"), [("gs://bucket/out", "toxsieve[gcp]"), ("s3://bucket/in/*.warc.gz", "toxsieve[aws]"),
                                             ("azfs://acct/c/x", "apache-beam[azure]")])
def test_remote_location_without_its_extra_names_the_extra(path: str, extra: str) -> None:
    module = input_lists.REMOTE_FILESYSTEMS[path.split(":")[0]][0]
    if input_lists.module_available(module):  # the dev venv has none of them
        pytest.skip(f"{module} is installed here")
    with pytest.raises(InputListError, match=re.escape(extra)):
        check_filesystems(["/tmp/local/in.jsonl", path])


def test_unknown_scheme_and_local_paths(tmp_path: Path) -> None:
    check_filesystems([str(tmp_path / "in.jsonl"), "relative/out", "C:/not-a-scheme"])  # no error
    with pytest.raises(InputListError, match="no filesystem for nosuch://"):
        check_filesystems(["nosuch://x/y"])
