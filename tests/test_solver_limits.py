"""Solver limits: the time limit returns the incumbent with its gap and bound, no plan in time
says so (exit 1), Ctrl-C stops cleanly (best plan so far, or exit 130 without a traceback), and
`--debug` reports the coefficient ranges. No wall-clock asserts: limits are checked by status."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import planner.scale as scale_module
import planner.solve as solve_module
from planner.cli import app
from planner.coefficients import build_data
from planner.formulation import build_model
from planner.pipeline import candidates_for, plan_from_result
from planner.problem import load_problem
from planner.solve import Run, SolveOptions, Status, _progress_sender, coefficient_ranges, solve
from tests.conftest import REPO, candidate, candidates, toy_problem

sys.path.insert(0, str(REPO / "bench"))
from problems import FAMILIES, Family, write_problem

runner = CliRunner()


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmark's medium family (10 systems, 3 workloads, 4 periods): not solvable to
    0.1% within half a second on any machine this runs on."""
    return write_problem(FAMILIES["medium"], tmp_path_factory.mktemp("medium"))


@pytest.fixture
def toy_file(toy_cli_file: Path) -> Path:
    return toy_cli_file


@pytest.fixture(autouse=True)
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt here even when the suite runs in the background of a
    non-interactive shell, which starts it with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_time_limit_returns_the_incumbent_with_gap_and_bound(medium: Path) -> None:
    inputs = load_problem(medium)
    data = build_data(inputs, candidates_for(inputs))
    result = solve(data, SolveOptions(time_limit_s=0.5, shadow_prices=False))
    assert result.status in (Status.feasible, Status.no_solution, Status.optimal)
    if result.status == Status.no_solution:
        assert "time limit" in result.message
        return
    assert math.isfinite(result.bound) and result.bound <= result.objective + 1e-9
    assert result.gap == pytest.approx((result.objective - result.bound) / result.objective)
    if result.status == Status.feasible:
        assert "time limit" in result.message and f"{result.gap:.3%}" in result.message
        plan = plan_from_result(inputs, result)  # the incumbent still passes its invariants
        assert any("time limit" in note for note in plan.notes)


