"""The household file's evidence: the photo grid, flags in words, history and missing slots.

The data is made through the real services: inspection_submit, photo_upload and processing.
"""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from inspections.models import RequiredPhotoSlot
from inspections.services import inspection_submit
from tests.conftest import ARTIFACTS, browser_login
from tests.inspections import images
from tests.inspections.factories import SOUND_MEMBERS as SOUND
from tests.inspections.factories import upload_photo

pytestmark = pytest.mark.django_db

HOUSE = (107.905, 27.205)  # the factory household's location (lon, lat)
SLOTS = {
    "appraisal": [("before", a) for a in ("front", "left", "back")],
    "completion": [("after", a) for a in ("front", "left")],
}


@pytest.fixture
def slots(db):
    for kind, items in SLOTS.items():
        for stage, angle in items:
            RequiredPhotoSlot.objects.create(kind=kind, stage=stage, angle=angle)


@pytest.fixture
def inspector(make_user, regions):
    return make_user(
        Role.INSPECTOR, [regions["township1"]], username="li", last_name="李", first_name="明"
    )


def photo_bytes(seed, taken, *, gps=HOUSE):
    exif = images.make_exif(
        taken_at=timezone.localtime(taken),
        lon=gps[0] if gps else None,
        lat=gps[1] if gps else None,
        accuracy=5 if gps else None,
    )
    return images.jpeg(images.house_picture(seed, size=(320, 240)), exif=exif)


@pytest.fixture
def inspected(slots, households, inspector):
    """An appraisal (overridden grade) with two before photos, one without GPS; a completion
    check with an after photo taken 2 km away."""
    household = households["village1"]
    now = timezone.now().replace(microsecond=0)
    appraisal_start = now - datetime.timedelta(days=30)
    appraisal, _created = inspection_submit(
        user=inspector,
        client_uuid="6f1c1f4e-0000-4000-8000-000000000001",
        household=household,
        kind="appraisal",
        started_at=appraisal_start,
        ended_at=appraisal_start + datetime.timedelta(hours=1),
        notes="东墙有裂缝",
        appraisal={
            **SOUND,
            "roof_structure": "dangerous",
            "grade": "D",
            "override_reason": "屋架整体腐朽",
        },
    )
    taken = appraisal_start + datetime.timedelta(minutes=20)
    front, _c = upload_photo(appraisal, photo_bytes(1, taken), stage="before", angle="front")
    left, _c = upload_photo(
        appraisal, photo_bytes(2, taken, gps=None), stage="before", angle="left"
    )

    check_start = now - datetime.timedelta(hours=2)
    completion, _created = inspection_submit(
        user=inspector,
        client_uuid="6f1c1f4e-0000-4000-8000-000000000002",
        household=household,
        kind="completion",
        started_at=check_start,
        ended_at=check_start + datetime.timedelta(hours=1),
        appraisal=SOUND,
    )
    far = (HOUSE[0], HOUSE[1] + 0.0182)  # 2 km north
    after, _c = upload_photo(
        completion,
        photo_bytes(3, check_start + datetime.timedelta(minutes=30), gps=far),
        stage="after",
        angle="front",
    )
    return {
        "household": household,
        "appraisal": appraisal,
        "completion": completion,
        "front": front,
        "left": left,
        "after": after,
    }


def detail(client, household):
    return client.get(reverse("portal:household_detail", args=[household.pk]))


def section(html: str, section_id: str) -> str:
    match = re.search(rf'<section[^>]*id="{section_id}".*?</section>', html, re.S)
    assert match, f"no section {section_id}"
    return match.group(0)


