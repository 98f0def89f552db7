"""Shared fixtures of the performance tests: the shipped catalog, gaps filled by the fixture."""

from __future__ import annotations

from functools import lru_cache

from planner.performance.reference import reference_catalog
from planner.schema import Catalog


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    """Shipped catalog (with calibration.yaml) where it loads, else the built-in fixture."""
    try:
        from planner.catalog import load_catalog

        return reference_catalog(merge=load_catalog())
    except Exception:
        return reference_catalog()
