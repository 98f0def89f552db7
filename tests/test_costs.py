"""Money, checked by hand."""

from __future__ import annotations

import math

import pytest

from planner.catalog import load_catalog
from planner.costs import (
    HOURS_PER_MONTH,
    busy_energy_usd,
    crf,
    discount_factors,
    system_costs,
    system_power_kw,
    usd_per_million_tokens,
)
from planner.schema import Finance, Site


def test_crf_matches_the_annuity_formula():
    # CRF(0.08, 5) = 0.08 / (1 - 1.08^-5) = 0.250456...
    assert crf(0.08, 5) == pytest.approx(0.2504564545, rel=1e-9)
    assert crf(0.0, 4) == 0.25
    # paying CRF × P for n years repays P at rate r
    rate, life = 0.1, 4
    assert sum(crf(rate, life) / (1 + rate) ** t for t in range(1, life + 1)) == pytest.approx(1.0)


def test_discount_factors_count_years_before_each_period():
    factors = discount_factors([4380, 4380, 8760], 0.08)
    assert factors[0] == 1.0
    assert factors[1] == pytest.approx(1 / 1.08**0.5)
    assert factors[2] == pytest.approx(1 / 1.08)


def test_one_hgx_h200_year_line_by_line():
    """One owned HGX H200 for a year at 8 ¢/kWh, PUE 1.3, $150/kW-month colocation."""
    system = load_catalog().systems["nvidia-hgx-h200"]
    finance = Finance(discount_rate=0.08, life_years=4, network_install_share=0.12,
                      maintenance_share=0.05, software_usd_per_accelerator_year=1000)
    site = Site(id="dc1", power_mw=20, pue=1.3, electricity_usd_per_kwh=0.08,
                colocation_usd_per_kw_month=150)
    lines = system_costs(system, site, finance, hours=8760)
    price = system.price_usd
    assert lines.capex == pytest.approx(price * 1.12 * crf(0.08, 4))
    assert lines.energy_idle == pytest.approx(system.idle_kw * 1.3 * 8760 * 0.08)
    assert lines.facility == pytest.approx(system.power_kw_max * 150 * 8760 / HOURS_PER_MONTH)
    assert lines.facility == pytest.approx(system.power_kw_max * 150 * 12)
    assert lines.opex == pytest.approx(0.05 * price + 1000 * 8)
    assert lines.rent == 0 and lines.all_in == 0
    # the busy part of the energy: (10.2 kW − idle) at 60% load
    busy = busy_energy_usd(system.power_kw_max - system.idle_kw, 0.6, site, finance, 8760)
    assert busy == pytest.approx((system.power_kw_max - system.idle_kw) * 0.6 * 1.3 * 8760 * 0.08)
    assert system_power_kw(system, site, finance) == pytest.approx(system.power_kw_max * 1.3)


def test_an_owned_halls_capex_per_mw_is_an_annuity_on_provisioned_it_kw():
    # $11.7M per MW of IT load over 10 years at 8%: $11,700/kW × CRF(0.08, 10) = $1,743.6/kW-year
    system = load_catalog().systems["nvidia-hgx-h200"]
    finance = Finance(discount_rate=0.08)
    site = Site(id="dc1", power_mw=20, datacenter_capex_usd_per_mw=11.7e6)
    assert crf(0.08, 10) == pytest.approx(0.149029, abs=1e-6)
    half_year = system_costs(system, site, finance, hours=4380)
    assert half_year.facility == pytest.approx(system.power_kw_max * 11_700 * crf(0.08, 10) / 2)
    longer = Site(id="dc1", power_mw=20, datacenter_capex_usd_per_mw=11.7e6,
                  datacenter_life_years=20)
    assert system_costs(system, longer, finance, hours=4380).facility < half_year.facility
    tier = system_costs(system, site, Finance(cost_basis="tco_tier", tco_tier="hyperscaler"),
                        hours=4380)
    assert tier.facility == 0  # the all-in tier price has the hall in it


def test_tier_basis_prices_owned_systems_at_the_published_rate():
    system = load_catalog().systems["nvidia-hgx-h200"]
    finance = Finance(cost_basis="tco_tier", tco_tier="hyperscaler")
    site = Site(id="dc1", power_mw=20)
    lines = system_costs(system, site, finance, hours=1000)
    assert lines.all_in == pytest.approx(1.41 * 8 * 1000)
    assert lines.capex == lines.energy_idle == lines.facility == lines.opex == 0
    assert system_power_kw(system, site, finance) == pytest.approx(1.73 * 8)


def test_cloud_site_rents_per_accelerator_hour():
    system = load_catalog().systems["nvidia-hgx-h100"]
    site = Site(id="cloud", kind="cloud", rent_markup=1.1)
    lines = system_costs(system, site, Finance(), hours=100)
    assert lines.rent == pytest.approx(system.rent_usd_per_accelerator_hour * 1.1 * 8 * 100)
    assert lines.per_installed == lines.rent


def test_levelized_cost_per_million_tokens():
    # the seed's formula: $1.41 per GPU-hour at 93.3 tok/s/GPU is ≈ $4.20 per million tokens
    assert usd_per_million_tokens(1.41, 93.3 * 3600) == pytest.approx(4.198, abs=1e-3)
    assert math.isnan(usd_per_million_tokens(1.0, 0))
