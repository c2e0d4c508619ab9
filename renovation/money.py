"""Subsidy money by region: allocated, paid and overdue, summed in SQL.

What each figure is, exactly:

- allocated: the subsidy amount of every approved case, i.e. a case the county approved
  and not since closed (approved, works started or finished, completion passed, paid). A
  case still on its way up the approval chain has nothing allocated yet; a rejected or
  withdrawn one has nothing allocated any more.
- paid: the payments recorded (Payment rows), whatever the case's state now.
- overdue: what is still unpaid (subsidy less paid so far) on the cases that are overdue by
  the one overdue rule (renovation.rules.overdue_cases: completion passed, not paid in
  full, the due date behind us).

Every read takes the user and counts only the cases in their regions.
"""

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import DecimalField, Exists, F, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Substr
from django.utils import numberformat
from django.utils.formats import get_format
from django.utils.translation import gettext as _

from accounts.scoping import scope
from housing.models import Region
from renovation.models import CaseState, RenovationCase
from renovation.rules import overdue_cases

CASE_SCOPE = "house__household__village__code"
APPROVED_STATES = (
    CaseState.COUNTY_APPROVED,
    CaseState.WORKS_STARTED,
    CaseState.WORKS_FINISHED,
    CaseState.COMPLETION_PASSED,
    CaseState.PAID,
)
ZERO = Decimal("0.00")
# Sums of a county's cases outgrow a case's max_digits=10 (100 million yuan): room for more.
SUM_FIELD = DecimalField(max_digits=18, decimal_places=2)


@dataclass(frozen=True)
class Money:
    """Subsidy figures of one region, in yuan."""

    allocated: Decimal = ZERO
    paid: Decimal = ZERO
    overdue: Decimal = ZERO

    def __add__(self, other: "Money") -> "Money":
        return Money(
            allocated=self.allocated + other.allocated,
            paid=self.paid + other.paid,
            overdue=self.overdue + other.overdue,
        )

    @property
    def allocated_text(self) -> str:
        return yuan(self.allocated)

    @property
    def paid_text(self) -> str:
        return yuan(self.paid)

    @property
    def overdue_text(self) -> str:
        return yuan(self.overdue)


def yuan(amount: Decimal) -> str:
    """An amount with the yuan sign, two decimals and thousands grouped: "¥20,000.00".

    The locale's decimal and thousands separators, grouped by three always: Django's Chinese
    format groups by four with no separator (for 万), but amounts of money are written in
    threes with commas in Chinese accounts and bank slips too, so a locale without a
    thousands separator gets ",".
    """
    text = numberformat.format(
        amount,
        get_format("DECIMAL_SEPARATOR"),
        decimal_pos=2,
        grouping=3,
        thousand_sep=get_format("THOUSAND_SEPARATOR") or ",",
        force_grouping=True,
    )
    return _("¥%(amount)s") % {"amount": text}


def _sum(expression, **extra):
    return Coalesce(
        Sum(expression, output_field=SUM_FIELD, **extra), Value(ZERO), output_field=SUM_FIELD
    )


def money_by_code(
    *,
    user,
    region_code: str,
    code_length: int,
    cases: QuerySet[RenovationCase] | None = None,
    today: datetime.date | None = None,
) -> dict[str, Money]:
    """The money of the user's cases under `region_code`, by the first `code_length` digits of
    their village's code (a child region's code; the region's own length for itself).

    One query, whatever the number of cases or regions: one GROUP BY, each case's paid_total
    summed and overdue cases found by the overdue rule as a correlated EXISTS.
    `cases`: a narrower set to count (e.g. the dashboard's filters), scoped here all the same.
    Codes with no case are absent from the answer.
    """
    qs = RenovationCase.objects.all() if cases is None else cases
    qs = scope(qs, user, CASE_SCOPE).filter(**{f"{CASE_SCOPE}__startswith": region_code})
    overdue = overdue_cases(RenovationCase.objects.filter(pk=OuterRef("pk")), today=today)
    rows = (
        qs.alias(is_overdue=Exists(overdue))
        .annotate(code=Substr(CASE_SCOPE, 1, code_length))
        .values("code")
        .annotate(
            allocated=_sum("subsidy_amount", filter=Q(state__in=APPROVED_STATES)),
            # The case's paid_total, kept by payment_record with each payment: the same
            # figure the overdue rule reads, so paid and overdue never disagree.
            paid=_sum("paid_total"),
            overdue=_sum(F("subsidy_amount") - F("paid_total"), filter=Q(is_overdue=True)),
        )
        .order_by()
    )
    return {
        row["code"]: Money(allocated=row["allocated"], paid=row["paid"], overdue=row["overdue"])
        for row in rows
    }


def region_money(
    *,
    user,
    region: Region,
    children: list[Region],
    cases: QuerySet[RenovationCase] | None = None,
    today: datetime.date | None = None,
) -> tuple[Money, list[Money]]:
    """The region's money in total and each child's, in the order of `children` (the
    region's child regions the user sees; [] for a village). One query (money_by_code).

    The total is every case under the region in the user's scope, so a case in a village
    whose parent row is missing still counts in it.
    """
    length = len(children[0].code) if children else len(region.code)
    by_code = money_by_code(
        user=user, region_code=region.code, code_length=length, cases=cases, today=today
    )
    total = sum(by_code.values(), Money())
    return total, [by_code.get(child.code, Money()) for child in children]
