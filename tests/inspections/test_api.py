"""The inspections API: shapes, permissions, idempotency, photo uploads, "near me"."""

import datetime
import importlib
import math
import threading
import uuid

import pytest
from django.apps import apps
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Role
from housing.models import House
from inspections.models import Appraisal, Inspection, Photo
from tests.factories import HouseFactory, HouseholdFactory
from tests.inspections import images
from tests.inspections.factories import AppraisalFactory, InspectionFactory, PhotoFactory

default_configuration = importlib.import_module("inspections.migrations.0002_default_configuration")

INSPECTION_KEYS = {
    "id",
    "client_uuid",
    "household",
    "house",
    "kind",
    "inspector",
    "started_at",
    "ended_at",
    "location",
    "notes",
    "appraisal",
    "photos",
    "missing_slots",
    "url",
}
APPRAISAL_KEYS = {
    "site_hazards",
    "foundation",
    "load_bearing_walls",
    "columns_beams",
    "roof_structure",
    "floors_slabs",
    "envelope",
    "derived_grade",
    "grade",
    "override_reason",
    "rule",
}
PHOTO_KEYS = {
    "id",
    "client_uuid",
    "inspection",
    "stage",
    "angle",
    "status",
    "taken_at",
    "gps",
    "gps_accuracy",
    "camera",
    "flags",
    "display_url",
    "thumbnail_url",
    "original_url",
    "byte_size",
    "sha256",
}
NEARBY_KEYS = {"id", "archive_no", "head_name", "village", "grade", "distance_m"}
RATINGS = {
    "foundation": "sound",
    "load_bearing_walls": "damaged",
    "columns_beams": "sound",
    "roof_structure": "sound",
    "floors_slabs": "not_present",
    "envelope": "sound",
}


@pytest.fixture(autouse=True)
def configuration(db):
    default_configuration.add(apps, None)


@pytest.fixture
def inspector(make_user, regions):
    return make_user(Role.INSPECTOR, [regions["township1"]], username="inspector1")


@pytest.fixture
def household(households):
    return households["village1"]


def logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def iso(hours_ago: float) -> str:
    moment = timezone.now() - datetime.timedelta(hours=hours_ago)
    return moment.astimezone(datetime.timezone(datetime.timedelta(hours=8))).isoformat()


def record(household, **changes) -> dict:
    body = {
        "client_uuid": str(uuid.uuid4()),
        "household": household.pk,
        "kind": "appraisal",
        "started_at": iso(2),
        "ended_at": iso(1),
        "location": {"lon": 107.9051, "lat": 27.2052, "accuracy": 15},
        "notes": "west wall cracked",
        "appraisal": {"site_hazards": [], **RATINGS},
    }
    body.update(changes)
    return body


def post(client, body):
    return client.post("/api/inspections/", body, format="json")


# --- POST /api/inspections/ ---------------------------------------------------------------


def test_posting_an_appraisal_answers_201_with_the_inspection(inspector, household):
    body = record(household)

    response = post(logged_in(inspector), body)

    assert response.status_code == 201
    data = response.json()
    assert set(data) == INSPECTION_KEYS
    inspection = Inspection.objects.get()
    assert data["id"] == inspection.pk
    assert data["client_uuid"] == body["client_uuid"]
    assert data["household"] == household.pk
    assert data["house"] == household.houses.get().pk
    assert data["kind"] == "appraisal"
    assert data["inspector"] == {"id": inspector.pk, "username": "inspector1", "name": ""}
    assert data["location"] == {"lon": 107.9051, "lat": 27.2052, "accuracy": 15.0}
    assert data["notes"] == "west wall cracked"
    assert set(data["appraisal"]) == APPRAISAL_KEYS
    assert data["appraisal"] == {
        "site_hazards": [],
        **RATINGS,
        "derived_grade": "B",
        "grade": "B",
        "override_reason": "",
        "rule": "default-2026",
    }
    assert data["photos"] == []
    assert data["missing_slots"][:2] == [
        {"stage": "before", "angle": "front"},
        {"stage": "before", "angle": "left"},
    ]
    assert len(data["missing_slots"]) == 7
    assert data["url"] == f"http://testserver/households/{household.pk}/"
    started = datetime.datetime.fromisoformat(data["started_at"])
    assert started == datetime.datetime.fromisoformat(body["started_at"])
    assert House.objects.get(household=household).safety_grade == "B"


