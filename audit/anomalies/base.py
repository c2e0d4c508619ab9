"""What every kind of anomaly shares: the kinds, the filters, the scoped querysets they start
from, and how an anomaly is worded and linked."""

from dataclasses import dataclass

from django.db import models
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.scoping import scope
from housing.models import Household
from renovation.models import CaseState, RenovationCase

CASE_SCOPE = "house__household__village__code"
HOUSEHOLD_SCOPE = "village__code"
# Final states that released no money, or will not: not anomalies whatever the household.
CLOSED_WITHOUT_PAYMENT = [CaseState.REJECTED, CaseState.WITHDRAWN]
ELIGIBLE_GRADES = ["C", "D"]


class AnomalyKind(models.TextChoices):
    """The kinds, in the order the worklist shows them. Codes are stable (API, filters)."""

    NO_KEY_GROUP = "no_key_group", gettext_lazy("Household in no key group")
    GRADE_NOT_C_OR_D = "grade_not_cd", gettext_lazy("House not C or D at entry")
    REPEAT_CASE = "repeat_case", gettext_lazy("More than one case for one household")
    SHARED_ID = "shared_id", gettext_lazy("Same person in another household's case")
    DOUBLE_BENEFIT = "double_benefit", gettext_lazy("Double benefit: poverty-relocation housing")
    AREA_OVER_RULE = "area_over_rule", gettext_lazy("Floor area over the rule")
    MISSING_ID = "missing_id", gettext_lazy("Missing national ID numbers")
    DUPLICATE_ID = "duplicate_id", gettext_lazy("Duplicate national ID numbers")
    PHOTO_FLAGS = "photo_flags", gettext_lazy("Photo evidence flags")
    OVERDUE = "overdue", gettext_lazy("Payment overdue")


@dataclass(frozen=True)
class Anomaly:
    code: str
    label: str
    reason: str
    household: Household
    case: RenovationCase | None
    url: str


@dataclass(frozen=True)
class Filters:
    user: object
    region: str | None
    year: int | None


def scoped_cases(user) -> QuerySet[RenovationCase]:
    """Every counted case in the user's regions, whatever the filters (the other side of a
    repeat application may be in another year or township)."""
    return scope(
        RenovationCase.objects.exclude(state__in=CLOSED_WITHOUT_PAYMENT), user, CASE_SCOPE
    ).order_by()


def cases_of(filters: Filters) -> QuerySet[RenovationCase]:
    """The counted cases the filters select."""
    qs = scoped_cases(filters.user)
    if filters.region:
        qs = qs.filter(house__household__village__code__startswith=filters.region)
    if filters.year:
        qs = qs.filter(funding_year=filters.year)
    return qs


def case_rows(qs: QuerySet[RenovationCase]) -> QuerySet[RenovationCase]:
    return qs.select_related("house__household__village", "entry_appraisal").order_by("id")


def households_of(filters: Filters) -> QuerySet[Household]:
    """The households the filters select, for the kinds about the registry itself."""
    qs = scope(Household.objects.all(), filters.user, HOUSEHOLD_SCOPE)
    if filters.region:
        qs = qs.filter(village__code__startswith=filters.region)
    if filters.year:
        qs = qs.filter(pk__in=cases_of(filters).values("house__household"))
    return qs.order_by()


def household_url(household_id: int) -> str:
    return reverse("portal:household_detail", kwargs={"pk": household_id})


def case_url(case: RenovationCase) -> str:
    return reverse("cases:case_detail", kwargs={"pk": case.pk})


def case_anomaly(code: str, case: RenovationCase, reason: str) -> Anomaly:
    return Anomaly(
        code=code,
        label=str(AnomalyKind(code).label),
        reason=reason,
        household=case.house.household,
        case=case,
        url=case_url(case),
    )


def household_anomaly(code: str, household: Household, reason: str) -> Anomaly:
    return Anomaly(
        code=code,
        label=str(AnomalyKind(code).label),
        reason=reason,
        household=household,
        case=None,
        url=household_url(household.pk),
    )


def grade_text(grade: str) -> str:
    return grade or _("none")


def join(items) -> str:
    # A list inside a sentence; the separator is the reader's (“、” or “，” in Chinese).
    return _(", ").join(items)
