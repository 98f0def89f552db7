"""Self-contained HTML reports of a plan, a comparison and a sweep.

Each page is one file a capacity planner can open offline or paste into a slide: inline CSS, charts
as inline SVG drawn by matplotlib (Agg backend, no JavaScript, no external URL), a headline strip,
charts, then the tables. Output is deterministic: the same input gives the same bytes (fixed SVG
hash salt per chart, no dates, no solve timings). Every piece of text from the input is escaped.

    plan_html(plan, title=None) -> str
    compare_html(outcomes, by) -> str
    sweep_html(frame, axes) -> str

matplotlib is optional (the `charts` extra): without it the pages keep their headline and tables
and say that charts need matplotlib.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from typing import Any, TypeGuard

import pandas as pd

from planner.compare import MIXED, Outcome, configurations, outcome_row
from planner.plan import COST_COMPONENTS, Plan, describe_binding
from planner.solve import Status
from planner.units import format_power_kw, format_rate, format_usd

# ---------------------------------------------------------------------------------------------
# colours: one hue family per vendor, one shade per system, the same on every chart of a page

_VENDOR_SHADES = {
    "nvidia": ["#5a9e00", "#1b6b3a", "#9ccc3c", "#0d3d24", "#3fa37a", "#6b7a00"],
    "amd": ["#d7191c", "#8c0b20", "#f07c6a", "#b3476b", "#5e0715"],
    "intel": ["#0068b5", "#00427a", "#5fa8e3", "#2b8cbe"],
}
_DASHES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1))]
_OTHER_SHADES = [
    ["#6a3d9a", "#9e7cc1", "#45256a"],
    ["#e07b00", "#f5a94a", "#9c5600"],
    ["#00897b", "#4db6ac", "#00574f"],
    ["#5f6b7a", "#94a0ae", "#3b4450"],
    ["#b5477d", "#d987ae", "#7a2c53"],
]
MIXED_COLOR = "#1f2a44"
INFEASIBLE_COLOR = "#b0b6bf"
COMPONENT_COLORS = {
    "capex": "#1f4e79", "energy": "#f2a900", "facility": "#5b9bd5", "opex": "#8064a2",
    "rent": "#70ad47", "all_in": "#2e75b6",
}
COMPONENT_LABELS = {
    "capex": "Capex", "energy": "Energy", "facility": "Facility (colo, power, space)",
    "opex": "Opex (maintenance)", "rent": "Rent", "all_in": "All-in $/GPU-h",
}
TEXT = "#1f2933"
MUTED = "#65717e"
GRID = "#d9dee4"


def _vendor_of(system: str, known: dict[str, str]) -> str:
    return known.get(system) or system.split("-", 1)[0].lower()


def _by_vendor(systems: Iterable[str], vendors: dict[str, str]) -> dict[str, list[str]]:
    by_vendor: dict[str, list[str]] = {}
    for s in sorted(set(systems)):
        by_vendor.setdefault(_vendor_of(s, vendors), []).append(s)
    return by_vendor


def system_colors(systems: Iterable[str], vendors: dict[str, str] | None = None) -> dict[str, str]:
    """A stable colour per system: a hue family per vendor, shades in sorted system order."""
    colors: dict[str, str] = {}
    other = 0
    for vendor, members in sorted(_by_vendor(systems, vendors or {}).items()):
        shades = _VENDOR_SHADES.get(vendor)
        if shades is None:
            shades = _OTHER_SHADES[other % len(_OTHER_SHADES)]
            other += 1
        for i, s in enumerate(members):
            colors[s] = shades[i % len(shades)]
    return colors


def _system_dashes(systems: Iterable[str], vendors: dict[str, str] | None = None) -> dict[str, Any]:
    """Line styles that tell apart systems of one vendor (whose colours are shades of one hue)."""
    return {s: _DASHES[i % len(_DASHES)]
            for members in _by_vendor(systems, vendors or {}).values()
            for i, s in enumerate(members)}


# ---------------------------------------------------------------------------------------------
# number formatting


def _isnum(value: Any) -> TypeGuard[float]:
    if value is None or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _usd(value: Any) -> str:
    return format_usd(float(value)) if _isnum(value) else "–"


def _usd_per_m(value: Any) -> str:
    if not _isnum(value):
        return "–"
    v = float(value)
    return f"${v:,.3f}" if abs(v) < 10 else f"${v:,.2f}"


def _rate(value: Any) -> str:
    return format_rate(float(value)) if _isnum(value) else "–"


def _kw(value: Any) -> str:
    return format_power_kw(float(value)) if _isnum(value) else "–"


def _count(value: Any) -> str:
    return f"{float(value):,.0f}" if _isnum(value) else "–"


def _num(value: Any, digits: int = 1) -> str:
    return f"{float(value):,.{digits}f}" if _isnum(value) else "–"


def _gap(gap: Any) -> str:
    return f"gap {float(gap):.2%}" if _isnum(gap) else ""


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------------
# matplotlib → inline SVG


@contextmanager
def _mpl():
    """pyplot with the Agg backend and the report's style (restored afterwards)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {
        "svg.fonttype": "none",
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "sans-serif"],
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "axes.titlepad": 10,
        "axes.labelsize": 9.5,
        "axes.labelcolor": TEXT,
        "axes.edgecolor": GRID,
        "axes.linewidth": 0.8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "axes.axisbelow": True,
        "grid.color": GRID,
        "grid.linewidth": 0.6,
        "xtick.color": MUTED,
        "ytick.color": MUTED,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 8.5,
        "legend.frameon": False,
        "text.color": TEXT,
        "figure.facecolor": "white",
        "axes.facecolor": "white",
        "savefig.facecolor": "white",
    }
    with matplotlib.rc_context(style):
        yield plt


def _svg(fig: Any, name: str) -> str:
    """One figure as an inline <svg> element: deterministic ids (salted per chart so several
    charts on a page never share an id), no date, scaled to its container."""
    import matplotlib
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"planner-report-{name}"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight",
                    pad_inches=0.12)
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    # natural size (so fonts match across charts), shrunk by CSS on narrow screens
    text = re.sub(r"<svg ", f'<svg class="chart" role="img" aria-label="{html.escape(name)}" ', text,
                  count=1)
    return text.strip()


