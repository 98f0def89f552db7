"""Bad input, tried systematically: hypothesis mutates a valid problem file (and a valid forecast CSV)
and runs `planner solve` in-process on each mutant.

Every case must end in one of three ways, never a traceback, an internal error or a hang:
- exit 2, `error: invalid input`, every line naming the file and the field (key path, or CSV line);
- exit 1, `no plan:` with a diagnosis (a valid problem that has no plan);
- exit 0 with a JSON plan.

Inputs that are invalid whatever else changed (NaN, ±inf, negative numbers, unknown ids, bad units,
empty id sets, ...) must be exit 2. The problems are tiny (toy catalog, analytic performance model,
~0.2 s a solve); the examples are derandomized so CI sees the same cases every run.
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner.cli import app
from planner.schema import Problem

TOY_CATALOG = Path(__file__).parent / "data" / "toy-catalog.yaml"
runner = CliRunner()

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)

# A valid problem touching most of the schema: two periods, an owned and a cloud site, an existing
# fleet that retires, a workload restricted to both sites, a supply cap. Solves in ~0.2 s.
BASE: dict[str, Any] = {
    "name": "fuzz",
    "periods": [{"id": "p1", "hours": 4380}, {"id": "p2", "hours": 4380}],
    "finance": {"discount_rate": 0.05, "life_years": 4, "maintenance_share": 0.05},
    "sites": [
        {"id": "dc1", "power_mw": 1, "pue": 1.2, "racks": 20, "rack_power_kw": 40,
         "electricity_usd_per_kwh": 0.08},
        {"id": "cloud", "kind": "cloud", "max_accelerators": 64},
    ],
    "systems": ["toy-a", "toy-b"],
    "catalog": [str(TOY_CATALOG)],
    "workloads": [{
        "id": "chat", "model": "toy-model", "precision": "fp8", "input_tokens": 100,
        "output_tokens": 100, "slo": {"ttft_ms": 2000, "tpot_ms": 50},
        "demand": {"p1": 5000, "p2": 10000}, "utilization": 0.8, "headroom": 0.1,
        "sites": ["dc1", "cloud"],
    }],
    "existing": [{"site": "dc1", "system": "toy-a", "count": 1, "retires_after": "p1"}],
    "policy": {"max_purchases": {"toy-a": 10}},
}

GOOD_CSV = [["period", "workload", "output_tokens_per_s"], ["p1", "chat", "5000"],
            ["p2", "chat", "10000"]]

_schema = Problem.model_json_schema()
FIELD_NAMES = set(_schema["properties"]) | {
    key for definition in _schema.get("$defs", {}).values() for key in definition.get("properties", {})
} | {"period", "workload", "site", "output_tokens_per_s", "requests_per_s"}
"""Every key a problem file (or forecast column) can have: an error line must name one of them."""

WHOLE_FILE = ("file not found", "forecast file not found", "no rows", "cannot read", "is a directory",
              "is not a regular file")

# Values that are wrong almost anywhere they are put, plus a few plausible-looking ones.
JUNK = st.one_of(
    st.sampled_from([
        None, "", " ", "abc", "20 parsecs", "20MW", "abc kW", "350 kW", "-1", "1e999", "nan", ".inf",
        True, False, [], {}, [1, 2], {"a": 1}, [{"id": "x"}], 0, 1, -1, -0.5, 0.0, 1e300, -1e300,
        1e-300, math.inf, -math.inf, math.nan, 2**63, 10**30, "ü€🙂", "x\ny", "p1", "p2", "dc1",
        "cloud", "chat", "toy-a", "toy-model", "2027", 2027, "fp8", "owned",
    ]),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)


# ---------------------------------------------------------------------------------------------
# running a case and judging the outcome
# ---------------------------------------------------------------------------------------------


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _names_a_field(line: str, folder: Path) -> bool:
    """`FILE: LOCATOR: ...` with FILE in the case's folder and LOCATOR a key path or CSV line."""
    match = re.match(rf"{re.escape(str(folder))}/[^:]+: (.*)$", line)
    if not match:
        return False
    rest = match[1]
    if rest.startswith(WHOLE_FILE) or rest.startswith("(top level)") \
            or re.match(r"(line|byte) \d+", rest):
        return True
    locator, _, message = rest.partition(": ")
    if message.startswith("unknown key"):  # the locator is the misspelt key itself
        return True
    return any(token in FIELD_NAMES for token in re.split(r"[.\[\]:]+", locator))


