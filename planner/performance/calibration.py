"""Fit per-software-stack efficiencies to MLPerf Inference v5.1 results.

Data: `mlperf_v51_calibration.csv`, one row per result; `tokens_per_s_per_acc` is output tokens
per second per accelerator. Mapping (rows that cannot be mapped are skipped and listed in
`CalibrationResult.skipped`):

* accelerators: H100-SXM → nvidia-h100-sxm; H200-SXM (also "Virtualized") → nvidia-h200-sxm;
  **H200-NVL → an H200 variant** (same 141 GB / 4.8 TB/s HBM, but a 600 W PCIe card: dense
  FP8 1,671 instead of 1,979 TFLOPS, and NVLink bridges join only 4 GPUs, so the scale-up
  domain is 4); B200 → nvidia-b200-sxm; GB200 → nvidia-gb200; GB300 → nvidia-gb300;
  MI300X/MI325X/MI355X → amd-mi3xxx; L40S → nvidia-l40s. Skipped: mixed MI300X+MI325X
  clusters, RTX PRO 6000, Arc Pro, and rows whose weights are UNSET or INT4.
* models: llama2-70b-99 and -99.9 → llama-2-70b (the two accuracy targets are separate
  results of the same runs, so both are kept as rows), llama3.1-405b → llama-3.1-405b,
  llama3.1-8b → llama-3.1-8b, mixtral-8x7b → mixtral-8x7b; precision mxfp4 → fp4.
* lengths (mean input / measured mean output, mlperf-conditions.md): llama2-70b 222 / 294,
  405b 9,429 / 654, 8b 871 / 128, mixtral 427 / 145; Server p99 limits (TTFT / TPOT):
  2,000/200, 6,000/175, 2,000/100, 2,000/200 ms.

Aggregation: rows are grouped by (accelerator, model, scenario, precision) and the group's
median is the target (a result submitted by many partners on the same hardware does not get
more weight); the error table has one line per group with the number of rows it stands for.

Prediction of a group: the model enumerates the system's aggregated options (every TP/PP/EP
layout and concurrency); Offline = the highest output tokens/s per accelerator over all options
that fit memory; Server = the highest under the benchmark's p99 TTFT and TPOT limits, where the
p99 comes from the queueing-tail model in `latency` (parameter `server_tail`).

Fit: per stack, coordinate search over (compute_eff_fp8, compute_eff_fp4, bw_eff,
step_overhead_ms, server_tail) minimizing the mean squared log error of the groups, each
parameter confined to a physical range; no per-row factors.
"""

from __future__ import annotations

import datetime as _dt
import io
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from planner.atomic import write_atomically
from planner.errors import InputError
from planner.performance.enumerate import evaluate
from planner.performance.latency import Hardware
from planner.performance.params import (
    DEFAULT_PARAMS,
    FITTED_NAMES,
    Params,
)
from planner.performance.params import (
    load_params as _load_params,
)
from planner.performance.spec import WorkloadSpec
from planner.schema import MAX_TOKENS_PER_S_PER_ACCELERATOR, Catalog, Mode, Precision
from planner.yamlio import read_text

DEFAULT_CSV = Path(__file__).resolve().parents[3] / "shared" / "reference" / (
    "mlperf_v51_calibration.csv"
)

ACCELERATOR_MAP: dict[str, str] = {
    "NVIDIA H100-SXM-80GB": "nvidia-h100-sxm",
    "NVIDIA H200-SXM-141GB": "nvidia-h200-sxm",
    "Virtualized NVIDIA H200-SXM-141GB": "nvidia-h200-sxm",
    "NVIDIA H200-NVL-141GB": "nvidia-h200-nvl",
    "NVIDIA B200-SXM-180GB": "nvidia-b200-sxm",
    "NVIDIA GB200": "nvidia-gb200",
    "NVIDIA GB300": "nvidia-gb300",
    "AMD Instinct MI300X 192GB HBM3": "amd-mi300x",
    "AMD Instinct MI325X 256GB HBM3e": "amd-mi325x",
    "AMD Instinct MI355X 288GB HBM3e": "amd-mi355x",
    "NVIDIA L40S": "nvidia-l40s",
}
SYSTEM_OF: dict[str, str] = {
    "nvidia-h100-sxm": "nvidia-hgx-h100",
    "nvidia-h200-sxm": "nvidia-hgx-h200",
    "nvidia-h200-nvl": "nvidia-hgx-h200",
    "nvidia-b200-sxm": "nvidia-hgx-b200",
    "nvidia-gb200": "nvidia-gb200-nvl72",
    "nvidia-gb300": "nvidia-gb300-nvl72",
    "amd-mi300x": "amd-mi300x-oam8",
    "amd-mi325x": "amd-mi325x-oam8",
    "amd-mi355x": "amd-mi355x-oam8",
    "nvidia-l40s": "nvidia-l40s-pcie8",
}
MODEL_MAP = {
    "llama2-70b-99": "llama-2-70b",
    "llama2-70b-99.9": "llama-2-70b",
    "llama3.1-405b": "llama-3.1-405b",
    "llama3.1-8b": "llama-3.1-8b",
    "mixtral-8x7b": "mixtral-8x7b",
}
PRECISION_MAP = {"fp8": Precision.fp8, "fp4": Precision.fp4, "mxfp4": Precision.fp4,
                 "bf16": Precision.bf16}


