"""Generated benchmark problems: families of growing size built from the shipped catalog.

Each family is a real problem file (YAML) written to a directory and read back through
`planner.problem.load_problem`, so the benchmark exercises the same path as `planner solve`.
Demand grows over the periods from a seeded random start; site power and rack positions are
sized from a rough tokens-per-MW figure so that power or racks bind in some periods.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from planner.catalog import load_catalog


@dataclass(frozen=True)
class Family:
    """Size of one benchmark family."""

    name: str
    systems: int | None
    """How many catalog systems (None: all)."""
    workloads: int
    periods: int
    sites: int
    seed: int


FAMILIES = {
    "small": Family("small", 3, 1, 1, 1, seed=1),
    "medium": Family("medium", 10, 3, 4, 1, seed=2),
    "large": Family("large", None, 6, 12, 3, seed=3),
    "x-large": Family("x-large", None, 12, 20, 5, seed=4),
}

# (id, model, precision, input tokens, output tokens, TTFT ms, TPOT ms, peak demand tok/s at the
# first period, utilization): chat, summarize and reasoning shapes with the usual SLOs
WORKLOADS: list[tuple[str, str, Any, int, int, float, float, float, float]] = [
    ("chat-70b", "llama-3.3-70b", "fp8", 1024, 256, 2000, 40, 400_000, 0.6),
    ("summarize-8b", "llama-3.1-8b", "fp8", 2048, 128, 2000, 100, 300_000, 0.5),
    ("reasoning-r1", "deepseek-r1", ["fp4", "fp8"], 1024, 4096, 3000, 30, 150_000, 0.6),
    ("chat-moe", "qwen3-235b-a22b", "fp8", 2048, 512, 2000, 40, 200_000, 0.55),
    ("code-oss", "gpt-oss-120b", "fp4", 4096, 512, 2000, 40, 250_000, 0.6),
    ("summarize-70b", "llama-3.1-70b", "fp8", 8192, 256, 3000, 50, 100_000, 0.5),
    ("assistant-8b", "llama-3.1-8b", "fp8", 1024, 256, 1000, 30, 200_000, 0.5),
    ("chat-mixtral", "mixtral-8x7b", "fp8", 1024, 512, 2000, 40, 150_000, 0.6),
    ("reasoning-32b", "qwen3-32b", "fp8", 1024, 2048, 2000, 30, 120_000, 0.6),
    ("chat-405b", "llama-3.1-405b", "fp8", 2048, 512, 3000, 50, 40_000, 0.6),
    ("chat-r1", "deepseek-r1", "fp8", 2048, 512, 2000, 40, 100_000, 0.6),
    ("chat-llama2", "llama-2-70b", "fp8", 1024, 256, 2000, 40, 80_000, 0.6),
]

# owned halls alternate liquid-cooled (140 kW racks) and air-cooled (40 kW racks); the third
# site of a family is a cloud region with a quota, so rent-only systems have somewhere to go
SITE_KINDS = ["liquid", "air", "cloud", "liquid", "air"]
SMALL_SYSTEMS = ["nvidia-hgx-h200", "amd-mi325x-oam8", "nvidia-hgx-b200"]
TOK_PER_S_PER_MW = 0.8e6
"""Rough fleet output rate per facility MW across the workload mix, used only to size sites."""


def systems_for(family: Family) -> list[str]:
    """Catalog systems of the family, in catalog order (deterministic)."""
    ids = sorted(load_catalog().systems)
    if family.systems is None:
        return ids
    if family.systems <= len(SMALL_SYSTEMS):
        return SMALL_SYSTEMS[: family.systems]
    owned = [s for s in ids if not load_catalog().systems[s].rent_only]
    return owned[: family.systems]


def problem_dict(family: Family, demand_scale: float = 1.0) -> dict[str, Any]:
    """The problem file of `family` as a YAML-ready mapping; `demand_scale` multiplies every
    workload's demand (site power and racks follow it, the cloud quota does not)."""
    rng = random.Random(family.seed)
    periods = [f"P{i + 1:02d}" for i in range(family.periods)]
    growth = [rng.uniform(1.04, 1.12) for _ in periods]
    workloads = []
    total_peak = 0.0
    for wid, model, precision, isl, osl, ttft, tpot, base, util in WORKLOADS[: family.workloads]:
        rate = base * demand_scale * rng.uniform(0.6, 1.4)
        demand = {}
        for p, g in zip(periods, growth, strict=True):
            demand[p] = round(rate, -2)
            rate *= g
        total_peak = max(total_peak, max(demand.values()))
        workloads.append({
            "id": wid, "model": model, "precision": precision, "input_tokens": isl,
            "output_tokens": osl, "slo": {"ttft_ms": ttft, "tpot_ms": tpot},
            "demand": demand, "utilization": util,
        })
    peak_total = sum(max(w["demand"].values()) for w in workloads)
    kinds = SITE_KINDS[: family.sites] if family.sites > 1 else ["air"]
    owned = [k for k in kinds if k != "cloud"]
    # owned power roughly covers the last period's need: power binds late in the horizon
    mw_each = peak_total / TOK_PER_S_PER_MW / max(len(owned), 1)
    sites = [_site(i, kind, mw_each, rng, periods) for i, kind in enumerate(kinds)]
    return {
        "name": f"bench-{family.name}",
        "periods": [{"id": p, "hours": 8760 / 4} for p in periods],
        "finance": {"discount_rate": 0.08, "life_years": 4, "network_install_share": 0.12,
                    "maintenance_share": 0.05},
        "sites": sites,
        "systems": systems_for(family),
        "workloads": workloads,
    }


