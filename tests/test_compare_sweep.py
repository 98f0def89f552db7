"""compare and sweep: the mixed optimum dominates, infeasible rows stay, what-ifs move the
right way, and the seed's Hopper-vs-Blackwell figures come out of the seed problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.compare import MIXED, outcome_row, run_compare
from planner.problem import Overrides
from planner.solve import SolveOptions
from planner.sweep import INTERRUPTED, NOT_SOLVED, parse_set, run_sweep
from tests.conftest import REPO, TOY_CATALOG

runner = CliRunner()
EXACT = SolveOptions(mip_gap=0.0, shadow_prices=False)


@pytest.fixture
def toy_file(tmp_path: Path) -> Path:
    problem = {
        "name": "toy-compare",
        "periods": [{"id": "p1", "hours": 8760}],
        "sites": [{"id": "dc1", "power_mw": 2, "pue": 1.2, "racks": 60,
                   "electricity_usd_per_kwh": 0.08}],
        "systems": ["toy-a", "toy-b", "toy-rack"],
        "catalog": [str(TOY_CATALOG)],
        "workloads": [{"id": "chat", "model": "toy-model", "precision": "fp8",
                       "input_tokens": 512, "output_tokens": 256,
                       "slo": {"ttft_ms": 1000, "tpot_ms": 30}, "demand": {"p1": 1_500_000}}],
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(problem))
    return path


def test_mixed_optimum_is_never_worse_and_infeasible_rows_stay(toy_file):
    outcomes = run_compare(toy_file, "system", Overrides(), EXACT)
    labels = [o.label for o in outcomes]
    assert labels == [MIXED, "toy-b", "toy-a", "toy-rack"]  # by vendor then id; mixed first
    mixed = outcomes[0].plan.tco_usd["total"]
    for o in outcomes[1:]:
        if o.plan is not None:
            assert mixed <= o.plan.tco_usd["total"] * (1 + 1e-9)
    rack = outcomes[-1]
    assert rack.plan is None  # a 100 kW liquid-cooled rack in a 40 kW air hall
    assert "liquid-cooled" in rack.reason
    assert outcome_row(rack)["status"] == "infeasible"
    # every row has the same keys, null where a fleet has no plan
    assert set(outcome_row(rack)) == set(outcome_row(outcomes[0]))
    assert outcome_row(rack)["mip_gap"] is None


def test_compare_by_vendor_json(toy_file):
    result = runner.invoke(app, ["compare", str(toy_file), "--by", "vendor", "--format", "json",
                                 "--workers", "1", "--gap", "0"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [r["fleet"] for r in rows] == [MIXED, "otherco", "toyco"]
    for r in rows:
        assert {"status", "tco_usd", "usd_per_million_output_tokens", "accelerators", "systems",
                "racks", "peak_power_kw", "output_tokens_per_s_per_mw",
                "output_tokens_per_s_per_accelerator", "usd_per_accelerator_hour",
                "configurations"} <= set(r)
        # the toy catalog's stack is uncalibrated: every fleet says which systems that touches
        assert r["uncalibrated_systems"] == sorted(
            {part.split(": ")[1].split()[0] for part in r["configurations"].split("; ")})
        assert f"note: {r['fleet']}: {', '.join(r['uncalibrated_systems'])}: rates from " \
            in result.stderr
    assert rows[0]["tco_usd"]["total"] <= min(r["tco_usd"]["total"] for r in rows[1:]) + 1e-6


def test_compare_and_sweep_of_a_served_scale_show_the_scale(toy_file, tmp_path):
    # max_served_scale: how much each fleet serves is the answer, not only what it costs
    problem = yaml.safe_load(toy_file.read_text())
    problem["objective"] = "max_served_scale"
    path = tmp_path / "scale.yaml"
    path.write_text(yaml.safe_dump(problem))
    result = runner.invoke(app, ["compare", str(path), "--by", "system", "--format", "json",
                                 "--workers", "1"])
    assert result.exit_code == 0, result.stderr
    rows = {r["fleet"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows["toy-rack"]["served_scale"] is None  # infeasible: no fleet
    scales = [r["served_scale"] for r in rows.values() if r["status"] != "infeasible"]
    assert all(s > 0 for s in scales)
    assert rows[MIXED]["served_scale"] >= max(scales) * (1 - 2e-3)  # within both gaps
    table = runner.invoke(app, ["compare", str(path), "--by", "system", "--workers", "1"])
    assert "scale" in table.stdout and f"{rows[MIXED]['served_scale']:,.3f}×" in table.stdout
    frame = run_sweep(path, [parse_set("sites.dc1.power_mw=1,2")], Overrides(), EXACT)
    small, large = frame["served_scale"]
    assert 0 < small < large  # more power serves more


def test_parallel_compare_matches_serial(toy_file):
    serial = run_compare(toy_file, "system", Overrides(), EXACT, workers=1)
    parallel = run_compare(toy_file, "system", Overrides(), EXACT, workers=2)
    assert [outcome_row(o) for o in serial] == [outcome_row(o) for o in parallel]


def _interrupted_on_call(n: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """`real`, except that its n-th call raises KeyboardInterrupt (Ctrl-C during that solve,
    before it had a plan); the calls are recorded in `.calls`."""
    def fake(*args: Any, **kwargs: Any) -> Any:
        fake.calls += 1  # type: ignore[attr-defined]
        if fake.calls == n:  # type: ignore[attr-defined]
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    fake.calls = 0  # type: ignore[attr-defined]
    return fake


def test_ctrl_c_stops_a_serial_compare_and_keeps_what_was_solved(toy_file, monkeypatch):
    import planner.compare as compare

    fake = _interrupted_on_call(2, compare._solve_one)
    monkeypatch.setattr(compare, "_solve_one", fake)
    outcomes = run_compare(toy_file, "system", Overrides(), EXACT, workers=1)
    assert fake.calls == 2  # the variants after the interrupted one are not solved
    assert [o.label for o in outcomes] == [MIXED, "toy-b", "toy-a", "toy-rack"]
    assert outcomes[0].plan is not None and not outcomes[0].interrupted
    assert [o.status for o in outcomes[1:]] == [INTERRUPTED] * 3
    assert all(o.interrupted and o.reason == NOT_SOLVED for o in outcomes[1:])


def test_a_variant_cut_short_by_ctrl_c_keeps_its_plan_and_ends_the_compare(toy_file,
                                                                          monkeypatch):
    import planner.compare as compare

    real = compare._solve_one

    def cut_short(problem: Path, variant: Any, options: SolveOptions) -> Any:
        outcome = real(problem, variant, options)
        outcome.plan.interrupted = True  # as when HiGHS returned its incumbent on Ctrl-C
        return outcome

    monkeypatch.setattr(compare, "_solve_one", cut_short)
    outcomes = run_compare(toy_file, "system", Overrides(), EXACT, workers=1)
    assert outcomes[0].plan is not None and outcomes[0].interrupted
    assert [o.status for o in outcomes[1:]] == [INTERRUPTED] * 3


def test_ctrl_c_in_a_parallel_compare(toy_file, monkeypatch):
    # Ctrl-C reaches the parent while it waits: the variants not started are cancelled or
    # told to stop (the event), those running return what they have, and every row is there
    import planner.compare as compare

    real = compare.as_completed
    monkeypatch.setattr(compare, "as_completed", _interrupted_on_call(1, real))
    serial = {o.label: outcome_row(o) for o in run_compare(toy_file, "system", Overrides(),
                                                          EXACT, workers=1)}
    outcomes = run_compare(toy_file, "system", Overrides(), EXACT, workers=2)
    assert [o.label for o in outcomes] == [MIXED, "toy-b", "toy-a", "toy-rack"]
    assert outcomes[-1].status == INTERRUPTED  # queued behind three: cancelled
    for o in outcomes:
        assert o.status == INTERRUPTED or outcome_row(o) == serial[o.label]


def test_a_worker_told_to_stop_solves_nothing(toy_file, monkeypatch):
    import multiprocessing

    import planner.compare as compare

    stopped = multiprocessing.get_context("spawn").Event()
    stopped.set()
    monkeypatch.setattr(compare, "_stopped", stopped)
    monkeypatch.setattr(compare, "_solve_one", lambda *args: pytest.fail("solved"))
    variant = compare.variants(toy_file, "system", Overrides())[0]
    outcome = compare._solve_in_worker(toy_file, variant, EXACT)
    assert outcome.status == INTERRUPTED and outcome.plan is None


def test_workers_that_do_not_answer_after_ctrl_c_are_stopped(monkeypatch):
    # a worker that missed Ctrl-C (it started meanwhile) would solve in full: after GRACE_S
    # it is killed and its variant counts as not solved
    import time
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    import planner.compare as compare
    from planner.solve import forkserver_context

    monkeypatch.setattr(compare, "GRACE_S", 0.2)
    taken: list[object] = []
    with ProcessPoolExecutor(max_workers=1, mp_context=forkserver_context()) as pool:
        future = pool.submit(time.sleep, 600)
        while not future.running():
            time.sleep(0.01)
        compare._finish_running(pool, [future], taken.append)
    assert isinstance(future.exception(), BrokenProcessPool)
    assert taken == []


def test_cli_compare_interrupted_prints_what_it_has_exits_130_and_writes_nothing(
        toy_file, tmp_path, monkeypatch):
    import planner.compare as compare

    real = compare.run_compare

    def interrupted(*args: Any, **kwargs: Any) -> list[Any]:
        outcomes = real(*args, **kwargs)
        return [outcomes[0], *(compare.not_solved(o.label) for o in outcomes[1:])]

    monkeypatch.setattr(compare, "run_compare", interrupted)
    out = tmp_path / "out"
    result = runner.invoke(app, ["compare", str(toy_file), "--format", "json", "--workers", "1",
                                 "--out", str(out)])
    assert result.exit_code == 130, result.output
    rows = json.loads(result.stdout)["rows"]
    assert rows[0]["status"] == "optimal"
    assert {r["status"] for r in rows[1:]} == {INTERRUPTED}
    assert "2 of 3 fleets not solved; nothing written" in result.stderr
    assert not out.exists()


def test_ctrl_c_stops_a_sweep_and_the_cli_exits_130(toy_file, tmp_path, monkeypatch):
    import planner.pipeline as pipeline

    fake = _interrupted_on_call(2, pipeline.solve_problem)
    monkeypatch.setattr(pipeline, "solve_problem", fake)
    frame = run_sweep(toy_file, [parse_set("demand_scale=1,2,3")], Overrides(), EXACT)
    assert fake.calls == 2
    assert list(frame["status"]) == ["optimal", INTERRUPTED, INTERRUPTED]
    assert list(frame["reason"][1:]) == [NOT_SOLVED] * 2

    fake.calls = 0
    chart = tmp_path / "sweep.png"
    result = runner.invoke(app, ["sweep", str(toy_file), "--set", "demand_scale=1,2,3",
                                 "--chart", str(chart), "--out", str(tmp_path / "out")])
    assert result.exit_code == 130, result.output
    assert "2 of 3 points not solved; nothing written" in result.stderr
    assert not chart.exists() and not (tmp_path / "out").exists()


def test_higher_electricity_price_never_lowers_tco(toy_file):
    frame = run_sweep(toy_file, [parse_set("sites.dc1.electricity_usd_per_kwh=0.02,0.08,0.2,0.5")],
                      Overrides(), EXACT)
    costs = frame["total_tco_usd"].tolist()
    assert costs == sorted(costs)
    assert costs[-1] > costs[0]


def test_demand_scale_and_catalog_price(toy_file):
    frame = run_sweep(toy_file, [parse_set("demand_scale=1,2"),
                                 parse_set("catalog.systems.toy-a.price_usd=100000,50000")],
                      Overrides(), EXACT)
    assert len(frame) == 4
    by = {(r["demand_scale"], r["catalog.systems.toy-a.price_usd"]): r["total_tco_usd"]
          for r in frame.to_dict(orient="records")}
    assert by[(2, 100000)] > by[(1, 100000)]
    assert by[(1, 50000)] <= by[(1, 100000)]


@pytest.mark.parametrize("scale, expected", [
    ("nan", "expected a finite number ≥ 0"), ("inf", "expected a finite number ≥ 0"),
    ("-1", "expected a finite number ≥ 0"), ("abc", "expected a finite number ≥ 0"),
    ("true", "expected a finite number ≥ 0"),
    ("1e300", "expected at most 1e+12, so a scale of at most"),
    ("1e-12", "expected 0 or at least 0.001, so a scale of 0 or at least"),
])
def test_a_demand_scale_that_is_not_a_usable_number_exits_2(toy_file, scale, expected):
    result = runner.invoke(app, ["sweep", str(toy_file), "--set", f"demand_scale=1,{scale}"])
    assert result.exit_code == 2, result.stderr
    assert "--set demand_scale=" in result.stderr and expected in result.stderr
    assert "internal error" not in result.stderr


def test_power_budget_sweep_reports_infeasible_points(toy_file):
    frame = run_sweep(toy_file, [parse_set("sites.dc1.power_mw=0.001,2")], Overrides(), EXACT)
    assert frame["status"].tolist() == ["infeasible", "optimal"]
    assert "power short" in frame["reason"].iloc[0]


def test_a_compare_or_sweep_where_nothing_has_a_plan_exits_1(toy_file):
    compare = runner.invoke(app, ["compare", str(toy_file), "--by", "system", "--workers", "1",
                                  "--power-budget", "1kW", "--format", "json"])
    assert compare.exit_code == 1
    assert {r["status"] for r in json.loads(compare.stdout)["rows"]} == {"infeasible"}
    assert "no plan: none of the 4 fleets has one" in compare.stderr
    sweep = runner.invoke(app, ["sweep", str(toy_file), "--set", "sites.dc1.power_mw=0.001,0.002",
                                "--format", "json"])
    assert sweep.exit_code == 1
    assert "no plan: none of the 2 points has one" in sweep.stderr


def test_a_fleet_out_of_time_is_not_called_infeasible(toy_file, monkeypatch):
    from planner.errors import NoPlanError

    def out_of_time(*args, **kwargs):
        raise NoPlanError("no_solution: no integer-feasible plan found within the time limit",
                          status="no_solution")

    monkeypatch.setattr("planner.pipeline.solve_problem", out_of_time)
    outcomes = run_compare(toy_file, "system", Overrides(), EXACT)
    assert {outcome_row(o)["status"] for o in outcomes} == {"no_solution"}


def test_a_sweep_with_an_infeasible_point_writes_json_with_nulls(toy_file, tmp_path):
    # the infeasible point's metrics were NaN, which JSON cannot carry: an internal error
    result = runner.invoke(app, ["sweep", str(toy_file), "--set", "sites.dc1.power_mw=0.001,2",
                                 "--format", "json", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [r["status"] for r in rows] == ["infeasible", "optimal"]
    assert rows[0]["total_tco_usd"] is None and rows[1]["reason"] is None
    # beside the infeasible point's missing counts, pandas stores the counts as floats
    assert rows[0]["accelerators"] is None
    assert all(type(rows[1][count]) is int for count in ("accelerators", "racks"))
    # other numbers rounded to 6 decimals, as a plan's are
    assert all(value == round(value, 6) for key, value in rows[1].items()
               if isinstance(value, float))
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["rows"] == rows
    # one table per file: a plain CSV, its header first, as solve's --out writes them
    table = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert list(table["status"]) == ["infeasible", "optimal"]


def test_bad_set_is_an_input_error(toy_file):
    result = runner.invoke(app, ["sweep", str(toy_file), "--set", "nonsense"])
    assert result.exit_code == 2
    assert "expected PATH=V1,V2" in result.stderr
    result = runner.invoke(app, ["sweep", str(toy_file), "--set", "sites.dc1.pue=0.5"])
    assert result.exit_code == 2
    assert "pue" in result.stderr


@pytest.mark.parametrize(("value", "message"), [
    ("sites.dc1.nonexistent=1,2", "sites[0:dc1].nonexistent: unknown key (check the spelling; "
     "`planner schema` lists the allowed keys) (with --set sites.dc1.nonexistent=1)"),
    ("catalog.systems.toy-a.price_usd=-1", "--set catalog.systems.toy-a.price_usd=-1: found -1; "
     "expected a value greater than 0"),
])
def test_a_set_value_the_problem_refuses_is_named_as_the_sets(toy_file, value, message):
    # the unknown key was blamed on the file alone, and a catalog edit gave pydantic's words
    result = runner.invoke(app, ["sweep", str(toy_file), "--set", value])
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert result.stderr.startswith("error: invalid input\n")  # no empty line before it


def test_sweep_cli_writes_a_chart(toy_file, tmp_path):
    chart = tmp_path / "sweep.png"
    result = runner.invoke(app, ["sweep", str(toy_file), "--set", "finance.discount_rate=0,0.1",
                                 "--chart", str(chart), "--quiet"])
    assert result.exit_code == 0, result.stderr
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seed_table_figures():
    """Seed: $1.41 vs $2.65 per GPU-hour, 90 vs 6,000 tok/s/GPU, 54K vs 2.8M tok/s/MW,
    $4.20 vs $0.12 per million tokens. The cost numerators are the InferenceX tiers exactly;
    throughput comes from planner's calibrated model, so it is checked in order of magnitude."""
    problem = REPO / "problems" / "deepseek-r1-hopper-vs-blackwell.yaml"
    outcomes = {o.label: o for o in run_compare(problem, "system", Overrides(),
                                                 SolveOptions(shadow_prices=False))}
    h200 = outcome_row(outcomes["nvidia-hgx-h200"])
    gb300 = outcome_row(outcomes["nvidia-gb300-nvl72"])
    assert h200["usd_per_accelerator_hour"] == pytest.approx(1.41, rel=1e-6)
    assert gb300["usd_per_accelerator_hour"] == pytest.approx(2.652, rel=1e-6)
    ratio = gb300["output_tokens_per_s_per_accelerator"] / h200["output_tokens_per_s_per_accelerator"]
    assert 20 <= ratio <= 400  # seed: 6,000 / 90 ≈ 67×
    assert 1_000 <= gb300["output_tokens_per_s_per_accelerator"] <= 20_000
    # tok/s per MW = tok/s per GPU × 1000 ÷ all-in kW per GPU (1.73 and 2.10), as the seed computes
    assert h200["output_tokens_per_s_per_mw"] == pytest.approx(
        h200["output_tokens_per_s_per_accelerator"] * 1000 / 1.73, rel=0.02)
    assert gb300["output_tokens_per_s_per_mw"] == pytest.approx(
        gb300["output_tokens_per_s_per_accelerator"] * 1000 / 2.10, rel=0.02)
    # $/M tokens = $/GPU-hour ÷ (tok/s/GPU × 3600) × 10⁶ (integer fleets round a little up)
    for row in (h200, gb300):
        expected = row["usd_per_accelerator_hour"] / (
            row["output_tokens_per_s_per_accelerator"] * 3600) * 1e6
        assert row["usd_per_million_output_tokens"] == pytest.approx(expected, rel=0.05)
    assert outcome_row(outcomes[MIXED])["fleet"] == MIXED
    assert h200["usd_per_million_output_tokens"] / gb300["usd_per_million_output_tokens"] > 10