def _invalid_anywhere(data: Any) -> str | None:
    """A value no field of a problem accepts: NaN, ±inf or a negative number (as a value)."""
    if isinstance(data, dict):
        return next((r for r in map(_invalid_anywhere, data.values()) if r), None)
    if isinstance(data, list):
        return next((r for r in map(_invalid_anywhere, data) if r), None)
    if isinstance(data, float) and not math.isfinite(data):
        return f"non-finite {data}"
    if isinstance(data, int | float) and not isinstance(data, bool) and data < 0:
        return f"negative {data}"
    return None


def solve(folder: Path, problem_text: str, *extra: str) -> tuple[int, str, str]:
    path = folder / "problem.yaml"
    path.write_text(problem_text, encoding="utf-8")
    result = runner.invoke(app, ["solve", str(path), "--time-limit", "5", "--format", "json", *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}\n{problem_text}"
    )
    return result.exit_code, result.stdout, result.stderr


NO_PLAN = ("infeasible", "no_solution", "unbounded", "error")
"""Statuses of `solve --format json`'s object when it exits 1."""


def check(folder: Path, code: int, stdout: str, stderr: str, case: str,
          must_fail: str | None = None, must_solve: bool = False) -> None:
    """The contract: exit 0 (a JSON plan), 1 (no plan, with a diagnosis) or 2 (every line names
    the file and the field); never a traceback or an internal error."""
    where = f"\n--- case ---\n{case}\n--- stderr ---\n{stderr}"
    assert "Traceback" not in stdout + stderr, where
    assert "internal error" not in stderr, where
    assert code in (0, 1, 2), f"exit {code}" + where
    if must_fail:
        assert code == 2, f"expected exit 2 ({must_fail}), got {code}" + where
    if must_solve:
        assert code in (0, 1), f"expected a solve, got exit {code}" + where
    if code == 0:
        assert isinstance(json.loads(stdout), dict), where
    elif code == 1:
        assert stderr.startswith("no plan:") and len(stderr.strip()) > len("no plan:"), where
        assert json.loads(stdout)["status"] in NO_PLAN, where
    else:
        assert stderr.startswith("error: invalid input\n"), where
        assert stdout == "", where
        lines = [ln.removeprefix("  • ") for ln in stderr.splitlines()[1:]]
        assert lines, where
        for line in lines:
            assert _names_a_field(line, folder), f"line does not name file and field: {line!r}" + where


def run_case(folder: Path, data: Any, must_fail: str | None = None, must_solve: bool = False,
             *extra: str) -> int:
    text = data if isinstance(data, str) else _dump(data)
    if must_fail is None and not isinstance(data, str):
        must_fail = _invalid_anywhere(data)
    code, stdout, stderr = solve(folder, text, *extra)
    check(folder, code, stdout, stderr, text, must_fail, must_solve)
    return code


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_the_base_problem_solves(folder):
    assert run_case(folder, BASE) == 0
    csv_path = folder / "forecast.csv"
    csv_path.write_text("\n".join(",".join(row) for row in GOOD_CSV) + "\n")
    assert run_case(folder, BASE, None, True, "--demand", str(csv_path)) == 0


# ---------------------------------------------------------------------------------------------
# 1. random edits at random places of the valid problem
# ---------------------------------------------------------------------------------------------


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found: list[tuple] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


def _parent(data: Any, path: tuple) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


