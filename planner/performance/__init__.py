"""Performance model: what one deployment configuration of a workload on a system delivers.

Public API (the MIP and the CLI depend on exactly this):

* `WorkloadSpec` — model, precision, lengths, p99 targets, speculative, disaggregated, name;
* `candidates(spec, system, catalog, measured=None, top=None) -> DataFrame` — feasible,
  Pareto-pruned options of one workload on one system (columns: `enumerate.COLUMNS`);
* `candidate_table(specs, systems, catalog, measured=None) -> DataFrame` — their concatenation
  over workloads × systems in a deterministic order;
* `explain_infeasible(spec, system, catalog) -> str` — why no option fits, and what would.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from planner.performance.enumerate import (
    COLUMNS,
    evaluate,
    pareto_prune,
    slo_mask,
    sort_rows,
    to_frame,
)
from planner.performance.latency import Hardware
from planner.performance.measured import MeasuredTable
from planner.performance.memory import usable_bytes, weight_bytes
from planner.performance.params import Params, load_params
from planner.performance.spec import WorkloadSpec
from planner.schema import Catalog, Mode, System

__all__ = [
    "ANALYTIC",
    "COLUMNS",
    "UNCALIBRATED",
    "MeasuredTable",
    "WorkloadSpec",
    "candidate_table",
    "candidates",
    "explain_infeasible",
    "hardware_of",
    "params_for",
    "uncalibrated_note",
]


ANALYTIC = "analytic"
"""`source` of a candidate from the performance model calibrated on its stack's MLPerf results."""
UNCALIBRATED = "analytic, uncalibrated"
"""`source` of a candidate from the performance model's conservative defaults: its software
stack has no MLPerf results to calibrate on (Gaudi, TPU, Groq)."""


def uncalibrated_note(systems: list[str]) -> str:
    """The note that says the rates on `systems` are the uncalibrated defaults' (UNCALIBRATED)."""
    return (f"{', '.join(systems)}: rates from the performance model's uncalibrated defaults (no "
            "MLPerf results for the software stack); they are estimates")


def hardware_of(system: System, catalog: Catalog) -> Hardware:
    """The performance view of a system (its accelerator looked up in the catalog)."""
    return Hardware.of(system, catalog.accelerators[system.accelerator])


def params_for(system: System, catalog: Catalog) -> Params:
    """Calibrated parameters of the system's software stack, or the marked defaults."""
    stack = catalog.accelerators[system.accelerator].software_stack
    return load_params(catalog.calibration, stack)


def _modes(spec: WorkloadSpec) -> tuple[Mode, ...]:
    if spec.disaggregated:
        return (Mode.aggregated, Mode.prefill, Mode.decode)
    return (Mode.aggregated,)


def candidates(
    spec: WorkloadSpec,
    system: System,
    catalog: Catalog,
    measured: MeasuredTable | None = None,
    top: int | None = None,
) -> pd.DataFrame:
    """Feasible, non-dominated deployment options of `spec` on `system` (one row each).

    Rows measured for (system, model, precision) replace the analytic model; otherwise the
    analytic options are evaluated, filtered by memory and the p99 SLO, and Pareto-pruned.
    `top` keeps the best `top` rows by output tokens/s per accelerator.
    """
    model = catalog.models[spec.model]
    hw = hardware_of(system, catalog)
    df: pd.DataFrame | None = None
    if measured is not None:
        df = measured.candidates(spec, system.id, hw)
    if df is None:
        params = params_for(system, catalog)
        opts = evaluate(spec, model, hw, params, _modes(spec))
        if not opts.data:
            return pd.DataFrame(columns=COLUMNS)
        mask = slo_mask(opts, spec)
        data = {k: v[mask] for k, v in opts.data.items()}
        source = ANALYTIC if params.calibrated else UNCALIBRATED
        df = to_frame(type(opts)(data), spec, system.id, source)
    df = _pair_pools(df)
    df = pareto_prune(df)
    if top is not None:
        per_acc = df["output_tokens_per_s"] / df["accelerators"]
        df = df.assign(_k=per_acc).sort_values("_k", ascending=False, kind="stable")
        df = df.head(top).drop(columns="_k")
    return sort_rows(df)


