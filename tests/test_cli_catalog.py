"""`planner catalog ...`, `planner schema ...` and `planner --help` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.catalog import load_catalog
from planner.cli import app

TOY = Path(__file__).parent / "data" / "toy-catalog.yaml"
REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def _clean_exit_2(result) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("error: invalid input\n"), result.stderr


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_help_exits_0():
    result = _invoke("--help")
    assert result.exit_code == 0
    for command in ("solve", "catalog", "schema", "estimate"):
        assert command in result.stdout


def test_short_help_on_a_subcommand():
    result = _invoke("catalog", "-h")
    assert result.exit_code == 0
    for command in ("list", "show", "validate"):
        assert command in result.stdout


def test_no_arguments_prints_usage():
    result = _invoke()
    assert result.exit_code in (0, 2)
    assert "Usage" in result.output


def test_unknown_command_is_a_usage_error():
    result = _invoke("sovle", "x.yaml")
    assert result.exit_code == 2
    assert "No such command" in result.output


# ---------------------------------------------------------------------------------------------
# catalog list
# ---------------------------------------------------------------------------------------------


def test_list_shows_every_system_with_vendor_accelerators_power_and_price(catalog):
    result = _invoke("catalog", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "vendor" in line)
    for column in ("id", "vendor", "accelerators", "power_kw_max", "price_usd"):
        assert column in header
    for system in catalog.systems.values():
        row = next((line for line in lines if f" {system.id} " in line), None)
        assert row is not None, system.id
        cells = [c.strip() for c in row.strip("│ ").split("│")]
        assert cells[0] == system.id
        assert cells[1] == system.vendor
        assert str(system.accelerators) in cells
    h200 = next(line for line in lines if " nvidia-hgx-h200 " in line)
    assert "393,000" in h200 and "10.2" in h200
    tpu = next(line for line in lines if " google-tpu-v6e-8 " in line)
    assert "2.7" in tpu  # rent-only: its rental price


def test_list_json_by_vendor_has_only_that_vendor(catalog):
    result = _invoke("catalog", "list", "--vendor", "amd", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert {r["id"] for r in rows} == {s.id for s in catalog.systems.values() if s.vendor == "amd"}
    assert {"amd-mi300x-oam8", "amd-mi325x-oam8", "amd-mi355x-oam8"} <= {r["id"] for r in rows}
    for row in rows:
        assert row["vendor"] == "amd"
        assert row["accelerators"] == 8
        assert row["power_kw_max"] > 0 and row["price_usd"] > 0


def test_list_an_unknown_vendor_exits_2():
    result = _invoke("catalog", "list", "--vendor", "acme")
    assert result.exit_code == 2
    assert "--vendor acme: unknown vendor; expected one of amd, " in result.stderr


def test_list_vendor_is_case_insensitive():
    result = _invoke("catalog", "list", "--vendor", "AMD", "--format", "json")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["rows"]) >= 3


def test_list_csv():
    result = _invoke("catalog", "list", "--vendor", "nvidia", "--format", "csv")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("id,vendor,")
    assert any(line.startswith("nvidia-gb200-nvl72,nvidia,") for line in lines[1:])
    assert not any(",amd," in line for line in lines)


@pytest.mark.parametrize("kind", ["accelerators", "models"])
def test_list_other_kinds(catalog, kind):
    result = _invoke("catalog", "list", "--kind", kind, "--format", "json")
    assert result.exit_code == 0
    assert {r["id"] for r in json.loads(result.stdout)["rows"]} == set(getattr(catalog, kind))


def test_list_unknown_kind_exits_2():
    result = _invoke("catalog", "list", "--kind", "racks")
    _clean_exit_2(result)
    assert "--kind: found 'racks'; expected systems, accelerators or models" in result.stderr


def test_list_includes_a_user_catalog():
    result = _invoke("catalog", "list", "--catalog", str(TOY), "--vendor", "toyco", "--format", "json")
    assert result.exit_code == 0
    assert {r["id"] for r in json.loads(result.stdout)["rows"]} == {"toy-a", "toy-rack"}


# ---------------------------------------------------------------------------------------------
# catalog show
# ---------------------------------------------------------------------------------------------


def test_show_prints_fields_and_sources():
    result = _invoke("catalog", "show", "nvidia-hgx-h200")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)["system"]
    assert shown["id"] == "nvidia-hgx-h200"
    assert shown["accelerator"] == "nvidia-h200-sxm"
    assert shown["accelerators"] == 8
    assert shown["power_kw_max"] == 10.2
    assert shown["price_usd"] > 0
    assert "default" in shown["sources"]
    assert shown["sources"]["price_usd"]["confidence"] in ("high", "medium", "low")
    assert len(shown["sources"]["default"]["source"]) > 10


@pytest.mark.parametrize(("entry_id", "kind"), [("amd-mi355x", "accelerator"),
                                                 ("deepseek-r1", "model")])
def test_show_accelerators_and_models(entry_id, kind):
    result = _invoke("catalog", "show", entry_id)
    assert result.exit_code == 0
    assert yaml.safe_load(result.stdout)[kind]["id"] == entry_id


def test_show_unknown_id_exits_2_with_a_hint():
    result = _invoke("catalog", "show", "nvidia-hgx-h20")
    _clean_exit_2(result)
    assert "unknown catalog id 'nvidia-hgx-h20'; did you mean nvidia-hgx-h200" in result.stderr


def test_show_no_such_id_exits_2():
    result = _invoke("catalog", "show", "no-such-id")
    _clean_exit_2(result)
    assert "unknown catalog id 'no-such-id'" in result.stderr
    assert result.stdout == ""


# ---------------------------------------------------------------------------------------------
# catalog validate
# ---------------------------------------------------------------------------------------------


def test_validate_the_shipped_catalog(catalog):
    result = _invoke("catalog", "validate")
    assert result.exit_code == 0, result.output
    files = len([p for p in (REPO / "catalogs").glob("*.yaml") if p.name != "calibration.yaml"])
    assert result.stdout.strip() == (
        f"ok: {files} files (the shipped catalog): {len(catalog.accelerators)} accelerators, "
        f"{len(catalog.systems)} systems, {len(catalog.models)} models"
    )


def test_validate_a_user_file_counts_its_own_entries():
    result = _invoke("catalog", "validate", str(TOY))
    assert result.exit_code == 0
    toy = yaml.safe_load(TOY.read_text())
    assert result.stdout.strip() == (
        f"ok: 1 file (with the shipped catalog): {len(toy['accelerators'])} accelerators, "
        f"{len(toy['systems'])} systems, {len(toy['models'])} models")


def test_validate_an_empty_file_or_directory(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    result = _invoke("catalog", "validate", str(tmp_path / "empty.yaml"))
    assert result.stdout.strip() == "ok: 1 file (with the shipped catalog): 0 accelerators, " \
        "0 systems, 0 models"  # not the shipped catalog's counts, as it was
    (tmp_path / "none").mkdir()
    result = _invoke("catalog", "validate", str(tmp_path / "none"))
    assert result.exit_code == 2
    assert f"{tmp_path / 'none'}: no catalog files (*.yaml, *.yml) in this directory" in \
        result.stderr


def test_validate_a_bad_file_names_file_and_key(tmp_path):
    text = TOY.read_text().replace("memory_bandwidth_tbps: 4\n", "memory_bandwith_tbps: 4\n", 1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = _invoke("catalog", "validate", str(bad))
    _clean_exit_2(result)
    assert f"{bad}: accelerators[0:toy-gpu].memory_bandwith_tbps: unknown key" in result.stderr
    assert f"{bad}: accelerators[0:toy-gpu].memory_bandwidth_tbps: required field is missing" in (
        result.stderr
    )


def test_validate_a_missing_file(tmp_path):
    result = _invoke("catalog", "validate", str(tmp_path / "nope.yaml"))
    _clean_exit_2(result)
    assert f"{tmp_path / 'nope.yaml'}: catalog file or directory not found" in result.stderr


def test_validate_a_duplicate_names_both_files(tmp_path):
    copy = tmp_path / "copy.yaml"
    copy.write_text(TOY.read_text())
    result = _invoke("catalog", "validate", str(TOY), str(copy))
    _clean_exit_2(result)
    assert f"{copy}: accelerators.toy-gpu: duplicate id; already defined in {TOY}" in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--debug", "catalog", "validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    again = _invoke("catalog", "validate", str(tmp_path / "nope.yaml"))  # --debug does not stick
    assert again.exit_code == 2


# ---------------------------------------------------------------------------------------------
# schema
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "keys"), [
    ("problem", {"periods", "sites", "workloads", "systems", "existing", "objective"}),
    ("catalog", {"accelerators", "systems", "models"}),
])
def test_schema_prints_json_schema(kind, keys):
    result = _invoke("schema", kind)
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert keys <= set(schema["properties"])
    assert "$defs" in schema


def test_schema_problem_documents_fields():
    schema = json.loads(_invoke("schema", "problem").stdout)
    site = schema["$defs"]["Site"]
    assert site["additionalProperties"] is False
    assert "MW" in site["properties"]["power_mw"]["description"]


def test_schema_unknown_kind_is_a_usage_error():
    result = _invoke("schema", "plan")
    assert result.exit_code == 2
    assert "plan" in result.output


def test_estimate_of_requests_longer_than_the_context_exits_2():
    # they were estimated (a TTFT of hours) or, past the memory, reported as "no plan", exit 1
    for tokens in ("1000000", "100000000000000000000000"):
        result = _invoke("estimate", "--system", "nvidia-hgx-b200", "--model", "llama-3.3-70b",
                         "--input-tokens", tokens, "--output-tokens", "100")
        assert result.exit_code == 2
        assert "; expected at most llama-3.3-70b's context of 131,072 tokens" in result.stderr


@pytest.mark.parametrize(("calibration", "message"), [
    ("stacks: [1, 2]", "stacks: found list; expected a valid dictionary"),
    ("stacks: {toy: {bw_eff: 0}}", "stacks.toy.bw_eff: found 0; expected a value greater than 0"),
    ("stacks: {toy: {bw_eff: .nan}}", "stacks.toy.bw_eff: found nan"),
    ("stacks: {toy: {speed: 2}}", "stacks.toy.speed: unknown key"),
])
def test_a_catalog_directorys_calibration_is_validated(tmp_path, calibration, message):
    # it fed the performance model unchecked: a list crashed it, a 0 divided by zero
    (tmp_path / "toy.yaml").write_text(TOY.read_text())
    (tmp_path / "calibration.yaml").write_text(calibration + "\n")
    result = runner.invoke(app, ["catalog", "validate", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'calibration.yaml'}: {message}" in result.stderr


@pytest.mark.parametrize(("system", "uncalibrated"), [("intel-gaudi3-oam8", True),
                                                      ("nvidia-hgx-h200", False)])
def test_estimate_says_when_its_rates_are_uncalibrated(system, uncalibrated):
    # Gaudi's stack has no MLPerf results: its rates come from the model's defaults
    args = ["estimate", "--system", system, "--model", "llama-3.3-70b", "--precision", "fp8",
            "--input-tokens", "1024", "--output-tokens", "256", "--top", "2"]
    rows = json.loads(_invoke(*args, "--format", "json").stdout)["rows"]
    expected = "analytic, uncalibrated" if uncalibrated else "analytic"
    assert rows and {row["source"] for row in rows} == {expected}
    # a deployment's keys, as a solve prints them (less period, site and replicas)
    assert {"workload", "system", "precision", "mode", "tp", "pp", "ep", "concurrency",
            "speculative", "accelerators", "output_tokens_per_s", "ttft_ms", "tpot_ms",
            "memory_gb_per_accelerator"} <= set(rows[0])
    assert rows[0]["precision"] == "fp8" and rows[0]["ttft_ms"] == round(rows[0]["ttft_ms"], 6)
    table = _invoke(*args).stdout
    assert ("uncalibrated defaults" in table) == uncalibrated


def test_a_plan_on_uncalibrated_systems_says_so(toy_cli_file):
    # the toy catalog's stack has no calibration
    plan = json.loads(_invoke("solve", str(toy_cli_file), "--format", "json").stdout)
    assert {d["source"] for d in plan["deployments"]} == {"analytic, uncalibrated"}
    assert any(note.startswith("toy-") and "uncalibrated defaults" in note
               for note in plan["notes"]), plan["notes"]
