"""`estimate`: ranking, per-system / rack / kW columns, reasons when nothing fits."""

from __future__ import annotations

import json

import pytest
from perf_fixtures import catalog

from planner.performance.estimate import (
    PREFILL_COLUMNS,
    accelerators_per_rack,
    estimate,
    estimate_records,
)


def test_estimate_ranked() -> None:
    cat = catalog()
    res = estimate(cat, "nvidia-gb200-nvl72", "llama-3.3-70b", "fp8", 1024, 1024, 2000, 40, 5)
    t = res.table
    assert len(t) == 5 and not res.reasons
    per = t["output_tokens_per_s_per_accelerator"].to_numpy()
    assert (per[:-1] >= per[1:]).all()
    assert (t["output_tokens_per_s_per_rack"] == per * 72).all()
    assert (t["output_tokens_per_s_per_kw"] > 0).all()


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


def test_disaggregated_pair_rate_per_accelerator():
    """A prefill pool of r_p per a_p and a decode pool of r_d per a_d serve
    1 / (a_p/r_p + a_d/r_d) output tok/s per accelerator together."""
    cat = catalog()
    t = estimate(cat, "nvidia-gb300-nvl72", "deepseek-r1", "fp4", 1024, 1024, None, 20.0,
                 top=None).table
    pairs = t[t["mode"] == "disaggregated"]
    assert len(pairs) > 0
    assert set(t["mode"]) <= {"aggregated", "disaggregated"}
    row = pairs.iloc[0]
    from planner.performance import WorkloadSpec, candidates
    from planner.schema import Precision

    spec = WorkloadSpec("deepseek-r1", Precision.fp4, 1024, 1024, None, 20.0, name="x")
    raw = candidates(spec, cat.systems["nvidia-gb300-nvl72"], cat)
    pre = raw[raw["mode"] == "prefill"]
    best_p = (pre["output_tokens_per_s"] / pre["accelerators"]).max()
    dec = raw[(raw["mode"] == "decode") & (raw["tp"] == row["tp"]) & (raw["ep"] == row["ep"])
              & (raw["concurrency"] == row["concurrency"])].iloc[0]
    expected = 1 / (1 / best_p + dec["accelerators"] / dec["output_tokens_per_s"])
    assert row["output_tokens_per_s_per_accelerator"] == pytest.approx(expected, rel=1e-9)
    # the prefill replica the pair is made of: its shape, and how many per decode replica
    best = pre.loc[(pre["output_tokens_per_s"] / pre["accelerators"]).idxmax()]
    assert (row["prefill_tp"], row["prefill_pp"], row["prefill_ep"]) == (
        best["tp"], best["pp"], best["ep"])
    assert row["prefill_replicas"] == pytest.approx(
        dec["output_tokens_per_s"] / best["output_tokens_per_s"])
    assert row["accelerators"] == pytest.approx(
        dec["accelerators"] + row["prefill_accelerators"] * row["prefill_replicas"])


def test_estimate_records_leave_an_aggregated_row_without_prefill():
    table = estimate(catalog(), "nvidia-hgx-b200", "llama-3.3-70b", "fp8", 1024, 256,
                     None, None, top=None).table
    records = {r["mode"]: r for r in estimate_records(table)}
    assert {k: records["aggregated"][k] for k in PREFILL_COLUMNS} == dict.fromkeys(PREFILL_COLUMNS)
    assert all(type(records["disaggregated"][k]) is int for k in PREFILL_COLUMNS[:-1])
    json.dumps(records, allow_nan=False)  # what `--format json` writes


def test_every_row_meets_the_slos_it_was_asked_for():
    # a disaggregated pair's first token comes from its prefill replica, sized to the TTFT;
    # adding the decode hand-over had shown 520 ms against a 500 ms target
    table = estimate(catalog(), "nvidia-hgx-b200", "llama-3.1-8b", "fp8", 1024, 256,
                     500, 20, top=None).table
    assert (table["mode"] == "disaggregated").any()
    assert (table["ttft_ms"] <= 500 + 1e-9).all() and (table["tpot_ms"] <= 20 + 1e-9).all()
