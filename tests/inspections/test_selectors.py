"""Reads of inspections and photos: scoping, the household's evidence, query counts."""

import datetime
import importlib

import pytest
from django.apps import apps
from django.http import Http404
from django.utils import timezone

from accounts.models import Role
from housing.selectors import household_get
from inspections.models import Photo
from inspections.selectors import (
    household_evidence,
    inspection_get_by_client_uuid,
    inspection_list,
    photo_list,
    required_slots,
)
from tests.factories import HouseFactory
from tests.inspections.factories import AppraisalFactory, InspectionFactory, PhotoFactory

default_configuration = importlib.import_module("inspections.migrations.0002_default_configuration")


@pytest.fixture
def slots(db):
    """The default rule and required slots, as migration 0002 makes them."""
    default_configuration.add(apps, None)


@pytest.fixture
def inspector(make_user, regions):
    return make_user(Role.INSPECTOR, [regions["township1"]], username="inspector1")


def days_ago(n):
    return timezone.now() - datetime.timedelta(days=n)


def visit(house, inspector, days, kind="appraisal"):
    return InspectionFactory(
        house=house,
        inspector=inspector,
        kind=kind,
        started_at=days_ago(days),
        ended_at=days_ago(days) + datetime.timedelta(hours=1),
    )


@pytest.fixture
def records(households, inspector, make_user, regions):
    """Two visits to the house in village 1 (an old appraisal, a newer completion check)
    and one to the house in village 2."""
    house1 = households["village1"].houses.get()
    house2 = households["village2"].houses.get()
    other = make_user(Role.INSPECTOR, [regions["township2"]])
    old = visit(house1, inspector, days=30)
    AppraisalFactory(inspection=old, grade="D", derived_grade="D", foundation="dangerous")
    new = visit(house1, inspector, days=1, kind="completion")
    far = visit(house2, other, days=2)
    return {"old": old, "new": new, "far": far}


def test_inspection_list_is_scoped_and_newest_first(inspector, administrator, records):
    assert list(inspection_list(user=inspector)) == [records["new"], records["old"]]
    assert list(inspection_list(user=administrator)) == [
        records["new"],
        records["far"],
        records["old"],
    ]
    village2 = records["far"].house.household_id
    assert list(inspection_list(user=administrator, household_id=village2)) == [records["far"]]
    assert list(inspection_list(user=inspector, household_id=village2)) == []


def test_an_inspection_outside_the_users_regions_is_not_found(inspector, records):
    found = inspection_get_by_client_uuid(user=inspector, client_uuid=records["old"].client_uuid)

    assert found == records["old"]
    assert found.appraisal.grade == "D"
    with pytest.raises(Http404):
        inspection_get_by_client_uuid(user=inspector, client_uuid=records["far"].client_uuid)


def test_photo_list_is_scoped_and_filtered(inspector, records):
    mine = PhotoFactory(inspection=records["old"])
    PhotoFactory(inspection=records["far"])

    assert list(photo_list(user=inspector)) == [mine]
    assert list(photo_list(user=inspector, inspection=records["new"])) == []
    household = records["old"].house.household_id
    assert list(photo_list(user=inspector, household_id=household)) == [mine]


def test_inspection_list_costs_the_same_queries_for_many_rows(
    inspector, records, django_assert_max_num_queries
):
    for _ in range(5):
        PhotoFactory(inspection=records["old"])
        PhotoFactory(inspection=records["new"], stage="after")
    inspector.regions.all()  # the user's regions are read once per request anyway

    with django_assert_max_num_queries(3):
        rows = list(inspection_list(user=inspector))
        for row in rows:
            _ = [p.inspection.house.household.village.code for p in row.photos.all()]
            _ = getattr(row, "appraisal", None), row.inspector.username, row.house.household


def test_required_slots_follow_the_configuration(slots):
    configured = required_slots()

    assert configured["progress"] == [("during", "front"), ("during", "structure")]
    assert configured["appraisal"][0] == ("before", "front")
    assert len(configured["completion"]) == 6


