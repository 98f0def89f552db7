"""Money: capital recovery, per-period cost coefficients, discounting, levelized cost.

Conventions (PyPSA's multi-period convention):
- a purchased system is charged its capex annuity `price × (1 + network_install_share) ×
  CRF(r, life)` for every year it is installed within the horizon, pro rata to period hours;
- existing systems carry no capex (sunk) but pay energy, facility and opex;
- energy = average draw × PUE × hours × $/kWh, average draw = idle + (busy − idle) × load,
  split into an idle part per installed system and a busy part per deployed replica;
- facility = colocation $/kW-month, plus an owned hall's capex per MW as an annuity
  (CRF(r, hall life)), on provisioned (max) IT kW, plus a monthly charge per occupied rack;
- opex = maintenance share × price per year + software per accelerator-year;
- cloud sites rent systems at $/accelerator-hour × markup and pay nothing else;
- with `cost_basis: tco_tier`, owned systems cost the published all-in $/accelerator-hour
  instead of every bottom-up line (the seed table's basis);
- costs of period p are discounted by 1 / (1 + r)^t, t = years from the horizon start to the
  start of p.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.schema import CostBasis, Finance, Site, SiteKind, System, TcoTier

HOURS_PER_YEAR = 8760.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12


def crf(rate: float, life_years: float) -> float:
    """Capital recovery factor r / (1 − (1 + r)^−n); 1/n when r = 0."""
    if life_years <= 0:
        raise ValueError("life_years must be positive")
    if rate == 0:
        return 1.0 / life_years
    # 1 − (1 + r)^−n as −expm1(−n·log1p(r)): exact for tiny r, where (1 + r) rounds to 1
    return rate / -math.expm1(-life_years * math.log1p(rate))


def discount_factors(hours: list[float], rate: float) -> list[float]:
    """1 / (1 + r)^t for each period, t = years elapsed before the period starts."""
    factors, elapsed = [], 0.0
    for h in hours:
        factors.append(1.0 / (1.0 + rate) ** (elapsed / HOURS_PER_YEAR))
        elapsed += h
    return factors


def rent_price(system: System) -> float | None:
    """$/accelerator-hour to rent a system: its rental price, else its published rental tier."""
    if system.rent_usd_per_accelerator_hour is not None:
        return system.rent_usd_per_accelerator_hour
    if system.tco_tiers is not None:
        return system.tco_tiers.rental_usd_per_accelerator_hour
    return None


def tier_price(system: System, tier: TcoTier) -> float | None:
    """The system's published all-in $/accelerator-hour for `tier`, if any."""
    if system.tco_tiers is None:
        return None
    return getattr(system.tco_tiers, f"{tier.value}_usd_per_accelerator_hour")


@dataclass(frozen=True)
class SystemCosts:
    """Undiscounted cost of one system of a type, at one site, during one period (USD)."""

    capex: float
    """Capex annuity share, charged per purchased (not existing) system."""
    energy_idle: float
    """Energy of the idle draw, per installed system."""
    facility: float
    """Colocation and owned-hall capex on provisioned kW, per installed system."""
    opex: float
    """Maintenance and software, per installed system."""
    rent: float
    """Rental, per rented system (cloud sites)."""
    all_in: float
    """Published all-in tier cost, per installed system (cost_basis: tco_tier)."""

    @property
    def per_installed(self) -> float:
        return self.energy_idle + self.facility + self.opex + self.rent + self.all_in


def system_costs(system: System, site: Site, finance: Finance, hours: float) -> SystemCosts:
    """Cost lines of one system for a period of `hours` at `site` (see module docstring)."""
    years = hours / HOURS_PER_YEAR
    if site.kind == SiteKind.cloud:
        rent = (rent_price(system) or 0.0) * site.rent_markup
        return SystemCosts(0, 0, 0, 0, rent * system.accelerators * hours, 0)
    if finance.cost_basis == CostBasis.tco_tier:
        price = tier_price(system, finance.tco_tier) or 0.0
        return SystemCosts(0, 0, 0, 0, 0, price * system.accelerators * hours)
    price = system.price_usd or 0.0
    capex = price * (1 + finance.network_install_share) * crf(
        finance.discount_rate, finance.life_years
    ) * years
    energy_idle = system.idle_kw * site.pue * hours * site.electricity_usd_per_kwh
    hall_usd_per_kw_year = site.datacenter_capex_usd_per_mw / 1000 * crf(
        finance.discount_rate, site.datacenter_life_years)
    facility = (system.power_kw_max or 0.0) * (
        site.colocation_usd_per_kw_month * hours / HOURS_PER_MONTH + hall_usd_per_kw_year * years)
    opex = (
        finance.maintenance_share * price
        + finance.software_usd_per_accelerator_year * system.accelerators
    ) * years
    return SystemCosts(capex, energy_idle, facility, opex, 0.0, 0.0)


def rack_usd(site: Site, finance: Finance, hours: float) -> float:
    """One occupied rack position at `site` for a period of `hours`: its monthly charge; none
    at cloud sites or under the all-in tier basis (inside those prices)."""
    if site.kind == SiteKind.cloud or finance.cost_basis == CostBasis.tco_tier:
        return 0.0
    return site.rack_usd_per_month * hours / HOURS_PER_MONTH


def busy_energy_usd(
    busy_kw: float, utilization: float, site: Site, finance: Finance, hours: float
) -> float:
    """Energy above idle of one replica: busy kW × utilization × PUE × hours × $/kWh.

    Zero at cloud sites and under the all-in tier basis (energy is inside those prices).
    """
    if site.kind == SiteKind.cloud or finance.cost_basis == CostBasis.tco_tier:
        return 0.0
    return busy_kw * utilization * site.pue * hours * site.electricity_usd_per_kwh


def system_power_kw(system: System, site: Site, finance: Finance) -> float:
    """Facility kW one installed system takes from the site's budget.

    Bottom-up: max IT kW × PUE. Tier basis: all-in kW per accelerator × accelerators (the
    InferenceX figure already includes facility overheads), falling back to the bottom-up value.
    """
    if site.kind == SiteKind.cloud:
        return 0.0
    if finance.cost_basis == CostBasis.tco_tier and system.all_in_power_kw_per_accelerator:
        return system.all_in_power_kw_per_accelerator * system.accelerators
    return (system.power_kw_max or 0.0) * site.pue


def usd_per_million_tokens(cost_usd: float, tokens: float) -> float:
    """Levelized cost: Σ discounted cost ÷ Σ discounted delivered tokens × 10⁶."""
    return cost_usd / tokens * 1e6 if tokens > 0 else float("nan")
