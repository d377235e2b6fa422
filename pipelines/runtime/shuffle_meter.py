"""Bytes that cross each shuffle, counted from the data: a GroupByKey whose input is also encoded
(Beam's default coder for untyped elements) and summed per bundle into ``shuffle_bytes/<label>``.

The counts flow into ``_counts.json`` with the shard counts (not Beam metrics, which not every runner
reports), and ``stats.json`` reports them per document read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.coders import coders
from apache_beam.transforms.window import GlobalWindows

SHUFFLE_KEY = "shuffle_bytes"
Meters = list[beam.PCollection]


class _CountBytes(beam.DoFn):
    def __init__(self, key: str) -> None:
        self.key = key

    def setup(self) -> None:
        self._coder = coders.FastPrimitivesCoder()

    def start_bundle(self) -> None:
        self._bytes = 0
        self._elements = 0

    def process(self, element: Any) -> Iterator[Any]:
        self._bytes += len(self._coder.encode(element))
        self._elements += 1
        return iter(())

    def finish_bundle(self) -> Iterator[Any]:
        if self._elements:
            yield GlobalWindows.windowed_value({f"{SHUFFLE_KEY}/{self.key}": self._bytes,
                                                f"shuffle_elements/{self.key}": self._elements})


class MeteredGroupByKey(beam.PTransform):
    """``beam.GroupByKey()``, and (when ``meters`` is a list) a count of the bytes entering it appended there."""

    def __init__(self, meters: Meters | None, key: str | None = None) -> None:
        super().__init__()
        self.meters = meters
        self.key = key

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        if self.meters is not None:
            self.meters.append(pcoll | "CountBytes" >> beam.ParDo(_CountBytes(self.key or self.label)))
        return pcoll | "Group" >> beam.GroupByKey()
