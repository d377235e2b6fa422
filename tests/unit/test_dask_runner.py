"""toxsieve's DaskRunner keeps what Beam 2.77's loses (docs/dask.md): finish_bundle outputs, one
output list per bundle, tagged outputs to their own consumers, side inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

pytest.importorskip("distributed")

from toxsieve.pipelines.runtime.dask_runner import DaskRunner, stable_key_hash  # noqa: E402


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    import distributed

    # In-process threads: tasks share the graph's objects, which is where a shared output list shows.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address="127.0.0.1:0") as cluster:
        yield cluster.scheduler_address


def _write(kv: tuple[str, int], directory: str) -> None:
    Path(directory, kv[0]).write_text(json.dumps(kv[1]))


def _run(address: str, build, tmp_path: Path) -> dict:  # type: ignore[no-untyped-def]
    options = PipelineOptions([f"--dask_client_address={address}", "--dask_npartitions=4"])
    with beam.Pipeline(runner=DaskRunner(), options=options) as p:
        build(p) | "Write" >> beam.Map(_write, str(tmp_path))
    return {f.name: json.loads(f.read_text()) for f in tmp_path.iterdir()}


def _total(name: str):  # type: ignore[no-untyped-def]
    return beam.Map(lambda n: (name, n)) | beam.CombinePerKey(sum)


def test_batch_elements_last_batch_is_kept(address: str, tmp_path: Path) -> None:
    def build(p):  # type: ignore[no-untyped-def]
        return (p | beam.Create(range(1000)) | beam.BatchElements(min_batch_size=64, max_batch_size=64)
                | beam.Map(len) | _total("elements"))

    assert _run(address, build, tmp_path) == {"elements": 1000}


class _Parity(beam.DoFn):
    def process(self, n: int) -> Iterator[object]:
        yield n if n % 2 == 0 else beam.pvalue.TaggedOutput("odd", n)


def test_tagged_outputs_go_to_their_own_consumers(address: str, tmp_path: Path) -> None:
    def build(p):  # type: ignore[no-untyped-def]
        outs = p | beam.Create(range(10)) | beam.ParDo(_Parity()).with_outputs("odd", main="even")
        return (outs.even | "E" >> _total("even"), outs.odd | "O" >> _total("odd")) | beam.Flatten()

    assert _run(address, build, tmp_path) == {"even": 0 + 2 + 4 + 6 + 8, "odd": 1 + 3 + 5 + 7 + 9}


def test_side_inputs_and_global_combine(address: str, tmp_path: Path) -> None:
    def build(p):  # type: ignore[no-untyped-def]
        nums = p | "Nums" >> beam.Create(range(1, 101))
        total = nums | beam.CombineGlobally(sum)
        return nums | beam.Map(lambda n, t: n * 100 // t, t=beam.pvalue.AsSingleton(total)) | _total("scaled")

    assert _run(address, build, tmp_path) == {"scaled": sum(n * 100 // 5050 for n in range(1, 101))}


def _seen(n: int, directory: str) -> int:
    """Leaves one file per call: how many times this step really ran."""
    import uuid

    Path(directory, f"seen-{n}-{uuid.uuid4().hex}").touch()
    return n


def test_a_side_input_is_computed_once_not_once_per_bundle(address: str, tmp_path: Path) -> None:
    # Beam 2.77 iterates a side input's bag inside every bundle that reads it: its whole upstream ran
    # again per bundle (in toxsieve, the signals pass, once per bundle of FetchIds and FetchSketches).
    seen = tmp_path / "seen"
    seen.mkdir()
    out = tmp_path / "out"
    out.mkdir()

    def build(p):  # type: ignore[no-untyped-def]
        nums = p | "Nums" >> beam.Create(range(1, 41)) | "Seen" >> beam.Map(_seen, str(seen))
        total = nums | beam.CombineGlobally(sum)
        return nums | beam.Map(lambda n, t: n * 1000 // t, t=beam.pvalue.AsSingleton(total)) | _total("scaled")

    assert _run(address, build, out) == {"scaled": sum(n * 1000 // 820 for n in range(1, 41))}
    assert len(list(seen.iterdir())) == 40


def test_stable_key_hash_does_not_depend_on_the_process() -> None:
    # Python's hash() of str/bytes changes with PYTHONHASHSEED; the partitioning hash must not.
    import subprocess
    import sys

    code = "from toxsieve.pipelines.runtime.dask_runner import stable_key_hash as h; print(h('doc-1'), h((b'k', 3)))"
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout.split()[-2:][0] for seed in ("1", "2")}
    assert seen == {str(stable_key_hash("doc-1"))}
    assert stable_key_hash(b"\x00\x01") != stable_key_hash("\x00\x01")
