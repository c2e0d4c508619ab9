"""The offline villages chooser for a county official (a hundred villages): grouped by
township, a "select all" per township, a filter box; and a download that stops (a lost
network, a full phone) says why and leaves nothing of the village behind."""

import pytest

from accounts.models import Role
from tests.conftest import browser_login
from tests.factories import HouseFactory, HouseholdFactory, make_region
from tests.inspections.test_field_browser import phone_page
from tests.inspections.test_field_offline_browser import (
    fill_storage,
    free_storage,
    limit_storage,
)
from tests.inspections.test_offline_villages_browser import PHONE, visit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "test-pass-123"


@pytest.fixture
def phone(browser, live_server):
    """A 360 px phone that loads nothing from outside, with no service worker (its cache
    would take storage while the tests fill it)."""
    context = browser.new_context(
        viewport=PHONE, has_touch=True, is_mobile=True, locale="en-US", service_workers="block"
    )
    yield phone_page(context, live_server)
    context.close()


@pytest.fixture
def county(regions, county_official):
    """Three townships of the test county, with three, one and two villages."""
    make_region("520399100201", "石桥村")
    make_region("520399100202", "青山坪村")
    make_region("520399102", "新场镇")
    make_region("520399102200", "新场村")
    make_region("520399102201", "石桥坝村")
    return county_official


def township(code: str) -> str:
    return f"#village-list li.township[data-township='{code}']"


def shown_villages(page) -> dict[str, list[str]]:
    """Township code -> the codes of its villages the filter shows, for shown townships."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("#village-list li.township")]
            .filter((t) => !t.hidden)
            .map((t) => [t.dataset.township, [...t.querySelectorAll("li.village")]
                .filter((v) => !v.hidden).map((v) => v.dataset.village)]))"""
    )


def chosen(page) -> list[str]:
    return page.eval_on_selector_all(
        "#village-list li.village input:checked", "boxes => boxes.map(b => b.dataset.code)"
    )


def select_all(page, code: str):
    return page.locator(f"{township(code)} .township__all")


def test_villages_are_grouped_by_township_with_select_all_and_a_filter(phone, live_server, county):
    page = phone
    browser_login(page, live_server, county, password=PASSWORD)
    page.goto(f"{live_server.url}/field/")
    page.wait_for_selector("#villages[data-ready]")

    assert page.eval_on_selector_all(
        "#village-list li.township",
        "items => items.map(t => [t.dataset.township,"
        " t.querySelector('.township__name').textContent])",
    ) == [["520399100", "龙溪镇"], ["520399101", "白泥镇"], ["520399102", "新场镇"]]
    assert shown_villages(page) == {
        "520399100": ["520399100200", "520399100201", "520399100202"],
        "520399101": ["520399101200"],
        "520399102": ["520399102200", "520399102201"],
    }
    assert page.inner_text(f"{township('520399100')} .township__count") == "Select all (3)"
    assert page.is_disabled("#villages-download")

    # "Select all" of a township: its villages, and only them.
    select_all(page, "520399100").check()
    assert chosen(page) == ["520399100200", "520399100201", "520399100202"]
    assert page.inner_text("#villages-chosen") == "Villages chosen: 3"
    assert page.is_enabled("#villages-download")
    # One unticked: the township's box is half ticked.
    page.uncheck("li.village[data-village='520399100201'] input")
    assert select_all(page, "520399100").evaluate("b => [b.checked, b.indeterminate]") == [
        False,
        True,
    ]
    # Ticked again (as a half-ticked box does when tapped): all of them; again: none.
    select_all(page, "520399100").click()
    assert chosen(page) == ["520399100200", "520399100201", "520399100202"]
    select_all(page, "520399100").click()
    assert chosen(page) == []
    assert page.inner_text("#villages-chosen") == ""
    assert page.is_disabled("#villages-download")

    # The filter finds villages by name across townships; "select all" then takes the shown.
    page.fill("#villages-filter", "石桥")
    assert shown_villages(page) == {
        "520399100": ["520399100201"],
        "520399102": ["520399102201"],
    }
    assert page.inner_text(f"{township('520399102')} .township__count") == "Select all (1)"
    select_all(page, "520399102").check()
    assert chosen(page) == ["520399102201"]
    # A township's name shows all its villages; a code finds one village.
    page.fill("#villages-filter", "新场镇")
    assert shown_villages(page) == {"520399102": ["520399102200", "520399102201"]}
    assert select_all(page, "520399102").evaluate("b => [b.checked, b.indeterminate]") == [
        False,
        True,
    ]
    page.fill("#villages-filter", "520399101200")
    assert shown_villages(page) == {"520399101": ["520399101200"]}
    assert page.is_hidden("#villages-no-match")
    page.fill("#villages-filter", "不存在")
    assert shown_villages(page) == {}
    assert page.inner_text("#villages-no-match") == "No village or township matches."
    # The filter hides; it does not forget what was chosen.
    page.fill("#villages-filter", "")
    assert len(shown_villages(page)) == 3
    assert chosen(page) == ["520399102201"]
    assert page.inner_text("#villages-chosen") == "Villages chosen: 1"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.errors == []
    assert page.external_requests == []


