"""The field page keeps the form as a draft on the phone from the first tap (issue 12).

Real Chromium, real IndexedDB, real reloads and a second tab standing in for one that
Android killed while the camera was open.
"""

import pytest

from inspections.models import Appraisal, Inspection, Photo, RequiredPhotoSlot
from tests.inspections.test_field_browser import (
    MEMBERS,
    derived,
    field_rows,
    open_field_page,
    phone_context,
    phone_page,
    photo_file,
    rate,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LABEL = "李春花 · 520399100200-0042"


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


def choose_household(page, q="春花"):
    page.fill("#search-q", q)
    page.click("#search-form button[type=submit]")
    # The answer to this search, not a result left from an earlier one.
    page.locator(f".result:has-text('{q}')").first.tap()
    page.wait_for_selector("#inspection-form:not([hidden])")


def drafts_written(page):
    """Every change so far is in IndexedDB (the page says so)."""
    page.wait_for_selector("#draft-status[data-pending='0']:not(:empty)")


class Dialogs:
    """Answers every confirm() the page asks, "OK" or "Cancel" as told; keeps the questions."""

    def __init__(self, page, accept: bool):
        self.asked: list[str] = []
        self.accept = accept
        page.on("dialog", self._answer)

    def _answer(self, dialog):
        self.asked.append(dialog.message)
        if self.accept:
            dialog.accept()
        else:
            dialog.dismiss()


def draft_photo_sizes(page) -> dict[str, int]:
    """The photos of the phone's one draft, as IndexedDB keeps them: slot -> bytes."""
    return page.evaluate(
        """() => {
            const userId = JSON.parse(document.getElementById("field-config").textContent).user.id;
            return window.AnjuQueue.drafts(userId).then((drafts) => {
                if (drafts.length !== 1) throw new Error(`${drafts.length} drafts`);
                return window.AnjuQueue.getDraft(drafts[0].id);
            }).then((stored) => Object.fromEntries(stored.photos.map((p) => [p.key, p.blob.size])));
        }"""
    )


def previews_shown(page) -> dict[str, int]:
    """The slots whose preview is a loaded picture: slot -> its width in pixels."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("#slots .slot")]
            .map((slot) => [slot.dataset.slot, slot.querySelector("img.slot__preview")])
            .filter(([, img]) => img && img.complete)
            .map(([key, img]) => [key, img.naturalWidth]))"""
    )


def assert_form_restored(page, front: dict, door: dict):
    """What test_a_half_filled_form_... filled in, every field and both photos."""
    assert page.inner_text("#chosen-household strong") == "李春花"
    assert page.is_checked("input[name=kind][value=appraisal]")
    assert page.is_checked("input[name='member-foundation'][value=sound]")
    assert page.is_checked("input[name='member-load_bearing_walls'][value=damaged]")
    assert page.is_checked("input[name='member-roof_structure'][value=dangerous]")
    for member in ("columns_beams", "floors_slabs", "envelope"):
        assert page.locator(f"input[name='member-{member}']:checked").count() == 0
    assert page.is_checked("input[name=site_hazards][value=flood]")
    assert not page.is_checked("input[name=site_hazards][value=landslide]")
    assert page.input_value("#grade-override") == "B"
    assert page.input_value("#override-reason") == "Walls were tied last spring."
    assert page.input_value("#notes") == "Crack over the door;\nroof sags at the east end."
    assert derived(page) == "D"  # flood is a site hazard
    assert page.inner_text("#missing-summary") == "All required photos are taken."
    # The photos are the very files taken, kept in IndexedDB and shown again.
    assert draft_photo_sizes(page) == {
        "before/front": len(front["buffer"]),
        "before/householder": len(door["buffer"]),
    }
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.slot__preview')].every((i) => i.complete)"
    )
    assert previews_shown(page) == {"before/front": 800, "before/householder": 800}


