"""The `planner` command line: thin typer commands that call the library.

Exit codes: 0 a plan (optimal, or feasible with its gap); 1 no plan (infeasible or solver
failure) with the diagnosis; 2 invalid input or usage; 130 Ctrl-C; 141 the reader of stdout
went away (`planner solve … | head`), quietly, as a Unix tool killed by SIGPIPE. Heavy modules
(pyomo, pandas) are imported inside commands so that `planner --help` stays fast.
"""

from __future__ import annotations

import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from planner.errors import NoPlanError
    from planner.problem import Overrides
    from planner.solve import SolveOptions

app = typer.Typer(
    name="planner",
    help="Capacity planner for AI-inference fleets: hardware mix, racks and parallelism "
    "that minimise cost per delivered token under power, space and latency limits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
catalog_app = typer.Typer(help="List, show and validate catalog entries.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")



class _PipeConsole(Console):
    """Rich exits 1 when its reader is gone, which here means "no plan"; raise instead, so
    that `guarded` exits 141 like any other write to a closed pipe."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


out = _PipeConsole(soft_wrap=False, width=160)
err = _PipeConsole(stderr=True, soft_wrap=True)
_state = {"debug": False}


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class SchemaKind(StrEnum):
    problem = "problem"
    catalog = "catalog"


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and solver detail.")] = False,
) -> None:
    _state["debug"] = debug


def fail(exc: BaseException) -> None:
    """Print a PlannerError as one line per problem and exit with its code."""
    from planner.errors import InputError, NoPlanError, PlannerError

    if _state["debug"]:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, InputError):
        err.print("[bold red]error:[/bold red] invalid input", highlight=False)
        for line in exc.problems:
            err.print(f"  • {line}", highlight=False, markup=False)
        raise typer.Exit(2)
    if isinstance(exc, NoPlanError):
        from rich.markup import escape

        err.print(f"[bold red]no plan:[/bold red] {escape(str(exc))}", highlight=False)
        for line in exc.diagnosis:
            err.print(f"  • {line}", highlight=False, markup=False)
        raise typer.Exit(1)
    if isinstance(exc, PlannerError):
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        err.print("interrupted (Ctrl-C) before any plan was found; nothing written", highlight=False)
        raise typer.Exit(130)
    raise exc


def guarded(func: Any) -> Any:
    """Decorator: library errors become messages and exit codes, never tracebacks."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return _run_command(func, *args, **kwargs)
        except BrokenPipeError:  # stdout's reader, or stderr's while `fail` prints
            _reader_gone()

    return wrapper


def _run_command(func: Any, *args: Any, **kwargs: Any) -> Any:
    from planner.errors import PlannerError

    try:
        return func(*args, **kwargs)
    except typer.Exit:
        raise
    except (PlannerError, KeyboardInterrupt) as exc:
        fail(exc)
    except OSError as exc:  # a write the checks of --out and --report could not foresee
        if isinstance(exc, BrokenPipeError) and exc.filename is None:
            raise  # a closed stdout, not a file: `guarded` exits quietly
        if _state["debug"]:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(f"[bold red]error:[/bold red] {where}{exc.strerror or exc} (earlier results "
                  "there are intact)", highlight=False)
        raise typer.Exit(1) from None
    except Exception as exc:
        if _state["debug"]:
            raise
        err.print(f"[bold red]internal error:[/bold red] {type(exc).__name__}: {exc} "
                  "(run with --debug for the traceback)", highlight=False)
        raise typer.Exit(1) from None


def _reader_gone() -> None:
    """Stdout's or stderr's reader has gone (`| head`, `2>&1 | head`): exit 141, as a tool
    killed by SIGPIPE would, saying nothing. Both are pointed at /dev/null first, or Python's
    own flush at exit would print "Exception ignored … BrokenPipeError"."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        os.dup2(devnull, stream.fileno())
    raise typer.Exit(141)


# ------------------------------------------------------------------------------------------
# shared options
# ------------------------------------------------------------------------------------------

ProblemArg = Annotated[Path, typer.Argument(help="Problem file (YAML).", show_default=False)]
PowerOpt = Annotated[
    list[str] | None,
    typer.Option("--power-budget", help="Facility power budget: 20MW (single owned site) or "
                 "SITE=20MW; repeatable."),
]
DemandOpt = Annotated[
    Path | None, typer.Option("--demand", help="Forecast CSV: period,workload,output_tokens_per_s.")
]
VendorOpt = Annotated[list[str] | None, typer.Option("--vendor", help="Only this vendor; repeatable.")]
SystemOpt = Annotated[list[str] | None, typer.Option("--system", help="Only this system id; repeatable.")]


def _within(low: float, high: float = math.inf) -> Any:
    """An option callback: a number from `low` to `high`, NaN refused by name (it passes
    click's own min and max, every comparison with it being false, and its message then
    said only "should be less than or equal to 1")."""

    def check(value: float) -> float:
        if not low <= value <= high:
            expected = f"from {low:g} to {high:g}" if high < math.inf else f"of at least {low:g}"
            raise typer.BadParameter(f"found {value:g}; expected a number {expected}")
        return value

    return check


TimeOpt = Annotated[float, typer.Option(
    "--time-limit", help="Time limit per solve, s, from candidate generation to the values of "
    "binding limits.", callback=_within(0.1))]
GapOpt = Annotated[float, typer.Option("--gap", help="Relative MIP gap to stop at.",
                                       callback=_within(0.0, 1.0))]
MAX_THREADS = 256
"""More HiGHS threads than this only contend (5,000 spent a 0.2 s problem's whole time limit,
10⁵ hung past it, and 10²⁰ overflowed HiGHS's option)."""
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="HiGHS threads.", min=1,
                                                max=MAX_THREADS)]