def _pair_pools(df: pd.DataFrame) -> pd.DataFrame:
    """Disaggregated pools are useful only in pairs: drop prefill rows when no decode row
    survives the SLO, and decode rows when no prefill row does."""
    has_prefill = (df["mode"] == "prefill").any()
    has_decode = (df["mode"] == "decode").any()
    if has_prefill and has_decode:
        return df
    return df[df["mode"] == "aggregated"]


def candidate_table(
    specs: list[WorkloadSpec],
    systems: list[System],
    catalog: Catalog,
    measured: MeasuredTable | None = None,
) -> pd.DataFrame:
    """Candidates of every workload on every system, concatenated (workload, then system)."""
    frames = [candidates(s, sys, catalog, measured) for s in specs for sys in systems]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)


def explain_infeasible(spec: WorkloadSpec, system: System, catalog: Catalog) -> str:
    """Why `spec` has no option on `system`, and what would make one possible ('' if some do).

    Checks, in order: precision support; weights vs usable memory of the largest replica;
    the p99 TTFT / TPOT targets vs the best the memory-feasible options reach.
    """
    model = catalog.models[spec.model]
    acc = catalog.accelerators[system.accelerator]
    hw = hardware_of(system, catalog)
    if not hw.supports(spec.precision):
        have = ", ".join(sorted(p.value for p in hw.tflops))
        return (
            f"{acc.id} has no {spec.precision.value} support (supports {have}); serve "
            f"{spec.model} at one of those precisions or pick an accelerator with "
            f"{spec.precision.value}"
        )
    opts = evaluate(spec, model, hw, params_for(system, catalog), _modes(spec))
    w_gb = weight_bytes(model, spec.precision) / 1e9
    per_sys_gb = usable_bytes(acc.memory_gb) * system.accelerators / 1e9
    if not opts.data or len(opts.data["mode"]) == 0:
        need = max(2, math.ceil(w_gb / (0.8 * per_sys_gb)))
        if w_gb > 0.8 * per_sys_gb:
            return (
                f"needs ≥ {need} systems: weights {w_gb:,.0f} GB > {per_sys_gb:,.0f} GB usable "
                f"on one {system.id} (with room for the KV cache), more than the largest "
                f"replica the scale-up domain ({acc.scale_up_domain}) allows; use a lower "
                f"precision or an accelerator with more memory"
            )
        return (
            f"memory: weights {w_gb:,.0f} GB leave no room for the KV cache of one "
            f"{spec.input_tokens + spec.output_tokens}-token sequence on any replica layout"
        )
    mask = slo_mask(opts, spec)
    modes = opts.data["mode"][mask]
    if not ((modes == 0).any() or ((modes == 1).any() and (modes == 2).any())):
        d = opts.data
        reasons = []
        agg = d["mode"] == 0
        if spec.tpot_ms is not None:
            best = int(np.argmin(np.where(d["mode"] == 1, np.inf, d["tpot_ms"])))
            if d["tpot_ms"][best] > spec.tpot_ms:
                reasons.append(
                    f"TPOT {spec.tpot_ms:g} ms unreachable: best {d['tpot_ms'][best]:.0f} ms at "
                    f"concurrency {int(d['concurrency'][best])} (tp={int(d['tp'][best])}, "
                    f"pp={int(d['pp'][best])}); relax the TPOT target, use a lower precision, "
                    "speculative decoding or faster memory"
                )
        if spec.ttft_ms is not None:
            sel = np.where(agg | (d["mode"] == 1), d["ttft_ms"], np.inf)
            best = int(np.argmin(sel))
            if sel[best] > spec.ttft_ms:
                reasons.append(
                    f"TTFT {spec.ttft_ms:g} ms unreachable: best {sel[best]:.0f} ms "
                    f"(tp={int(d['tp'][best])}, pp={int(d['pp'][best])}); relax the TTFT "
                    "target, shorten inputs or use more accelerators per replica"
                )
        if not reasons:
            reasons.append(
                "no single option meets both TTFT and TPOT; allow disaggregated serving or "
                "relax one target"
            )
        return "; ".join(reasons)
    return ""
