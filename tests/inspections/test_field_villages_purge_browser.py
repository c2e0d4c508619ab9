"""The offline villages follow the user's regions, and the field page speaks the user's
language about them and about the phone's storage.

A village downloaded while in the inspector's regions leaves the phone (households, their
thumbnails) as soon as the server's list of villages no longer offers it, or its update
answers 404; a network failure or an offline reload removes nothing. A field page whose
user is no longer the one logged in (the session changed without the login page showing)
is refused by the server and keeps its record for its user.
"""

import pytest
from django.test import Client

from accounts.models import Role
from housing.models import SafetyGrade
from inspections.models import Inspection
from tests.factories import HouseFactory, HouseholdFactory
from tests.inspections.test_field_browser import open_field_page, phone_context, phone_page
from tests.inspections.test_field_context_browser import choose_household, villages_stand_in
from tests.inspections.test_field_logout_browser import stored_records, worker_keeps_the_page
from tests.inspections.test_offline_villages_browser import visit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOST, KEPT = "520399100200", "520399101200"  # 青山村 (township 100), 河坝村 (township 101)

# What the villages' database holds, per store: [village codes] (a thumbnail's blob unread).
STORED = """async (userId) => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("anju-villages-" + userId);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  // The store's keys, or with an index the index's key of each record (its village).
  const codes = (store, index) => new Promise((resolve) => {
    const source = db.transaction(store, "readonly").objectStore(store);
    const found = [];
    const cursor = index ? source.index(index).openKeyCursor() : source.openKeyCursor();
    cursor.onsuccess = () => {
      const at = cursor.result;
      if (!at) { resolve(found.sort()); return; }
      found.push(at.key);
      at.continue();
    };
  });
  const stored = {
    villages: await codes("villages"),
    households: await codes("households", "village"),
    thumbs: await codes("thumbs", "village"),
  };
  db.close();
  return stored;
}"""


@pytest.fixture
def rows(regions, make_user):
    """An inspector of both townships, two households in 青山村 (one visited, with a photo)
    and one in 河坝村."""
    inspector = make_user(
        Role.INSPECTOR, [regions["township1"], regions["township2"]], username="inspector1"
    )
    lost = HouseholdFactory(
        village=regions["village1"],
        archive_no=f"{LOST}-0042",
        head_name="李春花",
        location="POINT(107.9100 27.2100)",
    )
    HouseFactory(household=lost, safety_grade=SafetyGrade.C)
    neighbour = HouseholdFactory(
        village=regions["village1"],
        archive_no=f"{LOST}-0043",
        head_name="王大山",
        location="POINT(107.9100 27.2250)",
    )
    HouseFactory(household=neighbour)
    kept = HouseholdFactory(
        village=regions["village2"],
        archive_no=f"{KEPT}-0007",
        head_name="张小河",
        location="POINT(108.0000 27.2000)",
    )
    HouseFactory(household=kept)
    visit(inspector, lost, angles=["front"], seed=11)
    return {"inspector": inspector, "lost": lost, "neighbour": neighbour, "kept": kept}


@pytest.fixture
def phone(browser, live_server):
    context = phone_context(browser)
    yield phone_page(context, live_server)
    context.close()


def row(code: str) -> str:
    return f"#village-list li[data-village='{code}']"


def stored(page, user) -> dict:
    return page.evaluate(STORED, user.pk)


def found(page, q: str) -> list[int]:
    return [h["id"] for h in page.evaluate("q => AnjuVillages.search(q)", q)]


def near(page, household) -> list[int]:
    return [
        h["id"]
        for h in page.evaluate(
            "([lon, lat]) => AnjuVillages.near(lon, lat, 10)",
            [household.location.x, household.location.y],
        )
    ]


def download_both(page):
    page.wait_for_selector("#villages[data-ready]")
    page.check(f"{row(LOST)} input[type=checkbox]")
    page.check(f"{row(KEPT)} input[type=checkbox]")
    page.click("#villages-download")
    page.wait_for_selector(f"{row(LOST)} .village__kept")
    page.wait_for_selector(f"{row(KEPT)} .village__kept")


