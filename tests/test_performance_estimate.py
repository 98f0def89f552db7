"""`estimate`: ranking, per-system / rack / kW columns, reasons when nothing fits."""

from __future__ import annotations

from perf_fixtures import catalog

from planner.performance.estimate import accelerators_per_rack, estimate


def test_estimate_ranked() -> None:
    cat = catalog()
    res = estimate(cat, "nvidia-gb200-nvl72", "llama-3.3-70b", "fp8", 1024, 1024, 2000, 40, 5)
    t = res.table
    assert len(t) == 5 and not res.reasons
    per = t["output_tokens_per_s_per_accelerator"].to_numpy()
    assert (per[:-1] >= per[1:]).all()
    assert (t["per_rack"] == per * 72).all()
    assert (t["per_kw"] > 0).all()


def test_rack_packing() -> None:
    cat = catalog()
    assert accelerators_per_rack(cat.systems["nvidia-gb300-nvl72"]) == 72
    kw = cat.systems["nvidia-hgx-h200"].power_kw_max
    assert accelerators_per_rack(cat.systems["nvidia-hgx-h200"]) == int(40 // kw) * 8


def test_estimate_reasons() -> None:
    cat = catalog()
    res = estimate(cat, "nvidia-hgx-h200", "deepseek-r1", "fp4", 1024, 1024, None, None)
    assert res.table.empty
    assert "fp4" in res.reasons[0]
