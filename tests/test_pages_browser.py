"""The pages in a real browser on a phone-sized screen, with nothing loaded from outside."""

import pytest

from housing.models import SafetyGrade
from tests.conftest import ARTIFACTS, browser_login
from tests.factories import FamilyMemberFactory, HouseFactory, HouseholdFactory

PHONE = {"width": 360, "height": 740}


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_phone_user_logs_in_searches_and_sees_the_household_on_its_map(
    page, live_server, regions, township_official
):
    household = HouseholdFactory(
        village=regions["village1"], archive_no="520399100200-0042", head_name="李春花"
    )
    HouseFactory(household=household, safety_grade=SafetyGrade.D)
    FamilyMemberFactory(household=household, name="李明")
    for n in range(3):
        HouseFactory(household=HouseholdFactory(village=regions["village1"], head_name=f"张{n}"))
    ARTIFACTS.mkdir(exist_ok=True)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_viewport_size(PHONE)

    browser_login(page, live_server, township_official)
    assert page.url == f"{live_server.url}/households/"
    assert page.locator("table.records tbody tr").count() == 4
    assert page_width(page) <= PHONE["width"]
    page.screenshot(path=str(ARTIFACTS / "household-list-360.png"), full_page=True)

    page.fill("input[name=q]", "春花")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/households/?q=*")
    assert page.locator("p.count").inner_text() == "1 household"
    rows = page.locator("table.records tbody tr")
    assert rows.count() == 1
    assert "李春花" in rows.first.inner_text()

    page.click("text=520399100200-0042")
    page.wait_for_url(f"{live_server.url}/households/{household.pk}/")
    assert page.locator("h1").inner_text().startswith("李春花")
    page.wait_for_selector(".leaflet-container path.leaflet-interactive")
    # The village boundary and the house's circle marker are both SVG paths.
    assert page.locator(".leaflet-container path.leaflet-interactive").count() == 2
    assert page.locator(".anju-map").bounding_box()["height"] > 200
    assert page_width(page) <= PHONE["width"]
    page.screenshot(path=str(ARTIFACTS / "household-file-360.png"), full_page=True)

    page.click('dd a[href="/regions/520399100200/"]')
    page.wait_for_url(f"{live_server.url}/regions/520399100200/")
    assert page.locator("h1").inner_text().startswith("青山村")
    assert page.locator(".anju-map").count() == 1  # the village's own boundary
    page.click('.breadcrumbs a[href="/regions/520399100/"]')
    page.wait_for_url(f"{live_server.url}/regions/520399100/")
    # Township outline + its one village, each an SVG path.
    page.wait_for_selector(".leaflet-container path")
    assert page.locator(".leaflet-container path").count() == 2
    assert page.locator("table.counts:not(.money-table) tfoot td").all_inner_texts() == [
        "0",
        "0",
        "3",
        "1",
        "0",
        "4",
    ]
    assert page_width(page) <= PHONE["width"]
    page.screenshot(path=str(ARTIFACTS / "region-township-360.png"), full_page=True)

    assert errors == []
    assert page.external_requests == []
