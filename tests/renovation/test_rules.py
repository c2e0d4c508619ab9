import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from renovation.models import AreaRule, CaseState, RenovationCase, SubsidyStandard
from renovation.rules import (
    area_problem,
    area_rule_for,
    is_overdue,
    overdue_cases,
    payment_due_date,
    subsidy_standard_for,
)
from tests.factories import key_group
from tests.renovation.factories import CaseFactory

DEFAULTS = AreaRule(effective_year=0)


@pytest.mark.django_db
def test_area_rule_defaults_when_the_table_is_empty():
    rule = area_rule_for(2026)
    assert rule.pk is None
    assert (rule.min_per_person, rule.small_household_max_people) == (13, 3)
    assert (rule.small_household_min_area, rule.small_household_max_area) == (40, 60)
    assert rule.max_per_person == 18


@pytest.mark.django_db
def test_area_rule_is_the_newest_in_effect_by_the_year():
    AreaRule.objects.create(effective_year=2017)
    newer = AreaRule.objects.create(effective_year=2025, small_household_max_area=70)
    assert area_rule_for(2024).effective_year == 2017
    assert area_rule_for(2025) == newer
    assert area_rule_for(2030) == newer
    assert area_rule_for(2010).pk is None  # only later rules: the defaults


@pytest.mark.parametrize(
    ("size", "area", "expected"),
    [
        (1, "72", "72 m² for 1 person is above 60 m²."),
        (1, "60", None),
        (1, "39.5", "39.5 m² for 1 person is below 40 m²."),
        (2, "50", None),
        (3, "60.01", "60.01 m² for 3 people is above 60 m²."),
        (4, "72", None),
        (4, "72.5", "72.5 m² for 4 people is above 72 m² (18 m² a person)."),
        (5, "64", "64 m² for 5 people is below 65 m²."),
        (5, "65", None),
        (0, "50", "The household has no members recorded; record its members first."),
        (2, "0", "The planned floor area must be more than 0 m²."),
    ],
)
def test_area_problem_says_what_is_wrong(size, area, expected):
    assert area_problem(household_size=size, floor_area=Decimal(area), rule=DEFAULTS) == expected


def test_area_problem_follows_a_configured_rule():
    rule = AreaRule(
        effective_year=2025,
        min_per_person=15,
        small_household_max_people=2,
        small_household_min_area=30,
        small_household_max_area=50,
        max_per_person=20,
    )
    assert area_problem(household_size=2, floor_area=55, rule=rule) == (
        "55 m² for 2 people is above 50 m²."
    )
    assert area_problem(household_size=3, floor_area=60, rule=rule) is None
    assert area_problem(household_size=3, floor_area=44, rule=rule) == (
        "44 m² for 3 people is below 45 m²."
    )


@pytest.mark.django_db
def test_subsidy_standard_is_the_key_groups_row_else_the_any_other_row():
    poor, other = key_group("minimum_income"), key_group("at_risk_of_poverty")
    own = SubsidyStandard.objects.create(
        year=2026, method="repair", key_group=poor, amount=Decimal("6000")
    )
    anyone = SubsidyStandard.objects.create(
        year=2026, method="repair", key_group=None, amount=Decimal("0")
    )
    assert subsidy_standard_for(year=2026, method="repair", key_group=poor) == own
    assert subsidy_standard_for(year=2026, method="repair", key_group=other) == anyone
    assert subsidy_standard_for(year=2026, method="repair", key_group=None) == anyone
    assert subsidy_standard_for(year=2026, method="rebuild_grouped", key_group=poor) is None


@pytest.mark.django_db
def test_subsidy_standard_is_versioned_by_year():
    poor = key_group("minimum_income")
    old = SubsidyStandard.objects.create(
        year=2024, method="rebuild_same_site", key_group=poor, amount=Decimal("18000")
    )
    new = SubsidyStandard.objects.create(
        year=2026, method="rebuild_same_site", key_group=poor, amount=Decimal("20000")
    )
    assert subsidy_standard_for(year=2025, method="rebuild_same_site", key_group=poor) == old
    assert subsidy_standard_for(year=2026, method="rebuild_same_site", key_group=poor) == new
    assert subsidy_standard_for(year=2027, method="rebuild_same_site", key_group=poor) == new
    assert subsidy_standard_for(year=2023, method="rebuild_same_site", key_group=poor) is None


def _passed_on(day: datetime.date, **kwargs) -> RenovationCase:
    at = timezone.make_aware(datetime.datetime.combine(day, datetime.time(23, 30)))
    return CaseFactory(state=CaseState.COMPLETION_PASSED, completion_passed_at=at, **kwargs)


@pytest.mark.django_db
def test_overdue_after_30_days_unpaid_not_on_day_30():
    today = datetime.date(2026, 12, 31)
    on_time = _passed_on(datetime.date(2026, 12, 1))  # day 30: still on time
    late = _passed_on(datetime.date(2026, 11, 30))  # day 31
    part_paid = _passed_on(datetime.date(2026, 11, 1), paid_total=Decimal("5000"))
    assert payment_due_date(on_time) == datetime.date(2026, 12, 31)
    assert not is_overdue(on_time, today)
    assert is_overdue(late, today)
    assert is_overdue(part_paid, today)
    found = overdue_cases(RenovationCase.objects.all(), today)
    assert sorted(found.values_list("pk", flat=True)) == sorted([late.pk, part_paid.pk])


@pytest.mark.django_db
def test_paid_or_not_yet_passed_cases_are_never_overdue():
    today = datetime.date(2026, 12, 31)
    long_ago = datetime.date(2025, 1, 1)
    at = timezone.make_aware(datetime.datetime(2025, 1, 1, 9))
    paid = CaseFactory(state=CaseState.PAID, completion_passed_at=at, paid_total=Decimal("20000"))
    finished = CaseFactory(state=CaseState.WORKS_FINISHED)
    full_but_open = _passed_on(long_ago, paid_total=Decimal("20000"))
    for case in (paid, finished, full_but_open):
        assert not is_overdue(case, today)
    assert not overdue_cases(RenovationCase.objects.all(), today).exists()
