"""The field page as a cheap phone on a bad network, shared by two inspectors, with its storage
full: the page and its drafts open offline, nobody sees another's households, and a full
phone says so instead of losing a photo (issue 12 review)."""

from urllib.parse import urlsplit

import pytest

from accounts.models import Role
from inspections.field_views import _precache_urls
from inspections.models import Inspection, Photo
from tests.inspections import images
from tests.inspections.test_field_browser import (
    field_rows,
    open_field_page,
    phone_context,
    phone_page,
    photo_file,
)
from tests.inspections.test_field_drafts_browser import (
    choose_household,
    draft_photo_sizes,
    drafts_written,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STORAGE_FULL = (
    "This phone's storage is full: the last changes to this draft are not kept on the phone, "
    "only on this screen. Do not close the page. Free some space (remove an offline village "
    "below, or files on the phone); the next change tries again."
)


@pytest.fixture
def field(regions, make_user):
    return field_rows(regions, make_user)


@pytest.fixture
def phone_context_(browser):
    context = phone_context(browser)
    yield context
    context.close()


@pytest.fixture
def phone(phone_context_, live_server):
    return phone_page(phone_context_, live_server)


def worker_ready(page):
    page.wait_for_selector("#sw-status[data-ready=true]")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")


def go_offline(page):
    page.context.set_offline(True)
    page.wait_for_function("() => navigator.onLine === false")


def test_after_one_online_visit_the_page_and_its_drafts_work_offline(phone, live_server, field):
    page = phone
    open_field_page(page, live_server, field["inspector"])
    worker_ready(page)
    choose_household(page)
    page.fill("#notes", "Roof tiles slipped.")
    front = photo_file("front.jpg", seed=41)
    page.set_input_files("input[data-angle=front]", front)
    page.wait_for_selector("[data-slot='before/front'] img.slot__preview")
    drafts_written(page)

    served, failed = {}, []
    page.on("response", lambda r: served.__setitem__(urlsplit(r.url).path, r.from_service_worker))
    page.on("requestfailed", lambda r: failed.append(urlsplit(r.url).path))
    page.context.set_offline(True)
    page.reload()  # the tab is killed, the phone has no network: the page opens all the same
    page.wait_for_selector("#drafts-list li")

    # Every file of ours the page asks for comes from the worker's copy, none failed.
    asked = page.evaluate(
        """() => [...document.querySelectorAll("script[src], link[rel=stylesheet], link[rel=icon]")]
            .map((node) => new URL(node.src || node.href).pathname)"""
    )
    precached = set(_precache_urls())
    assert set(asked) <= precached
    assert "/static/field/villages.js" in asked
    assert {path: served.get(path) for path in asked} == dict.fromkeys(asked, True)
    assert served["/field/"] is True
    assert [path for path in failed if path in precached] == []
    # The scripts ran and the styles apply.
    assert page.evaluate("() => [typeof AnjuQueue, typeof AnjuVillages, typeof AnjuField]") == [
        "object",
        "object",
        "object",
    ]
    assert page.evaluate(
        "() => getComputedStyle(document.querySelector('.search-row')).display"
    ) == ("flex")
    assert page.inner_text("#net-status") == "Offline"
    assert page.inner_text("#villages-status") == (
        "You are offline: only the villages kept on this phone are listed."
    )

    # The draft is there, and resuming it gives back the notes and the photo, offline.
    assert page.inner_text("#drafts-list .queue-item__title") == "李春花 · 520399100200-0042"
    page.click("#drafts-list .draft-resume")
    page.wait_for_selector("[data-slot='before/front'] img.slot__preview")
    assert page.input_value("#notes") == "Roof tiles slipped."
    assert draft_photo_sizes(page) == {"before/front": len(front["buffer"])}
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.slot__preview')]"
        ".every((img) => img.complete && img.naturalWidth === 800)"
    )
    assert page.errors == []
    assert page.external_requests == []


def test_on_a_shared_phone_nobody_sees_anothers_drafts_or_households(
    phone, live_server, field, regions, make_user
):
    page = phone
    first = field["inspector"]
    second = make_user(Role.INSPECTOR, [regions["village2"]], username="inspector2")
    # What an older page left: one list of households for whoever used the phone.
    page.goto(f"{live_server.url}/login/")
    page.evaluate(
        """() => localStorage.setItem("anju-field-households", JSON.stringify({
            "1": {id: 1, head_name: "李春花", archive_no: "520399100200-0042", seen: 1}}))"""
    )
    open_field_page(page, live_server, first)
    assert page.evaluate("() => localStorage.getItem('anju-field-households')") is None
    choose_household(page)  # online: the household is kept for offline search
    page.fill("#notes", "First inspector's draft.")
    drafts_written(page)

    # The second inspector, of another village, on the same phone.
    page.context.clear_cookies()
    open_field_page(page, live_server, second)
    page.wait_for_selector("#villages[data-ready]")
    assert page.is_hidden("#drafts")
    assert page.evaluate("id => AnjuQueue.drafts(id).then((list) => list.length)", second.pk) == 0
    go_offline(page)
    page.fill("#search-q", "春花")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#find-status.find-status--warn")
    assert page.locator(".result").count() == 0
    assert page.inner_text("#find-status") == (
        "You are offline and no household saved on this phone matches. "
        "Search while online to keep households for offline use."
    )

    # The first inspector, back on the phone, finds their draft and their households.
    page.context.set_offline(False)
    page.context.clear_cookies()
    open_field_page(page, live_server, first)
    page.wait_for_selector("#drafts-list li")
    assert page.inner_text("#drafts-list .queue-item__title") == "李春花 · 520399100200-0042"
    go_offline(page)
    page.fill("#search-q", "春花")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(f".result[data-household='{field['target'].pk}']")
    assert page.errors == []
    assert page.external_requests == []