@st.composite
def edited_problems(draw) -> tuple[dict[str, Any], list[str]]:
    data = copy.deepcopy(BASE)
    log: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(data, path), path[-1]
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "rename",
                                       "duplicate", "wrap"]))
        if action == "replace":
            parent[key] = draw(JUNK)
        elif action == "delete":
            del parent[key]
        elif action == "wrap":  # right value, wrong shape
            parent[key] = draw(st.sampled_from([[parent[key]], {"value": parent[key]}, str(parent[key])]))
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from([f"{key}s", f"{key}_x", str(key).upper(), "ü"]))] = parent.pop(key)
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        else:
            parent[key] = None
        log.append(f"{action} {'.'.join(map(str, path))}")
    return data, log


@settings(FUZZ, max_examples=260)
@given(case=edited_problems())
def test_random_edits_of_a_valid_problem(folder, case):
    data, _log = case
    run_case(folder, data)


# ---------------------------------------------------------------------------------------------
# 2. targeted mistakes, each with the outcome it must have
# ---------------------------------------------------------------------------------------------


def _set(path: tuple, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    _parent(data, path)[path[-1]] = value
    return data


def _without(path: tuple) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    del _parent(data, path)[path[-1]]
    return data


NUMERIC_PATHS = [
    ("periods", 0, "hours"), ("finance", "discount_rate"), ("finance", "life_years"),
    ("finance", "maintenance_share"), ("sites", 0, "power_mw"), ("sites", 0, "pue"),
    ("sites", 0, "racks"), ("sites", 0, "rack_power_kw"), ("sites", 0, "electricity_usd_per_kwh"),
    ("sites", 1, "max_accelerators"), ("workloads", 0, "input_tokens"),
    ("workloads", 0, "output_tokens"), ("workloads", 0, "slo", "ttft_ms"),
    ("workloads", 0, "slo", "tpot_ms"), ("workloads", 0, "demand", "p1"),
    ("workloads", 0, "utilization"), ("workloads", 0, "headroom"), ("existing", 0, "count"),
    ("policy", "max_purchases", "toy-a"),
]
ID_PATHS = {  # where an id refers to something defined elsewhere
    ("workloads", 0, "model"): "model", ("systems", 0): "system", ("existing", 0, "system"): "system",
    ("existing", 0, "site"): "site", ("workloads", 0, "sites", 0): "site",
    ("existing", 0, "retires_after"): "period",
}
ANY_BAD_NUMBER = st.sampled_from([math.nan, math.inf, -math.inf, -1, -1e-9, 1e300, 10**30, -(10**30)])
BAD_TEXT_NUMBER = st.sampled_from(["20 parsecs", "abc kW", "lots", "1,000", "nan", "inf", "1e999",
                                   "", "--5", "5 5", "0x10", "½"])


@st.composite
def targeted(draw) -> tuple[Any, str | None, bool]:
    """(problem data or raw text, reason it must fail (None: either way), must it solve)."""
    kind = draw(st.sampled_from([
        "bad-number", "text-number", "count-with-unit", "unknown-id", "unicode-id", "missing-key",
        "periods-order", "periods-duplicate", "numeric-period-ids", "demand-unknown-period",
        "empty-set", "top-level", "wrong-type", "power-zero", "huge-valid", "tiny-valid",
    ]))
    if kind == "bad-number":
        return _set(draw(st.sampled_from(NUMERIC_PATHS)), draw(ANY_BAD_NUMBER)), kind, False
    if kind == "text-number":
        path = draw(st.sampled_from(NUMERIC_PATHS))
        return _set(path, draw(BAD_TEXT_NUMBER)), kind, False
    if kind == "count-with-unit":
        path = draw(st.sampled_from([("sites", 0, "racks"), ("existing", 0, "count"),
                                     ("workloads", 0, "input_tokens"), ("sites", 1, "max_accelerators"),
                                     ("policy", "max_purchases", "toy-a"), ("sites", 0, "rack_units")]))
        return _set(path, draw(st.sampled_from(["20MW", "20 kW", "3 racks", "1.5k", "2e3"]))), None, False
    if kind == "unknown-id":
        path = draw(st.sampled_from(sorted(ID_PATHS, key=str)))
        value = draw(st.sampled_from(["nope", "toy-c", "dc9", "p3", "chat2", "TOY-A", "toy_a"]))
        return _set(path, value), kind, False
    if kind == "unicode-id":
        path = draw(st.sampled_from([("periods", 0, "id"), ("sites", 0, "id"), ("workloads", 0, "id"),
                                     ("workloads", 0, "model"), ("systems", 1), ("name",)]))
        junk = draw(st.sampled_from(["ü€🙂", "a\nb", "a b", "\t", "", " ", "x" * 200, "‮evil",
                                     "a:b", "[0]", "--x", "a/b"]))
        data = _set(path, junk)
        # the id itself may be fine only where it is free text
        return data, None if path == ("name",) else kind, False
    if kind == "missing-key":
        path = draw(st.sampled_from([
            ("name",), ("periods",), ("sites",), ("workloads",), ("periods", 0, "id"), ("sites", 0, "id"),
            ("sites", 0, "power_mw"), ("workloads", 0, "id"), ("workloads", 0, "model"),
            ("workloads", 0, "input_tokens"), ("workloads", 0, "output_tokens"),
            ("workloads", 0, "demand"), ("existing", 0, "site"), ("existing", 0, "system"),
            ("existing", 0, "count"),
        ]))
        return _without(path), kind, False
    if kind == "periods-order":
        data = copy.deepcopy(BASE)
        data["periods"].reverse()
        return data, None, True  # the order given is the time order: a valid (different) problem
    if kind == "periods-duplicate":
        data = copy.deepcopy(BASE)
        data["periods"].append(copy.deepcopy(data["periods"][draw(st.integers(0, 1))]))
        return data, kind, False
    if kind == "numeric-period-ids":
        data = copy.deepcopy(BASE)
        first, second = draw(st.sampled_from([(2027, 2028), (2027, "2028"), (1.5, 2.5), (0, 1)]))
        data["periods"] = [{"id": first, "hours": 4380}, {"id": second, "hours": 4380}]
        data["workloads"][0]["demand"] = {first: 5000, second: 10000}
        data["existing"][0]["retires_after"] = first
        ints = all(isinstance(x, int) or str(x).isdigit() for x in (first, second))
        return data, None if ints else "a period id that is a float", ints
    if kind == "demand-unknown-period":
        data = copy.deepcopy(BASE)
        data["workloads"][0]["demand"][draw(st.sampled_from(["p3", "P1", "p1 ", 3, "2027"]))] = 1
        return data, kind, False
    if kind == "empty-set":
        path = draw(st.sampled_from([("periods",), ("sites",), ("workloads",), ("systems",),
                                     ("workloads", 0, "sites"), ("workloads", 0, "precision"),
                                     ("catalog", 0), ("policy", "vendors")]))
        return _set(path, [] if path != ("catalog", 0) else ""), kind, False
    if kind == "top-level":
        text = draw(st.sampled_from(["", "\n", "~\n", "[]\n", "- 1\n- 2\n", "42\n", "'text'\n",
                                     "name\n", "{}\n", "!!binary aGVsbG8=\n", "a: b: c\n", "\ufeff",
                                     "[unclosed\n", "&a [*a]\n", "? [1, 2]\n: x\n"]))
        return text, kind, False
    if kind == "wrong-type":
        path = draw(st.sampled_from(sorted(set(map(tuple, _paths(BASE))), key=str)))
        value = draw(st.sampled_from([[1, 2], {"a": 1}, None, [[]], {"p1": {"p2": 3}}]))
        return _set(path, value), None, False  # some keys (e.g. an optional one) accept null
    if kind == "power-zero":
        path = draw(st.sampled_from([("sites", 0, "power_mw"), ("sites", 0, "racks"),
                                     ("sites", 1, "max_accelerators"), ("policy", "max_purchases", "toy-a"),
                                     ("workloads", 0, "demand", "p1"), ("existing", 0, "count")]))
        return _set(path, 0), None, True  # valid; may well have no plan
    if kind == "tiny-valid":  # small positive numbers are valid (some below a documented minimum)
        path = draw(st.sampled_from(NUMERIC_PATHS))
        return _set(path, draw(st.sampled_from([1e-300, 1e-12, 0.01, 0.5, 1]))), None, False
    # huge-valid: large but sane numbers solve or have no plan; absurd ones are input errors
    path = draw(st.sampled_from([("workloads", 0, "demand", "p2"), ("sites", 0, "power_mw"),
                                 ("sites", 0, "racks"), ("periods", 0, "hours"),
                                 ("existing", 0, "count"), ("policy", "max_purchases", "toy-a")]))
    value = draw(st.sampled_from([1e6, 1e9, 1e12, 1e15, 1e20, 1e300, 10**18]))
    return _set(path, value), None, False


@settings(FUZZ, max_examples=170)
@given(case=targeted())
def test_targeted_mistakes(folder, case):
    data, must_fail, must_solve = case
    run_case(folder, data, must_fail, must_solve)


# ---------------------------------------------------------------------------------------------
# 3. forecast CSVs
# ---------------------------------------------------------------------------------------------

CELL_JUNK = st.sampled_from(["", " ", "lots", "-3", "nan", "inf", "-inf", "1e999", "1e300", "5k",
                             "5,000", "ü", "p3", "chat2", "dc9", '"', "0", "1e-300", "NaN"])


@st.composite
def forecasts(draw) -> tuple[str, str | None]:
    """(CSV text, why it must fail or None)."""
    rows = copy.deepcopy(GOOD_CSV)
    must_fail: str | None = None
    delimiter, prefix, newline, ragged = ",", "", "\n", False
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from([
            "drop-column", "extra-column", "cell", "duplicate-row", "short-row", "long-row",
            "shuffle", "blank-line", "delimiter", "bom", "crlf", "requests", "site-column", "empty",
            "header-only", "quote",
        ]))
        if kind == "drop-column" and rows and rows[0]:
            i = draw(st.integers(0, min(len(rows[0]), 3) - 1))  # period, workload or the rate
            rows = [r[:i] + r[i + 1:] for r in rows]
            must_fail = must_fail or kind
        elif kind == "extra-column":
            extra = draw(st.sampled_from(["region", "note", "", "Period"]))
            rows = [[*r, extra if i == 0 else "x"] for i, r in enumerate(rows)]
            must_fail = must_fail or kind
        elif kind == "cell" and len(rows) > 1 and rows[0]:
            r, c = draw(st.integers(1, len(rows) - 1)), draw(st.integers(0, len(rows[0]) - 1))
            if c < len(rows[r]):
                value = draw(CELL_JUNK)
                if value not in ("0", "1e-300") and not (rows[0][c] == "site" and not value.strip()):
                    must_fail = must_fail or f"{kind} {value!r}"
                rows[r][c] = value
        elif kind == "duplicate-row" and len(rows) > 1:
            rows.append(list(rows[draw(st.integers(1, len(rows) - 1))]))
            must_fail = must_fail or kind
        elif kind in ("short-row", "long-row") and len(rows) > 1 and len(rows[1]) > 1 and not ragged:
            rows[1] = rows[1][:-1] if kind == "short-row" else [*rows[1], "9"]
            must_fail, ragged = must_fail or kind, True
        elif kind == "shuffle":
            rows = rows[:1] + draw(st.permutations(rows[1:]))
        elif kind == "blank-line" and rows:
            rows.insert(draw(st.integers(1, len(rows))), [])
        elif kind == "delimiter":
            delimiter = draw(st.sampled_from([";", "\t", "|", " "]))
            must_fail = must_fail or kind
        elif kind == "bom":
            prefix = "\ufeff"
        elif kind == "crlf":
            newline = "\r\n"
        elif kind == "requests" and rows and "output_tokens_per_s" in rows[0]:
            rows[0] = ["requests_per_s" if c == "output_tokens_per_s" else c for c in rows[0]]
        elif kind == "site-column" and rows and "site" not in rows[0]:
            site = draw(st.sampled_from(["dc1", "cloud", ""]))
            rows = [[*rows[0], "site"]] + [[*r, site] for r in rows[1:]]
        elif kind == "empty":
            rows = []
            must_fail = must_fail or kind
        elif kind == "header-only":
            rows = rows[:1]
            must_fail = must_fail or kind
        elif kind == "quote":
            rows = [[f'"{c}"' if c else c for c in r] for r in rows]
    if rows and not any(rows[1:]):
        must_fail = must_fail or "no data rows"
    text = prefix + newline.join(delimiter.join(r) for r in rows) + (newline if rows else "")
    return text, must_fail


