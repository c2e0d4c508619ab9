"""The field page in a real browser on a phone: online, then offline and back."""

import datetime
import math
import random
import re

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from housing.models import SafetyGrade
from inspections.grading import DEFAULT, Rule, derive_grade
from inspections.models import Appraisal, Inspection, Photo, RequiredPhotoSlot
from tests.conftest import ARTIFACTS, browser_login
from tests.factories import HouseFactory, HouseholdFactory
from tests.inspections import images
from tests.inspections.factories import InspectionFactory

PHONE = {"width": 360, "height": 740}
HOUSE = (107.9100, 27.2100)  # lon, lat of the household the inspector visits
# Where the phone says it is: 0.001° of latitude north of the house, about 111 m.
HERE = (107.9100, 27.2110)
MEMBERS = [
    "foundation",
    "load_bearing_walls",
    "columns_beams",
    "roof_structure",
    "floors_slabs",
    "envelope",
]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def haversine_m(lon1, lat1, lon2, lat2):
    rad = math.pi / 180
    a = (
        math.sin((lat2 - lat1) * rad / 2) ** 2
        + math.cos(lat1 * rad) * math.cos(lat2 * rad) * math.sin((lon2 - lon1) * rad / 2) ** 2
    )
    return 6371008.8 * 2 * math.atan2(math.sqrt(a), math.sqrt(1 - a))


@pytest.fixture
def field(regions, make_user):
    return field_rows(regions, make_user)


def field_rows(regions, make_user) -> dict:
    """An inspector of village 1, the household to visit, a farther one, and the slots."""
    inspector = make_user(Role.INSPECTOR, [regions["village1"]], username="inspector1")
    target = HouseholdFactory(
        village=regions["village1"],
        archive_no="520399100200-0042",
        head_name="李春花",
        location=f"POINT({HOUSE[0]} {HOUSE[1]})",
    )
    HouseFactory(household=target, safety_grade=SafetyGrade.C)
    farther = HouseholdFactory(
        village=regions["village1"],
        archive_no="520399100200-0043",
        head_name="王大山",
        location="POINT(107.9100 27.2250)",
    )
    HouseFactory(household=farther, safety_grade=SafetyGrade.NOT_APPRAISED)
    # Outside the inspector's regions: never offered, however near.
    HouseholdFactory(village=regions["village2"], location=f"POINT({HERE[0]} {HERE[1]})")
    for angle in ("front", "householder"):
        RequiredPhotoSlot.objects.create(kind="appraisal", stage="before", angle=angle)
    return {"inspector": inspector, "target": target, "farther": farther}


@pytest.fixture
def phone(browser, live_server):
    """A 360 px touch phone that knows where it is and loads nothing from outside."""
    context = phone_context(browser)
    yield phone_page(context, live_server)
    context.close()


def phone_context(browser, viewport=PHONE, locale="en-US"):
    return browser.new_context(
        viewport=viewport,
        has_touch=True,
        is_mobile=True,
        locale=locale,
        geolocation={"longitude": HERE[0], "latitude": HERE[1], "accuracy": 8},
        permissions=["geolocation"],
        service_workers="allow",
    )


def phone_page(context, live_server):
    """A tab of the phone that refuses anything not from the live server, and keeps its
    script errors (page.errors) and refused requests (page.external_requests)."""
    page = context.new_page()
    page.external_requests = []
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))

    def guard(route):
        if route.request.url.startswith((live_server.url, "data:", "blob:")):
            route.continue_()
        else:
            page.external_requests.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    ARTIFACTS.mkdir(exist_ok=True)
    return page


def photo_file(name: str, seed: int, at=(HOUSE[0], HOUSE[1] + 0.00003)) -> dict:
    """A camera JPEG: EXIF time now and GPS `at` (lon, lat; a few metres from the house by
    default, None for no GPS)."""
    exif = images.make_exif(
        taken_at=timezone.localtime(),
        lat=at[1] if at else None,
        lon=at[0] if at else None,
        accuracy=5,
    )
    return {"name": name, "mimeType": "image/jpeg", "buffer": images.jpeg(seed=seed, exif=exif)}


def rate(page, member: str, rating: str):
    page.check(f"input[name='member-{member}'][value='{rating}']")


def derived(page) -> str:
    return page.inner_text("#derived-grade")


def open_field_page(page, live_server, inspector):
    browser_login(page, live_server, inspector)
    page.goto(f"{live_server.url}/field/")
    page.wait_for_selector("#queue-counts:not(:empty)")


