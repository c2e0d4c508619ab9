"""The field page's "Sent" list: each sent photo with what the server's checks found, and a
retake for a flagged one (issue 12)."""

import io
import json

import pytest
from PIL import Image
from rest_framework.test import APIClient

from inspections.models import Inspection, Photo
from tests.inspections.test_field_browser import (
    HOUSE,
    MEMBERS,
    field_rows,
    open_field_page,
    phone_context,
    phone_page,
    photo_file,
    rate,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# About 5 km east of the house.
FAR = (HOUSE[0] + 0.05, HOUSE[1])


@pytest.fixture
def field(regions, make_user):
    return field_rows(regions, make_user)


@pytest.fixture
def phone(browser, live_server):
    context = phone_context(browser)
    yield phone_page(context, live_server)
    context.close()


def thumb_bytes(page, selector: str) -> bytes:
    """The bytes of the thumbnail a sent photo shows: a blob: URL of the Blob kept in the
    phone's IndexedDB, read back from there (the page's CSP refuses fetch() of blob: URLs)."""
    assert page.get_attribute(f"{selector} img", "src").startswith("blob:")
    photo = page.get_attribute(selector, "data-photo")
    return bytes(
        page.evaluate(
            """photo => AnjuQueue.thumbs()
                .then(all => all.find(t => t.photo === photo).blob.arrayBuffer())
                .then(b => [...new Uint8Array(b)])""",
            photo,
        )
    )


def thumbnail(angle: str, inspection=None) -> bytes:
    photo = Photo.objects.get(angle=angle, **({"inspection": inspection} if inspection else {}))
    with photo.thumbnail.open("rb") as handle:
        return handle.read()


def flag_lines(flags: list[dict]) -> list[str]:
    return [f"{f['label']}: {f['detail']}" if f["detail"] else f["label"] for f in flags]


def test_flagged_photos_show_their_flags_once_processed_and_offer_a_retake(
    phone, live_server, field
):
    page = phone
    photo_gets = []
    page.on(
        "request",
        lambda r: (
            photo_gets.append(r.url) if r.method == "GET" and "/api/inspections/" in r.url else None
        ),
    )

    # The server answers each upload before its checks have run (as with a busy worker):
    # the page must ask again until they have.
    def upload_answered_early(route):
        if route.request.method != "POST":
            route.fallback()
            return
        response = route.fetch()
        body = response.json()
        body.update(status="pending", flags=[], thumbnail_url=None, display_url=None)
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/inspections/*/photos/", upload_answered_early)

    open_field_page(page, live_server, field["inspector"])
    assert page.is_hidden("#sent")
    page.fill("#search-q", "春花")
    page.click("#search-form button[type=submit]")
    page.locator(".result").first.tap()
    for member in MEMBERS:
        rate(page, member, "sound")
    page.set_input_files("input[data-angle=front]", photo_file("front.jpg", seed=31, at=FAR))
    page.set_input_files("input[data-angle=householder]", photo_file("door.jpg", seed=32, at=None))
    page.wait_for_selector("[data-slot='before/householder'] img.slot__preview")
    page.click("#submit")

    page.wait_for_selector("#queue-list li[data-status=sent]", timeout=60000)
    page.wait_for_selector("#sent:not([hidden])")
    page.wait_for_function(
        "() => document.querySelectorAll('.sent-photo[data-checked=true]').length === 2",
        timeout=20000,
    )
    inspection = Inspection.objects.get()
    assert {f"{live_server.url}/api/inspections/{inspection.client_uuid}/photos/"} == set(
        photo_gets
    )
    api = APIClient()
    api.force_authenticate(field["inspector"])
    server = {
        p["angle"]: p for p in api.get(f"/api/inspections/{inspection.client_uuid}/photos/").json()
    }
    assert {p["status"] for p in server.values()} == {"ready"}
    assert "far_from_house" in [f["code"] for f in server["front"]["flags"]]
    assert "no_gps" in [f["code"] for f in server["householder"]["flags"]]

    def shown():
        return {
            slot: {
                "flags": page.locator(
                    f".sent-photo[data-slot='{slot}'] .sent-photo__flag"
                ).all_inner_texts(),
                "thumb": thumb_bytes(page, f".sent-photo[data-slot='{slot}']"),
            }
            for slot in ("before/front", "before/householder")
        }

    # Each thumbnail is kept on the phone (a blob: URL), and it is the server's thumbnail.
    page.wait_for_function(
        "() => document.querySelectorAll('.sent-photo img[data-kept=true]').length === 2",
        timeout=20000,
    )
    expected = {
        f"before/{angle}": {
            "flags": flag_lines(server[angle]["flags"]),
            "thumb": thumbnail(angle),
        }
        for angle in ("front", "householder")
    }
    assert shown() == expected
    assert page.inner_text(".sent-record__title") == "李春花 · 520399100200-0042 · Safety appraisal"
    page.wait_for_function(
        "() => [...document.querySelectorAll('.sent-photo img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    assert page.locator(".sent-photo__retake").count() == 2

    # The list is kept on the phone: after a reload it is there, with nothing more to ask.
    asked = len(photo_gets)
    page.reload()
    page.wait_for_selector(".sent-photo[data-checked=true]")
    assert shown() == expected
    assert page.evaluate("window.AnjuField.pollPhotos()") == {"pending": 0}
    assert len(photo_gets) == asked

    # Offline (the page from the service worker), the thumbnails still show: kept blobs.
    thumb_gets = []
    page.on("request", lambda r: thumb_gets.append(r.url) if "/thumb/" in r.url else None)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector(".sent-photo img[data-kept=true]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.sent-photo img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    for angle in ("front", "householder"):
        img = page.locator(f".sent-photo[data-slot='before/{angle}'] img")
        assert img.get_attribute("src").startswith("blob:")
        size = img.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size == list(Image.open(io.BytesIO(thumbnail(angle))).size)
        flags = page.locator(f".sent-photo[data-slot='before/{angle}'] .sent-photo__flag")
        assert flags.all_inner_texts() == expected[f"before/{angle}"]["flags"]
    assert thumb_gets == []
    page.context.set_offline(False)
    page.wait_for_function("() => navigator.onLine === true")

    # Retake the photo taken far away: a new draft, same household, kind and slot.
    page.click(".sent-photo[data-slot='before/front'] .sent-photo__retake")
    page.wait_for_selector("#inspection-form:not([hidden])")
    assert page.inner_text("#chosen-household strong") == "李春花"
    assert page.is_checked("input[name=kind][value=appraisal]")
    assert all(page.is_checked(f"input[name='member-{member}'][value=sound]") for member in MEMBERS)
    retake = page.locator("#slots .slot--retake")
    assert retake.get_attribute("data-slot") == "before/front"
    assert retake.locator(".slot__status").inner_text() == "Take this photo again"
    page.wait_for_selector("#draft-status[data-pending='0']:not(:empty)")

    page.reload()  # the retake is a draft like any other
    page.wait_for_selector("#drafts-list li")
    assert page.inner_text("#drafts-list .draft__detail").startswith(
        "Safety appraisal · Photos: 0 · Last change "
    )
    page.click("#drafts-list .draft-resume")
    page.wait_for_selector("#slots .slot--retake[data-slot='before/front']")
    page.set_input_files("input[data-angle=front]", photo_file("front2.jpg", seed=33))
    page.set_input_files("input[data-angle=householder]", photo_file("door2.jpg", seed=34))
    page.wait_for_selector("[data-slot='before/householder'] img.slot__preview")
    page.click("#submit")
    page.wait_for_function(
        "() => document.querySelectorAll('#queue-list li[data-status=sent]').length === 2",
        timeout=60000,
    )
    again = Inspection.objects.exclude(pk=inspection.pk).get()
    assert (again.kind, again.house) == ("appraisal", inspection.house)
    assert sorted(Photo.objects.filter(inspection=again).values_list("angle", flat=True)) == [
        "front",
        "householder",
    ]
    page.wait_for_function(
        "() => document.querySelectorAll('.sent-photo[data-checked=true]').length === 4",
        timeout=20000,
    )
    # Taken at the house this time: no distance flag; the list says what the server says.
    retaken = api.get(f"/api/inspections/{again.client_uuid}/photos/").json()
    front = next(p for p in retaken if p["angle"] == "front")
    assert "far_from_house" not in [f["code"] for f in front["flags"]]
    record = page.locator(f".sent-record[data-client-uuid='{again.client_uuid}']")
    photo = record.locator(".sent-photo[data-slot='before/front']")
    if front["flags"]:
        assert photo.locator(".sent-photo__flag").all_inner_texts() == flag_lines(front["flags"])
    else:
        assert photo.locator(".sent-photo__status").inner_text() == "No problem found."
    assert page.errors == []
    assert page.external_requests == []