def test_a_half_filled_form_and_its_photos_survive_a_reload_and_a_killed_tab(
    phone, phone_context_, live_server, field
):
    page = phone
    open_field_page(page, live_server, field["inspector"])
    assert page.is_hidden("#drafts")
    choose_household(page)
    rate(page, "foundation", "sound")
    rate(page, "load_bearing_walls", "damaged")
    rate(page, "roof_structure", "dangerous")
    page.check("input[name=site_hazards][value=flood]")
    page.select_option("#grade-override", "B")
    page.fill("#override-reason", "Walls were tied last spring.")
    page.fill("#notes", "Crack over the door;\nroof sags at the east end.")
    front, door = photo_file("front.jpg", seed=11), photo_file("door.jpg", seed=12)
    page.set_input_files("input[data-angle=front]", front)
    page.set_input_files("input[data-angle=householder]", door)
    page.wait_for_selector("[data-slot='before/householder'] img.slot__preview")
    drafts_written(page)

    page.reload()  # the battery dies, the phone restarts, the page opens again
    page.wait_for_selector("#drafts-list li")
    assert page.is_hidden("#inspection-form")
    assert page.locator("#drafts-list li").count() == 1
    assert page.inner_text("#drafts-list .queue-item__title") == LABEL
    detail = page.inner_text("#drafts-list .draft__detail")
    assert detail.startswith("Safety appraisal · Photos: 2 · Last change ")
    page.click("#drafts-list .draft-resume")
    page.wait_for_selector("#inspection-form:not([hidden])")
    assert_form_restored(page, front, door)
    page.wait_for_selector("#drafts", state="hidden")  # the open draft is the form

    # Android kills the tab while the camera is open; the inspector opens the page again.
    second = phone_page(phone_context_, live_server)
    page.close()
    second.goto(f"{live_server.url}/field/")
    second.wait_for_selector("#drafts-list li")
    second.click("#drafts-list .draft-resume")
    second.wait_for_selector("#inspection-form:not([hidden])")
    assert_form_restored(second, front, door)

    # Finished and sent: the draft leaves the phone's drafts, the record reaches the server.
    for member in ("columns_beams", "floors_slabs", "envelope"):
        rate(second, member, "sound")
    second.click("#submit")
    second.wait_for_selector("#queue-list li[data-status=sent]", timeout=60000)
    assert second.is_hidden("#drafts")
    assert (
        second.evaluate(
            "() => window.AnjuQueue.drafts(JSON.parse("
            "document.getElementById('field-config').textContent).user.id)"
        )
        == []
    )
    inspection = Inspection.objects.get()
    assert inspection.house.household == field["target"]
    assert inspection.notes == "Crack over the door;\nroof sags at the east end."
    appraisal = Appraisal.objects.get()
    assert appraisal.ratings() == {
        "foundation": "sound",
        "load_bearing_walls": "damaged",
        "columns_beams": "sound",
        "roof_structure": "dangerous",
        "floors_slabs": "sound",
        "envelope": "sound",
    }
    assert appraisal.site_hazards == ["flood"]
    assert (appraisal.derived_grade, appraisal.grade) == ("D", "B")
    assert appraisal.override_reason == "Walls were tied last spring."
    photos = {p.angle: p for p in Photo.objects.all()}
    assert sorted(photos) == ["front", "householder"]
    assert photos["front"].byte_size == len(front["buffer"])
    assert photos["householder"].byte_size == len(door["buffer"])

    # A reload after sending: no draft comes back.
    second.reload()
    second.wait_for_selector("#queue-list li[data-status=sent]")
    assert second.is_hidden("#drafts")
    assert second.errors == []
    assert second.external_requests == []


def test_a_draft_is_discarded_only_when_the_inspector_confirms(phone, live_server, field):
    page = phone
    open_field_page(page, live_server, field["inspector"])
    choose_household(page)
    page.fill("#notes", "Nobody at home.")
    drafts_written(page)
    page.reload()
    page.wait_for_selector("#drafts-list li")

    dialogs = Dialogs(page, accept=False)
    page.click("#drafts-list .draft-discard")
    assert dialogs.asked == [
        f"Discard the draft for {LABEL}, with its photos? This cannot be undone."
    ]
    page.reload()
    page.wait_for_selector("#drafts-list li")
    assert page.locator("#drafts-list li").count() == 1

    dialogs.accept = True
    page.click("#drafts-list .draft-discard")
    page.wait_for_selector("#drafts", state="hidden")
    page.reload()
    page.wait_for_selector("#queue-counts:not(:empty)")
    assert page.evaluate("window.AnjuField.renderDrafts().then((drafts) => drafts.length)") == 0
    assert page.is_hidden("#drafts")
    assert Inspection.objects.count() == 0

    # The open form's own "Discard this draft" too.
    choose_household(page)
    page.fill("#notes", "Wrong house.")
    drafts_written(page)
    page.click("#discard-draft")
    page.wait_for_selector("#inspection-form", state="hidden")
    page.reload()
    page.wait_for_selector("#queue-counts:not(:empty)")
    assert page.evaluate("window.AnjuField.renderDrafts().then((drafts) => drafts.length)") == 0
    assert page.is_hidden("#drafts")
    assert page.errors == []


