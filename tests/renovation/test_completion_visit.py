"""The completion check judged on the visit the official picks, not only the default one;
the time a historical case is opened at (`case_open(at=)`) and the appraisal it stands
on; a batch county approval refused for flagged entry photos, as the official reads it.

The completion check relies on the after-photos of the required slots (whatever the
visit) and on the photos of the visit it is judged on: each flag of those needs a reason.
The case page offers every usable visit, each with its own flags to acknowledge (a small
script shows the chosen visit's; without it the page shows all and the server reads only
the chosen visit's), so an official can pass the check on any of them.
"""

import datetime
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from inspections.models import InspectionKind, PhotoAngle, PhotoStage
from renovation.errors import CaseRefused
from renovation.evidence import FlagCheck, flag_label
from renovation.models import CaseEvent, CaseEventKind, CaseState, RenovationCase
from renovation.services import case_act, case_open
from tests.factories import UserFactory, make_region
from tests.inspections.factories import InspectionFactory, upload_photo
from tests.inspections.images import jpeg
from tests.renovation.factories import (
    CONFIRMED,
    appraise,
    case_in_state,
    case_team,
    eligible_house,
    subsidy_standard,
)
from tests.renovation.test_case_pages import text

pytestmark = pytest.mark.django_db

PASS = "Pass the completion check"
PASS_STEP = "pass_completion"


def codes(photo) -> list[str]:
    """The photo's flag codes, each once, in the order the checks list them."""
    photo.refresh_from_db()
    return list(dict.fromkeys(f["code"] for f in photo.flags))


def named(photo) -> list[str]:
    """How the refusals name each flag of the photo (renovation.evidence.FlagCheck.named)."""
    return [FlagCheck(photo=photo, code=code).named() for code in codes(photo)]


def acks(*photos, reason="Seen on site.") -> list[dict]:
    return [
        {"photo": str(p.key), "flag": code, "reason": reason} for p in photos for code in codes(p)
    ]


def acknowledged(case) -> set[tuple[str, str]]:
    events = CaseEvent.objects.filter(case=case, kind=CaseEventKind.ACKNOWLEDGE)
    return {(e.data["photo"], e.data["flag"]) for e in events if e.data["for_step"] == PASS_STEP}


class Visits:
    """A case whose works are finished, with completion visits of every sort:

    newest       graded A by inspector2 5 minutes ago: the default; its own flagged photo
                 (`newest_own`, during the works, interior)
    older        graded B by inspector2 20 minutes ago, usable; its own flagged photo
                 (`older_own`, during the works, structure) and a flagged after-photo of a
                 required slot (`shared`, front), which every visit's check relies on
    graded_c     graded C 25 minutes ago: not usable (it must be A or B)
    unappraised  a completion visit without an appraisal 15 minutes ago
    before_entry a completion visit graded A before the case's entry appraisal
    """

    def __init__(self):
        self.case = case_in_state(CaseState.WORKS_FINISHED)
        team = self.team = self.case.team
        house = self.case.house
        now = timezone.now()
        minutes = datetime.timedelta(minutes=1)
        self.newest = self.case.completion_appraisal.inspection
        self.older = appraise(
            house, team["inspector2"], "B", kind=InspectionKind.COMPLETION, when=now - 20 * minutes
        ).inspection
        self.graded_c = appraise(
            house, team["inspector2"], "C", kind=InspectionKind.COMPLETION, when=now - 25 * minutes
        ).inspection
        self.unappraised = InspectionFactory(
            house=house,
            inspector=team["inspector2"],
            kind=InspectionKind.COMPLETION,
            started_at=now - 15 * minutes,
            ended_at=now - 10 * minutes,
        )
        entry_at = self.case.entry_appraisal.inspection.started_at
        self.before_entry = appraise(
            house,
            team["inspector2"],
            "A",
            kind=InspectionKind.COMPLETION,
            when=entry_at - datetime.timedelta(days=1),
        ).inspection
        self.newest_own = upload_photo(
            self.newest, jpeg(seed=61), stage=PhotoStage.DURING, angle=PhotoAngle.INTERIOR
        )[0]
        self.older_own = upload_photo(
            self.older, jpeg(seed=62), stage=PhotoStage.DURING, angle=PhotoAngle.STRUCTURE
        )[0]
        self.shared = upload_photo(
            self.older, jpeg(seed=63), stage=PhotoStage.AFTER, angle=PhotoAngle.FRONT
        )[0]
        for photo in (self.newest_own, self.older_own, self.shared):
            assert codes(photo), "a photo without EXIF data carries flags"