@pytest.fixture(scope="module")
def node_bound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bench-shaped problem (8 systems, 2 workloads, 3 periods) whose MIPs 5 nodes leave
    0.7% from their bound: the node limit, not the gap, ends them (2–5 s a solve)."""
    return write_problem(Family("nodes", 8, 2, 3, 1, seed=6), tmp_path_factory.mktemp("nodes"))


@pytest.mark.parametrize("example", ["node_bound", "two-halls-20mw.yaml"])
def test_a_node_limit_gives_the_same_plan_whatever_the_time_limit(
        example: str, request: pytest.FixtureRequest) -> None:
    # two-halls-20mw stops at 3 nodes with its power binding: the re-solve that values it runs
    # under the node limit too
    path = (request.getfixturevalue(example) if example == "node_bound"
            else REPO / "problems" / example)
    nodes = "5" if example == "node_bound" else "3"
    outputs = []
    for time_limit in ("30", "90"):
        result = runner.invoke(app, ["solve", str(path), "--node-limit", nodes,
                                     "--time-limit", time_limit, "--format", "json"])
        assert result.exit_code == 0, result.stderr
        assert "note: stopped at the node limit: best plan found so far, gap" in result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    payload = json.loads(outputs[0])
    assert payload["status"] == "feasible"
    if example != "node_bound":
        assert [b["value_usd"] > 0 for b in payload["binding"]] == [True]


@pytest.mark.parametrize(("threads", "expected"), [(None, 1), (2, 2)])
def test_a_node_limit_runs_highs_on_one_thread_unless_told(threads, expected) -> None:
    # HiGHS picks its threads from the CPU count, and its search follows them: a node-limited
    # plan on one CPU differed from the same plan on two
    solver = solve_module._highs(SolveOptions(node_limit=50, threads=threads))
    assert solver.config.threads == expected
    assert solve_module._highs(SolveOptions()).config.threads is None


def test_solves_with_other_threads_run_one_after_another_in_a_process(medium: Path) -> None:
    # HiGHS refuses (kError) a solver whose threads differ from those its scheduler started
    # with: a node-limited solve after a two-thread one ended in "error"
    inputs = load_problem(medium)
    data = build_data(inputs, candidates_for(inputs))
    for options in (SolveOptions(threads=2), SolveOptions(node_limit=1), SolveOptions(threads=2),
                    SolveOptions(threads=1)):
        run = solve_module._run(solve_module.lp_relaxation(data), options)
        assert run.status == Status.optimal, options


def test_a_node_limit_runs_no_stage_beside_another(node_bound: Path, monkeypatch) -> None:
    # on two CPUs a big fleet's full MIP would start in a child beside the other stages, and
    # what it finds would then depend on how far they got
    children: list[SolveOptions] = []

    class Counted(solve_module._ChildMip):
        def __init__(self, data: object, options: SolveOptions, start: object,
                     target: object = None) -> None:
            children.append(options)
            super().__init__(data, options, start, target)

    monkeypatch.setattr(solve_module, "FULL_CHILD_COLUMNS", 0)
    monkeypatch.setattr(solve_module, "_cpus", lambda: 2)
    monkeypatch.setattr(solve_module, "_ChildMip", Counted)
    inputs = load_problem(node_bound)
    data = build_data(inputs, candidates_for(inputs))
    result = solve(data, SolveOptions(time_limit_s=60, shadow_prices=False, node_limit=5))
    assert children == []
    assert result.status == Status.feasible and result.bound <= result.objective + 1e-9
    solve(data, SolveOptions(time_limit_s=3, shadow_prices=False))
    assert len(children) == 1  # without the node limit, the child runs beside


def test_a_node_limit_the_clock_beats_says_the_plan_can_differ(medium: Path) -> None:
    inputs = load_problem(medium)
    data = build_data(inputs, candidates_for(inputs))
    result = solve(data, SolveOptions(time_limit_s=1, shadow_prices=False, node_limit=10**6))
    assert result.status in (Status.feasible, Status.no_solution)
    assert "time limit" in result.message and "node limit" not in result.message
    assert any(note.startswith("the time limit ended part of the solve before the node limit")
               for note in result.data.notes)


@pytest.mark.parametrize("cpus", [1, 2])
def test_slow_lp_runs_the_mip_stages_in_a_child_process(medium: Path, monkeypatch,
                                                        cpus: int) -> None:
    # as if the LP had been slow: both MIP stages go to a killable child (on two CPUs the full
    # MIP alongside the restricted one and the polish, on one after them) and their plan (at
    # least as good as the rounded LP's) comes back through the pipe, invariants intact
    calls: list[float] = []

    class Counted(solve_module._ChildMip):
        def __init__(self, data: object, options: SolveOptions, start: object,
                     target: object = None) -> None:
            calls.append(options.time_limit_s)
            super().__init__(data, options, start, target)

    monkeypatch.setattr(solve_module, "MIP_OVER_LP", 1e9)
    monkeypatch.setattr(solve_module, "IN_PROCESS_LP_S", 0.0)
    monkeypatch.setattr(solve_module, "_ChildMip", Counted)
    monkeypatch.setattr(solve_module, "_cpus", lambda: cpus)
    inputs = load_problem(medium)
    data = build_data(inputs, candidates_for(inputs))
    result = solve(data, SolveOptions(time_limit_s=4, shadow_prices=False))
    assert len(calls) == 2
    # two CPUs: the full MIP is launched first, for all the time left
    assert (calls[0] > calls[1]) == (cpus == 2)
    assert result.status.has_plan and result.bound <= result.objective + 1e-9
    plan_from_result(inputs, result)


def test_a_big_fleet_launches_the_full_mip_before_the_lp_solves(medium: Path,
                                                               monkeypatch) -> None:
    # from FULL_CHILD_COLUMNS replica columns on, with a second CPU, the full MIP's child
    # starts as soon as the LP is built: its root cuts get the LP's time too
    events: list[str] = []

    class Counted(solve_module._ChildMip):
        def __init__(self, *args: object, **kwargs: object) -> None:
            events.append("child")
            super().__init__(*args, **kwargs)

    solve_lp_or_mip = solve_module._run

    def counted(*args: object, **kwargs: object) -> Run:
        events.append("HiGHS")
        return solve_lp_or_mip(*args, **kwargs)

    monkeypatch.setattr(solve_module, "FULL_CHILD_COLUMNS", 0)
    monkeypatch.setattr(solve_module, "_cpus", lambda: 2)
    monkeypatch.setattr(solve_module, "_ChildMip", Counted)
    monkeypatch.setattr(solve_module, "_run", counted)
    inputs = load_problem(medium)
    data = build_data(inputs, candidates_for(inputs))
    result = solve(data, SolveOptions(time_limit_s=3, shadow_prices=False))
    assert events[:2] == ["child", "HiGHS"]
    assert result.status.has_plan and result.bound <= result.objective + 1e-9
    plan_from_result(inputs, result)


def test_the_forkserver_starts_before_the_candidates_only_for_a_big_problem(
        monkeypatch) -> None:
    # bench large has 12 systems × 6 workloads × 3 sites × 12 periods and 13,000 replica
    # columns; bench medium 10 × 3 × 1 × 4 and 720
    started: list[int] = []
    monkeypatch.setattr(solve_module, "_start_forkserver", lambda: started.append(1))
    solve_module.warm_children_for(10 * 3 * 1 * 4)
    assert not started
    solve_module.warm_children_for(12 * 6 * 3 * 12)
    assert started == [1]


def test_an_infeasible_relaxation_stops_the_full_mip_child_at_once(write_problem,
                                                                   monkeypatch) -> None:
    # 1 kW for 10,000 tok/s: the LP is infeasible, so is the MIP; the child launched beside
    # it is not waited for
    waited: list[bool] = []

    class Recorded(solve_module._ChildMip):
        def outcome(self, now: bool = False) -> tuple[Run, dict] | None:
            waited.append(not now)
            return super().outcome(now)

    monkeypatch.setattr(solve_module, "FULL_CHILD_COLUMNS", 0)
    monkeypatch.setattr(solve_module, "_cpus", lambda: 2)
    monkeypatch.setattr(solve_module, "_ChildMip", Recorded)
    problem = toy_problem()
    problem["sites"][0]["power_mw"] = 0.001
    data = build_data(load_problem(write_problem(problem)), candidates(candidate("toy-a", 1000)))
    result = solve(data, SolveOptions(time_limit_s=60, shadow_prices=False))
    assert result.status == Status.infeasible
    assert waited == [False]


def test_ctrl_c_while_a_child_starts_waits_until_it_has_its_data(monkeypatch) -> None:
    # Ctrl-C while the child's data is sent used to leave it a truncated pickle (and the
    # forkserver printed a traceback); now the start completes, the child is killed, and the
    # interrupt goes on
    import multiprocessing
    from multiprocessing.context import ForkServerProcess

    start = ForkServerProcess.start
    started: list[int | None] = []

    def interrupted_start(self: ForkServerProcess) -> None:
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # Ctrl-C, as Python handles it
        start(self)
        started.append(self.pid)

    monkeypatch.setattr(ForkServerProcess, "start", interrupted_start)
    with pytest.raises(KeyboardInterrupt):
        solve_module._ChildMip(None, SolveOptions(time_limit_s=30), {},
                                target=_progress_then_hang)
    assert len(started) == 1 and multiprocessing.active_children() == []


def test_a_mip_child_leaves_ctrl_c_to_its_parent(medium: Path) -> None:
    # Ctrl-C in a terminal reaches the child too; the parent is the one that handles it (it
    # kills the child), so the child goes on instead of printing a KeyboardInterrupt

    inputs = load_problem(medium)
    data = build_data(inputs, candidates_for(inputs))
    child = solve_module._ChildMip(data, SolveOptions(time_limit_s=2), {})
    while not math.isfinite(child.bound) and not child.finished.is_set():
        time.sleep(0.05)  # until HiGHS runs in the child
    os.kill(child.child.pid, signal.SIGINT)
    outcome = child.outcome()
    assert child.answer is not None and outcome is not None and outcome[0].status.has_plan


def test_the_forkserver_preload_leaves_ctrl_c_ignored_in_its_processes() -> None:
    # a process forked with Python's handler died on Ctrl-C while it read its start data (its
    # parent got a BrokenPipeError); compare's workers take the handler back per task
    import subprocess

    # (`start_forkserver` starts the server with SIGINT blocked: the preload unblocks it)
    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}); "
            "import planner.forkserver_preload; "
            "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "
            "signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.split() == ["True", "False"]


FORKSERVER_STARTS_DURING_CTRL_C = """
import os, signal
from multiprocessing import forkserver
from planner.solve import start_forkserver

