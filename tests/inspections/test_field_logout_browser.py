"""The field page on a phone several inspectors share: after a logout, the page kept for
offline use is gone (it carried its user's name and session), and an inspector's records not
yet sent stay on the phone, theirs: never shown to, nor sent with the session of, whoever
logs in next."""

import pytest
from playwright.sync_api import Error as BrowserError

from accounts.models import Role
from inspections.field_views import FIELD_STATIC
from inspections.models import Inspection
from tests.inspections.test_field_browser import (
    MEMBERS,
    field_rows,
    open_field_page,
    phone_context,
    phone_page,
    photo_file,
    rate,
)
from tests.inspections.test_field_drafts_browser import choose_household, drafts_written

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the worker keeps, cache by cache: {cache name: [paths]}.
KEPT = """async () => {
  const kept = {};
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    kept[name] = (await cache.keys()).map((request) => new URL(request.url).pathname);
  }
  return kept;
}"""
# The worker's precache list (test_field_page spells it out) but the page itself.
STATIC_KEPT = {"/field/manifest.webmanifest", *(f"/static/{path}" for path in FIELD_STATIC)}
OTHERS_WAITING = (
    "Records of other users waiting on this phone: 1. They are kept, and sent when their "
    "user logs in here."
)


@pytest.fixture
def field(regions, make_user):
    rows = field_rows(regions, make_user)
    first = rows["inspector"]
    first.first_name, first.last_name = "Chunyan", "Zhang"
    first.save(update_fields=["first_name", "last_name"])
    # Another inspector of the same village: the household is theirs to see, the record not.
    rows["second"] = make_user(
        Role.INSPECTOR,
        [regions["village1"]],
        username="inspector2",
        first_name="Dashan",
        last_name="Wang",
    )
    return rows


@pytest.fixture
def phone_context_(browser):
    context = phone_context(browser)
    yield context
    context.close()


@pytest.fixture
def phone(phone_context_, live_server):
    return phone_page(phone_context_, live_server)


def kept_paths(page) -> set[str]:
    kept = page.evaluate(KEPT)
    assert len(kept) == 1, kept  # one version of the worker, one cache
    return set(next(iter(kept.values())))


def worker_keeps_the_page(page):
    page.wait_for_selector("#sw-status[data-ready=true]")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.wait_for_function(
        "() => caches.match('/field/').then((kept) => Boolean(kept))", polling=200
    )


def log_out(page, live_server):
    """The "Log out" button of every page (a POST), from the household list."""
    page.goto(f"{live_server.url}/households/")
    with page.expect_response(lambda r: r.url.endswith("/logout/")) as answer:
        page.click(".site-user button[type=submit]")
    page.wait_for_url(f"{live_server.url}/login/")
    return answer.value


def forgotten(page):
    """The login page has had the field page's worker forget its user's copies."""
    page.wait_for_selector("html[data-field-forgotten=true]", state="attached")


def open_offline(page, live_server) -> str:
    """Open /field/ with no network: the page the phone shows (its HTML), or "" for the
    browser's own error (nothing kept to show)."""
    page.context.set_offline(True)
    page.wait_for_function("() => navigator.onLine === false")
    try:
        page.goto(f"{live_server.url}/field/")
    except BrowserError as error:
        assert "net::ERR_" in str(error)
        return ""
    finally:
        page.context.set_offline(False)
    return page.content()


def block_uploads(page) -> dict:
    """The network drops every upload (as on one bar of signal), until told otherwise:
    records stay waiting."""
    network = {"drops_uploads": True}

    def drop(route):
        if network["drops_uploads"] and route.request.method == "POST":
            route.abort()
        else:
            route.fallback()

    page.route(lambda url: "/api/inspections/" in url, drop)
    return network


def stored_records(page) -> list[list]:
    return page.evaluate(
        "() => AnjuQueue.all().then((s) => s.inspections.map("
        "(r) => [r.client_uuid, r.user_id, r.status]))"
    )


def test_after_a_logout_the_page_opened_offline_is_nobodys(phone, live_server, field):
    page = phone
    first = field["inspector"]
    open_field_page(page, live_server, first)
    worker_keeps_the_page(page)
    assert kept_paths(page) == STATIC_KEPT | {"/field/", "/api/photo-slots/"}
    # Before the logout, the page offline is the inspector's (their name is in it).
    assert '"name": "Chunyan Zhang"' in open_offline(page, live_server)

    answer = log_out(page, live_server)

    # The browser drops its HTTP cache of the site (the user's private thumbnails, tiles)...
    assert answer.status == 302
    assert answer.all_headers()["clear-site-data"] == '"cache"'
    # ...and the login page has the worker forget the page and the photo slots (the
    # header does not reach the worker's Cache Storage). Our files stay for the next user.
    forgotten(page)
    assert kept_paths(page) == STATIC_KEPT

    html = open_offline(page, live_server)
    assert html == "" or ("Chunyan" not in html and "inspector1" not in html)
    assert page.errors == []
    assert page.external_requests == []