def test_a_replay_answers_200_with_the_same_body_and_stores_nothing(inspector, household):
    client = logged_in(inspector)
    body = record(household)
    first = post(client, body)

    again = post(client, body)

    assert again.status_code == 200
    assert again.json() == first.json()
    assert Inspection.objects.count() == 1
    assert Appraisal.objects.count() == 1


def test_the_same_uuid_with_other_content_answers_409(inspector, household):
    client = logged_in(inspector)
    body = record(household)
    post(client, body)

    response = post(client, {**body, "notes": "something else"})

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Inspection {body['client_uuid']} was already received with different "
        "content; a new record needs a new UUID."
    }
    assert Inspection.objects.get().notes == "west wall cracked"


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"client_uuid": "x"}, {"client_uuid": ["Must be a valid UUID."]}),
        (
            {"started_at": "2026-04-01T09:30:00"},
            {"started_at": ["The time needs a UTC offset, e.g. 2026-04-01T09:30:00+08:00."]},
        ),
        (
            {"ended_at": "yesterday"},
            {"ended_at": ["Use ISO 8601 with a UTC offset, e.g. 2026-04-01T09:30:00+08:00."]},
        ),
        ({"kind": "survey"}, {"kind": ['"survey" is not a valid choice.']}),
        (
            {"location": {"lon": 200, "lat": 27}},
            {"location": {"lon": ["Ensure this value is less than or equal to 180."]}},
        ),
        (
            {"appraisal": {"site_hazards": ["volcano"], **RATINGS, "envelope": "cracked"}},
            {
                "appraisal": {
                    "site_hazards": {"0": ['"volcano" is not a valid choice.']},
                    "envelope": ['"cracked" is not a valid choice.'],
                }
            },
        ),
        (
            {"started_at": iso(1), "ended_at": iso(2)},
            {"ended_at": ["The visit cannot end before it starts."]},
        ),
        (
            {"ended_at": iso(-1)},
            {"ended_at": ["The time is in the future; check the phone's clock."]},
        ),
        (
            {"appraisal": None},
            {"appraisal": ["A safety appraisal needs the ratings of the house."]},
        ),
        (
            {"appraisal": {**RATINGS, "grade": "D"}},
            {
                "appraisal": {
                    "override_reason": ["The rule gives grade B; write why you give D instead."]
                }
            },
        ),
    ],
)
def test_an_invalid_record_answers_400_naming_the_field(inspector, household, changes, errors):
    response = post(logged_in(inspector), record(household, **changes))

    assert response.status_code == 400
    assert response.json() == errors
    assert Inspection.objects.count() == 0


def test_a_missing_field_is_named(inspector, household):
    body = record(household)
    del body["household"]
    del body["appraisal"]["envelope"]

    response = post(logged_in(inspector), body)

    assert response.status_code == 400
    assert response.json() == {
        "household": ["This field is required."],
        "appraisal": {"envelope": ["This field is required."]},
    }


def test_posting_is_refused_to_an_auditor_hidden_out_of_region_and_401_anonymous(
    make_user, regions, inspector, households
):
    auditor = make_user(Role.AUDITOR, [regions["county"]])

    refused = post(logged_in(auditor), record(households["village1"]))
    hidden = post(logged_in(inspector), record(households["village2"]))
    anonymous = post(APIClient(), record(households["village1"]))

    assert refused.status_code == 403
    assert refused.json() == {"detail": "Your role may not record inspections."}
    assert hidden.status_code == 404
    assert anonymous.status_code == 401
    assert Inspection.objects.count() == 0


def test_a_token_works_as_well_as_a_session(inspector, household):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=inspector).key}")

    response = post(client, record(household))

    assert response.status_code == 201


@pytest.mark.postgis_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_through_the_api_make_one_row_and_both_get_it(inspector, household):
    default_configuration.add(apps, None)
    body = record(household)
    token = Token.objects.create(user=inspector).key
    barrier = threading.Barrier(2)
    answers = []

    def send():
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            barrier.wait(timeout=10)
            answers.append(post(client, body))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(a.status_code for a in answers) == [200, 201]
    assert answers[0].json() == answers[1].json()
    assert Inspection.objects.filter(client_uuid=body["client_uuid"]).count() == 1
    assert answers[0].json()["id"] == Inspection.objects.get().pk


# --- GET /api/inspections/ ----------------------------------------------------------------


@pytest.fixture
def visits(households, inspector, make_user, regions):
    other = make_user(Role.INSPECTOR, [regions["township2"]])
    mine = InspectionFactory(house=households["village1"].houses.get(), inspector=inspector)
    AppraisalFactory(inspection=mine)
    theirs = InspectionFactory(
        house=households["village2"].houses.get(), inspector=other, kind="progress"
    )
    return {"mine": mine, "theirs": theirs}