def reload_villages(page, live_server):
    page.goto(f"{live_server.url}/field/")
    page.wait_for_selector("#villages[data-ready]")


def test_a_village_no_longer_offered_leaves_the_phone_only_when_the_server_says_so(
    phone, live_server, rows, regions
):
    page, inspector, lost, kept = phone, rows["inspector"], rows["lost"], rows["kept"]
    open_field_page(page, live_server, inspector)
    worker_keeps_the_page(page)
    download_both(page)
    everything = {
        "villages": [LOST, KEPT],
        "households": [LOST, LOST, KEPT],
        "thumbs": [LOST],
    }
    assert stored(page, inspector) == everything

    # The list cannot be had (one bar of signal): nothing goes.
    def the_list(url):
        return url.endswith("/api/field/villages/")

    page.route(the_list, lambda route: route.abort())
    reload_villages(page, live_server)
    assert page.inner_text("#villages-status") == (
        "The villages could not be loaded: No connection to the server."
    )
    assert stored(page, inspector) == everything
    page.unroute(the_list)

    # An administrator takes township 100 from the inspector.
    inspector.regions.remove(regions["township1"])

    # Offline, the page the worker kept opens with what the phone keeps: both villages.
    page.context.set_offline(True)
    page.wait_for_function("() => navigator.onLine === false")
    reload_villages(page, live_server)
    assert page.inner_text("#villages-status") == (
        "You are offline: only the villages kept on this phone are listed."
    )
    page.wait_for_selector(f"{row(LOST)} .village__kept")
    assert stored(page, inspector) == everything
    assert found(page, "李春花") == [lost.pk]

    # Online again, the server's list lacks 青山村: it goes, households and photo alike.
    page.context.set_offline(False)
    page.wait_for_function("() => navigator.onLine === true")
    reload_villages(page, live_server)
    assert page.locator(row(LOST)).count() == 0
    page.wait_for_selector(f"{row(KEPT)} .village__kept")
    assert stored(page, inspector) == {"villages": [KEPT], "households": [KEPT], "thumbs": []}

    page.context.set_offline(True)
    page.wait_for_function("() => navigator.onLine === false")
    assert found(page, "李春花") == []
    assert found(page, LOST) == []
    assert found(page, "张小河") == [kept.pk]
    assert near(page, lost) == [kept.pk]
    assert page.evaluate("id => AnjuVillages.context(id)", lost.pk) is None
    assert page.evaluate("id => AnjuVillages.context(id)", kept.pk)["photos"] == {}
    assert page.errors == []


def test_updating_a_village_the_server_answers_404_for_removes_it(
    phone, live_server, rows, regions
):
    page, inspector, kept = phone, rows["inspector"], rows["kept"]
    open_field_page(page, live_server, inspector)
    download_both(page)
    inspector.regions.remove(regions["township1"])

    # The list on the page is from before: the update asks, and the server says 404.
    page.click(f"{row(LOST)} .village__update")
    page.wait_for_selector("#villages[data-error=gone]")
    assert page.inner_text("#villages-status") == (
        "No longer in your regions, so removed from this phone: 青山村."
    )
    assert page.locator(row(LOST)).count() == 0
    assert stored(page, inspector) == {"villages": [KEPT], "households": [KEPT], "thumbs": []}
    assert found(page, "李春花") == []
    assert found(page, "张小河") == [kept.pk]

    # An update that fails on the network keeps the village as it was.
    page.route(lambda url: f"/api/field/villages/{KEPT}/" in url, lambda route: route.abort())
    page.click(f"{row(KEPT)} .village__update")
    page.wait_for_selector("#villages[data-error=failed]")
    assert page.inner_text("#villages-status") == (
        "The download stopped: No connection to the server."
    )
    assert stored(page, inspector) == {"villages": [KEPT], "households": [KEPT], "thumbs": []}
    assert page.errors == []