def pass_form(response) -> str:
    html = response.content.decode()
    start = html.index('<form method="post" action="/cases/')
    start = html.index('data-action="pass_completion"', start)
    return html[start : html.index("</form>", start)]


def groups(form_html: str) -> dict[str, list[str]]:
    """The acknowledgement groups of a form: "" for the flags every visit shares, else the
    visit's id -> the photo keys of its rows (one per flag)."""
    found = {}
    for attrs, body in re.findall(
        r'<fieldset class="acknowledgements"([^>]*)>(.*?)</fieldset>', form_html, flags=re.S
    ):
        visit = re.search(r'data-visit="(\d+)"', attrs)
        found[visit.group(1) if visit else ""] = re.findall(
            r'name="ack_photo" value="([0-9a-f-]+)"', body
        )
    return found


def rows(form_html: str) -> list[tuple[str, str, str]]:
    """(group, photo, flag) of each acknowledgement row, in the page's order."""
    result = []
    for attrs, body in re.findall(
        r'<fieldset class="acknowledgements"([^>]*)>(.*?)</fieldset>', form_html, flags=re.S
    ):
        visit = re.search(r'data-visit="(\d+)"', attrs)
        for photo, flag in re.findall(
            r'name="ack_photo" value="([0-9a-f-]+)">\s*<input type="hidden" name="ack_flag" '
            r'value="(\w+)"',
            body,
        ):
            result.append((visit.group(1) if visit else "", photo, flag))
    return result


def post_rows(client, case, inspection, page_rows, reasons: dict[str, str]):
    """The pass form as a browser without scripts sends it: every row the page lists, each
    with the reason typed for its group ("" when left empty)."""
    return client.post(
        reverse("cases:case_act", args=[case.pk]),
        {
            **CONFIRMED,
            "action": PASS_STEP,
            "inspection": str(inspection.pk),
            "ack_photo": [photo for _group, photo, _flag in page_rows],
            "ack_flag": [flag for _group, _photo, flag in page_rows],
            "ack_reason": [reasons.get(group, "") for group, _photo, _flag in page_rows],
        },
    )


# ---------------------------------------------------------------------------------------
# The service: strict about the visit judged


def test_a_check_on_an_older_visit_needs_its_flags_and_refuses_the_default_visits():
    v = Visits()
    township = v.team["township"]
    args = {"user": township, "case_id": v.case.pk, "action": PASS_STEP, **CONFIRMED}
    [first_code, *_rest] = codes(v.newest_own)

    # An acknowledgement of the default visit's own photo is no evidence of the older visit.
    with pytest.raises(CaseRefused) as refused:
        case_act(
            **args,
            inspection=v.older,
            acknowledgements=acks(v.shared, v.older_own) + acks(v.newest_own)[:1],
        )
    assert str(refused.value.message) == (
        f"Photo {v.newest_own.key} has no flag “{first_code}” among the evidence the step "
        f"“{PASS}” relies on."
    )
    # The older visit's own photo unacknowledged: refused, naming each of its flags.
    with pytest.raises(CaseRefused) as refused:
        case_act(**args, inspection=v.older, acknowledgements=acks(v.shared))
    assert str(refused.value.message) == (
        f"The step “{PASS}” relies on flagged evidence: acknowledge each flag with a reason "
        f"first. Not acknowledged: {'; '.join(named(v.older_own))}."
    )
    # Each flag needs its reason.
    with pytest.raises(CaseRefused) as refused:
        case_act(
            **args,
            inspection=v.older,
            acknowledgements=acks(v.shared) + acks(v.older_own, reason="  "),
        )
    assert str(refused.value.message) == (
        f"Write why you accept this flag: {named(v.older_own)[0]}."
    )
    assert acknowledged(v.case) == set()
    assert RenovationCase.objects.get(pk=v.case.pk).state == CaseState.WORKS_FINISHED

    done = case_act(**args, inspection=v.older, acknowledgements=acks(v.shared, v.older_own))
    assert (done.state, done.completion_inspection_id) == (CaseState.COMPLETION_PASSED, v.older.pk)
    assert acknowledged(v.case) == {
        (str(p.key), code) for p in (v.shared, v.older_own) for code in codes(p)
    }
    event = v.case.events.get(kind=CaseEventKind.TRANSITION, to_state=CaseState.COMPLETION_PASSED)
    assert (event.data["completion_inspection"], event.data["grade"]) == (v.older.pk, "B")


# ---------------------------------------------------------------------------------------
# The page