@settings(FUZZ, max_examples=130)
@given(case=forecasts(), via=st.sampled_from(["option", "problem"]))
def test_forecast_csvs(folder, case, via):
    text, must_fail = case
    csv_path = folder / "forecast.csv"
    csv_path.write_text(text, encoding="utf-8", newline="")
    data = copy.deepcopy(BASE)
    del data["workloads"][0]["demand"]
    if via == "problem":
        data["forecast"] = csv_path.name
        run_case(folder, data, must_fail)
    else:
        run_case(folder, data, must_fail, False, "--demand", str(csv_path))


def test_a_forecast_that_is_not_utf8(folder):
    csv_path = folder / "latin1.csv"
    csv_path.write_bytes("period,workload,output_tokens_per_s\np1,chat,5\xe90\n".encode("latin-1"))
    run_case(folder, BASE, "not UTF-8", False, "--demand", str(csv_path))


def test_a_problem_that_is_not_utf8(folder):
    path = folder / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    result = runner.invoke(app, ["solve", str(path), "--time-limit", "5"])
    check(folder, result.exit_code, result.stdout, result.stderr, "latin-1 bytes", "not UTF-8")


# ---------------------------------------------------------------------------------------------
# bugs the fuzz found outside the input layer, now fixed
# ---------------------------------------------------------------------------------------------