def test_the_list_is_scoped_paginated_and_filtered(inspector, administrator, visits, households):
    mine = logged_in(inspector).get("/api/inspections/").json()
    everything = logged_in(administrator).get("/api/inspections/").json()
    village2 = logged_in(administrator).get(
        f"/api/inspections/?household={households['village2'].pk}"
    )

    assert set(mine) == {"count", "next", "previous", "results"}
    assert [i["client_uuid"] for i in mine["results"]] == [str(visits["mine"].client_uuid)]
    assert set(mine["results"][0]) == INSPECTION_KEYS
    assert everything["count"] == 2
    assert [i["client_uuid"] for i in village2.json()["results"]] == [
        str(visits["theirs"].client_uuid)
    ]
    bad = logged_in(inspector).get("/api/inspections/?household=abc")
    assert bad.status_code == 400
    assert bad.json() == {"household": ["A valid integer is required."]}


def test_the_list_costs_a_fixed_number_of_queries(
    administrator, visits, inspector, django_assert_max_num_queries
):
    for n in range(6):
        inspection = InspectionFactory(house=visits["mine"].house, inspector=inspector)
        AppraisalFactory(inspection=inspection)
        PhotoFactory(inspection=inspection, flags=[{"code": "no_gps", "detail": ""}])
        PhotoFactory(inspection=inspection, angle="roof" if n else "left")
    client = logged_in(administrator)
    client.get("/api/inspections/")  # warm the session

    with django_assert_max_num_queries(8):
        response = client.get("/api/inspections/")

    assert response.json()["count"] == 8


def test_one_inspection_by_its_client_uuid(inspector, visits):
    client = logged_in(inspector)

    found = client.get(f"/api/inspections/{visits['mine'].client_uuid}/")
    hidden = client.get(f"/api/inspections/{visits['theirs'].client_uuid}/")
    absent = client.get(f"/api/inspections/{uuid.uuid4()}/")
    anonymous = APIClient().get(f"/api/inspections/{visits['mine'].client_uuid}/")

    assert found.status_code == 200
    assert found.json()["appraisal"]["grade"] == "A"
    assert (hidden.status_code, absent.status_code, anonymous.status_code) == (404, 404, 401)


def test_a_progress_visit_has_no_appraisal_and_its_own_missing_slots(administrator, visits):
    data = logged_in(administrator).get(f"/api/inspections/{visits['theirs'].client_uuid}/").json()

    assert data["appraisal"] is None
    assert data["location"] is None
    assert data["missing_slots"] == [
        {"stage": "during", "angle": "front"},
        {"stage": "during", "angle": "structure"},
    ]


# --- photos ---------------------------------------------------------------------------------


def photo_form(**changes):
    form = {
        "client_uuid": str(uuid.uuid4()),
        "stage": "before",
        "angle": "front",
        "file": images_file(images.jpeg(seed=3)),
    }
    form.update(changes)
    return form


def images_file(data: bytes, name="photo.jpg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def upload(client, inspection, form):
    return client.post(
        f"/api/inspections/{inspection.client_uuid}/photos/", form, format="multipart"
    )


def stored_files(settings):
    root = settings.MEDIA_ROOT
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_uploading_a_real_jpeg_answers_201_and_it_is_processed_after_commit(
    inspector, visits, django_capture_on_commit_callbacks, settings
):
    client = logged_in(inspector)
    inspection = visits["mine"]
    taken = timezone.now() - datetime.timedelta(minutes=30)
    data = images.jpeg(
        seed=5, exif=images.make_exif(taken_at=taken, lat=27.2050, lon=107.9050, accuracy=5)
    )
    form = photo_form(file=images_file(data))

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, inspection, form)

    assert response.status_code == 201
    created = response.json()
    assert set(created) == PHOTO_KEYS
    photo = Photo.objects.get()
    assert created["id"] == photo.pk
    assert created["client_uuid"] == form["client_uuid"]
    assert created["inspection"] == str(inspection.client_uuid)
    assert (created["stage"], created["angle"], created["status"]) == ("before", "front", "pending")
    assert created["byte_size"] == len(data)
    assert created["original_url"] is None

    processed = client.get(f"/api/inspections/{inspection.client_uuid}/photos/").json()
    assert len(processed) == 1
    shown = processed[0]
    assert shown["status"] == "ready"
    assert shown["gps"] == pytest.approx([107.9050, 27.2050], abs=1e-6)
    assert shown["gps_accuracy"] == 5.0
    assert shown["camera"] == "Huawei P40"
    assert shown["flags"] == []
    assert shown["display_url"] == f"http://testserver/photos/{photo.key}/display/"
    assert shown["thumbnail_url"] == f"http://testserver/photos/{photo.key}/thumb/"
    assert shown["original_url"] is None
    assert stored_files(settings) == [
        f"photos/display/{photo.key}.jpg",
        f"photos/original/{photo.key}",
        f"photos/thumb/{photo.key}.jpg",
    ]