def test_the_page_offers_each_usable_visit_with_its_own_flags_to_acknowledge(client):
    v = Visits()
    client.force_login(v.team["township"])
    response = client.get(reverse("cases:case_detail", args=[v.case.pk]))
    assert response.status_code == 200
    form = pass_form(response)
    name = v.team["inspector2"].username

    # Each visit's own local day (minutes before local midnight they fall on the day before).
    def day(visit):
        return timezone.localtime(visit.started_at).date().isoformat()

    # Only the visits the check can pass on; the default (newest) chosen.
    options = re.findall(r'<option value="(\d+)"( selected)?>([^<]*)</option>', form)
    assert options == [
        (str(v.newest.pk), " selected", f"{day(v.newest)} · {name} · grade A"),
        (str(v.older.pk), "", f"{day(v.older)} · {name} · grade B"),
    ]
    assert "data-visit-select" in form
    # The one with an appraisal that cannot pass says why; the others (no appraisal, made
    # before the case's entry appraisal) are no completion check of this case.
    assert re.findall(r'<li data-visit="(\d+)">', form) == [str(v.graded_c.pk)]
    assert (
        f"Not offered: the visit of {day(v.graded_c)} by {name}. The completion appraisal of "
        f"{day(v.graded_c)} grades "
        "the house C; it must be A or B to pass (fail the check with the fixes required "
        "instead)." in text(response)
    )
    # The flags every visit's check relies on, then each visit's own.
    assert groups(form) == {
        "": [str(v.shared.key)] * len(codes(v.shared)),
        str(v.newest.pk): [str(v.newest_own.key)] * len(codes(v.newest_own)),
        str(v.older.pk): [str(v.older_own.key)] * len(codes(v.older_own)),
    }
    shared, *per_visit = re.findall(r"<fieldset.*?</fieldset>", form, flags=re.S)
    assert shared.count("required") == len(codes(v.shared))
    # Without scripts every group shows: only the chosen one is asked (server-side).
    assert [group.count("required") for group in per_visit] == [0, 0]
    for visit in (v.newest, v.older):
        assert f"If the check is judged on the visit of {day(visit)} by {name}" in text(response)
    assert '<script src="/static/renovation/case_detail.js"></script>' in response.content.decode()


def test_without_scripts_the_check_passes_on_the_visit_chosen_reading_only_its_group(client):
    v = Visits()
    client.force_login(v.team["township"])
    page_rows = rows(pass_form(client.get(reverse("cases:case_detail", args=[v.case.pk]))))
    reasons = {"": "The front was photographed again.", str(v.older.pk): "Seen on site."}

    response = post_rows(client, v.case, v.older, page_rows, reasons)

    assert response.status_code == 302
    case = RenovationCase.objects.get(pk=v.case.pk)
    assert (case.state, case.completion_inspection_id) == (
        CaseState.COMPLETION_PASSED,
        v.older.pk,
    )
    # The empty reasons of the other visit's group were not the service's to judge.
    assert acknowledged(case) == {
        (str(p.key), code) for p in (v.shared, v.older_own) for code in codes(p)
    }
    page = text(client.get(reverse("cases:case_detail", args=[v.case.pk])))
    assert "Done: the case is now “Completion check passed”." in page


def test_the_chosen_visits_flags_stay_required_and_the_page_keeps_what_was_typed(client):
    v = Visits()
    client.force_login(v.team["township"])
    url = reverse("cases:case_detail", args=[v.case.pk])
    page_rows = rows(pass_form(client.get(url)))
    # The older visit chosen, but the reasons typed in the default visit's group.
    reasons = {"": "Front seen again.", str(v.newest.pk): "Interior checked."}

    response = post_rows(client, v.case, v.older, page_rows, reasons)

    assert response.status_code == 400
    error = re.search(r'role="alert">([^<]*)<', response.content.decode()).group(1)
    assert error == f"Write why you accept this flag: {named(v.older_own)[0]}."
    form = pass_form(response)
    assert re.findall(r'<option value="(\d+)" selected>', form) == [str(v.older.pk)]
    assert form.count(">Front seen again.</textarea>") == len(codes(v.shared))
    assert form.count(">Interior checked.</textarea>") == len(codes(v.newest_own))
    assert RenovationCase.objects.get(pk=v.case.pk).state == CaseState.WORKS_FINISHED
    assert acknowledged(v.case) == set()

    # The default visit, with its group filled (as the script sends it: the other disabled).
    sent = [r for r in page_rows if r[0] in ("", str(v.newest.pk))]
    response = post_rows(client, v.case, v.newest, sent, reasons)
    assert response.status_code == 302
    case = RenovationCase.objects.get(pk=v.case.pk)
    assert (case.state, case.completion_inspection_id) == (
        CaseState.COMPLETION_PASSED,
        v.newest.pk,
    )