# A small phone, with room for what Chromium still counts after space is freed: its usage
# figure keeps the draft database's deleted records (about 3 MB here) until it compacts them,
# at a moment of its own. With 4 MB the freed phone stayed "full" for minutes on a loaded
# machine and the record could not be queued.
QUOTA = 8_000_000


def limit_storage(page, live_server, quota: int = QUOTA):
    """A small phone: Chromium's quota for the live server's origin, set before the origin
    stores anything (Chromium reads it once). The DevTools session stays with the page."""
    page.cdp = page.context.new_cdp_session(page)
    page.cdp.send("Storage.overrideQuotaForOrigin", {"origin": live_server.url, "quotaSize": quota})


def fill_storage(page, room: int = 200_000, sizes=(262144, 16384)):
    """Fill the origin's storage up to about `room` bytes below its quota (less than a
    camera photo, more than a form) with random bytes, in a database of its own: what
    other files take on a full phone."""
    page.evaluate(
        """async ([room, sizes]) => {
            const db = await new Promise((resolve, reject) => {
                const open = indexedDB.open("filler", 1);
                open.onupgradeneeded = () =>
                    open.result.createObjectStore("blobs", { autoIncrement: true });
                open.onsuccess = () => resolve(open.result);
                open.onerror = () => reject(open.error);
            });
            const random = (size) => {
                const bytes = new Uint8Array(size);
                for (let at = 0; at < size; at += 65536) {
                    crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
                }
                return new Blob([bytes]);
            };
            const put = (size) => new Promise((resolve) => {
                const tx = db.transaction("blobs", "readwrite");
                tx.objectStore("blobs").put(random(size));
                tx.oncomplete = () => resolve(true);
                tx.onabort = () => resolve(false);
            });
            const { usage, quota } = await navigator.storage.estimate();
            let free = QUOTA - usage - room;
            for (const size of sizes) {
                while (free > size && (await put(size))) free -= size;
            }
            db.close();
        }""".replace("QUOTA", str(QUOTA)),
        [room, list(sizes)],
    )


def big_photo(name: str, seed: int) -> dict:
    """A camera photo of 600 kB: more than the room fill_storage() leaves."""
    return {"name": name, "mimeType": "image/jpeg", "buffer": images.noisy_jpeg(600_000, seed)}


def free_storage(page):
    page.evaluate(
        """() => new Promise((resolve, reject) => {
            const request = indexedDB.deleteDatabase("filler");
            request.onsuccess = () => resolve();
            request.onerror = () => reject(request.error);
        })"""
    )


