"""`planner estimate`: ranked deployment options of one model on one system.

Adds to the candidate table: output tokens/s per accelerator (= per replica ÷ accelerators),
per system (× accelerators per system), per rack (× accelerators per rack: a whole-rack system
such as an NVL72 is one rack; servers: ⌊40 kW ÷ system kW⌋ systems per rack), per kW
(÷ power per accelerator at that load). Rows are ranked by tokens/s per accelerator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from planner.catalog import lookup
from planner.performance import WorkloadSpec, candidates, explain_infeasible
from planner.schema import Catalog, Precision, Speculative, System
from planner.units import json_number

PREFILL_COLUMNS = ["prefill_tp", "prefill_pp", "prefill_ep", "prefill_accelerators",
                   "prefill_replicas"]
"""A disaggregated row's prefill replica (empty on aggregated rows): its shape, accelerators,
and replicas per decode replica."""
RACK_KW = 40.0
"""Rack power assumed for per-rack figures of servers (air-cooled hall)."""


@dataclass
class EstimateResult:
    """Ranked options and, when there are none, the reasons and what would make one possible."""

    table: pd.DataFrame
    reasons: list[str] = field(default_factory=list)


def accelerators_per_rack(system: System) -> int:
    """NVL72-style whole-rack systems: their accelerators; servers: ⌊40 kW ÷ kW⌋ × per system."""
    if system.whole_rack:
        return system.accelerators
    kw = system.power_kw_max or 0.0
    per_rack = max(1, math.floor(RACK_KW / kw)) if kw > 0 else 1
    return per_rack * system.accelerators


def estimate(
    catalog: Catalog,
    system_id: str,
    model_id: str,
    precision: Precision | str,
    input_tokens: int,
    output_tokens: int,
    ttft_ms: float | None = None,
    tpot_ms: float | None = None,
    top: int | None = 10,
    speculative: Speculative | None = None,
) -> EstimateResult:
    """Options of `model_id` on `system_id`, best output tokens/s per accelerator first."""
    system = lookup(catalog, "systems", system_id)
    lookup(catalog, "models", model_id)
    spec = WorkloadSpec(
        model_id, Precision(precision), int(input_tokens), int(output_tokens), ttft_ms,
        tpot_ms, speculative=speculative, name=f"{model_id}@{int(input_tokens)}/{int(output_tokens)}",
    )
    df = candidates(spec, system, catalog)
    if df.empty:
        why = explain_infeasible(spec, system, catalog) or "no option fits"
        return EstimateResult(df, [why])
    df = pd.concat([df[df["mode"] == "aggregated"], disaggregated_pairs(df)], ignore_index=True)
    df = df.reindex(columns=[*df.columns.drop(PREFILL_COLUMNS, errors="ignore"), *PREFILL_COLUMNS])
    df = df.astype({**{c: "Int64" for c in PREFILL_COLUMNS[:-1]}, "prefill_replicas": float})
    per_acc = df["output_tokens_per_s"] / df["accelerators"]
    df = df.assign(
        precision=spec.precision.value,  # a key of a solve's deployment rows, too
        output_tokens_per_s_per_accelerator=per_acc,
        output_tokens_per_s_per_system=per_acc * system.accelerators,
        output_tokens_per_s_per_rack=per_acc * accelerators_per_rack(system),
        output_tokens_per_s_per_kw=df["output_tokens_per_s"] / df["power_kw"],
    )
    df = df.sort_values("output_tokens_per_s_per_accelerator", ascending=False, kind="stable")
    if top is not None:
        df = df.head(top)
    return EstimateResult(df.reset_index(drop=True), [])


def disaggregated_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Each decode option paired with the best prefill pool, as one comparable row.

    A request needs a_p / r_p prefill accelerators and a_d / r_d decode accelerators per unit
    of output rate, so the pair delivers 1 / (a_p/r_p + a_d/r_d) output tok/s per accelerator.
    The row is scaled to one decode replica: accelerators = a_d + a_p · r_d / r_p (fractional
    prefill share), power likewise; TPOT = decode's; TTFT = the prefill replica's, which returns
    the first token (as TRT-LLM's and Dynamo's disaggregated serving do), so the SLO the
    prefill pool is sized to is the one the pair meets. The KV hand-over (the decode rows'
    `ttft_ms`: transfer plus one step) delays the second token; spread over the output it adds
    a transfer of a few ms to hundreds of steps, and is left out of TPOT.
    tp, pp, ep and concurrency are the decode replica's; the prefill replica's shape is in
    PREFILL_COLUMNS, with `prefill_replicas` = r_d / r_p per decode replica."""
    prefill = df[df["mode"] == "prefill"]
    decode = df[df["mode"] == "decode"]
    if prefill.empty or decode.empty:
        return df.iloc[0:0]
    p = prefill.loc[(prefill["output_tokens_per_s"] / prefill["accelerators"]).idxmax()]
    share = decode["output_tokens_per_s"] / p["output_tokens_per_s"]
    return decode.assign(
        mode="disaggregated",
        prefill_tp=int(p["tp"]), prefill_pp=int(p["pp"]), prefill_ep=int(p["ep"]),
        prefill_accelerators=int(p["accelerators"]), prefill_replicas=share,
        accelerators=decode["accelerators"] + p["accelerators"] * share,
        power_kw=decode["power_kw"] + p["power_kw"] * share,
        ttft_ms=p["ttft_ms"],
        memory_gb_per_accelerator=decode["memory_gb_per_accelerator"].combine(
            pd.Series(p["memory_gb_per_accelerator"], index=decode.index), max),
    )


def estimate_records(table: pd.DataFrame) -> list[dict[str, object]]:
    """The rows as JSON-ready records: a missing value (an aggregated row's prefill) is None,
    counts are ints, other numbers rounded to 6 decimals as a plan's are."""
    def cell(key: str, value: object) -> object:
        if value is None or value is pd.NA:
            return None
        if key in PREFILL_COLUMNS[:-1]:  # Int64: a whole number or NA
            return int(value)  # type: ignore[call-overload]
        return json_number(value) if isinstance(value, float) else value

    return [{key: cell(str(key), value) for key, value in row.items()}
            for row in table.to_dict(orient="records")]
