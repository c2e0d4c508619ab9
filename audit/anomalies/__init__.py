"""The auditor's worklist: what looks wrong in the cases and the registry, and why.

Each kind of anomaly is found by a fixed number of SQL queries (aggregates, EXISTS
subqueries, GROUP BY), scoped to the user's regions with accounts.scoping; Python only
words the rows those queries return, so the cost does not grow with the households that
are fine.

Which cases count: rejected and withdrawn cases are the chain doing its job, so the
case-based kinds look at every other case (open or paid). The registry kinds (missing and
duplicate ID numbers) look at every household in the user's regions; with a funding-year
filter, at the households with a case funded that year.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import groupby

from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.scoping import scope
from housing import idnumbers
from housing.models import FamilyMember, Household, Relation
from inspections.models import Photo, PhotoFlag
from renovation.models import AreaRule, CaseState, RenovationCase
from renovation.rules import area_problem, area_rule_for, number, overdue_cases, payment_due_date

CASE_SCOPE = "house__household__village__code"
HOUSEHOLD_SCOPE = "village__code"
# Final states that released no money, or will not: not anomalies whatever the household.
CLOSED_WITHOUT_PAYMENT = [CaseState.REJECTED, CaseState.WITHDRAWN]
ELIGIBLE_GRADES = ["C", "D"]


class AnomalyKind:
    """The kinds, in the order the worklist shows them. Codes are stable (API, filters)."""

    NO_KEY_GROUP = "no_key_group"
    GRADE_NOT_C_OR_D = "grade_not_cd"
    REPEAT_CASE = "repeat_case"
    SHARED_ID = "shared_id"
    DOUBLE_BENEFIT = "double_benefit"
    AREA_OVER_RULE = "area_over_rule"
    MISSING_ID = "missing_id"
    DUPLICATE_ID = "duplicate_id"
    PHOTO_FLAGS = "photo_flags"
    OVERDUE = "overdue"

    choices = [
        (NO_KEY_GROUP, gettext_lazy("Household in no key group")),
        (GRADE_NOT_C_OR_D, gettext_lazy("House not C or D at entry")),
        (REPEAT_CASE, gettext_lazy("More than one case for one household")),
        (SHARED_ID, gettext_lazy("Same person in another household's case")),
        (DOUBLE_BENEFIT, gettext_lazy("Double benefit: poverty-relocation housing")),
        (AREA_OVER_RULE, gettext_lazy("Floor area over the rule")),
        (MISSING_ID, gettext_lazy("Missing national ID numbers")),
        (DUPLICATE_ID, gettext_lazy("Duplicate national ID numbers")),
        (PHOTO_FLAGS, gettext_lazy("Photo evidence flags")),
        (OVERDUE, gettext_lazy("Payment overdue")),
    ]
    codes = [code for code, _label in choices]
    labels = dict(choices)


# Roles that audit: they read every case and household in their regions, and change nothing.
@dataclass(frozen=True)
class Anomaly:
    code: str
    label: str
    reason: str
    household: Household
    case: RenovationCase | None
    url: str


@dataclass(frozen=True)
class Worklist:
    anomalies: list[Anomaly]
    counts: dict[str, int] = field(default_factory=dict)  # every kind, before the kind filter


@dataclass(frozen=True)
class _Filters:
    user: object
    region: str | None
    year: int | None


def anomaly_list(*, user, kinds=None, region=None, year=None) -> list[Anomaly]:
    """The anomalies of these kinds (all when None) in the user's regions, under the
    region with code `region`, for cases funded in `year`. Ordered by kind, then household."""
    wanted = _kinds(kinds)
    found = _find(_Filters(user, region or None, year or None), wanted)
    return [anomaly for code in wanted for anomaly in found[code]]


def anomaly_worklist(*, user, kinds=None, region=None, year=None) -> Worklist:
    """The anomalies of these kinds, plus how many there are of every kind (so a page
    filtered to one kind still shows what the others hold)."""
    wanted = _kinds(kinds)
    found = _find(_Filters(user, region or None, year or None), AnomalyKind.codes)
    return Worklist(
        anomalies=[anomaly for code in wanted for anomaly in found[code]],
        counts={code: len(found[code]) for code in AnomalyKind.codes},
    )


def _kinds(kinds) -> list[str]:
    if not kinds:
        return list(AnomalyKind.codes)
    unknown = [k for k in kinds if k not in AnomalyKind.labels]
    if unknown:
        raise ValueError(
            _("Unknown anomaly kind “%(kind)s”; use one of: %(kinds)s.")
            % {"kind": unknown[0], "kinds": ", ".join(AnomalyKind.codes)}
        )
    return [code for code in AnomalyKind.codes if code in kinds]


def _find(filters: _Filters, kinds: list[str]) -> dict[str, list[Anomaly]]:
    finders = {
        AnomalyKind.NO_KEY_GROUP: _no_key_group,
        AnomalyKind.GRADE_NOT_C_OR_D: _grade_not_c_or_d,
        AnomalyKind.REPEAT_CASE: _repeat_case,
        AnomalyKind.SHARED_ID: _shared_id,
        AnomalyKind.DOUBLE_BENEFIT: _double_benefit,
        AnomalyKind.AREA_OVER_RULE: _area_over_rule,
        AnomalyKind.MISSING_ID: _missing_id,
        AnomalyKind.DUPLICATE_ID: _duplicate_id,
        AnomalyKind.PHOTO_FLAGS: _photo_flags,
        AnomalyKind.OVERDUE: _overdue,
    }
    found = {}
    for code in kinds:
        rows = finders[code](filters)
        found[code] = sorted(
            rows, key=lambda a: (a.household.archive_no, a.case.pk if a.case else 0, a.reason)
        )
    return found


# --- the querysets every kind starts from -------------------------------------------------


def _scoped_cases(user) -> QuerySet[RenovationCase]:
    """Every counted case in the user's regions, whatever the filters (the other side of a
    repeat application may be in another year or township)."""
    return scope(
        RenovationCase.objects.exclude(state__in=CLOSED_WITHOUT_PAYMENT), user, CASE_SCOPE
    ).order_by()


def _cases(filters: _Filters) -> QuerySet[RenovationCase]:
    """The counted cases the filters select."""
    qs = _scoped_cases(filters.user)
    if filters.region:
        qs = qs.filter(house__household__village__code__startswith=filters.region)
    if filters.year:
        qs = qs.filter(funding_year=filters.year)
    return qs


def _case_rows(qs: QuerySet[RenovationCase]) -> QuerySet[RenovationCase]:
    return qs.select_related("house__household__village", "entry_appraisal").order_by("id")


def _households(filters: _Filters) -> QuerySet[Household]:
    """The households the filters select, for the kinds about the registry itself."""
    qs = scope(Household.objects.all(), filters.user, HOUSEHOLD_SCOPE)
    if filters.region:
        qs = qs.filter(village__code__startswith=filters.region)
    if filters.year:
        qs = qs.filter(pk__in=_cases(filters).values("house__household"))
    return qs.order_by()


# --- wording ---------------------------------------------------------------------------------


def _household_url(household_id: int) -> str:
    return reverse("portal:household_detail", kwargs={"pk": household_id})


def _case_url(case: RenovationCase) -> str:
    # The case page is built alongside this worklist; until its route exists, the household
    # file (which lists the household's cases) is the next best place to look.
    try:
        return reverse("cases:case_detail", kwargs={"pk": case.pk})
    except NoReverseMatch:
        return _household_url(case.house.household_id)


def _case_anomaly(code: str, case: RenovationCase, reason: str) -> Anomaly:
    return Anomaly(
        code=code,
        label=str(AnomalyKind.labels[code]),
        reason=reason,
        household=case.house.household,
        case=case,
        url=_case_url(case),
    )


def _household_anomaly(code: str, household: Household, reason: str) -> Anomaly:
    return Anomaly(
        code=code,
        label=str(AnomalyKind.labels[code]),
        reason=reason,
        household=household,
        case=None,
        url=_household_url(household.pk),
    )


def _grade(grade: str) -> str:
    return grade or _("none")


def _join(items) -> str:
    # A list inside a sentence; the separator is the reader's (“、” or “，” in Chinese).
    return _(", ").join(items)


# --- the kinds -------------------------------------------------------------------------------


def _no_key_group(filters: _Filters) -> list[Anomaly]:
    rows = _case_rows(_cases(filters).filter(house__household__key_group__isnull=True))
    return [
        _case_anomaly(
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


def _grade_not_c_or_d(filters: _Filters) -> list[Anomaly]:
    rows = _case_rows(
        _cases(filters).filter(
            ~Q(entry_grade__in=ELIGIBLE_GRADES) | ~Q(entry_appraisal__grade__in=ELIGIBLE_GRADES)
        )
    )
    anomalies = []
    for case in rows:
        values = {
            "case": case.pk,
            "grade": _grade(case.entry_grade),
            "appraisal": _grade(case.entry_appraisal.grade),
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
        anomalies.append(_case_anomaly(AnomalyKind.GRADE_NOT_C_OR_D, case, reason))
    return anomalies


def _repeat_case(filters: _Filters) -> list[Anomaly]:
    scoped = _scoped_cases(filters.user)
    repeated = (
        scoped.values("house__household")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values("house__household")
    )
    rows = _case_rows(
        scoped.filter(house__household__in=repeated).filter(
            house__household__in=_cases(filters).values("house__household")
        )
    ).order_by("house__household_id", "funding_year", "id")
    anomalies = []
    for _household_id, group in groupby(rows, key=lambda c: c.house.household_id):
        cases = list(group)
        listed = _join(
            _("case %(case)s (%(year)s)") % {"case": c.pk, "year": c.funding_year} for c in cases
        )
        reason = ngettext(
            "This household has %(n)d case: %(cases)s.",
            "This household has %(n)d cases: %(cases)s.",
            len(cases),
        ) % {"n": len(cases), "cases": listed}
        anomalies.append(_case_anomaly(AnomalyKind.REPEAT_CASE, cases[-1], reason))
    return anomalies


def _double_benefit(filters: _Filters) -> list[Anomaly]:
    rows = _case_rows(_cases(filters).filter(house__household__poverty_relocation=True))
    return [
        _case_anomaly(
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


def _area_over_rule(filters: _Filters) -> list[Anomaly]:
    area = DecimalField(max_digits=10, decimal_places=2)
    # The same limit as rules.area_limits, computed per row: a small household's maximum
    # area, or the per-person maximum times the household size.
    rows = _case_rows(
        _cases(filters)
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
        anomalies.append(_case_anomaly(AnomalyKind.AREA_OVER_RULE, case, reason))
    return anomalies


def _missing_id(filters: _Filters) -> list[Anomaly]:
    # The head usually also has a member row (relation "head"): count it as the head.
    head_row_blank = FamilyMember.objects.filter(
        household=OuterRef("pk"), relation=Relation.HEAD, id_number=""
    )
    rows = (
        _households(filters)
        .select_related("village")
        .annotate(
            members_missing=Count(
                "members", filter=Q(members__id_number="") & ~Q(members__relation=Relation.HEAD)
            ),
            head_row_missing=Exists(head_row_blank),
        )
        .filter(Q(head_id_number="") | Q(head_row_missing=True) | Q(members_missing__gt=0))
        .order_by("archive_no")
    )
    anomalies = []
    for household in rows:
        head_missing = household.head_id_number == "" or household.head_row_missing
        n = household.members_missing
        values = {"name": household.head_name, "n": n}
        if head_missing and n:
            reason = ngettext(
                "The head of household %(name)s and %(n)d family member have no ID number "
                "recorded.",
                "The head of household %(name)s and %(n)d family members have no ID number "
                "recorded.",
                n,
            )
        elif head_missing:
            reason = _("The head of household %(name)s has no ID number recorded.")
        else:
            reason = ngettext(
                "%(n)d family member has no ID number recorded.",
                "%(n)d family members have no ID number recorded.",
                n,
            )
        anomalies.append(_household_anomaly(AnomalyKind.MISSING_ID, household, reason % values))
    return anomalies


@dataclass(frozen=True)
class _Record:
    """One person's record of an ID number: a member row or a household's head."""

    household_id: int
    archive_no: str
    name: str
    is_head: bool = False


def _records_of(id_numbers: set[str], members: QuerySet, heads: QuerySet) -> dict[str, list]:
    """Every record of these ID numbers among `members` and `heads`, by ID number.

    A head's own member row (relation "head", the same number) is the same person as the
    household's head: it is counted once.
    """
    records: dict[str, list[_Record]] = defaultdict(list)
    for row in (
        members.filter(id_number__in=id_numbers)
        .exclude(relation=Relation.HEAD, household__head_id_number=F("id_number"))
        .values("id_number", "household_id", "household__archive_no", "name")
        .order_by("household__archive_no", "id")
    ):
        records[row["id_number"]].append(
            _Record(row["household_id"], row["household__archive_no"], row["name"])
        )
    for row in (
        heads.filter(head_id_number__in=id_numbers)
        .values("head_id_number", "pk", "archive_no", "head_name")
        .order_by("archive_no")
    ):
        records[row["head_id_number"]].append(
            _Record(row["pk"], row["archive_no"], row["head_name"], is_head=True)
        )
    for found in records.values():
        found.sort(key=lambda r: (r.archive_no, not r.is_head, r.name))
    return records


def _flagged_people(members: QuerySet, heads: QuerySet, *, members_in, heads_in, same_household):
    """(household id, ID number) of the records in `members_in`/`heads_in` whose number is
    also recorded for someone else among `members`/`heads`: two EXISTS subqueries a row.

    same_household: whether a second record in the same household counts (a duplicate in
    the registry does; a repeat application is about two households).
    """
    other_member_of_member = members.filter(id_number=OuterRef("id_number")).exclude(
        pk=OuterRef("pk")
    )
    other_head_of_member = heads.filter(head_id_number=OuterRef("id_number")).exclude(
        pk=OuterRef("household_id")
    )
    other_member_of_head = members.filter(id_number=OuterRef("head_id_number")).exclude(
        household=OuterRef("pk")
    )
    other_head_of_head = heads.filter(head_id_number=OuterRef("head_id_number")).exclude(
        pk=OuterRef("pk")
    )
    if same_household:
        # The same number on a member who is not the head, in the head's own household.
        own_head = Q(relation=Relation.HEAD) | ~Q(household__head_id_number=F("id_number"))
        member_dupes = members_in.filter(
            Exists(other_member_of_member) | Exists(other_head_of_member) | ~own_head
        )
    else:
        other_member_of_member = other_member_of_member.exclude(household=OuterRef("household_id"))
        member_dupes = members_in.filter(
            Exists(other_member_of_member) | Exists(other_head_of_member)
        )
    head_dupes = heads_in.filter(Exists(other_member_of_head) | Exists(other_head_of_head))
    pairs = set(member_dupes.values_list("household_id", "id_number"))
    pairs |= set(head_dupes.values_list("pk", "head_id_number"))
    return pairs


def _id_anomalies(code, pairs, records, reason_for) -> list[Anomaly]:
    households = {
        h.pk: h
        for h in Household.objects.select_related("village").filter(
            pk__in={household_id for household_id, _number in pairs}
        )
    }
    anomalies = []
    for household_id, id_number in pairs:
        household = households[household_id]
        reason = reason_for(household, id_number, records.get(id_number, []))
        if reason:
            anomalies.append(_household_anomaly(code, household, reason))
    return anomalies


def _duplicate_id(filters: _Filters) -> list[Anomaly]:
    """The same ID number on two records in the user's regions: two member rows, two heads,
    or a head and a member of another household (or a non-head of the head's household)."""
    members = scope(
        FamilyMember.objects.exclude(id_number=""), filters.user, "household__village__code"
    ).order_by()
    heads = scope(
        Household.objects.exclude(head_id_number=""), filters.user, HOUSEHOLD_SCOPE
    ).order_by()
    selected = _households(filters)
    pairs = _flagged_people(
        members,
        heads,
        members_in=members.filter(household__in=selected),
        heads_in=heads.filter(pk__in=selected),
        same_household=True,
    )
    records = _records_of({number for _household, number in pairs}, members, heads)

    def reason_for(household, id_number, found):
        listed = _join(
            _("%(name)s (household %(archive_no)s)") % {"name": r.name, "archive_no": r.archive_no}
            for r in found
        )
        return ngettext(
            "ID number %(id_number)s is recorded %(n)d time: %(records)s.",
            "ID number %(id_number)s is recorded %(n)d times: %(records)s.",
            len(found),
        ) % {"id_number": idnumbers.mask(id_number), "n": len(found), "records": listed}

    return _id_anomalies(AnomalyKind.DUPLICATE_ID, pairs, records, reason_for)


def _shared_id(filters: _Filters) -> list[Anomaly]:
    """A person recorded in two households that both have a case: the same person applying
    again under a spouse's or child's household, or in another year."""
    cased = _scoped_cases(filters.user).values("house__household")
    members = FamilyMember.objects.filter(household__in=cased).exclude(id_number="").order_by()
    heads = Household.objects.filter(pk__in=cased).exclude(head_id_number="").order_by()
    selected = _cases(filters).values("house__household")
    pairs = _flagged_people(
        members,
        heads,
        members_in=members.filter(household__in=selected),
        heads_in=heads.filter(pk__in=selected),
        same_household=False,
    )
    records = _records_of({number for _household, number in pairs}, members, heads)
    latest = {}
    for case in _case_rows(
        _scoped_cases(filters.user).filter(house__household__in={h for h, _n in pairs})
    ).order_by("house__household_id", "funding_year", "id"):
        latest[case.house.household_id] = case

    def reason_for(household, id_number, found):
        own = [r for r in found if r.household_id == household.pk]
        others = sorted({r.archive_no for r in found if r.household_id != household.pk})
        if not own or not others:
            return None
        return ngettext(
            "%(name)s (ID number %(id_number)s) is also recorded in household %(others)s, "
            "which has a case too.",
            "%(name)s (ID number %(id_number)s) is also recorded in households %(others)s, "
            "which have cases too.",
            len(others),
        ) % {
            "name": own[0].name,
            "id_number": idnumbers.mask(id_number),
            "others": _join(others),
        }

    anomalies = []
    for anomaly in _id_anomalies(AnomalyKind.SHARED_ID, pairs, records, reason_for):
        case = latest.get(anomaly.household.pk)
        if case is not None:
            case.house.household = anomaly.household
            anomaly = _case_anomaly(AnomalyKind.SHARED_ID, case, anomaly.reason)
        anomalies.append(anomaly)
    return anomalies


def _flag_pattern(code: str) -> str:
    # Flags are stored as a JSON list of {"code": ..., ...}; PostgreSQL prints jsonb, and
    # Django writes JSON on SQLite, with ": " after a key, so this text is the same on both.
    return f'"code": "{code}"'


def _photo_flags(filters: _Filters) -> list[Anomaly]:
    cases = _cases(filters)
    counts = {
        flag.value: Count("id", filter=Q(flag_text__contains=_flag_pattern(flag.value)))
        for flag in PhotoFlag
    }
    by_house = {
        row["inspection__house"]: row
        for row in Photo.objects.filter(inspection__house__in=cases.values("house"))
        .alias(flag_text=Cast("flags", TextField()))
        .values("inspection__house")
        .annotate(flagged=Count("id", filter=Q(flag_text__contains='"code": ')), **counts)
        .filter(flagged__gt=0)
        .order_by()
    }
    if not by_house:
        return []
    anomalies = []
    for case in _case_rows(cases.filter(house__in=list(by_house))):
        row = by_house[case.house_id]
        listed = _join(
            _("%(flag)s: %(n)d") % {"flag": flag.label, "n": row[flag.value]}
            for flag in PhotoFlag
            if row[flag.value]
        )
        reason = ngettext(
            "Case %(case)s: %(n)d photo of the house is flagged (%(flags)s).",
            "Case %(case)s: %(n)d photos of the house are flagged (%(flags)s).",
            row["flagged"],
        ) % {"case": case.pk, "n": row["flagged"], "flags": listed}
        anomalies.append(_case_anomaly(AnomalyKind.PHOTO_FLAGS, case, reason))
    return anomalies


def _overdue(filters: _Filters, today: datetime.date | None = None) -> list[Anomaly]:
    rows = _case_rows(overdue_cases(_cases(filters), today=today))
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
        anomalies.append(_case_anomaly(AnomalyKind.OVERDUE, case, reason))
    return anomalies


__all__ = [
    "Anomaly",
    "AnomalyKind",
    "Worklist",
    "anomaly_list",
    "anomaly_worklist",
]