@pytest.fixture
def progress_slots(field):
    """Progress visits bring a "during" front photo; appraisals a "before" front and door."""
    RequiredPhotoSlot.objects.create(kind="progress", stage="during", angle="front")
    return field


def test_changing_the_kind_keeps_the_photos_and_asks_before_setting_any_aside(
    phone, live_server, progress_slots
):
    page, field = phone, progress_slots
    open_field_page(page, live_server, field["inspector"])
    choose_household(page)
    # A kind with the same slot keeps the photo in it, without a question.
    page.check("input[name=kind][value=completion]")  # no required slot: "before/other"
    page.set_input_files("input[data-angle=other]", photo_file("other.jpg", seed=21))
    page.wait_for_selector("[data-slot='before/other'] img.slot__preview")
    dialogs = Dialogs(page, accept=False)
    asked = dialogs.asked
    page.check("input[name=kind][value=appraisal]")
    assert page.is_checked("input[name=kind][value=appraisal]")
    assert page.locator("[data-slot='before/other'] img.slot__preview").count() == 1
    assert asked == []

    # A photo with no slot in the new kind: asked first; "cancel" leaves the kind as it was.
    front = photo_file("front.jpg", seed=22)
    page.set_input_files("input[data-angle=front]", front)
    page.wait_for_selector("[data-slot='before/front'] img.slot__preview")
    page.click("input[name=kind][value=progress]")
    assert asked == [
        "Photos with no slot in “Works progress”: 2. They will be set aside: kept in this "
        "draft, not sent with this kind, and back in their slots if you choose the kind "
        "again. Change the kind?"
    ]
    assert page.is_checked("input[name=kind][value=appraisal]")
    assert page.locator("img.slot__preview").count() == 2
    assert page.is_hidden("#aside")

    # "OK": the kind changes, the photos wait aside, in the draft (here after a reload).
    drafts_written(page)
    page.reload()
    page.wait_for_selector("#drafts-list li")
    page.click("#drafts-list .draft-resume")
    page.wait_for_selector("[data-slot='before/front'] img.slot__preview")
    dialogs.accept = True
    page.click("input[name=kind][value=progress]")
    assert page.is_checked("input[name=kind][value=progress]")
    assert len(asked) == 2
    assert page.locator("#slots img.slot__preview").count() == 0
    assert page.inner_text("#aside-title") == "Set aside, not sent with this kind (2):"
    assert sorted(
        page.locator("#aside-photos li").evaluate_all("(items) => items.map((i) => i.dataset.slot)")
    ) == ["before/front", "before/other"]
    drafts_written(page)

    # Back to the first kind: every photo in its slot again, nothing asked.
    page.check("input[name=kind][value=appraisal]")
    assert len(asked) == 2
    assert page.locator("#slots img.slot__preview").count() == 2
    assert page.is_hidden("#aside")
    assert draft_photo_sizes(page)["before/front"] == len(front["buffer"])

    # Sent as a progress visit: the photos set aside would go with the draft, so it asks.
    page.click("input[name=kind][value=progress]")
    page.set_input_files("input[data-angle=front][data-stage=during]", photo_file("d.jpg", seed=23))
    page.wait_for_selector("[data-slot='during/front'] img.slot__preview")
    page.click("#submit")
    page.wait_for_selector("#queue-list li[data-status=sent]", timeout=60000)
    assert asked[-1] == (
        "Photos set aside: 2. They will not be sent and will be deleted with this draft. "
        "Send anyway?"
    )
    inspection = Inspection.objects.get()
    assert inspection.kind == "progress"
    assert [(p.stage, p.angle) for p in Photo.objects.all()] == [("during", "front")]
    assert page.errors == []


