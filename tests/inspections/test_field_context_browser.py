"""The field page with the downloaded villages (window.AnjuVillages) and on a narrow phone.

For the context and the offline search a small stand-in for villages.js's AnjuVillages is
put on the page (page.add_init_script, before any page script): these tests are about how
the field page uses the contract (context, search, near), not about the download itself.
"""

import base64
import json

import pytest

from tests.conftest import ARTIFACTS
from tests.inspections import images
from tests.inspections.test_field_browser import (
    HERE,
    field_rows,
    haversine_m,
    open_field_page,
    phone_context,
    phone_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def field(regions, make_user):
    return field_rows(regions, make_user)


@pytest.fixture
def phone(browser, live_server):
    context = phone_context(browser)
    yield phone_page(context, live_server)
    context.close()


def villages_stand_in(page, answers: dict | None):
    """window.AnjuVillages answering from `answers` ({context: {id: ...}, search: [...],
    near: [...]}); None: no AnjuVillages at all. villages.js's own assignment is ignored.
    Each call is kept in window.villageCalls."""
    page.add_init_script(
        script="""(() => {
        const answers = __ANSWERS__;
        window.villageCalls = [];
        const api = answers && {
            context: (id) => {
                window.villageCalls.push(["context", id]);
                return Promise.resolve(answers.context[String(id)] || null);
            },
            search: (q) => {
                window.villageCalls.push(["search", q]);
                return Promise.resolve(answers.search || []);
            },
            near: (lon, lat, limit) => {
                window.villageCalls.push(["near", lon, lat, limit]);
                return Promise.resolve(answers.near || []);
            },
        };
        Object.defineProperty(window, "AnjuVillages", {
            configurable: true, get: () => api || undefined, set: () => {},
        });
    })();""".replace("__ANSWERS__", json.dumps(answers))
    )


def jpeg_data_url(seed: int) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(images.jpeg(seed=seed)).decode()


def choose_household(page, q="春花"):
    page.fill("#search-q", q)
    page.click("#search-form button[type=submit]")
    # The answer to this search, not a result left from an earlier one.
    page.locator(f".result:has-text('{q}')").first.tap()
    page.wait_for_selector("#inspection-form:not([hidden])")


def test_the_form_shows_the_households_grade_last_visit_and_earlier_photos(
    phone, live_server, field
):
    page, target = phone, field["target"]
    front, door = jpeg_data_url(41), jpeg_data_url(42)
    villages_stand_in(
        page,
        {
            "context": {
                str(target.pk): {
                    "grade": "C",
                    "graded_on": "2025-03-01",
                    "last_visit": {
                        "date": "2025-09-12",
                        "kind": "progress",
                        "kind_label": "Works progress",
                    },
                    "photos": {
                        # The same slot, and (for the door) the same angle at another stage.
                        "before/front": {
                            "url": front,
                            "taken_at": "2025-03-01T09:30:00+08:00",
                            "stage_label": "Before works",
                            "angle_label": "Front",
                        },
                        "during/householder": {
                            "url": door,
                            "taken_at": None,
                            "stage_label": "During works",
                            "angle_label": "Householder with doorplate",
                        },
                    },
                }
            }
        },
    )
    open_field_page(page, live_server, field["inspector"])
    choose_household(page)
    page.wait_for_selector("#context:not([hidden])")
    assert page.evaluate("window.villageCalls") == [["context", target.pk]]
    assert page.inner_text("#context .context__grade") == "Current grade: C, graded on 2025-03-01"
    assert page.inner_text("#context .context__grade .grade") == "C"
    assert page.inner_text("#context .context__visit") == "Last visit: 2025-09-12, Works progress"
    earlier = page.locator("[data-slot='before/front'] .slot__earlier")
    assert earlier.locator("img").get_attribute("src") == front
    assert earlier.locator("figcaption").inner_text() == "Earlier, 2025-03-01"
    assert earlier.locator("img").get_attribute("alt") == "Earlier photo: Before works · Front"
    door_earlier = page.locator("[data-slot='before/householder'] .slot__earlier")
    assert door_earlier.locator("img").get_attribute("src") == door
    assert door_earlier.locator("figcaption").inner_text() == "Earlier photo"
    assert page.locator("[data-slot='before/other'] .slot__earlier").count() == 0
    page.wait_for_function(
        "() => [...document.querySelectorAll('.slot__earlier img')]"
        ".every((img) => img.complete && img.naturalWidth === 800)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(ARTIFACTS / "field-context-360.png"), full_page=True)

    # A household the villages know nothing about: no context at all.
    page.click("#change-household")
    choose_household(page, q="王大山")
    page.wait_for_function("() => window.villageCalls.length === 2")
    assert page.is_hidden("#context")
    assert page.locator(".slot__earlier").count() == 0
    assert page.errors == []


@pytest.mark.parametrize("answers", [None, {"context": {}}], ids=["absent", "null"])
def test_no_villages_or_no_context_shows_no_context_and_no_error(
    phone, live_server, field, answers
):
    page = phone
    villages_stand_in(page, answers)
    open_field_page(page, live_server, field["inspector"])
    choose_household(page)
    if answers is not None:
        page.wait_for_function("() => window.villageCalls.length === 1")
    # Asked (or not) and answered: a context would be on the page by now.
    page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")
    assert page.is_hidden("#context")
    assert page.inner_text("#context") == ""
    assert page.locator(".slot__earlier").count() == 0
    assert page.errors == []


def test_offline_search_and_near_me_also_look_in_the_downloaded_villages(phone, live_server, field):
    page, target, farther = phone, field["target"], field["farther"]
    village = {"id": target.village_id, "code": "520399100200", "name": "青山村"}
    downloaded = {
        "id": farther.pk,
        "archive_no": "520399100200-0043",
        "head_name": "王大山",
        "village": village,
        "grade": None,
        "lon": 107.9100,
        "lat": 27.2250,
    }
    # The target is in both: the copy seen online is shown once.
    copy = {**downloaded, "id": target.pk, "archive_no": "520399100200-0042", "head_name": "X"}
    far_m = haversine_m(*HERE, 107.9100, 27.2250)
    villages_stand_in(
        page,
        {
            "context": {},
            "search": [copy, downloaded],
            "near": [{**downloaded, "distance_m": far_m}, {**copy, "distance_m": 111.0}],
        },
    )
    open_field_page(page, live_server, field["inspector"])
    page.fill("#search-q", "520399100200-0042")  # seen online once: kept on the phone
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(".result")

    page.context.set_offline(True)
    page.fill("#search-q", "春花")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(f".result[data-household='{farther.pk}']")
    results = page.locator(".result")
    assert [results.nth(i).get_attribute("data-household") for i in range(2)] == [
        str(target.pk),
        str(farther.pk),
    ]
    assert results.locator(".result__name").all_inner_texts() == ["李春花", "王大山"]
    assert page.inner_text("#find-status") == (
        "You are offline: these are households saved on this phone, "
        "as they were when last seen online."
    )
    assert ["search", "春花"] in page.evaluate("window.villageCalls")

    page.click("#near-me")
    page.wait_for_selector("#find-status.find-status--warn >> text=distances")
    page.wait_for_function("() => document.querySelectorAll('.result__distance').length === 2")
    results = page.locator(".result")
    assert [results.nth(i).get_attribute("data-household") for i in range(2)] == [
        str(target.pk),
        str(farther.pk),
    ]
    near, far = page.locator(".result__distance").all_inner_texts()
    assert near == "111 m"
    assert far == f"{far_m / 1000:.1f} km"
    assert ["near", HERE[0], HERE[1], 10] in page.evaluate("window.villageCalls")

    # A household found only in the downloaded villages opens the form like any other.
    page.locator(f".result[data-household='{farther.pk}']").tap()
    page.wait_for_selector("#inspection-form:not([hidden])")
    assert page.inner_text("#chosen-household strong") == "王大山"
    assert page.errors == []


@pytest.mark.parametrize("width", [390, 360])
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_the_search_input_and_button_share_one_row(browser, live_server, field, width, locale):
    context = phone_context(browser, viewport={"width": width, "height": 740}, locale=locale)
    page = phone_page(context, live_server)
    try:
        open_field_page(page, live_server, field["inspector"])
        box = page.locator("#search-q").bounding_box()
        button = page.locator("#search-form button[type=submit]").bounding_box()
        # Side by side, the same height, the button's words on one line (no taller).
        assert button["y"] == box["y"]
        assert button["height"] == box["height"] == 48
        assert button["x"] >= box["x"] + box["width"]
        assert button["x"] + button["width"] <= width
        assert box["width"] >= width / 2
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(ARTIFACTS / f"field-search-{width}-{locale}.png"))
    finally:
        context.close()


def test_a_search_that_hangs_on_a_weak_signal_falls_back_to_the_phone(phone, live_server, field):
    # One bar of signal: the request is sent and no answer comes. After 10 s the page gives up
    # and shows what the phone keeps, as with no network at all.
    page, farther = phone, field["farther"]
    downloaded = {
        "id": farther.pk,
        "archive_no": "520399100200-0043",
        "head_name": "王大山",
        "village": {"id": farther.village_id, "code": "520399100200", "name": "青山村"},
        "grade": None,
        "lon": 107.9100,
        "lat": 27.2250,
    }
    villages_stand_in(page, {"context": {}, "search": [downloaded], "near": []})
    page.clock.install()
    open_field_page(page, live_server, field["inspector"])
    hanging = []
    page.route("**/api/households/?*", lambda route: hanging.append(route))

    page.fill("#search-q", "王大山")
    page.click("#search-form button[type=submit]")
    page.wait_for_function("() => window.villageCalls !== undefined")
    assert page.locator(".result").count() == 0
    page.clock.fast_forward(11_000)
    page.wait_for_selector(f".result[data-household='{farther.pk}']")
    assert hanging, "the search request was sent"
    assert ["search", "王大山"] in page.evaluate("window.villageCalls")