def test_a_photo_replay_answers_200_with_the_same_body_and_another_file_409(inspector, visits):
    client = logged_in(inspector)
    form = photo_form()
    first = upload(client, visits["mine"], form)

    again = upload(client, visits["mine"], {**form, "file": images_file(images.jpeg(seed=3))})
    other = upload(client, visits["mine"], {**form, "file": images_file(images.jpeg(seed=4))})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert other.status_code == 409
    assert other.json() == {
        "detail": f"Photo {form['client_uuid']} was already received with different content "
        "(another file, inspection, stage or angle); give a new client UUID for a new photo."
    }
    assert Photo.objects.count() == 1


def test_a_rejected_file_answers_415_and_stores_nothing(inspector, visits, settings):
    form = photo_form(file=images_file(images.html_page(), name="photo.jpg"))

    response = upload(logged_in(inspector), visits["mine"], form)

    assert response.status_code == 415
    assert list(response.json()) == ["file"]
    assert len(response.json()["file"]) == 1
    assert Photo.objects.count() == 0
    assert stored_files(settings) == []


def test_a_bad_slot_answers_400_naming_it(inspector, visits):
    response = upload(logged_in(inspector), visits["mine"], photo_form(angle="sky", file=""))

    assert response.status_code == 400
    assert response.json() == {
        "angle": ['"sky" is not a valid choice.'],
        "file": ["The submitted data was not a file. Check the encoding type on the form."],
    }


def test_only_the_visits_inspector_may_upload(county_official, visits, inspector, households):
    refused = upload(logged_in(county_official), visits["mine"], photo_form())
    hidden = upload(logged_in(inspector), visits["theirs"], photo_form())
    anonymous = upload(APIClient(), visits["mine"], photo_form())

    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "Only the inspector who made this visit may add its photos."
    }
    assert (hidden.status_code, anonymous.status_code) == (404, 401)
    assert Photo.objects.count() == 0


def test_photos_by_household_with_flags_in_words_and_originals_for_administrators(
    inspector, administrator, visits, households
):
    flagged = PhotoFactory(
        inspection=visits["mine"],
        flags=[{"code": "far_from_house", "detail": "2,013 m from the house"}],
        camera_make="Xiaomi",
        gps=Point(107.92, 27.21, srid=4326),
    )
    PhotoFactory(inspection=visits["theirs"])
    url = f"/api/photos/?household={households['village1'].pk}"

    mine = logged_in(inspector).get(url).json()
    admins = logged_in(administrator).get(url).json()
    hidden = logged_in(inspector).get(f"/api/photos/?household={households['village2'].pk}")

    assert mine["count"] == 1
    shown = mine["results"][0]
    assert set(shown) == PHOTO_KEYS
    assert shown["flags"] == [
        {
            "code": "far_from_house",
            "label": "Taken far from the house",
            "detail": "2,013 m from the house",
        }
    ]
    assert shown["camera"] == "Xiaomi"
    assert shown["gps"] == [107.92, 27.21]
    assert shown["display_url"] is None  # not processed yet
    assert shown["original_url"] is None
    assert admins["results"][0]["original_url"] == (
        f"http://testserver/photos/{flagged.key}/original/"
    )
    assert hidden.json()["count"] == 0
    assert APIClient().get(url).status_code == 401
    assert logged_in(inspector).get("/api/photos/").json()["count"] == 1


def test_photo_slots_per_kind(inspector):
    response = logged_in(inspector).get("/api/photo-slots/")

    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"appraisal", "progress", "completion"}
    assert data["progress"] == [
        {
            "stage": "during",
            "angle": "front",
            "stage_label": "During works",
            "angle_label": "Front",
        },
        {
            "stage": "during",
            "angle": "structure",
            "stage_label": "During works",
            "angle_label": "Structural detail",
        },
    ]
    assert [slot["angle"] for slot in data["appraisal"]] == [
        "front",
        "left",
        "back",
        "roof",
        "interior",
        "structure",
        "householder",
    ]
    assert APIClient().get("/api/photo-slots/").status_code == 401


