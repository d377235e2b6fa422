"""Beam's DaskRunner with the bundle fixes toxsieve needs (Beam 2.77; upstream report in docs/dask.md).

Beam 2.77's DaskRunner translates each ParDo into a ``map_partitions`` whose bundle function
collects the DoFn's outputs *before* calling ``finish_bundle`` (so whatever a DoFn emits there,
such as ``BatchElements``' last batch, is dropped), keeps the outputs of every bundle of a ParDo
in one list shared by all its bundles (duplicated outputs wherever the task graph is not
serialised between tasks, e.g. a threaded cluster), hands every tagged output to every
consumer, and computes only the last transform visited. This module translates the pipeline the
same way except for those points:

- one bundle = one dask partition; a fresh DoFn (unpickled) and a fresh output list per bundle;
  outputs are collected after ``finish_bundle``;
- a consumer of a tagged output gets that tag's elements only, the main consumer the rest;
- GroupByKey partitions by a stable 64-bit hash of the pickled key (independent of
  PYTHONHASHSEED on the workers), then groups by the key itself;
- Create spreads its elements over up to 256 partitions (one input file each for a run of
  toxsieve), unless ``--dask_npartitions`` / ``--dask_partition_size`` say otherwise;
- every transform whose output nothing consumes is computed, and only an empty list per
  partition comes back to the driver;
- a side input is one dask dependency (its whole bag, computed once) of every bundle that reads
  it; Beam 2.77 iterates the side input's bag inside each bundle, which computes its whole
  upstream again there, and passing it to ``map_partitions`` as an Item still had dask compute a
  shared upstream twice (once fused into the Item's tasks): each ParDo is a plain graph layer;
- the client is closed after the run when the runner opened it.

``toxsieve run --runner DaskRunner [--dask_client_address HOST:PORT]`` uses it.
"""

from __future__ import annotations

import collections
import math
import pickle
from collections.abc import Iterable, Iterator
from typing import Any

import xxhash
from apache_beam import pvalue
from apache_beam.internal import pickler
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, Receiver, _OutputHandler
from apache_beam.runners.dask.dask_runner import DaskOptions
from apache_beam.runners.dask.dask_runner import DaskRunner as BeamDaskRunner
from apache_beam.runners.dask.overrides import dask_overrides
from apache_beam.runners.runner import PipelineResult, PipelineState
from apache_beam.transforms.core import DoFn
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.utils.windowed_value import WindowedValue

RUNNER_NAMES = ("DaskRunner", "dask", "apache_beam.runners.dask.dask_runner.DaskRunner")
MAX_CREATE_PARTITIONS = 256
MAX_GROUP_PARTITIONS = 64


def dask_installed() -> bool:
    try:
        import dask.bag  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


# --- one bundle ------------------------------------------------------------------------------


class _Tagged:
    """An element of a tagged output, while it travels in its producer's bag."""

    __slots__ = ("tag", "value")

    def __init__(self, tag: str, value: Any) -> None:
        self.tag = tag
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return _Tagged, (self.tag, self.value)


class _Collect(Receiver):
    def __init__(self, tag: str | None, out: list[Any]) -> None:
        self.tag = tag
        self.out = out

    def receive(self, windowed_value: WindowedValue) -> None:
        value = windowed_value.value
        self.out.append(value if self.tag is None else _Tagged(self.tag, value))


class _Receivers(dict):
    """Receivers by output tag, created on first use; all append to one list (this bundle's)."""

    def __init__(self, out: list[Any]) -> None:
        super().__init__()
        self.out = out

    def __missing__(self, tag: str | None) -> _Collect:
        receiver = self[tag] = _Collect(tag, self.out)
        return receiver


def _windowed(item: Any) -> WindowedValue:
    return item if isinstance(item, WindowedValue) else WindowedValue(item, 0, (_global_window(),))


def _global_window() -> Any:
    from apache_beam.transforms.window import GlobalWindow

    return GlobalWindow()


class _SideInputValues:
    """A side input's elements, computed once by dask as a dependency of the bundles that read it
    (Beam 2.77 iterates the side input's bag inside each bundle, which computes its whole upstream
    graph again, the signals pass included, once per bundle)."""

    def __init__(self, values: list[Any], window_fn: Any) -> None:
        self.values = values
        self.window_fn = window_fn

    def __iter__(self) -> Iterator[WindowedValue]:
        from apache_beam.runners.dask.transform_evaluator import get_windowed_value

        for value in self.values:
            yield get_windowed_value(value, self.window_fn)


def _as_list(partition: Iterable[Any]) -> list[Any]:
    return list(partition)


def _concat(parts: Iterable[list[Any]]) -> list[Any]:
    return [x for part in parts for x in part]