def _site(i: int, kind: str, mw: float, rng: random.Random, periods: list[str]) -> dict[str, Any]:
    sid = f"{kind}-{i + 1}"
    if kind == "cloud":
        return {"id": sid, "kind": "cloud", "max_accelerators": 2048, "rent_markup": 1.0}
    power = round(mw * rng.uniform(0.8, 1.2), 1)
    liquid = kind == "liquid"
    rack_kw = 140 if liquid else 40
    # racks sized so that space, not power, binds at some air halls
    racks = int(power * 1000 / rack_kw * (1.3 if liquid else 1.0))
    site: dict[str, Any] = {
        "id": sid, "power_mw": power, "pue": 1.15 if liquid else 1.35, "racks": max(racks, 1),
        "rack_power_kw": rack_kw, "electricity_usd_per_kwh": round(rng.uniform(0.06, 0.1), 4),
        "colocation_usd_per_kw_month": 190 if liquid else 170,
    }
    if liquid:
        site.update(liquid_cooling=True, rack_units=48)
    if len(periods) >= 4 and i == 0:
        # a second feed arrives a third of the way into the horizon
        cut = len(periods) // 3
        site["power_mw"] = {p: round(power * (0.6 if j < cut else 1.0), 1)
                            for j, p in enumerate(periods)}
    return site


def write_problem(family: Family, directory: Path, demand_scale: float = 1.0,
                  objective: str = "min_tco") -> Path:
    """Write the problem file of `family` into `directory`, with `objective`; returns its
    path."""
    path = directory / f"bench-{family.name}.yaml"
    problem = problem_dict(family, demand_scale)
    if objective != "min_tco":
        problem["objective"] = objective
    path.write_text(yaml.safe_dump(problem, sort_keys=False, width=100))
    return path


def family_parser(doc: str | None) -> argparse.ArgumentParser:
    """The command line the bench scripts share: `--family` and `--demand-scale` (the
    script's docstring's first paragraph as its description)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--family", default="large", choices=list(FAMILIES))
    parser.add_argument("--demand-scale", type=float, default=1.0,
                        help="multiply every workload's demand (site power and racks follow)")
    return parser


def family_data(name: str, demand_scale: float = 1.0) -> Any:
    """The `ModelData` of family `name`, through its problem file as `planner solve` reads it."""
    from planner.coefficients import build_data
    from planner.pipeline import candidates_for
    from planner.problem import load_problem

    with tempfile.TemporaryDirectory() as tmp:
        inputs = load_problem(write_problem(FAMILIES[name], Path(tmp), demand_scale))
        return build_data(inputs, candidates_for(inputs))


def planner_plan(data: Any, seconds: float) -> tuple[Any, dict[Any, float]] | None:
    """`planner.solve` of `data` for `seconds`: its result and the plan's values, or None (and
    a line saying so) when it found no plan."""
    from planner.solve import SolveOptions, _values, solve

    solved = solve(data, SolveOptions(time_limit_s=seconds, shadow_prices=False))
    if solved.model is None:
        print(f"planner found no plan in {seconds:g} s ({solved.status.value})")
        return None
    return solved, _values(solved.model)
