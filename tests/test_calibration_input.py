"""`planner calibrate --csv FILE` on malformed CSVs: exit 2, one clear line per problem.

None of these runs the fit: `_fit_stack` is replaced by a function that fails the test.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.errors import InputError
from planner.performance import calibration
from planner.performance.calibration import DEFAULT_CSV, load_rows

runner = CliRunner()

HEADER = "accelerator,model,scenario,weights,tokens_per_s_per_acc"
GOOD = "NVIDIA L40S,llama3.1-8b,Offline,fp8,1200.5"


@pytest.fixture(autouse=True)
def no_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fit must not run on bad input")

    monkeypatch.setattr(calibration, "_fit_stack", fail)


def calibrate_error(path: Path) -> str:
    """Run the CLI on `path`; assert exit 2 without a traceback; return stderr, unwrapped."""
    result = runner.invoke(app, ["calibrate", "--csv", str(path)])
    output = result.stderr + result.stdout
    assert result.exit_code == 2, output
    assert "internal error" not in output
    assert "Traceback" not in output
    text = " ".join(result.stderr.split())  # rich may wrap long lines
    assert str(path) in text or path.name in text
    return text


def write(tmp_path: Path, *lines: str, name: str = "calib.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "calib.csv"
    path.write_bytes(b"")
    text = calibrate_error(path)
    assert "line 1 (header)" in text and "empty file" in text


def test_header_only(tmp_path: Path) -> None:
    text = calibrate_error(write(tmp_path, HEADER))
    assert "no data rows" in text


@pytest.mark.parametrize(
    ("cell", "found"),
    [("abc", "found 'abc'"), ("-5", "found -5"), ("0", "found 0"), ("", "found an empty or NA cell"),
     ("inf", "found inf"), ("NaN", "found an empty or NA cell"), ("1e308", "found 1e+308")],
)
def test_bad_tokens_per_s(tmp_path: Path, cell: str, found: str) -> None:
    path = write(tmp_path, HEADER, GOOD, f"NVIDIA L40S,llama3.1-8b,Server,fp8,{cell}")
    text = calibrate_error(path)
    assert "row 3: column 'tokens_per_s_per_acc'" in text
    assert found in text and "expected a number > 0 and at most 1e+06" in text


def test_all_row_problems_reported_together(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER,
                 "NVIDIA L40S,llama3.1-8b,Offline,fp8,x",
                 GOOD,
                 "NVIDIA L40S,llama3.1-8b,offline,fp8,5",
                 "NVIDIA L40S,llama3.1-8b,Server,fp8,-1")
    text = calibrate_error(path)
    assert "row 2: column 'tokens_per_s_per_acc': found 'x'" in text
    assert "row 4: column 'scenario': found 'offline'; expected Offline or Server" in text
    assert "row 5: column 'tokens_per_s_per_acc': found -1" in text


def test_missing_columns_all_listed(tmp_path: Path) -> None:
    text = calibrate_error(write(tmp_path, "accelerator,model,tokens_per_s_per_acc", "a,b,1"))
    assert "line 1 (header): missing column 'scenario'" in text
    assert "line 1 (header): missing column 'weights'" in text
    assert "missing column 'accelerator'" not in text


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "calib.csv"
    path.write_bytes(f"{HEADER}\nNVIDIA L40S,llama\xff,Offline,fp8,5\n".encode("latin-1"))
    text = calibrate_error(path)
    assert "not UTF-8" in text and "byte " in text


def test_binary_junk(tmp_path: Path) -> None:
    path = tmp_path / "calib.csv"
    rng = random.Random(1)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(2000)))
    assert "not UTF-8" in calibrate_error(path)


def test_unparseable_csv(tmp_path: Path) -> None:
    text = calibrate_error(write(tmp_path, HEADER, GOOD, GOOD + ",7,8"))
    assert "line 3: found 7 fields; expected 5" in text


def test_unclosed_quote(tmp_path: Path) -> None:
    text = calibrate_error(write(tmp_path, HEADER, GOOD, 'NVIDIA L40S,"llama3.1-8b,Offline,fp8,5'))
    assert "line 3: a quoted field is never closed" in text


def test_directory(tmp_path: Path) -> None:
    text = calibrate_error(tmp_path)
    assert "is a directory; expected a CSV file" in text


def test_nothing_maps(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, "Acme X1,llama3.1-8b,Offline,fp8,5",
                 "NVIDIA L40S,gpt-9,Server,fp8,5", "NVIDIA L40S,llama3.1-8b,Server,INT4,5")
    text = calibrate_error(path)
    assert "no row maps to a catalog accelerator, model and precision" in text
    assert "row 2: Acme X1 / llama3.1-8b / Offline / fp8: unmapped accelerator" in text
    assert "row 3:" in text and "unmapped model" in text
    assert "row 4:" in text and "unmapped weights" in text


def test_skipped_rows_are_not_checked(tmp_path: Path) -> None:
    """An unmapped row is skipped with a note, not validated (the reference has blank cells
    in such rows); extra columns are ignored."""
    path = write(tmp_path, HEADER + ",notes", GOOD + ",a note", "Acme X1,llama3.1-8b,Server,fp8,,")
    rows, skipped = load_rows(path)
    assert list(rows["row"]) == [2] and list(rows["measured"]) == [1200.5]
    assert skipped == ["row 3: Acme X1 / llama3.1-8b / Server / fp8: unmapped accelerator"]


def test_load_rows_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_rows(write(tmp_path, HEADER))
    assert len(info.value.problems) == 1


@pytest.mark.skipif(not DEFAULT_CSV.exists(), reason="calibration CSV not found")
def test_reference_csv_loads() -> None:
    rows, skipped = load_rows(DEFAULT_CSV)
    assert len(rows) == 274 and len(skipped) == 53
    assert set(rows["scenario"]) == {"Offline", "Server"}
