"""Problem files, forecast CSVs and CLI overrides: what is accepted, and the message for each
kind of mistake (file, field path, what was found, what is expected; exit 2, no traceback)."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.errors import InputError
from planner.problem import Overrides, load_problem
from planner.units import UnitError, format_power_kw, format_rate, format_usd, parse_quantity

TOY = Path(__file__).parent / "data" / "toy-catalog.yaml"
runner = CliRunner()

BASE = {
    "name": "toy",
    "catalog": [str(TOY)],
    "periods": [{"id": "p1", "hours": 1000}, {"id": "p2", "hours": 1000}],
    "sites": [{"id": "dc1", "power_mw": 1, "racks": 10, "rack_power_kw": 40}],
    "systems": ["toy-a", "toy-b"],
    "workloads": [{
        "id": "chat", "model": "toy-model", "precision": "fp8", "input_tokens": 1000,
        "output_tokens": 500, "slo": {"ttft_ms": 2000, "tpot_ms": 50},
        "demand": {"p1": 1000, "p2": 2000},
    }],
}


def problem(**changes) -> dict:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def write(tmp_path: Path, data: dict, name: str = "problem.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_csv(tmp_path: Path, text: str, name: str = "forecast.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path: Path, overrides: Overrides | None = None) -> list[str]:
    with pytest.raises(InputError) as info:
        load_problem(path, overrides)
    return info.value.problems


def cli_fails(tmp_path: Path, *args: str) -> str:
    """Run `planner solve ...` with --out; expect exit 2, no traceback, nothing written."""
    out_dir = tmp_path / "out"
    result = runner.invoke(app, ["solve", *args, "--out", str(out_dir)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: invalid input\n"), result.stderr
    assert not out_dir.exists()
    return result.stderr


# ---------------------------------------------------------------------------------------------
# a good file
# ---------------------------------------------------------------------------------------------


def test_the_base_problem_loads(tmp_path):
    inputs = load_problem(write(tmp_path, problem()))
    assert inputs.period_ids == ["p1", "p2"]
    assert [s.id for s in inputs.systems] == ["toy-a", "toy-b"]
    assert inputs.demand == {("chat", "p1"): 1000.0, ("chat", "p2"): 2000.0}
    assert inputs.problem.sites[0].power_mw == 1
    assert inputs.site_demand == {}


def test_catalog_paths_are_relative_to_the_problem_file(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "toy.yaml").write_text(TOY.read_text())
    inputs = load_problem(write(tmp_path, problem(catalog=["cat"])))
    assert "toy-model" in inputs.catalog.models


def test_systems_default_to_the_whole_catalog(tmp_path):
    data = problem()
    del data["systems"]
    inputs = load_problem(write(tmp_path, data))
    ids = {s.id for s in inputs.systems}
    assert {"toy-a", "toy-b", "toy-rack", "nvidia-hgx-h200"} <= ids


def test_date_like_period_ids_are_read_as_text(tmp_path):
    # YAML reads 2027-01-01 as a date: it was refused as "found datetime.date(2027, 1, 1)"
    text = yaml.safe_dump(problem()).replace("p1", "2027-01-01").replace("p2", "2027-07-01")
    path = tmp_path / "problem.yaml"
    path.write_text(text.replace("'2027-01-01'", "2027-01-01").replace("'2027-07-01'", "2027-07-01"))
    assert isinstance(yaml.safe_load(path.read_text())["periods"][0]["id"], datetime.date)
    inputs = load_problem(path)
    assert inputs.period_ids == ["2027-01-01", "2027-07-01"]
    assert set(inputs.demand) == {("chat", "2027-01-01"), ("chat", "2027-07-01")}


def test_ids_with_a_leading_zero_keep_the_text_written(tmp_path):
    # YAML 1.1 reads 07 and 010 as octal: period 02027 had become 1047, and a forecast that
    # named month 07 was refused ("found '07'; expected one of 7, 08, 8")
    text = yaml.safe_dump(problem()).replace("p1", "07").replace("p2", "010")
    path = tmp_path / "problem.yaml"
    path.write_text(text.replace("'07'", "07").replace("'010'", "010"))
    assert yaml.safe_load(path.read_text())["periods"][0]["id"] == 7
    (tmp_path / "demand.csv").write_text("period,workload,output_tokens_per_s\n07,chat,1500\n"
                                         "010,chat,2500\n")
    inputs = load_problem(path, Overrides(demand_csv=tmp_path / "demand.csv"))
    assert inputs.period_ids == ["07", "010"]
    assert inputs.demand == {("chat", "07"): 1500, ("chat", "010"): 2500}


def test_demand_with_a_unit_is_accepted(tmp_path):
    data = problem()
    data["workloads"][0]["demand"] = {"p1": "1.5k tok/s", "p2": "2M"}
    assert load_problem(write(tmp_path, data)).demand == {("chat", "p1"): 1500.0,
                                                           ("chat", "p2"): 2e6}


def test_power_with_a_unit_is_accepted(tmp_path):
    data = problem()
    data["sites"][0]["power_mw"] = "20MW"
    assert load_problem(write(tmp_path, data)).problem.sites[0].power_mw == 20.0
    data["sites"][0]["power_mw"] = {"p1": "500 kW", "p2": 2}
    assert load_problem(write(tmp_path, data)).problem.sites[0].power_mw == {"p1": 0.5, "p2": 2.0}


# ---------------------------------------------------------------------------------------------
# problem-file errors: load_problem and the CLI give the same message
# ---------------------------------------------------------------------------------------------


def _site(**changes) -> list[dict]:
    site = dict(BASE["sites"][0])
    site.update(changes)
    return [site]


def _workload(**changes) -> list[dict]:
    workload = copy.deepcopy(BASE["workloads"][0])
    workload.update(changes)
    return [workload]


def _rename_key_in_site(data: dict) -> dict:
    data["sites"][0]["rack_power_kww"] = data["sites"][0].pop("rack_power_kw")
    return data


PROBLEM_CASES = {
    "unknown-key-in-site": (
        _rename_key_in_site(problem()),
        "sites[0:dc1].rack_power_kww: unknown key (check the spelling; `planner schema` lists "
        "the allowed keys)",
    ),
    "unknown-top-level-key": (
        problem(perods=[]),
        "perods: unknown key",
    ),
    "model-id-in-capitals": (
        problem(workloads=_workload(model="Toy-Model")),
        "workloads[0:chat].model: found 'Toy-Model'; expected a lowercase id of letters a-z, "
        "digits, '.', '_' and '-', starting with a letter or digit",
    ),
    "system-id-in-capitals": (
        problem(systems=["toy-a", "TOY-B"]),
        "systems[1]: found 'TOY-B'; expected a lowercase id of letters a-z",
    ),
    "negative-power": (
        problem(sites=_site(power_mw=-1)),
        "sites[0:dc1].power_mw: found -1; expected a value greater than or equal to 0",
    ),
    "bad-unit": (
        problem(sites=_site(power_mw="20 parsecs")),
        "sites[0:dc1].power_mw: '20 parsecs' is not a power; expected e.g. '20MW' or '350kW'",
    ),
    "power-not-a-number": (
        problem(sites=_site(power_mw="lots")),
        "sites[0:dc1].power_mw: cannot read 'lots' as a quantity in MW",
    ),
    "power-a-boolean": (
        problem(sites=_site(power_mw=True)),
        "sites[0:dc1].power_mw: found true; expected a number",
    ),
    "pue-below-1": (
        problem(sites=_site(pue=0.9)),
        "sites[0:dc1].pue: found 0.9; expected a value greater than or equal to 1",
    ),
    "owned-site-without-power": (
        problem(sites=[{"id": "dc1"}]),
        "sites[0:dc1]: an owned site needs power_mw",
    ),
    "duplicate-period": (
        problem(periods=[{"id": "p1"}, {"id": "p1"}]),
        "periods: duplicate period id 'p1'",
    ),
    "no-periods": (
        problem(periods=[]),
        "periods: found list; expected a list with at least 1 item",
    ),
    "demand-for-unknown-period": (
        problem(workloads=_workload(demand={"p1": 1, "p3": 2})),
        "workloads[0:chat].demand: unknown period 'p3' (periods are p1, p2)",
    ),
    "power-for-unknown-period": (
        problem(sites=_site(power_mw={"p1": 1, "p2": 1, "p9": 1})),
        "sites[0:dc1].power_mw: unknown period 'p9'",
    ),
    "demand-too-small-to-plan": (
        problem(workloads=_workload(demand={"p1": 1e-6, "p2": 1})),
        "workloads[0:chat].demand.p1: found 1e-06; expected 0 or at least 0.001 output tokens/s",
    ),
    "demand-a-boolean": (
        problem(workloads=_workload(demand={"p1": True, "p2": 1})),
        "workloads[0:chat].demand.p1: found true; expected a number",
    ),
    "negative-demand": (
        problem(workloads=_workload(demand={"p1": -5, "p2": 1})),
        "workloads[0:chat].demand.p1: found -5; expected a value greater than or equal to 0",
    ),
    "bad-precision": (
        problem(workloads=_workload(precision="fp16")),
        "workloads[0:chat].precision: found 'fp16'; expected 'bf16', 'fp8', 'fp4' or 'int8'",
    ),
    "missing-required": (
        problem(workloads=[{k: v for k, v in BASE["workloads"][0].items() if k != "input_tokens"}]),
        "workloads[0:chat].input_tokens: required field is missing",
    ),
    "beyond-the-context": (
        problem(workloads=_workload(input_tokens=8000, output_tokens=500)),
        "workloads[0:chat]: input_tokens + output_tokens = 8,500; expected at most toy-model's "
        "context of 8,192 tokens",
    ),
    "unknown-model": (
        problem(workloads=_workload(model="toy-modle")),
        "workloads[0:chat].model: found 'toy-modle'; expected a catalog id (did you mean toy-model?)",
    ),
    "unknown-system": (
        problem(systems=["toy-a", "toy-c"]),
        "systems[1]: found 'toy-c'; expected a catalog id (did you mean toy-b, toy-a",
    ),
    "existing-at-unknown-site": (
        problem(existing=[{"site": "dc9", "system": "toy-a", "count": 2}]),
        "existing[0].site: unknown site 'dc9' (sites are dc1)",
    ),
    "existing-unknown-system": (
        problem(existing=[{"site": "dc1", "system": "toy-z", "count": 2}]),
        "existing[0].system: found 'toy-z'; expected a catalog id",
    ),
    "workload-at-unknown-site": (
        problem(workloads=_workload(sites=["dc2"])),
        "workloads[0:chat].sites: unknown site 'dc2' (sites are dc1)",
    ),
    "no-demand-at-all": (
        problem(workloads=_workload(demand=None)),
        "workloads[0:chat].demand: required field is missing (give demand per period, or a "
        "`forecast:` CSV)",
    ),
    "missing-forecast-file": (
        problem(forecast="nope.csv", workloads=_workload(demand=None)),
        "forecast file not found",
    ),
}


@pytest.mark.parametrize("case", PROBLEM_CASES, ids=list(PROBLEM_CASES))
def test_problem_error_from_load_problem(tmp_path, case):
    data, expected = PROBLEM_CASES[case]
    path = write(tmp_path, data)
    problems = problems_of(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path.parent if case == 'missing-forecast-file' else path}"), (
        problems[0]
    )
    assert expected in problems[0], problems[0]


@pytest.mark.parametrize("case", PROBLEM_CASES, ids=list(PROBLEM_CASES))
def test_problem_error_from_the_cli(tmp_path, case):
    data, expected = PROBLEM_CASES[case]
    path = write(tmp_path, data)
    stderr = cli_fails(tmp_path, str(path))
    assert expected in stderr
    assert str(path.parent) in stderr


def test_several_problems_are_reported_together(tmp_path):
    data = _rename_key_in_site(problem(workloads=_workload(output_tokens=0)))
    problems = problems_of(write(tmp_path, data))
    assert [p.split(": ")[1] for p in problems] == [
        "sites[0:dc1].rack_power_kww", "workloads[0:chat].output_tokens"
    ]


def test_yaml_syntax_error_in_a_problem(tmp_path):
    path = tmp_path / "problem.yaml"
    path.write_text("name: x\nperiods: [{id: p1}\nsites: []\n")
    (line,) = problems_of(path)
    assert line.startswith(f"{path}: line 3, column 1: YAML syntax error")
    assert "YAML syntax error" in cli_fails(tmp_path, str(path))


def test_a_problem_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "problem.yaml"
    path.write_text("- just\n- a list\n")
    assert problems_of(path) == [f"{path}: (top level): found list; expected a mapping"]


@pytest.mark.parametrize("text", [
    "name: " + "[" * 40 + "]" * 40,  # a thousand levels recursed past Python's limit
    "name: " + "{a: " * 5000 + "1" + "}" * 5000,
    "name: " + "[" * 100_000 + "]" * 100_000,  # this deep, loading crashed the interpreter
])
def test_a_problem_nested_too_deep_is_refused(tmp_path, text):
    path = tmp_path / "problem.yaml"
    path.write_text(text + "\n")
    assert problems_of(path) == [f"{path}: lists or mappings nested more than 32 levels deep; "
                                 "expected a problem or catalog file"]


def test_a_missing_problem_file(tmp_path):
    stderr = cli_fails(tmp_path, str(tmp_path / "nope.yaml"))
    assert f"{tmp_path / 'nope.yaml'}: file not found" in stderr


# ---------------------------------------------------------------------------------------------
# forecast CSVs
# ---------------------------------------------------------------------------------------------

GOOD_CSV = "period,workload,output_tokens_per_s\np1,chat,1500\np2,chat,2500\n"

CSV_CASES = {
    "missing-column": (
        "period,output_tokens_per_s\np1,1500\n",
        "line 1 (header): missing column 'workload'",
    ),
    "missing-rate-column": (
        "period,workload\np1,chat\n",
        "line 1 (header): missing column 'output_tokens_per_s' (or 'requests_per_s')",
    ),
    "extra-column": (
        "period,workload,output_tokens_per_s,region\np1,chat,1500,eu\n",
        "line 1 (header): unknown column(s) region; expected period, workload, "
        "output_tokens_per_s or requests_per_s, and optional site",
    ),
    "non-numeric": (
        "period,workload,output_tokens_per_s\np1,chat,1500\np2,chat,lots\n",
        "line 3: output_tokens_per_s: found 'lots'; expected a number",
    ),
    "empty-cell": (
        "period,workload,output_tokens_per_s\np1,chat,\n",
        "line 2: output_tokens_per_s: found ''; expected a number",
    ),
    "negative": (
        "period,workload,output_tokens_per_s\np1,chat,-3\n",
        "line 2: output_tokens_per_s: found -3.0; expected a finite number ≥ 0",
    ),
    "too-small": (
        "period,workload,output_tokens_per_s\np1,chat,1e-6\n",
        "line 2: output_tokens_per_s: found 1e-06; expected 0 or from 0.001 to 1e+12 output "
        "tokens/s",
    ),
    "not-finite": (
        "period,workload,output_tokens_per_s\np1,chat,inf\n",
        "line 2: output_tokens_per_s: found inf; expected a finite number ≥ 0",
    ),
    "duplicate-row": (
        "period,workload,output_tokens_per_s\np1,chat,1\np2,chat,2\np1,chat,3\n",
        "line 4: duplicate row for period p1, workload chat (first at line 2)",
    ),
    "unknown-workload": (
        "period,workload,output_tokens_per_s\np1,caht,1\n",
        "line 2: workload: found 'caht'; expected one of chat",
    ),
    "unknown-period": (
        "period,workload,output_tokens_per_s\n2030H1,chat,1\n",
        "line 2: period: found '2030H1'; expected one of p1, p2",
    ),
    "unknown-site": (
        "period,workload,site,output_tokens_per_s\np1,chat,dc7,1\n",
        "line 2: site: found 'dc7'; expected one of dc1",
    ),
    "too-many-cells": (
        "period,workload,output_tokens_per_s\np1,chat,1,2\n",
        "line 2: found 4 cells; expected 3, one per header column",
    ),
    "no-rows": (
        "period,workload,output_tokens_per_s\n",
        "no rows; expected a header period,workload,output_tokens_per_s and one row per period and "
        "workload",
    ),
}


def test_a_forecast_row_at_a_site_its_workload_may_not_use(tmp_path):
    # the row's site pin was dropped and its demand served elsewhere, silently
    csv_path = write_csv(tmp_path, "period,workload,site,output_tokens_per_s\np1,chat,dc2,1\n")
    path = write(tmp_path, problem(sites=TWO_SITES, workloads=_workload(sites=["dc1", "cloud"]),
                                   forecast=csv_path.name))
    assert problems_of(path) == [f"{csv_path}: line 2: site: found 'dc2', where workload chat "
                                 "may not be served; expected one of its sites, dc1, cloud"]


@pytest.mark.parametrize("case", CSV_CASES, ids=list(CSV_CASES))
def test_forecast_error_from_load_problem(tmp_path, case):
    text, expected = CSV_CASES[case]
    csv_path = write_csv(tmp_path, text)
    path = write(tmp_path, problem(forecast=csv_path.name))
    problems = problems_of(path)
    assert problems == [f"{csv_path}: {expected}"]


@pytest.mark.parametrize("case", CSV_CASES, ids=list(CSV_CASES))
def test_forecast_error_from_the_cli_demand_option(tmp_path, case):
    text, expected = CSV_CASES[case]
    csv_path = write_csv(tmp_path, text)
    path = write(tmp_path, problem())
    stderr = cli_fails(tmp_path, str(path), "--demand", str(csv_path))
    assert f"{csv_path}: {expected}" in stderr


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    csv_path = write_csv(tmp_path, "period,workload,output_tokens_per_s\n\np1,chat,1\n\np2,chat,x\n")
    path = write(tmp_path, problem())
    problems = problems_of(path, Overrides(demand_csv=csv_path))
    assert problems == [f"{csv_path}: line 5: output_tokens_per_s: found 'x'; expected a number"]


def test_every_bad_row_is_reported(tmp_path):
    csv_path = write_csv(tmp_path, "period,workload,output_tokens_per_s\np0,chat,1\np1,chat,-1\n")
    problems = problems_of(write(tmp_path, problem()), Overrides(demand_csv=csv_path))
    assert [p.split(": ")[1] for p in problems] == ["line 2", "line 3"]


def test_the_demand_option_overrides_the_file(tmp_path):
    csv_path = write_csv(tmp_path, GOOD_CSV)
    inputs = load_problem(write(tmp_path, problem()), Overrides(demand_csv=csv_path))
    assert inputs.demand == {("chat", "p1"): 1500.0, ("chat", "p2"): 2500.0}


def test_the_demand_option_overrides_the_problems_forecast(tmp_path):
    write_csv(tmp_path, "period,workload,output_tokens_per_s\np1,chat,7\np2,chat,8\n", "file.csv")
    csv_path = write_csv(tmp_path, GOOD_CSV)
    path = write(tmp_path, problem(forecast="file.csv"))
    assert load_problem(path).demand == {("chat", "p1"): 7.0, ("chat", "p2"): 8.0}
    assert load_problem(path, Overrides(demand_csv=csv_path)).demand[("chat", "p2")] == 2500.0


def test_a_forecast_replaces_missing_demand_and_unlisted_periods_are_zero(tmp_path):
    csv_path = write_csv(tmp_path, "period,workload,output_tokens_per_s\np2,chat,10\n")
    inputs = load_problem(write(tmp_path, problem(workloads=_workload(demand=None))),
                          Overrides(demand_csv=csv_path))
    assert inputs.demand == {("chat", "p1"): 0.0, ("chat", "p2"): 10.0}
    assert inputs.notes == [f"forecast {csv_path.name} has no row for chat in p1: no demand there"]


def test_a_period_without_demand_in_the_problem_file_gets_a_note(tmp_path):
    # as a forecast's missing row does; a missing per-period power_mw is an error instead,
    # since a site without power is never meant
    path = write(tmp_path, problem(workloads=_workload(demand={"p2": 10})))
    inputs = load_problem(path)
    assert inputs.demand == {("chat", "p1"): 0.0, ("chat", "p2"): 10.0}
    assert inputs.notes == [f"{path.name} gives no demand for chat in p1: no demand there"]


def test_requests_per_s_become_tokens_per_s(tmp_path):
    csv_path = write_csv(tmp_path, "period,workload,requests_per_s\np1,chat,2\np2,chat,4\n")
    inputs = load_problem(write(tmp_path, problem()), Overrides(demand_csv=csv_path))
    assert inputs.demand == {("chat", "p1"): 1000.0, ("chat", "p2"): 2000.0}  # × 500 tokens


def test_site_rows_are_summed_and_kept_per_site(tmp_path):
    data = problem(sites=[BASE["sites"][0], {"id": "dc2", "power_mw": 2}])
    csv_path = write_csv(
        tmp_path, "period,workload,site,output_tokens_per_s\np1,chat,dc1,10\np1,chat,dc2,5\n"
        "p2,chat,,7\n"
    )
    inputs = load_problem(write(tmp_path, data), Overrides(demand_csv=csv_path))
    assert inputs.demand == {("chat", "p1"): 15.0, ("chat", "p2"): 7.0}
    assert inputs.site_demand == {("chat", "p1", "dc1"): 10.0, ("chat", "p1", "dc2"): 5.0}


def test_spreadsheet_csv_with_bom_and_spaces(tmp_path):
    csv_path = tmp_path / "excel.csv"
    csv_path.write_bytes("\ufeffperiod, workload, output_tokens_per_s\r\np1, chat, 12\r\n".encode())
    inputs = load_problem(write(tmp_path, problem()), Overrides(demand_csv=csv_path))
    assert inputs.demand[("chat", "p1")] == 12.0


def test_a_missing_demand_file_from_the_cli(tmp_path):
    stderr = cli_fails(tmp_path, str(write(tmp_path, problem())), "--demand",
                       str(tmp_path / "nope.csv"))
    assert f"{tmp_path / 'nope.csv'}: forecast file not found" in stderr


# ---------------------------------------------------------------------------------------------
# --power-budget
# ---------------------------------------------------------------------------------------------

TWO_SITES = [{"id": "dc1", "power_mw": 1}, {"id": "dc2", "power_mw": 2},
             {"id": "cloud", "kind": "cloud"}]


@pytest.mark.parametrize(("text", "mw"), [("20MW", 20.0), ("dc1=20MW", 20.0), ("350kW", 0.35),
                                          ("20", 20.0), ("dc1=1.5 MW", 1.5), ("0.02GW", 20.0)])
def test_power_budget_sets_the_owned_site(tmp_path, text, mw):
    inputs = load_problem(write(tmp_path, problem()), Overrides(power_budget=[text]))
    assert inputs.problem.sites[0].power_mw == pytest.approx(mw)


def test_power_budget_replaces_a_per_period_budget(tmp_path):
    data = problem(sites=_site(power_mw={"p1": 1, "p2": 2}))
    inputs = load_problem(write(tmp_path, data), Overrides(power_budget=["5MW"]))
    assert inputs.problem.sites[0].power_mw == 5.0


def test_power_budget_per_site(tmp_path):
    path = write(tmp_path, problem(sites=TWO_SITES))
    inputs = load_problem(path, Overrides(power_budget=["dc2=8MW", "dc1=300kW"]))
    assert [s.power_mw for s in inputs.problem.sites] == [0.3, 8.0, None]


def test_a_single_power_budget_applies_to_the_only_owned_site(tmp_path):
    sites = [{"id": "dc1", "power_mw": 1}, {"id": "cloud", "kind": "cloud"}]
    inputs = load_problem(write(tmp_path, problem(sites=sites)), Overrides(power_budget=["9MW"]))
    assert inputs.problem.sites[0].power_mw == 9.0


POWER_ERRORS = {
    "bad-unit": (["20 parsecs"], "--power-budget 20 parsecs: '20 parsecs' is not a power; expected "
                 "e.g. '20MW' or '350kW'"),
    "not-a-number": (["lots"], "--power-budget lots: cannot read 'lots' as a quantity in MW"),
    "negative": (["-3MW"], "--power-budget -3MW: found -3 MW; expected a power from 0 to 100000 "
                 "MW"),
    "unknown-site": (["dc9=5MW"], "--power-budget dc9=5MW: unknown owned site 'dc9'; expected one "
                     "of dc1, dc2"),
    "cloud-site": (["cloud=5MW"], "--power-budget cloud=5MW: unknown owned site 'cloud'"),
    "ambiguous": (["20MW"], "--power-budget 20MW: 2 owned sites (dc1, dc2); write SITE=20MW"),
    "too-large": (["dc1=200000MW"], "--power-budget dc1=200000MW: found 200000 MW; expected a "
                  "power from 0 to 100000 MW"),
    "infinite": (["dc1=1e308GW"], "--power-budget dc1=1e308GW: found inf MW; expected a power"),
    "no-site": (["=20MW"], "--power-budget =20MW: no site before '='; expected SITE=20MW with "
                "SITE one of dc1, dc2"),
    "twice": (["dc1=5MW", "dc2=1MW", "dc1=5MW"], "--power-budget dc1=5MW: site dc1 already has "
              "a budget (dc1=5MW); expected one per site"),
}


@pytest.mark.parametrize("case", POWER_ERRORS, ids=list(POWER_ERRORS))
def test_power_budget_errors(tmp_path, case):
    budgets, expected = POWER_ERRORS[case]
    path = write(tmp_path, problem(sites=TWO_SITES))
    (line,) = problems_of(path, Overrides(power_budget=budgets))
    assert line.startswith(expected), line
    args = [a for b in budgets for a in ("--power-budget", b)]
    assert expected in cli_fails(tmp_path, str(path), *args)


def test_a_power_budget_for_a_problem_without_owned_sites(tmp_path):
    path = write(tmp_path, problem(sites=[{"id": "cloud", "kind": "cloud"}]))
    (line,) = problems_of(path, Overrides(power_budget=["5MW"]))
    assert line == "--power-budget 5MW: the problem has no owned site, and cloud sites have no " \
        "power budget"


def test_unknown_system_and_vendor_options(tmp_path):
    path = write(tmp_path, problem())
    stderr = cli_fails(tmp_path, str(path), "--system", "toy-c", "--vendor", "acme")
    assert "--system found 'toy-c'; expected a catalog id (did you mean" in stderr
    assert "--vendor acme: unknown vendor; expected one of" in stderr
    stderr = cli_fails(tmp_path, str(path), "--system", "TOY-A")  # ids are lowercase
    assert "--system found 'TOY-A'; expected a catalog id (did you mean toy-a" in stderr


def test_vendor_filter_that_leaves_nothing(tmp_path):
    path = write(tmp_path, problem(systems=["toy-a"]))
    (line,) = problems_of(path, Overrides(vendors=["otherco"]))
    assert line == f"{path}: systems: no system left after the vendor/system filters"


# ---------------------------------------------------------------------------------------------
# units
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "unit", "value"), [
    ("20MW", "MW", 20.0), ("20 MW", "MW", 20.0), ("20mw", "MW", 20.0), ("350kW", "MW", 0.35),
    ("350 kW", "kW", 350.0), ("1.2GW", "MW", 1200.0), ("500W", "kW", 0.5), ("20", "MW", 20.0),
    (" 7.5 ", "kW", 7.5), ("1e3kW", "MW", 1.0), (".5MW", "kW", 500.0),
    ("1.5M", "", 1.5e6), ("1.5M tok/s", "", 1.5e6), ("12k", "", 12000.0), ("42", "", 42.0),
    ("$2.65/h", "", 2.65), ("2B", "", 2e9), ("1.5M tok/s", "tok/s", 1.5e6),
    ("200k tokens/s", "tok/s", 2e5), ("350", "tok/s", 350.0),
])
def test_parse_quantity(text, unit, value):
    assert parse_quantity(text, unit) == pytest.approx(value)


@pytest.mark.parametrize(("text", "unit", "message"), [
    ("20 parsecs", "MW", "'20 parsecs' is not a power; expected e.g. '20MW' or '350kW'"),
    ("ten MW", "MW", "cannot read 'ten MW' as a quantity in MW"),
    ("", "MW", "cannot read '' as a quantity in MW"),
    ("20MW", "", "'20MW' is a power; expected a plain quantity"),
    ("3 apples", "", "unknown unit 'apples' in '3 apples'"),
    ("1,000", "", "cannot read '1,000' as a quantity in a count"),
    ("20MW/h", "MW", "'20MW/h' is not in MW"),
    ("20MW tokens/s", "MW", "'20MW tokens/s' is not in MW"),
    ("2M/h", "tok/s", "'2M/h' is not in tok/s"),
    ("$20MW", "MW", "'$20MW' is not in MW"), ("20 mW", "MW", "'20 mW' is in milliwatts; "
                                              "expected MW (megawatts) or kW"),
    ("3MW", "tok/s", "'3MW' is a power; expected a plain quantity"),
])
def test_parse_quantity_errors(text, unit, message):
    with pytest.raises(UnitError) as info:
        parse_quantity(text, unit)
    assert str(info.value) == message


def test_unit_error_is_a_value_error():
    assert issubclass(UnitError, ValueError)


def test_formatting():
    assert format_power_kw(350) == "350 kW"
    assert format_power_kw(20000) == "20.0 MW"
    assert format_usd(1.234e9) == "$1.23B"
    assert format_usd(45.6e6) == "$45.60M"
    assert format_usd(0.12) == "$0.12"
    assert format_rate(1.5e6) == "1.50M"
    assert format_rate(950) == "950"


def test_a_workloads_demand_can_be_its_own_csv(tmp_path):
    write_csv(tmp_path, "period,requests_per_s,site\np1,2,dc1\np2,3,dc1\n", "chat.csv")
    data = problem()
    data["workloads"][0]["demand"] = "chat.csv"
    inputs = load_problem(write(tmp_path, data))
    per_request = data["workloads"][0]["output_tokens"]
    assert inputs.demand == {("chat", "p1"): 2 * per_request, ("chat", "p2"): 3 * per_request}
    assert inputs.site_demand[("chat", "p1", "dc1")] == 2 * per_request


def test_a_workloads_own_csv_names_no_other_workload(tmp_path):
    csv_path = write_csv(tmp_path, "period,workload,output_tokens_per_s\np1,code,5\n", "chat.csv")
    data = problem()
    data["workloads"][0]["demand"] = "chat.csv"
    assert problems_of(write(tmp_path, data)) == [
        f"{csv_path}: line 2: workload: found 'code'; expected 'chat' (this is workload chat's "
        "demand) or no workload column"]


def test_a_system_asked_for_outside_the_files_list_is_planned_with_a_note(tmp_path):
    inputs = load_problem(write(tmp_path, problem(systems=["toy-a"])), Overrides(systems=("toy-b",)))
    assert [s.id for s in inputs.systems] == ["toy-b"]
    assert "--system toy-b: not among problem.yaml's systems; planned with as asked" in inputs.notes


def test_system_overrides_name_exactly_the_systems_planned_with(tmp_path):
    # one inside the file's list and one outside: both, not the inside one alone
    inputs = load_problem(write(tmp_path, problem(systems=["toy-a"])),
                          Overrides(systems=("toy-a", "toy-b")))
    assert [s.id for s in inputs.systems] == ["toy-a", "toy-b"]


@pytest.mark.parametrize(("demand", "message"), [
    ("1.5M tok/s", "workloads[0:chat].demand: expected demand per period"),
    ("nope.csv", "workloads[0:chat].demand: found 'nope.csv'; expected a CSV file (not found: "),
])
def test_a_workloads_demand_that_is_neither_a_mapping_nor_a_csv(tmp_path, demand, message):
    write_csv(tmp_path, "period,workload,output_tokens_per_s\np1,chat,5\n")
    data = problem(forecast="forecast.csv")  # checked even where a forecast replaces it
    data["workloads"][0]["demand"] = demand
    path = write(tmp_path, data)
    assert any(line.startswith(f"{path}: {message}") for line in problems_of(path))


def test_a_forecast_with_both_rate_columns_is_an_error(tmp_path):
    csv_path = write_csv(tmp_path, "period,workload,output_tokens_per_s,requests_per_s\n"
                         "p1,chat,1000,5\n")
    assert problems_of(write(tmp_path, problem(forecast="forecast.csv"))) == [
        f"{csv_path}: line 1 (header): both output_tokens_per_s and requests_per_s; expected "
        "one of them"]
