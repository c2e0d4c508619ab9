"""The inspections admin: evidence read-only, configuration editable, administrators only."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from inspections.models import AppraisalRule, Photo, RequiredPhotoSlot
from tests.inspections import images
from tests.inspections.factories import (
    AppraisalFactory,
    InspectionFactory,
    PhotoFactory,
    upload_photo,
)

pytestmark = pytest.mark.django_db

MODELS = ["inspection", "appraisal", "photo", "appraisalrule", "requiredphotoslot"]


@pytest.fixture
def inspector(make_user, regions):
    return make_user(Role.INSPECTOR, [regions["township1"]], username="inspector1")


@pytest.fixture
def objects(households, inspector):
    inspection = InspectionFactory(house=households["village1"].houses.get(), inspector=inspector)
    appraisal = AppraisalFactory(inspection=inspection, rule_version="used-rule")
    taken = timezone.localtime(timezone.now() - datetime.timedelta(minutes=20))
    exif = images.make_exif(taken_at=taken, lat=27.205, lon=107.905, accuracy=5)
    data = images.jpeg(images.house_picture(5, (320, 240)), exif=exif)
    photo, _created = upload_photo(inspection, data, angle="left")
    return {
        "inspection": inspection,
        "appraisal": appraisal,
        "photo": photo,
        "appraisalrule": AppraisalRule.objects.create(
            name="used-rule", d_members=["foundation"], site_hazard_makes_d=True
        ),
        "requiredphotoslot": RequiredPhotoSlot.objects.create(
            kind="appraisal", stage="before", angle="front"
        ),
    }


def changelist(model):
    return reverse(f"admin:inspections_{model}_changelist")


def change(model, pk):
    return reverse(f"admin:inspections_{model}_change", args=[pk])


@pytest.mark.parametrize("model", MODELS)
def test_administrator_loads_every_changelist_and_change_page(
    client, administrator, objects, model
):
    client.force_login(administrator)

    assert client.get(changelist(model)).status_code == 200
    response = client.get(change(model, objects[model].pk))
    assert response.status_code == 200
    assert response.context["original"] == objects[model]


@pytest.mark.parametrize("model", MODELS)
def test_county_official_is_sent_to_the_admin_login(client, county_official, objects, model):
    client.force_login(county_official)

    for url in (changelist(model), change(model, objects[model].pk)):
        response = client.get(url)
        assert (response.status_code, response.url) == (302, f"/admin/login/?next={url}")


@pytest.mark.parametrize("model", ["inspection", "appraisal", "photo"])
def test_evidence_cannot_be_added_changed_or_deleted(client, administrator, objects, model):
    client.force_login(administrator)
    obj = objects[model]

    assert client.get(reverse(f"admin:inspections_{model}_add")).status_code == 403
    assert client.post(change(model, obj.pk), {}).status_code == 403
    delete = reverse(f"admin:inspections_{model}_delete", args=[obj.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_photo_page_previews_through_photo_file_and_shows_the_evidence(
    client, administrator, objects
):
    photo = objects["photo"]
    Photo.objects.filter(pk=photo.pk).update(
        flags=[{"code": "no_gps", "detail": "The photo carries no GPS position in its EXIF data."}]
    )
    client.force_login(administrator)

    html = client.get(change("photo", photo.pk)).content.decode()

    assert f'<img src="/photos/{photo.key}/display/"' in html
    assert f'<a href="/photos/{photo.key}/original/">Original (with EXIF and GPS)</a>' in html
    assert (
        "<li><strong>No GPS position in the photo</strong>: "
        "The photo carries no GPS position in its EXIF data.</li>"
    ) in html
    assert photo.sha256 in html
    assert f"{photo.phash & (2**64 - 1):016x}" in html
    assert "Huawei" in html and "P40" in html
    assert "/media/" not in html  # files are never linked from MEDIA_ROOT


def test_photo_list_shows_thumbnails_and_filters_by_flags(client, administrator, objects):
    inspection = objects["inspection"]
    flagged = PhotoFactory(
        inspection=inspection,
        flags=[{"code": "near_duplicate_other", "detail": "Looks like ..."}],
    )
    far = PhotoFactory(inspection=inspection, flags=[{"code": "far_from_house", "detail": "2 km"}])
    client.force_login(administrator)

    def listed(**params):
        response = client.get(changelist("photo"), params)
        return sorted(p.pk for p in response.context["cl"].result_list)

    assert listed() == sorted([objects["photo"].pk, flagged.pk, far.pk])
    assert listed(flagged="yes") == sorted([flagged.pk, far.pk])
    assert listed(flagged="no") == [objects["photo"].pk]
    assert listed(flagged="near_duplicate_other") == [flagged.pk]
    assert listed(flagged="near_duplicate_stage") == []
    assert listed(flagged="far_from_house", angle="front") == [far.pk]
    html = client.get(changelist("photo")).content.decode()
    photo = objects["photo"]
    assert f'<img src="/photos/{photo.key}/thumb/"' in html


@pytest.mark.parametrize("model", ["inspection", "photo", "appraisal"])
def test_changelist_query_count_does_not_grow_with_rows(
    client, administrator, objects, households, inspector, model
):
    client.force_login(administrator)

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(changelist(model)).status_code == 200
        return len(queries)

    few = count()
    for _i in range(3):
        inspection = InspectionFactory(
            house=households["village2"].houses.get(), inspector=inspector
        )
        AppraisalFactory(inspection=inspection)
        PhotoFactory(inspection=inspection)
    assert count() == few


def test_a_new_appraisal_rule_stores_its_members_in_the_form_order(client, administrator):
    client.force_login(administrator)

    response = client.post(
        reverse("admin:inspections_appraisalrule_add"),
        {
            "name": "county-2027",
            "d_members": ["roof_structure", "foundation"],
            "site_hazard_makes_d": "on",
            "active": "on",
        },
    )

    assert response.status_code == 302
    rule = AppraisalRule.objects.get(name="county-2027")
    assert rule.d_members == ["foundation", "roof_structure"]


def test_an_unknown_member_code_is_refused_and_nothing_is_saved(client, administrator):
    client.force_login(administrator)

    response = client.post(
        reverse("admin:inspections_appraisalrule_add"),
        {"name": "bad", "d_members": ["foundation", "chimney"], "active": "on"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["d_members"] == [
        "Select a valid choice. chimney is not one of the available choices."
    ]
    assert not AppraisalRule.objects.filter(name="bad").exists()


def test_a_rule_appraisals_were_graded_by_keeps_its_meaning(client, administrator, objects):
    rule = objects["appraisalrule"]  # objects["appraisal"] names it
    unused = AppraisalRule.objects.create(name="draft", d_members=["foundation"])
    client.force_login(administrator)

    used_form = client.get(change("appraisalrule", rule.pk)).context["adminform"].form
    unused_form = client.get(change("appraisalrule", unused.pk)).context["adminform"].form
    client.post(change("appraisalrule", rule.pk), {"active": ""})

    assert sorted(used_form.fields) == ["active"]
    assert sorted(unused_form.fields) == ["active", "d_members", "name", "site_hazard_makes_d"]
    rule.refresh_from_db()
    assert (rule.active, rule.d_members) == (False, ["foundation"])
    delete = reverse("admin:inspections_appraisalrule_delete", args=[rule.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403


def test_required_slots_are_edited_in_the_list(client, administrator, objects):
    slot = objects["requiredphotoslot"]
    other = RequiredPhotoSlot.objects.create(kind="completion", stage="after", angle="front")
    client.force_login(administrator)
    data = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "form-0-id": other.pk,
        "form-0-kind": "appraisal",
        "form-0-stage": "before",
        "form-0-angle": "front",
        "form-1-id": slot.pk,
        "form-1-kind": "appraisal",
        "form-1-stage": "before",
        "form-1-angle": "roof",
        "_save": "Save",
    }

    duplicate = client.post(changelist("requiredphotoslot"), data)
    data["form-0-angle"] = "interior"
    saved = client.post(changelist("requiredphotoslot"), data)

    assert duplicate.status_code == 200
    assert saved.status_code == 302
    assert sorted(RequiredPhotoSlot.objects.values_list("kind", "stage", "angle")) == [
        ("appraisal", "before", "interior"),
        ("appraisal", "before", "roof"),
    ]
