"""Anomalies found in the people: missing, duplicate and shared national ID numbers."""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import (
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
)
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.scoping import scope
from audit.anomalies.base import (
    HOUSEHOLD_SCOPE,
    Anomaly,
    AnomalyKind,
    Filters,
    case_anomaly,
    case_rows,
    cases_of,
    household_anomaly,
    households_of,
    join,
    scoped_cases,
)
from housing import idnumbers
from housing.models import FamilyMember, Household, Relation


def missing_id(filters: Filters) -> list[Anomaly]:
    # The head usually also has a member row (relation "head"): count it as the head.
    head_row_blank = FamilyMember.objects.filter(
        household=OuterRef("pk"), relation=Relation.HEAD, id_number=""
    )
    rows = (
        households_of(filters)
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
        anomalies.append(household_anomaly(AnomalyKind.MISSING_ID, household, reason % values))
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
            anomalies.append(household_anomaly(code, household, reason))
    return anomalies


def duplicate_id(filters: Filters) -> list[Anomaly]:
    """The same ID number on two records in the user's regions: two member rows, two heads,
    or a head and a member of another household (or a non-head of the head's household)."""
    members = scope(
        FamilyMember.objects.exclude(id_number=""), filters.user, "household__village__code"
    ).order_by()
    heads = scope(
        Household.objects.exclude(head_id_number=""), filters.user, HOUSEHOLD_SCOPE
    ).order_by()
    selected = households_of(filters)
    pairs = _flagged_people(
        members,
        heads,
        members_in=members.filter(household__in=selected),
        heads_in=heads.filter(pk__in=selected),
        same_household=True,
    )
    records = _records_of({number for _household, number in pairs}, members, heads)

    def reason_for(household, id_number, found):
        listed = join(
            _("%(name)s (household %(archive_no)s)") % {"name": r.name, "archive_no": r.archive_no}
            for r in found
        )
        return ngettext(
            "ID number %(id_number)s is recorded %(n)d time: %(records)s.",
            "ID number %(id_number)s is recorded %(n)d times: %(records)s.",
            len(found),
        ) % {"id_number": idnumbers.mask(id_number), "n": len(found), "records": listed}

    return _id_anomalies(AnomalyKind.DUPLICATE_ID, pairs, records, reason_for)


def shared_id(filters: Filters) -> list[Anomaly]:
    """A person recorded in two households that both have a case: the same person applying
    again under a spouse's or child's household, or in another year."""
    cased = scoped_cases(filters.user).values("house__household")
    members = FamilyMember.objects.filter(household__in=cased).exclude(id_number="").order_by()
    heads = Household.objects.filter(pk__in=cased).exclude(head_id_number="").order_by()
    selected = cases_of(filters).values("house__household")
    pairs = _flagged_people(
        members,
        heads,
        members_in=members.filter(household__in=selected),
        heads_in=heads.filter(pk__in=selected),
        same_household=False,
    )
    records = _records_of({number for _household, number in pairs}, members, heads)
    latest = {}
    for case in case_rows(
        scoped_cases(filters.user).filter(house__household__in={h for h, _n in pairs})
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
            "others": join(others),
        }

    anomalies = []
    for anomaly in _id_anomalies(AnomalyKind.SHARED_ID, pairs, records, reason_for):
        case = latest.get(anomaly.household.pk)
        if case is not None:
            case.house.household = anomaly.household
            anomaly = case_anomaly(AnomalyKind.SHARED_ID, case, anomaly.reason)
        anomalies.append(anomaly)
    return anomalies
