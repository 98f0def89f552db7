#!/usr/bin/env bash
# Render the three HTML reports (solve, compare, sweep) and screenshot them in headless Chromium,
# to look at them as a reader would.
#
#   bench/render_report_check.sh OUTDIR
#
# writes OUTDIR/{solve,compare,sweep}.html and OUTDIR/{solve,compare,sweep}.png:
#   solve   problems/two-halls-20mw.yaml
#   compare problems/deepseek-r1-hopper-vs-blackwell.yaml --by system
#   sweep   problems/chat-single-site.yaml, sites.dc1.electricity_usd_per_kwh=0.05,0.1,0.15
# Takes about a minute (the solve and the sweep dominate). Needs Chromium (Debian: apt-get install
# chromium; or set CHROMIUM=/path/to/chrome). Then open the PNGs: check typography, axis labels,
# that each system keeps its colour from chart to chart, and that nothing overlaps.
# The test suite has a lighter check (tests/test_report_html.py, skipped without Chromium).
set -euo pipefail

out=${1:?usage: bench/render_report_check.sh OUTDIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
[ -x "$python" ] || python=python3
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [ -z "$chromium" ]; then
  echo "no Chromium found: apt-get install chromium, or set CHROMIUM=" >&2
  exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

cd "$repo"
"$python" - "$out" <<'EOF'
import sys
from pathlib import Path

from planner.compare import run_compare
from planner.pipeline import solve_problem
from planner.problem import Overrides, load_problem
from planner.report import write_atomically
from planner.report_html import compare_html, plan_html, sweep_html
from planner.solve import SolveOptions
from planner.sweep import parse_set, run_sweep

out = Path(sys.argv[1])
plan = solve_problem(load_problem(Path("problems/two-halls-20mw.yaml")))
outcomes = run_compare(Path("problems/deepseek-r1-hopper-vs-blackwell.yaml"), "system",
                       Overrides(), SolveOptions())
axes = [parse_set("sites.dc1.electricity_usd_per_kwh=0.05,0.1,0.15")]
frame = run_sweep(Path("problems/chat-single-site.yaml"), axes, Overrides(), SolveOptions())
written = write_atomically(out, {
    "solve.html": plan_html(plan),
    "compare.html": compare_html(outcomes, "system"),
    "sweep.html": sweep_html(frame, [a.path for a in axes]),
})
for path in written:
    print(f"{path}  {path.stat().st_size / 1024:,.0f} KiB")
EOF

# window heights fit each page's length; the width is a laptop screen
for page in solve:4300 compare:3100 sweep:1800; do
  name=${page%%:*}
  height=${page##*:}
  profile=$(mktemp -d)
  # output to /dev/null: Chromium's helper processes keep pipes open after the screenshot
  "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
    --user-data-dir="$profile" --window-size="1400,$height" \
    --screenshot="$out/$name.png" "file://$out/$name.html" >/dev/null 2>&1 || true
  rm -rf "$profile"
  if [ -s "$out/$name.png" ]; then
    echo "$out/$name.png"
  else
    echo "no screenshot for $name" >&2
    exit 1
  fi
done
