"""inspection_submit: validation, permissions, idempotency, the house's grade."""

import datetime
import threading
import uuid

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.http import Http404
from django.utils import timezone

from accounts.models import Role
from housing.models import House
from inspections.errors import IdempotencyConflict, InspectionInvalid, InspectionRefused
from inspections.models import Appraisal, AppraisalRule, Inspection
from inspections.services import inspection_submit
from tests.factories import HouseholdFactory
from tests.inspections.factories import SOUND

CST = datetime.timezone(datetime.timedelta(hours=8))


@pytest.fixture
def inspector(make_user, regions):
    return make_user(Role.INSPECTOR, [regions["township1"]], username="inspector1")


@pytest.fixture
def household(households):
    return households["village1"]


def visit(hours_ago=2, **changes):
    """A record as a phone sends it: a one-hour visit `hours_ago` hours ago, Beijing time."""
    started = (timezone.now() - datetime.timedelta(hours=hours_ago)).astimezone(CST)
    record = {
        "client_uuid": uuid.uuid4(),
        "kind": "appraisal",
        "started_at": started,
        "ended_at": started + datetime.timedelta(hours=1),
        "location": (107.9051, 27.2052),
        "accuracy": 12.0,
        "notes": "west wall cracked",
        "appraisal": {**SOUND, "load_bearing_walls": "damaged"},
    }
    record.update(changes)
    return record


def submit(user, household, record):
    return inspection_submit(user=user, household=household, **record)


def errors_of(excinfo):
    return excinfo.value.errors


def test_an_appraisal_is_stored_with_its_derived_grade_and_sets_the_house_grade(
    inspector, household
):
    record = visit(appraisal={**SOUND, "roof_structure": "dangerous", "site_hazards": []})

    inspection, created = submit(inspector, household.pk, record)

    assert created is True
    inspection.refresh_from_db()
    assert inspection.client_uuid == record["client_uuid"]
    assert inspection.house == household.houses.get(is_current=True)
    assert inspection.inspector == inspector
    assert inspection.submitted_location.coords == (107.9051, 27.2052)
    assert inspection.submitted_accuracy == 12.0
    assert inspection.notes == "west wall cracked"
    assert len(inspection.payload_digest) == 64
    appraisal = inspection.appraisal
    assert (appraisal.derived_grade, appraisal.grade, appraisal.override_reason) == ("C", "C", "")
    assert appraisal.rule_version == "default-2026"
    assert appraisal.roof_structure == "dangerous"
    assert House.objects.get(household=household).safety_grade == "C"


def test_a_replay_of_the_same_record_returns_the_stored_one_and_stores_nothing(
    inspector, household
):
    record = visit()
    first, _ = submit(inspector, household, record)
    # The same instants written in UTC are the same record.
    replay = {
        **record,
        "started_at": record["started_at"].astimezone(datetime.UTC),
        "ended_at": record["ended_at"].astimezone(datetime.UTC),
    }

    again, created = submit(inspector, household, replay)

    assert created is False
    assert again.pk == first.pk
    assert Inspection.objects.count() == 1
    assert Appraisal.objects.count() == 1


def test_the_same_uuid_with_other_content_is_a_conflict_and_changes_nothing(inspector, household):
    record = visit()
    submit(inspector, household, record)

    with pytest.raises(IdempotencyConflict) as excinfo:
        submit(inspector, household, {**record, "notes": "another text"})

    assert str(excinfo.value.message) == (
        f"Inspection {record['client_uuid']} was already received with different content; "
        "a new record needs a new UUID."
    )
    assert Inspection.objects.get().notes == "west wall cracked"
    assert House.objects.get(household=household).safety_grade == "B"