def test_inspector_finds_the_household_appraises_it_and_sends_photos(phone, live_server, field):
    page, target = phone, field["target"]
    open_field_page(page, live_server, field["inspector"])
    assert page.inner_text("#net-status") == "Online"
    assert not page.is_visible("#net-note")
    # The page asked to keep its storage, and says what the browser answered.
    page.wait_for_selector("#storage-status[data-persisted]")
    assert page.inner_text("#storage-status") in {
        "This phone keeps waiting records even when storage runs low.",
        "The browser may delete waiting records if the phone runs out of space: send them soon.",
    }
    assert page.inner_text("#queue-counts") == "Nothing recorded on this phone yet."

    # Search by name.
    page.fill("#search-q", "春花")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(f".result[data-household='{target.pk}']")
    assert page.locator(".result").count() == 1
    assert page.inner_text(".result .result__meta") == "520399100200-0042 · 青山村"

    # Near me: the inspector's households only, nearest first, with the distance.
    page.click("#near-me")
    page.wait_for_function(
        "() => document.querySelectorAll('.result .result__distance').length === 2"
    )
    results = page.locator(".result")
    assert [results.nth(i).get_attribute("data-household") for i in range(2)] == [
        str(target.pk),
        str(field["farther"].pk),
    ]
    near, far = page.locator(".result__distance").all_inner_texts()
    near_m = int(re.fullmatch(r"(\d+) m", near)[1])
    assert abs(near_m - haversine_m(*HERE, *HOUSE)) < 2
    assert re.fullmatch(r"1\.[0-9] km", far)
    assert abs(float(far[:-3]) - haversine_m(*HERE, 107.9100, 27.2250) / 1000) <= 0.051
    assert page.locator(".result").first.locator(".grade").inner_text() == "C"
    page.locator(".result").first.tap()

    page.wait_for_selector("#inspection-form:not([hidden])")
    assert page.inner_text("#chosen-household strong") == "李春花"
    assert page.is_checked("input[name=kind][value=appraisal]")

    # The grade follows the ratings as they are given.
    for member in MEMBERS:
        rate(page, member, "sound")
    assert derived(page) == "A"
    rate(page, "envelope", "damaged")
    assert derived(page) == "B"
    rate(page, "roof_structure", "dangerous")
    assert derived(page) == "C"
    rate(page, "foundation", "dangerous")
    assert derived(page) == "D"
    rate(page, "foundation", "sound")
    assert derived(page) == "C"
    page.check("input[name=site_hazards][value=landslide]")
    assert derived(page) == "D"
    assert page.inner_text("#bar-grade") == "D"

    # An override needs a reason.
    page.select_option("#grade-override", "C")
    assert page.is_visible("#override-reason")
    page.click("#submit")
    assert (
        page.inner_text("#form-error") == "Write why you give a grade other than the derived one."
    )
    page.fill("#override-reason", "The slope was stabilised last year.")

    # Photos straight from the camera into the required slots.
    assert (
        page.inner_text("#missing-summary")
        == "Missing photos (2): Front, Householder with doorplate"
    )
    page.set_input_files("input[data-angle=front]", photo_file("front.jpg", seed=1))
    page.wait_for_selector("[data-slot='before/front'] img.slot__preview")
    assert page.inner_text("#missing-summary") == "Missing photos (1): Householder with doorplate"
    page.set_input_files("input[data-angle=householder]", photo_file("door.jpg", seed=2))
    page.wait_for_selector("[data-slot='before/householder'] img.slot__preview")
    assert page.inner_text("#missing-summary") == "All required photos are taken."
    assert page.get_attribute("[data-slot='before/front'] img", "src").startswith("blob:")
    page.fill("#notes", "Crack along the east wall.")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(ARTIFACTS / "field-360.png"), full_page=True)

    page.click("#submit")
    page.wait_for_selector("#queue-list li[data-status=sent]", timeout=60000)
    item = page.locator("#queue-list li").first
    assert item.locator(".queue-item__photos").inner_text() == "Photos sent: 2 of 2"
    assert page.inner_text("#queue-counts") == "Waiting: 0 · Sent: 1 · Failed: 0"
    assert page.is_visible("#find")

    inspection = Inspection.objects.get()
    assert inspection.house.household == target
    assert inspection.inspector == field["inspector"]
    assert inspection.kind == "appraisal"
    assert inspection.notes == "Crack along the east wall."
    assert str(inspection.client_uuid) == item.get_attribute("data-client-uuid")
    assert inspection.started_at <= inspection.ended_at <= timezone.now()
    assert timezone.now() - inspection.started_at < datetime.timedelta(minutes=2)
    assert inspection.submitted_location.x == pytest.approx(HERE[0], abs=1e-6)
    assert inspection.submitted_location.y == pytest.approx(HERE[1], abs=1e-6)
    assert inspection.submitted_accuracy == 8
    appraisal = Appraisal.objects.get()
    assert appraisal.ratings() == {
        "foundation": "sound",
        "load_bearing_walls": "sound",
        "columns_beams": "sound",
        "roof_structure": "dangerous",
        "floors_slabs": "sound",
        "envelope": "damaged",
    }
    assert appraisal.site_hazards == ["landslide"]
    assert (appraisal.derived_grade, appraisal.grade) == ("D", "C")
    assert appraisal.override_reason == "The slope was stabilised last year."
    photos = Photo.objects.order_by("angle")
    assert [(p.stage, p.angle, p.inspection_id) for p in photos] == [
        ("before", "front", inspection.pk),
        ("before", "householder", inspection.pk),
    ]
    assert {p.uploaded_by for p in photos} == {field["inspector"]}

    # The page's rule is the server's rule, for the default and for another rule.
    rng = random.Random(3)
    ratings = ["sound", "damaged", "dangerous", "not_present"]
    cases = [
        {
            "ratings": {m: rng.choice(ratings) for m in MEMBERS},
            "hazards": rng.sample(["landslide", "flood"], rng.randint(0, 1)),
        }
        for _ in range(200)
    ]
    other = Rule(name="x", d_members=("foundation", "roof_structure"), site_hazard_makes_d=False)
    for rule in (DEFAULT, other):
        js_rule = {
            "d_members": list(rule.d_members),
            "site_hazard_makes_d": rule.site_hazard_makes_d,
        }
        in_page = page.evaluate(
            "([cases, rule]) => cases.map("
            "(c) => window.AnjuField.deriveGrade(c.ratings, c.hazards, rule))",
            [cases, js_rule],
        )
        expected = [
            derive_grade(ratings=c["ratings"], site_hazards=c["hazards"], rule=rule) for c in cases
        ]
        assert in_page == expected
    assert page.errors == []
    assert page.external_requests == []