def test_a_full_phone_says_so_and_loses_no_photo(phone, live_server, field):
    page = phone
    limit_storage(page, live_server)
    open_field_page(page, live_server, field["inspector"])
    worker_ready(page)
    choose_household(page)
    page.check("input[name=kind][value=progress]")
    drafts_written(page)

    # The phone is full: the photo is on the screen, the page says it is not kept.
    fill_storage(page)
    front = big_photo("front.jpg", seed=51)
    page.set_input_files("input[data-angle=other]", front)
    page.wait_for_selector("[data-slot='before/other'] img.slot__preview")
    page.wait_for_selector("#draft-status[data-error=quota]")
    assert page.inner_text("#draft-status") == STORAGE_FULL
    # Another change is kept no better: the page still says so (never "kept" with a photo
    # missing from the phone).
    page.fill("#notes", "Walls up to the first floor.")
    page.wait_for_selector("#draft-status[data-pending='0']")
    assert page.get_attribute("#draft-status", "data-error") == "quota"
    assert page.inner_text("#draft-status") == STORAGE_FULL

    # Sending needs room too: refused with the same plain words, the form stays as it is.
    page.click("#submit")
    page.wait_for_selector("#form-error:not(:empty)")
    assert page.inner_text("#form-error") == (
        "This phone's storage is full: the record could not be kept for sending. It is still "
        "in the form. Free some space (remove an offline village, or files on the phone), "
        "then send again."
    )
    assert page.is_visible("#inspection-form")
    assert page.input_value("#notes") == "Walls up to the first floor."
    assert Inspection.objects.count() == 0

    # Space again: the next change keeps the photo refused before, and says so.
    free_storage(page)
    page.fill("#notes", "Walls up to the first floor; roof next week.")
    page.wait_for_function(
        "() => { const s = document.querySelector('#draft-status');"
        " return s.dataset.pending === '0' && !s.dataset.error && s.textContent; }"
    )
    assert page.inner_text("#draft-status").startswith("Draft kept on this phone (")
    assert draft_photo_sizes(page) == {"before/other": len(front["buffer"])}
    page.reload()
    page.click("#drafts-list .draft-resume")
    page.wait_for_selector("[data-slot='before/other'] img.slot__preview")
    assert page.input_value("#notes") == "Walls up to the first floor; roof next week."
    # Chromium's quota accounting catches up with the freed space a moment later: until it
    # does, sending says the storage is full and keeps the form, and the inspector sends again
    # as the message asks.
    for _attempt in range(20):
        page.click("#submit")
        page.wait_for_function(
            "() => document.querySelector('#queue-list li') ||"
            " document.querySelector('#form-error').textContent"
        )
        if page.locator("#queue-list li").count():
            break
        assert page.input_value("#notes") == "Walls up to the first floor; roof next week."
        page.wait_for_timeout(500)
    else:
        pytest.fail(f"never queued: {page.inner_text('#form-error')}")
    # The first sends may meet the lagging quota too, and the record then waits its backoff
    # (5 s, 10 s, 20 s, …): the inspector taps "Send now", as the page offers.
    for _attempt in range(40):
        if page.locator("#queue-list li[data-status=sent]").count():
            break
        if page.is_visible("#retry") and page.is_enabled("#retry"):
            page.click("#retry")
        page.wait_for_timeout(1500)
    page.wait_for_selector("#queue-list li[data-status=sent]", timeout=60000)
    inspection = Inspection.objects.get()
    assert (inspection.kind, inspection.notes) == (
        "progress",
        "Walls up to the first floor; roof next week.",
    )
    assert Photo.objects.get().inspection == inspection
    assert page.errors == []


def test_photos_a_full_phone_could_not_keep_are_named_when_the_draft_is_resumed(
    phone, live_server, field
):
    """A draft whose form was kept but not its photo (refused for space, then the tab was
    killed): resumed, it names the photo to take again instead of silently dropping it."""
    page = phone
    open_field_page(page, live_server, field["inspector"])
    choose_household(page)
    page.fill("#notes", "Door frame cracked.")
    drafts_written(page)
    # What the phone kept: the form says it had a front photo; no photo record came with it.
    page.evaluate(
        """(userId) => AnjuQueue.drafts(userId).then((list) => AnjuQueue.saveDraft(
            Object.assign(list[0], { photos: ["before/front"] }), []))""",
        field["inspector"].pk,
    )
    page.reload()
    page.click("#drafts-list .draft-resume")
    page.wait_for_selector("#draft-status[data-error=lost]")
    assert page.inner_text("#draft-status") == (
        "Photos this draft had that the phone could not keep (its storage was full): 1. "
        "Take them again: Before works · Front"
    )
    assert page.input_value("#notes") == "Door frame cracked."
    assert page.inner_text("[data-slot='before/front'] .slot__status") == "Missing"
    assert page.errors == []


def test_only_the_newest_sent_records_stay_on_the_phone(phone, live_server, field):
    page = phone
    open_field_page(page, live_server, field["inspector"])
    user = field["inspector"].pk
    # Five sent records (one with a kept thumbnail), a refused one, another user's one.
    page.evaluate(
        """(userId) => {
            const records = [];
            for (let n = 0; n < 5; n += 1) {
                records.push({client_uuid: "sent-" + n, user_id: userId, status: "sent",
                    created_at: new Date(Date.UTC(2026, 0, 1 + n)).toISOString()});
            }
            records.push({client_uuid: "refused", user_id: userId, status: "failed",
                created_at: new Date(Date.UTC(2025, 0, 1)).toISOString()});
            records.push({client_uuid: "other", user_id: userId + 1, status: "sent",
                created_at: new Date(Date.UTC(2025, 0, 1)).toISOString()});
            return Promise.all(records.map((r) => AnjuQueue.put("inspections", r)))
                .then(() => AnjuQueue.put("photos", {client_uuid: "p0", inspection: "sent-0",
                    user_id: userId, status: "sent", blob: null}))
                .then(() => AnjuQueue.putThumb({photo: "p0", inspection: "sent-0",
                    user_id: userId, blob: new Blob(["x"]), size: 1}));
        }""",
        user,
    )
    assert page.evaluate("() => AnjuQueue.thumbs().then((t) => t.map((x) => x.photo))") == ["p0"]
    dropped = page.evaluate("() => AnjuQueue.pruneSent(3)")
    assert sorted(dropped) == ["sent-0", "sent-1"]
    kept = page.evaluate(
        "() => AnjuQueue.all().then((s) => [s.inspections.map((r) => r.client_uuid), s.photos])"
    )
    assert sorted(kept[0]) == ["other", "refused", "sent-2", "sent-3", "sent-4"]
    assert kept[1] == []
    assert page.evaluate("() => AnjuQueue.thumbs()") == []
    assert page.evaluate("() => AnjuQueue.SENT_KEPT") == 200
    assert page.errors == []