def test_supply_cap_on_a_system_with_no_owned_placement(folder):
    data = _set(("sites", 0, "rack_power_kw"), 1)  # no toy system fits a 1 kW rack
    data.pop("existing")  # which would be an input error: the existing toy-a stand there
    code, _, stderr = solve(folder, _dump(data))
    assert code in (0, 1) and "internal error" not in stderr, stderr


def test_cloud_quota_with_no_rentable_system(folder):
    data = _set(("systems",), ["toy-b"])  # toy-b has no rental price
    code, _, stderr = solve(folder, _dump(data))
    assert code in (0, 1) and "internal error" not in stderr, stderr


# ---------------------------------------------------------------------------------------------
# what an adversarial pass over the CLI found (paths, CSV shapes, sweep edits), now errors
# ---------------------------------------------------------------------------------------------


def _invalid(result: Any) -> list[str]:
    assert result.exit_code == 2, result.stdout + result.stderr
    return [line.removeprefix("  • ") for line in result.stderr.splitlines()[1:]]


def test_an_integer_past_pythons_digit_limit_is_a_field_error(folder):
    text = _dump(BASE).replace("racks: 20", "racks: 1" + "0" * 5000)
    code, _, stderr = solve(folder, text)
    assert code == 2 and "sites[0:dc1].racks: found inf" in stderr, stderr


