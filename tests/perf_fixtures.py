"""Shared fixture of the performance tests: the shipped catalog (with calibration.yaml)."""

from __future__ import annotations

from functools import lru_cache

from planner.catalog import load_catalog
from planner.schema import Catalog


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return load_catalog()