@dataclass(frozen=True)
class Benchmark:
    """MLPerf conditions of one model: mean lengths and Server p99 limits."""

    input_tokens: int
    output_tokens: int
    server_ttft_ms: float
    server_tpot_ms: float


CONDITIONS: dict[str, Benchmark] = {
    "llama-2-70b": Benchmark(222, 294, 2000.0, 200.0),
    "llama-3.1-405b": Benchmark(9429, 654, 6000.0, 175.0),
    "llama-3.1-8b": Benchmark(871, 128, 2000.0, 100.0),
    "mixtral-8x7b": Benchmark(427, 145, 2000.0, 200.0),
}

BOUNDS: dict[str, tuple[float, float]] = {
    "compute_eff_fp8": (0.05, 1.0),
    "compute_eff_fp4": (0.05, 1.0),
    "bw_eff": (0.3, 1.0),
    "step_overhead_ms": (0.0, 40.0),
    "server_tail": (1.0, 30.0),
}
"""Physical ranges of the fitted parameters."""


@dataclass
class CalibrationResult:
    """Fitted parameters per stack and the predicted-vs-measured table."""

    params: dict[str, Params]
    table: pd.DataFrame
    median_abs_error: float
    worst_abs_error: float
    skipped: list[str] = field(default_factory=list)
    rows_per_stack: dict[str, int] = field(default_factory=dict)
    csv_name: str = "mlperf_v51_calibration.csv"

    def stack_errors(self) -> dict[str, tuple[float, float]]:
        """(median, worst) absolute relative error per stack."""
        out = {}
        for stack, g in self.table.groupby("stack"):
            e = g["rel_error"].abs()
            out[str(stack)] = (float(e.median()), float(e.max()))
        return out


def _h200_nvl(catalog: Catalog) -> Any:
    base = catalog.accelerators["nvidia-h200-sxm"]
    tflops = {p: v * 1671.0 / 1979.0 for p, v in base.tflops_dense.items()}
    return base.model_copy(
        update={"id": "nvidia-h200-nvl", "tflops_dense": tflops, "scale_up_domain": 4,
                "tdp_w": 600.0}
    )


REQUIRED_COLUMNS = ("accelerator", "model", "scenario", "weights", "tokens_per_s_per_acc")
"""Columns `load_rows` reads; any other column (the reference has many) is ignored."""
SCENARIOS = ("Offline", "Server")
SKIPS_SHOWN = 5
"""Skip reasons quoted when no row at all maps to the catalog."""