def test_a_forecast_column_given_twice_is_an_error(folder):
    path = folder / "twice.csv"
    path.write_text("period,workload,output_tokens_per_s,period\np1,chat,5000,p2\n")
    (folder / "problem.yaml").write_text(_dump(BASE))
    result = runner.invoke(app, ["solve", str(folder / "problem.yaml"), "--demand", str(path)])
    assert _invalid(result) == [f"{path}: line 1 (header): column 'period' appears more than "
                                "once; expected each column once"]


MEASURED_HEADER = ("system,model,precision,tp,pp,ep,concurrency,input_tokens,output_tokens,"
                   "output_tokens_per_s,ttft_ms,tpot_ms,source")
MEASURED_ROW = "toy-a,toy-model,fp8,8,1,1,32,512,256,9000,300,20,bench"


@pytest.mark.parametrize(("rows", "message"), [
    ([MEASURED_ROW + ",extra"], "row 2: 1 more cells than the header has columns"),
    ([MEASURED_ROW, MEASURED_ROW], "row 3: the same operating point as row 2"),
    (['toy-a,toy-model,fp8,8,1,1,32,512,256,9000,300,20,"' + "x" * 200_000 + '"'],
     "line 2: field larger than field limit"),
])
def test_a_measured_csv_of_the_wrong_shape_is_an_error(folder, rows, message):
    (folder / "measured.csv").write_text("\n".join([MEASURED_HEADER, *rows]) + "\n")
    (folder / "problem.yaml").write_text(_dump({**BASE, "performance": "measured.csv"}))
    result = runner.invoke(app, ["solve", str(folder / "problem.yaml"), "--time-limit", "5"])
    assert any(line.startswith(f"{folder / 'measured.csv'}: {message}")
               for line in _invalid(result)), result.stderr


