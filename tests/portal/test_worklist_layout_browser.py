"""The auditor's worklist in a real browser (Debian's Chromium): a village's name stays on one
line beside long reasons, on a wide screen and on a 390 px phone, and the page never runs
wider than the screen (the table scrolls sideways in its wrapper)."""

import pytest

from accounts.models import Role
from tests.audit.test_anomalies import clean_case, clean_household
from tests.conftest import ARTIFACTS, browser_login
from tests.factories import make_region

pytestmark = pytest.mark.django_db(transaction=True)

LONG_VILLAGE = "青山坪村民委员会"


@pytest.fixture
def planted(regions):
    """Anomalies in a village with a long name and in the conftest's villages: households in
    no key group with a case, households without a head ID number (each a reason of a line
    or more)."""
    village = make_region("520399100201", LONG_VILLAGE)
    for where in (village, regions["village1"], regions["village2"]):
        clean_case(clean_household(where, key_group=None, head_id_number=""))
        clean_household(where, head_id_number="")


def village_lines(page) -> dict[str, int]:
    """{village name: how many lines its text takes} for every row of the worklist."""
    return page.evaluate(
        """() => {
            const out = {};
            document.querySelectorAll("table.worklist td.worklist__village").forEach(td => {
                const range = document.createRange();
                range.selectNodeContents(td);
                const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                out[td.textContent.trim()] = Math.max(out[td.textContent.trim()] || 0, tops.size);
            });
            return out;
        }"""
    )


def test_village_names_stay_on_one_line_wide_and_on_a_phone(
    page, live_server, make_user, regions, planted
):
    auditor = make_user(Role.AUDITOR, [regions["county"]], username="auditor")
    browser_login(page, live_server, auditor)
    page.goto(f"{live_server.url}/audit/worklist/")
    assert page.locator("table.worklist tbody tr").count() >= 6
    expected = {LONG_VILLAGE: 1, regions["village1"].name: 1, regions["village2"].name: 1}
    assert village_lines(page) == expected
    # The table sits in a wrapper that scrolls sideways rather than squeezing its columns.
    wrapper = page.locator("table.worklist").locator("xpath=..")
    assert wrapper.evaluate("e => getComputedStyle(e).overflowX") == "auto"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "worklist-1280.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert village_lines(page) == expected
    village = page.locator("td.worklist__village", has_text=LONG_VILLAGE).first
    assert village.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "worklist-390.png"), full_page=True)
    assert page.external_requests == []