NodeOpt = Annotated[int | None, typer.Option(
    "--node-limit", help="Stop each MIP after this many branch-and-bound nodes instead of at a "
    "share of the time limit: the same plan run after run (the time limit still caps the "
    "solve).", min=1)]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


CUT_SHORT = ("interrupted", "stopped at the time limit", "stopped at the node limit",
             "the time limit ended part")
"""Notes of a solve cut short, echoed to stderr by `solve`."""


def _output_path(text: str) -> Path:
    """An output path as typed: an empty one is refused, where `Path("")` would be the
    current directory and `--out ""` would write every table there."""
    if not text.strip():
        raise typer.BadParameter("found an empty path; expected a file or directory path")
    return Path(text)


def _writable_directory(path: Path | None) -> Path | None:
    """--out: checked before any solve, so a run does not end in a write that cannot work."""
    if path is not None:
        _check_writable(path, directory=True)
    return path


def _writable_file(path: Path | None) -> Path | None:
    if path is not None:
        _check_writable(path, directory=False)
    return path


def _chart_file(path: Path | None) -> Path | None:
    from planner.sweep import CHART_FORMATS

    if path is not None and path.suffix.lower()[1:] not in CHART_FORMATS:
        raise typer.BadParameter(f"{path}: found the extension '{path.suffix}'; expected "
                                 + ", ".join(f".{f}" for f in CHART_FORMATS))
    return _writable_file(path)


def _check_writable(path: Path, directory: bool) -> None:
    import os

    if path.is_symlink() and not path.exists():
        raise typer.BadParameter(f"{path} is a symlink to nothing; expected a "
                                 f"{'directory' if directory else 'file'} path")
    if path.exists() and not path.is_dir() and not path.is_file():
        raise typer.BadParameter(f"{path} exists and is not a regular file (a device or a "
                                 "pipe); expected a file or directory path")
    if path.exists() and path.is_dir() != directory:
        raise typer.BadParameter(f"{path} exists and is a {'file' if directory else 'directory'}"
                                 f"; expected a {'directory' if directory else 'file'} path")
    # a file is replaced by a rename inside its directory (`atomic.write_atomically`): that
    # directory must be writable, whether the file exists yet or not
    existing = path if directory and path.exists() else path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise typer.BadParameter(f"{existing} is a file, so {path} cannot be created")
    if not os.access(existing, os.W_OK):
        raise typer.BadParameter(f"{existing} is not writable")


