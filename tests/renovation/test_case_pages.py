"""The case pages: list (filters, counts, batch actions), a case (steps, payments, evidence,
timeline), and the household file's case timeline."""

import datetime
import html as htmllib
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from inspections.models import Inspection, InspectionKind
from renovation.models import CaseEvent, CaseState, Payment, RenovationCase
from tests.factories import HouseFactory, HouseholdFactory, UserFactory, make_region
from tests.renovation.factories import CONFIRMED, CaseFactory, backdate_notice, case_in_state

pytestmark = pytest.mark.django_db


def text(response) -> str:
    """The page's text without tags, whitespace collapsed."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def action_forms(response) -> list[str]:
    return re.findall(r'class="case-action" data-action="([a-z_]+)"', response.content.decode())


def state_of(case) -> str:
    return RenovationCase.objects.get(pk=case.pk).state


def login(client, user):
    client.force_login(user)
    return client


def detail_url(case) -> str:
    return reverse("cases:case_detail", args=[case.pk])


# ---------------------------------------------------------------------------------------
# Who sees what


def test_anonymous_users_are_sent_to_log_in(client):
    case = CaseFactory()
    for url in [reverse("cases:case_list"), detail_url(case)]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")
    response = client.post(
        reverse("cases:case_act", args=[case.pk]), {**CONFIRMED, "action": "notice"}
    )
    assert response.status_code == 302
    assert state_of(case) == CaseState.APPLIED


def test_a_case_in_another_region_is_not_found_and_not_listed(client):
    here = CaseFactory(house__household__village=make_region("520399100200"))
    elsewhere = CaseFactory(house__household__village=make_region("520399101200"))
    official = UserFactory(role=Role.TOWNSHIP_OFFICIAL, regions=[make_region("520399100")])
    login(client, official)

    assert client.get(detail_url(elsewhere)).status_code == 404
    act = client.post(
        reverse("cases:case_act", args=[elsewhere.pk]), {**CONFIRMED, "action": "village_review"}
    )
    assert act.status_code == 404
    listed = client.get(reverse("cases:case_list"))
    assert re.findall(r'<tr data-case="(\d+)"', listed.content.decode()) == [str(here.pk)]
    assert state_of(elsewhere) == CaseState.APPLIED


def test_the_navigation_links_to_the_cases(client):
    login(client, UserFactory(role=Role.AUDITOR, regions=[make_region("520399")]))
    response = client.get(reverse("cases:case_list"))
    assert '<a href="/cases/" aria-current="page">Cases</a>' in response.content.decode()


# ---------------------------------------------------------------------------------------
# The list


def test_the_list_filters_by_state_township_year_and_overdue_with_counts(client):
    t1, t2 = "520399100200", "520399101200"
    applied = CaseFactory(house__household__village=make_region(t1))
    noticed = CaseFactory(house__household__village=make_region(t1), state=CaseState.NOTICED)
    other_year = CaseFactory(
        house__household__village=make_region(t2), state=CaseState.NOTICED, funding_year=2025
    )
    long_ago = timezone.now() - datetime.timedelta(days=45)
    overdue = CaseFactory(
        house__household__village=make_region(t2),
        state=CaseState.COMPLETION_PASSED,
        completion_passed_at=long_ago,
    )
    recent = CaseFactory(
        house__household__village=make_region(t2),
        state=CaseState.COMPLETION_PASSED,
        completion_passed_at=timezone.now() - datetime.timedelta(days=3),
    )
    login(client, UserFactory(role=Role.COUNTY_OFFICIAL, regions=[make_region("520399")]))

    def listed(**query):
        response = client.get(reverse("cases:case_list"), query)
        assert response.status_code == 200
        return response, [
            int(pk) for pk in re.findall(r'<tr data-case="(\d+)"', response.content.decode())
        ]

    response, ids = listed()
    assert sorted(ids) == sorted([applied.pk, noticed.pk, other_year.pk, overdue.pk, recent.pk])
    page = text(response)
    assert "5 cases" in page
    assert "Applied 1 Publicly noticed 2 Completion check passed 2" in page
    assert "Payment overdue" in page  # the overdue case is marked in the list

    assert listed(state="noticed")[1] == [other_year.pk, noticed.pk]
    assert sorted(listed(township="520399100")[1]) == [applied.pk, noticed.pk]
    assert listed(funding_year="2025")[1] == [other_year.pk]
    assert listed(overdue="on")[1] == [overdue.pk]
    # The counts follow the other filters.
    assert "Publicly noticed 1 Completion check passed 2" in text(listed(township="520399101")[0])


def test_a_bad_filter_says_what_is_wrong_and_lists_nothing(client):
    CaseFactory()
    login(client, UserFactory(role=Role.COUNTY_OFFICIAL, regions=[make_region("520399")]))
    response = client.get(reverse("cases:case_list"), {"funding_year": "twenty", "state": "gone"})
    page = text(response)
    assert "Enter a whole number." in page
    assert "Select a valid choice. gone is not one of the available choices." in page
    assert "Correct the filters above to see cases." in page
    assert 'data-case="' not in response.content.decode()


def test_the_list_is_paginated(client):
    for _ in range(3):
        CaseFactory()
    login(client, UserFactory(role=Role.ADMINISTRATOR))
    from renovation import views as case_views

    original = case_views.PAGE_SIZE
    case_views.PAGE_SIZE = 2
    try:
        first = client.get(reverse("cases:case_list"))
        second = client.get(reverse("cases:case_list"), {"page": "2"})
    finally:
        case_views.PAGE_SIZE = original
    assert "3 cases" in text(first)
    assert "Page 1 of 2" in text(first)
    assert len(re.findall(r'<tr data-case="', first.content.decode())) == 2
    assert len(re.findall(r'<tr data-case="', second.content.decode())) == 1


# ---------------------------------------------------------------------------------------
# One case


def test_the_case_page_shows_the_case_its_evidence_and_timeline(client):
    case = case_in_state(CaseState.NOTICED, photos=False)
    household = case.house.household
    login(client, case.team["county"])

    response = client.get(detail_url(case))

    assert response.status_code == 200
    html = response.content.decode()
    page = text(response)
    assert f'href="/households/{household.pk}/"' in html
    assert f"Case no. {case.pk}" in page
    assert "State Publicly noticed" in page
    assert "Method Rebuild on the same site" in page
    assert "Built by Self-built" in page
    assert "Planned floor area 50.00 m² for 2 people" in page
    assert "Subsidy 20000.00 yuan The standard of 2026" in page
    assert "Paid so far 0.00 yuan (20000.00 yuan to pay)" in page
    # Before the works, the after-photos and the completion visit are not missing yet.
    assert "Completion appraisal Due after the works" in page
    events = list(CaseEvent.objects.filter(case=case).order_by("id"))
    assert [e.to_state for e in events] == ["applied", "village_reviewed", "noticed"]
    timeline = re.findall(r'data-event="(\d+)" data-to="([a-z_]+)"', html)
    assert timeline == [(str(e.pk), e.to_state) for e in events]
    assert f"Opened Applied by {case.team['inspector'].username}" in page
    assert (
        f"State change Applied → Reviewed by the village by {case.team['inspector'].username}"
        in page
    )
    assert (
        "State change Reviewed by the village → Publicly noticed by "
        f"{case.team['township'].username}" in page
    )


def test_a_subsidy_override_shows_its_reason(client):
    case = CaseFactory(
        subsidy_amount=Decimal("25000"), subsidy_override_reason="Two disabled members."
    )
    login(client, UserFactory(role=Role.ADMINISTRATOR))
    page = text(client.get(detail_url(case)))
    assert "Subsidy 25000.00 yuan Differs from the standard: Two disabled members." in page


@pytest.mark.parametrize(
    "who, forms, blocked, waiting",
    [
        ("inspector", ["village_review"], [], []),
        ("township", ["village_review", "reject", "withdraw"], [], []),
        ("county", ["reject", "withdraw"], [], ["Village review"]),
        ("auditor", [], [], ["Village review"]),
    ],
)
def test_only_the_steps_this_user_may_take_now_are_offered(client, who, forms, blocked, waiting):
    case = case_in_state(CaseState.APPLIED, photos=False)
    login(client, case.team[who])
    response = client.get(detail_url(case))
    assert action_forms(response) == forms
    page = text(response)
    if waiting:
        assert f"Waiting for: {', '.join(waiting)}" in page
    else:
        assert "Waiting for:" not in page
    assert 'name="amount"' not in response.content.decode()


def test_a_step_not_yet_possible_says_why_and_is_not_offered(client):
    case = case_in_state(CaseState.NOTICED, photos=False)
    backdate_notice(case, days=2)
    login(client, case.team["township"])
    response = client.get(detail_url(case))
    assert action_forms(response) == ["reject", "withdraw"]
    started = timezone.localtime(case.notice_started_at).date()
    ends = timezone.localtime(case.notice_started_at + datetime.timedelta(days=7)).date()
    assert (
        f"Township check : The public notice started on {started} and must stand 7 days: the "
        f"township may check it from {ends}." in text(response)
    )


def test_taking_a_step_moves_the_case_and_says_so(client):
    case = case_in_state(CaseState.APPLIED, photos=False)
    login(client, case.team["township"])
    response = client.post(
        reverse("cases:case_act", args=[case.pk]),
        {**CONFIRMED, "action": "village_review", "request_key": "page-key-1"},
    )
    assert response.status_code == 302
    assert response["Location"] == detail_url(case)
    assert state_of(case) == CaseState.VILLAGE_REVIEWED
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Done: the case is now “Reviewed by the village”."
    ]
    # A double tap sends the same form again: the same step, not a second one.
    events = CaseEvent.objects.count()
    again = client.post(
        reverse("cases:case_act", args=[case.pk]),
        {**CONFIRMED, "action": "village_review", "request_key": "page-key-1"},
    )
    assert again.status_code == 302
    assert CaseEvent.objects.count() == events


def test_a_refused_step_shows_the_reason_and_changes_nothing(client):
    case = case_in_state(CaseState.NOTICED, photos=False)
    backdate_notice(case, days=1)
    login(client, case.team["township"])
    before = list(CaseEvent.objects.values_list("id", "hash"))

    response = client.post(
        reverse("cases:case_act", args=[case.pk]), {**CONFIRMED, "action": "township_check"}
    )

    assert response.status_code == 400
    assert "The public notice started on" in text(response)
    assert re.search(
        r'class="errors case-error" role="alert">The public notice started on',
        response.content.decode(),
    )
    assert state_of(case) == CaseState.NOTICED
    assert list(CaseEvent.objects.values_list("id", "hash")) == before


def test_a_step_of_another_role_is_forbidden_and_changes_nothing(client):
    case = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False)
    login(client, case.team["township"])
    response = client.post(
        reverse("cases:case_act", args=[case.pk]), {**CONFIRMED, "action": "county_approve"}
    )
    assert response.status_code == 403
    assert "Your role (Township official) may not take the step “County approval”." in text(
        response
    )
    assert state_of(case) == CaseState.TOWNSHIP_CHECKED


def test_a_step_from_the_wrong_state_is_a_conflict(client):
    case = case_in_state(CaseState.VILLAGE_REVIEWED, photos=False)
    login(client, case.team["township"])
    response = client.post(
        reverse("cases:case_act", args=[case.pk]), {**CONFIRMED, "action": "village_review"}
    )
    assert response.status_code == 409
    assert (
        f"Case {case.pk} is Reviewed by the village; “Village review” is possible only from: "
        "Applied." in text(response)
    )


def test_reject_needs_a_reason_and_keeps_it(client):
    case = case_in_state(CaseState.APPLIED, photos=False)
    login(client, case.team["township"])
    url = reverse("cases:case_act", args=[case.pk])

    refused = client.post(url, {**CONFIRMED, "action": "reject", "reason": "  "})
    assert refused.status_code == 400
    assert "Write the reason." in text(refused)
    assert state_of(case) == CaseState.APPLIED

    done = client.post(
        url, {**CONFIRMED, "action": "reject", "reason": "Not the household's only house."}
    )
    assert done.status_code == 302
    case.refresh_from_db()
    assert (case.state, case.closing_reason) == (
        CaseState.REJECTED,
        "Not the household's only house.",
    )
    page = text(client.get(detail_url(case)))
    assert "Reason: Not the household's only house." in page
    assert "No further steps: this case is closed (Rejected)." in page


def test_the_completion_check_picks_a_completion_inspection_of_this_house(client):
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    completion = Inspection.objects.get(house=case.house, kind=InspectionKind.COMPLETION)
    login(client, case.team["county"])

    response = client.get(detail_url(case))
    assert action_forms(response) == ["pass_completion", "fail_completion", "withdraw"]
    html = response.content.decode()
    assert f'<option value="{completion.pk}">' in html
    assert "Completion appraisal A A: safe" in text(response)
    assert "Not the inspector who supervised the works" in text(response)

    other_house = HouseFactory()
    bad = client.post(
        reverse("cases:case_act", args=[case.pk]),
        {**CONFIRMED, "action": "pass_completion", "inspection": str(other_house.pk + 10_000)},
    )
    assert bad.status_code == 400
    assert "Choose one of this house's completion checks." in text(bad)
    assert state_of(case) == CaseState.WORKS_FINISHED

    done = client.post(
        reverse("cases:case_act", args=[case.pk]),
        {**CONFIRMED, "action": "pass_completion", "inspection": str(completion.pk)},
    )
    assert done.status_code == 302
    case.refresh_from_db()
    assert (case.state, case.completion_inspection_id) == (
        CaseState.COMPLETION_PASSED,
        completion.pk,
    )


def test_fail_completion_asks_for_the_fixes_and_shows_them_in_the_timeline(client):
    case = case_in_state(CaseState.WORKS_FINISHED, photos=False)
    login(client, case.team["township"])
    done = client.post(
        reverse("cases:case_act", args=[case.pk]),
        {**CONFIRMED, "action": "fail_completion", "reason": "Replace the roof beams."},
    )
    assert done.status_code == 302
    assert state_of(case) == CaseState.WORKS_STARTED
    page = text(client.get(detail_url(case)))
    assert "Works finished → Works started" in page
    assert "Fixes required: Replace the roof beams." in page


# ---------------------------------------------------------------------------------------
# Payments


def test_the_payment_form_is_for_whoever_may_pay_and_records_payments(client):
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    township, county = case.team["township"], case.team["county"]

    login(client, township)
    assert 'name="amount"' not in client.get(detail_url(case)).content.decode()
    refused = client.post(
        reverse("cases:case_pay", args=[case.pk]),
        {
            **CONFIRMED,
            "amount": "1000",
            "paid_on": timezone.localdate().isoformat(),
            "reference": "R1",
        },
    )
    assert refused.status_code == 403
    assert Payment.objects.count() == 0

    login(client, county)
    page = client.get(detail_url(case)).content.decode()
    assert 'name="amount"' in page
    assert 'value="20000.00"' in page  # what remains to pay

    url = reverse("cases:case_pay", args=[case.pk])
    today = timezone.localdate().isoformat()
    first = client.post(url, {**CONFIRMED, "amount": "5000", "paid_on": today, "reference": "TR-1"})
    assert first.status_code == 302
    too_much = client.post(
        url, {**CONFIRMED, "amount": "15000.01", "paid_on": today, "reference": "TR-2"}
    )
    assert too_much.status_code == 400
    assert (
        "A payment of 15,000.01 yuan would bring the total to 20,000.01 yuan, above the "
        "subsidy of 20,000 yuan; at most 15,000 yuan remains to pay." in text(too_much)
    )
    last = client.post(url, {**CONFIRMED, "amount": "15000", "paid_on": today, "reference": "TR-2"})
    assert last.status_code == 302

    case.refresh_from_db()
    assert (case.state, case.paid_total) == (CaseState.PAID, Decimal("20000.00"))
    response = client.get(detail_url(case))
    page = text(response)
    assert "Paid so far 20000.00 yuan (0.00 yuan to pay)" in page
    assert f"5000.00 yuan paid on {today}, reference TR-1" in page
    assert "Completion check passed → Paid in full" in page
    assert 'name="amount"' not in response.content.decode()


def test_a_bad_payment_form_says_which_field(client):
    case = case_in_state(CaseState.COMPLETION_PASSED, photos=False)
    login(client, case.team["county"])
    response = client.post(
        reverse("cases:case_pay", args=[case.pk]),
        {**CONFIRMED, "amount": "-5", "paid_on": "yesterday", "reference": ""},
    )
    assert response.status_code == 400
    page = text(response)
    assert "Ensure this value is greater than or equal to 0.01." in page
    assert "Enter a valid date." in page
    assert "This field is required." in page
    assert Payment.objects.count() == 0


# ---------------------------------------------------------------------------------------
# Batch actions


def test_batch_approval_checks_each_case_and_lists_each_result(client):
    ready_1 = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False)
    ready_2 = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False)
    not_ready = case_in_state(CaseState.NOTICED, photos=False)
    county = UserFactory(role=Role.COUNTY_OFFICIAL, regions=[make_region("520399")])
    login(client, county)

    listing = client.get(reverse("cases:case_list"), {"funding_year": "2026"})
    html = listing.content.decode()
    assert '<option value="county_approve">County approval</option>' in html
    assert f'name="cases" value="{ready_1.pk}"' in html
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', html).group(1)

    response = client.post(
        reverse("cases:case_batch"),
        {
            **CONFIRMED,
            "action": "county_approve",
            "cases": [ready_1.pk, not_ready.pk, ready_2.pk],
            "request_key": key,
            "query": "funding_year=2026",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/cases/?funding_year=2026"
    assert [state_of(c) for c in (ready_1, not_ready, ready_2)] == [
        CaseState.COUNTY_APPROVED,
        CaseState.NOTICED,
        CaseState.COUNTY_APPROVED,
    ]
    results = client.get(response["Location"])
    rows = re.findall(
        r'<tr class="batch-result batch-result--(done|refused)" data-case="(\d+)">',
        results.content.decode(),
    )
    assert rows == [
        ("done", str(ready_1.pk)),
        ("refused", str(not_ready.pk)),
        ("done", str(ready_2.pk)),
    ]
    page = text(results)
    assert "Results of “County approval” 2 cases done · 1 refused" in page
    assert (
        f"Refused Case {not_ready.pk} is Publicly noticed; “County approval” is possible only "
        "from: Checked by the township." in page
    )
    assert "Done Now “Approved by the county”." in page
    # Shown once.
    assert "batch-result" not in client.get(reverse("cases:case_list")).content.decode()

    # The same batch sent again (a refresh, a double tap) repeats, and writes nothing.
    events = CaseEvent.objects.count()
    client.post(
        reverse("cases:case_batch"),
        {
            **CONFIRMED,
            "action": "county_approve",
            "cases": [ready_1.pk, ready_2.pk],
            "request_key": key,
        },
    )
    assert CaseEvent.objects.count() == events


def test_batch_on_a_case_out_of_scope_says_not_found(client):
    mine = case_in_state(CaseState.APPLIED, photos=False)
    theirs = CaseFactory(house__household__village=make_region("520399101200"))
    township = UserFactory(role=Role.TOWNSHIP_OFFICIAL, regions=[make_region("520399100")])
    login(client, township)
    response = client.post(
        reverse("cases:case_batch"),
        {**CONFIRMED, "action": "village_review", "cases": [theirs.pk, mine.pk]},
        follow=True,
    )
    page = text(response)
    assert f"No. {theirs.pk} Refused No such case among yours." in page
    assert state_of(mine) == CaseState.VILLAGE_REVIEWED
    assert state_of(theirs) == CaseState.APPLIED


def test_batch_actions_are_not_offered_to_roles_without_chain_steps(client):
    case = CaseFactory(house__household__village=make_region("520399100200"))
    auditor = UserFactory(role=Role.AUDITOR, regions=[make_region("520399")])
    login(client, auditor)
    assert 'name="cases"' not in client.get(reverse("cases:case_list")).content.decode()
    response = client.post(
        reverse("cases:case_batch"),
        {**CONFIRMED, "action": "village_review", "cases": [case.pk]},
        follow=True,
    )
    assert "Your role takes no steps on several cases at once." in text(response)
    assert state_of(case) == CaseState.APPLIED


def test_a_batch_with_no_case_ticked_says_so(client):
    login(client, UserFactory(role=Role.COUNTY_OFFICIAL, regions=[make_region("520399")]))
    response = client.post(
        reverse("cases:case_batch"), {**CONFIRMED, "action": "county_approve"}, follow=True
    )
    assert "Tick at least one case." in text(response)


# ---------------------------------------------------------------------------------------
# The household file


def test_the_household_file_shows_its_cases_with_their_timeline(client):
    case = case_in_state(CaseState.VILLAGE_REVIEWED, photos=False)
    household = case.house.household
    login(client, case.team["auditor"])

    response = client.get(reverse("portal:household_detail", args=[household.pk]))

    html = response.content.decode()
    page = text(response)
    assert f'<a href="/cases/{case.pk}/">Case no. {case.pk}</a>' in html
    assert "Renovation cases" in page
    assert (
        "Rebuild on the same site · funding year 2026 · subsidy 20000.00 yuan, 0.00 yuan paid"
        in page
    )
    events = CaseEvent.objects.filter(case=case).order_by("id")
    assert re.findall(r'data-event="(\d+)"', html) == [str(e.pk) for e in events]
    assert (
        f"State change Applied → Reviewed by the village by {case.team['inspector'].username}"
        in page
    )


def test_a_household_without_cases_has_no_case_section(client):
    household = HouseholdFactory(village=make_region("520399100200"))
    HouseFactory(household=household)
    login(client, UserFactory(role=Role.ADMINISTRATOR))
    response = client.get(reverse("portal:household_detail", args=[household.pk]))
    assert response.status_code == 200
    assert 'id="renovation-cases"' not in response.content.decode()


# ---------------------------------------------------------------------------------------
# On a phone, in a real browser


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_on_a_phone_an_official_approves_ticked_cases_and_opens_one(page, live_server):
    from tests.conftest import ARTIFACTS, browser_login

    ready = case_in_state(CaseState.TOWNSHIP_CHECKED, photos=False)
    not_ready = case_in_state(CaseState.NOTICED, photos=False)
    county = UserFactory(role=Role.COUNTY_OFFICIAL, regions=[make_region("520399")])
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_viewport_size({"width": 360, "height": 740})
    ARTIFACTS.mkdir(exist_ok=True)

    browser_login(page, live_server, county, path="/login/?next=/cases/")
    assert page.url == f"{live_server.url}/cases/"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.check(f"#case-{ready.pk}")
    page.check(f"#case-{not_ready.pk}")
    page.select_option("#id_action", "county_approve")
    page.fill("#id_opinion", "Both files checked: approved.")
    page.check("form.batch-form input[name=confirm]")
    page.click("form.batch-form button[type=submit]")
    page.wait_for_selector("#batch-results")
    page.screenshot(path=str(ARTIFACTS / "case-batch-results-360.png"), full_page=True)
    assert page.locator(".batch-result--done").count() == 1
    assert page.locator(".batch-result--refused").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.click(f"#batch-results a[href='/cases/{ready.pk}/']")
    assert page.inner_text("#case-state") == "Approved by the county"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(ARTIFACTS / "case-detail-360.png"), full_page=True)
    assert errors == []
    assert page.external_requests == []
