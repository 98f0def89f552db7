"""Parse and print quantities given as text: `20MW`, `350 kW`, `$2.65/h`, `1.5M tok/s`."""

from __future__ import annotations

import math
import re

_SCALE = {
    # power, to watts
    "w": 1.0, "kw": 1e3, "mw": 1e6, "gw": 1e9,
    # plain multipliers
    "": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9,
}
_POWER = {"w", "kw", "mw", "gw"}
_NUMBER = re.compile(
    r"^\s*(?P<dollar>\$?)\s*(?P<num>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*(?P<unit>[a-zA-Z]*)\s*"
    r"(?P<rest>(tok/s|tokens/s|/h|/hr|/hour)?)\s*$"
)


class UnitError(ValueError):
    """A quantity could not be read or is in the wrong unit."""


def parse_quantity(text: str, unit: str) -> float:
    """Read `text` and return its value in `unit` (`MW`, `kW`, `W`, `tok/s`, or `` for a plain
    count).

    >>> parse_quantity("20MW", "MW"), parse_quantity("350 kW", "MW"), parse_quantity("1.5M", "")
    (20.0, 0.35, 1500000.0)
    >>> parse_quantity("1.5M tok/s", "tok/s")
    1500000.0
    """
    match = _NUMBER.match(text)
    if not match:
        raise UnitError(f"cannot read '{text}' as a quantity in {unit or 'a count'}")
    value = float(match["num"])
    given = match["unit"].lower()
    target = unit.lower()
    allowed_rest = {"tok/s": ("", "tok/s", "tokens/s")}.get(target, ("",))
    if (target in _POWER or target == "tok/s") and (match["rest"] not in allowed_rest
                                                    or match["dollar"]):
        raise UnitError(f"'{text}' is not in {unit}")  # '20MW/h', '$20MW'; '2M/h' for a rate
    if match["unit"] == "mW":  # read case-blind, this was 20 MW
        raise UnitError(f"'{text}' is in milliwatts; expected MW (megawatts) or kW")
    if target == "tok/s":
        target = ""
    if target in _POWER:
        if given == "":
            return value  # a bare number is already in the target unit
        if given not in _POWER:
            raise UnitError(f"'{text}' is not a power; expected e.g. '20MW' or '350kW'")
        return value * _SCALE[given] / _SCALE[target]
    if given in _POWER:
        raise UnitError(f"'{text}' is a power; expected a plain quantity")
    if given not in _SCALE:
        raise UnitError(f"unknown unit '{match['unit']}' in '{text}'")
    return value * _SCALE[given]


def format_power_kw(power_kw: float) -> str:
    """350 -> '350 kW', 20000 -> '20.0 MW'."""
    if abs(power_kw) >= 1000:
        return f"{power_kw / 1000:,.1f} MW"
    return f"{power_kw:,.0f} kW"


def format_usd(value: float) -> str:
    """Human money: $1.23B, $45.6M, $7.8k, $0.12."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"${value / scale:,.2f}{suffix}"
    return f"${value:,.2f}"


def format_rate(value: float) -> str:
    """Token rates: 1.5M, 12.3k, 950."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:,.2f}{suffix}"
    return f"{value:,.0f}"


def json_number(value: float | None) -> float | None:
    """A number as the JSON outputs carry it: None where it is missing or not finite (JSON has
    no NaN), else rounded to 6 decimals, so the same plan prints the same bytes."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)
