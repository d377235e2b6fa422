"""`toxsieve run` prints a run-wide progress line: files and bytes done of the totals, a percentage,
a recent rate, the reading ETA and the stage; --quiet silences it; no marker is left in the output."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO_CONFIG, SAMPLE_GLOBS, SAMPLE_INPUTS

pytestmark = pytest.mark.e2e

LINE = re.compile(r"progress \[\S+\] (?P<stage>[^:]+): files (?P<done>\d+)/(?P<total>\d+), "
                  r"(?P<bytes>[\d.]+ [KMG]?B) / (?P<bytes_total>[\d.]+ [KMG]?B) \((?P<pct>[\d.]+)%\), "
                  r"(?P<rate>\S+ [KMG]?B|\?)/s \(last 60s\), reading ETA (?P<eta>\S+)")


def _cli(out: Path, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = ["run", "--output", str(out), "--config", str(config), *extra, *SAMPLE_INPUTS]
    script = f"import sys\nfrom toxsieve.pipelines.cli.main import main\nsys.exit(main({argv!r}))\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)


def test_run_prints_true_progress_lines(tmp_path: Path) -> None:
    cfg = yaml.safe_load(DEMO_CONFIG.read_text())
    cfg["run"] = {"progress_interval_s": 0.2}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    result = _cli(tmp_path / "out", config)
    assert result.returncode == 0, result.stderr
    lines = [m for m in map(LINE.search, result.stderr.splitlines()) if m]
    assert lines, result.stderr
    n_files = len([p for g in SAMPLE_GLOBS for p in Path(g).parent.parent.glob(f"*/{Path(g).name}")])
    assert all(int(m["total"]) == n_files for m in lines)
    done = [int(m["done"]) for m in lines]
    assert done == sorted(done)  # never goes back
    last = lines[-1]
    assert int(last["done"]) == n_files and last["pct"] == "100.0" and last["eta"] == "0s"
    assert last["bytes"] == last["bytes_total"]
    assert last["stage"] == "verifying outputs, writing stats and manifest"  # the job is over
    stages = {m["stage"] for m in lines} - {last["stage"], "pass 1/3 signals (read, extract, filter, score)"}
    assert all(re.fullmatch(rf"passes 2-3/3 dedup decisions and outputs, \d+/{n_files} files written", stage)
               for stage in stages), stages
    assert not (tmp_path / "out" / ".progress").exists()
    assert (tmp_path / "out" / "manifest.json").is_file()

    quiet = _cli(tmp_path / "quiet", config, "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "progress [" not in quiet.stderr
