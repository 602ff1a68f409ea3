"""The fire lead: a smoothed wake-up delay plus deviations, bounded."""

from __future__ import annotations

import pytest

from netcron.firelead import MAX_LEAD, FireLead


def test_a_new_schedule_has_no_lead() -> None:
    assert FireLead().seconds == 0.0


def test_the_first_wake_up_sets_the_lead_above_its_delay() -> None:
    lead = FireLead().observe(0.08)
    assert lead.seconds == pytest.approx(0.08 + 3 * 0.04)


def test_a_steady_delay_converges_to_it() -> None:
    lead = FireLead()
    for _ in range(200):
        lead = lead.observe(0.07)
    assert lead.mean == pytest.approx(0.07, abs=1e-6)
    assert lead.seconds == pytest.approx(0.07, abs=1e-3)


def test_a_jittery_delay_leads_by_more_than_its_mean() -> None:
    lead = FireLead()
    for i in range(400):
        lead = lead.observe(0.04 if i % 2 else 0.12)
    assert 0.07 < lead.mean < 0.09
    assert lead.seconds > 0.12


def test_the_lead_is_bounded_whatever_it_saw() -> None:
    lead = FireLead()
    for _ in range(50):
        lead = lead.observe(30.0)
    assert lead.seconds == MAX_LEAD
    assert FireLead().observe(-1.0).seconds == 0.0
