"""problem → candidates → coefficients → MIP → plan, each a typed hand-off.

`solve_problem` is what `planner solve` runs; `compare` and `sweep` call it once per variant.
"""

from __future__ import annotations

import math
import time

import pandas as pd

from planner.coefficients import CANDIDATE_COLUMNS, ModelData, build_data
from planner.errors import InputError, NoPlanError
from planner.performance.spec import WorkloadSpec
from planner.plan import Plan, build_plan, check_invariants
from planner.problem import Inputs
from planner.schema import Objective, System
from planner.solve import (
    SolveOptions,
    SolveResult,
    Status,
    able_systems,
    ctrl_c_pending,
    interrupt_held,
    solve,
    time_left,
    warm_children_for,
)


def workload_specs(inputs: Inputs) -> list[WorkloadSpec]:
    """The performance model's view of each workload, one spec per acceptable precision."""
    return [
        WorkloadSpec(
            model=w.model, precision=precision, input_tokens=w.input_tokens,
            output_tokens=w.output_tokens, ttft_ms=w.slo.ttft_ms, tpot_ms=w.slo.tpot_ms,
            speculative=w.speculative, disaggregated=w.disaggregated, name=w.id,
        )
        for w in inputs.problem.workloads
        for precision in w.precisions
    ]


def candidates_for(inputs: Inputs) -> pd.DataFrame:
    """Candidate deployments of every workload on every allowed system, at every precision
    the workload accepts (column `precision`)."""
    from planner.performance import candidate_table
    from planner.performance.measured import MeasuredTable

    measured = MeasuredTable.from_csv(inputs.measured_csv) if inputs.measured_csv else None
    if measured is not None:
        unknown = measured.unknown_ids(inputs.catalog.systems, inputs.catalog.models)
        if unknown:
            raise InputError([f"{inputs.path}: performance: {inputs.measured_csv} has rows for "
                              f"{what}, which is not in the catalog; expected catalog ids"
                              for what in unknown])
    tables = []
    for spec in workload_specs(inputs):
        table = candidate_table([spec], inputs.fleet_systems, inputs.catalog, measured)
        if len(table):
            tables.append(table[CANDIDATE_COLUMNS].assign(precision=spec.precision.value))
    if not tables:
        return pd.DataFrame(columns=[*CANDIDATE_COLUMNS, "precision"])
    return pd.concat(tables, ignore_index=True)


def unservable(inputs: Inputs, data: ModelData) -> list[str]:
    """Workloads with demand but no candidate deployment at any site allowed to them."""
    workload_of = data.candidates["workload"].to_numpy()
    served = {str(workload_of[k]) for k, _ in data.kl}
    lines: list[str] = []
    for w in inputs.problem.workloads:
        if w.id in served or not any(
            v > 0 for (wid, _), v in inputs.demand.items() if wid == w.id
        ):
            continue
        lines.append(f"workload {w.id} ({w.model}, {'/'.join(x.value for x in w.precisions)}, SLO "
                     f"TTFT {w.slo.ttft_ms or '-'} ms / TPOT {w.slo.tpot_ms or '-'} ms) cannot be "
                     "served by any allowed system: "
                     + "; ".join(why_not(inputs, data, w.id, inputs.fleet_systems)))
    return lines


def why_not(inputs: Inputs, data: ModelData, workload: str, systems: list[System]) -> list[str]:
    """`SYSTEM: reason` for each of `systems` that has no candidate deployment for `workload`
    at a site it may use: the SLO, precision or memory (`explain_infeasible`), or no site
    whose racks, cooling or rental take it."""
    from planner.performance import explain_infeasible

    specs: dict[str, WorkloadSpec] = {}
    for spec in workload_specs(inputs):
        specs.setdefault(spec.name, spec)  # explain with the first precision listed
    allowed = {l for wid, l in data.wl if wid == workload}
    reasons = []
    for system in systems:
        placeable = any(s == system.id and l in allowed for s, l in data.sl)
        why = explain_infeasible(specs[workload], system, inputs.catalog) if placeable else ""
        if not why:
            why = ("cannot be placed at any site this workload may use (rack power, cooling "
                   "or rental)" if not placeable else "no candidate deployment at its sites")
        reasons.append(f"{system.id}: {why}")
    return reasons


