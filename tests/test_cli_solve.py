"""`planner solve` end to end: JSON contract, overrides, exit codes, atomic output, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.report import PLAN_FILES
from tests.conftest import REPO

runner = CliRunner()


@pytest.fixture
def toy_file(toy_cli_file: Path) -> Path:
    return toy_cli_file


def solve_json(*args: str) -> dict:
    result = runner.invoke(app, ["solve", *args, "--format", "json"])
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def test_json_has_the_documented_keys(toy_file):
    plan = solve_json(str(toy_file))
    for key in ("status", "objective_usd", "tco_usd", "usd_per_million_output_tokens",
                "delivered_output_tokens", "mip_gap", "fleet", "deployments", "sites", "demand"):
        assert key in plan
    assert set(plan["tco_usd"]) >= {"capex", "energy", "facility", "opex", "rent", "total"}
    assert set(plan["fleet"][0]) >= {"period", "site", "system", "vendor", "systems",
                                     "accelerators", "racks", "power_kw", "purchased"}
    assert set(plan["deployments"][0]) >= {"period", "site", "workload", "system", "mode", "tp",
                                           "pp", "ep", "concurrency", "replicas", "accelerators",
                                           "output_tokens_per_s", "ttft_ms", "tpot_ms"}
    assert set(plan["sites"][0]) >= {"period", "site", "power_kw", "power_budget_kw", "racks",
                                     "rack_limit"}
    # coverage can be checked from the plan alone
    for d in plan["demand"]:
        rows = [r for r in plan["deployments"] if r["period"] == d["period"]]
        agg = sum(r["output_tokens_per_s"] for r in rows if r["mode"] == "aggregated")
        pre = sum(r["output_tokens_per_s"] for r in rows if r["mode"] == "prefill")
        dec = sum(r["output_tokens_per_s"] for r in rows if r["mode"] == "decode")
        assert agg + min(pre, dec) >= d["output_tokens_per_s"] * (1 - 1e-9)


def test_input_token_volumes_follow_each_workloads_input_to_output_ratio(toy_file):
    plan = solve_json(str(toy_file))  # 512 input and 256 output tokens per request
    for d in plan["demand"]:
        assert d["input_tokens_per_s"] == pytest.approx(2 * d["output_tokens_per_s"])
    assert plan["delivered_input_tokens"] == pytest.approx(2 * plan["delivered_output_tokens"])


def test_same_inputs_give_byte_identical_json(toy_file):
    first = runner.invoke(app, ["solve", str(toy_file), "--format", "json"]).stdout
    second = runner.invoke(app, ["solve", str(toy_file), "--format", "json"]).stdout
    assert first == second


def test_power_budget_override_changes_the_plan(toy_file):
    roomy = solve_json(str(toy_file))
    peak_kw = max(s["power_kw"] for s in roomy["sites"])
    tight = solve_json(str(toy_file), "--power-budget", f"dc1={peak_kw * 0.8 / 1000:.4f}MW")
    assert max(s["power_kw"] for s in tight["sites"]) <= peak_kw * 0.8 + 1e-6
    assert tight["objective_usd"] >= roomy["objective_usd"]
    for site in tight["sites"]:
        assert site["power_budget_kw"] == pytest.approx(peak_kw * 0.8, rel=1e-3)


def test_budget_too_small_exits_1_naming_site_period_and_shortfall(toy_file):
    result = runner.invoke(app, ["solve", str(toy_file), "--power-budget", "5kW"])
    assert result.exit_code == 1
    assert "site dc1, p1: power short by" in result.stderr
    assert "site dc1, p2: power short by" in result.stderr


def test_no_plan_in_json_is_an_object_with_its_status_and_diagnosis(toy_file):
    result = runner.invoke(app, ["solve", str(toy_file), "--power-budget", "5kW",
                                 "--format", "json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["status"] == "infeasible"
    assert payload["message"].startswith("infeasible: ")
    assert any(line.startswith("site dc1, p1: power short by") for line in payload["diagnosis"])
    assert "Traceback" not in result.stderr + result.stdout


def test_demand_override_scales_the_fleet(toy_file, tmp_path):
    base = solve_json(str(toy_file))
    forecast = tmp_path / "forecast.csv"
    forecast.write_text("period,workload,output_tokens_per_s\np1,chat,2000000\np2,chat,4000000\n")
    doubled = solve_json(str(toy_file), "--demand", str(forecast))
    assert [d["output_tokens_per_s"] for d in doubled["demand"]] == [2_000_000, 4_000_000]
    acc = sum(f["accelerators"] for f in base["fleet"])
    acc2 = sum(f["accelerators"] for f in doubled["fleet"])
    assert acc2 > acc
    assert doubled["objective_usd"] > base["objective_usd"]


def test_out_writes_every_table(toy_file, tmp_path):
    out = tmp_path / "plan"
    result = runner.invoke(app, ["solve", str(toy_file), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["binding.csv", "costs.csv", "demand.csv", "deployments.csv", "fleet.csv",
                     "plan.json", "sites.csv", "summary.csv"]
    assert names == sorted(PLAN_FILES)  # the names a --report may not take
    assert json.loads((out / "plan.json").read_text())["status"] == "optimal"


def test_what_binds_is_a_table_too(tmp_path):
    out = tmp_path / "plan"
    problem = REPO / "problems" / "two-halls-20mw.yaml"  # its liquid hall's power binds
    assert runner.invoke(app, ["solve", str(problem), "--out", str(out)]).exit_code == 0
    binding = pd.read_csv(out / "binding.csv", dtype={"period": str})
    binding = binding.astype(object).where(binding.notna(), None)  # an empty cell is JSON's null
    rows = json.loads((out / "plan.json").read_text())["binding"]
    assert len(rows) >= 1 and rows[0]["value_scale"] is None  # a cost minimum: no scale to gain
    assert binding.to_dict(orient="records") == [
        {**row, "used": pytest.approx(row["used"]), "value_usd": pytest.approx(row["value_usd"])}
        for row in rows]


def test_csv_money_is_exact_to_the_cent(tmp_path):
    # six significant digits printed the default plan's $30,294,309.17 as 3.02943e+07
    problem = REPO / "problems" / "chat-single-site.yaml"
    plan = json.loads(runner.invoke(app, ["solve", str(problem), "--format", "json"]).stdout)
    csv = runner.invoke(app, ["solve", str(problem), "--format", "csv"]).stdout
    total = next(line for line in csv.splitlines() if line.startswith("total_tco_usd,"))
    assert "e+" not in total
    assert float(total.split(",")[1]) == pytest.approx(plan["objective_usd"], abs=0.01)


def test_csv_of_a_served_scale_carries_the_scale():
    # the answer to "how much can this hall serve" was only in the JSON
    problem = REPO / "problems" / "site-capacity.yaml"
    plan = json.loads(runner.invoke(app, ["solve", str(problem), "--format", "json"]).stdout)
    csv = runner.invoke(app, ["solve", str(problem), "--format", "csv"]).stdout
    line = next(line for line in csv.splitlines() if line.startswith("served_scale,"))
    assert float(line.split(",")[1]) == pytest.approx(plan["served_scale"], abs=1e-6)


def test_failed_run_leaves_previous_results_intact(toy_file, tmp_path):
    out = tmp_path / "plan"
    assert runner.invoke(app, ["solve", str(toy_file), "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = runner.invoke(app, ["solve", str(toy_file), "--power-budget", "5kW",
                                 "--out", str(out)])
    assert result.exit_code == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("flag, target, expected", [
    ("--out", "a-file", "a-file exists and is a file; expected a directory"),
    ("--out", "a-file/plan", "a-file is a file, so"),
    ("--report", "a-dir", "a-dir exists and is a directory; expected a file"),
])
def test_an_output_path_that_cannot_be_written_is_refused_before_solving(
        toy_file, tmp_path, monkeypatch, flag, target, expected):
    import planner.pipeline as pipeline

    (tmp_path / "a-file").write_text("keep")
    (tmp_path / "a-dir").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pipeline, "solve_problem", lambda *a, **k: pytest.fail("solved"))
    result = runner.invoke(app, ["solve", str(toy_file), flag, target])
    assert result.exit_code == 2
    assert expected in " ".join(result.stderr.replace("│", " ").split())
    assert "Traceback" not in result.stderr and (tmp_path / "a-file").read_text() == "keep"


def test_a_report_that_exists_is_replaced(toy_file, tmp_path):
    # a run again with the same --report was refused ("plan.html is a file, so plan.html
    # cannot be created")
    page = tmp_path / "plan.html"
    page.write_text("an earlier report")
    result = runner.invoke(app, ["solve", str(toy_file), "--report", str(page)])
    assert result.exit_code == 0, result.stderr
    assert "toy-a" in page.read_text()


def test_a_write_that_fails_says_so_and_keeps_earlier_results(toy_file, tmp_path, monkeypatch):
    import planner.report as report

    out = tmp_path / "plan"
    assert runner.invoke(app, ["solve", str(toy_file), "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def disk_full(directory: Path, files: object) -> None:
        raise OSError(28, "No space left on device", str(directory / "plan.json"))

    monkeypatch.setattr(report, "write_atomically", disk_full)
    result = runner.invoke(app, ["solve", str(toy_file), "--out", str(out)])
    assert result.exit_code == 1
    assert "plan.json: No space left on device (earlier results there are intact)" in \
        " ".join(result.stderr.split())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_output_file_that_is_a_directory_fails_before_anything_is_replaced(toy_file,
                                                                             tmp_path):
    out = tmp_path / "plan"
    assert runner.invoke(app, ["solve", str(toy_file), "--out", str(out)]).exit_code == 0
    (out / "sites.csv").unlink()
    (out / "sites.csv").mkdir()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    result = runner.invoke(app, ["solve", str(toy_file), "--out", str(out),
                                 "--power-budget", "dc1=0.15MW"])
    assert result.exit_code == 1
    assert "sites.csv: Is a directory (earlier results there are intact)" in \
        " ".join(result.stderr.split())
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("fails_at", [0, 2, 3])  # 3: d.csv, which had no old version
def test_a_rename_that_fails_puts_back_the_files_already_replaced(tmp_path, monkeypatch,
                                                                  fails_at: int) -> None:
    """Old files stay as they were (none half-old, half-new), new names are not left behind,
    and neither are temporaries or the hard links kept of the old files."""
    import os

    import planner.atomic as atomic

    out = tmp_path / "plan"
    atomic.write_atomically(out, {"a.csv": "old a", "b.csv": "old b", "c.csv": "old c"})
    renames: list[object] = []
    real_replace = os.replace

    def replace(src: object, dst: object) -> None:
        renames.append(dst)
        if len(renames) == fails_at + 1:
            raise OSError(5, "Input/output error", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError, match="Input/output error"):
        atomic.write_atomically(out, {"a.csv": "new a", "b.csv": "new b", "c.csv": "new c",
                                      "d.csv": "new d"})
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        "a.csv": "old a", "b.csv": "old b", "c.csv": "old c"}


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_a_reader_that_goes_away_ends_the_run_quietly_with_141(toy_file, fmt):
    """`planner solve … | head`: stdout's reader is gone before the plan is printed. The run
    exits 141, as a tool killed by SIGPIPE, with nothing on stderr (not exit 1, "no plan")."""
    import subprocess
    import sys

    run = subprocess.Popen([sys.executable, "-m", "planner", "solve", str(toy_file), "--format",
                            fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert run.stdout is not None and run.stderr is not None
    run.stdout.close()
    stderr = run.stderr.read().decode()
    assert (run.wait(timeout=120), stderr) == (141, "")


def test_an_error_to_a_reader_that_went_away_ends_the_run_quietly_with_141(tmp_path):
    """`planner solve bad.yaml 2>&1 | head -1`: not exit 1 ("no plan") from the failed print."""
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [1\n")
    run = subprocess.Popen([sys.executable, "-m", "planner", "solve", str(bad)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert run.stdout is not None and run.stderr is not None
    run.stderr.close()
    stdout = run.stdout.read().decode()
    assert (run.wait(timeout=120), stdout) == (141, "")


@pytest.mark.parametrize("option, value, expected", [
    ("--gap", "nan", "found nan; expected a number from 0 to 1"),  # said only "≤ 1"
    ("--gap", "1.5", "found 1.5; expected a number from 0 to 1"),
    ("--time-limit", "nan", "found nan; expected a number of at least 0.1"),
    ("--time-limit", "0", "found 0; expected a number of at least 0.1"),
])
def test_a_limit_out_of_range_is_a_usage_error(toy_file, option, value, expected):
    result = runner.invoke(app, ["solve", str(toy_file), option, value])
    assert result.exit_code == 2
    assert expected in " ".join(result.stderr.replace("│", " ").split())


def test_csv_format_prints_each_table(toy_file):
    result = runner.invoke(app, ["solve", str(toy_file), "--format", "csv"])
    assert result.exit_code == 0
    for name in ("summary", "fleet", "deployments", "sites", "demand", "costs"):
        assert f"# table: {name}\n" in result.stdout


def test_table_view_shows_fleet_deployments_costs_and_binds(toy_file):
    result = runner.invoke(app, ["solve", str(toy_file), "--power-budget", "dc1=0.15MW"])
    assert result.exit_code == 0, result.stderr
    for heading in ("Fleet", "Deployments", "Cost breakdown", "Sites", "What binds"):
        assert heading in result.stdout
    assert "power at dc1 in p2" in result.stdout


def test_report_writes_a_self_contained_page(toy_file, tmp_path):
    page = tmp_path / "reports" / "plan.html"
    result = runner.invoke(app, ["solve", str(toy_file), "--report", str(page), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") or html.lstrip().lower().startswith("<!doctype html")
    assert "toy-a" in html and "<svg" in html
    import re

    assert not re.search(r'(src|href)\s*=\s*["\']?https?:', html)  # nothing fetched from outside