def test_an_inspection_made_offline_arrives_exactly_once(phone, live_server, field):
    page = phone
    # POSTs the server answered, and those the (offline) browser could not send.
    posts, failed = [], []
    page.on(
        "requestfinished",
        lambda request: posts.append(request.url) if request.method == "POST" else None,
    )
    page.on(
        "requestfailed",
        lambda request: failed.append(request.url) if request.method == "POST" else None,
    )
    open_field_page(page, live_server, field["inspector"])
    # Online once: the worker takes the page, and a search keeps the household for later.
    page.wait_for_selector("#sw-status[data-ready=true]")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.fill("#search-q", "520399100200-0042")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(".result")

    page.context.set_offline(True)
    page.reload()  # served by the service worker
    page.wait_for_selector("#queue-counts:not(:empty)")
    assert page.inner_text("#net-status") == "Offline"
    assert page.inner_text("#net-note") == (
        "You are offline: new records wait on this phone until the network returns."
    )
    page.fill("#search-q", "春花")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#find-status.find-status--warn")
    assert page.inner_text("#find-status") == (
        "You are offline: these are households saved on this phone, "
        "as they were when last seen online."
    )
    page.locator(".result").first.tap()
    for member in MEMBERS:
        rate(page, member, "sound")
    rate(page, "load_bearing_walls", "dangerous")
    assert derived(page) == "D"
    page.set_input_files("input[data-angle=front]", photo_file("front.jpg", seed=5))
    page.wait_for_selector("[data-slot='before/front'] img.slot__preview")
    page.click("#submit")

    page.wait_for_selector("#queue-list li[data-status=waiting]")
    assert page.inner_text("#queue-counts") == "Waiting: 1 · Sent: 0 · Failed: 0"
    assert page.inner_text("#saved-message") == (
        "Saved on this phone. It will be sent when the network allows: 李春花 · 520399100200-0042."
    )
    assert page.locator("#queue-list .queue-item__photos").inner_text() == "Photos sent: 0 of 1"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(ARTIFACTS / "field-offline-queue.png"), full_page=True)
    assert Inspection.objects.count() == 0
    assert Photo.objects.count() == 0
    assert failed == [f"{live_server.url}/api/inspections/"]

    page.context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_selector("#queue-list li[data-status=sent]", timeout=60000)
    assert page.inner_text("#queue-counts") == "Waiting: 0 · Sent: 1 · Failed: 0"
    inspection = Inspection.objects.get()
    assert inspection.house.household == field["target"]
    assert inspection.appraisal.load_bearing_walls == "dangerous"
    assert inspection.appraisal.grade == "D"
    photo = Photo.objects.get()
    assert (photo.inspection, photo.angle) == (inspection, "front")
    sent = list(posts)
    assert sent.count(f"{live_server.url}/api/inspections/") == 1
    assert sent.count(f"{live_server.url}/api/inspections/{inspection.client_uuid}/photos/") == 1

    # A reload online sends nothing again: the queue knows what the server has.
    page.reload()
    page.wait_for_selector("#queue-list li[data-status=sent]")
    page.evaluate("window.AnjuField.sync(true)")
    assert [url for url in posts[len(sent) :] if "/api/" in url] == []
    assert Inspection.objects.count() == 1
    assert Photo.objects.count() == 1
    assert page.errors == []
    assert page.external_requests == []