def test_the_grade_stays_empty_until_a_member_is_rated(phone, live_server, field):
    page = phone
    open_field_page(page, live_server, field["inspector"])
    choose_household(page)
    assert derived(page) == ""
    assert page.is_hidden("#derived-grade")
    assert page.get_attribute("#derived-grade", "data-grade") == ""
    assert page.inner_text("#rate-hint") == "Not rated yet."
    assert page.inner_text("#bar-grade") == ""
    assert page.is_hidden("#bar-grade")
    assert page.locator("#grade-same").inner_text() == "As derived"
    # A site hazard alone rates no member: still nothing.
    page.check("input[name=site_hazards][value=landslide]")
    assert derived(page) == ""
    page.uncheck("input[name=site_hazards][value=landslide]")

    rate(page, "envelope", "sound")
    assert derived(page) == "A"
    assert page.is_visible("#derived-grade")
    assert page.inner_text("#bar-grade") == "A"
    assert page.inner_text("#rate-hint") == "Rate every member: 5 still to rate."
    assert page.locator("#grade-same").inner_text() == "As derived (A)"
    rate(page, "envelope", "damaged")
    assert derived(page) == "B"
    for member in MEMBERS:
        rate(page, member, "sound")
    assert derived(page) == "A"
    assert page.inner_text("#rate-hint") == ""
    assert page.errors == []


def test_the_saved_notice_says_sent_once_the_queue_has_sent_the_record(phone, live_server, field):
    page = phone
    open_field_page(page, live_server, field["inspector"])
    choose_household(page)
    page.check("input[name=kind][value=progress]")
    page.fill("#notes", "Roof beams up.")
    page.context.set_offline(True)
    page.click("#submit")
    page.wait_for_selector("#queue-list li[data-status=waiting]")
    assert page.inner_text("#saved-message") == (
        f"Saved on this phone. It will be sent when the network allows: {LABEL}."
    )
    assert Inspection.objects.count() == 0

    page.context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_selector("#saved-message[data-status=sent]", timeout=60000)
    assert page.inner_text("#saved-message") == f"Sent to the server: {LABEL}."
    assert page.get_attribute("#queue-list li", "data-status") == "sent"
    assert Inspection.objects.get().notes == "Roof beams up."
    assert page.errors == []


def test_records_queued_before_the_drafts_upgrade_are_kept_and_sent(phone, live_server, field):
    """A phone with the old database (version 1, queue only) opens the new page."""
    page = phone
    open_field_page(page, live_server, field["inspector"])
    page.goto(f"{live_server.url}/households/")  # same origin, no field page scripts
    page.evaluate(
        """([household, userId]) => new Promise((resolve, reject) => {
            indexedDB.deleteDatabase("anju-field").onsuccess = () => {
                const open = indexedDB.open("anju-field", 1);
                open.onupgradeneeded = () => {
                    const db = open.result;
                    db.createObjectStore("inspections", { keyPath: "client_uuid" });
                    db.createObjectStore("photos", { keyPath: "client_uuid" })
                        .createIndex("inspection", "inspection");
                };
                open.onsuccess = () => {
                    const db = open.result;
                    const tx = db.transaction(["inspections"], "readwrite");
                    const now = new Date().toISOString();
                    tx.objectStore("inspections").put({
                        client_uuid: "6f1d8a1e-3c2b-4f5a-9e7d-0a1b2c3d4e5f", user_id: userId,
                        user_name: "inspector1", household: household,
                        household_label: "李春花 · 520399100200-0042", kind: "progress",
                        started_at: now, ended_at: now, location: null,
                        notes: "Queued by the old page.", appraisal: null,
                        status: "waiting", attempts: 0, created_at: now,
                    });
                    tx.oncomplete = () => { db.close(); resolve(); };
                    tx.onerror = () => reject(tx.error);
                };
                open.onerror = () => reject(open.error);
            };
        })""",
        [field["target"].pk, field["inspector"].pk],
    )
    page.goto(f"{live_server.url}/field/")
    page.wait_for_selector("#queue-list li[data-status=sent]", timeout=60000)
    inspection = Inspection.objects.get()
    assert str(inspection.client_uuid) == "6f1d8a1e-3c2b-4f5a-9e7d-0a1b2c3d4e5f"
    assert inspection.notes == "Queued by the old page."
    assert page.evaluate(
        """() => new Promise((resolve) => {
            const open = indexedDB.open("anju-field");
            open.onsuccess = () => {
                const db = open.result;
                resolve([db.version, [...db.objectStoreNames].sort()]);
                db.close();
            };
        })"""
    ) == [3, ["draft_photos", "drafts", "inspections", "photos", "sent_thumbs"]]
    assert page.errors == []
