"""The upload API refuses a field page's records sent with another user's session.

The field page names the user it was opened for (X-Anju-Field-User) on every request of its
queue. When the login changed behind the page's back (a shared phone), the server answers
409 with the code "field_user_mismatch" before looking anything up, stores nothing, and the
page keeps the record for its user (queue.js: "gone"). Without the header (other API
clients) nothing changes.
"""

import datetime
import json
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.models import Role
from inspections.models import Appraisal, Inspection, Photo
from tests.inspections import images
from tests.inspections.factories import SOUND, InspectionFactory

MISMATCH = {
    "detail": "This page was opened for another user than the one logged in now: nothing was "
    "stored. Open the field page again; each user's records stay on the phone and are sent "
    "when that user is logged in.",
    "code": "field_user_mismatch",
}


@pytest.fixture
def inspector(make_user, regions):
    return make_user(Role.INSPECTOR, [regions["township1"]], username="inspector1")


@pytest.fixture
def colleague(make_user, regions):
    """Another inspector, of another township: the one logged in on the shared phone now."""
    return make_user(Role.INSPECTOR, [regions["township2"]], username="inspector2")


@pytest.fixture
def household(households):
    return households["village1"]


def logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def record(household) -> dict:
    started = timezone.now() - datetime.timedelta(hours=2)
    return {
        "client_uuid": str(uuid.uuid4()),
        "household": household.pk,
        "kind": "appraisal",
        "started_at": started.isoformat(),
        "ended_at": (started + datetime.timedelta(minutes=30)).isoformat(),
        "location": {"lon": 107.9051, "lat": 27.2052, "accuracy": 15},
        "notes": "west wall cracked",
        "appraisal": SOUND,
    }


def post(client, body, field_user=None):
    headers = {} if field_user is None else {"X-Anju-Field-User": str(field_user)}
    return client.post("/api/inspections/", body, format="json", headers=headers)


def photo_form() -> dict:
    return {
        "client_uuid": str(uuid.uuid4()),
        "stage": "before",
        "angle": "front",
        "file": SimpleUploadedFile("photo.jpg", images.jpeg(seed=3), content_type="image/jpeg"),
    }


def upload(client, inspection, form, field_user=None):
    headers = {} if field_user is None else {"X-Anju-Field-User": str(field_user)}
    return client.post(
        f"/api/inspections/{inspection.client_uuid}/photos/",
        form,
        format="multipart",
        headers=headers,
    )


def stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_an_inspection_sent_for_another_user_is_refused_with_409_and_not_stored(
    inspector, colleague, household
):
    # The page was opened for the inspector; the phone's session is now the colleague's,
    # who may see the household too (an administrator would): still refused.
    response = post(logged_in(inspector), record(household), field_user=colleague.pk)

    assert response.status_code == 409
    assert response.json() == MISMATCH
    assert Inspection.objects.count() == 0
    assert Appraisal.objects.count() == 0


def test_the_mismatch_is_answered_before_the_household_is_looked_up(
    inspector, colleague, household
):
    """The colleague's session cannot see the inspector's household: a 404 would make the
    page give the record up for good; the 409 keeps it for its user."""
    response = post(logged_in(colleague), record(household), field_user=inspector.pk)

    assert response.status_code == 409
    assert response.json() == MISMATCH
    assert Inspection.objects.count() == 0


@pytest.mark.parametrize("header", ["own", "absent"])
def test_an_inspection_with_its_own_user_or_no_header_is_accepted(inspector, household, header):
    body = record(household)

    response = post(
        logged_in(inspector), body, field_user=inspector.pk if header == "own" else None
    )

    assert response.status_code == 201
    inspection = Inspection.objects.get()
    assert (str(inspection.client_uuid), inspection.inspector_id) == (
        body["client_uuid"],
        inspector.pk,
    )


def test_a_photo_sent_for_another_user_is_refused_and_no_file_is_kept(
    inspector, colleague, household, settings
):
    inspection = InspectionFactory(house=household.houses.get(), inspector=inspector)

    refused = upload(logged_in(colleague), inspection, photo_form(), field_user=inspector.pk)
    own = upload(logged_in(inspector), inspection, photo_form(), field_user=inspector.pk)
    absent = upload(logged_in(inspector), inspection, photo_form())

    assert refused.status_code == 409
    assert refused.json() == MISMATCH
    assert (own.status_code, absent.status_code) == (201, 201)
    assert Photo.objects.count() == 2
    # Only the two accepted originals (processing waits for the commit).
    assert [path.split("/")[:2] for path in stored_files(settings)] == [["photos", "original"]] * 2


def test_the_photo_list_the_page_polls_is_refused_for_another_user_too(
    inspector, colleague, household
):
    inspection = InspectionFactory(house=household.houses.get(), inspector=inspector)
    url = f"/api/inspections/{inspection.client_uuid}/photos/"

    other = logged_in(inspector).get(url, headers={"X-Anju-Field-User": str(colleague.pk)})
    own = logged_in(inspector).get(url, headers={"X-Anju-Field-User": str(inspector.pk)})

    assert (other.status_code, other.json()) == (409, MISMATCH)
    assert (own.status_code, own.json()) == (200, [])


def test_a_header_that_names_no_user_is_refused(inspector, household):
    response = post(logged_in(inspector), record(household), field_user="not-a-user")

    assert (response.status_code, response.json()) == (409, MISMATCH)
    assert Inspection.objects.count() == 0


def test_anonymous_with_the_header_is_asked_to_log_in_not_told_of_another_user(
    inspector, household
):
    # queue.js keeps a record "blocked" (log in again) on 401/403, as before the header.
    response = Client().post(
        "/api/inspections/",
        json.dumps(record(household)),
        content_type="application/json",
        headers={"X-Anju-Field-User": str(inspector.pk)},
    )

    assert response.status_code in {401, 403}
    assert "code" not in response.json()
    assert Inspection.objects.count() == 0


def test_the_schema_documents_the_header_on_both_uploads(db):
    document = SchemaGenerator().get_schema(request=None, public=True)
    paths = document["paths"]
    for path in ["/api/inspections/", "/api/inspections/{client_uuid}/photos/"]:
        parameters = paths[path]["post"]["parameters"]
        header = [p for p in parameters if p["in"] == "header"]
        assert [(p["name"], p.get("required", False)) for p in header] == [
            ("X-Anju-Field-User", False)
        ], path
        assert "field_user_mismatch" in paths[path]["post"]["responses"]["409"]["description"]
