"""The field page's offline data: villages to choose, a village's bundle, a household's context.

Real photos go through the real pipeline (upload, processing): the bundle's thumbnails are
the files the permission-checked photo view serves.
"""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.models import Role
from housing.bounds import ID_MAX
from housing.models import House, SafetyGrade
from inspections.field_views import FIELD_STATIC
from inspections.services import house_grade_follow_latest
from tests.factories import HouseFactory, HouseholdFactory, make_region
from tests.inspections import images
from tests.inspections.factories import AppraisalFactory, InspectionFactory, upload_photo

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")
# 23:30 UTC is 07:30 the next day in Shanghai (the project's TIME_ZONE): dates are local.
APPRAISED_AT = datetime.datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
PROGRESS_AT = datetime.datetime(2026, 4, 10, 2, 0, tzinfo=UTC)
HOUSEHOLD_KEYS = {
    "id",
    "archive_no",
    "head_name",
    "village",
    "grade",
    "lon",
    "lat",
    "graded_on",
    "last_visit",
    "photos",
}


def client_for(user) -> APIClient:
    """A client of a freshly read user, as each real request is (no regions cached yet)."""
    client = APIClient()
    client.force_authenticate(type(user).objects.get(pk=user.pk))
    return client


def village_url(code: str) -> str:
    return reverse("api:field-village", kwargs={"code": code})


def context_url(pk) -> str:
    return f"/api/field/households/{pk}/context/"


def thumb_url(photo) -> str:
    return reverse("inspections:photo_file", kwargs={"key": photo.key, "variant": "thumb"})


def camera_jpeg(seed: int, taken_at: datetime.datetime) -> bytes:
    exif = images.make_exif(taken_at=taken_at.astimezone(SHANGHAI), lat=27.2051, lon=107.9051)
    return images.jpeg(images.house_picture(seed, size=(320, 240)), exif=exif)


@pytest.fixture
def inspector(make_user, regions):
    return make_user(Role.INSPECTOR, [regions["township1"]], username="inspector1")


@pytest.fixture
def visited(regions, inspector):
    """A household of village 1 appraised C, visited again for works progress, with photos:
    an older and a newer before/front, a pending one, and one of its replaced old house."""
    household = HouseholdFactory(
        village=regions["village1"],
        archive_no="520399100200-0007",
        head_name="张秀英",
        location=Point(107.9012, 27.2034, srid=4326),
    )
    old_house = HouseFactory(household=household, is_current=False, safety_grade=SafetyGrade.D)
    house = HouseFactory(household=household, safety_grade=SafetyGrade.NOT_APPRAISED)

    old_visit = InspectionFactory(
        house=old_house,
        inspector=inspector,
        started_at=datetime.datetime(2024, 5, 1, 2, 0, tzinfo=UTC),
        ended_at=datetime.datetime(2024, 5, 1, 3, 0, tzinfo=UTC),
    )
    AppraisalFactory(inspection=old_visit, grade="D", derived_grade="D")
    upload_photo(old_visit, camera_jpeg(1, old_visit.started_at), angle="back")

    appraisal_visit = InspectionFactory(
        house=house,
        inspector=inspector,
        started_at=APPRAISED_AT,
        ended_at=APPRAISED_AT + datetime.timedelta(hours=1),
    )
    AppraisalFactory(
        inspection=appraisal_visit,
        grade="C",
        derived_grade="C",
        roof_structure="dangerous",
    )
    house_grade_follow_latest(house=house)
    older_front, _ = upload_photo(appraisal_visit, camera_jpeg(2, APPRAISED_AT), angle="front")
    roof, _ = upload_photo(appraisal_visit, camera_jpeg(3, APPRAISED_AT), angle="roof")

    progress = InspectionFactory(
        house=house,
        inspector=inspector,
        kind="progress",
        started_at=PROGRESS_AT,
        ended_at=PROGRESS_AT + datetime.timedelta(hours=1),
    )
    newer_front, _ = upload_photo(progress, camera_jpeg(4, PROGRESS_AT), angle="front")
    during, _ = upload_photo(progress, camera_jpeg(5, PROGRESS_AT), stage="during", angle="left")
    pending, _ = upload_photo(
        progress, camera_jpeg(6, PROGRESS_AT), stage="during", angle="roof", process=False
    )
    assert pending.status == "pending"
    return {
        "household": household,
        "older_front": older_front,
        "newer_front": newer_front,
        "roof": roof,
        "during": during,
    }


@pytest.fixture
def unvisited(regions):
    """A household of village 1 never appraised nor visited, with no recorded location."""
    household = HouseholdFactory(
        village=regions["village1"],
        archive_no="520399100200-0003",
        head_name="王大山",
        location=None,
    )
    HouseFactory(household=household, safety_grade=SafetyGrade.NOT_APPRAISED)
    return household


