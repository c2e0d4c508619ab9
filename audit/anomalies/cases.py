"""Anomalies found in the cases: who got one, for what house, how big, paid when."""

import datetime
from itertools import groupby

from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audit.anomalies.base import (
    ELIGIBLE_GRADES,
    Anomaly,
    AnomalyKind,
    Filters,
    case_anomaly,
    case_rows,
    cases_of,
    grade_text,
    join,
    scoped_cases,
)
from renovation.models import AreaRule
from renovation.rules import area_problem, area_rule_for, number, overdue_cases, payment_due_date


def no_key_group(filters: Filters) -> list[Anomaly]:
    rows = case_rows(cases_of(filters).filter(house__household__key_group__isnull=True))
    return [
        case_anomaly(
            AnomalyKind.NO_KEY_GROUP,
            case,
            _(
                "Case %(case)s (funding year %(year)s) is for a household in no key group; "
                "only households of a certified key group qualify."
            )
            % {"case": case.pk, "year": case.funding_year},
        )
        for case in rows
    ]


def grade_not_c_or_d(filters: Filters) -> list[Anomaly]:
    rows = case_rows(
        cases_of(filters).filter(
            ~Q(entry_grade__in=ELIGIBLE_GRADES) | ~Q(entry_appraisal__grade__in=ELIGIBLE_GRADES)
        )
    )
    anomalies = []
    for case in rows:
        values = {
            "case": case.pk,
            "grade": grade_text(case.entry_grade),
            "appraisal": grade_text(case.entry_appraisal.grade),
        }
        if case.entry_grade == case.entry_appraisal.grade:
            reason = _("Case %(case)s entered with grade %(grade)s; only C or D qualify.") % values
        else:
            reason = (
                _(
                    "Case %(case)s records grade %(grade)s at entry, and its entry appraisal "
                    "graded the house %(appraisal)s; only C or D qualify."
                )
                % values
            )
        anomalies.append(case_anomaly(AnomalyKind.GRADE_NOT_C_OR_D, case, reason))
    return anomalies


def repeat_case(filters: Filters) -> list[Anomaly]:
    scoped = scoped_cases(filters.user)
    repeated = (
        scoped.values("house__household")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values("house__household")
    )
    rows = case_rows(
        scoped.filter(house__household__in=repeated).filter(
            house__household__in=cases_of(filters).values("house__household")
        )
    ).order_by("house__household_id", "funding_year", "id")
    anomalies = []
    for _household_id, group in groupby(rows, key=lambda c: c.house.household_id):
        cases = list(group)
        listed = join(
            _("case %(case)s (%(year)s)") % {"case": c.pk, "year": c.funding_year} for c in cases
        )
        reason = ngettext(
            "This household has %(n)d case: %(cases)s.",
            "This household has %(n)d cases: %(cases)s.",
            len(cases),
        ) % {"n": len(cases), "cases": listed}
        anomalies.append(case_anomaly(AnomalyKind.REPEAT_CASE, cases[-1], reason))
    return anomalies


def double_benefit(filters: Filters) -> list[Anomaly]:
    rows = case_rows(cases_of(filters).filter(house__household__poverty_relocation=True))
    return [
        case_anomaly(
            AnomalyKind.DOUBLE_BENEFIT,
            case,
            _(
                "The household also received poverty-relocation housing, and case %(case)s "
                "(funding year %(year)s) grants a renovation subsidy of %(amount)s yuan."
            )
            % {"case": case.pk, "year": case.funding_year, "amount": number(case.subsidy_amount)},
        )
        for case in rows
    ]


def _rule_field(name: str, output_field):
    """The AreaRule in effect in the case's funding year, one field of it, in SQL (as
    rules.area_rule_for picks it: the newest that took effect by then, else the defaults)."""
    in_effect = (
        AreaRule.objects.filter(effective_year__lte=OuterRef("funding_year"))
        .order_by("-effective_year")
        .values(name)[:1]
    )
    default = AreaRule._meta.get_field(name).default
    return Coalesce(Subquery(in_effect), Value(default), output_field=output_field)


def area_over_rule(filters: Filters) -> list[Anomaly]:
    area = DecimalField(max_digits=10, decimal_places=2)
    # The same limit as rules.area_limits, computed per row: a small household's maximum
    # area, or the per-person maximum times the household size.
    rows = case_rows(
        cases_of(filters)
        .annotate(
            rule_small_people=_rule_field("small_household_max_people", IntegerField()),
            rule_small_max=_rule_field("small_household_max_area", area),
            rule_per_person=_rule_field("max_per_person", area),
        )
        .annotate(
            rule_max=Case(
                When(household_size__lte=F("rule_small_people"), then=F("rule_small_max")),
                default=ExpressionWrapper(
                    F("household_size") * F("rule_per_person"), output_field=area
                ),
                output_field=area,
            )
        )
        .filter(planned_floor_area__gt=F("rule_max"))
    )
    rules: dict[int, AreaRule] = {}
    anomalies = []
    for case in rows:
        if case.funding_year not in rules:
            rules[case.funding_year] = area_rule_for(case.funding_year)
        problem = area_problem(
            household_size=case.household_size,
            floor_area=case.planned_floor_area,
            rule=rules[case.funding_year],
        )
        if problem is None:  # rules.area_problem is the authority on the wording and edge
            continue
        reason = _("Case %(case)s (funding year %(year)s): %(problem)s") % {
            "case": case.pk,
            "year": case.funding_year,
            "problem": problem,
        }
        anomalies.append(case_anomaly(AnomalyKind.AREA_OVER_RULE, case, reason))
    return anomalies


def overdue(filters: Filters, today: datetime.date | None = None) -> list[Anomaly]:
    rows = case_rows(overdue_cases(cases_of(filters), today=today))
    anomalies = []
    for case in rows:
        passed = timezone.localtime(case.completion_passed_at).date()
        reason = _(
            "The completion check of case %(case)s passed on %(passed)s; %(paid)s of "
            "%(subsidy)s yuan has been paid, and the subsidy was due by %(due)s."
        ) % {
            "case": case.pk,
            "passed": passed.isoformat(),
            "paid": number(case.paid_total),
            "subsidy": number(case.subsidy_amount),
            "due": payment_due_date(case).isoformat(),
        }
        anomalies.append(case_anomaly(AnomalyKind.OVERDUE, case, reason))
    return anomalies
