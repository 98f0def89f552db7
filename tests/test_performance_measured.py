"""Measured tables: validation messages, replacement of the analytic model, interpolation."""

from __future__ import annotations

import numpy as np
import pytest
from perf_fixtures import catalog

from planner.errors import InputError
from planner.performance import MeasuredTable, WorkloadSpec, candidates
from planner.schema import Precision

HEADER = ("system,model,precision,tp,pp,ep,concurrency,input_tokens,output_tokens,"
          "output_tokens_per_s,ttft_ms,tpot_ms,source\n")


def _table(tmp_path, rows: list[str]) -> MeasuredTable:
    p = tmp_path / "m.csv"
    p.write_text(HEADER + "\n".join(rows) + "\n")
    return MeasuredTable.from_csv(p)


ROWS = [
    "nvidia-hgx-h200,llama-3.3-70b,fp8,8,1,1,8,1024,1024,800,150,10,lab",
    "nvidia-hgx-h200,llama-3.3-70b,fp8,8,1,1,64,1024,1024,4000,300,16,lab",
    "nvidia-hgx-h200,llama-3.3-70b,fp8,8,1,1,256,1024,1024,9000,900,28,lab",
]


def test_validation_errors_name_row_and_column(tmp_path) -> None:
    bad = "nvidia-hgx-h200,llama-3.3-70b,fp7,8,1,1,0,1024,1024,800,150,10,lab"
    with pytest.raises(InputError) as exc:
        _table(tmp_path, [ROWS[0], bad])
    text = str(exc.value)
    assert "m.csv: row 3: column 'precision': found 'fp7'" in text
    assert "row 3: column 'concurrency'" in text


@pytest.mark.parametrize("row, expected", [
    ("nvidia-hgx-h200,llama-3.3-70b,fp8,8,1,1,8,1024,1024,1e308,150,10,lab",
     "m.csv: row 2: column 'output_tokens_per_s': found 1e+308 over tp × pp = 8 accelerators, "
     "1.25e+307 each; expected at most 1e+06 per accelerator"),
    ("nvidia-hgx-h200,llama-3.3-70b,fp8,1,1,1,8,1024,1024,2000000,150,10,lab",
     "found 2e+06 over tp × pp = 1 accelerators, 2e+06 each"),
    ("nvidia-hgx-h200,llama-3.3-70b,fp8,2048,1,1,8,1024,1024,800,150,10,lab",
     "row 2: column 'tp': found '2048'; expected input should be less than or equal to 1024"),
    ("nvidia-hgx-h200,llama-3.3-70b,fp8,8,1,1,1e30,1024,1024,800,150,10,lab",
     "row 2: column 'concurrency': found '1e30'"),
    ("nvidia-hgx-h200,llama-3.3-70b,fp8,8,1,1,8,1024,1024,800,inf,10,lab",
     "row 2: column 'ttft_ms': found 'inf'"),
])
def test_a_measurement_no_deployment_can_have_is_refused(tmp_path, row, expected) -> None:
    # 1e308 tok/s was accepted and gave an "optimal" plan at $0.004 per million tokens
    with pytest.raises(InputError) as exc:
        _table(tmp_path, [row])
    assert expected in str(exc.value)


def test_missing_column(tmp_path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("system,model\nx,y\n")
    with pytest.raises(InputError) as exc:
        MeasuredTable.from_csv(p)
    assert "missing column 'precision'" in str(exc.value)


def test_interpolation_monotone_and_clamped(tmp_path) -> None:
    t = _table(tmp_path, ROWS)
    c = np.array([1, 8, 20, 64, 100, 256, 1000])
    r = t.interpolate("nvidia-hgx-h200", "llama-3.3-70b", Precision.fp8, c, tp=8)
    for col in ("output_tokens_per_s", "ttft_ms", "tpot_ms"):
        assert np.all(np.diff(r[col].to_numpy()) >= 0)
    assert r["output_tokens_per_s"].iloc[0] == 800  # clamped, not extrapolated
    assert r["output_tokens_per_s"].iloc[-1] == 9000
    assert r["output_tokens_per_s"].iloc[2] == pytest.approx(800 + (20 - 8) / 56 * 3200)


def test_measured_rows_replace_analytic(tmp_path) -> None:
    t = _table(tmp_path, ROWS)
    cat = catalog()
    spec = WorkloadSpec("llama-3.3-70b", Precision.fp8, 1024, 1024, 2000, 20)
    df = candidates(spec, cat.systems["nvidia-hgx-h200"], cat, measured=t)
    assert (df["source"] == "measured").all()
    assert df["concurrency"].tolist() == [8, 64]  # 256 misses TPOT 20 ms
    other = candidates(spec, cat.systems["nvidia-hgx-b200"], cat, measured=t)
    assert (other["source"] == "analytic").all()
