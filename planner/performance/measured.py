"""Measured operating points that replace the analytic model where they exist.

A `MeasuredTable` is read from CSV (columns: system, model, precision, tp, pp, ep, concurrency,
input_tokens, output_tokens, output_tokens_per_s, ttft_ms, tpot_ms, source; optional mode),
each row validated by `planner.schema.MeasuredRow`. Where rows exist for a (system, model,
precision) and the workload's lengths (within ±10 % of a measured input and output length),
the candidates of that workload on that system come from the measurements.

Interpolation between measured concurrencies (`interpolate`) is piecewise-linear in
concurrency on throughput, TTFT and TPOT, with throughput made monotone non-decreasing and
latencies monotone non-decreasing in concurrency (running maxima), clamped to the measured
range: nothing is extrapolated beyond the smallest or largest measured concurrency.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from planner.errors import InputError
from planner.schema import MeasuredRow, Precision
from planner.yamlio import read_text

if TYPE_CHECKING:
    from planner.performance.latency import Hardware
    from planner.performance.spec import WorkloadSpec

REQUIRED = [
    "system", "model", "precision", "tp", "pp", "ep", "concurrency", "input_tokens",
    "output_tokens", "output_tokens_per_s", "ttft_ms", "tpot_ms", "source",
]
LENGTH_TOLERANCE = 0.10
_KEY = ["system", "model", "precision", "mode", "tp", "pp", "ep", "input_tokens",
        "output_tokens"]


@dataclass(frozen=True)
class MeasuredTable:
    """Validated measured rows (one DataFrame, columns of `MeasuredRow`)."""

    rows: pd.DataFrame

    @classmethod
    def from_rows(cls, rows: list[MeasuredRow]) -> MeasuredTable:
        df = pd.DataFrame([r.model_dump(mode="json") for r in rows])
        if df.empty:
            df = pd.DataFrame(columns=[*REQUIRED, "mode"])
        return cls(df)

    @classmethod
    def from_csv(cls, path: Path | str) -> MeasuredTable:
        """Read and validate a CSV; every problem is one line naming file, row, column."""
        path = Path(path)
        text = read_text(path, "a CSV file", "measured-performance CSV not found",
                         encoding="utf-8-sig")  # -sig: Excel's byte-order mark
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputError(
                [f"{path}: header: missing column '{c}'; expected columns "
                 f"{', '.join(REQUIRED)} (optional: mode)" for c in missing]
            )
        problems: list[str] = []
        rows: list[MeasuredRow] = []
        seen: dict[tuple[Any, ...], int] = {}
        try:
            raw_rows = list(enumerate(reader, start=2))  # row 1 is the header
        except csv.Error as exc:  # a cell past csv's field size limit
            raise InputError([f"{path}: line {reader.line_num + 1}: {exc}; expected a CSV of "
                              "measured results"]) from None
        for i, raw in raw_rows:
            if raw.get(None):  # csv.DictReader files cells beyond the header under None
                problems.append(f"{path}: row {i}: {len(raw[None])} more cells than the header "
                                "has columns; expected one cell per column")
            data: dict[str, Any] = {k: v for k, v in raw.items() if k is not None}
            unknown = [k for k in data if k not in REQUIRED and k != "mode"]
            for k in unknown:
                problems.append(f"{path}: row {i}: column '{k}': unknown column; expected one "
                                f"of {', '.join([*REQUIRED, 'mode'])}")
            data = {k: v for k, v in data.items() if k not in unknown and v not in ("", None)}
            try:
                row = MeasuredRow.model_validate(data)
                key = tuple(getattr(row, k) for k in (*_KEY, "concurrency"))
                if key in seen:
                    problems.append(f"{path}: row {i}: the same operating point as row "
                                    f"{seen[key]}; expected each (system, model, precision, "
                                    "mode, tp, pp, ep, lengths, concurrency) once")
                seen.setdefault(key, i)
                rows.append(row)
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    msg = err["msg"].removeprefix("Value error, ")
                    if not err["loc"]:  # a check of the whole row words its own message
                        problems.append(f"{path}: row {i}: {msg}")
                        continue
                    col = ".".join(str(x) for x in err["loc"])
                    found = err.get("input")
                    shown = repr(found) if not isinstance(found, dict) else "(missing)"
                    problems.append(
                        f"{path}: row {i}: column '{col}': found {shown}; expected "
                        f"{msg[0].lower() + msg[1:]}"
                    )
        if problems:
            raise InputError(problems)
        return cls.from_rows(rows)

    def unknown_ids(self, systems: Iterable[str], models: Iterable[str]) -> list[str]:
        """`system 'X'` / `model 'Y'` for each id of the rows that is not among `systems` or
        `models` (a typo would leave the analytic model in place without a word)."""
        if self.rows.empty:
            return []
        known = {"system": set(systems), "model": set(models)}
        return [f"{kind} '{value}'" for kind in ("system", "model")
                for value in sorted(set(self.rows[kind]) - known[kind])]

    def points(
        self, system: str, model: str, precision: Precision, input_tokens: int,
        output_tokens: int,
    ) -> pd.DataFrame:
        """Rows for (system, model, precision) at lengths within ±10 % of the workload's."""
        df = self.rows
        if df.empty:
            return df
        sel = (
            (df["system"] == system) & (df["model"] == model)
            & (df["precision"] == Precision(precision).value)
            & ((df["input_tokens"] - input_tokens).abs() <= LENGTH_TOLERANCE * input_tokens)
            & ((df["output_tokens"] - output_tokens).abs() <= LENGTH_TOLERANCE * output_tokens)
        )
        return df[sel]

    def candidates(self, spec: WorkloadSpec, system_id: str, hw: Hardware) -> pd.DataFrame | None:
        """Candidate rows from measurements (None when nothing was measured for this case)."""
        from planner.performance.enumerate import COLUMNS

        pts = self.points(system_id, spec.model, spec.precision, spec.input_tokens,
                          spec.output_tokens)
        if pts.empty:
            return None
        out = []
        for _, r in pts.iterrows():
            ok = True
            mode = r["mode"]
            if spec.ttft_ms is not None and mode != "decode":
                ok &= r["ttft_ms"] <= spec.ttft_ms
            if spec.tpot_ms is not None and mode != "prefill":
                ok &= r["tpot_ms"] <= spec.tpot_ms
            if not ok:
                continue
            n = int(r["tp"]) * int(r["pp"])
            rps = r["output_tokens_per_s"] / r["output_tokens"]
            power = n / hw.accelerators_per_system * hw.power_kw_max
            out.append({
                "workload": spec.name, "system": system_id, "mode": mode,
                "tp": int(r["tp"]), "pp": int(r["pp"]), "ep": int(r["ep"]),
                "concurrency": int(r["concurrency"]), "speculative": False, "accelerators": n,
                "output_tokens_per_s": float(r["output_tokens_per_s"]),
                "requests_per_s": rps, "input_tokens_per_s": rps * spec.input_tokens,
                "ttft_ms": float(r["ttft_ms"]), "tpot_ms": float(r["tpot_ms"]),
                "memory_gb_per_accelerator": float("nan"), "power_kw": power,
                "source": "measured",
            })
        return pd.DataFrame(out, columns=COLUMNS)

    def interpolate(
        self, system: str, model: str, precision: Precision, concurrency: float | np.ndarray,
        *, tp: int = 1, pp: int = 1, ep: int = 1, mode: str = "aggregated",
        input_tokens: int | None = None, output_tokens: int | None = None,
    ) -> pd.DataFrame:
        """Throughput and latencies at `concurrency` for one measured layout (see module doc).

        Returns columns concurrency, output_tokens_per_s, ttft_ms, tpot_ms; concurrency is
        clamped to the measured range.
        """
        df = self.rows
        sel = (
            (df["system"] == system) & (df["model"] == model)
            & (df["precision"] == Precision(precision).value) & (df["tp"] == tp)
            & (df["pp"] == pp) & (df["ep"] == ep) & (df["mode"] == mode)
        )
        if input_tokens is not None:
            sel &= df["input_tokens"] == input_tokens
        if output_tokens is not None:
            sel &= df["output_tokens"] == output_tokens
        pts = df[sel].groupby("concurrency", as_index=False)[
            ["output_tokens_per_s", "ttft_ms", "tpot_ms"]
        ].median().sort_values("concurrency")
        if pts.empty:
            raise InputError([f"no measured rows for {system}/{model}/{precision} tp={tp} "
                              f"pp={pp} ep={ep} mode={mode}"])
        x = pts["concurrency"].to_numpy(float)
        c = np.clip(np.atleast_1d(np.asarray(concurrency, dtype=float)), x[0], x[-1])
        res = {"concurrency": c}
        for col in ("output_tokens_per_s", "ttft_ms", "tpot_ms"):
            y = np.maximum.accumulate(pts[col].to_numpy(float))
            res[col] = np.interp(c, x, y)
        return pd.DataFrame(res)