def test_a_record_sent_under_another_users_session_stays_on_the_phone_for_its_user(
    phone, live_server, rows, make_user, regions
):
    page, inspector = phone, rows["inspector"]
    open_field_page(page, live_server, inspector)
    choose_household(page, q="张小河")
    page.check("input[name=kind][value=progress]")
    # The session becomes another inspector's without the login page showing on this phone
    # (so no page here learns of it): the page still thinks it is the inspector's.
    colleague = make_user(Role.INSPECTOR, [regions["village2"]], username="inspector2")
    other = Client()
    other.force_login(colleague)
    page.context.add_cookies(
        [{"name": "sessionid", "value": other.cookies["sessionid"].value, "url": live_server.url}]
    )

    with page.expect_response(lambda r: r.url.endswith("/api/inspections/")) as answer:
        page.click("#submit")
    assert answer.value.status == 409
    assert answer.value.request.headers["x-anju-field-user"] == str(inspector.pk)
    # The page reloads for whoever is logged in: the colleague, who sees only a count.
    page.wait_for_selector("#queue-others:not([hidden])")
    assert page.inner_text("#queue-others") == (
        "Records of other users waiting on this phone: 1. They are kept, and sent when their "
        "user logs in here."
    )
    records = stored_records(page)
    assert [r[1:] for r in records] == [[inspector.pk, "waiting"]]
    assert not Inspection.objects.filter(client_uuid=records[0][0]).exists()
    assert page.errors == []


def test_the_storage_reasons_come_in_the_users_words(browser, live_server, rows):
    """No IndexedDB (a private window of some browsers): the draft says why in the page's
    words, not the script's English."""
    context = phone_context(browser)
    page = phone_page(context, live_server)
    try:
        page.add_init_script(
            script="Object.defineProperty(window, 'indexedDB', "
            "{configurable: true, get: () => undefined});"
        )
        open_field_page(page, live_server, rows["inspector"])
        choose_household(page, q="张小河")
        page.check("input[name=kind][value=progress]")
        page.wait_for_selector("#draft-status[data-error=failed]")
        assert page.inner_text("#draft-status") == (
            "This draft could not be kept on this phone: this browser lets the page keep "
            "nothing (private mode?)"
        )
        # A transaction the browser aborted without saying why (queue.js, villages.js).
        assert (
            page.evaluate(
                "() => AnjuFieldCommon.storageReason({code: 'storage_aborted'}, "
                "JSON.parse(document.getElementById('field-strings').textContent))"
            )
            == "the phone's storage stopped before everything was written; try again"
        )
    finally:
        context.close()


@pytest.mark.parametrize(
    ("locale", "with_date", "without_date"),
    [
        ("en-US", "Current grade: C, graded on 2025-03-01", "Current grade: B"),
        ("zh-CN", "现安全等级：C，评定于 2025-03-01", "现安全等级：B"),
    ],
    ids=["en", "zh-hans"],
)
def test_the_context_line_is_one_sentence_in_the_users_language(
    browser, live_server, rows, locale, with_date, without_date
):
    context = phone_context(browser, locale=locale)
    page = phone_page(context, live_server)
    kept, neighbour = rows["kept"], rows["neighbour"]
    try:
        villages_stand_in(
            page,
            {
                "context": {
                    str(kept.pk): {
                        "grade": "C",
                        "graded_on": "2025-03-01",
                        "last_visit": None,
                        "photos": {},
                    },
                    str(neighbour.pk): {
                        "grade": "B",
                        "graded_on": None,
                        "last_visit": None,
                        "photos": {},
                    },
                }
            },
        )
        open_field_page(page, live_server, rows["inspector"])
        choose_household(page, q="张小河")
        page.wait_for_selector("#context:not([hidden])")
        assert page.inner_text("#context .context__grade") == with_date
        assert page.inner_text("#context .context__grade .grade") == "C"

        page.click("#change-household")
        choose_household(page, q="王大山")
        page.wait_for_selector("#context .context__grade .grade--B")
        assert page.inner_text("#context .context__grade") == without_date
        assert page.errors == []
    finally:
        context.close()
