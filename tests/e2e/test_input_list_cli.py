"""`toxsieve run --input-list` on a generated Common Crawl-style paths.gz, and clear exit-2 errors."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import CRAWL, DEMO_CONFIG
from toxsieve.pipelines.cli.main import main

pytestmark = pytest.mark.e2e


def _argv(out: Path | str, *extra: str) -> list[str]:
    return ["run", "--output", str(out), "--quiet", "--run-id", "t", "--config", str(DEMO_CONFIG), *extra]


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """The shipped sample's WARC/WET shards under a crawl-data/ tree, as in a Common Crawl bucket."""
    root = tmp_path / "bucket"
    for i, shard in enumerate(sorted([*CRAWL.glob("*/*.warc.gz"), *CRAWL.glob("*/*.warc.wet.gz")])):
        dest = root / "crawl-data" / f"segment-{i}" / shard.name
        dest.parent.mkdir(parents=True)
        shutil.copy(shard, dest)
    return root


def test_input_list_reads_the_same_documents_as_the_paths(mirror: Path, tmp_path: Path) -> None:
    shards = sorted(p.relative_to(mirror).as_posix() for p in mirror.rglob("*.gz"))
    listing = tmp_path / "lists" / "warc.paths.gz"
    listing.parent.mkdir()
    with gzip.open(listing, "wt") as handle:
        handle.write("# generated\n" + "\n".join(shards) + "\n\n")
    assert main(_argv(tmp_path / "by_list", "--input-list", str(listing), "--input-base", str(mirror))) == 0
    assert main(_argv(tmp_path / "by_glob", "--input", str(mirror / "crawl-data" / "*" / "*.gz"))) == 0
    by_list = json.loads((tmp_path / "by_list" / "manifest.json").read_text())
    by_glob = json.loads((tmp_path / "by_glob" / "manifest.json").read_text())
    assert by_list["inputs"]["files"] == by_glob["inputs"]["files"] and len(by_list["inputs"]["files"]) == len(shards)
    assert by_list["summary"] == by_glob["summary"] and by_list["summary"]["read"] > 0
    stats = [json.loads((tmp_path / d / "stats.json").read_text()) for d in ("by_list", "by_glob")]
    assert stats[0]["removed_by_stage"] == stats[1]["removed_by_stage"]


def test_bad_list_entry_exits_2_before_any_work(mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    listing = tmp_path / "paths.txt"
    listing.write_text("crawl-data/segment-0/missing.warc.gz\n")
    out = tmp_path / "out"
    assert main(_argv(out, "--input-list", str(listing), "--input-base", str(mirror))) == 2
    assert "line 1" in capsys.readouterr().err and not out.exists()
    assert main(_argv(out, "--input-list", str(tmp_path / "absent.paths.gz"))) == 2
    assert "absent.paths.gz does not exist" in capsys.readouterr().err
    assert main(["run", "--output", str(out), "--quiet"]) == 2
    assert "needs --input or --input-list" in capsys.readouterr().err and not out.exists()


def test_gs_output_without_the_gcp_extra_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from toxsieve.pipelines.io.input_lists import module_available

    if module_available("google.cloud.storage"):
        pytest.skip("the gcp extra is installed here")
    sample = str(CRAWL / "*" / "*.warc.wet.gz")
    assert main(_argv("gs://bucket/run1", "--input", sample)) == 2
    err = capsys.readouterr().err
    assert "toxsieve[gcp]" in err and "Traceback" not in err
    assert main(_argv(tmp_path / "o", "--input", "s3://commoncrawl/crawl-data/x.warc.gz")) == 2
    assert "toxsieve[aws]" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_flex_template_launcher_runs_toxsieve_with_its_parameters(tmp_path: Path) -> None:
    from toxsieve.pipelines.cli.flex_template import main as launcher

    listing = tmp_path / "paths.txt"
    listing.write_text(str(CRAWL / "whirlwind_cc2024" / "whirlwind.warc.wet.gz") + "\n")
    out = tmp_path / "flex"
    assert launcher([f"--input_list={listing}", f"--output={out}", f"--config={DEMO_CONFIG}", "--run_id=flex-1",
                     "--overwrite=false", "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run_id"] == "flex-1" and manifest["summary"]["read"] > 0