# --- GET /api/households/nearby/ -----------------------------------------------------------


def great_circle_m(lon1, lat1, lon2, lat2):
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


@pytest.fixture
def neighbours(regions):
    """Households around (107.905, 27.205): 1.1 km north, 0.99 km east, 2.2 km north."""

    def at(archive_no, lon, lat, village="village1", grade="C"):
        household = HouseholdFactory(
            archive_no=archive_no,
            village=regions[village],
            location=None if lon is None else Point(lon, lat, srid=4326),
        )
        HouseFactory(household=household, safety_grade=grade)
        return household

    return {
        "north": at("N-1", 107.905, 27.215, grade="D"),
        "east": at("E-1", 107.915, 27.205, grade=""),
        "far": at("N-2", 107.905, 27.225),
        "nowhere": at("X-1", None, None),
        "other_region": at("O-1", 107.9051, 27.2051, village="village2"),
    }


def test_nearby_households_nearest_first_with_their_distance(inspector, neighbours, regions):
    response = logged_in(inspector).get("/api/households/nearby/?lon=107.905&lat=27.205")

    assert response.status_code == 200
    rows = response.json()
    assert [row["archive_no"] for row in rows] == ["E-1", "N-1", "N-2"]
    assert set(rows[0]) == NEARBY_KEYS
    assert rows[1] == {
        "id": neighbours["north"].pk,
        "archive_no": "N-1",
        "head_name": neighbours["north"].head_name,
        "village": {"code": "520399100200", "name": "青山村"},
        "grade": "D",
        "distance_m": rows[1]["distance_m"],
    }
    assert rows[0]["grade"] == ""
    for row, (lon, lat) in zip(
        rows, [(107.915, 27.205), (107.905, 27.215), (107.905, 27.225)], strict=True
    ):
        expected = great_circle_m(107.905, 27.205, lon, lat)
        assert row["distance_m"] == pytest.approx(expected, rel=0.01)
    assert rows[1]["distance_m"] == pytest.approx(1112.0, rel=0.01)


def test_nearby_respects_the_limit_and_the_users_regions(administrator, inspector, neighbours):
    limited = logged_in(inspector).get("/api/households/nearby/?lon=107.905&lat=27.205&limit=1")
    everything = logged_in(administrator).get("/api/households/nearby/?lon=107.905&lat=27.205")

    assert [row["archive_no"] for row in limited.json()] == ["E-1"]
    # The households fixture (village1 and village2) sits at the factory's default point.
    assert [row["archive_no"] for row in everything.json()][:1] == ["O-1"]
    assert "X-1" not in [row["archive_no"] for row in everything.json()]


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("lat=27.2", {"lon": ["This field is required."]}),
        ("lon=190&lat=27.2", {"lon": ["Ensure this value is less than or equal to 180."]}),
        ("lon=107.9&lat=north", {"lat": ["A valid number is required."]}),
        (
            "lon=107.9&lat=27.2&limit=51",
            {"limit": ["Ensure this value is less than or equal to 50."]},
        ),
        (
            "lon=107.9&lat=27.2&limit=0",
            {"limit": ["Ensure this value is greater than or equal to 1."]},
        ),
    ],
)
def test_nearby_names_a_bad_parameter(inspector, query, errors):
    response = logged_in(inspector).get(f"/api/households/nearby/?{query}")

    assert response.status_code == 400
    assert response.json() == errors


def test_nearby_needs_a_login(db):
    assert APIClient().get("/api/households/nearby/?lon=107.9&lat=27.2").status_code == 401


def test_the_schema_validates_and_documents_the_inspection_endpoints(tmp_path, db):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )

    schema = (tmp_path / "schema.yaml").read_text()
    for path in [
        "/api/inspections/:",
        "/api/inspections/{client_uuid}/:",
        "/api/inspections/{client_uuid}/photos/:",
        "/api/photos/:",
        "/api/photo-slots/:",
        "/api/households/nearby/:",
    ]:
        assert path in schema


def test_a_photo_that_failed_processing_says_so_in_words(inspector, visits):
    PhotoFactory(
        inspection=visits["mine"],
        status="failed",
        flags=[{"code": "processing_failed", "detail": "The image cannot be decoded."}],
    )

    shown = logged_in(inspector).get("/api/photos/").json()["results"][0]

    assert shown["status"] == "failed"
    assert shown["flags"] == [
        {
            "code": "processing_failed",
            "label": "The photo could not be processed",
            "detail": "The image cannot be decoded.",
        }
    ]
