"""Issue 12: the renovation chain reviewed honestly.

Flag acknowledgements (a step that relies on flagged photos needs each flag accepted with a
reason, in the case's chain), the review opinion and the explicit confirmation every step
needs, the messages of the case page (not "closed" when it is not; after-photos not
"missing" before the works), and the services' clock (`at=`) for historical imports.
"""

import datetime
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.chain import verify_chain
from inspections.models import InspectionKind, PhotoAngle, PhotoStage
from renovation.errors import CaseRefused
from renovation.evidence import unacknowledged_flags
from renovation.models import CaseEvent, CaseEventKind, CaseState, Payment, RenovationCase
from renovation.services import case_act, case_batch_act, case_open, case_pay
from tests.inspections.factories import upload_photo
from tests.inspections.images import house_picture, jpeg, make_exif
from tests.renovation.factories import (
    CONFIRMED,
    OPINION,
    SMALL_SLOTS,
    act,
    appraise,
    case_in_state,
    case_team,
    eligible_house,
    photograph,
    subsidy_standard,
)
from tests.renovation.test_case_pages import text

pytestmark = pytest.mark.django_db

# About 2 km north of the test households (tests.factories: 107.905, 27.205).
FAR_LAT = 27.205 + 0.018


def approved_with_flagged_before_photos() -> RenovationCase:
    """A case approved by the county whose before-photos are real JPEGs without EXIF data:
    each carries the flags "no GPS" and "no capture time"."""
    case = case_in_state(CaseState.COUNTY_APPROVED)
    stage, angles = SMALL_SLOTS[InspectionKind.APPRAISAL]
    for i, angle in enumerate(angles):
        upload_photo(case.entry_appraisal.inspection, jpeg(seed=40 + i), stage=stage, angle=angle)
    return case


def start(case, **kwargs):
    return case_act(user=case.team["inspector"], case_id=case.pk, action="start_works", **kwargs)


def chain_of(case) -> list[tuple]:
    return list(case.events.order_by("id").values_list("kind", "to_state", "actor_id"))


# ---------------------------------------------------------------------------------------
# Flag acknowledgements


def test_a_step_relying_on_flagged_photos_is_refused_until_each_flag_is_acknowledged():
    case = approved_with_flagged_before_photos()
    pending = unacknowledged_flags(case, "start_works")
    assert sorted((c.photo.angle, c.code) for c in pending) == [
        ("front", "no_gps"),
        ("front", "no_time"),
        ("roof", "no_gps"),
        ("roof", "no_time"),
    ]
    before = chain_of(case)

    with pytest.raises(CaseRefused) as refused:
        start(case, **CONFIRMED)
    message = str(refused.value.message)
    assert message.startswith(
        "The step “Start the works” relies on flagged evidence: acknowledge each flag with a "
        "reason first. Not acknowledged: Front (Before works), photo "
    )
    for check in pending:
        assert f"photo {check.key}: {check.label}" in message
    # One flag short, or a flag with an empty reason: refused, and nothing recorded.
    some = [{"photo": c.key, "flag": c.code, "reason": "Seen on site."} for c in pending[:3]]
    with pytest.raises(CaseRefused) as refused:
        start(case, acknowledgements=some, **CONFIRMED)
    assert str(refused.value.message).endswith(f"Not acknowledged: {pending[3].named()}.")
    empty = [*some, {"photo": pending[3].key, "flag": pending[3].code, "reason": "  "}]
    with pytest.raises(CaseRefused) as refused:
        start(case, acknowledgements=empty, **CONFIRMED)
    assert str(refused.value.message) == f"Write why you accept this flag: {pending[3].named()}."
    stranger = [{"photo": pending[0].key, "flag": "far_from_house", "reason": "No."}]
    with pytest.raises(CaseRefused) as refused:
        start(case, acknowledgements=stranger, **CONFIRMED)
    assert str(refused.value.message) == (
        f"Photo {pending[0].key} has no flag “far_from_house” among the evidence the step "
        "“Start the works” relies on."
    )
    assert chain_of(case) == before

    every = [*some, {"photo": pending[3].key, "flag": pending[3].code, "reason": "Doorplate."}]
    done = start(case, acknowledgements=every, **CONFIRMED)

    assert done.state == CaseState.WORKS_STARTED
    inspector = case.team["inspector"]
    acks = list(case.events.filter(kind=CaseEventKind.ACKNOWLEDGE).order_by("id"))
    assert [(e.actor, e.from_state, e.to_state) for e in acks] == [
        (inspector, "county_approved", "county_approved")
    ] * 4
    assert [e.data for e in acks] == [
        {"photo": a["photo"], "flag": a["flag"], "reason": a["reason"], "for_step": "start_works"}
        for a in every
    ]
    step = case.events.latest("id")
    assert (step.data["step"], step.at) == ("start_works", acks[0].at)
    assert acks[-1].pk < step.pk
    assert verify_chain() == (CaseEvent.objects.count(), None)
    assert unacknowledged_flags(done, "start_works") == []