def test_an_older_appraisal_arriving_late_does_not_overwrite_a_newer_grade(inspector, household):
    submit(inspector, household, visit(hours_ago=2, appraisal={**SOUND}))  # today: A
    # Yesterday's visit, queued offline on a phone, arrives after today's.
    submit(
        inspector,
        household,
        visit(hours_ago=26, appraisal={**SOUND, "foundation": "dangerous"}),
    )

    assert House.objects.get(household=household).safety_grade == "A"
    submit(inspector, household, visit(hours_ago=1, appraisal={**SOUND, "envelope": "damaged"}))
    assert House.objects.get(household=household).safety_grade == "B"


def test_a_completion_check_with_an_appraisal_sets_the_grade_and_progress_leaves_it(
    inspector, household
):
    submit(inspector, household, visit(kind="progress", appraisal=None))
    assert House.objects.get(household=household).safety_grade == "C"  # the factory's

    submit(inspector, household, visit(hours_ago=1, kind="completion", appraisal={**SOUND}))

    assert House.objects.get(household=household).safety_grade == "A"


def test_a_completion_check_may_come_without_an_appraisal(inspector, household):
    inspection, created = submit(inspector, household, visit(kind="completion", appraisal=None))

    assert created is True
    assert not Appraisal.objects.filter(inspection=inspection).exists()


def test_an_override_needs_a_reason(inspector, household):
    with pytest.raises(InspectionInvalid) as excinfo:
        submit(inspector, household, visit(appraisal={**SOUND, "grade": "C"}))

    assert errors_of(excinfo) == {
        "appraisal": {"override_reason": ["The rule gives grade A; write why you give C instead."]}
    }
    assert Inspection.objects.count() == 0


def test_an_override_with_a_reason_is_kept_beside_the_derived_grade(inspector, household):
    appraisal = {**SOUND, "grade": "C", "override_reason": "  Rotten purlins under the tiles. "}

    inspection, _ = submit(inspector, household, visit(appraisal=appraisal))

    stored = Appraisal.objects.get(inspection=inspection)
    assert (stored.derived_grade, stored.grade) == ("A", "C")
    assert stored.override_reason == "Rotten purlins under the tiles."
    assert House.objects.get(household=household).safety_grade == "C"


def test_a_grade_equal_to_the_derived_one_needs_no_reason(inspector, household):
    inspection, _ = submit(inspector, household, visit(appraisal={**SOUND, "grade": "A"}))

    assert Appraisal.objects.get(inspection=inspection).grade == "A"


def test_the_rule_from_the_database_grades_and_is_named_on_the_appraisal(inspector, household):
    AppraisalRule.objects.create(name="county-2027", d_members=["envelope"])

    inspection, _ = submit(
        inspector, household, visit(appraisal={**SOUND, "envelope": "dangerous"})
    )

    appraisal = Appraisal.objects.get(inspection=inspection)
    assert (appraisal.grade, appraisal.rule_version) == ("D", "county-2027")


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"kind": "survey"},
            {
                "kind": [
                    "“survey” is not an inspection kind; use one of: appraisal, progress, "
                    "completion."
                ]
            },
        ),
        (
            {"started_at": datetime.datetime(2026, 4, 1, 9, 30)},
            {
                "started_at": [
                    "The time needs a UTC offset (e.g. +08:00), or a phone's clock cannot be "
                    "trusted."
                ]
            },
        ),
        (
            {"ended_at": timezone.now() - datetime.timedelta(days=1)},
            {"ended_at": ["The visit cannot end before it starts."]},
        ),
        (
            {"ended_at": timezone.now() + datetime.timedelta(minutes=30)},
            {"ended_at": ["The time is in the future; check the phone's clock."]},
        ),
        (
            {"location": (190.0, 27.0)},
            {
                "location": [
                    "Longitude must be within -180..180 and latitude within -90..90 (WGS84)."
                ]
            },
        ),
        (
            {"client_uuid": "not-a-uuid"},
            {"client_uuid": ["A UUID is required, e.g. 0b9a6f0e-4a8e-4b7e-9d55-2f7c1e0d8a11."]},
        ),
        (
            {"appraisal": None},
            {"appraisal": ["A safety appraisal needs the ratings of the house."]},
        ),
        (
            {"kind": "progress"},
            {"appraisal": ["A works-progress visit does not record an appraisal."]},
        ),
        (
            {"appraisal": {**SOUND, "foundation": ""}},
            {"appraisal": {"foundation": ["Rate the Foundation."]}},
        ),
        (
            {"appraisal": {**SOUND, "envelope": "cracked"}},
            {
                "appraisal": {
                    "envelope": [
                        "“cracked” is not a rating; use one of: sound, damaged, dangerous, "
                        "not_present."
                    ]
                }
            },
        ),
        (
            {"appraisal": {**SOUND, "site_hazards": ["flood", "volcano"]}},
            {
                "appraisal": {
                    "site_hazards": [
                        "Unknown site hazard(s): volcano; use: landslide, flood, rockfall, "
                        "subsidence."
                    ]
                }
            },
        ),
    ],
)
def test_an_invalid_record_names_the_field_and_stores_nothing(
    inspector, household, changes, errors
):
    with pytest.raises(InspectionInvalid) as excinfo:
        submit(inspector, household, visit(**changes))

    assert errors_of(excinfo) == errors
    assert Inspection.objects.count() == 0