def check_scale_is_bounded(inputs: Inputs, data: ModelData) -> None:
    """max_served_scale needs a demand to scale and a limit on every site it may rent at: with
    every demand 0, or a cloud site without a quota and no budget, the scale has no maximum
    (HiGHS then reported the problem infeasible, with no cause found)."""
    if data.objective != Objective.max_served_scale:
        return
    where = f"{inputs.path}: objective: found max_served_scale"
    if not any(v > 0 for v in data.demand.values()):
        raise InputError([f"{where} with every workload's demand 0; expected some demand to "
                          "scale"])
    unlimited = sorted({l for _, l in data.sl if l not in data.owned_sites
                        and not math.isfinite(data.max_accelerators[l])})
    if unlimited and data.budget_musd is None:
        raise InputError([f"{where} with no limit on renting at {', '.join(unlimited)}; expected "
                          "a max_accelerators quota there, or policy.budget_usd"])


def warm_children(inputs: Inputs) -> None:
    """Start, while the candidates are generated, what a big problem's MIP children will come
    from (`solve.warm_children_for`)."""
    warm_children_for(len(inputs.fleet_systems) * len(inputs.problem.workloads)
                      * len(inputs.problem.sites) * len(inputs.period_ids))


def solve_problem(
    inputs: Inputs,
    options: SolveOptions | None = None,
    candidates: pd.DataFrame | None = None,
) -> Plan:
    """Solve `inputs`; raise NoPlanError (exit 1) with a diagnosis when there is no plan. The
    time limit counts from here: candidate generation comes out of it.

    Ctrl-C is held from here on, as in `solve`, and acted on once the candidates and the
    model's data are ready: a KeyboardInterrupt raised wherever Python happens to be is lost
    when that is a finalizer or a gc callback (in the test suite, hypothesis's gc callback
    swallowed one during candidate generation, and the solve ran to its time limit)."""
    began = time.perf_counter()
    with interrupt_held():
        warm_children(inputs)
        table = candidates if candidates is not None else candidates_for(inputs)
        data = build_data(inputs, table)
        if ctrl_c_pending():
            raise KeyboardInterrupt
        blocked = unservable(inputs, data)
        if blocked:
            raise NoPlanError("infeasible: demand that no allowed system can serve:", blocked)
        check_scale_is_bounded(inputs, data)
        result = solve(data, time_left(options or SolveOptions(), began))
        plan = plan_from_result(inputs, result)
    plan.candidates = table
    return plan


def _held_only(inputs: Inputs, result: SolveResult) -> list[str]:
    """For a workload whose demand goes unserved and that only held systems could serve, why
    none of the allowed systems can: the elastic diagnosis has the data, not the catalog."""
    lines = []
    for w in inputs.problem.workloads:
        if not able_systems(result.data, w.id) - set(result.data.held) and any(
                line.startswith(f"workload {w.id}, ") for line in result.diagnosis):
            lines.append(f"workload {w.id}: the allowed systems cannot serve it: "
                         + "; ".join(why_not(inputs, result.data, w.id, inputs.systems)))
    return lines


def add_recipes(plan: Plan, inputs: Inputs) -> None:
    """A `recipe` column: the serving command of each deployment row."""
    from planner.recipes import recipe

    catalog = inputs.catalog
    workloads = {w.id: w for w in inputs.problem.workloads}
    commands = []
    for row in plan.deployments.to_dict(orient="records"):
        system = catalog.systems[row["system"]]
        workload = workloads[row["workload"]]
        stack = catalog.accelerators[system.accelerator].software_stack
        commands.append(recipe(row, system, stack, catalog.models[workload.model], workload))
    plan.deployments["recipe"] = commands


def plan_from_result(inputs: Inputs, result: SolveResult) -> Plan:
    if not result.status.has_plan:
        raise NoPlanError(f"{result.status.value}: {result.message}",
                          [*result.diagnosis, *_held_only(inputs, result)], result.status.value)
    if result.served_scale is not None and result.served_scale <= 1e-9:
        # max_served_scale at 0: a "plan" that serves nothing (exit 0 with $nan per token)
        why = ("the limits leave room to serve none of the demand" if result.status ==
               Status.optimal else "no plan found within the time limit serves any of the "
               "demand; raise --time-limit")
        raise NoPlanError(f"{why} (served scale 0)", status=(
            Status.infeasible if result.status == Status.optimal else Status.no_solution).value)
    plan = build_plan(inputs.problem.name, result)
    plan.cost_basis = inputs.problem.finance.cost_basis.value
    add_recipes(plan, inputs)
    violations = check_invariants(plan, result.data)
    if violations:
        raise NoPlanError("the solver's plan fails its own checks (numerical trouble): "
                          + "; ".join(violations), violations, Status.error.value)
    return plan