def expected_visited(visited) -> dict:
    def photo(p, stage_label, angle_label):
        return {
            "thumb_url": thumb_url(p),
            "taken_at": p.taken_at.astimezone(SHANGHAI).isoformat(),
            "stage_label": stage_label,
            "angle_label": angle_label,
        }

    household = visited["household"]
    return {
        "id": household.pk,
        "archive_no": "520399100200-0007",
        "head_name": "张秀英",
        "village": {"code": "520399100200", "name": "青山村"},
        "grade": "C",
        "lon": 107.9012,
        "lat": 27.2034,
        "graded_on": "2026-03-03",
        "last_visit": {"date": "2026-04-10", "kind": "progress", "kind_label": "Works progress"},
        "photos": {
            "before/front": photo(visited["newer_front"], "Before works", "Front"),
            "before/roof": photo(visited["roof"], "Before works", "Roof"),
            "during/left": photo(visited["during"], "During works", "Left side"),
        },
    }


# --- the villages to choose from ------------------------------------------------------------


def test_an_inspector_is_offered_the_villages_of_their_regions_with_counts(
    inspector, regions, visited, unvisited, households
):
    make_region("520399100201", "石门村")  # a village of the township with no household yet

    response = client_for(inspector).get("/api/field/villages/")

    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-cache"
    assert response.json() == [
        {
            "code": "520399100200",
            "name": "青山村",
            "township": {"code": "520399100", "name": "龙溪镇"},
            "households": 3,
        },
        {
            "code": "520399100201",
            "name": "石门村",
            "township": {"code": "520399100", "name": "龙溪镇"},
            "households": 0,
        },
    ]


def test_a_county_official_is_offered_every_village_of_the_county(county_official, households):
    response = client_for(county_official).get("/api/field/villages/")

    assert [(v["code"], v["township"]["name"], v["households"]) for v in response.json()] == [
        ("520399100200", "龙溪镇", 1),
        ("520399101200", "白泥镇", 1),
    ]


def test_a_user_without_regions_is_offered_nothing_and_anonymous_is_refused(make_user, regions):
    assert client_for(make_user(Role.INSPECTOR)).get("/api/field/villages/").json() == []
    assert APIClient().get("/api/field/villages/").status_code == 401


def test_the_village_list_costs_one_query_whatever_the_number_of_villages(inspector, regions):
    for n in range(201, 221):
        village = make_region(f"520399100{n}", f"村{n}")
        for _ in range(2):
            HouseholdFactory(village=village)
    client = client_for(inspector)

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/field/villages/")

    assert len(response.json()) == 21
    assert len(queries) == 2  # the user's regions, the villages with their counts


# --- a village's bundle ---------------------------------------------------------------------


def test_a_village_bundle_has_each_household_with_grade_last_visit_and_latest_photos(
    inspector, visited, unvisited, households
):
    response = client_for(inspector).get(village_url("520399100200"))

    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-cache"
    body = response.json()
    assert {k: body[k] for k in ("code", "name", "township")} == {
        "code": "520399100200",
        "name": "青山村",
        "township": {"code": "520399100", "name": "龙溪镇"},
    }
    rows = {row["archive_no"]: row for row in body["households"]}
    assert [row["archive_no"] for row in body["households"]] == sorted(rows)
    assert all(set(row) == HOUSEHOLD_KEYS for row in body["households"])
    assert rows["520399100200-0007"] == expected_visited(visited)
    assert rows["520399100200-0003"] == {
        "id": unvisited.pk,
        "archive_no": "520399100200-0003",
        "head_name": "王大山",
        "village": {"code": "520399100200", "name": "青山村"},
        "grade": None,
        "lon": None,
        "lat": None,
        "graded_on": None,
        "last_visit": None,
        "photos": {},
    }
    # The fixture's household of village 1 (graded C on import, never appraised here).
    imported = rows[households["village1"].archive_no]
    assert (imported["grade"], imported["graded_on"], imported["last_visit"]) == ("C", None, None)
    assert len(rows) == 3


def test_the_bundle_labels_follow_the_request_language(inspector, visited):
    response = client_for(inspector).get(
        village_url("520399100200"), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )

    row = response.json()["households"][0]
    assert row["last_visit"]["kind_label"] == "施工进度"
    assert row["photos"]["before/front"]["stage_label"] == "改造前"


def test_each_thumbnail_url_of_the_bundle_serves_that_photos_thumbnail(client, inspector, visited):
    body = client_for(inspector).get(village_url("520399100200")).json()
    client.force_login(inspector)

    for slot, photo in body["households"][0]["photos"].items():
        response = client.get(photo["thumb_url"])
        stored = {
            "before/front": visited["newer_front"],
            "before/roof": visited["roof"],
            "during/left": visited["during"],
        }[slot]
        with stored.thumbnail.open("rb") as handle:
            expected = handle.read()
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert b"".join(response.streaming_content) == expected


