"""The auditor's worklist selector: each anomaly found on planted data, none on clean data,
scoped to the user's regions, filtered, and at a fixed number of queries."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role, User
from audit.anomalies import Anomaly, AnomalyKind, anomaly_list, anomaly_worklist
from audit.permissions import can_view_worklist
from housing import idnumbers
from housing.models import Relation
from inspections.models import PhotoFlag
from renovation.models import AreaRule, CaseState
from tests.factories import FamilyMemberFactory, HouseFactory, HouseholdFactory
from tests.inspections.factories import AppraisalFactory, InspectionFactory, PhotoFactory
from tests.renovation.factories import CaseFactory

pytestmark = pytest.mark.django_db


def clean_household(village, *, members=1, **household_fields):
    """A household in a key group with every ID number recorded, its head also a member row
    (as imports and the demo record it), and a current house graded D."""
    household = HouseholdFactory(village=village, **household_fields)
    FamilyMemberFactory(
        household=household,
        relation=Relation.HEAD,
        name=household.head_name,
        id_number=household.head_id_number,
    )
    for _ in range(members):
        FamilyMemberFactory(household=household, relation=Relation.SPOUSE)
    HouseFactory(household=household, safety_grade="D")
    return household


def clean_case(household, **fields):
    """An eligible case: grade D at entry, 50 m² for 2 people (the limit is 60)."""
    fields.setdefault("household_size", 2)
    return CaseFactory(house=household.houses.get(is_current=True), **fields)


def url_of(household):
    return f"/households/{household.pk}/"


@pytest.fixture
def auditor(make_user, regions):
    return make_user(Role.AUDITOR, [regions["county"]], username="auditor")


@pytest.fixture
def clean(regions):
    """Two clean households with a case each, one per township."""
    h1 = clean_household(regions["village1"])
    h2 = clean_household(regions["village2"])
    return {"h1": h1, "h2": h2, "c1": clean_case(h1), "c2": clean_case(h2)}


def only(anomalies: list[Anomaly], code: str) -> list[tuple]:
    return [
        (a.household.archive_no, a.case.pk if a.case else None, a.reason, a.url)
        for a in anomalies
        if a.code == code
    ]


# --- clean data -------------------------------------------------------------------------------


def test_clean_data_has_no_anomalies_of_any_kind(clean, auditor):
    worklist = anomaly_worklist(user=auditor)

    assert worklist.anomalies == []
    assert worklist.counts == dict.fromkeys(AnomalyKind.values, 0)


def test_rejected_and_withdrawn_cases_are_not_anomalies(clean, auditor):
    household = clean["h1"]
    household.key_group = None
    household.poverty_relocation = True
    household.save()
    clean["c1"].state = CaseState.REJECTED
    clean["c1"].save()
    clean_case(household, state=CaseState.WITHDRAWN)

    assert anomaly_list(user=auditor) == []


# --- each kind ----------------------------------------------------------------------------------


def test_a_case_for_a_household_in_no_key_group(clean, auditor):
    household = clean["h1"]
    household.key_group = None
    household.save()
    case = clean["c1"]

    anomalies = anomaly_list(user=auditor)

    assert [a.code for a in anomalies] == ["no_key_group"]
    anomaly = anomalies[0]
    assert anomaly.label == "Household in no key group"
    assert anomaly.household == household
    assert anomaly.case == case
    assert anomaly.reason == (
        f"Case {case.pk} (funding year 2026) is for a household in no key group; "
        "only households of a certified key group qualify."
    )
    # The case page when it exists, else the household file.
    assert anomaly.url in (f"/cases/{case.pk}/", url_of(household))


def test_a_household_in_no_key_group_without_a_case_is_not_an_anomaly(clean, auditor, regions):
    clean_household(regions["village1"], key_group=None)

    assert anomaly_list(user=auditor) == []


def test_a_house_not_c_or_d_at_entry(clean, auditor, regions):
    b_entry = clean_case(
        clean_household(regions["village1"]),
        entry_grade="B",
        entry_appraisal=AppraisalFactory(grade="B", derived_grade="B"),
    )
    appraised_b = clean_case(
        clean_household(regions["village1"]),
        entry_grade="D",
        entry_appraisal=AppraisalFactory(grade="B", derived_grade="B"),
    )

    found = {a.case.pk: a.reason for a in anomaly_list(user=auditor, kinds=["grade_not_cd"])}

    assert found == {
        b_entry.pk: f"Case {b_entry.pk} entered with grade B; only C or D qualify.",
        appraised_b.pk: (
            f"Case {appraised_b.pk} records grade D at entry, and its entry appraisal graded "
            "the house B; only C or D qualify."
        ),
    }


def test_more_than_one_case_for_one_household_across_years(clean, auditor):
    household = clean["h1"]
    first = clean["c1"]
    first.funding_year = 2024
    first.state = CaseState.PAID
    first.save()
    clean_case(household, funding_year=2025, state=CaseState.REJECTED)  # not counted
    second = clean_case(household, funding_year=2026)

    anomalies = anomaly_list(user=auditor)

    assert only(anomalies, "repeat_case") == [
        (
            household.archive_no,
            second.pk,
            f"This household has 2 cases: case {first.pk} (2024), case {second.pk} (2026).",
            anomalies[0].url,
        )
    ]
    assert [a.code for a in anomalies] == ["repeat_case"]


def test_a_spouse_applying_again_from_another_household(clean, auditor, regions):
    # The wife of household 1 heads household 2 in a later year and applies again.
    spouse = clean["h1"].members.get(relation=Relation.SPOUSE)
    household2 = clean_household(
        regions["village2"], head_name=spouse.name, head_id_number=spouse.id_number
    )
    case2 = clean_case(household2, funding_year=2027)
    masked = idnumbers.mask(spouse.id_number)

    anomalies = anomaly_list(user=auditor, kinds=["shared_id"])

    assert only(anomalies, "shared_id") == sorted(
        [
            (
                clean["h1"].archive_no,
                clean["c1"].pk,
                f"{spouse.name} (ID number {masked}) is also recorded in household "
                f"{household2.archive_no}, which has a case too.",
                anomalies[0].url,
            ),
            (
                household2.archive_no,
                case2.pk,
                f"{spouse.name} (ID number {masked}) is also recorded in household "
                f"{clean['h1'].archive_no}, which has a case too.",
                anomalies[1].url,
            ),
        ]
    )
    # The same number in two households is also a duplicate in the registry.
    assert [a.household for a in anomaly_list(user=auditor, kinds=["duplicate_id"])] == [
        clean["h1"],
        household2,
    ]


def test_a_shared_id_number_is_not_a_repeat_application_when_one_household_has_no_case(
    clean, auditor, regions
):
    spouse = clean["h1"].members.get(relation=Relation.SPOUSE)
    clean_household(regions["village2"], head_name=spouse.name, head_id_number=spouse.id_number)

    assert anomaly_list(user=auditor, kinds=["shared_id"]) == []


def test_double_benefit_with_poverty_relocation_housing(clean, auditor):
    household = clean["h2"]
    household.poverty_relocation = True
    household.save()

    assert only(anomaly_list(user=auditor), "double_benefit") == [
        (
            household.archive_no,
            clean["c2"].pk,
            "The household also received poverty-relocation housing, and case "
            f"{clean['c2'].pk} (funding year 2026) grants a renovation subsidy of 20,000 yuan.",
            anomaly_list(user=auditor)[0].url,
        )
    ]


def test_floor_area_over_the_rule_in_effect_in_the_funding_year(clean, auditor, regions):
    one_person = clean_case(
        clean_household(regions["village1"]), household_size=1, planned_floor_area="72"
    )
    four_people = clean_case(
        clean_household(regions["village1"]), household_size=4, planned_floor_area="80.50"
    )
    at_limit = clean_case(
        clean_household(regions["village1"]), household_size=4, planned_floor_area="72"
    )
    # From 2027 the county allows 80 m² to small households: 72 m² is fine then.
    AreaRule.objects.create(effective_year=2027, small_household_max_area=80)
    clean_case(
        clean_household(regions["village1"]),
        household_size=1,
        planned_floor_area="72",
        funding_year=2027,
    )

    found = {a.case.pk: a.reason for a in anomaly_list(user=auditor, kinds=["area_over_rule"])}

    assert at_limit.pk not in found
    assert found == {
        one_person.pk: f"Case {one_person.pk} (funding year 2026): "
        "72 m² for 1 person is above 60 m².",
        four_people.pk: f"Case {four_people.pk} (funding year 2026): "
        "80.5 m² for 4 people is above 72 m² (18 m² a person).",
    }


def test_missing_id_numbers_of_the_head_and_of_members(clean, auditor, regions):
    no_head = clean_household(regions["village1"], head_id_number="")
    no_head.members.filter(relation=Relation.HEAD).update(id_number="")
    two_members = clean_household(regions["village1"], members=3)
    two_members.members.filter(relation=Relation.SPOUSE)[:1].get()  # members exist
    ids = list(two_members.members.filter(relation=Relation.SPOUSE).values_list("pk", flat=True))
    two_members.members.filter(pk__in=ids[:2]).update(id_number="")
    both = clean_household(regions["village2"], head_id_number="")
    both.members.exclude(relation=Relation.HEAD).update(id_number="")

    found = {
        a.household.pk: (a.reason, a.case, a.url)
        for a in anomaly_list(user=auditor, kinds=["missing_id"])
    }

    assert found == {
        no_head.pk: (
            f"The head of household {no_head.head_name} has no ID number recorded.",
            None,
            url_of(no_head),
        ),
        two_members.pk: ("2 family members have no ID number recorded.", None, url_of(two_members)),
        both.pk: (
            f"The head of household {both.head_name} and 1 family member have no ID number "
            "recorded.",
            None,
            url_of(both),
        ),
    }


def test_duplicate_id_numbers_across_households_and_within_one(clean, auditor, regions):
    # A member recorded in two households (no case in either: still a registry error).
    first = clean_household(regions["village1"])
    member = first.members.get(relation=Relation.SPOUSE)
    second = clean_household(regions["village2"])
    second.members.filter(relation=Relation.SPOUSE).update(id_number=member.id_number)
    copy = second.members.get(relation=Relation.SPOUSE)
    # A child given the head's own number in the head's household.
    third = clean_household(regions["village1"])
    child = FamilyMemberFactory(
        household=third, relation=Relation.CHILD, id_number=third.head_id_number, name="小明"
    )

    found = {a.household.pk: a.reason for a in anomaly_list(user=auditor, kinds=["duplicate_id"])}

    both = (
        f"ID number {idnumbers.mask(member.id_number)} is recorded 2 times: "
        f"{member.name} (household {first.archive_no}), {copy.name} (household "
        f"{second.archive_no})."
    )
    assert found == {
        first.pk: both,
        second.pk: both,
        third.pk: (
            f"ID number {idnumbers.mask(third.head_id_number)} is recorded 2 times: "
            f"{third.head_name} (household {third.archive_no}), {child.name} (household "
            f"{third.archive_no})."
        ),
    }


def test_photo_evidence_flags_rolled_up_per_case(clean, auditor):
    case = clean["c1"]
    inspection = InspectionFactory(house=case.house)
    PhotoFactory(inspection=inspection, flags=[{"code": "no_gps", "detail": ""}])
    PhotoFactory(
        inspection=inspection,
        flags=[
            {"code": "far_from_house", "detail": "812 m", "params": {"metres": 812}},
            {"code": "near_duplicate_other", "detail": "HH1"},
            {"code": "near_duplicate_other", "detail": "HH2"},
        ],
    )
    PhotoFactory(inspection=inspection, flags=[{"code": "far_from_house", "detail": "640 m"}])
    PhotoFactory(inspection=inspection, flags=[])  # a clean photo is not counted
    # Photos of another house do not count for this case.
    PhotoFactory(
        inspection=InspectionFactory(house=clean["c2"].house),
        flags=[{"code": "duplicate", "detail": ""}],
    )
    clean["c2"].state = CaseState.WITHDRAWN
    clean["c2"].save()

    assert only(anomaly_list(user=auditor), "photo_flags") == [
        (
            clean["h1"].archive_no,
            case.pk,
            f"Case {case.pk}: 3 photos of the house are flagged (No GPS position in the photo: "
            "1, Taken far from the house: 2, Looks like a photo of another household: 1).",
            anomaly_list(user=auditor)[0].url,
        )
    ]
    assert {flag.value for flag in PhotoFlag} >= {"no_gps", "far_from_house"}


def test_overdue_payment(clean, auditor):
    passed = timezone.now() - datetime.timedelta(days=40)
    case = clean["c1"]
    case.state = CaseState.COMPLETION_PASSED
    case.completion_passed_at = passed
    case.paid_total = Decimal("5000")
    case.save()
    # Passed 10 days ago: not yet due.
    clean["c2"].state = CaseState.COMPLETION_PASSED
    clean["c2"].completion_passed_at = timezone.now() - datetime.timedelta(days=10)
    clean["c2"].save()
    local = timezone.localtime(passed).date()

    assert only(anomaly_list(user=auditor), "overdue") == [
        (
            clean["h1"].archive_no,
            case.pk,
            f"The completion check of case {case.pk} passed on {local.isoformat()}; 5,000 of "
            "20,000 yuan has been paid, and the subsidy was due by "
            f"{(local + datetime.timedelta(days=30)).isoformat()}.",
            anomaly_list(user=auditor)[0].url,
        )
    ]


# --- scoping, filters, counts -------------------------------------------------------------------


@pytest.fixture
def planted(clean, regions):
    """One household in no key group per township, and a double benefit in township 2."""
    for key in ("h1", "h2"):
        clean[key].key_group = None
        clean[key].save()
    clean["h2"].poverty_relocation = True
    clean["h2"].save()
    later = clean_household(regions["village2"], key_group=None)
    clean["c3"] = clean_case(later, funding_year=2027)
    clean["h3"] = later
    return clean


def test_another_regions_anomalies_are_invisible(planted, make_user, regions):
    township2_auditor = make_user(Role.AUDITOR, [regions["township2"]])
    village1_auditor = make_user(Role.AUDITOR, [regions["village1"]])
    nowhere = make_user(Role.AUDITOR, [])

    assert {a.household for a in anomaly_list(user=township2_auditor)} == {
        planted["h2"],
        planted["h3"],
    }
    assert [a.household for a in anomaly_list(user=village1_auditor)] == [planted["h1"]]
    assert anomaly_list(user=nowhere) == []


def test_a_duplicate_id_outside_the_users_regions_is_not_named(clean, make_user, regions):
    member = clean["h1"].members.get(relation=Relation.SPOUSE)
    clean["h2"].members.filter(relation=Relation.SPOUSE).update(id_number=member.id_number)
    township1_auditor = make_user(Role.AUDITOR, [regions["township1"]])

    assert anomaly_list(user=township1_auditor) == []


def test_filters_by_kind_region_and_year_and_counts_every_kind(planted, auditor):
    everything = anomaly_worklist(user=auditor)
    by_kind = anomaly_worklist(user=auditor, kinds=["double_benefit"])
    township2 = anomaly_worklist(user=auditor, region="520399101")
    in_2027 = anomaly_worklist(user=auditor, year=2027)

    assert [(a.code, a.household) for a in everything.anomalies] == [
        ("no_key_group", planted["h1"]),
        ("no_key_group", planted["h2"]),
        ("no_key_group", planted["h3"]),
        ("double_benefit", planted["h2"]),
    ]
    assert everything.counts == {
        **dict.fromkeys(AnomalyKind.values, 0),
        "no_key_group": 3,
        "double_benefit": 1,
    }
    assert [(a.code, a.household) for a in by_kind.anomalies] == [("double_benefit", planted["h2"])]
    assert by_kind.counts == everything.counts
    assert [a.household for a in township2.anomalies] == [
        planted["h2"],
        planted["h3"],
        planted["h2"],
    ]
    assert [a.case for a in in_2027.anomalies] == [planted["c3"]]
    assert in_2027.counts["no_key_group"] == 1


def test_an_unknown_kind_is_refused_with_the_kinds_there_are(auditor):
    with pytest.raises(ValueError, match="Unknown anomaly kind “bogus”; use one of: no_key_group"):
        anomaly_list(user=auditor, kinds=["bogus"])


def test_who_may_view_the_worklist(make_user, administrator, county_official, township_official):
    assert can_view_worklist(make_user(Role.AUDITOR)) is True
    assert can_view_worklist(county_official) is True
    assert can_view_worklist(administrator) is True
    assert can_view_worklist(township_official) is False
    assert can_view_worklist(make_user(Role.INSPECTOR)) is False


def plant_every_kind(village, n: int, year: int = 2026):
    """n households with every kind of anomaly at once."""
    for i in range(n):
        household = clean_household(village, key_group=None, poverty_relocation=True)
        household.members.filter(relation=Relation.SPOUSE).update(id_number="")
        case = clean_case(
            household,
            funding_year=year,
            entry_grade="B",
            household_size=1,
            planned_floor_area="90",
            state=CaseState.COMPLETION_PASSED,
            completion_passed_at=timezone.now() - datetime.timedelta(days=60),
        )
        clean_case(household, funding_year=year - 1, state=CaseState.PAID)
        PhotoFactory(
            inspection=InspectionFactory(house=case.house),
            flags=[{"code": "no_gps", "detail": ""}],
        )
        other = clean_household(village)
        shared = idnumbers.make("520399", datetime.date(1950, 1, 1) + datetime.timedelta(i), 7)
        other.members.filter(relation=Relation.SPOUSE).update(id_number=shared)
        clean_case(other, funding_year=year)
        FamilyMemberFactory(household=household, id_number=shared)


def test_the_number_of_queries_does_not_grow_with_the_cases(auditor, regions):
    plant_every_kind(regions["village1"], 1)
    with CaptureQueriesContext(connection) as few:
        small = anomaly_worklist(user=User.objects.get(pk=auditor.pk))
    plant_every_kind(regions["village1"], 4)
    with CaptureQueriesContext(connection) as many:
        large = anomaly_worklist(user=User.objects.get(pk=auditor.pk))

    assert {code for code, n in small.counts.items() if n} == set(AnomalyKind.values)
    assert large.counts["overdue"] == 5
    assert len(many.captured_queries) == len(few.captured_queries)