def test_an_acknowledgement_of_a_photo_no_visit_offers_is_still_refused(client):
    v = Visits()
    client.force_login(v.team["township"])
    page_rows = rows(pass_form(client.get(reverse("cases:case_detail", args=[v.case.pk]))))
    stray = upload_photo(v.case.entry_appraisal.inspection, jpeg(seed=64), angle=PhotoAngle.LEFT)[0]
    [code, *_rest] = codes(stray)
    page_rows.append(("", str(stray.key), code))

    response = post_rows(
        client, v.case, v.older, page_rows, {"": "Seen.", str(v.older.pk): "Seen."}
    )

    assert response.status_code == 400
    assert (
        f"Photo {stray.key} has no flag “{code}” among the evidence the step “{PASS}” relies on."
        in text(response)
    )
    assert RenovationCase.objects.get(pk=v.case.pk).state == CaseState.WORKS_FINISHED


def test_the_visit_choice_is_only_for_those_who_may_pass_the_check_in_the_region(client):
    v = Visits()
    elsewhere = UserFactory(role=Role.TOWNSHIP_OFFICIAL, regions=[make_region("520399101")])
    client.force_login(elsewhere)
    assert client.get(reverse("cases:case_detail", args=[v.case.pk])).status_code == 404
    refused = post_rows(client, v.case, v.older, [], {})
    assert refused.status_code == 404

    client.force_login(v.team["inspector"])  # supervised the works: not a checker's role
    html = client.get(reverse("cases:case_detail", args=[v.case.pk])).content.decode()
    assert 'data-action="pass_completion"' not in html
    assert "data-visit-select" not in html
    assert "renovation/case_detail.js" not in html
    refused = post_rows(client, v.case, v.older, [], {})
    assert refused.status_code == 403
    assert RenovationCase.objects.get(pk=v.case.pk).state == CaseState.WORKS_FINISHED


def test_a_page_without_a_visit_to_choose_loads_no_script(client):
    case = case_in_state(CaseState.APPLIED, photos=False)
    client.force_login(case.team["township"])
    html = client.get(reverse("cases:case_detail", args=[case.pk])).content.decode()
    assert 'data-action="village_review"' in html
    assert "renovation/case_detail.js" not in html


# ---------------------------------------------------------------------------------------
# case_open(at=): the appraisal made by then


def open_at(house, team, at):
    return case_open(
        user=team["inspector"],
        house=house,
        method="rebuild_same_site",
        build_mode="self_built",
        planned_floor_area=Decimal("50"),
        funding_year=2024,
        at=at,
    )


def test_a_case_opened_at_a_past_time_stands_on_the_appraisal_made_by_then():
    day = datetime.datetime(2024, 3, 1, 10, tzinfo=timezone.get_current_timezone())
    house = eligible_house()
    team = case_team(house)
    subsidy_standard(2024)
    graded_d = appraise(house, team["inspector"], "D", when=day - datetime.timedelta(days=10))
    # Appraised again later (B: no case): not what a case opened on `day` was judged on.
    appraise(house, team["inspector"], "B", when=day + datetime.timedelta(days=5))

    case, created = open_at(house, team, day)

    assert created is True
    assert (case.entry_appraisal_id, case.entry_grade, case.created_at) == (
        graded_d.pk,
        "D",
        day,
    )
    event = case.events.get(kind=CaseEventKind.OPENED)
    assert (event.data["entry_appraisal"], event.at) == (graded_d.pk, day)


def test_a_case_cannot_be_opened_before_its_first_appraisal():
    day = datetime.datetime(2024, 3, 1, 10, tzinfo=timezone.get_current_timezone())
    house = eligible_house()
    team = case_team(house)
    subsidy_standard(2024)
    graded_d = appraise(house, team["inspector"], "D", when=day)

    with pytest.raises(CaseRefused) as refused:
        open_at(house, team, day - datetime.timedelta(days=1))
    assert str(refused.value.message) == (
        "The house has no appraisal made on or before 2024-02-29 10:00, when the case is "
        "opened; a case needs an appraisal grading it C or D made by then."
    )
    assert not RenovationCase.objects.filter(house=house).exists()

    # An appraisal made at the very time the case is opened counts.
    case, _created = open_at(house, team, day)
    assert case.entry_appraisal_id == graded_d.pk