def test_measured_rows_for_a_system_not_in_the_catalog_are_an_error(folder):
    (folder / "measured.csv").write_text(f"{MEASURED_HEADER}\n{MEASURED_ROW.replace('toy-a', 'toy-q')}\n")
    (folder / "problem.yaml").write_text(_dump({**BASE, "performance": "measured.csv"}))
    result = runner.invoke(app, ["solve", str(folder / "problem.yaml"), "--time-limit", "5"])
    assert _invalid(result) == [f"{folder / 'problem.yaml'}: performance: {folder / 'measured.csv'} "
                                "has rows for system 'toy-q', which is not in the catalog; "
                                "expected catalog ids"]


@pytest.mark.parametrize(("sets", "message"), [
    (["finance.discount_rate=0.05", "finance.discount_rate=0.1"],
     "--set finance.discount_rate: given more than once"),
    (["catalog.systems.toy-a.id=toy-b"], "--set catalog.systems.toy-a.id: a system's id names it"),
    (["catalog.systems.toy-a.accelerator=nope"],
     "--set catalog.systems.toy-a.accelerator=nope: accelerator: found 'nope'"),
    (["catalog.systems.toy-a.power_kw_max=0.0001"],
     "--set catalog.systems.toy-a.power_kw_max=0.0001: power_kw_max: found 0.0001 kW; expected "
     "at least its accelerators' TDP"),
])
def test_sweep_edits_the_catalog_would_refuse_are_errors(folder, sets, message):
    (folder / "problem.yaml").write_text(_dump(BASE))
    args = [arg for s in sets for arg in ("--set", s)]
    result = runner.invoke(app, ["sweep", str(folder / "problem.yaml"), *args, "--quiet"])
    assert _invalid(result)[0].startswith(message), result.stderr


def test_a_sweep_chart_is_written_in_the_format_its_name_asks_for(folder):
    (folder / "problem.yaml").write_text(_dump(BASE))
    args = ["sweep", str(folder / "problem.yaml"), "--set", "finance.discount_rate=0.05,0.1",
            "--quiet", "--time-limit", "5"]
    refused = runner.invoke(app, [*args, "--chart", str(folder / "c.txt")])
    assert refused.exit_code == 2 and "expected .png, .svg, .pdf" in refused.stderr
    chart = folder / "new-dir" / "c.svg"  # a directory that does not exist yet is created
    assert runner.invoke(app, [*args, "--chart", str(chart)]).exit_code == 0
    assert chart.read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in chart.parent.iterdir()) == ["c.svg"]  # no temporaries


def test_output_paths_that_are_devices_or_dangling_links_are_refused(folder):
    dangling = folder / "dangling"
    dangling.symlink_to(folder / "nowhere" / "deeper")
    problem = str(folder / "problem.yaml")
    (folder / "problem.yaml").write_text(_dump(BASE))
    for args in (["--out", str(dangling)], ["--report", "/dev/null"]):
        result = runner.invoke(app, ["solve", problem, *args])
        assert result.exit_code == 2, result.stdout
    assert Path("/dev/null").is_char_device()