def _apart(out_dir: Path | None, written: tuple[str, ...], **files: Path | None) -> None:
    """Refuse output paths that would overwrite one another: --report or --chart on a file
    that --out writes, or on each other (the last write would silently win)."""
    from planner.errors import InputError

    taken = {} if out_dir is None else {
        (out_dir / name).resolve(): f"{name}, which --out {out_dir} writes" for name in written}
    mistakes = []
    for option, path in files.items():
        if path is None:
            continue
        if (other := taken.get(path.resolve())) is not None:
            mistakes.append(f"--{option} {path}: found the path of {other}; expected a "
                            "path no other output uses")
        taken[path.resolve()] = f"--{option}"
    if mistakes:
        raise InputError(mistakes)


ReportOpt = Annotated[Path | None, typer.Option(
    "--report", help="Write a self-contained HTML report with charts.",
    parser=_output_path, callback=_writable_file)]
OutOpt = Annotated[Path | None, typer.Option(
    "--out", help="Write every table (CSV) and JSON here.", parser=_output_path,
    callback=_writable_directory)]


def _overrides(power: list[str] | None, demand: Path | None, vendor: list[str] | None,
               system: list[str] | None, assignments: list[tuple[str, Any]] | None = None
               ) -> Overrides:
    from planner.problem import Overrides

    return Overrides(power_budget=tuple(power or ()), demand_csv=demand,
                     vendors=tuple(vendor or ()), systems=tuple(system or ()),
                     assignments=tuple(assignments or ()))


def _no_plan_json(exc: NoPlanError, format: Format) -> None:
    """With `--format json`, a reader of stdout gets the no-plan status and diagnosis too, not
    nothing (the message still goes to stderr, and the exit code is 1)."""
    if format == Format.json:
        from planner.report import to_json

        sys.stdout.write(to_json({"status": exc.status, "message": str(exc),
                                  "diagnosis": exc.diagnosis}))


def write_report(path: Path, html: str) -> None:
    """Write an HTML report atomically."""
    from planner.atomic import write_atomically

    write_atomically(path.parent if str(path.parent) else Path("."), {path.name: html})
    err.print(f"report written to {path}", highlight=False, markup=False)


def _options(time_limit: float, gap: float, threads: int | None,
             node_limit: int | None) -> SolveOptions:
    from planner.solve import SolveOptions

    return SolveOptions(time_limit_s=time_limit, mip_gap=gap, threads=threads,
                        verbose=_state["debug"], node_limit=node_limit)


# ------------------------------------------------------------------------------------------
# solve
# ------------------------------------------------------------------------------------------


@app.command()
@guarded
def solve(
    problem: ProblemArg,
    power_budget: PowerOpt = None,
    demand: DemandOpt = None,
    vendor: VendorOpt = None,
    system: SystemOpt = None,
    time_limit: TimeOpt = 60.0,
    gap: GapOpt = 1e-3,
    threads: ThreadsOpt = None,
    node_limit: NodeOpt = None,
    format: FormatOpt = Format.table,
    out_dir: OutOpt = None,
    report: ReportOpt = None,
    debug: Annotated[bool, typer.Option("--debug", help="HiGHS log, coefficient ranges (stderr) "
                                        "and tracebacks.")] = False,
) -> None:
    """Solve a capacity plan: fleet, deployments, costs and what binds."""
    from planner.errors import NoPlanError
    from planner.pipeline import solve_problem
    from planner.problem import load_problem
    from planner.report import (
        PLAN_FILES,
        plan_tables,
        print_plan,
        tables_to_csv,
        to_json,
        write_plan,
    )

    _state["debug"] = _state["debug"] or debug
    _apart(out_dir, PLAN_FILES, report=report)
    inputs = load_problem(problem, _overrides(power_budget, demand, vendor, system))
    try:
        plan = solve_problem(inputs, _options(time_limit, gap, threads, node_limit))
    except NoPlanError as exc:
        _no_plan_json(exc, format)
        raise
    for note in plan.notes:
        if note.startswith(CUT_SHORT):
            err.print(f"note: {note}", highlight=False, markup=False)
    if out_dir is not None:
        write_plan(plan, out_dir)
    if report is not None:
        from planner.report_html import plan_html

        write_report(report, plan_html(plan))
    if format == Format.json:
        payload = plan.to_dict()
        payload.pop("timing")  # timing lives in --out's plan.json; stdout stays byte-stable
        sys.stdout.write(to_json(payload))
    elif format == Format.csv:
        sys.stdout.write(tables_to_csv(plan_tables(plan)))
    else:
        print_plan(plan, out)
        if out_dir is not None:
            out.print(f"[dim]tables written to {out_dir}/[/dim]")


