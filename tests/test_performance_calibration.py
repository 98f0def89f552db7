"""Calibration: predicted vs measured MLPerf v5.1 results (run with -s to see the table)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from perf_fixtures import catalog

from planner.performance.calibration import (
    DEFAULT_CSV,
    evaluate_table,
    fit,
    group_rows,
    load_params,
    load_rows,
    shipped_table,
    write_calibration,
)

pytestmark = pytest.mark.skipif(not DEFAULT_CSV.exists(), reason="calibration CSV not found")


def test_shipped_calibration_error() -> None:
    cat = catalog()
    stacks = sorted(cat.calibration)
    assert {"nvidia-trtllm", "amd-rocm"} <= set(stacks)
    params = {s: load_params(cat, s) for s in stacks}
    table = shipped_table(DEFAULT_CSV, cat)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print()
        print(table.to_string(index=False, float_format=lambda x: f"{x:,.3f}"))
    err = table["rel_error"].abs()
    print(f"groups {len(table)}, rows {int(table['rows'].sum())}, "
          f"median |err| {err.median():.1%}, worst {err.max():.1%}")
    # the same as evaluating each group with the catalog's parameters by hand
    rows, _ = load_rows(DEFAULT_CSV)
    by_hand = evaluate_table(group_rows(rows), params, cat)
    assert by_hand["rel_error"].abs().median() == pytest.approx(err.median())
    assert len(by_hand) == len(table) == 42
    assert err.median() <= 0.15
    assert err.max() <= 0.6
    for p in params.values():
        assert p.calibrated
        assert 0 < p.compute_eff_fp8 <= 1 and 0 < p.compute_eff_fp4 <= 1 and 0 < p.bw_eff <= 1
        assert 0 <= p.step_overhead_ms <= 40 and 1 <= p.server_tail <= 30


def test_fit_runs_and_writes(tmp_path) -> None:
    res = fit(DEFAULT_CSV, catalog(), rounds=1)
    assert res.median_abs_error <= 0.15
    assert any("RTX PRO 6000" in s for s in res.skipped)
    assert any("UNSET" in s for s in res.skipped)
    out = tmp_path / "calibration.yaml"
    write_calibration(res, out)
    text = out.read_text()
    assert "stacks:" in text and "nvidia-trtllm:" in text and "median_abs_error" in text
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.yaml"]  # no temporary left
    # what it writes is what a catalog directory's calibration.yaml must be
    from planner.catalog import _calibration_stacks

    assert set(_calibration_stacks(out)) == set(res.params)


def test_uncalibrated_stack_uses_marked_defaults() -> None:
    p = load_params(catalog(), "intel-gaudi")
    assert not p.calibrated


def test_calibrate_reports_the_parameters_in_use_beside_its_fit() -> None:
    # a refit is not what solves use until --write stores it: both errors are shown
    from typer.testing import CliRunner

    from planner.cli import app

    result = CliRunner().invoke(app, ["calibrate", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    shipped = shipped_table()["rel_error"].abs()
    assert report["shipped"] == {"median_abs_error": pytest.approx(shipped.median()),
                                 "worst_abs_error": pytest.approx(shipped.max())}
    errors = pd.Series([abs(row["rel_error"]) for row in report["rows"]])
    assert report["median_abs_error"] == pytest.approx(errors.median())
