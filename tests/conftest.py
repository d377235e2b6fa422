"""Shared fixtures: the shipped crawl sample and a local Beam runner that never tries Prism."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CRAWL = REPO / "tests" / "fixtures" / "crawl"
SAMPLE_GLOBS = [
    str(CRAWL / "*" / "*.warc.gz"),
    str(CRAWL / "*" / "*.warc.wet.gz"),
    str(CRAWL / "*" / "*.jsonl.gz"),
]
DEMO_CONFIG = REPO / "deploy" / "configs" / "demo.yaml"


@pytest.fixture
def crawl_dir() -> Path:
    return CRAWL


def local_runner():  # type: ignore[no-untyped-def]
    """Beam's local engine without the DirectRunner's Prism attempt (which downloads a binary)."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()