# ------------------------------------------------------------------------------------------
# compare and sweep
# ------------------------------------------------------------------------------------------


class By(StrEnum):
    vendor = "vendor"
    system = "system"


QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Solves run in parallel "
                                         "processes (default: one per core, at most 2).")]


def _progress(total: int, quiet: bool) -> Any:
    """A rich progress bar on stderr, or a no-op when quiet or not a terminal."""
    from contextlib import nullcontext

    if quiet or total <= 1 or not err.is_terminal:  # off a terminal, rich leaves an empty line
        return nullcontext(None)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                    "{task.total}"), TimeElapsedColumn(), console=err, transient=True)


@app.command()
@guarded
def compare(
    problem: ProblemArg,
    by: Annotated[By, typer.Option("--by", help="One optimal fleet per vendor or per system.")] = By.vendor,
    power_budget: PowerOpt = None,
    demand: DemandOpt = None,
    vendor: VendorOpt = None,
    system: SystemOpt = None,
    time_limit: TimeOpt = 60.0,
    gap: GapOpt = 1e-3,
    threads: ThreadsOpt = None,
    node_limit: NodeOpt = None,
    workers: WorkersOpt = 2,
    format: FormatOpt = Format.table,
    out_dir: OutOpt = None,
    report: ReportOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """The optimal fleet of each vendor (or system) and the mixed optimum, side by side."""
    from planner.atomic import write_atomically
    from planner.compare import INTERRUPTED, compare_frame, outcome_row, run_compare, variants
    from planner.report import frame_csv, to_json

    _apart(out_dir, ("compare.json", "compare.csv"), report=report)
    overrides = _overrides(power_budget, demand, vendor, system)
    total = len(variants(problem, by.value, overrides))
    with _progress(total, quiet or format != Format.table) as bar:
        task = bar.add_task(f"solving {total} fleets", total=total) if bar else None
        outcomes = run_compare(problem, by.value, overrides,
                               _options(time_limit, gap, threads, node_limit), workers=workers,
                               on_done=(lambda _o: bar.advance(task)) if bar else None)
    frame = compare_frame(outcomes)
    rows = [outcome_row(o) for o in outcomes]
    payload = {"by": by.value, "rows": rows}
    for o in outcomes:
        for note in o.plan.notes if o.plan is not None else []:
            if note.startswith("interrupted"):
                err.print(f"note: {o.label}: {note}", highlight=False, markup=False)
    from planner.performance import uncalibrated_note

    for row in rows:
        if row["uncalibrated_systems"]:
            err.print(f"note: {row['fleet']}: {uncalibrated_note(row['uncalibrated_systems'])}",
                      highlight=False, markup=False)
        if row["kept_existing"]:
            err.print(f"note: {row['fleet']}: also runs the existing "
                      f"{', '.join(row['kept_existing'])} already owned (none bought)",
                      highlight=False, markup=False)
    unsolved = sum(o.status == INTERRUPTED for o in outcomes)
    if out_dir is not None and not unsolved:
        write_atomically(out_dir, {"compare.json": to_json(payload),
                                   "compare.csv": frame_csv(frame)})
    if report is not None and not unsolved:
        from planner.report_html import compare_html

        write_report(report, compare_html(outcomes, by.value))
    if format == Format.json:
        sys.stdout.write(to_json(payload))
    elif format == Format.csv:
        sys.stdout.write(frame_csv(frame))
    else:
        from planner.report import print_compare

        print_compare(outcomes, by.value, out)
    _exit_if_cut_short(unsolved, len(outcomes), "fleets")
    _exit_if_none_planned(sum(o.plan is not None for o in outcomes), len(outcomes), "fleets")


@app.command()
@guarded
def sweep(
    problem: ProblemArg,
    sets: Annotated[list[str], typer.Option("--set", help="PATH=V1,V2,... e.g. "
                                            "sites.dc1.electricity_usd_per_kwh=0.05,0.1; repeatable "
                                            "(grid); also catalog.systems.ID.FIELD and demand_scale.")],
    power_budget: PowerOpt = None,
    demand: DemandOpt = None,
    vendor: VendorOpt = None,
    system: SystemOpt = None,
    time_limit: TimeOpt = 60.0,
    gap: GapOpt = 1e-3,
    threads: ThreadsOpt = None,
    node_limit: NodeOpt = None,
    format: FormatOpt = Format.table,
    out_dir: OutOpt = None,
    chart: Annotated[Path | None, typer.Option("--chart", help="Write a chart of the headline "
                                               "metrics (.png, .svg or .pdf).",
                                               parser=_output_path,
                                               callback=_chart_file)] = None,
    report: ReportOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """What-ifs: one solve per point of a grid of parameter values; a table and a chart."""
    from planner.atomic import write_atomically
    from planner.report import frame_csv, to_json
    from planner.sweep import INTERRUPTED, grid, parse_sets, run_sweep, sweep_chart, sweep_rows

    _apart(out_dir, ("sweep.json", "sweep.csv"), chart=chart, report=report)
    axes = parse_sets(sets)
    total = len(grid(axes))
    with _progress(total, quiet or format != Format.table) as bar:
        task = bar.add_task(f"solving {total} points", total=total) if bar else None
        frame = run_sweep(problem, axes, _overrides(power_budget, demand, vendor, system),
                          _options(time_limit, gap, threads, node_limit),
                          on_done=(lambda _r: bar.advance(task)) if bar else None)
    rows = sweep_rows(frame)
    unsolved = sum(row["status"] == INTERRUPTED for row in rows)
    if chart is not None and not unsolved:
        write_atomically(chart.parent, {chart.name: sweep_chart(frame, axes,
                                                                chart.suffix.lower()[1:])})
    if out_dir is not None and not unsolved:
        write_atomically(out_dir, {"sweep.json": to_json({"rows": rows}),
                                   "sweep.csv": frame_csv(frame)})
    if report is not None and not unsolved:
        from planner.report_html import sweep_html

        write_report(report, sweep_html(frame, [a.path for a in axes]))
    if format == Format.json:
        sys.stdout.write(to_json({"rows": rows}))
    elif format == Format.csv:
        sys.stdout.write(frame_csv(frame))
    else:
        from planner.report import print_sweep

        print_sweep(frame, [a.path for a in axes], out)
        if chart is not None and not unsolved:
            out.print(f"[dim]chart written to {chart}[/dim]")
    _exit_if_cut_short(unsolved, len(rows), "points")
    _exit_if_none_planned(sum(row["status"] in PLANNED for row in rows), len(rows), "points")


def _exit_if_cut_short(unsolved: int, total: int, what: str) -> None:
    """Exit 130 when Ctrl-C left some of a compare's or sweep's solves undone: what was solved
    is printed, and no file is written for an incomplete comparison."""
    if unsolved:
        err.print(f"interrupted (Ctrl-C): {unsolved} of {total} {what} not solved; nothing "
                  "written", highlight=False)
        raise typer.Exit(130)


PLANNED = ("optimal", "feasible")
"""Statuses of a compare row or sweep point that has a plan."""


def _exit_if_none_planned(planned: int, total: int, what: str) -> None:
    """Exit 1 (no plan) when none of a compare's or sweep's solves has a plan: the table and
    its reasons are printed, and the exit code says that there is nothing to act on."""
    if not planned:
        err.print(f"no plan: none of the {total} {what} has one (the reasons are in the table)",
                  highlight=False)
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------------
# estimate and calibrate
# ------------------------------------------------------------------------------------------


@app.command()
@guarded
def estimate(
    system: Annotated[str, typer.Option("--system", help="System id.")],
    model: Annotated[str, typer.Option("--model", help="Model id.")],
    precision: Annotated[str, typer.Option("--precision", help="bf16, fp8 or fp4.")] = "fp8",
    input_tokens: Annotated[int, typer.Option("--input-tokens", min=1)] = 1024,
    output_tokens: Annotated[int, typer.Option("--output-tokens", min=1)] = 1024,
    ttft_ms: Annotated[float | None, typer.Option("--ttft-ms", min=0.001)] = None,
    tpot_ms: Annotated[float | None, typer.Option("--tpot-ms", min=0.001)] = None,
    top: Annotated[int, typer.Option("--top", min=1)] = 10,
    format: FormatOpt = Format.table,
) -> None:
    """Best deployment options of one model on one system, ranked by tok/s per accelerator."""
    from planner.catalog import load_catalog
    from planner.errors import InputError, NoPlanError
    from planner.performance.estimate import estimate as run_estimate
    from planner.schema import Precision

    try:
        prec = Precision(precision.lower())
    except ValueError:
        raise InputError([f"--precision: found '{precision}'; expected one of "
                          f"{', '.join(p.value for p in Precision)}"]) from None
    catalog = load_catalog()
    for kind, value in (("systems", system), ("models", model)):
        if value not in getattr(catalog, kind):
            from planner.catalog import lookup

            lookup(catalog, kind, value)
    from planner.problem import beyond_context

    if too_long := beyond_context(catalog, model, input_tokens, output_tokens):
        raise InputError([f"--input-tokens {input_tokens} --output-tokens {output_tokens}: "
                          f"{too_long}"])
    result = run_estimate(catalog, system, model, prec, input_tokens, output_tokens, ttft_ms,
                          tpot_ms, top)
    table = result.table
    if table.empty:
        exc = NoPlanError("no deployment option fits: " + "; ".join(result.reasons),
                          list(result.reasons))
        _no_plan_json(exc, format)
        raise exc
    from planner.performance.estimate import estimate_records

    if format == Format.json:
        from planner.report import to_json

        sys.stdout.write(to_json({"rows": estimate_records(table)}))
    elif format == Format.csv:
        from planner.report import frame_csv

        sys.stdout.write(frame_csv(table))
    else:
        from rich.table import Table

        t = Table(title=f"{model} on {system} ({prec.value}, {input_tokens}/{output_tokens} tokens)",
                  title_justify="left")
        cols = [("mode", "mode"), ("tp", "TP"), ("pp", "PP"), ("ep", "EP"),
                ("concurrency", "conc."), ("prefill_tp", "prefill TP×PP×EP ×n"),
                ("ttft_ms", "TTFT ms"), ("tpot_ms", "TPOT ms"),
                ("memory_gb_per_accelerator", "GB/acc"),
                ("output_tokens_per_s_per_accelerator", "tok/s/acc"),
                ("output_tokens_per_s_per_system", "tok/s/system"),
                ("output_tokens_per_s_per_rack", "tok/s/rack"),
                ("output_tokens_per_s_per_kw", "tok/s/kW")]
        for _, label in cols:
            t.add_column(label, justify="left" if label == "mode" else "right")
        for row in estimate_records(table):
            cells = []
            for key, _ in cols:
                v = row.get(key)
                if key == "mode":
                    cells.append(str(v) + (" +spec" if row.get("speculative") else ""))
                elif key == "prefill_tp":  # the prefill replica of a disaggregated pair
                    cells.append("-" if v is None else f"{v}×{row['prefill_pp']}×"
                                 f"{row['prefill_ep']} ×{row['prefill_replicas']:.2f}")
                elif isinstance(v, float):
                    cells.append(f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}")
                else:
                    cells.append(str(v))
            t.add_row(*cells)
        out.print(t)
        from planner.performance import UNCALIBRATED, uncalibrated_note

        if (table["source"] == UNCALIBRATED).any():
            out.print(f"note: {uncalibrated_note([system])}", highlight=False)


@app.command()
@guarded
def calibrate(
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Measured results CSV (default: the MLPerf v5.1 reference beside the repo)."
    )] = None,
    write: Annotated[bool, typer.Option("--write", help="Store the fitted parameters in "
                                        "catalogs/calibration.yaml.")] = False,
    format: FormatOpt = Format.table,
) -> None:
    """Refit the performance model's efficiencies to measured results and report the fit."""
    from planner.catalog import CALIBRATION_FILE, default_catalog_dir, load_catalog
    from planner.errors import InputError
    from planner.performance import calibration

    path = csv_path or calibration.DEFAULT_CSV
    if not path.exists():
        raise InputError([f"{path}: calibration CSV not found; pass --csv"])
    catalog = load_catalog()  # one load for both: the parameters in use, and the refit
    shipped = calibration.shipped_table(path, catalog)["rel_error"].abs()  # before --write
    result = calibration.fit(path, catalog)
    if write:
        calibration.write_calibration(result, default_catalog_dir() / CALIBRATION_FILE)
    table = result.table
    if format == Format.json:
        from planner.report import to_json

        sys.stdout.write(to_json({"median_abs_error": result.median_abs_error,
                                  "worst_abs_error": result.worst_abs_error,
                                  "shipped": {"median_abs_error": float(shipped.median()),
                                              "worst_abs_error": float(shipped.max())},
                                  "rows": table.to_dict(orient="records")}))
    elif format == Format.csv:
        from planner.report import frame_csv

        sys.stdout.write(frame_csv(table))
    else:
        out.print(table.to_string(index=False))
        groups = f"over {len(table)} groups ({int(table['rows'].sum())} results)"
        out.print(f"this fit: median |error| {result.median_abs_error:.1%}, worst "
                  f"{result.worst_abs_error:.1%} {groups}"
                  + (" — written to catalogs/calibration.yaml" if write else ""))
        out.print(f"{'replaced' if write else 'in use'} (catalogs/calibration.yaml): median "
                  f"|error| {shipped.median():.1%}, worst {shipped.max():.1%}")


