"""Shared fixtures: toy problems with hand-made candidate tables (measured-performance input)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from planner.coefficients import CANDIDATE_COLUMNS

TOY_CATALOG = Path(__file__).parent / "data" / "toy-catalog.yaml"
REPO = Path(__file__).resolve().parent.parent


def toy_problem(**changes: Any) -> dict[str, Any]:
    """One site, one period of a year, one workload of 10,000 tok/s; money is capex only
    (r = 0, life 1 year, no network share, no maintenance, free electricity)."""
    problem: dict[str, Any] = {
        "name": "toy",
        "periods": [{"id": "p1", "hours": 8760}],
        "finance": {"discount_rate": 0, "life_years": 1, "network_install_share": 0,
                    "maintenance_share": 0},
        "sites": [{"id": "dc1", "power_mw": 1, "pue": 1.0, "racks": 100, "rack_power_kw": 40,
                   "electricity_usd_per_kwh": 0}],
        "systems": ["toy-a", "toy-b"],
        "catalog": [str(TOY_CATALOG)],
        "workloads": [{"id": "chat", "model": "toy-model", "input_tokens": 100,
                       "output_tokens": 100, "demand": {"p1": 10000}, "utilization": 1}],
    }
    problem.update(changes)
    return problem


def toy_cli_problem(name: str = "toy-cli") -> dict[str, Any]:
    """Toy systems and model through the analytic performance model (default parameters):
    two half-years, 1M then 2M output tok/s, one 1 MW site."""
    return {
        "name": name,
        "periods": [{"id": "p1", "hours": 4380}, {"id": "p2", "hours": 4380}],
        "sites": [{"id": "dc1", "power_mw": 1, "pue": 1.2, "racks": 40}],
        "systems": ["toy-a", "toy-b"],
        "catalog": [str(TOY_CATALOG)],
        "workloads": [{"id": "chat", "model": "toy-model", "precision": "fp8",
                       "input_tokens": 512, "output_tokens": 256,
                       "slo": {"ttft_ms": 1000, "tpot_ms": 30},
                       "demand": {"p1": 1_000_000, "p2": 2_000_000}}],
    }


def candidate(system: str, rate: float, accelerators: int = 8, mode: str = "aggregated",
              workload: str = "chat", power_kw: float = 0.0, **extra: Any) -> dict[str, Any]:
    row = {
        "workload": workload, "system": system, "mode": mode, "tp": accelerators, "pp": 1,
        "ep": 1, "concurrency": 32, "speculative": False, "accelerators": accelerators,
        "output_tokens_per_s": rate, "requests_per_s": rate / 100, "input_tokens_per_s": rate,
        "ttft_ms": 100.0, "tpot_ms": 20.0, "memory_gb_per_accelerator": 50.0,
        "power_kw": power_kw, "source": "measured",
    }
    row.update(extra)
    return row


def candidates(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=CANDIDATE_COLUMNS)


@pytest.fixture
def toy_cli_file(tmp_path: Path) -> Path:
    """`toy_cli_problem()` written to a YAML file."""
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(toy_cli_problem()))
    return path


@pytest.fixture
def write_problem(tmp_path: Path):
    """Write a problem dict to a YAML file and return its path."""

    def write(problem: dict[str, Any], name: str = "problem.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(problem, sort_keys=False))
        return path

    return write


@pytest.fixture
def solve_toy(write_problem):
    """Solve a toy problem dict with a given candidate table; returns the Plan."""
    from planner.pipeline import solve_problem
    from planner.problem import load_problem
    from planner.solve import SolveOptions

    def run(problem: dict[str, Any], table: pd.DataFrame, **options: Any):
        inputs = load_problem(write_problem(problem))
        return solve_problem(inputs, SolveOptions(**{"time_limit_s": 30, "mip_gap": 0, **options}),
                             candidates=table)

    return run