def test_a_flag_acknowledged_once_stays_acknowledged_for_the_case():
    case = case_in_state(CaseState.WORKS_FINISHED)  # after-photos without EXIF, acknowledged
    acks = case.events.filter(kind=CaseEventKind.ACKNOWLEDGE)
    finished = acks.filter(data__for_step="finish_works").count()
    assert finished == 4  # two after-photos, two flags each
    act(user=case.team["county"], case_id=case.pk, action="fail_completion", reason="Gutter.")
    # Finishing the works again needs no acknowledgement: the flags were accepted before.
    again = case_act(
        user=case.team["inspector"], case_id=case.pk, action="finish_works", **CONFIRMED
    )
    assert again.state == CaseState.WORKS_FINISHED
    assert acks.filter(data__for_step="finish_works").count() == finished
    # Acknowledging them again records nothing more.
    flags = [
        {"photo": str(e.data["photo"]), "flag": e.data["flag"], "reason": "Again."}
        for e in acks.filter(data__for_step="finish_works")
    ]
    act(user=case.team["county"], case_id=case.pk, action="fail_completion", reason="Tiles.")
    case_act(
        user=case.team["inspector"],
        case_id=case.pk,
        action="finish_works",
        acknowledgements=flags,
        **CONFIRMED,
    )
    assert acks.filter(data__for_step="finish_works").count() == finished


def test_a_completion_photo_taken_2_km_away_must_be_acknowledged_before_the_check_passes():
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    visit = case.completion_appraisal.inspection
    taken = visit.started_at + datetime.timedelta(minutes=5)
    exif = make_exif(taken_at=timezone.localtime(taken), lat=FAR_LAT, lon=107.905, accuracy=5)
    photo, _created = upload_photo(
        visit, jpeg(house_picture(7), exif=exif), stage=PhotoStage.AFTER, angle=PhotoAngle.FRONT
    )
    photo.refresh_from_db()
    assert [f["code"] for f in photo.flags] == ["far_from_house"]
    township = case.team["township"]

    with pytest.raises(CaseRefused) as refused:
        case_act(user=township, case_id=case.pk, action="pass_completion", **CONFIRMED)
    assert str(refused.value.message).endswith(
        f"Not acknowledged: Front (After works), photo {photo.key}: Taken far from the house."
    )
    assert RenovationCase.objects.get(pk=case.pk).state == CaseState.WORKS_FINISHED

    done = case_act(
        user=township,
        case_id=case.pk,
        action="pass_completion",
        acknowledgements=[
            {"photo": str(photo.key), "flag": "far_from_house", "reason": "Taken from the hill."}
        ],
        **CONFIRMED,
    )
    assert done.state == CaseState.COMPLETION_PASSED
    ack = case.events.get(kind=CaseEventKind.ACKNOWLEDGE)
    assert (ack.actor, ack.data["for_step"]) == (township, "pass_completion")


