"""The configurable rules a renovation case is held to: floor area, subsidy, payment due.

Each is data an administrator edits (AreaRule, SubsidyStandard, ANJU_PAYMENT_DUE_DAYS),
read through these functions so the services, the pages and the auditor's worklist apply
the same rule.
"""

import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from renovation.models import AreaRule, CaseState, RenovationCase, SubsidyStandard


def number(value) -> str:
    """A figure as people write it: 72, 72.5, 20,000.50 (no trailing zeros)."""
    value = Decimal(str(value)).quantize(Decimal("0.01"))
    text = f"{value:,.2f}"
    return text[:-3] if text.endswith(".00") else text.rstrip("0")


def area_rule_for(year: int) -> AreaRule:
    """The rule in effect in `year`: the newest one that took effect by then.

    When none has (an empty table, or only later rules), an unsaved AreaRule with the
    DOMAIN.md defaults (13 m² a person; 1–3 people 40–60 m²; 18 m² a person above that).
    """
    rule = AreaRule.objects.filter(effective_year__lte=year).order_by("-effective_year").first()
    return rule if rule is not None else AreaRule(effective_year=0)


def area_limits(*, household_size: int, rule: AreaRule) -> tuple[Decimal, Decimal]:
    """(minimum, maximum) floor area in m² for a household of this size under the rule."""
    size = Decimal(household_size)
    lowest = Decimal(rule.min_per_person) * size
    if household_size <= rule.small_household_max_people:
        return max(lowest, Decimal(rule.small_household_min_area)), Decimal(
            rule.small_household_max_area
        )
    return lowest, Decimal(rule.max_per_person) * size


def area_problem(*, household_size: int, floor_area, rule: AreaRule) -> str | None:
    """What is wrong with this floor area for this household, or None when it fits.

    E.g. "72 m² for 1 person is above 60 m²."
    """
    if household_size < 1:
        return _("The household has no members recorded; record its members first.")
    area = Decimal(str(floor_area))
    if area <= 0:
        return _("The planned floor area must be more than 0 m².")
    low, high = area_limits(household_size=household_size, rule=rule)
    values = {
        "area": number(area),
        "n": household_size,
        "min": number(low),
        "max": number(high),
        "per_person_min": number(rule.min_per_person),
        "per_person_max": number(rule.max_per_person),
    }
    if area > high:
        if household_size <= rule.small_household_max_people:
            return (
                ngettext(
                    "%(area)s m² for %(n)d person is above %(max)s m².",
                    "%(area)s m² for %(n)d people is above %(max)s m².",
                    household_size,
                )
                % values
            )
        return (
            ngettext(
                "%(area)s m² for %(n)d person is above %(max)s m² (%(per_person_max)s m² a "
                "person).",
                "%(area)s m² for %(n)d people is above %(max)s m² (%(per_person_max)s m² a "
                "person).",
                household_size,
            )
            % values
        )
    if area < low:
        return (
            ngettext(
                "%(area)s m² for %(n)d person is below %(min)s m².",
                "%(area)s m² for %(n)d people is below %(min)s m².",
                household_size,
            )
            % values
        )
    return None


def subsidy_standard_for(*, year: int, method: str, key_group) -> SubsidyStandard | None:
    """The standard for a funding year, method and key group, or None.

    Versioned by year: the newest year up to `year` that has any row for the method
    applies. Within it, the row for the household's key group, else the row with no key
    group ("any other household"), else None (no standard: the amount must be entered,
    with a reason).
    """
    rows = SubsidyStandard.objects.filter(year__lte=year, method=method)
    newest = rows.order_by("-year").values_list("year", flat=True).first()
    if newest is None:
        return None
    in_year = rows.filter(year=newest)
    if key_group is not None:
        own = in_year.filter(key_group=key_group).first()
        if own is not None:
            return own
    return in_year.filter(key_group__isnull=True).first()


def payment_due_date(case: RenovationCase) -> datetime.date | None:
    """The last day the subsidy may be paid: the completion check's local date plus
    ANJU_PAYMENT_DUE_DAYS."""
    if case.completion_passed_at is None:
        return None
    passed = timezone.localtime(case.completion_passed_at).date()
    return passed + datetime.timedelta(days=settings.ANJU_PAYMENT_DUE_DAYS)


def is_overdue(case: RenovationCase, today: datetime.date | None = None) -> bool:
    """Completion passed, not paid in full, and the due date is behind us."""
    today = today or timezone.localdate()
    due = payment_due_date(case)
    return (
        case.state == CaseState.COMPLETION_PASSED
        and due is not None
        and case.paid_total < case.subsidy_amount
        and today > due
    )


def overdue_cases(qs: QuerySet[RenovationCase], today: datetime.date | None = None):
    """The cases of `qs` that is_overdue: one indexed filter, no Python loop."""
    today = today or timezone.localdate()
    # Overdue when passed on a local date before today - due days, i.e. before the start
    # of that day in the local time zone.
    last_on_time = today - datetime.timedelta(days=settings.ANJU_PAYMENT_DUE_DAYS)
    cutoff = timezone.make_aware(datetime.datetime.combine(last_on_time, datetime.time.min))
    return qs.filter(
        state=CaseState.COMPLETION_PASSED,
        completion_passed_at__lt=cutoff,
        paid_total__lt=F("subsidy_amount"),
    )