ensure_running = forkserver.ensure_running

def ctrl_c_while_it_starts():
    os.kill(os.getpid(), signal.SIGINT)
    ensure_running()

forkserver.ensure_running = ctrl_c_while_it_starts
try:
    start_forkserver()
    print("lost")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_ctrl_c_while_the_forkserver_starts_is_not_lost() -> None:
    # the forkserver is started with Ctrl-C blocked, not ignored: one that comes meanwhile
    # reaches the solving process once the server has started, instead of being lost
    import subprocess

    out = subprocess.run([sys.executable, "-c", FORKSERVER_STARTS_DURING_CTRL_C],
                         capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "interrupted"


def test_a_mip_child_whose_parent_is_gone_exits_quietly() -> None:
    from planner.solve import _send_or_exit, forkserver_context

    context = forkserver_context()
    receive, send = context.Pipe(duplex=False)
    receive.close()
    child = context.Process(target=_send_or_exit, args=(send, ("progress", 1.0, 2.0, None)))
    child.start()
    child.join()
    assert child.exitcode == 0  # not 1 with a BrokenPipeError traceback


def test_ctrl_c_while_polishing_beside_a_full_mip_child(medium: Path, monkeypatch) -> None:
    # the full MIP solves in a child while this process polishes; Ctrl-C there kills the
    # child, keeps the best plan and the child's bound so far, and leaves no process behind
    import multiprocessing

    def interrupted_polish(*args: object, **kwargs: object) -> None:
        time.sleep(2.0)  # the child has built its model and reported its root bound
        raise KeyboardInterrupt

    monkeypatch.setattr(solve_module, "MIP_OVER_LP", 1e9)
    monkeypatch.setattr(solve_module, "IN_PROCESS_LP_S", 0.0)
    monkeypatch.setattr(solve_module, "_cpus", lambda: 2)
    monkeypatch.setattr(solve_module, "polish", interrupted_polish)
    inputs = load_problem(medium)
    data = build_data(inputs, candidates_for(inputs))
    result = solve(data, SolveOptions(time_limit_s=30, shadow_prices=False))
    assert result.interrupted and result.status == Status.feasible
    lp_bound = solve_module._run(solve_module.lp_relaxation(data), SolveOptions()).objective
    assert lp_bound + 1e-6 < result.bound <= result.objective + 1e-9  # the child's bound
    assert multiprocessing.active_children() == []
    plan_from_result(inputs, result)


def test_a_child_stage_ends_within_the_stage_time(monkeypatch) -> None:
    # the child's own limit leaves room for its kill grace and for writing its plan into the
    # best plan's model and making its tables (about a build), so a stage in a child ends when
    # the stage's time is up (not CHILD_GRACE_S + a build later)
    limits: list[float] = []

    def child(data: object, options: SolveOptions, start: object) -> None:
        limits.append(options.time_limit_s)

    monkeypatch.setattr(solve_module, "_solve_in_child", child)
    stages = solve_module._Stages(object(), SolveOptions(time_limit_s=1e6), time.perf_counter())
    stages.first_solve_seconds, stages.build_seconds = 1e6, 1000.0
    assert stages._mip(object(), 1.0) is None
    assert limits == [pytest.approx(1e6 - solve_module.CHILD_GRACE_S - 1000.0, abs=60)]


@pytest.fixture
def toy_data(write_problem):
    """Two systems for one workload, one period: a model built in milliseconds."""
    return build_data(load_problem(write_problem(toy_problem())),
                      candidates(candidate("toy-a", 1000), candidate("toy-b", 800)))


@pytest.mark.parametrize("child_better", [True, False])
@pytest.mark.parametrize("best_restricted", [False, True])
def test_a_child_plan_goes_into_the_best_model_only_when_it_is_better(
        monkeypatch, toy_data, child_better: bool, best_restricted: bool) -> None:
    # a build for the child's plan took 1.6 s on x-large, most of what a Ctrl-C waited for:
    # a plan no cheaper than the best is not loaded at all (its bound still counts), and a
    # cheaper one is written over the best plan's model unless that is the restricted MIP's,
    # which lacks columns
    from dataclasses import replace

    from planner.decompose import plan_cost

    optimum = solve(toy_data, SolveOptions(time_limit_s=60, shadow_prices=False))
    cheap = solve_module._values(optimum.model)
    dear = {key: 2 * value for key, value in cheap.items()}
    builds: list[object] = []
    load = solve_module._load
    monkeypatch.setattr(solve_module, "_load",
                        lambda data, values: builds.append(data) or load(data, values))
    stages = solve_module._Stages(toy_data, SolveOptions(time_limit_s=60), time.perf_counter())
    stages.relaxed = Status.optimal
    best_data = replace(toy_data, kl=toy_data.kl[:1]) if best_restricted else toy_data
    best_plan, child_plan = (dear, cheap) if child_better else (cheap, dear)
    best_model = load(best_data, best_plan)
    stages.consider(best_model, plan_cost(toy_data, best_plan))

    class Answered:
        def outcome(self, now: bool = False) -> tuple[Run, dict[object, float]]:
            run = Run(Status.feasible, plan_cost(toy_data, child_plan), 1.0, math.nan)
            return run, child_plan

    stages.full_child = Answered()
    stages.full()
    assert stages.lower == 1.0
    kept = child_plan if child_better else best_plan
    assert stages.best.objective == pytest.approx(plan_cost(toy_data, kept))
    assert solve_module._values(stages.best.model) == pytest.approx(
        {key: kept.get(key, 0.0) for key in solve_module._values(stages.best.model)})
    assert builds == ([toy_data] if child_better and best_restricted else [])
    assert (stages.best.model is best_model) == (not (child_better and best_restricted))


def _never_answers(pid_file: str, options: object, start: object, send: object,
                   ends_at: float) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(3600)


def test_a_child_mip_that_overruns_is_killed(tmp_path: Path) -> None:
    # the child stands in for HiGHS stuck in its root node: no answer, so it is killed
    pid_file = tmp_path / "pid"
    outcome = solve_module._solve_in_child(str(pid_file), SolveOptions(time_limit_s=2.0), {},
                                           target=_never_answers)
    assert outcome is None
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def _cyclic_cover():
    """A small MIP whose LP is fractional: HiGHS needs its own search to solve it."""
    import pyomo.environ as pyo

    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(12)
    m.x = pyo.Var(m.I, within=pyo.NonNegativeIntegers, bounds=(0, 10))
    m.cover = pyo.Constraint(m.I, rule=lambda m, i: 2 * m.x[i] + 2 * m.x[i % 12 + 1]
                             + 2 * m.x[(i + 4) % 12 + 1] >= 3)
    m.cost = pyo.Objective(expr=sum((1 + 0.01 * i) * m.x[i] for i in m.I))
    return m


def test_highs_receives_the_mip_start() -> None:
    # with no nodes, no heuristics and no presolve HiGHS finds no plan of its own, so a plan
    # after `solve` can only be the start handed over (Pyomo re-runs the solver's __init__ on
    # a new instance: the start must survive that)
    m = _cyclic_cover()
    found = []
    for start in ({}, {id(var): 1.0 for var in m.x.values()}):
        solver = solve_module._highs(SolveOptions())
        solver.config.solver_options.update(presolve="off", mip_heuristic_effort=0.0,
                                            mip_max_nodes=0)
        solver.warm_start = start
        found.append(solver.solve(m).incumbent_objective)
    assert found == [None, pytest.approx(12.78)]


def test_a_start_serving_more_than_the_demand_is_cut_to_it(toy_file: Path) -> None:
    # served rates are bounded by the demand; a plan may say what its replicas could serve,
    # and HiGHS drops a start that breaks a bound
    inputs = load_problem(toy_file)
    data = build_data(inputs, candidates_for(inputs))
    model = build_model(data)
    (w, l, p), served = next(iter(model.y.items()))
    start = solve_module._warm_start({("y", (w, l, p)): 3 * data.demand[(w, p)]}, model)
    assert start[id(served)] == pytest.approx(data.demand[(w, p)])


def test_highs_reports_its_progress() -> None:
    # every better plan comes with its objective and its values by Pyomo variable; the last
    # one is the optimum HiGHS returns, and no bound reported exceeds it
    m = _cyclic_cover()
    calls: list[tuple[float, float, dict[int, float] | None]] = []
    solver = solve_module._highs(SolveOptions())
    solver.config.solver_options["presolve"] = "off"
    solver.progress = lambda *report: calls.append(report)
    results = solver.solve(m)
    plans = [(objective, plan) for _, objective, plan in calls if plan is not None]
    assert plans and plans[-1][0] == pytest.approx(results.incumbent_objective)
    results.solution_loader.load_vars()
    assert plans[-1][1] == {id(var): pytest.approx(var.value) for var in m.x.values()}
    assert max(bound for bound, _, _ in calls) <= results.incumbent_objective + 1e-9


def test_a_child_sends_the_rises_of_the_bound_and_every_plan() -> None:
    # HiGHS logged 61.70 then 61.98 within half a second, and nothing more before the kill:
    # throttling the second line away lost it (bench large at 10 s reported the LP's bound).
    # Its interrupt checks now report the bound many times a second: a rise is sent once
    # BOUND_EVERY_S has passed since the last message, a plan at once
    sent: list[tuple] = []
    progress = _progress_sender(SimpleNamespace(send=sent.append), {7: ("n", ("s", "l", "p"))})
    progress(61.70, math.inf, None)
    progress(61.70, math.inf, None)  # unchanged, within PROGRESS_EVERY_S: dropped
    progress(61.80, math.inf, None)  # risen, but within BOUND_EVERY_S: held back
    time.sleep(solve_module.BOUND_EVERY_S)
    progress(61.98, math.inf, None)
    progress(61.98, 63.0, {7: 2.0})
    assert sent == [("progress", 61.70, math.inf, None), ("progress", 61.98, math.inf, None),
                    ("progress", 61.98, 63.0, {("n", ("s", "l", "p")): 2.0})]


def _progress_then_hang(data: object, options: object, start: object, send,
                        ends_at: float) -> None:
    send.send(("progress", 5.0, math.inf, None))
    send.send(("progress", 6.0, 8.0, {("n", ("s", "l", "p")): 2.0}))
    send.send(("progress", 6.5, 7.0, {("n", ("s", "l", "p")): 1.0}))
    time.sleep(3600)


def test_a_killed_child_answers_with_its_last_progress() -> None:
    # HiGHS stuck past the limit: the child is killed, and the best plan and latest bound it
    # reported stand in for its answer
    run, plan = solve_module._solve_in_child(None, SolveOptions(time_limit_s=2.0), {},
                                             target=_progress_then_hang)
    assert (run.status, run.objective, run.bound) == (Status.feasible, 7.0, 6.5)
    assert run.gap == pytest.approx(0.5 / 7.0)
    assert plan == {("n", ("s", "l", "p")): 1.0}


def _progress_then_flag(flag: str, options: object, start: object, send,
                        ends_at: float) -> None:
    send.send(("progress", 6.5, 7.0, {("n", ("s", "l", "p")): 1.0}))
    Path(flag).touch()
    time.sleep(3600)


def test_ctrl_c_while_a_child_solves_keeps_its_progress(tmp_path: Path) -> None:
    # Ctrl-C (SIGINT to this process once the child has reported) kills the child; what it
    # reported comes back marked interrupted, so the stages stop with it
    import threading

    flag = tmp_path / "reported"

    def press_ctrl_c_once_reported() -> None:
        for _ in range(600):
            if flag.exists():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    threading.Thread(target=press_ctrl_c_once_reported, daemon=True).start()
    run, plan = solve_module._solve_in_child(str(flag), SolveOptions(time_limit_s=60.0), {},
                                             target=_progress_then_flag)
    assert run.interrupted and (run.objective, run.bound) == (7.0, 6.5)
    assert plan == {("n", ("s", "l", "p")): 1.0}


def _no_plan_in_time(model: object, options: SolveOptions, *args: object, **kwargs: object) -> Run:
    return Run(Status.no_solution, math.nan, math.nan, math.nan)


def test_no_integer_point_in_time_says_so_and_exits_1(toy_file: Path, monkeypatch) -> None:
    monkeypatch.setattr(solve_module, "_run", _no_plan_in_time)
    result = runner.invoke(app, ["solve", str(toy_file), "--time-limit", "0.5"])
    assert result.exit_code == 1
    assert "no_solution" in result.stderr and "no integer-feasible plan" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


PYOMO_CUT_SHORT = """
import pyomo.environ as pyo
import planner.solve

def ctrl_c(model):
    raise KeyboardInterrupt

def error(model):
    raise ValueError("a real error")

model = pyo.ConcreteModel()
try:
    model.interrupted = pyo.Constraint(rule=ctrl_c)
except KeyboardInterrupt:
    pass
print("--- now a real error")
try:
    model.broken = pyo.Constraint(rule=error)
except ValueError:
    pass
"""


def test_ctrl_c_in_pyomo_code_prints_nothing_on_stdout() -> None:
    # Pyomo logs a component (or an expression) that a KeyboardInterrupt cut short as an
    # ERROR, and its handler printed that on stdout, where a --format json reader would get
    # it; that is dropped, and a real error is still printed, on stderr
    import subprocess

    done = subprocess.run([sys.executable, "-c", PYOMO_CUT_SHORT], capture_output=True,
                          text=True, check=True, cwd=REPO)
    assert done.stdout == "--- now a real error\n"
    assert "a real error" in done.stderr and "interrupted" not in done.stderr


def _interrupt(model: object, options: SolveOptions, *args: object, **kwargs: object) -> Run:
    raise KeyboardInterrupt


def test_ctrl_c_before_any_plan_exits_130_without_traceback(toy_file: Path, monkeypatch) -> None:
    monkeypatch.setattr(solve_module, "_run", _interrupt)
    result = runner.invoke(app, ["solve", str(toy_file)])
    assert result.exit_code == 130
    assert "interrupted" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_ctrl_c_after_an_incumbent_returns_it(medium: Path, monkeypatch) -> None:
    """The relaxation and its round-up give a plan; Ctrl-C in the next stage keeps it."""
    inputs = load_problem(medium)
    data = build_data(inputs, candidates_for(inputs))
    real_run = solve_module._run
    calls = {"n": 0}

    def run_once_then_interrupt(model: object, options: SolveOptions, *args: object,
                                **kwargs: object) -> Run:
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return real_run(model, options, *args, **kwargs)

    monkeypatch.setattr(solve_module, "_run", run_once_then_interrupt)
    result = solve(data, SolveOptions(mip_gap=1e-6, shadow_prices=False))
    assert result.interrupted and result.status == Status.feasible
    assert result.message.startswith("interrupted")
    plan = plan_from_result(inputs, result)
    assert plan.status == Status.feasible


def test_highs_reporting_interrupted_keeps_the_incumbent(toy_file: Path, monkeypatch) -> None:
    """HiGHS handles SIGINT itself and returns `interrupted` with what it has."""
    real_run = solve_module._run

    def interrupted(model: object, options: SolveOptions, *args: object,
                    **kwargs: object) -> Run:
        run = real_run(model, options, *args, **kwargs)
        return run._replace(interrupted=True)

    monkeypatch.setattr(solve_module, "_run", interrupted)
    result = runner.invoke(app, ["solve", str(toy_file), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert "interrupted" in result.stderr
    assert '"status": "feasible"' in result.stdout


def test_debug_prints_coefficient_ranges(toy_file: Path) -> None:
    result = runner.invoke(app, ["solve", str(toy_file), "--debug", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert "coefficient ranges" in result.stderr
    for part in ("matrix", "cost", "rhs"):
        assert part in result.stderr


def test_coefficients_are_scaled_to_a_narrow_range(medium: Path) -> None:
    """$M, thousand tok/s and MW keep HiGHS's matrix within 6 decades (it warns beyond ~1e9)."""
    from planner.formulation import build_model

    inputs = load_problem(medium)
    ranges = coefficient_ranges(build_model(build_data(inputs, candidates_for(inputs))))
    low, high = ranges["matrix"]
    assert high / low < 1e6
    low, high = ranges["rhs"]
    assert high / low < 1e6


def test_the_time_limit_counts_candidate_generation(toy_file: Path, monkeypatch) -> None:
    # `planner solve --time-limit` is end to end: what candidates took comes out of the solve
    import planner.pipeline as pipeline

    real_candidates, limits = pipeline.candidates_for, []

    def slow_candidates(inputs: object) -> object:
        time.sleep(0.3)
        return real_candidates(inputs)

    def recording_solve(data: object, options: SolveOptions) -> object:
        limits.append(options.time_limit_s)
        return solve(data, options)

    monkeypatch.setattr(pipeline, "candidates_for", slow_candidates)
    monkeypatch.setattr(pipeline, "solve", recording_solve)
    pipeline.solve_problem(load_problem(toy_file), SolveOptions(time_limit_s=5.0))
    assert 0 < limits[0] <= 4.7


@pytest.mark.parametrize("short", ["MIN_MARGINAL_SECONDS", "MARGINAL_OVER_LP"])
def test_no_time_left_for_values_is_noted_in_the_plan(solve_toy, monkeypatch, short) -> None:
    # test_formulation's toy whose power binding is worth $150k, with less time left than a
    # re-solve needs (at all, or measured by the LP's time): the binding is reported without
    # a value, and a note says why
    from tests.test_formulation import BOTH

    problem = toy_problem()
    problem["sites"][0]["power_mw"] = 0.065
    monkeypatch.setattr(solve_module, short, 1e9)
    plan = solve_toy(problem, BOTH)
    assert [b.value_usd for b in plan.bindings if b.kind == "power"] == [None]
    assert any(n.startswith("values of 1 binding limit(s) not computed") for n in plan.notes)


def test_a_tiny_mip_never_goes_to_a_child(toy_file: Path, monkeypatch) -> None:
    # a child costs more than the whole solve of a small problem, whatever the time limit
    monkeypatch.setattr(solve_module, "_solve_in_child",
                        lambda *args: pytest.fail("a child for a tiny MIP"))
    inputs = load_problem(toy_file)
    data = build_data(inputs, candidates_for(inputs))
    result = solve(data, SolveOptions(time_limit_s=0.2, shadow_prices=False))
    assert result.status.has_plan


def test_max_served_scale_shares_its_time_limit_between_its_stages(solve_toy, monkeypatch):
    from tests.test_formulation import BOTH

    limits: list[float] = []
    real_run = solve_module._run

    def recording_run(model: object, options: SolveOptions, *args: object, **kw: object) -> Run:
        limits.append(options.time_limit_s)
        return real_run(model, options, *args, **kw)

    monkeypatch.setattr(solve_module, "_run", recording_run)
    monkeypatch.setattr(scale_module, "_run", recording_run)
    problem = toy_problem(objective="max_served_scale", systems=["toy-b"])
    problem["sites"][0]["power_mw"] = 0.1
    plan = solve_toy(problem, BOTH, time_limit_s=10, shadow_prices=False)
    assert plan.served_scale == pytest.approx(2.4)
    assert limits[0] <= 10 * scale_module.SCALE_STAGE_SHARE  # α's LP
    assert limits[-1] < 10  # the cost stage gets what α's stages left, not the whole limit


def test_no_mip_child_is_started_without_time_to_solve(monkeypatch) -> None:
    # a child's time is what is left less the kill grace and a build (taking its plan): with a
    # build as long as the time left, a child would only be started to be killed
    stages = solve_module._Stages(object(), SolveOptions(time_limit_s=3.0), time.perf_counter())
    stages.first_solve_seconds = stages.build_seconds = 3.0
    monkeypatch.setattr(solve_module, "_solve_in_child",
                        lambda *args: pytest.fail("a child with no time"))
    assert not stages.child_has_time()
    assert stages._mip(object(), 1.0) is None


def test_a_real_ctrl_c_stops_highs_in_this_process(medium: Path) -> None:
    # SIGINT while HiGHS runs here: highspy 1.16 dropped the KeyboardInterrupt its callback
    # raised and the MIP went on to its limit; now HiGHS stops and the run says so
    import threading

    inputs = load_problem(medium)
    model = build_model(build_data(inputs, candidates_for(inputs)))
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        run = solve_module._run(model, SolveOptions(time_limit_s=120, mip_gap=0.0))
    finally:
        timer.cancel()
    assert run.interrupted
    assert run.status in (Status.feasible, Status.no_solution)


def test_ctrl_c_inside_pyomo_code_waits_for_it_to_return(medium: Path, monkeypatch) -> None:
    # Pyomo's bare `except:` clauses turn a KeyboardInterrupt raised inside them into other
    # errors (`planner compare` on bench large, Ctrl-C 3.05 s in: a DeveloperError out of
    # relax_integer_vars, exit 1); `solve` holds Ctrl-C, so a build it lands in is finished,
    # HiGHS then stops at once, and only `solve` raises KeyboardInterrupt
    import planner.formulation as formulation

    inputs = load_problem(medium)
    data = build_data(inputs, candidates_for(inputs))
    real_rate = formulation.serving_rate
    calls = {"n": 0}

    def counted(*args: object) -> float:
        calls["n"] += 1
        return real_rate(*args)

    monkeypatch.setattr(formulation, "serving_rate", counted)
    build_model(data)
    per_build, calls["n"] = calls["n"], 0

    def ctrl_c_at_first_rate(*args: object) -> float:
        if calls["n"] == 0:
            os.kill(os.getpid(), signal.SIGINT)  # handled before the next bytecode
        return counted(*args)

    monkeypatch.setattr(formulation, "serving_rate", ctrl_c_at_first_rate)
    with pytest.raises(KeyboardInterrupt):
        solve(data, SolveOptions(time_limit_s=30, shadow_prices=False))
    assert calls["n"] == per_build  # the first build was finished, and no other was begun
    assert solve_module._HELD == []


class _CtrlCInAFinalizer:
    """Sends Ctrl-C from its finalizer, so that Python's handler runs inside it: a
    KeyboardInterrupt raised there is only printed ("Exception ignored in ...") and lost."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))  # bytecode, where the handler runs


def test_ctrl_c_that_meets_a_finalizer_while_the_candidates_are_made_is_kept(
        toy_file: Path, monkeypatch) -> None:
    # in the full suite, hypothesis's gc callback swallowed a Ctrl-C during candidate
    # generation and the solve ran to its limit; `solve_problem` holds Ctrl-C from its start
    import planner.pipeline as pipeline

    real_candidates = pipeline.candidates_for

    def candidates_meeting_a_finalizer(inputs: object) -> object:
        finalized = _CtrlCInAFinalizer()
        del finalized
        return real_candidates(inputs)

    monkeypatch.setattr(pipeline, "candidates_for", candidates_meeting_a_finalizer)
    monkeypatch.setattr(pipeline, "solve", lambda *a, **k: pytest.fail("solved"))
    with pytest.raises(KeyboardInterrupt):
        pipeline.solve_problem(load_problem(toy_file), SolveOptions(time_limit_s=30))
    assert solve_module._HELD == []


@pytest.mark.parametrize("delay_s", [0.05, 0.15, 0.3, 0.45, 0.6, 0.8, 1.0, 1.3])
def test_ctrl_c_at_any_time_ends_a_solve_cleanly(medium: Path, delay_s: float) -> None:
    # a real SIGINT, from another process as a terminal's is, at a time that varies with the
    # machine: the best plan comes back marked interrupted, or KeyboardInterrupt; nothing else
    import subprocess

    from planner.pipeline import solve_problem

    inputs = load_problem(medium)
    sender = subprocess.Popen(["sh", "-c", f"sleep {delay_s}; kill -INT {os.getpid()}"])
    try:
        plan = solve_problem(inputs, SolveOptions(time_limit_s=60, mip_gap=0.0))
    except KeyboardInterrupt:
        return
    finally:
        sender.wait()
    assert plan.interrupted and plan.status == Status.feasible


def test_ctrl_c_in_the_first_polish_pass_skips_the_second(medium: Path, monkeypatch) -> None:
    # the polish runs over the pairs in use, then over all pairs: Ctrl-C in the first ended
    # only that pass, and the second polished on for its whole share (9 s on bench large)
    inputs = load_problem(medium)
    data = build_data(inputs, candidates_for(inputs))
    passes: list[int] = []

    def interrupted_pass(pass_data: object, values: dict, deadline: float,
                         solve_period: object, share_time: bool = True,
                         move_purchases: bool = False) -> tuple[dict, int]:
        passes.append(len(pass_data.kl))
        stages.interrupted = True  # as `solve_period` sets it after HiGHS stopped on Ctrl-C
        return values, 0

    monkeypatch.setattr(solve_module, "polish", interrupted_pass)
    stages = solve_module._Stages(data, SolveOptions(time_limit_s=30, shadow_prices=False),
                                  time.perf_counter())
    stages.relaxation()
    stages.polish(share=1.0)
    assert len(passes) == 1


def test_ctrl_c_while_valuing_binding_limits_keeps_the_plan_without_values(solve_toy,
                                                                            monkeypatch):
    # the re-solve that values a binding limit stops on Ctrl-C: its cost is no value, the
    # re-solves after it do not run, and the plan says so
    from tests.test_formulation import BOTH

    real, calls = solve_module._two_stage, []

    def interrupted_resolves(data: object, options: SolveOptions, started: float) -> object:
        calls.append(options.time_limit_s)
        result = real(data, options, started)
        result.interrupted = len(calls) > 1  # the main solve ends; its first re-solve is cut
        return result

    monkeypatch.setattr(solve_module, "_two_stage", interrupted_resolves)
    problem = toy_problem()
    problem["sites"][0]["power_mw"] = 0.065
    plan = solve_toy(problem, BOTH)
    assert len(calls) == 2
    assert plan.interrupted and [b.value_usd for b in plan.bindings] == [None]
    assert "interrupted (Ctrl-C) while valuing binding limits; values not computed" in plan.notes


def test_ctrl_c_during_the_diagnosis_of_an_infeasible_problem_exits_130(toy_file: Path,
                                                                       monkeypatch) -> None:
    # a diagnosis cut short could name the wrong limits: Ctrl-C there is Ctrl-C before a plan
    real_run = solve_module._run

    def interrupted_elastic(model: object, options: SolveOptions, *args: object,
                            **kwargs: object) -> Run:
        run = real_run(model, options, *args, **kwargs)
        return run._replace(interrupted=True) if getattr(model, "elastic", False) else run

    monkeypatch.setattr(solve_module, "_run", interrupted_elastic)
    result = runner.invoke(app, ["solve", str(toy_file), "--power-budget", "5kW"])
    assert result.exit_code == 130
    assert "interrupted (Ctrl-C) before any plan was found" in result.stderr


def test_highs_reports_its_bound_at_every_interrupt_check(medium: Path) -> None:
    # HiGHS logs a line (cbMipLogging) only every few seconds; a child killed at its deadline
    # kept the last logged bound, 61.94 on bench large at 10 s where HiGHS had 62.11. Its
    # interrupt checks, many a second, now report the bound as it rises
    inputs = load_problem(medium)
    model = build_model(build_data(inputs, candidates_for(inputs)))
    reported: list[float] = []
    run = solve_module._run(model, SolveOptions(time_limit_s=3.0, mip_gap=0.0), progress=(
        lambda bound, objective, plan: reported.append(bound)))
    assert len(reported) > 20  # HiGHS logs a line every few seconds
    finite = [b for b in reported if math.isfinite(b) and b > 0]
    assert finite == sorted(finite) and finite[-1] <= run.bound + 1e-9


def test_a_cut_short_note_names_its_gap_and_bound(toy_data) -> None:
    expected = ("stopped at the time limit: best plan found so far, gap 2.000% (lower bound "
                "11.8600 $M)")
    result = solve_module.SolveResult(Status.feasible, None, toy_data, 11.6, 11.86, 0.02)
    solve_module._note_limits(result)
    assert result.message == expected and result.data.notes[-1] == expected


def test_pyomo_warnings_go_to_stderr_not_into_the_plan_on_stdout():
    # a held system's rounded purchase made Pyomo warn (W1002) on stdout, before the JSON; in a
    # process of its own, since pytest's capture replaces the streams Pyomo's handler holds
    import subprocess
    import sys

    code = "import logging, planner.solve; logging.getLogger('pyomo.core').warning('W1002 x')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert run.stdout == "" and "W1002 x" in run.stderr


SHORT_OF_POWER = """\
name: short-of-power
periods: [{id: P1, hours: 4380}]
finance: {discount_rate: 0}
sites:
- {id: a, power_mw: 0.159, pue: 1.4, racks: 20, rack_power_kw: 40, electricity_usd_per_kwh: 0.243,
   rack_usd_per_month: 800}
- {id: cl, kind: cloud, max_accelerators: 32, rent_markup: 1.1}
systems: [amd-mi300x-oam8, nvidia-hgx-h100]
workloads:
- {id: w0, model: llama-3.3-70b, precision: fp8, input_tokens: 1024, output_tokens: 256,
   slo: {ttft_ms: 2000, tpot_ms: 40}, demand: {P1: 40000}, utilization: 0.46}
- {id: w1, model: llama-3.3-70b, precision: fp8, input_tokens: 4096, output_tokens: 512,
   slo: {ttft_ms: 4000, tpot_ms: 50}, demand: {P1: 80000}, utilization: 0.87, headroom: 0.1}
"""


def test_a_node_limited_diagnosis_measures_the_shortfall(tmp_path: Path, monkeypatch) -> None:
    # 350 kW is the least this site can serve the demand with (0.349 MW is infeasible, 0.350
    # feasible): 191 kW short. The elastic re-solve had inherited --node-limit 5 and said 205
    path = tmp_path / "short.yaml"
    path.write_text(SHORT_OF_POWER)
    args = ["solve", str(path), "--node-limit", "5", "--time-limit", "60"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "site a, P1: power short by 191 kW (budget 159 kW)" in result.stderr, result.stderr
    assert "perhaps more than needed" not in result.stderr
    # a re-solve cut short says its amounts may be more than needed
    monkeypatch.setattr(solve_module, "DIAGNOSIS_NODES", 5)
    result = runner.invoke(app, args)
    assert "power short by" in result.stderr and "perhaps more than needed" in result.stderr, \
        result.stderr