def _bundles(source: Any, side_items: list[Any], label: str, payload: bytes) -> Any:
    """A ParDo as one dask task per partition of ``source``, each depending on the whole side inputs.

    Built as a plain graph layer: with ``map_partitions``, a side input's Item derived from the same
    upstream as the main input got that upstream fused into its own tasks, so dask computed it twice
    (for toxsieve, the whole signals pass once more, per side input)."""
    import dask.bag as db
    from dask._task_spec import Task, TaskRef
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    prefix = "".join(c if c.isalnum() else "_" for c in label)[:40]
    name = f"{prefix}-{tokenize(source.name, payload, *(item.key for item in side_items))}"
    refs = [TaskRef(item.key) for item in side_items]
    dsk = {(name, i): Task((name, i), run_bundle, TaskRef((source.name, i)), payload, *refs)
           for i in range(source.npartitions)}
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[source, *side_items])
    return db.Bag(graph, name, source.npartitions)


def run_bundle(items: Iterable[Any], payload: bytes, *side_values: list[Any]) -> list[Any]:
    """Run one bundle of a DoFn: setup, start_bundle, process each item, finish_bundle, teardown.

    ``payload`` pickles (DoFn, window_fn, label, side-input views, args, kwargs); ``side_values`` are
    the side inputs' elements, computed by dask before this task. The outputs are collected after
    ``finish_bundle`` (Beam 2.77 collects them before it), into a list that belongs to this bundle
    alone, from a DoFn instance of its own.
    """
    fn, window_fn, label, side_specs, args, kwargs = pickler.loads(payload)
    side_inputs = [SideInputMap(view, options, _SideInputValues(values, mapping))
                   for (view, options, mapping), values in zip(side_specs, side_values, strict=True)] or None
    out: list[Any] = []
    receivers = _Receivers(out)
    handler = _OutputHandler(
        window_fn=window_fn, main_receivers=receivers[None], tagged_receivers=receivers,
        per_element_output_counter=None, output_batch_converter=None, process_yields_batches=False,
        process_batch_yields_elements=False)
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(fn), handler, context=DoFnContext(label, state=None), side_inputs=side_inputs,
        input_args=args, input_kwargs=kwargs, user_state_context=None,
        bundle_finalizer_param=DoFn.BundleFinalizerParam())
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(_windowed(item))
    invoker.invoke_finish_bundle()
    invoker.invoke_teardown()
    return out


# --- translation -----------------------------------------------------------------------------


def stable_key_hash(key: Any) -> int:
    """A hash of a key that is the same in every process (Python's ``hash`` of str/bytes is not)."""
    return xxhash.xxh3_64_intdigest(pickle.dumps(key, protocol=4))


def _hash_of_key(kv: tuple[Any, Any]) -> int:
    return stable_key_hash(kv[0])


def _split_by_key(item: tuple[int, list[tuple[Any, Any]]]) -> Iterator[tuple[Any, list[Any]]]:
    groups: dict[Any, list[Any]] = collections.defaultdict(list)
    for key, value in item[1]:
        groups[key].append(value)
    yield from groups.items()


def _unwindow(item: Any) -> Any:
    return item.value if isinstance(item, WindowedValue) else item


def _key_value(item: Any) -> tuple[Any, Any]:
    key, value = _unwindow(item)
    return key, _unwindow(value)


def _only_tag(tag: str | None) -> Any:
    if tag is None:
        return lambda x: not isinstance(x, _Tagged)
    return lambda x: isinstance(x, _Tagged) and x.tag == tag


def _untag(x: Any) -> Any:
    return x.value if isinstance(x, _Tagged) else x


def _drain(partition: Iterable[Any]) -> list[Any]:
    for _ in partition:
        pass
    return []