def kept_thumbs(page, user) -> int:
    """How many thumbnails the user's villages database holds."""
    return page.evaluate(
        """(name) => new Promise((resolve, reject) => {
            const open = indexedDB.open(name);
            open.onsuccess = () => {
                const db = open.result;
                const count = db.transaction("thumbs").objectStore("thumbs").count();
                count.onsuccess = () => { resolve(count.result); db.close(); };
                count.onerror = () => reject(count.error);
            };
            open.onerror = () => reject(open.error);
        })""",
        f"anju-villages-{user.pk}",
    )


@pytest.fixture
def photographed(regions, make_user):
    """A household of village 1 with three processed photos, and its inspector."""
    inspector = make_user(Role.INSPECTOR, [regions["village1"]], username="inspector1")
    household = HouseholdFactory(village=regions["village1"], location="POINT(107.91 27.21)")
    HouseFactory(household=household)
    visit(inspector, household, angles=["front", "back", "roof"], seed=70)
    return inspector


def test_a_download_cut_short_says_why_and_leaves_nothing_behind(
    phone, live_server, photographed, regions
):
    page, inspector = phone, photographed
    code = regions["village1"].code
    limit_storage(page, live_server)
    browser_login(page, live_server, inspector, password=PASSWORD)
    page.goto(f"{live_server.url}/field/")
    page.wait_for_selector("#villages[data-ready]")

    # A full phone: said in plain words, and nothing of the village stays.
    fill_storage(page, room=0, sizes=(262144, 16384, 2048))
    page.check(f"li.village[data-village='{code}'] input")
    page.click("#villages-download")
    page.wait_for_selector("#villages[data-error]", state="attached")
    assert page.get_attribute("#villages", "data-error") == "quota", page.inner_text(
        "#villages-status"
    )
    page.wait_for_selector("#villages-download:not([disabled])")
    assert page.inner_text("#villages-status") == (
        "This phone's storage is full: the download stopped and the village is not kept. "
        "Remove villages you no longer need, or free space on the phone, then try again."
    )
    assert page.locator(f"li.village[data-village='{code}'] .village__kept").count() == 0
    assert kept_thumbs(page, inspector) == 0
    free_storage(page)

    # The network drops during the second photo: the download stops, nothing of it stays.
    thumbs = []

    def lose_second(route):
        thumbs.append(route.request.url)
        if len(thumbs) == 2:
            route.abort("internetdisconnected")
        else:
            route.fallback()

    page.route("**/photos/*/thumb/", lose_second)
    page.click("#villages-download")
    page.wait_for_selector("#villages[data-error=failed]", state="attached")
    page.wait_for_selector("#villages-download:not([disabled])")
    assert page.inner_text("#villages-status") == (
        "The download stopped: No connection to the server."
    )
    assert page.locator(f"li.village[data-village='{code}'] .village__kept").count() == 0
    assert page.inner_text("#villages-total") == "No village is kept on this phone yet."
    assert kept_thumbs(page, inspector) == 0
    page.unroute("**/photos/*/thumb/")

    # Room and network again: the same download keeps the village and its three photos.
    page.click("#villages-download")
    page.wait_for_selector(f"li.village[data-village='{code}'] .village__kept")
    assert kept_thumbs(page, inspector) == 3
    assert page.errors == []
    assert page.external_requests == []