def test_a_case_opened_at_a_past_time_is_judged_on_the_grade_of_then():
    day = datetime.datetime(2024, 3, 1, 10, tzinfo=timezone.get_current_timezone())
    house = eligible_house()
    team = case_team(house)
    subsidy_standard(2024)
    appraise(house, team["inspector"], "B", when=day - datetime.timedelta(days=10))
    appraise(house, team["inspector"], "D", when=day + datetime.timedelta(days=5))

    with pytest.raises(CaseRefused) as refused:
        open_at(house, team, day)
    assert str(refused.value.message) == (
        "The house's latest appraisal (2024-02-20) grades it B; only a house graded C or D "
        "may be renovated."
    )


# ---------------------------------------------------------------------------------------
# A batch county approval with flagged entry photos


def test_a_batch_approval_tells_the_official_which_flags_hold_a_case_back(client):
    held = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False)
    photo = upload_photo(held.entry_appraisal.inspection, jpeg(seed=3))[0]
    house = eligible_house(household__village=held.house.household.village)
    ready = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False, house=house, team=held.team)
    county = held.team["county"]
    client.force_login(county)
    events = CaseEvent.objects.filter(case=held).count()

    response = client.post(
        reverse("cases:case_batch"),
        {
            **CONFIRMED,
            "action": "county_approve",
            "cases": [held.pk, ready.pk],
            "request_key": "batch-flags",
        },
    )

    assert response.status_code == 302
    listing = client.get(response["Location"])
    html = listing.content.decode()
    assert re.findall(
        r'<tr class="batch-result batch-result--(done|refused)" data-case="(\d+)">', html
    ) == [("refused", str(held.pk)), ("done", str(ready.pk))]
    # The refused row links to the case, where the flags can be acknowledged one by one.
    assert f'<a href="/cases/{held.pk}/">No. {held.pk}</a>' in html
    flags = "; ".join(
        f"Front (Before works), photo {photo.key}: {flag_label(code)}" for code in codes(photo)
    )
    assert codes(photo) == ["no_gps", "no_time"]  # a JPEG without EXIF data
    assert (
        f"Refused The step “County approval” relies on flagged evidence: acknowledge each flag "
        f"with a reason first. Not acknowledged: {flags}." in text(listing)
    )
    assert CaseEvent.objects.filter(case=held).count() == events
    assert RenovationCase.objects.get(pk=held.pk).state == CaseState.TOWNSHIP_CHECKED
    assert RenovationCase.objects.get(pk=ready.pk).state == CaseState.COUNTY_APPROVED


# ---------------------------------------------------------------------------------------
# In a real browser


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_choosing_a_visit_shows_and_asks_only_its_flags(page, live_server):
    from tests.conftest import browser_login

    v = Visits()
    violations, errors = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    browser_login(page, live_server, v.team["township"], path=f"/login/?next=/cases/{v.case.pk}/")
    form = page.locator("form[data-action=pass_completion]")
    newest = form.locator(f"fieldset[data-visit='{v.newest.pk}']")
    older = form.locator(f"fieldset[data-visit='{v.older.pk}']")
    page.wait_for_function(
        "() => document.querySelector('fieldset[data-visit]') !== null && "
        "[...document.querySelectorAll('fieldset[data-visit]')].some((f) => f.hidden)"
    )
    assert (newest.is_visible(), older.is_visible()) == (True, False)

    form.locator("select[name=inspection]").select_option(str(v.older.pk))
    assert (newest.is_visible(), older.is_visible()) == (False, True)
    # The browser asks for the chosen visit's reasons before sending anything.
    form.locator("textarea[name=opinion]").fill("Checked on site.")
    form.locator("input[name=confirm]").check()
    for area in form.locator("fieldset:not([data-visit]) textarea").all():
        area.fill("The front was photographed again.")
    form.locator("button[type=submit]").click()
    assert page.inner_text("#case-state") == "Works finished"
    assert older.locator("textarea:invalid").count() == len(codes(v.older_own))

    for area in older.locator("textarea").all():
        area.fill("Seen on site.")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#case-state:has-text('Completion check passed')")
    case = RenovationCase.objects.get(pk=v.case.pk)
    assert case.completion_inspection_id == v.older.pk
    assert acknowledged(case) == {
        (str(p.key), code) for p in (v.shared, v.older_own) for code in codes(p)
    }
    assert (errors, violations, page.external_requests) == ([], [], [])
