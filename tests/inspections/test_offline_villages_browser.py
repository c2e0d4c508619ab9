"""Offline villages in a real browser: the demo inspector downloads a village of their
township, goes offline, and still finds its households, their past and their photos."""

import datetime
import io
import uuid

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import User
from demo.evidence import DEMO_INSPECTOR
from housing.models import Household, Region
from inspections.models import Photo
from inspections.services import inspection_submit
from tests.conftest import ARTIFACTS, browser_login
from tests.inspections import images
from tests.inspections.factories import SOUND, upload_photo

PASSWORD = "demo-pass-for-tests-26"
PHONE = {"width": 360, "height": 740}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(settings):
    """The demo county (registry only: photos are added below), its inspector, and the
    village of the inspector's township with the most located households."""
    settings.ANJU_DEMO_PASSWORD = PASSWORD
    call_command(
        "seed_demo", households=60, seed=3, no_photos=True, no_cases=True, stdout=io.StringIO()
    )
    inspector = User.objects.get(username=DEMO_INSPECTOR[0])
    village = (
        Region.objects.filter(code__startswith=DEMO_INSPECTOR[1], level="village")
        .annotate(n=Count("households"))
        .order_by("-n", "code")
        .first()
    )
    households = list(
        Household.objects.filter(village=village, location__isnull=False).order_by("archive_no")
    )
    assert len(households) >= 2, "the demo gives the inspector's best village two households"
    return {"inspector": inspector, "village": village, "households": households}


def visit(inspector, household, *, angles, seed, grade_roof="dangerous"):
    """An appraisal through the real service, with camera photos through the real pipeline."""
    started = timezone.now() - datetime.timedelta(hours=2)
    inspection, _created = inspection_submit(
        user=inspector,
        client_uuid=uuid.uuid4(),
        household=household,
        kind="appraisal",
        started_at=started,
        ended_at=started + datetime.timedelta(minutes=40),
        appraisal={**SOUND, "roof_structure": grade_roof},
    )
    photos = []
    for n, angle in enumerate(angles):
        exif = images.make_exif(
            taken_at=timezone.localtime(started + datetime.timedelta(minutes=5 + n)),
            lat=household.location.y,
            lon=household.location.x,
            accuracy=5,
        )
        data = images.jpeg(images.house_picture(seed + n, size=(640, 480)), exif=exif)
        photo, _created = upload_photo(inspection, data, angle=angle)
        assert photo.status == "ready"
        photos.append(photo)
    return inspection, photos


@pytest.fixture
def phone(browser, live_server):
    """A 360 px phone that loads nothing from outside (no service worker: the test is about
    the villages' own store, which needs no network once filled)."""
    context = browser.new_context(
        viewport=PHONE, has_touch=True, is_mobile=True, locale="en-US", service_workers="block"
    )
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
    yield page
    context.close()


def size_text(total: int) -> str:
    """What villages.js shows for a size below a megabyte (en-US number format)."""
    return f"{max(1, round(total / 1024)):,} KB"


def thumb_bytes(photos) -> int:
    return sum(photo.thumbnail.size for photo in photos)


def row(code: str) -> str:
    return f"#village-list li[data-village='{code}']"