def test_a_session_ended_without_logout_is_forgotten_by_the_worker_itself(
    phone, live_server, field
):
    page = phone
    open_field_page(page, live_server, field["inspector"])
    worker_keeps_the_page(page)
    # The login page's script does not run here: the worker must see it by itself.
    page.route("**/static/field/forget.js", lambda route: route.abort())

    page.context.clear_cookies()  # the session has ended (expired, or ended elsewhere)
    page.goto(f"{live_server.url}/field/")

    # The server answered the page with the login page: the worker forgot its copy.
    assert page.url == f"{live_server.url}/login/?next=/field/"
    page.wait_for_function("() => caches.match('/field/').then((kept) => !kept)", polling=200)
    assert page.get_attribute("html", "data-field-forgotten") is None
    assert kept_paths(page) == STATIC_KEPT
    html = open_offline(page, live_server)
    assert html == "" or ("Chunyan" not in html and "inspector1" not in html)


def test_unsent_records_stay_with_their_inspector_across_another_ones_login(
    phone, live_server, field
):
    page = phone
    first, second = field["inspector"], field["second"]
    posts = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and "/api/" in r.url else None,
    )
    network = block_uploads(page)

    # The first inspector records an appraisal the network does not take, and starts another.
    open_field_page(page, live_server, first)
    choose_household(page)
    for member in MEMBERS:
        rate(page, member, "sound")
    page.set_input_files("input[data-angle=front]", photo_file("front.jpg", seed=51))
    page.wait_for_selector("[data-slot='before/front'] img.slot__preview")
    page.click("#submit")
    page.wait_for_selector("#queue-list li[data-status=waiting]")
    record = page.get_attribute("#queue-list li", "data-client-uuid")
    choose_household(page)
    page.fill("#notes", "Come back for the roof.")
    drafts_written(page)
    assert Inspection.objects.count() == 0

    log_out(page, live_server)
    network["drops_uploads"] = False
    sent_before = len(posts)

    # The second inspector, on the same phone, online: nothing of the first one's shows,
    # nothing of it is sent, and only how many records wait for someone else is said.
    open_field_page(page, live_server, second)
    page.evaluate("() => AnjuField.sync(true)")
    assert page.locator("#queue-list li").count() == 0
    assert page.inner_text("#queue-counts") == "Nothing recorded on this phone yet."
    assert page.inner_text("#queue-others") == OTHERS_WAITING
    assert page.is_hidden("#drafts")
    assert "Chunyan" not in page.content() and "inspector1" not in page.content()
    assert "李春花" not in page.inner_text("#queue")
    assert posts[sent_before:] == []
    assert Inspection.objects.count() == 0
    # Still on the phone, still the first inspector's, still waiting.
    assert stored_records(page) == [[record, first.pk, "waiting"]]
    assert page.evaluate("(id) => AnjuQueue.drafts(id).then((l) => l.length)", first.pk) == 1
    assert page.evaluate("(id) => AnjuQueue.drafts(id).then((l) => l.length)", second.pk) == 0

    # The first inspector back: the record is sent, as theirs, and the draft is there.
    log_out(page, live_server)
    open_field_page(page, live_server, first)
    page.wait_for_selector(
        f"#queue-list li[data-client-uuid='{record}'][data-status=sent]", timeout=60000
    )
    inspection = Inspection.objects.get()
    assert str(inspection.client_uuid) == record
    assert inspection.inspector == first
    assert page.is_hidden("#queue-others")
    page.wait_for_selector("#drafts-list li")
    assert page.inner_text("#drafts-list .queue-item__title") == "李春花 · 520399100200-0042"
    assert page.errors == []


def test_a_field_page_left_open_does_not_send_with_the_next_users_session(
    phone_context_, live_server, field
):
    first, second = field["inspector"], field["second"]
    # The installed app's window, left open on the first inspector's page...
    app = phone_page(phone_context_, live_server)
    # ...and a browser tab where the inspectors log out and in.
    tab = phone_page(phone_context_, live_server)
    posts = []
    phone_context_.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and "/api/" in r.url else None,
    )
    open_field_page(app, live_server, first)
    # A record waiting (as if made offline): nothing has sent it yet.
    record = app.evaluate(
        """(household) => {
            const config = JSON.parse(document.getElementById("field-config").textContent);
            const now = new Date().toISOString();
            const uuid = crypto.randomUUID();
            return AnjuQueue.add({
                client_uuid: uuid, user_id: config.user.id, user_name: config.user.name,
                household: household, household_label: "李春花 · 520399100200-0042",
                kind: "appraisal", started_at: now, ended_at: now, location: null,
                notes: "", appraisal: {site_hazards: [], foundation: "sound",
                    load_bearing_walls: "sound", columns_beams: "sound",
                    roof_structure: "sound", floors_slabs: "sound", envelope: "sound"},
                status: "waiting", attempts: 0, created_at: now,
            }, []).then(() => uuid);
        }""",
        field["target"].pk,
    )

    log_out(tab, live_server)
    # The app's page learns at once that its user is gone: it reloads, to the login page.
    app.wait_for_url(f"{live_server.url}/login/?next=/field/")
    open_field_page(tab, live_server, second)
    tab.evaluate("() => AnjuField.sync(true)")
    # Whatever wakes the app now (the network back), it has no page of the first to send.
    app.evaluate("() => window.dispatchEvent(new Event('online'))")

    assert posts == []
    assert Inspection.objects.count() == 0
    assert stored_records(tab) == [[record, first.pk, "waiting"]]

    log_out(tab, live_server)
    open_field_page(tab, live_server, first)
    tab.wait_for_selector(
        f"#queue-list li[data-client-uuid='{record}'][data-status=sent]", timeout=60000
    )
    assert Inspection.objects.get().inspector == first
    assert app.errors == [] and tab.errors == []