def test_household_evidence_groups_photos_by_angle_and_stage(
    slots, inspector, records, django_assert_max_num_queries
):
    old, new = records["old"], records["new"]
    before_front = PhotoFactory(inspection=old, stage="before", angle="front")
    after_front = PhotoFactory(
        inspection=new,
        stage="after",
        angle="front",
        flags=[
            {"code": "no_gps", "detail": ""},
            {"code": "far_from_house", "detail": "2 km"},
        ],
    )
    after_front_again = PhotoFactory(inspection=new, stage="after", angle="front")
    after_roof = PhotoFactory(
        inspection=new, stage="after", angle="roof", flags=[{"code": "no_gps", "detail": ""}]
    )
    # A photo whose processing failed fills no slot.
    PhotoFactory(inspection=new, stage="after", angle="back", status="failed")
    household = household_get(user=inspector, pk=old.house.household_id)

    with django_assert_max_num_queries(3):
        evidence = household_evidence(user=inspector, household=household)

    assert evidence.inspections == [new, old]
    assert evidence.stages == ["before", "during", "after"]
    grid = {
        row.angle: {cell.stage: cell.photos for cell in row.cells} for row in evidence.photo_grid
    }
    assert grid["front"] == {
        "before": [before_front],
        "during": [],
        "after": [after_front_again, after_front],
    }
    assert grid["roof"]["after"] == [after_roof]
    # Rows: the angles with a photo or a missing slot, in the form's order.
    assert [row.angle for row in evidence.photo_grid] == [
        "front",
        "left",
        "back",
        "roof",
        "interior",
        "structure",
        "householder",
    ]
    assert [row.label for row in evidence.photo_grid][:2] == ["Front", "Left side"]
    missing = {
        entry.kind: [(s.stage, s.angle) for s in entry.missing] for entry in evidence.missing_slots
    }
    assert missing == {
        "appraisal": [
            ("before", "left"),
            ("before", "back"),
            ("before", "roof"),
            ("before", "interior"),
            ("before", "structure"),
            ("before", "householder"),
        ],
        "completion": [
            ("after", "left"),
            ("after", "back"),
            ("after", "interior"),
            ("after", "householder"),
        ],
    }
    assert evidence.missing_slots[0].label == "Safety appraisal"
    assert evidence.flagged_photos == 2
    assert evidence.flag_count == 3


def test_household_evidence_leaves_out_old_houses_photos_from_the_grid(slots, inspector, records):
    old_house = records["old"].house
    old_house.is_current = False
    old_house.save()
    new_house = HouseFactory(household=old_house.household, is_current=True)
    PhotoFactory(inspection=records["old"], stage="before", angle="front")
    rebuilt = visit(new_house, inspector, days=0, kind="completion")
    after = PhotoFactory(inspection=rebuilt, stage="after", angle="front")
    household = household_get(user=inspector, pk=old_house.household_id)

    evidence = household_evidence(user=inspector, household=household)

    assert evidence.inspections == [rebuilt, records["new"], records["old"]]
    front = next(row for row in evidence.photo_grid if row.angle == "front")
    assert [cell.photos for cell in front.cells] == [[], [], [after]]
    assert [entry.kind for entry in evidence.missing_slots] == ["completion"]


def test_household_evidence_of_a_household_with_no_visits_is_empty(slots, inspector, households):
    household = household_get(user=inspector, pk=households["village1"].pk)

    evidence = household_evidence(user=inspector, household=household)

    assert (evidence.inspections, evidence.photo_grid, evidence.missing_slots) == ([], [], [])
    assert (evidence.flagged_photos, evidence.flag_count) == (0, 0)


def test_household_evidence_outside_the_users_regions_is_not_found(inspector, households):
    with pytest.raises(Http404):
        household_evidence(user=inspector, household=households["village2"])
    assert Photo.objects.count() == 0
