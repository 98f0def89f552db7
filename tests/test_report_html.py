"""HTML reports: one self-contained, deterministic page per solve, compare and sweep.

Plans come from exact-optimum toy problems (hand-made candidate tables), the sweep from the toy
problem through the analytic performance model. A last test renders a page in headless Chromium
when it is installed (skipped otherwise; see bench/render_report_check.sh for the full check).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from planner.compare import MIXED, Outcome
from planner.units import format_usd
from tests.conftest import candidate, candidates, toy_cli_problem, toy_problem

pytest.importorskip("matplotlib")

from planner.report_html import compare_html, plan_html, sweep_html

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)
REASON = "SLO unreachable: toy-b <cannot> reach TPOT 5 ms & more"


def two_workloads() -> dict:
    """chat only on toy-a, code only on toy-b: the optimal fleet has both systems."""
    chat = toy_problem()["workloads"][0]
    code = {**chat, "id": "code", "demand": {"p1": 8000}}
    return toy_problem(workloads=[chat, code])


def table():
    return candidates(
        candidate("toy-a", 5000, workload="chat", precision="fp8"),
        candidate("toy-a", 3000, workload="chat", precision="fp8", concurrency=8, tpot_ms=10.0),
        candidate("toy-a", 4000, workload="chat", precision="fp8", mode="decode", tpot_ms=15.0),
        candidate("toy-a", 8000, workload="chat", precision="fp8", mode="prefill", tpot_ms=0.0),
        candidate("toy-b", 4000, workload="code", precision="fp8"),
        candidate("toy-b", 1000, workload="code", precision="fp8", concurrency=4, tpot_ms=8.0),
    )


@pytest.fixture
def plan(solve_toy):
    return solve_toy(two_workloads(), table())


@pytest.fixture
def outcomes(solve_toy, plan):
    only_a = solve_toy(toy_problem(), candidates(candidate("toy-a", 5000, precision="fp8")))
    return [Outcome(MIXED, plan), Outcome("toy-a", only_a),
            Outcome("toy-b", None, REASON, status="infeasible")]


@pytest.fixture(scope="module")
def sweep_frame(tmp_path_factory):
    """The toy CLI problem swept over the power budget; 10 kW leaves no plan."""
    from planner.problem import Overrides
    from planner.solve import SolveOptions
    from planner.sweep import parse_set, run_sweep

    problem = toy_cli_problem("toy-cli")
    path = tmp_path_factory.mktemp("sweep") / "toy.yaml"
    path.write_text(yaml.safe_dump(problem))
    return run_sweep(path, [parse_set("sites.dc1.power_mw=0.01,1,2")], Overrides(), SolveOptions())


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page
    assert "<svg" in page or "data:image/png;base64" in page


def test_plan_page_is_self_contained_with_headline_and_every_system(plan):
    assert set(plan.fleet["system"]) == {"toy-a", "toy-b"}
    page = plan_html(plan)
    assert_self_contained(page)
    assert page.count("<svg") >= 3  # fleet, costs, limits (+ curves from the candidates)
    m = plan.metrics
    assert format_usd(plan.tco_usd["total"]) in page
    assert f"${plan.usd_per_million_output_tokens:,.3f}" in page
    assert f"{m['peak_accelerators']:,.0f}" in page
    assert f"{m['peak_racks']:,.0f}" in page
    assert f"{m['peak_power_mw']:,.2f} MW" in page
    assert plan.status.value in page
    for system in plan.fleet["system"]:
        assert system in page
    for heading in ("Fleet", "Deployments", "Cost breakdown", "What binds",
                    "Throughput vs interactivity"):
        assert heading in page
    assert "8×1×1" in page  # TP×PP×EP of the chosen deployments
    if "recipe" in plan.deployments:
        assert "Serving recipes" in page


def test_plan_page_is_deterministic(plan, solve_toy):
    assert plan_html(plan) == plan_html(plan)
    again = solve_toy(two_workloads(), table())  # a fresh solve of the same problem
    again.solve_seconds = plan.solve_seconds + 1.0  # timings never reach the page
    assert plan_html(again) == plan_html(plan)


def test_plan_page_escapes_text(plan):
    plan.name = "<script>alert('x')</script>"
    page = plan_html(plan, title="Q3 <b>plan</b> & more")
    assert "<script>" not in page and "<b>plan</b>" not in page
    assert "&lt;script&gt;" in page
    assert "Q3 &lt;b&gt;plan&lt;/b&gt; &amp; more" in page


def test_plan_page_without_candidates_has_no_curves(plan):
    plan.candidates = None
    page = plan_html(plan)
    assert_self_contained(page)
    assert "Throughput vs interactivity" not in page


def test_compare_page_keeps_the_infeasible_row_and_its_reason(outcomes):
    page = compare_html(outcomes, "system")
    assert_self_contained(page)
    for o in outcomes:
        assert o.label in page
    import html

    assert html.escape(REASON) in page
    assert "<cannot>" not in page
    assert "infeasible" in page
    mixed = outcomes[0].plan
    assert format_usd(mixed.tco_usd["total"]) in page
    assert f"${mixed.usd_per_million_output_tokens:,.3f}" in page
    assert "Throughput vs interactivity" in page
    assert compare_html(outcomes, "system") == page


def test_compare_page_of_served_scales_shows_each_scale(solve_toy):
    # max_served_scale: each fleet serves its own multiple of the demand, not the same demand
    problem = toy_problem(objective="max_served_scale")
    problem["sites"][0]["power_mw"] = 0.1
    both = candidates(candidate("toy-a", 1000), candidate("toy-b", 1200))
    outcomes = [Outcome(MIXED, solve_toy(problem, both)),
                Outcome("toy-a", solve_toy(problem, candidates(candidate("toy-a", 1000))))]
    page = compare_html(outcomes, "system")
    assert "<th class=\"n\">scale</th>" in page and "serves the most of the demand mix" in page
    for o in outcomes:
        assert f"{o.plan.served_scale:,.3f}×" in page
    assert "cheapest fleet restricted" not in page


def test_compare_page_when_no_fleet_has_a_plan():
    page = compare_html([Outcome(MIXED, None, "no plan at all", "infeasible"),
                         Outcome("toy-b", None, REASON, "infeasible")], "vendor")
    assert "0 with a plan" in page
    assert "no plan at all" in page and "&lt;cannot&gt;" in page
    assert not EXTERNAL.search(page)


def test_sweep_page_shows_points_and_reasons(sweep_frame):
    axes = ["sites.dc1.power_mw"]
    assert list(sweep_frame["status"]) == ["infeasible", "optimal", "optimal"]
    page = sweep_html(sweep_frame, axes)
    assert_self_contained(page)
    for tco in sweep_frame["total_tco_usd"].dropna():
        assert format_usd(tco) in page
    reason = sweep_frame.loc[0, "reason"]
    import html

    assert html.escape(reason) in page
    for system in sweep_frame["mix"].dropna():
        assert system in page
    assert sweep_html(sweep_frame, axes) == page


def test_two_axis_sweep_page(sweep_frame):
    frame = sweep_frame.assign(demand_scale=[1, 1, 2])
    page = sweep_html(frame, ["sites.dc1.power_mw", "demand_scale"])
    assert_self_contained(page)
    assert "demand scale" in page


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine")
def test_page_renders_in_headless_chromium(plan, tmp_path):
    page = tmp_path / "plan.html"
    page.write_text(plan_html(plan), encoding="utf-8")
    shot = tmp_path / "plan.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2000",
         f"--screenshot={shot}", page.as_uri()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False,
    )
    assert shot.exists() and shot.stat().st_size > 20_000
    assert Path(shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