def test_a_record_the_server_refuses_is_shown_failed_with_its_reason(phone, live_server, field):
    # The phone reuses a client UUID the server already holds for another record: 409.
    taken = InspectionFactory(
        inspector=field["inspector"], house=field["target"].houses.get(), kind="progress"
    )
    page = phone
    open_field_page(page, live_server, field["inspector"])
    page.evaluate(
        """([uuid, household]) => {
            const config = JSON.parse(document.getElementById("field-config").textContent);
            const now = new Date().toISOString();
            return window.AnjuQueue.add({
                client_uuid: uuid, user_id: config.user.id, user_name: "inspector1",
                household: household, household_label: "李春花 · 520399100200-0042",
                kind: "appraisal", started_at: now, ended_at: now, location: null, notes: "",
                appraisal: {site_hazards: [], foundation: "sound", load_bearing_walls: "sound",
                    columns_beams: "sound", roof_structure: "sound", floors_slabs: "sound",
                    envelope: "sound"},
                status: "waiting", attempts: 0, created_at: now,
            }, [{
                client_uuid: crypto.randomUUID(), inspection: uuid, user_id: config.user.id,
                stage: "before", angle: "front", blob: new Blob(["x"], {type: "image/jpeg"}),
                name: "front.jpg", status: "waiting", attempts: 0,
            }]).then(() => window.AnjuField.sync(true));
        }""",
        [str(taken.client_uuid), field["target"].pk],
    )
    page.wait_for_selector("#queue-list li[data-status=failed]")
    assert page.inner_text("#queue-counts") == "Waiting: 0 · Sent: 0 · Failed: 1"
    errors = page.locator("#queue-list .queue-item__error").all_inner_texts()
    # The reason shown is the server's own words for this conflict.
    api = APIClient()
    api.force_authenticate(field["inspector"])
    answer = api.post(
        "/api/inspections/",
        {
            "client_uuid": str(taken.client_uuid),
            "household": field["target"].pk,
            "kind": "progress",
            "started_at": "2026-01-01T08:00:00+08:00",
            "ended_at": "2026-01-01T09:00:00+08:00",
            "location": None,
            "notes": "another record",
            "appraisal": None,
        },
        format="json",
    )
    assert answer.status_code == 409
    assert errors == [
        f"Refused by the server (409): {answer.json()['detail']}",
        "Front: The inspection was refused, so its photos cannot be sent.",
    ]
    assert Inspection.objects.get() == taken
    assert Photo.objects.count() == 0

    # The inspector clears it away.
    page.click("#queue-list .link-button")
    page.wait_for_selector("#queue-list li", state="detached")
    assert page.inner_text("#queue-counts") == "Nothing recorded on this phone yet."
    assert page.errors == []


def test_a_record_kept_while_logged_out_is_sent_after_logging_in_again(phone, live_server, field):
    page = phone
    open_field_page(page, live_server, field["inspector"])
    page.fill("#search-q", "春花")
    page.click("#search-form button[type=submit]")
    page.locator(".result:has-text('春花')").first.tap()
    page.wait_for_selector("#inspection-form:not([hidden])")
    # The new draft is written before the kind changes (a CI run under load once saw the
    # click land while the form was still being filled in).
    page.wait_for_selector("#draft-status[data-pending='0']:not(:empty)")
    page.check("input[name=kind][value=progress]")
    assert not page.is_visible("#appraisal")
    page.fill("#notes", "Walls up to the first floor.")

    page.context.clear_cookies()  # the session ends while the inspector works
    page.click("#submit")
    page.wait_for_selector("#queue-list li[data-status=blocked]")
    assert page.inner_text("#queue-list .status-pill") == "Waiting for you to log in again"
    assert page.inner_text("#queue-list .queue-item__error") == (
        "Your login has expired or the page is out of date. "
        "Log in again, then open this page: waiting records will be sent."
    )
    assert Inspection.objects.count() == 0

    # A new session, a new CSRF token: the page sends what waited, once.
    open_field_page(page, live_server, field["inspector"])
    page.wait_for_selector("#queue-list li[data-status=sent]")
    inspection = Inspection.objects.get()
    assert (inspection.kind, inspection.notes) == ("progress", "Walls up to the first floor.")
    assert not Appraisal.objects.exists()
    assert page.errors == []