def _charts_or_note(makers: Sequence[tuple[str, str, Any]]) -> str:
    """Render (title, caption, maker) chart sections; maker() returns an SVG string or ''."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ('<section class="card"><p class="muted">Charts need matplotlib '
                "(pip install 'planner[charts]').</p></section>")
    parts = []
    for title, caption, maker in makers:
        svg = maker()
        if not svg:
            continue
        cap = f'<p class="caption">{html.escape(caption)}</p>' if caption else ""
        parts.append(f'<section class="card chart-card"><h2>{html.escape(title)}</h2>{cap}'
                     f'<div class="figure">{svg}</div></section>')
    return "\n".join(parts)


def _compact(value: float, prefix: str = "") -> str:
    """Axis ticks: 950, 2.5k, 1M, 1.25B (at most three significant digits, no trailing zeros)."""
    for scale, suffix in ((1e9, "B" if prefix else "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{prefix}{value / scale:.3g}{suffix}"
    return f"{prefix}{value:.3g}"


def _rate_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: _compact(v))


def _usd_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: _compact(v, "$") if v else "$0")


# ---------------------------------------------------------------------------------------------
# charts of one plan


def _fleet_chart(plan: Plan, colors: dict[str, str]) -> str:
    fleet = plan.fleet
    if fleet.empty:
        return ""
    periods = list(dict.fromkeys(plan.sites["period"])) or list(dict.fromkeys(fleet["period"]))
    sites = list(dict.fromkeys(fleet["site"]))
    systems = sorted(set(fleet["system"]))
    with _mpl() as plt:
        width = min(11.5, 1.2 + len(sites) * (1.6 + 0.7 * len(periods)))
        fig, axes = plt.subplots(1, len(sites), figsize=(max(width, 5.5), 3.2), sharey=True,
                                 squeeze=False)
        for ax, site in zip(axes[0], sites, strict=True):
            here = fleet[fleet["site"] == site]
            table = here.pivot_table(index="period", columns="system", values="accelerators",
                                     aggfunc="sum", fill_value=0).reindex(periods, fill_value=0)
            bottom = [0.0] * len(periods)
            xs = list(range(len(periods)))
            for s in systems:
                if s not in table:
                    continue
                vals = [float(v) for v in table[s]]
                ax.bar(xs, vals, bottom=bottom, color=colors[s], width=0.6, label=s,
                       edgecolor="white", linewidth=0.6)
                bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
            for x, total in zip(xs, bottom, strict=True):
                if total:
                    ax.annotate(f"{total:,.0f}", (x, total), ha="center", va="bottom",
                                xytext=(0, 3), textcoords="offset points", fontsize=9, color=TEXT)
            ax.set_xticks(xs, [str(p) for p in periods])
            ax.set_xlim(-0.7, len(periods) - 0.3)
            ax.set_title(site if len(sites) > 1 else "All sites", fontsize=10)
            ax.grid(axis="x", visible=False)
            ax.yaxis.set_major_formatter(_rate_formatter())
            ax.margins(y=0.12)
        axes[0][0].set_ylabel("accelerators")
        handles, labels = [], []
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 4),
                   bbox_to_anchor=(0.5, 0.0), frameon=False)
        fig.tight_layout()
        return _svg(fig, "fleet")


def _cost_chart(plan: Plan, colors: dict[str, str]) -> str:
    total = plan.tco_usd.get("total", 0.0)
    parts = [(c, plan.tco_usd.get(c, 0.0)) for c in COST_COMPONENTS if plan.tco_usd.get(c, 0.0) > 0]
    if not parts or total <= 0:
        return ""
    costs = plan.costs
    by_system = costs.pivot_table(index="system", columns="component", values="usd", aggfunc="sum",
                                  fill_value=0.0)
    order = by_system.sum(axis=1).sort_values(ascending=True).index.tolist()
    with _mpl() as plt:
        height = max(3.4, 1.2 + 0.42 * len(order))
        fig, (donut, bars) = plt.subplots(1, 2, figsize=(11.5, height),
                                          gridspec_kw={"width_ratios": [1, 1.9]})
        donut.pie([v for _, v in parts], colors=[COMPONENT_COLORS[c] for c, _ in parts],
                  startangle=90, counterclock=False,
                  wedgeprops={"width": 0.3, "edgecolor": "white", "linewidth": 1.5})
        donut.text(0, 0.1, format_usd(total), ha="center", va="center", fontsize=13,
                   fontweight="bold", color=TEXT)
        donut.text(0, -0.15, "total", ha="center", va="center", fontsize=8.5, color=MUTED)
        donut.set_title("By component")
        donut.set_aspect("equal")
        labels = [f"{COMPONENT_LABELS[c]}  {format_usd(v)} ({v / total:.0%})" for c, v in parts]
        donut.legend([plt.Rectangle((0, 0), 1, 1, color=COMPONENT_COLORS[c]) for c, _ in parts],
                     labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=1)
        left = [0.0] * len(order)
        ys = list(range(len(order)))
        for c, _ in parts:
            vals = [float(by_system.loc[s, c]) if c in by_system else 0.0 for s in order]
            bars.barh(ys, vals, left=left, color=COMPONENT_COLORS[c], height=0.6,
                      edgecolor="white", linewidth=0.6)
            left = [a + b for a, b in zip(left, vals, strict=True)]
        for y, v in zip(ys, left, strict=True):
            bars.annotate(format_usd(v), (v, y), xytext=(4, 0), textcoords="offset points",
                          va="center", fontsize=9)
        bars.set_yticks(ys, order)
        bars.xaxis.set_major_formatter(_usd_formatter())
        bars.grid(axis="y", visible=False)
        bars.margins(x=0.16)
        bars.set_title("By system")
        fig.tight_layout()
        return _svg(fig, "costs")


def _limits_chart(plan: Plan) -> str:
    sites = plan.sites
    if sites.empty:
        return ""
    several_periods = sites["period"].nunique() > 1
    labels = [f"{r.site} · {r.period}" if several_periods else str(r.site)
              for r in sites.itertuples(index=False)]
    with _mpl() as plt:
        height = max(2.4, 1.1 + 0.5 * len(labels))
        fig, axes = plt.subplots(1, 2, figsize=(11.5, height), sharey=True)
        specs = [
            (axes[0], "Facility power", "power_kw", "power_budget_kw", lambda v: format_power_kw(v)),
            (axes[1], "Rack positions", "racks", "rack_limit", lambda v: f"{v:,.0f}"),
        ]
        ys = list(range(len(labels)))[::-1]
        for ax, title, used_col, limit_col, fmt in specs:
            used = [float(v) for v in sites[used_col]]
            limits = [float(v) if _isnum(v) else math.nan for v in sites[limit_col]]
            top = max([*used, *[v for v in limits if not math.isnan(v)], 1.0])
            for y, u, lim in zip(ys, used, limits, strict=True):
                share = u / lim if lim and not math.isnan(lim) else math.nan
                color = "#c0392b" if share >= 0.99 else ("#e08e0b" if share >= 0.85 else "#2e75b6")
                if not math.isnan(lim):
                    ax.barh(y, lim, height=0.62, color="#eef1f5", edgecolor="#9aa5b1",
                            linewidth=0.8)
                ax.barh(y, u, height=0.62, color=color)
                text = (f"{fmt(u)} of {fmt(lim)} ({share:.0%})" if not math.isnan(lim)
                        else f"{fmt(u)} (no limit)")
                end = lim if not math.isnan(lim) else u
                ax.annotate(text, (end, y), xytext=(5, 0), textcoords="offset points",
                            va="center", fontsize=9)
            ax.set_xlim(0, top * 1.45)
            ax.set_title(title)
            ax.grid(axis="y", visible=False)
            from matplotlib.ticker import FuncFormatter, MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
            if used_col == "power_kw":
                ax.xaxis.set_major_formatter(FuncFormatter(
                    lambda v, _, top=top: f"{v / 1000:g} MW" if top >= 1000 else f"{v:g} kW"))
        axes[0].set_yticks(ys, labels)
        fig.tight_layout()
        return _svg(fig, "limits")


_CURVE_KEY = ["workload", "system", "precision", "mode", "tp", "pp", "ep", "concurrency",
              "speculative"]


def _curve_points(table: pd.DataFrame) -> pd.DataFrame:
    """Aggregated and decode rows with x = output tok/s per user and y = output tok/s per
    accelerator."""
    if table is None or table.empty or "tpot_ms" not in table:
        return pd.DataFrame(columns=["workload", "system", "mode", "x", "y"])
    rows = table[table["mode"].isin(["aggregated", "decode"])]
    rows = rows[(rows["tpot_ms"] > 0) & (rows["accelerators"] > 0)]
    return rows.assign(x=1000.0 / rows["tpot_ms"].astype(float),
                       y=rows["output_tokens_per_s"].astype(float) / rows["accelerators"].astype(float))


def _frontier(points: pd.DataFrame) -> pd.DataFrame:
    """Upper-right Pareto frontier: the best tok/s per accelerator at each interactivity or more."""
    ordered = points.sort_values(["x", "y"], ascending=[False, False], kind="stable")
    best, keep = -math.inf, []
    for idx, y in zip(ordered.index, ordered["y"], strict=True):
        if y > best:
            keep.append(idx)
            best = y
    return ordered.loc[keep].sort_values("x", kind="stable")


def _curves_chart(candidates: pd.DataFrame | None, chosen: pd.DataFrame,
                  colors: dict[str, str]) -> str:
    """One panel per workload and mode (aggregated, decode): every candidate as a faint dot, each
    system's frontier as a line, the chosen deployments as stars."""
    points = _curve_points(candidates)
    if points.empty:
        return ""
    picked = _curve_points(chosen) if not chosen.empty else points.iloc[0:0]
    workloads = list(dict.fromkeys(points["workload"]))
    modes = [m for m in ("aggregated", "decode") if (points["mode"] == m).any()]
    dashes = _system_dashes(points["system"])
    with _mpl() as plt:
        from matplotlib.lines import Line2D
        from matplotlib.ticker import FuncFormatter

        fig, axes = plt.subplots(len(workloads), len(modes),
                                 figsize=(5.6 * len(modes) + 0.3, 3.9 * len(workloads)),
                                 squeeze=False)
        for row, workload in enumerate(workloads):
            mine = points[points["workload"] == workload]
            ys = mine["y"]
            log = bool(len(ys) and ys.min() > 0 and ys.max() / ys.min() > 40)
            for col, mode in enumerate(modes):
                ax = axes[row][col]
                here = mine[mine["mode"] == mode]
                for system in sorted(set(here["system"])):
                    pts = here[here["system"] == system]
                    color = colors.get(system, MUTED)
                    ax.scatter(pts["x"], pts["y"], s=6, color=color, alpha=0.25, linewidths=0)
                    front = _frontier(pts)
                    ax.plot(front["x"], front["y"], color=color, linewidth=1.9,
                            linestyle=dashes[system])
                star = picked[(picked["workload"] == workload) & (picked["mode"] == mode)]
                for system in sorted(set(star["system"])):
                    pts = star[star["system"] == system]
                    ax.scatter(pts["x"], pts["y"], s=120, marker="*",
                               color=colors.get(system, MUTED), edgecolors=TEXT, linewidths=0.9,
                               zorder=5)
                if log:
                    ax.set_yscale("log")
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _compact(v)))
                ax.set_title(f"{workload} · {mode}")
                if row == len(workloads) - 1:
                    ax.set_xlabel("output tok/s per user (1000 / TPOT ms)")
                if col == 0:
                    ax.set_ylabel("output tok/s per accelerator")
        systems = sorted(set(points["system"]))
        handles = [Line2D([], [], color=colors.get(s, MUTED), linewidth=2.2, linestyle=dashes[s],
                          label=s) for s in systems]
        handles.append(Line2D([], [], color="white", marker="*", markersize=12,
                              markerfacecolor=MUTED, markeredgecolor=TEXT, label="chosen"))
        fig.tight_layout(h_pad=1.5)
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncol=min(len(handles), 5))
        return _svg(fig, "curves")