def test_a_clock_a_few_minutes_ahead_is_tolerated(inspector, household):
    ahead = timezone.now() + datetime.timedelta(minutes=5)

    _inspection, created = submit(inspector, household, visit(ended_at=ahead))

    assert created is True


def test_an_auditor_may_not_record_an_inspection(make_user, regions, household):
    auditor = make_user(Role.AUDITOR, [regions["county"]])

    with pytest.raises(InspectionRefused) as excinfo:
        submit(auditor, household, visit())

    assert str(excinfo.value.message) == "Your role may not record inspections."
    assert Inspection.objects.count() == 0


def test_a_household_outside_the_users_regions_is_not_found(inspector, households):
    with pytest.raises(Http404):
        submit(inspector, households["village2"], visit())
    with pytest.raises(Http404):
        submit(inspector, households["village2"].pk, visit())

    assert Inspection.objects.count() == 0


def test_a_household_without_a_current_house_is_a_clear_error(inspector, regions):
    homeless = HouseholdFactory(village=regions["village1"], archive_no="QS-0009")

    with pytest.raises(InspectionInvalid) as excinfo:
        submit(inspector, homeless, visit())

    assert errors_of(excinfo) == {
        "household": [
            "Household QS-0009 has no current house to inspect; record its house in the "
            "registry first."
        ]
    }


@pytest.mark.postgis_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_of_one_record_create_exactly_one_row(inspector, household):
    record = visit()
    barrier = threading.Barrier(2)
    results, failures = [], []

    def send():
        try:
            barrier.wait(timeout=10)
            results.append(submit(inspector, household.pk, record))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failures == []
    assert Inspection.objects.filter(client_uuid=record["client_uuid"]).count() == 1
    stored = Inspection.objects.get(client_uuid=record["client_uuid"])
    assert sorted(created for _i, created in results) == [False, True]
    assert {inspection.pk for inspection, _c in results} == {stored.pk}
    assert Appraisal.objects.filter(inspection=stored).count() == 1


def test_location_may_be_a_point(inspector, household):
    inspection, _ = submit(
        inspector, household, visit(location=Point(107.9, 27.2, srid=4326), accuracy=None)
    )

    assert inspection.submitted_location.coords == (107.9, 27.2)
    assert inspection.submitted_accuracy is None


def test_a_replay_after_the_rule_changed_returns_the_original(inspector, household):
    record = visit(appraisal={**SOUND, "envelope": "dangerous", "grade": "C"})
    first, _ = submit(inspector, household, record)
    # The envelope now makes a house D: the replayed override would need a reason today.
    AppraisalRule.objects.create(name="county-2027", d_members=["envelope"])

    again, created = submit(inspector, household, record)

    assert (again.pk, created) == (first.pk, False)
    assert Appraisal.objects.get().rule_version == "default-2026"