@pytest.mark.parametrize(("command", "args", "found"), [
    ("solve", ["--out", "o", "--report", "o/plan.json"], "plan.json, which --out o writes"),
    ("solve", ["--out", "o", "--report", "o/../o/fleet.csv"], "fleet.csv, which --out o writes"),
    ("sweep", ["--out", "o", "--report", "o/sweep.json"], "sweep.json, which --out o writes"),
    ("sweep", ["--chart", "c.svg", "--report", "c.svg"], "--chart"),
    ("compare", ["--out", "o", "--report", "o/compare.csv"], "compare.csv, which --out o"),
])
def test_outputs_that_would_overwrite_one_another_are_refused(tmp_path, monkeypatch, command,
                                                              args, found):
    # plan.json had ended up holding the HTML report; a chart was lost under the report
    (tmp_path / "problem.yaml").write_text(_dump(BASE))
    monkeypatch.chdir(tmp_path)
    sets = ["--set", "finance.discount_rate=0.05,0.1"] if command == "sweep" else []
    by = ["--by", "vendor"] if command == "compare" else []
    result = runner.invoke(app, [command, "problem.yaml", *sets, *by, *args])
    assert result.exit_code == 2 and f"found the path of {found}" in result.stderr, \
        result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["problem.yaml"]  # refused first


@pytest.mark.parametrize("option", ["--out", "--report", "--chart"])
def test_an_empty_output_path_is_refused_not_read_as_the_current_directory(
        tmp_path, monkeypatch, option):
    folder = tmp_path
    (folder / "problem.yaml").write_text(_dump(BASE))
    monkeypatch.chdir(folder)
    command = "sweep" if option == "--chart" else "solve"
    sets = ["--set", "finance.discount_rate=0.05,0.1"] if command == "sweep" else []
    result = runner.invoke(app, [command, "problem.yaml", *sets, option, ""])
    assert result.exit_code == 2 and "found an empty path" in result.stderr, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["problem.yaml"]


@pytest.mark.parametrize(("where", "value", "field"), [
    (("systems",), ["toy-a", "toy-b", "toy-a"], "systems"),
    (("workloads", 0, "precision"), ["fp8", "fp8"], "workloads[0:chat].precision"),
    (("policy",), {"vendors": ["toyco", "toyco"]}, "policy.vendors"),
])
def test_a_choice_listed_twice_is_an_error(folder, where, value, field):
    # toy-a listed twice was two systems to the MIP: a different (dearer) optimum, or none
    code, _, stderr = solve(folder, _dump(_set(where, value)))
    assert code == 2 and f"{field}: " in stderr and "listed more than once; expected each " \
        "once" in stderr, stderr


def test_more_threads_than_help_is_a_usage_error(folder):
    (folder / "problem.yaml").write_text(_dump(BASE))
    result = runner.invoke(app, ["solve", str(folder / "problem.yaml"), "--threads", "257"])
    assert result.exit_code == 2 and "--threads" in result.stderr


def test_more_periods_than_a_plan_can_build_in_time_is_an_error(folder):
    periods = [{"id": f"w{i}", "hours": 168} for i in range(1001)]
    code, _, stderr = solve(folder, _dump({**BASE, "periods": periods, "existing": []}))
    assert code == 2 and "periods: found list; expected a list with at most 1000 items" in stderr


def test_a_set_on_a_list_without_ids_names_its_indexes(folder):
    (folder / "problem.yaml").write_text(_dump(BASE))
    result = runner.invoke(app, ["sweep", str(folder / "problem.yaml"), "--set",
                                 "existing.toy-a.count=0,1", "--quiet"])
    assert _invalid(result) == ["--set existing.toy-a.count: no item 'toy-a' in existing "
                                "(indexes 0 to 0)"]


def test_estimate_with_no_option_prints_its_status_in_json():
    result = runner.invoke(app, ["estimate", "--system", "nvidia-hgx-h100", "--model",
                                 "llama-3.1-8b", "--tpot-ms", "1", "--format", "json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["status"] == "infeasible" and payload["diagnosis"][0].startswith("TPOT 1 ms")