class _BagVisitor(PipelineVisitor):
    """Each leaf transform → a dask bag; records which outputs nothing consumes."""

    def __init__(self, bag_kwargs: dict[str, Any]) -> None:
        self.bag_kwargs = bag_kwargs
        self.bags: dict[AppliedPTransform, Any] = {}
        self.consumed: set[AppliedPTransform] = set()
        self.order: list[AppliedPTransform] = []
        # Every GroupByKey ends in this many partitions: a Flatten adds its inputs' partitions up,
        # and a shuffle's cost grows with them, so they are brought back to a fixed count here.
        self.group_partitions = bag_kwargs.get("npartitions") or 0

    def visit_transform(self, node: AppliedPTransform) -> None:
        import apache_beam as beam
        from apache_beam.runners.dask.overrides import _Create, _Flatten, _GroupByKeyOnly

        inputs = [self._input(pc) for pc in node.inputs if not isinstance(pc, pvalue.PBegin)]
        inputs = [bag for bag in inputs if bag is not None]
        transform = node.transform
        if isinstance(transform, _Create):
            bag = self._create(list(transform.values))
        elif isinstance(transform, _Flatten):
            import dask.bag as db

            bag = db.concat(inputs) if inputs else self._create([])
            if self.group_partitions and bag.npartitions > self.group_partitions:
                bag = bag.repartition(self.group_partitions)  # merges neighbours; no shuffle
        elif isinstance(transform, _GroupByKeyOnly):
            (source,) = inputs
            bag = (source.map(_key_value)
                   .groupby(_hash_of_key, shuffle="tasks", npartitions=self.group_partitions or None)
                   .map(lambda hv: list(_split_by_key(hv))).flatten())
        elif type(transform) is beam.ParDo:  # not _GroupAlsoByWindow: the grouping above did its work
            (source,) = inputs
            bag = self._par_do(node, source)
        else:  # Reshuffle, Read placeholders, composites' leaves without work: identity
            bag = inputs[0] if len(inputs) == 1 else None
        self.bags[node] = bag
        self.order.append(node)

    def _input(self, pc: pvalue.PValue) -> Any:
        producer = pc.producer
        self.consumed.add(producer)
        bag = self.bags.get(producer)
        if bag is None:
            return None
        if len(producer.outputs) > 1 or getattr(pc, "tag", None) is not None:
            bag = bag.filter(_only_tag(getattr(pc, "tag", None))).map(_untag)
        return bag

    def _create(self, items: list[Any]) -> Any:
        import dask.bag as db

        npartitions = self.bag_kwargs.get("npartitions")
        partition_size = self.bag_kwargs.get("partition_size")
        if partition_size:
            return db.from_sequence(items, partition_size=partition_size)
        n = npartitions or max(1, min(len(items), MAX_CREATE_PARTITIONS))
        self.group_partitions = max(self.group_partitions, min(n, MAX_GROUP_PARTITIONS))
        return db.from_sequence(items, partition_size=max(1, math.ceil(len(items) / n)))

    def _par_do(self, node: AppliedPTransform, source: Any) -> Any:
        transform = node.transform
        # Side inputs are placeholders in ``args``/``kwargs`` (Beam 2.77's Dask translation passes the
        # raw AsList/AsSingleton objects instead, and such a ParDo fails).
        args, kwargs = transform.args, transform.kwargs
        main_input = next(iter(node.main_inputs.values()))
        window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
        # A side input is one dask Item (its whole bag, computed once) that every bundle depends on.
        specs = [(type(si), si._view_options(), si._window_mapping_fn) for si in node.side_inputs]
        values = [self._input(si.pvalue).reduction(_as_list, _concat, split_every=False)
                  for si in node.side_inputs]
        return _bundles(source, values, transform.label,
                        pickler.dumps((transform.fn, window_fn, transform.label, specs, list(args), kwargs)))

    def sinks(self) -> list[Any]:
        """Bags of the transforms whose output nothing consumes (what must be computed)."""
        return [self.bags[node] for node in self.order
                if node not in self.consumed and self.bags.get(node) is not None]


class DaskRunner(BeamDaskRunner):
    """Beam's DaskRunner with the fixes above. Same options (``--dask_client_address`` ...)."""

    def run_pipeline(self, pipeline: Any, options: Any) -> PipelineResult:
        if not dask_installed():
            raise ImportError("the DaskRunner needs dask and distributed: pip install 'toxsieve[dask]'")
        import distributed

        dask_options = options.view_as(DaskOptions).get_all_options(drop_default=True, current_only=True)
        bag_kwargs = DaskOptions._extract_bag_kwargs(dask_options)
        client = distributed.Client(**dask_options)
        pipeline.replace_all(dask_overrides())
        visitor = _BagVisitor(bag_kwargs)
        pipeline.visit(visitor)
        sinks = [bag.map_partitions(_drain) for bag in visitor.sinks()]
        futures = client.compute(sinks, optimize_graph=False) if sinks else []  # one graph, optimised together
        return DaskResult(client, list(futures))


class DaskResult(PipelineResult):
    def __init__(self, client: Any, futures: list[Any]) -> None:
        super().__init__(PipelineState.RUNNING)
        self.client = client
        self.futures = futures

    def wait_until_finish(self, duration: int | None = None) -> str:
        import distributed

        try:
            timeout = duration / 1000 if duration is not None else None
            for _ in distributed.as_completed(self.futures, timeout=timeout, with_results=True):
                pass  # gathering raises a worker's error here, on the driver
            self._state = PipelineState.DONE
        except BaseException:
            self._state = PipelineState.FAILED
            raise
        finally:
            self.client.close()
        return self._state

    def cancel(self) -> str:
        self.client.cancel(self.futures)
        self.client.close()
        self._state = PipelineState.CANCELLED
        return self._state

    def metrics(self) -> Any:
        raise NotImplementedError("the DaskRunner reports no metrics; toxsieve counts from the data")


class LocalDaskCluster:
    """``toxsieve run --dask-local N``: a dask cluster of N single-threaded worker processes on
    127.0.0.1, started for one run and closed after it (``with LocalDaskCluster(n) as address``)."""

    def __init__(self, n_workers: int) -> None:
        if n_workers < 1:
            raise ValueError(f"--dask-local needs at least one worker, not {n_workers}")
        self.n_workers = n_workers
        self._cluster: Any = None

    def __enter__(self) -> str:
        if not dask_installed():
            raise ImportError("--dask-local needs dask and distributed: pip install 'toxsieve[dask]'")
        import distributed

        self._cluster = distributed.LocalCluster(
            n_workers=self.n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0")
        return str(self._cluster.scheduler_address)

    def __exit__(self, *exc: object) -> None:
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