def test_a_downloaded_village_is_searched_found_near_and_shown_offline(phone, live_server, demo):
    page, inspector, village = phone, demo["inspector"], demo["village"]
    target, neighbour = demo["households"][0], demo["households"][1]
    _inspection, photos = visit(inspector, target, angles=["front", "roof"], seed=7)
    target.refresh_from_db()

    browser_login(page, live_server, inspector, password=PASSWORD)
    page.goto(f"{live_server.url}/field/")
    page.wait_for_selector("#villages[data-ready]")
    # Only the villages of the inspector's township are offered.
    offered = page.eval_on_selector_all(
        "#village-list li[data-village]", "items => items.map(li => li.dataset.village)"
    )
    assert offered == sorted(
        Region.objects.filter(code__startswith=DEMO_INSPECTOR[1], level="village").values_list(
            "code", flat=True
        )
    )
    assert page.inner_text("#villages-total") == "No village is kept on this phone yet."
    assert page.is_disabled("#villages-download")

    page.check(f"{row(village.code)} input[type=checkbox]")
    page.click("#villages-download")
    page.wait_for_selector(f"{row(village.code)} .village__kept")
    assert page.inner_text("#villages-status") == f"Kept on this phone: {village.name}."

    # The size is the bundle's JSON as the server sends it plus the thumbnails' bytes.
    bundle_bytes = page.evaluate(
        """code => fetch("/api/field/villages/" + code + "/", {credentials: "same-origin"})
            .then(r => r.arrayBuffer()).then(b => b.byteLength)""",
        village.code,
    )
    total = bundle_bytes + thumb_bytes(photos)
    kept = page.locator(f"{row(village.code)} .village__kept")
    assert int(kept.get_attribute("data-bytes")) == total
    households = Household.objects.filter(village=village).count()
    assert kept.inner_text().startswith("Downloaded ")
    assert kept.inner_text().endswith(f" · households: {households} · {size_text(total)}")
    assert page.inner_text("#villages-total") == (
        f"Villages on this phone take {size_text(total)} in all."
    )
    page.screenshot(path=str(ARTIFACTS / "field-villages-downloaded.png"), full_page=True)

    # Online, the context comes from the server, with the thumbnails' own URLs; a household
    # of another township is unknown.
    online = page.evaluate("id => AnjuVillages.context(id)", target.pk)
    assert online["grade"] == "C"
    assert online["photos"]["before/front"]["url"] == reverse(
        "inspections:photo_file", kwargs={"key": photos[0].key, "variant": "thumb"}
    )
    stranger = Household.objects.exclude(village__code__startswith=DEMO_INSPECTOR[1]).first()
    assert page.evaluate("id => AnjuVillages.context(id)", stranger.pk) is None

    page.context.set_offline(True)
    page.wait_for_function("() => navigator.onLine === false")

    found = page.evaluate("q => AnjuVillages.search(q)", target.head_name)
    assert {
        "id": target.pk,
        "archive_no": target.archive_no,
        "head_name": target.head_name,
        "village": {"code": village.code, "name": village.name},
        "grade": "C",
        "lon": target.location.x,
        "lat": target.location.y,
    } in found
    by_archive = page.evaluate("q => AnjuVillages.search(q)", village.code.lower())
    assert [h["archive_no"] for h in by_archive] == sorted(
        Household.objects.filter(village=village).values_list("archive_no", flat=True)
    )[:50]
    assert page.evaluate("() => AnjuVillages.search('no such name 不存在')") == []

    nearest = page.evaluate(
        "([lon, lat]) => AnjuVillages.near(lon, lat, 2)",
        [target.location.x, target.location.y],
    )
    assert nearest[0]["id"] == target.pk
    assert nearest[0]["distance_m"] == 0
    assert len(nearest) == 2
    assert nearest[1]["distance_m"] > 0

    context = page.evaluate("id => AnjuVillages.context(id)", target.pk)
    assert context["grade"] == "C"
    assert context["graded_on"] == timezone.localdate(_inspection.started_at).isoformat()
    assert context["last_visit"] == {
        "date": timezone.localdate(_inspection.started_at).isoformat(),
        "kind": "appraisal",
        "kind_label": "Safety appraisal",
    }
    assert sorted(context["photos"]) == ["before/front", "before/roof"]
    front = context["photos"]["before/front"]
    assert front["url"].startswith("blob:")
    assert (front["stage_label"], front["angle_label"]) == ("Before works", "Front")
    # The kept thumbnail loads offline, and it is the thumbnail the server made.
    size = page.evaluate(
        """url => new Promise(resolve => {
            const img = new Image();
            img.onload = () => resolve([img.naturalWidth, img.naturalHeight]);
            img.onerror = () => resolve(null);
            img.src = url;
        })""",
        front["url"],
    )
    with photos[0].thumbnail.open("rb") as handle:
        assert size == list(Image.open(handle).size)
    assert page.evaluate("id => AnjuVillages.context(id)", neighbour.pk)["photos"] == {}
    assert page.evaluate("() => AnjuVillages.context(2147483647)") is None

    # field.js asks AnjuVillages when the network is gone: typing a name finds the household.
    page.fill("#search-q", target.head_name)
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(f".result[data-household='{target.pk}']")
    page.screenshot(path=str(ARTIFACTS / "field-villages-offline-search.png"), full_page=True)

    # Back online: a new photo on the server; Update fetches it and the size grows by it.
    page.context.set_offline(False)
    page.wait_for_function("() => navigator.onLine === true")
    _second, more = visit(inspector, neighbour, angles=["back"], seed=30, grade_roof="sound")
    page.wait_for_selector(f"{row(village.code)} .village__update:not([disabled])")
    page.click(f"{row(village.code)} .village__update")
    page.wait_for_function(
        """([selector, before]) => {
            const kept = document.querySelector(selector);
            return kept && Number(kept.dataset.bytes) !== before;
        }""",
        arg=[f"{row(village.code)} .village__kept", total],
    )
    bundle_bytes = page.evaluate(
        """code => fetch("/api/field/villages/" + code + "/", {credentials: "same-origin"})
            .then(r => r.arrayBuffer()).then(b => b.byteLength)""",
        village.code,
    )
    assert int(kept.get_attribute("data-bytes")) == bundle_bytes + thumb_bytes(photos + more)
    page.context.set_offline(True)
    page.wait_for_function("() => navigator.onLine === false")
    updated = page.evaluate("id => AnjuVillages.context(id)", neighbour.pk)
    assert (updated["grade"], sorted(updated["photos"])) == ("A", ["before/back"])
    assert updated["photos"]["before/back"]["url"].startswith("blob:")

    # Remove: nothing of the village stays on the phone.
    page.click(f"{row(village.code)} .village__remove")
    page.wait_for_selector(f"{row(village.code)} .village__kept", state="detached")
    assert page.inner_text("#villages-total") == "No village is kept on this phone yet."
    assert page.evaluate("q => AnjuVillages.search(q)", target.head_name) == []
    assert page.evaluate("id => AnjuVillages.context(id)", target.pk) is None
    assert page.errors == []
    assert page.external_requests == []
    assert Photo.objects.filter(status="ready").count() == 3