def text(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def test_the_grid_puts_before_and_after_side_by_side_with_thumbnails_linking_to_display(
    client, township_official, inspected
):
    client.force_login(township_official)

    html = detail(client, inspected["household"]).content.decode()

    grid = section(html, "photos")
    rows = re.findall(r'<div class="photo-grid__row" data-angle="(\w+)">', grid)
    assert rows == ["front", "left", "back"]
    front_row = re.search(r'data-angle="front">(.*?)(?=<div class="photo-grid__row"|$)', grid, re.S)
    cells = re.findall(r'data-stage="(\w+)"', front_row.group(1))
    assert cells == ["before", "after"]  # no "during" column: nothing was taken during works
    for name in ("front", "after"):
        key = inspected[name].key
        assert f'<a href="/photos/{key}/display/"><img src="/photos/{key}/thumb/" ' in grid
    assert "Before works" in grid and "After works" in grid


def test_each_flag_is_explained_in_words_on_its_photo(client, township_official, inspected):
    client.force_login(township_official)

    html = detail(client, inspected["household"]).content.decode()

    grid = section(html, "photos")
    left = re.search(rf'<figure[^>]*id="photo-{inspected["left"].key}".*?</figure>', grid, re.S)
    assert text(left.group(0)).endswith(
        "No GPS position in the photo The photo carries no GPS position in its EXIF data."
    )
    after = re.search(rf'<figure[^>]*id="photo-{inspected["after"].key}".*?</figure>', grid, re.S)
    words = text(after.group(0))
    assert "Taken far from the house" in words
    assert re.search(r"GPS is 2,0\d\d m from the house \(limit 150 m; GPS accuracy 5 m\)\.", words)
    assert 'class="photo photo--flagged"' in after.group(0)
    front = re.search(rf'<figure[^>]*id="photo-{inspected["front"].key}".*?</figure>', grid, re.S)
    assert 'class="flags"' not in front.group(0)
    assert text(section(html, "photos")).count("Evidence flags: 2 on 2 photo(s).") == 1


def test_the_inspection_history_shows_kind_inspector_grade_override_notes_and_photos(
    client, township_official, inspected
):
    client.force_login(township_official)

    html = detail(client, inspected["household"]).content.decode()

    history = section(html, "inspections")
    rows = re.findall(r"<tr data-inspection=.*?</tr>", history, re.S)
    completion_start = timezone.localtime(inspected["completion"].started_at)
    appraisal_start = timezone.localtime(inspected["appraisal"].started_at)
    assert [text(row) for row in rows] == [
        f"{completion_start:%Y-%m-%d %H:%M} Completion check 李明 A A: safe "
        "As derived by the appraisal rule. 1",
        f"{appraisal_start:%Y-%m-%d %H:%M} Safety appraisal 李明 D D: dangerous as a whole "
        "Overrides the derived grade C. Reason: 屋架整体腐朽 2 东墙有裂缝",
    ]


def test_the_missing_required_slots_are_listed_per_inspection_kind(
    client, township_official, inspected
):
    client.force_login(township_official)

    html = detail(client, inspected["household"]).content.decode()

    missing = text(section(html, "missing-photos"))
    assert missing.endswith(
        "Safety appraisal Before works: Back Completion check After works: Left side"
    )


def test_a_household_without_inspections_shows_no_evidence_sections(
    client, township_official, slots, households
):
    client.force_login(township_official)

    response = detail(client, households["village1"])

    html = response.content.decode()
    assert response.status_code == 200
    for section_id in ("photos", "inspections", "missing-photos"):
        assert f'id="{section_id}"' not in html
    assert "Evidence flags" not in html


def test_the_evidence_follows_the_language(client, township_official, inspected):
    client.force_login(township_official)

    html = client.get(
        reverse("portal:household_detail", args=[inspected["household"].pk]),
        headers={"accept-language": "zh-hans"},
    ).content.decode()

    assert '<html lang="zh-hans">' in html
    assert 'id="inspections"' in html and 'id="photos"' in html


@pytest.mark.browser
def test_the_household_file_fits_a_360_px_phone(page, live_server, township_official, inspected):
    page.set_viewport_size({"width": 360, "height": 740})
    browser_login(page, live_server, township_official)

    page.goto(f"{live_server.url}/households/{inspected['household'].pk}/")
    page.wait_for_selector("#photos img")
    for i in range(page.locator("#photos img").count()):  # thumbnails load lazily
        page.locator("#photos img").nth(i).scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#photos img')]"
        ".every(i => i.complete && i.naturalWidth)"
    )
    widths = page.evaluate(
        """() => ({
            page: document.documentElement.scrollWidth,
            grid: document.querySelector('#photos').scrollWidth,
            thumbs: [...document.querySelectorAll('#photos img')].map(i => i.naturalWidth > 0),
        })"""
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "household-file-evidence-360.png"), full_page=True)

    assert widths["page"] <= 360
    assert widths["grid"] <= 360
    assert widths["thumbs"] == [True, True, True]
    assert page.external_requests == []
