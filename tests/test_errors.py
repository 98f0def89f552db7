"""Each kind of bad catalog entry yields one clear message naming file, field path, found and
expected; the CLI turns it into exit code 2 without a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from planner.catalog import load_catalog
from planner.cli import app
from planner.errors import InputError, NoPlanError, describe_validation_error
from planner.schema import Problem
from planner.yamlio import read_yaml

GOOD = """\
accelerators:
  - id: my-gpu
    vendor: myco
    name: My GPU
    memory_gb: 80
    memory_bandwidth_tbps: 3
    tflops_dense: {bf16: 1000}
    tdp_w: 700
    scale_up_domain: 8
    scale_up_bandwidth_gb_per_s: 450
    scale_out_bandwidth_gb_per_s: 50
    software_stack: mystack
    sources: {default: {source: "my test", confidence: low, kind: USER}}
systems:
  - id: my-server
    vendor: myco
    name: My server
    accelerator: my-gpu
    accelerators: 8
    power_kw_max: 10
    rack_units: 8
    price_usd: 300000
    sources: {default: {source: "my test", confidence: low, kind: USER}}
"""


def _bad(tmp_path: Path, old: str, new: str) -> Path:
    assert old in GOOD
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        load_catalog([path])
    return info.value.problems


def test_the_good_file_loads(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert load_catalog([path]).systems["my-server"].power_kw_max == 10


# (edit, the one expected message after "<file>: ")
CASES = {
    "yaml-syntax": (
        ("name: My GPU", "name: [My GPU"),
        "line 5, column 14: YAML syntax error: expected ',' or ']', but got ':'",
    ),
    "tab-indent": (
        ("  - id: my-server", "\t- id: my-server"),
        "line 15, column 1: YAML syntax error: found character '\\t' that cannot start any token",
    ),
    "unknown-key": (
        ("tdp_w: 700", "tdp_ww: 700"),
        "accelerators[0:my-gpu].tdp_ww: unknown key (check the spelling; `planner schema` lists "
        "the allowed keys)",
    ),
    "unknown-nested-key": (
        ("confidence: low, kind: USER}}\nsystems", "confidence: low, knd: USER}}\nsystems"),
        "accelerators[0:my-gpu].sources.default.knd: unknown key",
    ),
    "wrong-type": (
        ("power_kw_max: 10", 'power_kw_max: "ten"'),
        "systems[0:my-server].power_kw_max: found 'ten'; expected a valid number",
    ),
    "unit-in-value": (
        ("memory_gb: 80", "memory_gb: 80GB"),
        "accelerators[0:my-gpu].memory_gb: found '80GB'; expected a valid number (write the number "
        "alone: the unit is part of the field name)",
    ),
    "negative-power": (
        ("power_kw_max: 10", "power_kw_max: -10"),
        "systems[0:my-server].power_kw_max: found -10; expected a value greater than 0",
    ),
    "bad-enum": (
        ("confidence: low, kind: USER}}\nsystems", "confidence: lo, kind: USER}}\nsystems"),
        "accelerators[0:my-gpu].sources.default.confidence: found 'lo'; expected 'high', 'medium' "
        "or 'low'",
    ),
    "bad-precision": (
        ("{bf16: 1000}", "{bf16: 1000, fp3: 5}"),
        "accelerators[0:my-gpu].tflops_dense.fp3: found 'fp3'; expected 'bf16', 'fp8', 'fp4' or "
        "'int8'",
    ),
    "missing-field": (
        ("    memory_bandwidth_tbps: 3\n", ""),
        "accelerators[0:my-gpu].memory_bandwidth_tbps: required field is missing",
    ),
    "bad-id": (
        ("id: my-server", "id: My Server"),
        "systems[0:My Server].id: found 'My Server'; expected a lowercase id of letters a-z",
    ),
    "cross-field": (
        ("    rack_units: 8\n", ""),
        "systems[0:my-server]: give rack_units, or whole_rack: true",
    ),
    "idle-above-max": (
        ("power_kw_max: 10", "power_kw_max: 10\n    power_kw_idle: 12"),
        "systems[0:my-server]: power_kw_idle 12.0 exceeds power_kw_max 10.0",
    ),
    "unknown-accelerator": (
        ("accelerator: my-gpu", "accelerator: my-gpx"),
        "systems.my-server.accelerator: found 'my-gpx'; expected one of the accelerator ids (",
    ),
    "top-level-list": (
        (GOOD, "- a\n- b\n"),
        "(top level): found list; expected a mapping with accelerators, systems and/or models",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_entry_gives_one_clear_message(tmp_path, case):
    (old, new), expected = CASES[case]
    path = _bad(tmp_path, old, new)
    problems = _problems(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}: {expected}"), problems[0]


def test_unknown_accelerator_lists_the_known_ids(tmp_path):
    (line,) = _problems(_bad(tmp_path, "accelerator: my-gpu", "accelerator: my-gpx"))
    assert "'my-gpx'" in line
    for known in ("my-gpu", "nvidia-h200-sxm", "amd-mi300x"):
        assert known in line


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    text = GOOD.replace("tdp_w: 700", "tdp_ww: 700").replace("power_kw_max: 10", "power_kw_max: -1")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    problems = _problems(path)
    assert [p.split(": ")[1] for p in problems] == [
        "accelerators[0:my-gpu].tdp_ww", "systems[0:my-server].power_kw_max"
    ]


def test_problems_in_two_files_are_both_reported(tmp_path):
    (tmp_path / "a").mkdir()
    first = _bad(tmp_path / "a", "tdp_w: 700", "tdp_ww: 700")
    second = tmp_path / "second.yaml"
    second.write_text("models: [{id: x1}]\n")
    with pytest.raises(InputError) as info:
        load_catalog([first, second])
    files = {p.split(": ")[0] for p in info.value.problems}
    assert files == {str(first), str(second)}


def test_read_yaml_missing_and_directory(tmp_path):
    with pytest.raises(InputError) as info:
        read_yaml(tmp_path / "nope.yaml")
    assert info.value.problems == [f"{tmp_path / 'nope.yaml'}: file not found"]
    with pytest.raises(InputError) as info:
        read_yaml(tmp_path)
    assert info.value.problems == [f"{tmp_path}: is a directory; expected a YAML file"]


def test_read_yaml_undecodable(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InputError) as info:
        read_yaml(path)
    assert info.value.problems == [f"{path}: byte 9: not UTF-8 text; expected a YAML file"]


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_pipe_or_a_device_is_refused_not_read(tmp_path, special):
    # reading a FIFO waits for a writer forever; /dev/zero never ends
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "problem.yaml"
        os.mkfifo(path)
    with pytest.raises(InputError) as info:
        read_yaml(path)
    assert info.value.problems == [
        f"{path}: is not a regular file (a pipe or a device); expected a YAML file"]


def test_a_path_the_system_cannot_use_is_an_input_error(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    for path in (loop, tmp_path / ("x" * 300), Path("a\0b.yaml")):
        with pytest.raises(InputError) as info:
            read_yaml(path)
        assert ": cannot read (" in info.value.problems[0]  # NUL is shown escaped


def test_union_members_that_do_not_apply_are_not_reported():
    data = {"name": "x", "periods": [{"id": "p1"}], "sites": [{"id": "dc1", "power_mw": -1}],
            "workloads": [{"id": "w", "model": "m1", "input_tokens": 1, "output_tokens": 1}]}
    with pytest.raises(ValidationError) as info:
        Problem.model_validate(data)
    lines = describe_validation_error(info.value, "p.yaml", data)
    assert lines == ["p.yaml: sites[0:dc1].power_mw: found -1; expected a value greater than or equal to 0"]


def test_a_bad_value_inside_a_per_period_mapping_names_the_period():
    data = {"name": "x", "periods": [{"id": "p1"}], "sites": [{"id": "dc1", "power_mw": {"p1": -2}}],
            "workloads": [{"id": "w", "model": "m1", "input_tokens": 1, "output_tokens": 1}]}
    with pytest.raises(ValidationError) as info:
        Problem.model_validate(data)
    lines = describe_validation_error(info.value, "p.yaml", data)
    assert lines == [
        "p.yaml: sites[0:dc1].power_mw.p1: found -2; expected a value greater than or equal to 0"
    ]


def test_error_exit_codes():
    assert InputError(["x"]).exit_code == 2
    assert NoPlanError("infeasible").exit_code == 1
    assert str(InputError(["a", "b"])) == "a\nb"


# ---------------------------------------------------------------------------------------------
# the same through the CLI
# ---------------------------------------------------------------------------------------------

runner = CliRunner()


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_cli_validate_reports_the_message_with_exit_2(tmp_path, case):
    (old, new), expected = CASES[case]
    path = _bad(tmp_path, old, new)
    result = runner.invoke(app, ["catalog", "validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: invalid input\n")
    assert f"  • {path}: {expected}" in result.stderr


def test_a_key_given_twice_is_an_error_not_last_wins(tmp_path):
    path = _bad(tmp_path, "power_kw_max: 10", "power_kw_max: 10\n    power_kw_max: 100")
    assert _problems(path) == [
        f"{path}: line 21, column 5: YAML syntax error: key 'power_kw_max' appears twice in one mapping"
    ]


def test_yaml_merge_keys_still_work(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("base: &base {a: 1, b: 2}\nuse:\n  <<: *base\n  b: 3\n")
    assert read_yaml(path) == {"base": {"a": 1, "b": 2}, "use": {"a": 1, "b": 3}}