def test_a_village_outside_the_users_regions_or_not_a_village_is_not_found(
    inspector, regions, households
):
    client = client_for(inspector)

    assert client.get(village_url("520399101200")).status_code == 404  # other township
    assert client.get(village_url("520399100")).status_code == 404  # a township
    assert client.get(village_url("520399100299")).status_code == 404  # no such village
    assert client.get("/api/field/villages/abc/").status_code == 404
    assert client.get("/api/field/villages/%00/").status_code == 404
    assert client.get("/api/field/villages/５２０３９９１００２００/").status_code == 404
    assert APIClient().get(village_url("520399100200")).status_code == 401


def test_the_bundle_costs_the_same_queries_for_one_household_or_many(inspector, regions):
    small = make_region("520399100201", "小村")
    large = make_region("520399100202", "大村")
    HouseFactory(household=HouseholdFactory(village=small))
    for n in range(12):
        house = HouseFactory(household=HouseholdFactory(village=large))
        visit = InspectionFactory(house=house, inspector=inspector)
        AppraisalFactory(inspection=visit, grade="B", derived_grade="B")
        if n < 3:
            upload_photo(visit, camera_jpeg(n, visit.started_at), angle="front")
            upload_photo(visit, camera_jpeg(n + 20, visit.started_at), angle="back")
    first, second = client_for(inspector), client_for(inspector)

    with CaptureQueriesContext(connection) as few:
        small_body = first.get(village_url(small.code)).json()
    with CaptureQueriesContext(connection) as many:
        large_body = second.get(village_url(large.code)).json()

    assert len(small_body["households"]) == 1
    assert len(large_body["households"]) == 12
    assert sum(len(h["photos"]) for h in large_body["households"]) == 6
    assert len(few) == len(many) == 4  # regions, village, households, photos


# --- one household's context ----------------------------------------------------------------


def test_a_household_context_is_the_object_of_its_village_bundle(inspector, visited):
    client = client_for(inspector)

    response = client.get(context_url(visited["household"].pk))

    assert response.status_code == 200
    assert response.json() == expected_visited(visited)


def test_a_household_context_costs_a_fixed_number_of_queries(
    inspector, visited, django_assert_max_num_queries
):
    client = client_for(inspector)
    with django_assert_max_num_queries(3):  # regions, household, photos
        client.get(context_url(visited["household"].pk))


def test_a_household_context_outside_the_users_regions_or_absent_is_not_found(
    inspector, households
):
    client = client_for(inspector)

    assert client.get(context_url(households["village2"].pk)).status_code == 404
    assert client.get(context_url(households["village1"].pk)).status_code == 200
    assert client.get(context_url(ID_MAX)).status_code == 404
    assert client.get(context_url("99999999999999999999")).status_code == 404
    assert client.get(context_url("0")).status_code == 404
    assert APIClient().get(context_url(households["village1"].pk)).status_code == 401


def test_a_replaced_house_leaves_the_context_of_the_current_one(inspector, visited):
    """Moving to a new house: the context starts again, the old house's past stays behind."""
    household = visited["household"]
    House.objects.filter(household=household).update(is_current=False)
    HouseFactory(household=household, safety_grade=SafetyGrade.NOT_APPRAISED)

    body = client_for(inspector).get(context_url(household.pk)).json()

    assert (body["grade"], body["graded_on"], body["last_visit"], body["photos"]) == (
        None,
        None,
        None,
        {},
    )


# --- the schema and the page ----------------------------------------------------------------


def test_the_schema_documents_the_three_operations_with_bounded_ids():
    document = SchemaGenerator().get_schema(request=None, public=True)
    paths = document["paths"]

    context = paths["/api/field/households/{id}/context/"]["get"]
    assert context["parameters"] == [
        {
            "in": "path",
            "name": "id",
            "schema": {"type": "integer", "minimum": 1, "maximum": ID_MAX},
            "description": "The household's id.",
            "required": True,
        }
    ]
    assert set(context["responses"]) == {"200", "404"}
    bundle = paths["/api/field/villages/{code}/"]["get"]
    assert bundle["parameters"][0]["schema"] == {"type": "string", "pattern": r"^\d{12}$"}
    assert set(bundle["responses"]) == {"200", "404"}
    assert set(paths["/api/field/villages/"]["get"]["responses"]) == {"200"}
    household = document["components"]["schemas"]["HouseholdContext"]
    assert set(household["properties"]) == HOUSEHOLD_KEYS


def test_the_field_page_gives_villages_js_its_urls_and_the_worker_keeps_it(client, inspector):
    client.force_login(inspector)

    html = client.get("/field/").content.decode()
    worker = client.get("/field/sw.js").content.decode()

    assert '"field_villages": "/api/field/villages/"' in html
    assert '"field_household_context": "/api/field/households/{id}/context/"' in html
    assert html.index("/static/field/villages.js") < html.index("/static/field/field.js")
    assert 'id="villages"' in html
    assert "field/villages.js" in FIELD_STATIC
    assert '"/static/field/villages.js"' in worker
