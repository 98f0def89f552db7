"""The MIP against exhaustive enumeration on random tiny instances (measured-performance input)."""

from __future__ import annotations

import math
import random

import pytest
import yaml

from planner.errors import NoPlanError
from tests.conftest import TOY_CATALOG, candidate, candidates, toy_problem

N_MAX = 12
"""Largest system count the enumeration tries per system type."""


def _instance(seed: int):
    rng = random.Random(seed)
    systems = []
    for name in ("bf-a", "bf-b"):
        systems.append({
            "id": name, "vendor": "toyco", "name": name, "accelerator": "toy-gpu",
            # 8 toy-gpus of 1 kW TDP: a system draws 8 kW at least (the catalog checks it)
            "accelerators": 8, "power_kw_max": rng.choice([8, 9, 10, 13]), "power_kw_idle": 0,
            "rack_units": rng.choice([4, 8, 10]), "price_usd": rng.randrange(50, 300) * 1000,
            "availability": 1.0,
            "sources": {"default": {"source": "random test instance", "confidence": "low",
                                    "kind": "USER"}},
        })
    rows = []
    for s in systems:
        for _ in range(rng.choice([1, 2])):
            acc = rng.choice([1, 2, 4, 8])
            rows.append(candidate(s["id"], float(rng.randrange(100, 1500) * acc // 4 + 50),
                                  accelerators=acc, tp=acc))
    demand = rng.randrange(1000, 9000)
    power_kw = rng.choice([40, 60, 80, 120, 1000])
    racks = rng.choice([1, 2, 3, 50])
    return systems, rows, demand, power_kw, racks


def _best_capacity(rows, system, accelerators):
    """Unbounded knapsack: most tok/s from whole replicas within `accelerators`."""
    best = [0.0] * (accelerators + 1)
    items = [(r["accelerators"], r["output_tokens_per_s"]) for r in rows if r["system"] == system]
    for a in range(1, accelerators + 1):
        best[a] = best[a - 1]
        for size, rate in items:
            if size <= a:
                best[a] = max(best[a], best[a - size] + rate)
    return best[accelerators]


def _brute_force(systems, rows, demand, power_kw, racks, rack_power_kw=40, rack_units=42,
                 rack_usd_per_year=0.0):
    best = math.inf
    a, b = systems
    per_rack = {s["id"]: min(rack_power_kw // s["power_kw_max"], rack_units // s["rack_units"])
                for s in systems}
    for na in range(N_MAX + 1):
        for nb in range(N_MAX + 1):
            if na * a["power_kw_max"] + nb * b["power_kw_max"] > power_kw + 1e-9:
                continue
            need = sum(math.ceil(n / per_rack[s["id"]]) if n else 0
                       for n, s in ((na, a), (nb, b)))
            if need > racks:
                continue
            cap = _best_capacity(rows, "bf-a", 8 * na) + _best_capacity(rows, "bf-b", 8 * nb)
            if cap + 1e-9 < demand:
                continue
            best = min(best, na * a["price_usd"] + nb * b["price_usd"] + rack_usd_per_year * need)
    return best


@pytest.mark.parametrize("seed", range(60))
def test_mip_matches_enumeration(seed, tmp_path, solve_toy):
    systems, rows, demand, power_kw, racks = _instance(seed)
    catalog = tmp_path / "bf.yaml"
    catalog.write_text(yaml.safe_dump({"systems": systems}))
    problem = toy_problem(systems=["bf-a", "bf-b"], catalog=[str(TOY_CATALOG), str(catalog)])
    # a charge per occupied rack on some instances (its own draw: the others stay as they were)
    rack_usd_per_month = random.Random(seed + 10_000).choice([0, 0, 3_000, 30_000])
    problem["sites"][0].update(power_mw=power_kw / 1000, racks=racks,
                               rack_usd_per_month=rack_usd_per_month)
    problem["workloads"][0]["demand"] = {"p1": demand}
    expected = _brute_force(systems, rows, demand, power_kw, racks,
                            rack_usd_per_year=12 * rack_usd_per_month)
    try:
        plan = solve_toy(problem, candidates(*rows), shadow_prices=False)
    except NoPlanError:
        assert expected == math.inf, f"MIP infeasible but enumeration found ${expected:,.0f}"
        return
    # the enumeration stops at N_MAX per type; every optimum here stays below it
    assert plan.fleet["systems"].max() <= N_MAX
    assert plan.tco_usd["total"] == pytest.approx(expected, rel=1e-9)


def _brute_force_scale(systems, rows, demand, power_kw, racks, rack_power_kw=40, rack_units=42):
    """The largest served scale of any fleet within power and racks, and the cheapest fleet
    that serves it: (scale, price)."""
    a, b = systems
    per_rack = {s["id"]: min(rack_power_kw // s["power_kw_max"], rack_units // s["rack_units"])
                for s in systems}
    fleets = []
    for na in range(N_SCALE + 1):
        for nb in range(N_SCALE + 1):
            if na * a["power_kw_max"] + nb * b["power_kw_max"] > power_kw + 1e-9:
                continue
            if sum(math.ceil(n / per_rack[s["id"]]) if n else 0
                   for n, s in ((na, a), (nb, b))) > racks:
                continue
            cap = _best_capacity(rows, "bf-a", 8 * na) + _best_capacity(rows, "bf-b", 8 * nb)
            fleets.append((cap / demand, na * a["price_usd"] + nb * b["price_usd"]))
    scale = max(s for s, _ in fleets)
    return scale, min(price for s, price in fleets if s >= scale * (1 - 1e-9))


N_SCALE = 16
"""Enough systems per type for every instance whose power is at most 120 kW (8 kW or more
each)."""


@pytest.mark.parametrize("seed", range(60))
def test_served_scale_matches_enumeration(seed, tmp_path, solve_toy):
    # max_served_scale (`planner.scale`): the largest scale any fleet within the limits serves,
    # and the cheapest fleet at it
    systems, rows, demand, power_kw, racks = _instance(seed)
    if power_kw > 120:
        pytest.skip("power for more systems than the enumeration tries")
    catalog = tmp_path / "bf.yaml"
    catalog.write_text(yaml.safe_dump({"systems": systems}))
    problem = toy_problem(systems=["bf-a", "bf-b"], catalog=[str(TOY_CATALOG), str(catalog)],
                          objective="max_served_scale")
    problem["sites"][0].update(power_mw=power_kw / 1000, racks=racks)
    problem["workloads"][0]["demand"] = {"p1": demand}
    scale, price = _brute_force_scale(systems, rows, demand, power_kw, racks)
    plan = solve_toy(problem, candidates(*rows), shadow_prices=False)
    assert plan.served_scale == pytest.approx(scale, rel=1e-6)
    assert plan.tco_usd["total"] == pytest.approx(price, rel=1e-9)