def test_compare_and_sweep_reports(toy_file, tmp_path):
    compare_page, sweep_page = tmp_path / "compare.html", tmp_path / "sweep.html"
    result = runner.invoke(app, ["compare", str(toy_file), "--by", "system", "--workers", "1",
                                 "--report", str(compare_page), "--quiet"])
    assert result.exit_code == 0, result.stderr
    assert "toy-rack" in compare_page.read_text()  # the infeasible row stays, with its reason
    result = runner.invoke(app, ["sweep", str(toy_file), "--set", "demand_scale=1,2",
                                 "--report", str(sweep_page), "--quiet"])
    assert result.exit_code == 0, result.stderr
    assert "demand_scale" in sweep_page.read_text()


def test_a_vendor_row_that_runs_an_owned_fleet_of_another_vendor_says_so():
    # the example owns 40 HGX H100 until 2027H2: the amd row keeps them, as a solve with
    # --vendor amd does, and had said nothing of it
    result = runner.invoke(app, ["compare", str(REPO / "problems" / "forecast-multi-period.yaml"),
                                 "--by", "vendor", "--format", "json", "--quiet"])
    assert result.exit_code == 0, result.stderr
    rows = {row["fleet"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["amd"]["kept_existing"] == ["nvidia-hgx-h100"]
    assert rows["nvidia"]["kept_existing"] == rows[MIXED]["kept_existing"] == []
    assert "note: amd: also runs the existing nvidia-hgx-h100 already owned (none bought)" \
        in result.stderr


@pytest.mark.parametrize("command", [
    ["compare", "--by", "vendor", "--quiet"],
    ["sweep", "--set", "demand_scale=1,1.2", "--quiet"],
])
def test_a_node_limit_gives_compare_and_sweep_the_same_json_whatever_the_time_limit(command):
    # two-halls-20mw stops at 3 nodes (status feasible): the node limit, not the clock, ends
    # each variant's MIPs, in compare's worker processes too
    outputs = []
    for time_limit in ("30", "90"):
        result = runner.invoke(app, [command[0], str(REPO / "problems" / "two-halls-20mw.yaml"),
                                     *command[1:], "--node-limit", "3", "--time-limit",
                                     time_limit, "--format", "json"])
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    statuses = {row["status"] for row in json.loads(outputs[0])["rows"]}
    assert "feasible" in statuses