def _read_csv(path: Path) -> pd.DataFrame:
    """The CSV as text columns, or InputError if it cannot be read, decoded or parsed."""
    # -sig: Excel's byte-order mark
    text = read_text(path, "a CSV file", "calibration CSV not found", encoding="utf-8-sig")
    expected = (f"expected a header line with columns {', '.join(REQUIRED_COLUMNS)} and one "
                "row per result")
    try:
        return pd.read_csv(io.StringIO(text))
    except pd.errors.EmptyDataError:
        raise InputError([f"{path}: line 1 (header): empty file; {expected}"]) from None
    except (pd.errors.ParserError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        if m := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", reason):
            raise InputError([f"{path}: line {m[2]}: found {m[3]} fields; expected {m[1]}, one "
                              "per header column"]) from None
        if m := re.search(r"EOF inside string starting at row (\d+)", reason):  # 0-based
            raise InputError([f"{path}: line {int(m[1]) + 1}: a quoted field is never closed; "
                              "expected a closing '\"'"]) from None
        raise InputError([f"{path}: cannot parse as CSV ({reason}); {expected}"]) from None


def _measured(cell: Any) -> tuple[float | None, str]:
    """A `tokens_per_s_per_acc` cell as a number > 0 and at most
    MAX_TOKENS_PER_S_PER_ACCELERATOR (10¹⁰⁸ made the fit's errors inf), or (None, what was
    found)."""
    if _blank(cell):
        return None, _shown(cell)
    try:
        value = float(cell)
    except (TypeError, ValueError):
        return None, _shown(cell)
    if not math.isfinite(value) or not 0 < value <= MAX_TOKENS_PER_S_PER_ACCELERATOR:
        return None, f"{value:g}"
    return value, ""


def load_rows(csv_path: Path | str) -> tuple[pd.DataFrame, list[str]]:
    """Map CSV rows to (accelerator, model, scenario, precision); return rows and skip notes.

    Rows are numbered as lines of the file with the header as row 1. Validated, each problem
    raised as one line of an `InputError` naming the file, row and column: the file exists, is
    not a directory, is readable UTF-8 and parses as CSV; the header has every column of
    `REQUIRED_COLUMNS` (all missing ones are listed; other columns are ignored); there is at
    least one data row. Rows whose accelerator, model or weights are not mapped are skipped
    (with a note) and not checked further; in every other row `scenario` must be Offline or
    Server and `tokens_per_s_per_acc` a finite number > 0 (all such problems are raised
    together). If no row maps, that is an error too (quoting the first skip notes): there
    would be nothing to fit.
    """
    path = Path(csv_path)
    raw = _read_csv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError([f"{path}: line 1 (header): missing column '{c}'; expected columns "
                          f"{', '.join(REQUIRED_COLUMNS)} (others are ignored)" for c in missing])
    if raw.empty:
        raise InputError([f"{path}: no data rows after the header; expected one row per "
                          "result"])
    skipped: list[str] = []
    problems: list[str] = []
    keep = []
    for i, r in raw.iterrows():
        row = int(str(i)) + 2
        acc = ACCELERATOR_MAP.get(str(r["accelerator"]))
        model = MODEL_MAP.get(str(r["model"]))
        prec = PRECISION_MAP.get(str(r["weights"]).lower())
        if acc is None or model is None or prec is None:
            why = ("accelerator" if acc is None else "model" if model is None else "weights")
            skipped.append(f"row {row}: {r['accelerator']} / {r['model']} / "
                           f"{r['scenario']} / {r['weights']}: unmapped {why}")
            continue
        where = f"{path}: row {row}"
        ok = True
        if r["scenario"] not in SCENARIOS:
            problems.append(f"{where}: column 'scenario': found {_shown(r['scenario'])}; "
                            f"expected {' or '.join(SCENARIOS)}")
            ok = False
        measured, found = _measured(r["tokens_per_s_per_acc"])
        if measured is None:
            problems.append(f"{where}: column 'tokens_per_s_per_acc': found {found}; expected "
                            f"a number > 0 and at most {MAX_TOKENS_PER_S_PER_ACCELERATOR:g} "
                            "(output tokens/s per accelerator)")
            ok = False
        if ok:
            keep.append({"row": row, "accelerator": acc, "model": model,
                         "scenario": r["scenario"], "precision": prec.value,
                         "measured": measured})
    if problems:
        raise InputError(problems)
    if not keep:
        more = len(skipped) - SKIPS_SHOWN
        raise InputError(
            [f"{path}: no row maps to a catalog accelerator, model and precision (all "
             f"{len(skipped)} rows skipped); expected at least one row with an accelerator of "
             f"{', '.join(repr(a) for a in list(ACCELERATOR_MAP)[:3])}, ..., a model of "
             f"{', '.join(MODEL_MAP)} and weights {', '.join(PRECISION_MAP)}"]
            + [f"{path}: {note}" for note in skipped[:SKIPS_SHOWN]]
            + ([f"{path}: ... and {more} more skipped rows"] if more > 0 else [])
        )
    return pd.DataFrame(keep), skipped


def _blank(cell: Any) -> bool:
    """Whether a cell is empty (pandas reads an empty cell, and NA, NaN, null ..., as NaN)."""
    return cell is None or (isinstance(cell, float) and math.isnan(cell)) or not str(cell).strip()


def _shown(cell: Any) -> str:
    """A cell as a message quotes it: empty (pandas also reads NA, NaN, null ... as empty), or its
    text in quotes (cut at 40 characters)."""
    if _blank(cell):
        return "an empty or NA cell"
    text = str(cell)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def group_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Median tokens/s/accelerator per (accelerator, model, scenario, precision)."""
    g = rows.groupby(["accelerator", "model", "scenario", "precision"], as_index=False)
    return g.agg(measured=("measured", "median"), rows=("row", "size"),
                 first_row=("row", "min"))


class _Predictor:
    """Predicts a group's tokens/s/accelerator for given params (caches static inputs)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.accs = dict(catalog.accelerators)
        if "nvidia-h200-sxm" in self.accs:
            self.accs["nvidia-h200-nvl"] = _h200_nvl(catalog)

    def stack(self, acc_id: str) -> str:
        return self.accs[acc_id].software_stack

    def hardware(self, acc_id: str) -> Hardware:
        system = self.catalog.systems[SYSTEM_OF[acc_id]]
        return Hardware.of(system, self.accs[acc_id])

    def predict(self, acc_id: str, model_id: str, scenario: str, precision: str,
                params: Params) -> float:
        bench = CONDITIONS[model_id]
        server = scenario == "Server"
        spec = WorkloadSpec(
            model_id, Precision(precision), bench.input_tokens, bench.output_tokens,
            bench.server_ttft_ms if server else None, bench.server_tpot_ms if server else None,
            disaggregated=False,
        )
        opts = evaluate(spec, self.catalog.models[model_id], self.hardware(acc_id), params,
                        (Mode.aggregated,))
        if not opts.data:
            return 0.0
        d = opts.data
        per_acc = d["output_tokens_per_s"] / (d["tp"] * d["pp"])
        ok = np.ones(len(per_acc), dtype=bool)
        if server:
            ok = (d["ttft_ms"] <= bench.server_ttft_ms) & (d["tpot_ms"] <= bench.server_tpot_ms)
        return float(per_acc[ok].max()) if ok.any() else 0.0


def _loss(pred: np.ndarray, meas: np.ndarray) -> float:
    """Mean squared log error (a prediction of 0 counts as a factor-10 miss)."""
    ratio = np.where(pred > 0, pred / meas, 0.1)
    return float(np.mean(np.log(ratio) ** 2))


def _fit_stack(pr: _Predictor, groups: pd.DataFrame, start: Params, rounds: int) -> Params:
    """Coordinate search: each parameter over a shrinking multiplicative grid, kept in BOUNDS."""
    recs = list(groups.itertuples(index=False))
    meas = groups["measured"].to_numpy(float)
    present = set(groups["precision"])
    names = [n for n in FITTED_NAMES
             if not (n == "compute_eff_fp4" and "fp4" not in present)
             and not (n == "compute_eff_fp8" and "fp8" not in present)
             and not (n == "server_tail" and not (groups["scenario"] == "Server").any())]

    def loss_of(p: Params) -> float:
        pred = np.array([pr.predict(r.accelerator, r.model, r.scenario, r.precision, p)
                         for r in recs])
        return _loss(pred, meas)

    best, best_loss = start, loss_of(start)
    span = 2.0
    for _ in range(rounds):
        for name in names:
            lo, hi = BOUNDS[name]
            cur = getattr(best, name)
            if name == "step_overhead_ms":
                cands = np.clip(cur + np.linspace(-1, 1, 7) * 4.0 * span, lo, hi)
            else:
                cands = np.clip(cur * span ** np.linspace(-1, 1, 7), lo, hi)
            for v in np.unique(cands):
                trial = best.with_values(**{name: float(v)})
                val = loss_of(trial)
                if val < best_loss - 1e-12:
                    best, best_loss = trial, val
        span = max(span ** 0.6, 1.05)
    return best


def _catalog_or_reference(catalog: Catalog | None) -> Catalog:
    """The catalog to calibrate against: the one given, else the shipped catalog."""
    if catalog is None:
        from planner.catalog import load_catalog

        catalog = load_catalog()
    return catalog


def evaluate_table(
    groups: pd.DataFrame, params: dict[str, Params], catalog: Catalog
) -> pd.DataFrame:
    """Predicted vs measured per group with the given per-stack params."""
    pr = _Predictor(catalog)
    out = []
    for r in groups.itertuples(index=False):
        stack = pr.stack(r.accelerator)
        p = params.get(stack, replace(DEFAULT_PARAMS, stack=stack))
        pred = pr.predict(r.accelerator, r.model, r.scenario, r.precision, p)
        out.append({"row": r.first_row, "rows": r.rows, "stack": stack,
                    "accelerator": r.accelerator, "model": r.model, "scenario": r.scenario,
                    "precision": r.precision, "measured": r.measured, "predicted": pred,
                    "rel_error": pred / r.measured - 1.0})
    return pd.DataFrame(out)


def fit(
    csv_path: Path | str = DEFAULT_CSV, catalog: Catalog | None = None, rounds: int = 4
) -> CalibrationResult:
    """Fit each stack's parameters to the CSV and report predicted vs measured per group.

    The CSV is validated by `load_rows` (InputError on bad input); it is also an InputError if
    none of the mapped rows' accelerators is in the catalog.
    """
    cat = _catalog_or_reference(catalog)
    groups, skipped = _catalog_groups(csv_path, cat)
    pr = _Predictor(cat)
    groups["stack"] = [pr.stack(a) for a in groups["accelerator"]]
    params: dict[str, Params] = {}
    rows_per_stack: dict[str, int] = {}
    for stack, g in groups.groupby("stack"):
        start = replace(DEFAULT_PARAMS, stack=str(stack), calibrated=True)
        params[str(stack)] = _fit_stack(pr, g, start, rounds)
        rows_per_stack[str(stack)] = int(g["rows"].sum())
    table = evaluate_table(groups, params, cat)
    err = table["rel_error"].abs()
    return CalibrationResult(params, table, float(err.median()), float(err.max()), skipped,
                             rows_per_stack, Path(csv_path).name)


def shipped_table(csv_path: Path | str = DEFAULT_CSV,
                  catalog: Catalog | None = None) -> pd.DataFrame:
    """Predicted vs measured per group with the parameters every solve uses now: the catalog's
    calibration (the shipped `catalogs/calibration.yaml`, unless `catalog` says otherwise)."""
    cat = _catalog_or_reference(catalog)
    groups, _ = _catalog_groups(csv_path, cat)
    pr = _Predictor(cat)
    stacks = {pr.stack(a) for a in groups["accelerator"]}
    return evaluate_table(groups, {s: load_params(cat, s) for s in stacks}, cat)


def _catalog_groups(csv_path: Path | str, cat: Catalog) -> tuple[pd.DataFrame, list[str]]:
    """The CSV's groups whose accelerator the catalog has, and the rows skipped."""
    rows, skipped = load_rows(csv_path)  # first: a bad CSV is reported before any work
    rows = rows[rows["accelerator"].isin(
        [a for a in ACCELERATOR_MAP.values()
         if a in cat.accelerators or a == "nvidia-h200-nvl"])]
    if rows.empty:
        raise InputError([f"{csv_path}: no mapped row's accelerator is in the catalog; expected "
                          f"at least one of {', '.join(sorted(set(ACCELERATOR_MAP.values())))}"])
    return group_rows(rows), skipped


def write_calibration(result: CalibrationResult, path: Path | str) -> None:
    """Write `stacks: {stack: {param: value, ..., source, rows, median_abs_error, ...}}`."""
    errs = result.stack_errors()
    stacks: dict[str, Any] = {}
    for stack, p in sorted(result.params.items()):
        entry: dict[str, Any] = {n: round(float(getattr(p, n)), 4) for n in FITTED_NAMES}
        entry["source"] = f"fit by `planner calibrate` to {result.csv_name}"
        entry["rows"] = result.rows_per_stack.get(stack, 0)
        entry["groups"] = int((result.table["stack"] == stack).sum())
        entry["median_abs_error"] = round(errs[stack][0], 4)
        entry["worst_abs_error"] = round(errs[stack][1], 4)
        entry["fitted_on"] = _dt.date.today().isoformat()
        stacks[stack] = entry
    header = (
        "# Performance-model parameters per software stack, fitted by `planner calibrate`\n"
        "# (planner.performance.calibration.fit) to MLPerf Inference v5.1 results.\n"
        "# compute_eff_*: share of dense peak TFLOPS reached by GEMMs; bw_eff: share of HBM\n"
        "# bandwidth in decode; step_overhead_ms: fixed time per decode step; server_tail:\n"
        "# p99/mean multiplier of queueing and prefill-interference delay (Server scenario).\n"
        "# Stacks not listed use planner.performance.params.DEFAULT_PARAMS (marked uncalibrated).\n"
    )
    path = Path(path)
    # the catalog every solve reads is never half-written
    write_atomically(path.parent, {path.name: header + yaml.safe_dump({"stacks": stacks},
                                                                       sort_keys=False)})


def load_params(catalog: Catalog, stack: str) -> Params:
    """Parameters of `stack` from the catalog's calibration (defaults, marked, if absent)."""
    return _load_params(catalog.calibration, stack)