# ------------------------------------------------------------------------------------------
# catalog and schema
# ------------------------------------------------------------------------------------------

ExtraCatalog = Annotated[
    list[Path] | None,
    typer.Option("--catalog", help="Extra catalog file or directory (yours); repeatable."),
]


@catalog_app.command("list")
@guarded
def catalog_list(
    vendor: Annotated[str | None, typer.Option("--vendor", help="Only this vendor.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="systems, accelerators or models.")] = "systems",
    extra: ExtraCatalog = None,
    format: FormatOpt = Format.table,
) -> None:
    """List catalog entries (systems by default) with vendor, accelerators, power and price."""
    from planner.catalog import load_catalog
    from planner.errors import InputError

    catalog = load_catalog(extra or [])
    if kind not in ("systems", "accelerators", "models"):
        raise InputError([f"--kind: found '{kind}'; expected systems, accelerators or models"])
    vendors = sorted({s.vendor for s in catalog.systems.values()}
                     | {a.vendor for a in catalog.accelerators.values()})
    if vendor is not None and vendor.lower() not in vendors:
        raise InputError([f"--vendor {vendor}: unknown vendor; expected one of {', '.join(vendors)}"])
    rows = catalog_rows(catalog, kind, vendor)
    if format == Format.json:
        from planner.report import to_json

        sys.stdout.write(to_json({"rows": rows}))
    elif format == Format.csv:
        import pandas as pd

        sys.stdout.write(pd.DataFrame(rows).to_csv(index=False, lineterminator="\n"))
    else:
        from rich.table import Table

        t = Table(title=f"{kind} ({len(rows)})", title_justify="left")
        columns = [c for c in (rows[0] if rows else {}) if c != "name"]
        for col in columns:
            numeric = any(isinstance(r[col], int | float) for r in rows)
            t.add_column(col.replace("_usd_per_acc_h", " $/acc-h"),
                         justify="right" if numeric else "left", no_wrap=col == "id")
        for r in rows:
            t.add_row(*[_cell(r[c]) for c in columns])
        out.print(t)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.4g}"
    return str(value)


def catalog_rows(catalog: Any, kind: str, vendor: str | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if kind == "systems":
        for s in sorted(catalog.systems.values(), key=lambda s: (s.vendor, s.id)):
            if vendor and s.vendor != vendor.lower():
                continue
            tiers = s.tco_tiers
            rows.append({
                "id": s.id, "vendor": s.vendor, "name": s.name, "accelerator": s.accelerator,
                "accelerators": s.accelerators, "power_kw_max": s.power_kw_max,
                "form": "whole rack" if s.whole_rack else (f"{s.rack_units}U" if s.rack_units else "cloud"),
                "cooling": s.cooling.value, "price_usd": s.price_usd,
                "rent_usd_per_acc_h": s.rent_usd_per_accelerator_hour,
                "tco_hyperscaler_usd_per_acc_h":
                    tiers.hyperscaler_usd_per_accelerator_hour if tiers else None,
            })
    elif kind == "accelerators":
        for a in sorted(catalog.accelerators.values(), key=lambda a: (a.vendor, a.id)):
            if vendor and a.vendor != vendor.lower():
                continue
            rows.append({
                "id": a.id, "vendor": a.vendor, "name": a.name, "memory_gb": a.memory_gb,
                "memory_bandwidth_tbps": a.memory_bandwidth_tbps,
                "bf16_tflops": a.tflops_dense.get("bf16"), "fp8_tflops": a.tflops_dense.get("fp8"),
                "fp4_tflops": a.tflops_dense.get("fp4"), "tdp_w": a.tdp_w,
                "scale_up_domain": a.scale_up_domain, "stack": a.software_stack,
            })
    else:
        for mdl in sorted(catalog.models.values(), key=lambda m: m.id):
            rows.append({
                "id": mdl.id, "name": mdl.name, "params_total_b": mdl.params_total_b,
                "params_active_b": mdl.params_active_b, "layers": mdl.layers,
                "attention": mdl.attention.value, "kv_heads": mdl.kv_heads,
                "experts": mdl.experts, "max_context_tokens": mdl.max_context_tokens,
            })
    return rows


@catalog_app.command("show")
@guarded
def catalog_show(
    entry_id: Annotated[str, typer.Argument(help="Accelerator, system or model id.")],
    extra: ExtraCatalog = None,
) -> None:
    """Show one entry with every field and its source."""
    import yaml

    from planner.catalog import load_catalog
    from planner.errors import InputError

    catalog = load_catalog(extra or [])
    for kind in ("systems", "accelerators", "models"):
        entry = getattr(catalog, kind).get(entry_id)
        if entry is not None:
            data = entry.model_dump(mode="json", exclude_none=True)
            sys.stdout.write(yaml.safe_dump({kind[:-1]: data}, sort_keys=False, width=100))
            return
    import difflib

    known = [*catalog.systems, *catalog.accelerators, *catalog.models]
    near = difflib.get_close_matches(entry_id, known, n=3, cutoff=0.5)
    raise InputError([f"unknown catalog id '{entry_id}'"
                      + (f"; did you mean {', '.join(near)}?" if near else "")])


@catalog_app.command("validate")
@guarded
def catalog_validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Catalog files or directories "
                                                       "(default: the shipped catalog).")] = None,
) -> None:
    """Validate catalog files: every key known, every unit right, every number sourced; files
    of yours are checked together with the shipped catalog their systems may refer to."""
    from planner.catalog import catalog_files, default_catalog_dir, load_catalog
    from planner.errors import InputError

    empty = [f"{p}: no catalog files (*.yaml, *.yml) in this directory" for p in paths or []
             if p.is_dir() and not catalog_files([p])]
    if empty:
        raise InputError(empty)
    files = catalog_files(paths or [default_catalog_dir()])
    catalog = load_catalog(paths or [], include_default=True)
    counts = [len(catalog.accelerators), len(catalog.systems), len(catalog.models)]
    if paths:  # yours are what the shipped catalog does not have (a repeated id is an error)
        shipped = load_catalog([], include_default=True)
        counts = [counts[0] - len(shipped.accelerators), counts[1] - len(shipped.systems),
                  counts[2] - len(shipped.models)]
    whose = "with the shipped catalog" if paths else "the shipped catalog"
    out.print(f"ok: {len(files)} file{'s' * (len(files) != 1)} ({whose}): {counts[0]} "
              f"accelerators, {counts[1]} systems, {counts[2]} models")


@app.command()
@guarded
def schema(kind: Annotated[SchemaKind, typer.Argument(help="problem or catalog")]) -> None:
    """Print the JSON Schema of a problem file or a catalog file."""
    import json

    from planner.schema import CatalogFile, Problem

    model = Problem if kind == SchemaKind.problem else CatalogFile
    sys.stdout.write(json.dumps(model.model_json_schema(), indent=2) + "\n")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