def test_the_county_approval_needs_the_entry_appraisals_flagged_photos_acknowledged():
    case = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False)
    photo, _created = upload_photo(case.entry_appraisal.inspection, jpeg(seed=3))
    county = case.team["county"]
    with pytest.raises(CaseRefused) as refused:
        case_act(user=county, case_id=case.pk, action="county_approve", **CONFIRMED)
    assert f"photo {photo.key}: No GPS position in the photo" in str(refused.value.message)
    # One batch of several cases refuses it on its own, with the same reason.
    [row] = case_batch_act(
        user=county,
        action="county_approve",
        case_ids=[case.pk],
        request_key="flags-batch",
        **CONFIRMED,
    )
    assert (row.done, row.message) == (False, str(refused.value.message))
    done = act(user=county, case_id=case.pk, action="county_approve")
    assert done.state == CaseState.COUNTY_APPROVED


def test_over_the_api_a_step_takes_its_acknowledgements_and_the_case_lists_its_flags():
    case = approved_with_flagged_before_photos()
    client = APIClient()
    client.force_authenticate(case.team["inspector"])
    url = f"/api/cases/{case.pk}/act/"
    body = client.get(f"/api/cases/{case.pk}/").json()
    [start_works] = [a for a in body["available_actions"] if a["action"] == "start_works"]
    assert start_works["allowed"] is True
    flags = start_works["flags"]
    assert sorted((f["flag"], f["label"]) for f in flags) == [
        ("no_gps", "No GPS position in the photo"),
        ("no_gps", "No GPS position in the photo"),
        ("no_time", "No capture time in the photo"),
        ("no_time", "No capture time in the photo"),
    ]
    flagged = body["evidence"]["before"]["flagged"]
    assert [len(p["flags"]) for p in flagged] == [2, 2]
    assert {f["acknowledged"] for p in flagged for f in p["flags"]} == {False}

    refused = client.post(
        url, {**CONFIRMED, "action": "start_works", "request_key": "s1"}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("The step “Start the works” relies on flagged")

    acknowledgements = [
        {"photo": f["photo"], "flag": f["flag"], "reason": "The doorplate matches."} for f in flags
    ]
    done = client.post(
        url,
        {
            **CONFIRMED,
            "action": "start_works",
            "acknowledgements": acknowledgements,
            "request_key": "s2",
        },
        format="json",
    )
    assert done.status_code == 200
    answer = done.json()
    assert answer["state"] == CaseState.WORKS_STARTED
    acks = [e for e in answer["timeline"] if e["kind"] == "acknowledge"]
    assert len(acks) == 4
    assert {e["data"]["reason"] for e in acks} == {"The doorplate matches."}
    accepted = [f for p in answer["evidence"]["before"]["flagged"] for f in p["flags"]]
    assert {(f["acknowledged"], f["reason"]) for f in accepted} == {
        (True, "The doorplate matches.")
    }
    assert {f["acknowledged_by"]["username"] for f in accepted} == {case.team["inspector"].username}


def test_on_the_page_the_checklist_shows_the_flags_and_the_step_asks_a_reason_for_each(client):
    case = approved_with_flagged_before_photos()
    client.force_login(case.team["inspector"])
    url = reverse("cases:case_detail", args=[case.pk])
    page = client.get(url)
    html = page.content.decode()
    # Flagged photos are no plain ✓ on the checklist; each flag is named.
    assert re.findall(r'<li class="check check--flagged" data-slot="(\w+)">', html) == [
        "front",
        "roof",
    ]
    assert "Front: present, flagged" in text(page)
    assert text(page).count("No GPS position in the photo : The photo carries no GPS") == 2
    assert html.count('name="ack_reason"') == 4
    keys = re.findall(r'name="ack_photo" value="([0-9a-f-]+)"', html)
    codes = re.findall(r'name="ack_flag" value="(\w+)"', html)

    form = {
        **CONFIRMED,
        "action": "start_works",
        "ack_photo": keys,
        "ack_flag": codes,
        "ack_reason": ["Seen on site."] * 3 + [""],
    }
    refused = client.post(reverse("cases:case_act", args=[case.pk]), form)
    assert refused.status_code == 400
    assert "Write why you accept this flag: Roof (Before works), photo" in text(refused)
    assert RenovationCase.objects.get(pk=case.pk).state == CaseState.COUNTY_APPROVED

    form["ack_reason"] = ["Seen on site."] * 4
    done = client.post(reverse("cases:case_act", args=[case.pk]), form)
    assert done.status_code == 302
    page = text(client.get(url))
    name = case.team["inspector"].username
    today = timezone.localdate().isoformat()
    assert page.count(f"Acknowledged by {name} on {today}: Seen on site.") == 4
    assert page.count("Flag “No GPS position in the photo” of photo") == 2


# ---------------------------------------------------------------------------------------
# Review opinion and confirmation


@pytest.mark.parametrize("action", ["village_review", "reject"])
def test_every_step_needs_an_opinion_and_the_confirmation(action):
    case = case_in_state(CaseState.APPLIED, photos=False)
    township = case.team["township"]
    label = {"village_review": "Village review", "reject": "Reject"}[action]
    args = {"user": township, "case_id": case.pk, "action": action, "reason": "No house."}
    before = chain_of(case)
    for opinion in ("", "   "):
        with pytest.raises(CaseRefused) as refused:
            case_act(**args, opinion=opinion, confirm=True)
        assert str(refused.value.message) == (
            f"Write your review opinion on the step “{label}”: it is recorded with the step."
        )
    for confirm in (False, None, "yes"):
        with pytest.raises(CaseRefused) as refused:
            case_act(**args, opinion="Agreed.", confirm=confirm)
        assert str(refused.value.message) == (
            f"Tick “I confirm” to take the step “{label}”: it is recorded in your name."
        )
    assert chain_of(case) == before

    case_act(**args, opinion="  Agreed after the meeting.  ", confirm=True)
    event = case.events.latest("id")
    assert (event.data["opinion"], event.data["confirmed"]) == ("Agreed after the meeting.", True)


def test_a_payment_needs_an_opinion_and_the_confirmation_and_records_them():
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    args = {
        "user": case.team["county"],
        "case_id": case.pk,
        "amount": "100",
        "paid_on": timezone.localdate(),
        "reference": "R-1",
    }
    with pytest.raises(CaseRefused) as refused:
        case_pay(**args, opinion="", confirm=True)
    assert str(refused.value.message) == (
        "Write your review opinion on the step “Record a payment”: it is recorded with the step."
    )
    with pytest.raises(CaseRefused) as refused:
        case_pay(**args, opinion="Paid.", confirm=False)
    assert str(refused.value.message).startswith("Tick “I confirm” to take the step “Record a")
    assert not Payment.objects.exists()
    case_pay(**args, opinion="Paid by the treasury.", confirm=True)
    event = case.events.latest("id")
    assert (event.kind, event.data["opinion"], event.data["confirmed"]) == (
        "payment",
        "Paid by the treasury.",
        True,
    )


def test_over_the_api_the_opinion_and_confirm_are_required(client):
    case = case_in_state(CaseState.APPLIED, photos=False)
    api = APIClient()
    api.force_authenticate(case.team["inspector"])
    url = f"/api/cases/{case.pk}/act/"
    missing = api.post(url, {"action": "village_review", "request_key": "o1"}, format="json")
    assert missing.status_code == 400
    assert missing.json() == {
        "opinion": ["This field is required."],
        "confirm": ["This field is required."],
    }
    body = {"action": "village_review", "opinion": "", "confirm": True, "request_key": "o2"}
    empty = api.post(url, body, format="json")
    assert (empty.status_code, empty.json()["detail"]) == (
        400,
        "Write your review opinion on the step “Village review”: it is recorded with the step.",
    )
    body = {**body, "opinion": "Agreed.", "confirm": False, "request_key": "o3"}
    unconfirmed = api.post(url, body, format="json")
    assert (unconfirmed.status_code, unconfirmed.json()["detail"]) == (
        400,
        "Tick “I confirm” to take the step “Village review”: it is recorded in your name.",
    )
    assert RenovationCase.objects.get(pk=case.pk).state == CaseState.APPLIED
    done = api.post(url, {**body, "confirm": True, "request_key": "o4"}, format="json")
    assert done.status_code == 200
    assert done.json()["timeline"][-1]["opinion"] == "Agreed."
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    act_input = schema.json()["components"]["schemas"]["CaseActInput"]
    assert {"opinion", "confirm"} <= set(act_input["required"])
    assert "acknowledgements" in act_input["properties"]


def test_on_the_page_the_step_needs_an_opinion_and_the_ticked_box(client):
    case = case_in_state(CaseState.APPLIED, photos=False)
    client.force_login(case.team["inspector"])
    url = reverse("cases:case_act", args=[case.pk])
    form = client.get(reverse("cases:case_detail", args=[case.pk])).content.decode()
    assert '<textarea name="opinion" id="opinion-village_review"' in form
    assert '<input type="checkbox" name="confirm" value="on" required>' in form

    refused = client.post(url, {"action": "village_review", "confirm": "on"})
    assert refused.status_code == 400
    assert "Write your review opinion on the step “Village review”" in text(refused)
    refused = client.post(url, {"action": "village_review", "opinion": "Agreed."})
    assert refused.status_code == 400
    assert "Tick “I confirm” to take the step “Village review”" in text(refused)
    assert RenovationCase.objects.get(pk=case.pk).state == CaseState.APPLIED

    done = client.post(url, {"action": "village_review", "opinion": "Agreed.", "confirm": "on"})
    assert done.status_code == 302
    page = text(client.get(reverse("cases:case_detail", args=[case.pk])))
    assert "Opinion: Agreed. (confirmed)" in page


def test_a_batch_takes_one_opinion_and_confirmation_for_all_its_cases(client):
    first = case_in_state(CaseState.APPLIED, photos=False)
    house = eligible_house(household__village=first.house.household.village)
    second = case_in_state(CaseState.APPLIED, photos=False, house=house, team=first.team)
    township = first.team["township"]
    client.force_login(township)
    url = reverse("cases:case_batch")
    ids = [first.pk, second.pk]
    refused = client.post(url, {"action": "village_review", "cases": ids, "confirm": "on"})
    assert "Write your review opinion on the step “Village review”" in text(
        client.get(refused["Location"])
    )
    client.post(
        url,
        {"action": "village_review", "cases": ids, "opinion": "Both reviewed.", "confirm": "on"},
    )
    for case in (first, second):
        event = case.events.latest("id")
        assert (event.to_state, event.data["opinion"], event.actor) == (
            CaseState.VILLAGE_REVIEWED,
            "Both reviewed.",
            township,
        )


def test_the_household_file_pdf_shows_each_steps_opinion():
    from tests.reports.conftest import export_bytes, run_export
    from tests.reports.test_documents import page_texts

    case = case_in_state(CaseState.NOTICED, photos=False)
    export = run_export(
        case.team["township"], "household_file", "pdf", household=case.house.household.pk
    )
    assert export.status == "done", export.error
    pdf = " ".join(" ".join(page_texts(export_bytes(export))).split())
    assert pdf.count(f"Opinion: {OPINION}") == 2  # the village review and the notice


# ---------------------------------------------------------------------------------------
# Messages


def test_an_auditor_is_told_an_overdue_case_awaits_payment_not_that_it_is_closed(client):
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    passed = timezone.now() - datetime.timedelta(days=settings.ANJU_PAYMENT_DUE_DAYS + 5)
    RenovationCase.objects.filter(pk=case.pk).update(completion_passed_at=passed)
    due = timezone.localtime(passed).date() + datetime.timedelta(
        days=settings.ANJU_PAYMENT_DUE_DAYS
    )
    client.force_login(case.team["auditor"])
    url = reverse("cases:case_detail", args=[case.pk])
    page = text(client.get(url))
    assert "this case is closed" not in page
    overdue_since = (due + datetime.timedelta(days=1)).isoformat()
    assert (
        f"Awaiting payment of 20,000 yuan, overdue since {overdue_since}; payments are "
        "recorded by: County official." in page
    )
    # Not overdue yet: its deadline.
    RenovationCase.objects.filter(pk=case.pk).update(completion_passed_at=timezone.now())
    page = text(client.get(url))
    due = timezone.localdate() + datetime.timedelta(days=settings.ANJU_PAYMENT_DUE_DAYS)
    assert f"Awaiting payment of 20,000 yuan, due by {due.isoformat()}" in page
    # The county official who may pay gets the form, and no such note.
    client.force_login(case.team["county"])
    page = client.get(url).content.decode()
    assert 'name="amount"' in page and "Awaiting payment" not in page
    # Paid in full: closed, and said so.
    act_pay = {"amount": "20000", "paid_on": timezone.localdate(), "reference": "R-9"}
    case_pay(user=case.team["county"], case_id=case.pk, **act_pay, **CONFIRMED)
    client.force_login(case.team["auditor"])
    assert "No further steps: this case is closed (Paid in full)." in text(client.get(url))


def test_after_photos_are_due_after_the_works_not_missing_before_they_start(client):
    case = case_in_state(CaseState.COUNTY_APPROVED)
    client.force_login(case.team["county"])
    url = reverse("cases:case_detail", args=[case.pk])
    html = client.get(url).content.decode()
    after = html[html.index('id="evidence-after"') :]
    after = after[: after.index("</div>")]
    assert re.findall(r'class="check check--(\w+)" data-slot="(\w+)"', after) == [
        ("due", "front"),
        ("due", "roof"),
    ]
    assert "Front: due after the works" in text(client.get(url))
    assert "Completion appraisal Due after the works" in text(client.get(url))
    stage, angles = SMALL_SLOTS[InspectionKind.APPRAISAL]
    photograph(case.entry_appraisal.inspection, stage, angles)
    act(user=case.team["inspector"], case_id=case.pk, action="start_works")
    html = client.get(url).content.decode()
    after = html[html.index('id="evidence-after"') :]
    after = after[: after.index("</div>")]
    assert re.findall(r'class="check check--(\w+)" data-slot="(\w+)"', after) == [
        ("missing", "front"),
        ("missing", "roof"),
    ]
    assert "Completion appraisal None recorded yet" in text(client.get(url))


# ---------------------------------------------------------------------------------------
# The clock: at= for imports of historical cases


def opened_at(at) -> RenovationCase:
    house = eligible_house()
    team = case_team(house)
    appraise(house, team["inspector"], "D", when=at - datetime.timedelta(days=10))
    subsidy_standard(2024)
    case, _created = case_open(
        user=team["inspector"],
        house=house,
        method="rebuild_same_site",
        build_mode="self_built",
        planned_floor_area=Decimal("50"),
        funding_year=2024,
        at=at,
    )
    case.team = team
    return case


def test_a_historical_case_is_imported_with_each_step_at_its_own_time():
    tz = timezone.get_current_timezone()
    day = datetime.datetime(2024, 3, 1, 10, tzinfo=tz)
    case = opened_at(day)
    team = case.team
    times = {
        "village_review": day + datetime.timedelta(days=2),
        "notice": day + datetime.timedelta(days=5),
        # Checked 8 days after the notice of 2024: the notice period is judged at that time.
        "township_check": day + datetime.timedelta(days=13),
        "county_approve": day + datetime.timedelta(days=20),
        "start_works": day + datetime.timedelta(days=25),
    }
    who = {
        "village_review": "inspector",
        "notice": "township",
        "township_check": "township",
        "county_approve": "county",
        "start_works": "inspector",
    }
    for action, at in times.items():
        act(user=team[who[action]], case_id=case.pk, action=action, at=at)
    visit = appraise(
        case.house,
        team["inspector2"],
        "A",
        kind=InspectionKind.COMPLETION,
        when=day + datetime.timedelta(days=90),
    )
    act(
        user=team["inspector"],
        case_id=case.pk,
        action="finish_works",
        at=day + datetime.timedelta(days=91),
    )
    passed = day + datetime.timedelta(days=95)
    act(
        user=team["township"],
        case_id=case.pk,
        action="pass_completion",
        inspection=visit.inspection,
        at=passed,
    )
    paid = day + datetime.timedelta(days=110)
    payment, _created = case_pay(
        user=team["county"],
        case_id=case.pk,
        amount="20000",
        paid_on=paid.date(),
        reference="OLD-1",
        at=paid,
        **CONFIRMED,
    )

    case.refresh_from_db()
    events = {e.data["step"]: e.at for e in case.events.exclude(kind="acknowledge")}
    assert events["open"] == case.created_at == day
    assert {a: events[a] for a in times} == times
    assert case.notice_started_at == times["notice"]
    assert case.completion_passed_at == events["pass_completion"] == passed
    assert events["pay"] == payment.created_at == paid
    assert case.state == CaseState.PAID
    assert verify_chain() == (CaseEvent.objects.count(), None)


def test_a_step_in_the_future_or_before_the_previous_event_is_refused(settings):
    settings.ANJU_CLOCK_SKEW_MIN = 10
    day = timezone.now() - datetime.timedelta(days=30)
    case = opened_at(day)
    inspector = case.team["inspector"]
    before = chain_of(case)

    future = timezone.now() + datetime.timedelta(minutes=30)
    with pytest.raises(CaseRefused) as refused:
        act(user=inspector, case_id=case.pk, action="village_review", at=future)
    assert str(refused.value.message) == (
        f"The time {timezone.localtime(future):%Y-%m-%d %H:%M} is in the future."
    )
    earlier = day - datetime.timedelta(hours=1)
    with pytest.raises(CaseRefused) as refused:
        act(user=inspector, case_id=case.pk, action="village_review", at=earlier)
    assert str(refused.value.message) == (
        f"The time {timezone.localtime(earlier):%Y-%m-%d %H:%M} is before the case's previous "
        f"event ({timezone.localtime(day):%Y-%m-%d %H:%M}): a step cannot be dated before it."
    )
    with pytest.raises(CaseRefused) as refused:
        act(user=inspector, case_id=case.pk, action="village_review", at=day.replace(tzinfo=None))
    assert str(refused.value.message) == (
        "The time of a step must be a date and time with its time zone."
    )
    assert chain_of(case) == before
    # Within the clock skew allowed: accepted.
    skewed = timezone.now() + datetime.timedelta(minutes=5)
    act(user=inspector, case_id=case.pk, action="village_review", at=skewed)
    assert case.events.latest("id").at == skewed


def test_a_notice_and_a_payment_are_judged_at_the_steps_own_time():
    tz = timezone.get_current_timezone()
    day = datetime.datetime(2024, 5, 1, 9, tzinfo=tz)
    case = opened_at(day)
    team = case.team
    act(user=team["inspector"], case_id=case.pk, action="village_review", at=day)
    act(user=team["township"], case_id=case.pk, action="notice", at=day)
    with pytest.raises(CaseRefused) as refused:
        act(
            user=team["township"],
            case_id=case.pk,
            action="township_check",
            at=day + datetime.timedelta(days=3),
        )
    assert str(refused.value.message) == (
        "The public notice started on 2024-05-01 and must stand 7 days: the township may "
        "check it from 2024-05-08."
    )
    paid = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    with pytest.raises(CaseRefused) as refused:
        case_pay(
            user=paid.team["county"],
            case_id=paid.pk,
            amount="1",
            paid_on=timezone.localdate(),
            reference="R",
            at=timezone.now() - datetime.timedelta(days=2),
            **CONFIRMED,
        )
    assert str(refused.value.message).startswith(
        f"The payment date {timezone.localdate().isoformat()} is after the time it is recorded"
    )