# ---------------------------------------------------------------------------------------------
# page pieces

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f5f8;color:#1f2933;
 font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,
 "DejaVu Sans",sans-serif}
main{max-width:1240px;margin:0 auto;padding:28px 28px 48px}
header h1{font-size:26px;margin:0 0 4px;letter-spacing:-.01em}
header .sub{color:#65717e;margin:0 0 18px}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600;
 vertical-align:2px;margin-left:6px}
.ok{background:#e3f4e8;color:#1e7b3c}.warn{background:#fff1d6;color:#8a5a00}
.bad{background:#fde4e1;color:#a8261a}
.strip{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin:0 0 20px}
.kpi{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(16,24,40,.08);
 border-top:3px solid #1f4e79}
.kpi .label{color:#65717e;font-size:11.5px;text-transform:uppercase;letter-spacing:.05em}
.kpi .value{font-size:24px;font-weight:700;margin-top:2px;font-variant-numeric:tabular-nums;
 white-space:nowrap}
.kpi .value.long{font-size:17px;padding-top:5px;white-space:normal}
.kpi .note{color:#65717e;font-size:12px;margin-top:2px}
.card{background:#fff;border-radius:10px;padding:18px 22px;margin:0 0 18px;
 box-shadow:0 1px 2px rgba(16,24,40,.08)}
.card h2{font-size:16px;margin:0 0 4px}
.caption{color:#65717e;margin:0 0 10px;font-size:13px}
.figure svg.chart{max-width:100%;height:auto;display:block;margin:0 auto}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
th{text-align:left;color:#65717e;font-weight:600;font-size:11.5px;text-transform:uppercase;
 letter-spacing:.04em;border-bottom:2px solid #d9dee4;padding:6px 8px;white-space:nowrap}
td{padding:6px 8px;border-bottom:1px solid #eceff3;vertical-align:top;white-space:nowrap}
td.wrap{white-space:normal}
tbody tr:nth-child(even) td{background:#fafbfc}
td.n,th.n{text-align:right;white-space:nowrap}
tr.total td{font-weight:700;border-top:2px solid #d9dee4}
tr.infeasible td{color:#8a939e}
.reason{color:#a8261a}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;
 vertical-align:0}
.tables{display:grid;grid-template-columns:1fr;gap:0}
ul.binds{margin:6px 0 0;padding-left:20px}
.muted{color:#65717e}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;
 color:#24324a;word-break:break-all}
.scroll{overflow-x:auto}
footer{color:#8a939e;font-size:12px;margin-top:8px}
@media print{body{background:#fff}.card,.kpi{box-shadow:none;border:1px solid #e3e7ec}}
"""


def _page(title: str, subtitle: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<header><h1>{html.escape(title)}</h1><p class=\"sub\">{subtitle}</p></header>\n"
        f"{body}\n<footer>Generated by planner. Costs are discounted over the planning horizon; "
        "throughput figures are from the candidate performance table.</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


def _status_badge(status: str, gap: Any = None) -> str:
    kind = {"optimal": "ok", "feasible": "warn"}.get(status, "bad")
    text = status + (f" · {_gap(gap)}" if _gap(gap) else "")
    return f'<span class="badge {kind}">{html.escape(text)}</span>'


def _kpis(items: Sequence[tuple[str, str, str]]) -> str:
    tiles = "".join(
        f'<div class="kpi"><div class="label">{html.escape(label)}</div>'
        f'<div class="value{" long" if len(value) > 11 else ""}">{html.escape(value)}</div>'
        + (f'<div class="note">{html.escape(note)}</div>' if note else "") + "</div>"
        for label, value, note in items
    )
    return f'<section class="strip">{tiles}</section>'


def _table(title: str, columns: Sequence[tuple[str, bool | str]], rows: Sequence[Sequence[str]],
           caption: str = "", row_classes: Sequence[str] | None = None,
           raw_cells: bool = False) -> str:
    """columns: (header, kind) with kind True for numbers (right-aligned), False for text, "wrap"
    for long text; cells are escaped unless raw_cells (already-safe HTML). A row shorter than the
    header spans its last cell over the remaining columns."""
    kinds = {True: ' class="n"', False: "", "wrap": ' class="wrap"'}
    head = "".join(f"<th{kinds[num]}>{html.escape(h)}</th>" for h, num in columns)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = []
        for j, c in enumerate(row):
            kind = kinds[columns[j][1]]
            if j == len(row) - 1 and len(row) < len(columns):
                kind = f' class="wrap" colspan="{len(columns) - j}"'
            cells.append(f"<td{kind}>{c if raw_cells else html.escape(c)}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    cap = f'<p class="caption">{html.escape(caption)}</p>' if caption else ""
    return (f'<section class="card"><h2>{html.escape(title)}</h2>{cap}<div class="scroll"><table>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div></section>")


def _swatch(color: str, text: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>{html.escape(text)}'


def _plan_colors(plans: Iterable[Plan]) -> dict[str, str]:
    systems: set[str] = set()
    vendors: dict[str, str] = {}
    for plan in plans:
        systems |= set(plan.fleet["system"])
        vendors.update(dict(zip(plan.fleet["system"], plan.fleet["vendor"], strict=True)))
        if plan.candidates is not None and "system" in plan.candidates:
            systems |= set(plan.candidates["system"])
    return system_colors(systems, vendors)


def _plan_kpis(plan: Plan, note: str = "") -> str:
    m = plan.metrics
    return _kpis([
        ("Total TCO", _usd(plan.tco_usd["total"]), note or "discounted, whole horizon"),
        ("$ / M output tokens", _usd_per_m(plan.usd_per_million_output_tokens), ""),
        ("Accelerators", _count(m["peak_accelerators"]), f"{_count(m['peak_systems'])} systems, peak"),
        ("Racks", _count(m["peak_racks"]), "peak"),
        ("Peak power", _num(m["peak_power_mw"], 2) + " MW", "facility"),
        ("Tok/s per MW", _rate(m["output_tokens_per_s_per_mw"]),
         f"{_num(m['output_tokens_per_s_per_accelerator'], 0)} tok/s per accelerator"),
        ("Status", plan.status.value, _gap(plan.mip_gap) or "–"),
    ])


def _plan_tables(plan: Plan, colors: dict[str, str]) -> str:
    parts = []
    fleet_rows = [
        [html.escape(str(r.period)), html.escape(str(r.site)), _swatch(colors.get(r.system, MUTED), r.system),
         html.escape(str(r.vendor)), _count(r.systems), _count(r.accelerators), _count(r.racks),
         _kw(r.power_kw), _count(r.purchased), _count(r.existing)]
        for r in plan.fleet.itertuples(index=False)
    ]
    parts.append(_table("Fleet", [("period", False), ("site", False), ("system", False),
                                  ("vendor", False), ("systems", True), ("accelerators", True),
                                  ("racks", True), ("power", True), ("bought", True),
                                  ("existing", True)], fleet_rows, raw_cells=True))
    dep_rows = [
        [str(r.period), str(r.site), str(r.workload), str(r.system), str(r.precision),
         r.mode + (" +spec" if r.speculative else ""), f"{r.tp}×{r.pp}×{r.ep}",
         _count(r.concurrency), _count(r.replicas), _count(r.accelerators),
         _rate(r.output_tokens_per_s), _num(r.ttft_ms, 0), _num(r.tpot_ms, 1),
         _num(r.output_tokens_per_s / r.accelerators if r.accelerators else math.nan, 0)]
        for r in plan.deployments.itertuples(index=False)
    ]
    parts.append(_table(
        "Deployments",
        [("period", False), ("site", False), ("workload", False), ("system", False),
         ("precision", False), ("mode", False), ("TP×PP×EP", False), ("concurrency", True),
         ("replicas", True), ("accel.", True), ("out tok/s", True), ("TTFT ms", True),
         ("TPOT ms", True), ("tok/s/acc.", True)],
        dep_rows, caption="Each replica is one serving instance: TP×PP×EP accelerators at the "
                          "given concurrency (max running sequences)."))
    if "recipe" in plan.deployments and len(plan.deployments):
        dep = plan.deployments
        last = dep[dep["period"] == dep["period"].iloc[-1]].drop_duplicates("recipe")
        recipe_rows = [[html.escape(f"{r.workload} on {r.system} ({r.mode})"),
                        f"<code>{html.escape(str(r.recipe))}</code>"]
                       for r in last.itertuples(index=False)]
        parts.append(_table("Serving recipes (last period)",
                            [("deployment", False), ("command", "wrap")], recipe_rows,
                            raw_cells=True))
    total = plan.tco_usd["total"] or 1.0
    cost_rows = [[COMPONENT_LABELS.get(k, k), _usd(v), f"{v / total:.1%}"]
                 for k, v in plan.tco_usd.items() if k != "total" and v]
    cost_rows.append(["Total", _usd(plan.tco_usd["total"]), "100%"])
    parts.append(_table("Cost breakdown (discounted)", [("component", False), ("USD", True),
                                                        ("share", True)], cost_rows,
                        row_classes=[""] * (len(cost_rows) - 1) + ["total"]))
    site_rows = []
    for r in plan.sites.itertuples(index=False):
        budget = r.power_budget_kw if _isnum(r.power_budget_kw) else None
        limit = r.rack_limit if _isnum(r.rack_limit) else None
        site_rows.append([str(r.period), str(r.site), _kw(r.power_kw),
                          _kw(budget) if budget else "no limit",
                          f"{r.power_kw / budget:.0%}" if budget else "–",
                          _count(r.racks), _count(limit) if limit else "no limit",
                          f"{r.racks / limit:.0%}" if limit else "–"])
    parts.append(_table("Sites: power and racks against limits",
                        [("period", False), ("site", False), ("power", True), ("budget", True),
                         ("used", True), ("racks", True), ("positions", True), ("used", True)],
                        site_rows))
    if not plan.demand.empty:
        demand_rows = [[str(r.period), str(r.workload), _rate(r.output_tokens_per_s),
                        _rate(r.served_output_tokens_per_s)]
                       for r in plan.demand.itertuples(index=False)]
        parts.append(_table("Demand (output tokens/s)", [("period", False), ("workload", False),
                                                         ("demand", True), ("served", True)],
                            demand_rows))
    if plan.bindings:
        items = "".join(f"<li>{html.escape(describe_binding(b, plan.horizon_years))}</li>"
                        for b in plan.bindings)
        binds = f'<ul class="binds">{items}</ul>'
    else:
        binds = ('<p class="muted">No power, rack or supply limit binds; the plan is set by '
                 "demand and cost.</p>")
    notes = "".join(f'<p class="muted">Note: {html.escape(n)}</p>' for n in plan.notes)
    parts.append(f'<section class="card"><h2>What binds</h2>{binds}{notes}</section>')
    return "\n".join(parts)


def _plan_subtitle(plan: Plan, extra: str = "") -> str:
    served = (f" · serves {plan.served_scale:,.3f}× the demand mix"
              if plan.served_scale is not None else "")
    objective = plan.objective.replace("_", " ")
    return (f"problem {html.escape(plan.name)} · {html.escape(objective)} · cost basis "
            f"{html.escape(plan.cost_basis)} · horizon {plan.horizon_years:,.2f} years"
            f"{html.escape(served)}{extra} {_status_badge(plan.status.value, plan.mip_gap)}")


# ---------------------------------------------------------------------------------------------
# public API


def plan_html(plan: Plan, title: str | None = None) -> str:
    """The solve report of one plan: headline, charts, tables."""
    colors = _plan_colors([plan])
    several_sites = plan.sites["site"].nunique() > 1
    charts = _charts_or_note([
        ("Fleet over periods", "Accelerators installed, stacked by system"
         + (", per site." if several_sites else "."), lambda: _fleet_chart(plan, colors)),
        ("Cost breakdown", "Discounted cost over the horizon, by component and by system.",
         lambda: _cost_chart(plan, colors)),
        ("Power and racks against limits",
         "Filled: used; outline: the site's limit. Red at ≥ 99 % (binding), amber at ≥ 85 %.",
         lambda: _limits_chart(plan)),
        ("Throughput vs interactivity",
         "Every candidate configuration (dots) and each system's frontier; stars are the chosen "
         "deployments. Decode rows count decode accelerators only (prefill pools are separate).",
         lambda: _curves_chart(plan.candidates, plan.deployments, colors)),
    ])
    body = _plan_kpis(plan) + charts + _plan_tables(plan, colors)
    return _page(title or f"Capacity plan: {plan.name}", _plan_subtitle(plan), body)


def _outcome_color(outcome: Outcome, colors: dict[str, str], vendor_colors: dict[str, str]) -> str:
    if outcome.plan is None:
        return INFEASIBLE_COLOR
    if outcome.label == MIXED:
        return MIXED_COLOR
    return colors.get(outcome.label) or vendor_colors.get(outcome.label) or MUTED


def _short_reason(outcome: Outcome, limit: int = 58) -> str:
    """The part of a no-plan reason about this fleet's own system (diagnoses list every system)."""
    text = outcome.reason or outcome.status
    mark = f"{outcome.label}: "
    if mark in text:
        text = text[text.rindex(mark) + len(mark):].split(";")[0]
    return _short(text, limit)


def _compare_bars(outcomes: Sequence[Outcome], rows: Sequence[dict[str, Any]],
                  palette: list[str]) -> str:
    metrics = [
        ("$ per M output tokens", "usd_per_million_output_tokens", _usd_per_m),
        ("Output tok/s per accelerator", "output_tokens_per_s_per_accelerator", _rate),
        ("Output tok/s per MW", "output_tokens_per_s_per_mw", _rate),
        ("Total TCO", "tco_total", _usd),
    ]
    labels = [o.label for o in outcomes]
    with _mpl() as plt:
        height = max(2.6, 1.3 + 0.42 * len(labels))
        fig, axes = plt.subplots(2, 2, figsize=(11.5, 2 * height), sharey=True)
        ys = list(range(len(labels)))[::-1]
        for ax, (title, key, fmt) in zip(axes.flat, metrics, strict=True):
            values = [(r["tco_usd"] or {}).get("total") if key == "tco_total" else r.get(key)
                      for r in rows]
            top = max([float(v) for v in values if _isnum(v)] or [1.0])
            for y, v, color, o in zip(ys, values, palette, outcomes, strict=True):
                if _isnum(v):
                    ax.barh(y, float(v), height=0.62, color=color)
                    ax.annotate(fmt(v), (float(v), y), xytext=(4, 0), textcoords="offset points",
                                va="center", fontsize=9)
                else:
                    ax.annotate(f"no plan: {_short_reason(o)}", (0, y), xytext=(4, 0),
                                textcoords="offset points", va="center", fontsize=8.5,
                                color="#a8261a", style="italic")
            ax.set_xlim(0, top * 1.3)
            ax.set_title(title)
            ax.grid(axis="y", visible=False)
            ax.set_xticks([])
            ax.spines["bottom"].set_visible(False)
        for ax in axes.flat:
            ax.tick_params(axis="y", length=0)
        for ax in axes[:, 0]:
            ax.set_yticks(ys, labels)
            for tick in ax.get_yticklabels():
                tick.set_color(TEXT)
        fig.tight_layout(h_pad=2.0)
        return _svg(fig, "compare-bars")


def _compare_costs(outcomes: Sequence[Outcome]) -> str:
    plans = [(o.label, o.plan) for o in outcomes if o.plan is not None]
    if not plans:
        return ""
    comps = [c for c in COST_COMPONENTS if any(p.tco_usd.get(c, 0.0) > 0 for _, p in plans)]
    with _mpl() as plt:
        fig, ax = plt.subplots(figsize=(11.5, max(2.4, 1.2 + 0.42 * len(plans))))
        ys = list(range(len(plans)))[::-1]
        left = [0.0] * len(plans)
        for c in comps:
            vals = [p.tco_usd.get(c, 0.0) for _, p in plans]
            ax.barh(ys, vals, left=left, color=COMPONENT_COLORS[c], height=0.6,
                    label=COMPONENT_LABELS[c], edgecolor="white", linewidth=0.6)
            left = [a + b for a, b in zip(left, vals, strict=True)]
        for y, v in zip(ys, left, strict=True):
            ax.annotate(format_usd(v), (v, y), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=9)
        ax.set_yticks(ys, [label for label, _ in plans])
        ax.xaxis.set_major_formatter(_usd_formatter())
        ax.margins(x=0.12)
        ax.grid(axis="y", visible=False)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(comps))
        fig.tight_layout()
        return _svg(fig, "compare-costs")


def compare_html(outcomes: list[Outcome], by: str) -> str:
    """The compare report: one optimal fleet per vendor or system (plus the mixed optimum) side by
    side; fleets without a plan stay in, with their reason."""
    plans = [o.plan for o in outcomes if o.plan is not None]
    colors = _plan_colors(plans)
    for o in outcomes:  # systems without a plan still get their colour
        if by == "system" and o.label != MIXED and o.label not in colors:
            colors = system_colors([*colors, o.label])
    vendor_colors = system_colors([o.label for o in outcomes if o.label != MIXED]) \
        if by == "vendor" else {}
    if by == "vendor":  # a vendor's bar takes its hue family's main shade
        vendor_colors = {o.label: _VENDOR_SHADES.get(o.label.lower(), [vendor_colors.get(o.label,
                                                                                         MUTED)])[0]
                         for o in outcomes if o.label != MIXED}
    palette = [_outcome_color(o, colors, vendor_colors) for o in outcomes]
    rows = [outcome_row(o) for o in outcomes]

    mixed = next((o for o in outcomes if o.label == MIXED and o.plan is not None), None)
    feasible = [(o, r) for o, r in zip(outcomes, rows, strict=True) if o.plan is not None]
    headline = ""
    if mixed is not None and mixed.plan is not None:
        headline = _plan_kpis(mixed.plan, note="mixed optimum (all allowed systems)")
    singles = [(o, r) for o, r in feasible if o.label != MIXED
               and _isnum(r["usd_per_million_output_tokens"])]
    tiles: list[tuple[str, str, str]] = []
    if singles:
        def cost(t: tuple[Outcome, dict[str, Any]]) -> float:
            return float(t[1]["usd_per_million_output_tokens"])

        best, worst = min(singles, key=cost), max(singles, key=cost)
        tiles.append((f"Cheapest single {by}", best[0].label,
                      f"{_usd_per_m(cost(best))} per M output tokens"))
        if len(singles) > 1:
            spread = cost(worst) / cost(best) if cost(best) > 0 else math.nan
            tiles.append((f"Most expensive {by}", worst[0].label,
                          f"{_usd_per_m(cost(worst))} per M"
                          + (f" ({spread:,.1f}× the cheapest)" if _isnum(spread) else "")))
    no_plan = [o.label for o in outcomes if o.plan is None]
    tiles.append(("Fleets compared", f"{len(outcomes)}",
                  f"{len(feasible)} with a plan" + (f"; none for {', '.join(no_plan)}" if no_plan
                                                    else "")))
    headline += _kpis(tiles)

    candidate_tables = [p.candidates for p in plans if p.candidates is not None]
    all_candidates = (pd.concat(candidate_tables, ignore_index=True)
                      .drop_duplicates(subset=[c for c in _CURVE_KEY if c in candidate_tables[0]])
                      if candidate_tables else None)
    chosen = (pd.concat([p.deployments for p in plans], ignore_index=True)
              .drop_duplicates(subset=_CURVE_KEY) if plans else pd.DataFrame())
    scaled = any(r.get("served_scale") is not None for r in rows)  # max_served_scale
    charts = _charts_or_note([
        (f"Optimal fleet per {by}",
         ("Each bar is the fleet restricted to that " + by + " that serves the most of the demand "
          "mix on the same power and space, at the least cost for that; "
          if scaled else
          "Each bar is the cheapest fleet restricted to that " + by + " on the same demand, power "
          "and space; ")
         + "'mixed' may combine all. Fleets without a plan are listed with their reason.",
         lambda: _compare_bars(outcomes, rows, palette)),
        ("Total cost by component", "Discounted over the horizon.", lambda: _compare_costs(outcomes)),
        ("Throughput vs interactivity",
         "Every candidate configuration (dots) and each system's frontier; stars are the "
         "deployments the fleets chose. Decode rows count decode accelerators only.",
         lambda: _curves_chart(all_candidates, chosen, colors)),
    ])

    table_rows, classes = [], []
    for o, r, color in zip(outcomes, rows, palette, strict=True):
        name = _swatch(color, o.label)
        if o.plan is None:
            table_rows.append([name, html.escape(o.status),
                               f'<span class="reason">{html.escape(o.reason or "no plan")}</span>'])
            classes.append("infeasible")
            continue
        table_rows.append([
            name, html.escape(f"{r['status']}" + (f" ({_gap(r.get('mip_gap'))})"
                                                  if _gap(r.get("mip_gap")) else "")),
            *([f"{r['served_scale']:,.3f}×"] if scaled else []),
            _usd(r["tco_usd"]["total"]), _usd_per_m(r["usd_per_million_output_tokens"]),
            f"${r['usd_per_accelerator_hour']:,.2f}" if _isnum(r["usd_per_accelerator_hour"]) else "–",
            _count(r["accelerators"]), _count(r["systems"]), _count(r["racks"]),
            _num((r["peak_power_kw"] or math.nan) / 1000, 2),
            _rate(r["output_tokens_per_s_per_accelerator"]), _rate(r["output_tokens_per_s_per_rack"]),
            _rate(r["output_tokens_per_s_per_mw"]),
        ])
        classes.append("")
    compare_table = _table(
        f"Comparison per {by}",
        [("fleet", False), ("status", False), *([("scale", True)] if scaled else []),
         ("TCO", True), ("$/M out tok", True),
         ("$/acc-h", True), ("accel.", True), ("systems", True), ("racks", True),
         ("peak MW", True), ("tok/s/acc", True), ("tok/s/rack", True), ("tok/s/MW", True)],
        table_rows, row_classes=classes, raw_cells=True)
    config_rows = [[_swatch(color, o.label), html.escape(configurations(o.plan) or "–")]
                   for o, color in zip(outcomes, palette, strict=True) if o.plan is not None]
    config_table = (_table("Chosen configurations (last period)", [("fleet", False),
                                                                  ("workload: system precision mode "
                                                                   "TP×PP×EP@concurrency ×replicas",
                                                                   "wrap")],
                           config_rows, raw_cells=True) if config_rows else "")
    cost_rows = []
    comps = [c for c in COST_COMPONENTS if any(p.tco_usd.get(c, 0.0) for p in plans)]
    for o in outcomes:
        if o.plan is None:
            continue
        cost_rows.append([o.label, *[_usd(o.plan.tco_usd.get(c, 0.0)) for c in comps],
                          _usd(o.plan.tco_usd["total"])])
    cost_table = (_table("Cost breakdown per fleet (discounted)",
                         [("fleet", False), *[(COMPONENT_LABELS[c], True) for c in comps],
                          ("total", True)], cost_rows) if cost_rows else "")
    name = plans[0].name if plans else "comparison"
    sub = (f"one optimal fleet per {html.escape(by)} plus the mixed optimum, on the same demand, "
           f"power and space · {len(outcomes)} fleets")
    body = headline + charts + compare_table + config_table + cost_table
    return _page(f"Fleet comparison: {name}", sub, body)


_HAS_PLAN = tuple(s.value for s in Status if s.has_plan)

_SWEEP_METRICS = [
    ("total_tco_usd", "Total TCO", _usd),
    ("usd_per_million_output_tokens", "$ per M output tokens", _usd_per_m),
    ("accelerators", "Accelerators (peak)", _count),
    ("peak_power_mw", "Peak power (MW)", lambda v: _num(v, 2)),
    ("racks", "Racks (peak)", _count),
    ("output_tokens_per_s_per_mw", "Output tok/s per MW", _rate),
]


def _sweep_chart(frame: pd.DataFrame, axes: Sequence[str]) -> str:
    if frame.empty or not axes:
        return ""
    from planner.sweep import HEADLINES

    x = axes[0]
    series = axes[1] if len(axes) > 1 else None
    wanted = [*HEADLINES, *[k for k, _, _ in _SWEEP_METRICS if k not in HEADLINES]]
    metrics = [(k, t, f) for key in wanted for k, t, f in _SWEEP_METRICS
               if k == key and k in frame]
    if not metrics:
        return ""
    values = list(dict.fromkeys(frame[x].tolist()))
    numeric = all(_isnum(v) for v in values)
    xpos = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    groups = list(frame.groupby(series, sort=False)) if series else [(None, frame)]
    shades = ["#1f4e79", "#e07b00", "#00897b", "#c8102e", "#6a3d9a", "#5f6b7a", "#76b900"]

    def short(path: str) -> str:
        return path.split(".")[-1].replace("_", " ")

    with _mpl() as plt:
        cols = 3 if len(metrics) > 4 else 2
        rows = -(-len(metrics) // cols)
        fig, panels = plt.subplots(rows, cols, figsize=(11.5, 3.3 * rows), squeeze=False)
        for ax, (key, title, fmt) in zip(panels.flat, metrics, strict=False):
            for i, (label, group) in enumerate(groups):
                color = shades[i % len(shades)]
                has_plan = group["status"].isin(_HAS_PLAN) if "status" in group else \
                    pd.Series(True, index=group.index)
                ok = group[has_plan & group[key].map(_isnum)]
                xs = [xpos[v] for v in ok[x]]
                ax.plot(xs, ok[key].astype(float), marker="o", markersize=5, color=color,
                        linewidth=2, label=None if label is None else f"{short(series or '')} = {label}")
                if len(groups) == 1:
                    for xv, yv in zip(xs, ok[key].astype(float), strict=True):
                        ax.annotate(fmt(yv), (xv, yv), xytext=(0, 7), textcoords="offset points",
                                    ha="center", fontsize=8, color=MUTED)
                bad = [xpos[v] for v in group.loc[~has_plan, x]]
                ax.scatter(bad, [0.0] * len(bad), marker="X", s=60, color=color,
                           edgecolors="#c0392b", linewidths=1.2, zorder=6, clip_on=False)
            ax.set_title(title)
            ax.set_ylim(bottom=0)
            ax.set_xticks(list(xpos.values()), [str(v) for v in values])
            if key in ("total_tco_usd", "usd_per_million_output_tokens"):
                ax.yaxis.set_major_formatter(_usd_formatter())
            elif key == "output_tokens_per_s_per_mw":
                ax.yaxis.set_major_formatter(_rate_formatter())
            ax.margins(x=0.08)
            top = ax.get_ylim()[1]
            ax.set_ylim(0, top * 1.15 if top > 0 else 1)
        for i, ax in enumerate(panels.flat):
            if i >= len(metrics):
                ax.set_visible(False)
            elif i + cols >= len(metrics):
                ax.set_xlabel(short(x), fontsize=9)
        fig.tight_layout(h_pad=1.6)
        if series:
            fig.legend(*panels.flat[0].get_legend_handles_labels(), loc="upper center",
                       bbox_to_anchor=(0.5, 0.0), ncol=min(len(groups), 6))
        return _svg(fig, "sweep")


def sweep_html(frame: pd.DataFrame, axes: list[str]) -> str:
    """The sweep report: headline ranges, the headline metrics against the swept axes, the grid
    table with every point (points without a plan keep their reason)."""
    ok = frame[frame["status"].isin(_HAS_PLAN)] if "status" in frame else frame
    bad = frame[~frame.index.isin(ok.index)]

    def span(key: str, fmt: Any) -> str:
        if key not in ok or ok.empty:
            return "–"
        vals = [float(v) for v in ok[key] if _isnum(v)]
        if not vals:
            return "–"
        lo, hi = min(vals), max(vals)
        return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo)} – {fmt(hi)}"

    mixes = sorted({str(m) for m in ok["mix"]}) if "mix" in ok else []
    headline = _kpis([
        ("Points", f"{len(frame)}", f"{len(ok)} with a plan" + (f", {len(bad)} without" if len(bad)
                                                                else "")),
        ("Total TCO", span("total_tco_usd", _usd), "range over the grid"),
        ("$ / M output tokens", span("usd_per_million_output_tokens", _usd_per_m), "range"),
        ("Accelerators", span("accelerators", _count), "peak, range"),
        ("Peak power (MW)", span("peak_power_mw", lambda v: _num(v, 2)), "range"),
        ("Tok/s per MW", span("output_tokens_per_s_per_mw", _rate), "range"),
        ("Fleet mixes", f"{len(mixes)}", _short("; ".join(mixes), 80) if mixes else "–"),
    ])
    axis_text = ", ".join(f"{a} ∈ {{{', '.join(str(v) for v in dict.fromkeys(frame[a]))}}}"
                          for a in axes if a in frame)
    charts = _charts_or_note([
        ("Headline metrics against the swept " + ("axis" if len(axes) == 1 else "axes"),
         f"x: {axes[0]}" + (f"; one line per {axes[1]}" if len(axes) > 1 else "")
         + ("; ✕ on the x axis marks a point without a plan." if len(bad) else "."),
         lambda: _sweep_chart(frame, axes)),
    ])
    columns: list[tuple[str, bool | str]] = [
        *[(a.split(".")[-1].replace("_", " "), True) for a in axes], ("status", False)]
    headers = {"total_tco_usd": "TCO", "usd_per_million_output_tokens": "$/M out tok",
               "accelerators": "accel.", "peak_power_mw": "peak MW", "racks": "racks",
               "output_tokens_per_s_per_mw": "tok/s/MW"}
    columns += [(headers[k], True) for k, _, _ in _SWEEP_METRICS if k in frame]
    columns += [("fleet mix", "wrap")]
    rows, classes = [], []
    for r in frame.to_dict(orient="records"):
        cells = [str(r.get(a)) for a in axes]
        status = str(r.get("status", ""))
        cells.append(status + (f" ({_gap(r.get('mip_gap'))})" if _gap(r.get("mip_gap")) else ""))
        cells = [html.escape(c) for c in cells]
        if status in _HAS_PLAN:
            cells += [html.escape(fmt(r.get(k))) for k, _, fmt in _SWEEP_METRICS if k in frame]
            mix = r.get("mix")
            cells.append(html.escape(str(mix)) if isinstance(mix, str) else "–")
            classes.append("")
        else:  # the reason spans the metric columns
            reason = r.get("reason")
            cells.append(f'<span class="reason">{html.escape(str(reason) if reason else "no plan")}'
                         "</span>")
            classes.append("infeasible")
        rows.append(cells)
    table = _table("Sweep grid", columns, rows, row_classes=classes, raw_cells=True)
    reasons = ""
    if len(bad):
        items = "".join(
            f"<li><b>{html.escape(', '.join(f'{a}={r.get(a)}' for a in axes))}</b>: "
            f'<span class="reason">{html.escape(str(r.get("reason") or "no plan"))}</span></li>'
            for r in bad.to_dict(orient="records"))
        reasons = (f'<section class="card"><h2>Points without a plan</h2><ul class="binds">{items}</ul>'
                   "</section>")
    sub = f"what-if grid: {html.escape(axis_text)}"
    return _page("Sweep: " + ", ".join(a.split(".")[-1].replace("_", " ") for a in axes), sub,
                 headline + charts + table + reasons)
